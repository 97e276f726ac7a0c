//! The statistics the analyst sends and the grounding checks read: a flat
//! map of stat keys to numbers, computed locally from closed trades.
//!
//! Keys (every number rounded to 6 significant digits):
//! - `overall.*`: `trades`, `wins`, `win_rate`, `mean_roi`, `median_roi`,
//!   `roi_sd`, `sharpe_per_trade` (mean ROI / its standard deviation),
//!   `total_pnl` and `mean_pnl` (dollars), `mean_days_held`.
//! - one slice per bucket of the pattern detector's dimensions
//!   (`learning::patterns`): `otm.<lo>-<hi>` (OTM percent), `dte.<lo>-<hi>`,
//!   `sector.<name>`, `weekday.<day>` and `hour.<HH>` (entry timing, New
//!   York), `vix.<range>`, `regime.<name>`; each with `trades`, `win_rate`,
//!   `mean_roi`, and when the detector tested it `roi_diff` (bucket − rest),
//!   `p_roi` and `p_win_rate`: p-values adjusted for every slice tested in
//!   the run (Benjamini-Hochberg by default), so a slice is not "significant"
//!   by being one of many.
//! - `exit.<reason>.trades` and `.mean_roi`.
//! - winners (ROI > 0) against losers: `winners.trades`, `losers.trades`,
//!   `winners.mean_<f>` / `losers.mean_<f>` for f in `otm`, `dte`,
//!   `premium`, `vix`, `days_held`, and `winners_vs_losers.<f>.p_adj`
//!   (Welch's t, Holm-adjusted over the features compared).

use std::collections::BTreeMap;

use core_domain::{Trade, TradeStatus};
use learning::patterns::{Comparison, Dimension, FeatureMap, PatternParams, detect};
use learning::stats::{holm, welch_t_test};
use serde::{Deserialize, Serialize};

/// One bucket of a dimension, as the grounding checks need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// `otm`, `dte`, `sector`, `weekday`, `hour`, `vix`, `regime`.
    pub dimension: String,
    /// The stat-key prefix (`otm.18-20`).
    pub key: String,
    pub trades: usize,
    pub win_rate: f64,
    pub mean_roi: f64,
    /// Bucket − rest mean ROI.
    pub roi_diff: Option<f64>,
    /// The smaller adjusted p-value of its tests.
    pub p_adjusted: Option<f64>,
    /// Rejected by the correction at α (a test of the run).
    pub significant: bool,
    /// The bucket's range in the parameter's unit (OTM as a fraction, DTE
    /// in days), for the OTM and DTE dimensions.
    pub range: Option<(f64, f64)>,
}

/// The statistics of one analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// Stat key → number: the `statistics` object sent to the model.
    pub values: BTreeMap<String, f64>,
    /// Closed trades with an ROI in the window.
    pub closed_trades: usize,
    /// Every slice.
    pub slices: Vec<Slice>,
    /// The level of the corrected tests.
    pub alpha: f64,
}

impl Statistics {
    /// The value of `key`, if computed.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }

    /// The slice whose key prefixes `stat` (`otm.18-20.win_rate` →
    /// `otm.18-20`).
    #[must_use]
    pub fn slice_of(&self, stat: &str) -> Option<&Slice> {
        self.slices.iter().find(|s| {
            stat.strip_prefix(&s.key)
                .is_some_and(|r| r.starts_with('.'))
        })
    }
}

/// Rounds to 6 significant digits (what the model sees and cites).
#[must_use]
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 6 - 1 - x.abs().log10().floor() as i32;
    let f = 10_f64.powi(digits);
    (x * f).round() / f
}

fn put(values: &mut BTreeMap<String, f64>, key: String, v: f64) {
    if v.is_finite() {
        values.insert(key, round_sig(v));
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// The detector's parameters for an analysis: as configured, but run
/// from the first closed trade (buckets below `min_bucket` stay untested).
#[must_use]
pub fn analysis_params(configured: &PatternParams) -> PatternParams {
    PatternParams {
        min_trades: 1,
        ..configured.clone()
    }
}

/// Computes every statistic over `trades` (the closed ones with a finite
/// ROI count).
#[must_use]
pub fn compute(trades: &[Trade], params: &PatternParams) -> Statistics {
    let closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed && t.roi.is_some_and(f64::is_finite))
        .collect();
    let mut values = BTreeMap::new();
    let rois: Vec<f64> = closed.iter().filter_map(|t| t.roi).collect();
    let n = rois.len();
    put(&mut values, "overall.trades".into(), n as f64);
    let mut slices = Vec::new();
    if n > 0 {
        overall_into(&closed, &rois, &mut values);

        // Slices: the pattern detector's comparisons, corrected together.
        let owned: Vec<Trade> = closed.iter().map(|t| (*t).clone()).collect();
        if let Ok(report) = detect(&owned, &FeatureMap::new(), &analysis_params(params)) {
            for c in &report.comparisons {
                if let Some(slice) = slice_of(c, report.params.alpha) {
                    let k = &slice.key;
                    put(&mut values, format!("{k}.trades"), slice.trades as f64);
                    put(&mut values, format!("{k}.win_rate"), slice.win_rate);
                    put(&mut values, format!("{k}.mean_roi"), slice.mean_roi);
                    if let Some(d) = slice.roi_diff {
                        put(&mut values, format!("{k}.roi_diff"), d);
                    }
                    if let Some(t) = c.roi_test {
                        put(&mut values, format!("{k}.p_roi"), t.p_adjusted);
                    }
                    if let Some(t) = c.win_rate_test {
                        put(&mut values, format!("{k}.p_win_rate"), t.p_adjusted);
                    }
                    slices.push(slice);
                }
            }
        }

        // Exit reasons.
        let mut by_exit: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for t in &closed {
            if let (Some(r), Some(roi)) = (t.exit_reason, t.roi) {
                by_exit.entry(r.to_string()).or_default().push(roi);
            }
        }
        for (reason, v) in by_exit {
            put(&mut values, format!("exit.{reason}.trades"), v.len() as f64);
            put(&mut values, format!("exit.{reason}.mean_roi"), mean(&v));
        }

        winners_vs_losers(&closed, &mut values);
    }
    Statistics {
        values,
        closed_trades: n,
        slices,
        alpha: params.alpha,
    }
}

/// The `overall.*` statistics alone (cheap: no tests), over the closed
/// trades with a finite ROI.
#[must_use]
pub fn overall(trades: &[Trade]) -> BTreeMap<String, f64> {
    let closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed && t.roi.is_some_and(f64::is_finite))
        .collect();
    let rois: Vec<f64> = closed.iter().filter_map(|t| t.roi).collect();
    let mut values = BTreeMap::new();
    put(&mut values, "overall.trades".into(), rois.len() as f64);
    if !rois.is_empty() {
        overall_into(&closed, &rois, &mut values);
    }
    values
}

fn overall_into(closed: &[&Trade], rois: &[f64], values: &mut BTreeMap<String, f64>) {
    let n = rois.len();
    let wins = rois.iter().filter(|r| **r > 0.0).count();
    put(values, "overall.wins".into(), wins as f64);
    put(values, "overall.win_rate".into(), wins as f64 / n as f64);
    put(values, "overall.mean_roi".into(), mean(rois));
    let mut sorted = rois.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    put(values, "overall.median_roi".into(), median);
    let s = sd(rois);
    put(values, "overall.roi_sd".into(), s);
    if s > 0.0 {
        put(values, "overall.sharpe_per_trade".into(), mean(rois) / s);
    }
    let pnl: Vec<f64> = closed
        .iter()
        .filter_map(|t| t.profit_loss)
        .map(|m| m.cents() as f64 / 100.0)
        .collect();
    if !pnl.is_empty() {
        put(values, "overall.total_pnl".into(), pnl.iter().sum());
        put(values, "overall.mean_pnl".into(), mean(&pnl));
    }
    let held: Vec<f64> = closed
        .iter()
        .filter_map(|t| t.days_held)
        .map(|d| d as f64)
        .collect();
    if !held.is_empty() {
        put(values, "overall.mean_days_held".into(), mean(&held));
    }
}

type Feature = (&'static str, fn(&Trade) -> Option<f64>);

const FEATURES: [Feature; 5] = [
    ("otm", |t| Some(t.otm_pct)),
    ("dte", |t| Some(t.dte as f64)),
    ("premium", |t| Some(t.entry_premium.raw() as f64 / 10_000.0)),
    ("vix", |t| t.vix_at_entry),
    ("days_held", |t| t.days_held.map(|d| d as f64)),
];

fn winners_vs_losers(closed: &[&Trade], values: &mut BTreeMap<String, f64>) {
    let (winners, losers): (Vec<&Trade>, Vec<&Trade>) = closed
        .iter()
        .copied()
        .partition(|t| t.roi.unwrap_or(0.0) > 0.0);
    put(values, "winners.trades".into(), winners.len() as f64);
    put(values, "losers.trades".into(), losers.len() as f64);
    let mut tested: Vec<(&str, f64)> = Vec::new();
    for (name, pick) in FEATURES {
        let w: Vec<f64> = winners
            .iter()
            .filter_map(|t| pick(t))
            .filter(|x| x.is_finite())
            .collect();
        let l: Vec<f64> = losers
            .iter()
            .filter_map(|t| pick(t))
            .filter(|x| x.is_finite())
            .collect();
        if !w.is_empty() {
            put(values, format!("winners.mean_{name}"), mean(&w));
        }
        if !l.is_empty() {
            put(values, format!("losers.mean_{name}"), mean(&l));
        }
        if w.len() >= 2
            && l.len() >= 2
            && let Ok(t) = welch_t_test(&w, &l)
            && t.p_value.is_finite()
        {
            tested.push((name, t.p_value));
        }
    }
    let ps: Vec<f64> = tested.iter().map(|(_, p)| *p).collect();
    if let Ok(h) = holm(&ps, 0.05) {
        for ((name, _), p) in tested.iter().zip(h.adjusted) {
            put(values, format!("winners_vs_losers.{name}.p_adj"), p);
        }
    }
}

/// The slice of a comparison (its stat-key prefix from the bucket label).
fn slice_of(c: &Comparison, alpha: f64) -> Option<Slice> {
    let label = c.bucket.as_str();
    let (dimension, bucket, range) = match c.dimension {
        Dimension::OtmBucket => {
            if label == "in the money" {
                ("otm", "itm".to_owned(), None)
            } else {
                let b = label.trim_end_matches("% OTM").to_owned();
                let range = parse_range(&b).map(|(lo, hi)| (lo / 100.0, hi / 100.0));
                ("otm", b, range)
            }
        }
        Dimension::DteBucket => {
            let b = label.trim_end_matches(" DTE").to_owned();
            let range = parse_range(&b).or_else(|| b.parse::<f64>().ok().map(|d| (d, d)));
            ("dte", b, range)
        }
        Dimension::Sector => ("sector", label.trim_end_matches(" sector").to_owned(), None),
        Dimension::EntryWeekday => (
            "weekday",
            label.trim_start_matches("entry on ").to_owned(),
            None,
        ),
        Dimension::EntryHour => (
            "hour",
            label
                .trim_start_matches("entry ")
                .split(':')
                .next()
                .unwrap_or(label)
                .to_owned(),
            None,
        ),
        Dimension::VixRegime => ("vix", label.trim_start_matches("VIX ").to_owned(), None),
        Dimension::MarketRegime => ("regime", label.trim_end_matches(" regime").to_owned(), None),
        Dimension::TrendStrength | Dimension::IvRank => return None,
    };
    let bucket = bucket.replace(' ', "_");
    let tests = [c.roi_test, c.win_rate_test];
    let p_adjusted = tests
        .iter()
        .flatten()
        .map(|t| t.p_adjusted)
        .min_by(f64::total_cmp);
    let significant = tests
        .iter()
        .flatten()
        .any(|t| t.rejected && t.p_adjusted <= alpha);
    Some(Slice {
        dimension: dimension.to_owned(),
        key: format!("{dimension}.{bucket}"),
        trades: c.bucket_stats.n,
        win_rate: c.bucket_stats.win_rate,
        mean_roi: c.bucket_stats.avg_roi,
        roi_diff: c.roi_difference,
        p_adjusted,
        significant,
        range,
    })
}

fn parse_range(s: &str) -> Option<(f64, f64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_six_significant_digits() {
        assert_eq!(round_sig(0.123_456_789), 0.123_457);
        assert_eq!(round_sig(1234.5678), 1234.57);
        assert_eq!(round_sig(0.000_012_345_678), 0.000_012_345_7);
        assert_eq!(round_sig(0.0), 0.0);
    }

    #[test]
    fn no_trades_gives_only_the_count() {
        let s = compute(&[], &PatternParams::default());
        assert_eq!(s.get("overall.trades"), Some(0.0));
        assert_eq!(s.values.len(), 1);
    }
}
