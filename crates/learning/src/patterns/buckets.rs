//! The dimensions trades are split along and the bucket of each trade.

use std::collections::HashMap;
use std::fmt;

use chrono::{Datelike, Timelike, Weekday};
use chrono_tz::America::New_York;
use core_domain::{MarketRegime, Trade};
use serde::{Deserialize, Serialize};

use super::PatternParams;

/// Features of a trade that are not fields of [`Trade`], keyed by
/// `trade_id` in a [`FeatureMap`]. Both are recorded at entry by whoever
/// knows them (the scanner); a missing map entry or a `None` puts the trade
/// in the "unknown" bucket of that dimension, which is never tested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeFeatures {
    /// How strong the underlying's uptrend was at entry, in any consistent
    /// unit (the screener ranks by close / SMA50 − 1). Split into terciles
    /// of the values seen.
    pub trend_strength: Option<f64>,
    /// The underlying's implied-volatility rank at entry, in any consistent
    /// unit (0–1 or 0–100). Split into quartiles of the values seen.
    pub iv_rank: Option<f64>,
}

/// [`TradeFeatures`] by `trade_id`. An empty map is fine: the trend and IV
/// rank dimensions are then simply not tested.
pub type FeatureMap = HashMap<String, TradeFeatures>;

/// A dimension trades are compared along, one bucket against the rest.
///
/// Its [`as_str`](Dimension::as_str) is the stored `pattern_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// `otm_pct` in buckets of [`PatternParams::otm_bucket_width_pct`]
    /// percentage points, lower bound included ("18-20% OTM" holds
    /// 0.18 ≤ otm < 0.20); a negative `otm_pct` is "in the money".
    OtmBucket,
    /// `dte` in buckets of [`PatternParams::dte_bucket_width`] calendar
    /// days, both bounds included ("12-14 DTE").
    DteBucket,
    /// `sector`; no sector is unknown.
    Sector,
    /// The weekday of `entry_time` in New York.
    EntryWeekday,
    /// The hour of `entry_time` in New York ("entry 10:00-11:00 ET").
    EntryHour,
    /// `vix_at_entry`: < 15, 15–20, 20–30, ≥ 30 (lower bounds included);
    /// no VIX is unknown.
    VixRegime,
    /// `market_regime`; [`MarketRegime::Unknown`] is unknown.
    MarketRegime,
    /// [`TradeFeatures::trend_strength`] in terciles of the real trades'
    /// values (bucket = first tercile edge the value is ≤ to).
    TrendStrength,
    /// [`TradeFeatures::iv_rank`] in quartiles of the real trades' values
    /// (bucket = first quartile edge the value is ≤ to).
    IvRank,
}

impl Dimension {
    /// Every dimension, in the order comparisons are reported.
    pub const ALL: [Dimension; 9] = [
        Dimension::OtmBucket,
        Dimension::DteBucket,
        Dimension::Sector,
        Dimension::EntryWeekday,
        Dimension::EntryHour,
        Dimension::VixRegime,
        Dimension::MarketRegime,
        Dimension::TrendStrength,
        Dimension::IvRank,
    ];

    /// The name stored as a pattern's `pattern_type`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::OtmBucket => "otm_bucket",
            Dimension::DteBucket => "dte_bucket",
            Dimension::Sector => "sector",
            Dimension::EntryWeekday => "entry_weekday",
            Dimension::EntryHour => "entry_hour",
            Dimension::VixRegime => "vix_regime",
            Dimension::MarketRegime => "market_regime",
            Dimension::TrendStrength => "trend_strength",
            Dimension::IvRank => "iv_rank",
        }
    }

    /// The dimension whose [`as_str`](Dimension::as_str) is `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bucket of a dimension: `order` sorts buckets naturally (OTM
/// ascending, Monday first), `label` names it in patterns ("18-20% OTM").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Bucket {
    pub(crate) order: i64,
    pub(crate) label: String,
}

impl Bucket {
    fn new(order: i64, label: impl Into<String>) -> Bucket {
        Bucket {
            order,
            label: label.into(),
        }
    }
}

/// Quantile edges of the feature dimensions, computed from the real
/// trades' known values (never from outcomes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantileEdges {
    /// The two tercile edges of trend strength, if at least three real
    /// trades have one.
    pub trend_strength: Option<Vec<f64>>,
    /// The three quartile edges of IV rank, if at least four real trades
    /// have one.
    pub iv_rank: Option<Vec<f64>>,
}

impl QuantileEdges {
    /// Edges from the features of `trades` (those with a known value).
    pub(crate) fn of(trades: &[&Trade], features: &FeatureMap) -> QuantileEdges {
        let values = |pick: fn(&TradeFeatures) -> Option<f64>| -> Vec<f64> {
            let mut v: Vec<f64> = trades
                .iter()
                .filter_map(|t| features.get(&t.trade_id).and_then(pick))
                .filter(|x| x.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let trend = values(|f| f.trend_strength);
        let iv = values(|f| f.iv_rank);
        QuantileEdges {
            trend_strength: (trend.len() >= 3)
                .then(|| [1.0 / 3.0, 2.0 / 3.0].map(|q| quantile(&trend, q)).to_vec()),
            iv_rank: (iv.len() >= 4).then(|| [0.25, 0.5, 0.75].map(|q| quantile(&iv, q)).to_vec()),
        }
    }
}

/// The `q` quantile of sorted, non-empty `sorted` with linear
/// interpolation between order statistics (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Index of the first edge `value` is ≤ to (the last bucket if none).
fn rank_in(edges: &[f64], value: f64) -> usize {
    edges
        .iter()
        .position(|&e| value <= e)
        .unwrap_or(edges.len())
}

/// Assigns trades to buckets with the run's parameters and edges.
pub(crate) struct Bucketer<'a> {
    pub(crate) params: &'a PatternParams,
    pub(crate) edges: &'a QuantileEdges,
    pub(crate) features: &'a FeatureMap,
}

impl Bucketer<'_> {
    /// The trade's bucket along `dimension`, `None` when unknown.
    pub(crate) fn bucket(&self, dimension: Dimension, trade: &Trade) -> Option<Bucket> {
        let feature = |pick: fn(&TradeFeatures) -> Option<f64>| {
            self.features
                .get(&trade.trade_id)
                .and_then(pick)
                .filter(|v| v.is_finite())
        };
        match dimension {
            Dimension::OtmBucket => otm_bucket(trade.otm_pct, self.params.otm_bucket_width_pct),
            Dimension::DteBucket => dte_bucket(trade.dte, self.params.dte_bucket_width),
            Dimension::Sector => trade
                .sector
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Bucket::new(0, format!("{s} sector"))),
            Dimension::EntryWeekday => {
                let day = trade.entry_time.with_timezone(&New_York).weekday();
                Some(Bucket::new(
                    i64::from(day.num_days_from_monday()),
                    format!("entry on {}", weekday_name(day)),
                ))
            }
            Dimension::EntryHour => {
                let hour = trade.entry_time.with_timezone(&New_York).hour();
                Some(Bucket::new(
                    i64::from(hour),
                    format!("entry {hour:02}:00-{:02}:00 ET", (hour + 1) % 24),
                ))
            }
            Dimension::VixRegime => trade.vix_at_entry.filter(|v| v.is_finite()).map(vix_bucket),
            Dimension::MarketRegime => match trade.market_regime {
                MarketRegime::Unknown => None,
                regime => Some(Bucket::new(
                    regime_order(regime),
                    format!("{} regime", regime.as_str()),
                )),
            },
            Dimension::TrendStrength => {
                let edges = self.edges.trend_strength.as_deref()?;
                let rank = rank_in(edges, feature(|f| f.trend_strength)?);
                let name = ["bottom", "middle", "top"].get(rank).copied()?;
                Some(Bucket::new(
                    rank as i64,
                    format!("trend strength {name} tercile"),
                ))
            }
            Dimension::IvRank => {
                let edges = self.edges.iv_rank.as_deref()?;
                let rank = rank_in(edges, feature(|f| f.iv_rank)?);
                Some(Bucket::new(rank as i64, format!("IV rank Q{}", rank + 1)))
            }
        }
    }
}

fn otm_bucket(otm_pct: f64, width_pct: u32) -> Option<Bucket> {
    if !otm_pct.is_finite() {
        return None;
    }
    if otm_pct < 0.0 {
        return Some(Bucket::new(-1, "in the money"));
    }
    let width = i64::from(width_pct.max(1));
    // A small tolerance so that 0.18 (stored as 0.179999…) lands in 18-20.
    let index = (otm_pct * 100.0 / width as f64 + 1e-9).floor() as i64;
    let lo = index * width;
    Some(Bucket::new(lo, format!("{lo}-{}% OTM", lo + width)))
}

fn dte_bucket(dte: i64, width: u32) -> Option<Bucket> {
    if dte < 0 {
        return None;
    }
    let width = i64::from(width.max(1));
    let lo = dte / width * width;
    let hi = lo + width - 1;
    let label = if width == 1 {
        format!("{lo} DTE")
    } else {
        format!("{lo}-{hi} DTE")
    };
    Some(Bucket::new(lo, label))
}

fn vix_bucket(vix: f64) -> Bucket {
    if vix < 15.0 {
        Bucket::new(0, "VIX <15")
    } else if vix < 20.0 {
        Bucket::new(1, "VIX 15-20")
    } else if vix < 30.0 {
        Bucket::new(2, "VIX 20-30")
    } else {
        Bucket::new(3, "VIX 30+")
    }
}

fn regime_order(regime: MarketRegime) -> i64 {
    match regime {
        MarketRegime::BullQuiet => 0,
        MarketRegime::BullVolatile => 1,
        MarketRegime::BearQuiet => 2,
        MarketRegime::BearVolatile => 3,
        MarketRegime::Unknown => 4,
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otm_buckets_include_the_lower_bound() {
        let label = |x| otm_bucket(x, 2).map(|b| b.label);
        assert_eq!(label(0.18).as_deref(), Some("18-20% OTM"));
        assert_eq!(label(0.1999).as_deref(), Some("18-20% OTM"));
        assert_eq!(label(0.20).as_deref(), Some("20-22% OTM"));
        assert_eq!(label(0.15).as_deref(), Some("14-16% OTM"));
        assert_eq!(label(-0.01).as_deref(), Some("in the money"));
        assert_eq!(label(f64::NAN), None);
    }

    #[test]
    fn dte_buckets_include_both_bounds() {
        let label = |d| dte_bucket(d, 3).map(|b| b.label);
        assert_eq!(label(12).as_deref(), Some("12-14 DTE"));
        assert_eq!(label(14).as_deref(), Some("12-14 DTE"));
        assert_eq!(label(7).as_deref(), Some("6-8 DTE"));
        assert_eq!(dte_bucket(7, 1).map(|b| b.label).as_deref(), Some("7 DTE"));
        assert_eq!(label(-1), None);
    }

    #[test]
    fn vix_regimes_and_quantiles() {
        assert_eq!(vix_bucket(14.99).label, "VIX <15");
        assert_eq!(vix_bucket(15.0).label, "VIX 15-20");
        assert_eq!(vix_bucket(20.0).label, "VIX 20-30");
        assert_eq!(vix_bucket(30.0).label, "VIX 30+");
        // numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75]) = 1.75, 2.5, 3.25
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            [0.25, 0.5, 0.75].map(|q| quantile(&v, q)),
            [1.75, 2.5, 3.25]
        );
        assert_eq!(rank_in(&[1.75, 2.5, 3.25], 1.75), 0);
        assert_eq!(rank_in(&[1.75, 2.5, 3.25], 4.0), 3);
    }

    #[test]
    fn dimension_names_round_trip() {
        for d in Dimension::ALL {
            assert_eq!(Dimension::parse(d.as_str()), Some(d));
        }
        assert_eq!(Dimension::parse("moon_phase"), None);
    }
}
