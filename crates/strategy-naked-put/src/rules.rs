//! The trader's rules as pure functions over numbers: every call returns a
//! decision record naming each criterion, its value and its threshold.
//!
//! Ranges are inclusive at both ends. Ratios computed in floating point are
//! compared with a tolerance of [`EPS`] so that a strike exactly 15% out of
//! the money is in the range whatever the rounding of (S − K) / S; prices
//! are compared exactly in integer ten-thousandths ([`Price`]).

use chrono::{DateTime, Utc};
use core_domain::{Criterion, DecisionKind, DecisionRecord, ExitReason, Price};
use serde_json::json;

use crate::params::{NakedPutParams, TrendFilter};

/// Tolerance of ratio comparisons (a billionth).
pub const EPS: f64 = 1e-9;

/// How far a put's strike is below the underlying, as a fraction of it.
pub fn otm_pct(underlying: f64, strike: f64) -> f64 {
    (underlying - strike) / underlying
}

/// price > SMA20 > SMA50 (strictly).
pub fn is_uptrend(price: f64, sma20: f64, sma50: f64) -> bool {
    price > sma20 && sma20 > sma50
}

fn in_range(v: f64, lo: f64, hi: f64) -> bool {
    v >= lo - EPS && v <= hi + EPS
}

fn money(p: f64) -> Price {
    Price::from_f64(p).unwrap_or(Price::ZERO)
}

/// Everything the entry rule reads about one put.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryCandidate {
    /// The contract key, e.g. `AAPL 2024-01-19 150.00 P`.
    pub subject: String,
    pub underlying_price: f64,
    pub sma20: Option<f64>,
    pub sma50: Option<f64>,
    pub strike: f64,
    pub bid: Price,
    pub ask: Price,
    pub dte: i64,
    pub open_interest: Option<i64>,
    /// Positions open now (before this one).
    pub open_positions: i64,
}

/// The entry rule. `decision` is "enter" when every criterion passes,
/// "skip" otherwise; the reason names the first failing criterion.
pub fn should_enter(c: &EntryCandidate, p: &NakedPutParams, time: DateTime<Utc>) -> DecisionRecord {
    let otm = otm_pct(c.underlying_price, c.strike);
    let mut criteria = vec![
        Criterion::number(
            "otm_pct",
            otm,
            format!("{}..={}", p.otm_min, p.otm_max),
            in_range(otm, p.otm_min, p.otm_max),
        ),
        Criterion::number(
            "premium_bid",
            c.bid.to_f64(),
            format!("{}..={}", p.premium_min, p.premium_max),
            c.bid >= money(p.premium_min) && c.bid <= money(p.premium_max),
        ),
        Criterion::number(
            "dte",
            c.dte as f64,
            format!("{}..={}", p.dte_min, p.dte_max),
            c.dte >= p.dte_min && c.dte <= p.dte_max,
        ),
        Criterion::number(
            "underlying_price",
            c.underlying_price,
            format!("{}..={}", p.price_min, p.price_max),
            in_range(c.underlying_price, p.price_min, p.price_max),
        ),
    ];
    match p.trend_filter {
        TrendFilter::Uptrend => {
            let (passed, value) = match (c.sma20, c.sma50) {
                (Some(a), Some(b)) => (
                    is_uptrend(c.underlying_price, a, b),
                    format!("price {:.4} sma20 {a:.4} sma50 {b:.4}", c.underlying_price),
                ),
                _ => (false, "not enough history for SMA50".to_string()),
            };
            criteria.push(Criterion::text(
                "uptrend",
                value,
                "price > sma20 > sma50",
                passed,
            ));
        }
        TrendFilter::None => {
            criteria.push(Criterion::text("uptrend", "not required", "none", true));
        }
    }
    let oi = c.open_interest.unwrap_or(0);
    criteria.push(Criterion::number(
        "open_interest",
        oi as f64,
        format!(">= {}", p.min_open_interest),
        oi >= p.min_open_interest,
    ));
    let mid = (c.bid.to_f64() + c.ask.to_f64()) / 2.0;
    let spread_pct = if mid > 0.0 {
        (c.ask.to_f64() - c.bid.to_f64()) / mid
    } else {
        f64::INFINITY
    };
    criteria.push(Criterion::number(
        "spread_pct",
        spread_pct,
        format!("<= {}", p.max_spread_pct),
        spread_pct <= p.max_spread_pct + EPS,
    ));
    criteria.push(Criterion::number(
        "open_positions",
        c.open_positions as f64,
        format!("< {}", p.max_positions),
        c.open_positions < p.max_positions,
    ));
    let failed = criteria.iter().find(|k| !k.passed).map(|k| k.name.clone());
    let (kind, decision, reason) = match failed {
        None => (
            DecisionKind::Entry,
            "enter",
            format!(
                "every entry criterion passed: {:.1}% OTM, bid {}, {} DTE",
                otm * 100.0,
                c.bid,
                c.dte
            ),
        ),
        Some(name) => (
            DecisionKind::Skip,
            "skip",
            format!("{name} outside its threshold"),
        ),
    };
    DecisionRecord::new(time, kind, c.subject.clone(), decision, reason)
        .with_criteria(criteria)
        .with_context(json!({"strategy": p.name}))
}

/// Everything the exit rule reads about one open short put.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitInput {
    pub trade_id: String,
    /// Premium received per share at entry.
    pub entry_premium: Price,
    /// What it costs to close now per share (the ask).
    pub cost_to_close: Price,
    /// Calendar days to expiry now.
    pub dte: i64,
}

/// The exit rule: profit target when cost to close ≤ (1 − target) × entry
/// premium; stop loss when cost to close ≥ (1 − stop) × entry premium (3×
/// for −200%); time exit when DTE ≤ `time_exit_dte`. When several fire at
/// once the reason is, in order, the stop, the target, then time; every
/// criterion is recorded either way.
pub fn should_exit(
    x: &ExitInput,
    p: &NakedPutParams,
    time: DateTime<Utc>,
) -> (Option<ExitReason>, DecisionRecord) {
    let entry = x.entry_premium.raw() as f64;
    let cost = x.cost_to_close.raw() as f64;
    let ratio = if entry > 0.0 {
        cost / entry
    } else {
        f64::INFINITY
    };
    // Without a premium received there is no profit or loss to measure
    // against: only the time exit can fire, and the record says why.
    let judged = entry > 0.0;
    let target = judged && cost <= p.target_fraction() * entry + EPS;
    let stop = judged && cost >= p.stop_multiple() * entry - EPS;
    let time_exit = x.dte <= p.time_exit_dte;
    let criteria = vec![
        Criterion::number(
            "entry_premium",
            x.entry_premium.to_f64(),
            "> 0 (the profit and stop rules measure against it)",
            judged,
        ),
        Criterion::number(
            "stop_loss",
            ratio,
            format!("cost to close >= {}x entry premium", p.stop_multiple()),
            stop,
        ),
        Criterion::number(
            "profit_target",
            ratio,
            format!("cost to close <= {}x entry premium", p.target_fraction()),
            target,
        ),
        Criterion::number(
            "time_exit",
            x.dte as f64,
            format!("dte <= {}", p.time_exit_dte),
            time_exit,
        ),
    ];
    let reason = if stop {
        Some(ExitReason::StopLoss)
    } else if target {
        Some(ExitReason::ProfitTarget)
    } else if time_exit {
        Some(ExitReason::TimeExit)
    } else {
        None
    };
    let record = match reason {
        Some(r) => DecisionRecord::new(
            time,
            DecisionKind::Exit,
            x.trade_id.clone(),
            format!("exit:{r}"),
            format!(
                "{r}: cost to close {} is {:.2}x the entry premium {}, {} DTE",
                x.cost_to_close, ratio, x.entry_premium, x.dte
            ),
        ),
        None => DecisionRecord::new(
            time,
            DecisionKind::Hold,
            x.trade_id.clone(),
            "hold",
            format!(
                "no exit fired: cost to close {:.2}x the entry premium, {} DTE",
                ratio, x.dte
            ),
        ),
    };
    (reason, record.with_criteria(criteria))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    /// A candidate that passes everything: 17% OTM, bid 0.40, 10 DTE.
    fn good() -> EntryCandidate {
        EntryCandidate {
            subject: "X".into(),
            underlying_price: 100.0,
            sma20: Some(95.0),
            sma50: Some(90.0),
            strike: 83.0,
            bid: Price::from_cents(40),
            ask: Price::from_cents(45),
            dte: 10,
            open_interest: Some(500),
            open_positions: 0,
        }
    }

    fn enters(c: &EntryCandidate) -> bool {
        should_enter(c, &NakedPutParams::default(), t()).decision == "enter"
    }

    #[test]
    fn test_good_candidate_enters_with_every_criterion_recorded() {
        let d = should_enter(&good(), &NakedPutParams::default(), t());
        assert_eq!(d.decision, "enter");
        assert_eq!(d.kind, DecisionKind::Entry);
        let names: Vec<&str> = d.criteria.iter().map(|c| c.name.as_str()).collect();
        for n in [
            "otm_pct",
            "premium_bid",
            "dte",
            "uptrend",
            "open_interest",
            "spread_pct",
            "open_positions",
            "underlying_price",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
    }

    #[test]
    fn test_otm_boundaries_0_15_and_0_20_are_inclusive() {
        for (strike, ok) in [
            (85.0, true),
            (85.01, false),
            (80.0, true),
            (79.99, false),
            (84.99, true),
        ] {
            let c = EntryCandidate { strike, ..good() };
            assert_eq!(enters(&c), ok, "strike {strike}");
        }
        // A price where (S - K) / S is not exact in binary.
        let c = EntryCandidate {
            underlying_price: 113.33,
            strike: 113.33 * 0.85,
            ..good()
        };
        assert!(enters(&c));
    }

    #[test]
    fn test_premium_boundaries_0_30_and_0_50_are_inclusive_at_the_bid() {
        for (cents, ok) in [(30, true), (29, false), (50, true), (51, false)] {
            let c = EntryCandidate {
                bid: Price::from_cents(cents),
                ask: Price::from_cents(cents + 5),
                ..good()
            };
            assert_eq!(enters(&c), ok, "bid {cents}");
        }
        // $0.2999 is below $0.30.
        let c = EntryCandidate {
            bid: Price::from_raw(2_999),
            ..good()
        };
        assert!(!enters(&c));
    }

    #[test]
    fn test_dte_boundaries_7_and_14_are_inclusive() {
        for (dte, ok) in [(6, false), (7, true), (14, true), (15, false)] {
            assert_eq!(enters(&EntryCandidate { dte, ..good() }), ok, "dte {dte}");
        }
    }

    #[test]
    fn test_uptrend_needs_price_above_sma20_above_sma50() {
        assert!(!enters(&EntryCandidate {
            sma20: Some(101.0),
            ..good()
        }));
        assert!(!enters(&EntryCandidate {
            sma50: Some(96.0),
            ..good()
        }));
        assert!(!enters(&EntryCandidate {
            sma50: None,
            ..good()
        }));
        let p = NakedPutParams {
            trend_filter: TrendFilter::None,
            ..NakedPutParams::default()
        };
        let c = EntryCandidate {
            sma50: None,
            ..good()
        };
        assert_eq!(should_enter(&c, &p, t()).decision, "enter");
    }

    #[test]
    fn test_max_positions_blocks_the_eleventh() {
        assert!(enters(&EntryCandidate {
            open_positions: 9,
            ..good()
        }));
        assert!(!enters(&EntryCandidate {
            open_positions: 10,
            ..good()
        }));
    }

    fn exit(entry: i64, cost: i64, dte: i64) -> Option<ExitReason> {
        let x = ExitInput {
            trade_id: "T".into(),
            entry_premium: Price::from_cents(entry),
            cost_to_close: Price::from_cents(cost),
            dte,
        };
        should_exit(&x, &NakedPutParams::default(), t()).0
    }

    #[test]
    fn test_profit_target_fires_at_half_the_premium_not_above() {
        assert_eq!(exit(40, 20, 10), Some(ExitReason::ProfitTarget));
        assert_eq!(exit(40, 21, 10), None);
        assert_eq!(exit(41, 20, 10), Some(ExitReason::ProfitTarget)); // 20 <= 20.5
    }

    #[test]
    fn test_stop_fires_at_three_times_the_premium_not_below() {
        assert_eq!(exit(40, 120, 10), Some(ExitReason::StopLoss));
        assert_eq!(exit(40, 119, 10), None);
    }

    #[test]
    fn test_time_exit_fires_at_dte_3_not_4() {
        assert_eq!(exit(40, 30, 3), Some(ExitReason::TimeExit));
        assert_eq!(exit(40, 30, 4), None);
        assert_eq!(exit(40, 30, 0), Some(ExitReason::TimeExit));
    }

    #[test]
    fn test_stop_wins_over_time_and_target_wins_over_time() {
        assert_eq!(exit(40, 150, 2), Some(ExitReason::StopLoss));
        assert_eq!(exit(40, 10, 2), Some(ExitReason::ProfitTarget));
    }

    proptest! {
        /// The exit decision is exactly the documented rule, for any prices.
        #[test]
        fn exit_rule_matches_its_definition(entry in 1i64..2_000, cost in 0i64..10_000, dte in -2i64..30) {
            let got = exit(entry, cost, dte);
            let want = if cost >= 3 * entry {
                Some(ExitReason::StopLoss)
            } else if 2 * cost <= entry {
                Some(ExitReason::ProfitTarget)
            } else if dte <= 3 {
                Some(ExitReason::TimeExit)
            } else {
                None
            };
            prop_assert_eq!(got, want);
        }

        /// An entry is taken exactly when every criterion passes, and the
        /// record always lists the same criteria.
        #[test]
        fn entry_is_the_conjunction_of_its_criteria(
            strike in 70.0f64..95.0, bid in 20i64..60, dte in 4i64..18, oi in 0i64..1_000, open in 0i64..12,
        ) {
            let c = EntryCandidate { strike, bid: Price::from_cents(bid), ask: Price::from_cents(bid + 5), dte, open_interest: Some(oi), open_positions: open, ..good() };
            let d = should_enter(&c, &NakedPutParams::default(), t());
            prop_assert_eq!(d.criteria.len(), 8);
            prop_assert_eq!(d.decision == "enter", d.all_passed());
            let otm = (100.0 - strike) / 100.0;
            let expected = (0.15 - EPS..=0.20 + EPS).contains(&otm) && (30..=50).contains(&bid) && (7..=14).contains(&dte) && oi >= 100 && open < 10;
            prop_assert_eq!(d.decision == "enter", expected);
        }
    }

    #[test]
    fn test_zero_entry_premium_only_allows_the_time_exit() {
        assert_eq!(exit(0, 30, 10), None);
        assert_eq!(exit(0, 0, 10), None);
        assert_eq!(exit(0, 30, 3), Some(ExitReason::TimeExit));
    }
}
