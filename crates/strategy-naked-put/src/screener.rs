//! The screener: which underlyings qualify today, ranked, and why the others
//! do not.
//!
//! Uptrend means last close > SMA20 > SMA50, all on daily closes ending at
//! the latest completed session. Candidates are ranked by trend strength,
//! score = last close / SMA50 − 1 (the further above its 50-day average,
//! the higher), ties broken by symbol.

use chrono::{DateTime, Utc};
use core_domain::{Criterion, DecisionKind, DecisionRecord, Symbol};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::indicators::sma;
use crate::params::{NakedPutParams, TrendFilter};
use crate::rules::{EPS, is_uptrend};

/// One underlying as the screener sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenInput {
    pub symbol: Symbol,
    pub sector: Option<String>,
    /// Daily closes, oldest first, ending at the latest completed session.
    pub closes: Vec<f64>,
    /// Average daily share volume of the last 20 completed sessions, when
    /// the bars carry volume (the shipped history does not).
    pub avg_volume: Option<f64>,
}

/// An underlying that passed the screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenedUnderlying {
    pub symbol: Symbol,
    pub sector: Option<String>,
    pub last_close: f64,
    pub sma20: Option<f64>,
    pub sma50: Option<f64>,
    /// last close / SMA50 − 1 (0 without an SMA50 when no trend filter).
    pub score: f64,
}

/// Screens `inputs`: returns the qualifying underlyings ranked best first,
/// and a skip record for every one left out.
pub fn screen(
    inputs: &[ScreenInput],
    p: &NakedPutParams,
    time: DateTime<Utc>,
) -> (Vec<ScreenedUnderlying>, Vec<DecisionRecord>) {
    let mut passed = Vec::new();
    let mut rejected = Vec::new();
    for input in inputs {
        let last = input
            .closes
            .last()
            .copied()
            .filter(|c| c.is_finite() && *c > 0.0);
        let sma20 = sma(&input.closes, 20);
        let sma50 = sma(&input.closes, 50);
        let mut criteria = Vec::new();
        let Some(last) = last else {
            rejected.push(
                DecisionRecord::new(
                    time,
                    DecisionKind::Skip,
                    input.symbol.to_string(),
                    "skip",
                    "no price history",
                )
                .with_criteria(vec![Criterion::text(
                    "history",
                    "none",
                    "at least one close",
                    false,
                )]),
            );
            continue;
        };
        criteria.push(Criterion::number(
            "underlying_price",
            last,
            format!("{}..={}", p.price_min, p.price_max),
            last >= p.price_min - EPS && last <= p.price_max + EPS,
        ));
        // Stock liquidity: average daily volume where the bars have it;
        // otherwise the options' own open interest and spread (checked by
        // the finder) stand in, and the record says so.
        criteria.push(match input.avg_volume {
            Some(v) => Criterion::number(
                "avg_volume",
                v,
                format!(">= {}", p.min_avg_volume),
                v >= p.min_avg_volume,
            ),
            None => Criterion::text(
                "avg_volume",
                "not in the data",
                "option open interest and spread stand in",
                true,
            ),
        });
        if p.trend_filter == TrendFilter::Uptrend {
            let (ok, value) = match (sma20, sma50) {
                (Some(a), Some(b)) => (
                    is_uptrend(last, a, b),
                    format!("close {last:.4} sma20 {a:.4} sma50 {b:.4}"),
                ),
                _ => (false, format!("{} closes, 50 needed", input.closes.len())),
            };
            criteria.push(Criterion::text(
                "uptrend",
                value,
                "close > sma20 > sma50",
                ok,
            ));
        }
        let failed = criteria.iter().find(|c| !c.passed).map(|c| c.name.clone());
        let score = sma50.map_or(0.0, |s| last / s - 1.0);
        match failed {
            None => passed.push(ScreenedUnderlying {
                symbol: input.symbol.clone(),
                sector: input.sector.clone(),
                last_close: last,
                sma20,
                sma50,
                score,
            }),
            Some(name) => rejected.push(
                DecisionRecord::new(
                    time,
                    DecisionKind::Skip,
                    input.symbol.to_string(),
                    "skip",
                    format!("screen: {name} failed"),
                )
                .with_criteria(criteria)
                .with_context(json!({"stage": "screen"})),
            ),
        }
    }
    passed.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    (passed, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(sym: &str, closes: Vec<f64>) -> ScreenInput {
        ScreenInput {
            symbol: Symbol::new(sym).unwrap(),
            sector: None,
            closes,
            avg_volume: None,
        }
    }

    #[test]
    fn test_rising_series_passes_and_falling_is_rejected_with_numbers() {
        let up: Vec<f64> = (0..60).map(|i| 50.0 + i as f64).collect();
        let down: Vec<f64> = (0..60).map(|i| 120.0 - i as f64).collect();
        let (ok, rej) = screen(
            &[input("UP", up), input("DOWN", down)],
            &NakedPutParams::default(),
            DateTime::<Utc>::UNIX_EPOCH,
        );
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].symbol.as_str(), "UP");
        assert_eq!(rej.len(), 1);
        assert!(
            rej[0]
                .criteria
                .iter()
                .any(|c| c.name == "uptrend" && !c.passed)
        );
    }

    #[test]
    fn test_short_history_is_rejected_not_guessed() {
        let (ok, rej) = screen(
            &[input("NEW", vec![20.0; 30])],
            &NakedPutParams::default(),
            DateTime::<Utc>::UNIX_EPOCH,
        );
        assert!(ok.is_empty());
        assert!(
            rej[0]
                .criteria
                .iter()
                .any(|c| c.value.contains("50 needed"))
        );
    }

    #[test]
    fn test_ranked_by_distance_above_sma50() {
        let slow: Vec<f64> = (0..60).map(|i| 50.0 + 0.1 * i as f64).collect();
        let fast: Vec<f64> = (0..60).map(|i| 50.0 + i as f64).collect();
        let (ok, _) = screen(
            &[input("SLOW", slow), input("FAST", fast)],
            &NakedPutParams::default(),
            DateTime::<Utc>::UNIX_EPOCH,
        );
        assert_eq!(ok[0].symbol.as_str(), "FAST");
    }

    #[test]
    fn test_thin_stock_is_rejected_at_its_volume_boundary() {
        let up: Vec<f64> = (0..60).map(|i| 50.0 + i as f64).collect();
        let p = NakedPutParams::default();
        let with = |v: f64| ScreenInput {
            avg_volume: Some(v),
            ..input("UP", up.clone())
        };
        let t = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(screen(&[with(p.min_avg_volume)], &p, t).0.len(), 1);
        assert_eq!(screen(&[with(p.min_avg_volume - 1.0)], &p, t).0.len(), 0);
        // Without volume in the data the criterion passes and says why.
        let (ok, _) = screen(&[input("UP", up)], &p, t);
        assert_eq!(ok.len(), 1);
    }
}
