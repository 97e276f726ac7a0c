//! What a backtest (or a paper run) did, read back from the database
//! alone: trades, the daily equity curve, the summary, and the checks of
//! the risk rules.
//!
//! ## The checks ([`check_rules`])
//! * never more than `max_open` positions open at once (entry to exit
//!   intervals of the `trades` table);
//! * never more than `max_new_per_day` trades opened on one day;
//! * every profit-target exit at ≤ (1 − target) × the entry premium, every
//!   stop at ≥ (1 − stop) × the premium (3× for −200%), every time exit at
//!   ≤ `time_exit_dte` days to expiry — each price check up to
//!   `slippage_tolerance` per share, the exchange's documented slippage
//!   (`slippage_ticks` × $0.01 on a marketable fill).

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AccountRepository, ExitReason, Money, Price, RepoError, Trade, TradeFilter, TradeRepository,
    TradeStatus,
};
use serde::{Deserialize, Serialize};
use store::Store;

use crate::metrics::{EquityPoint, MetricsParams, Summary, summarize};

/// Trades, equity and summary of a period, from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub trades: Vec<Trade>,
    pub equity: Vec<EquityPoint>,
    pub summary: Summary,
}

/// Reads the period's trades (entered from `from` to `to`) and one equity
/// point per session (the last account snapshot of each New York date).
pub fn results(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    starting_equity: Money,
    params: &MetricsParams,
) -> Result<Results, RepoError> {
    let mut trades: Vec<Trade> = store
        .trades(&TradeFilter::default())?
        .into_iter()
        .filter(|t| t.entry_time >= from && t.entry_time <= to)
        .collect();
    trades.sort_by(|a, b| {
        a.entry_time
            .cmp(&b.entry_time)
            .then(a.trade_id.cmp(&b.trade_id))
    });
    let snapshots = store.snapshots(from, to)?;
    let mut equity: Vec<EquityPoint> = Vec::new();
    for s in &snapshots {
        let date = execution::trade_log::exchange_date(s.time);
        let open = trades
            .iter()
            .filter(|t| t.entry_time <= s.time && t.exit_time.is_none_or(|x| x > s.time))
            .count();
        let point = EquityPoint::from_snapshot(date, s, open);
        match equity.last_mut() {
            Some(last) if last.date == date => *last = point,
            _ => equity.push(point),
        }
    }
    let summary = summarize(&trades, &equity, starting_equity, params);
    Ok(Results {
        trades,
        equity,
        summary,
    })
}

/// The limits [`check_rules`] verifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleLimits {
    pub max_open: usize,
    pub max_new_per_day: usize,
    /// 0.5: close at half the premium.
    pub profit_target: f64,
    /// −2.0: stop at 3× the premium.
    pub stop_loss: f64,
    pub time_exit_dte: i64,
    /// Per share, dollars.
    pub slippage_tolerance: f64,
}

/// One broken rule, with the numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: String,
    pub detail: String,
}

/// What the checks looked at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    pub trades: usize,
    pub max_open_seen: usize,
    pub max_new_in_a_day: usize,
    pub exits_by_reason: Vec<(String, usize)>,
    pub violations: Vec<Violation>,
}

/// Checks the trades against the rules (see the module docs).
pub fn check_rules(trades: &[Trade], limits: &RuleLimits) -> RuleReport {
    let mut report = RuleReport {
        trades: trades.len(),
        ..RuleReport::default()
    };
    // Open positions at once: sweep entries (+1) and exits (−1); an exit
    // at the same instant as an entry is counted first.
    let mut marks: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for t in trades {
        marks.push((t.entry_time, 1));
        if let Some(x) = t.exit_time {
            marks.push((x, -1));
        }
    }
    marks.sort();
    let mut open = 0i64;
    for (time, delta) in marks {
        open += i64::from(delta);
        let n = usize::try_from(open.max(0)).unwrap_or(0);
        if n > report.max_open_seen {
            report.max_open_seen = n;
        }
        if n > limits.max_open {
            report.violations.push(Violation {
                rule: "max_open_positions".into(),
                detail: format!("{n} positions open at {time} > {}", limits.max_open),
            });
        }
    }
    let mut per_day: std::collections::BTreeMap<NaiveDate, usize> = Default::default();
    for t in trades {
        *per_day.entry(t.entry_date).or_default() += 1;
    }
    for (day, n) in per_day {
        report.max_new_in_a_day = report.max_new_in_a_day.max(n);
        if n > limits.max_new_per_day {
            report.violations.push(Violation {
                rule: "max_positions_per_day".into(),
                detail: format!("{n} trades opened on {day} > {}", limits.max_new_per_day),
            });
        }
    }
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    let tol = limits.slippage_tolerance + 1e-9;
    for t in trades.iter().filter(|t| t.status == TradeStatus::Closed) {
        let Some(reason) = t.exit_reason else {
            report.violations.push(Violation {
                rule: "exit_reason".into(),
                detail: format!("{} is closed without an exit reason", t.trade_id),
            });
            continue;
        };
        *reasons.entry(reason.as_str().to_string()).or_default() += 1;
        let premium = t.entry_premium.to_f64();
        let exit = t.exit_premium.map_or(f64::NAN, Price::to_f64);
        match reason {
            ExitReason::ProfitTarget => {
                let max = (1.0 - limits.profit_target) * premium;
                if exit.is_nan() || exit > max + tol {
                    report.violations.push(Violation {
                        rule: "profit_target".into(),
                        detail: format!(
                            "{}: exit {exit:.4} > {max:.4} (+{:.2} slippage)",
                            t.trade_id, limits.slippage_tolerance
                        ),
                    });
                }
            }
            ExitReason::StopLoss => {
                let min = (1.0 - limits.stop_loss) * premium;
                if exit.is_nan() || exit < min - tol {
                    report.violations.push(Violation {
                        rule: "stop_loss".into(),
                        detail: format!(
                            "{}: exit {exit:.4} < {min:.4} (−{:.2} slippage)",
                            t.trade_id, limits.slippage_tolerance
                        ),
                    });
                }
            }
            ExitReason::TimeExit => {
                let dte = t.exit_date.map(|d| (t.expiration - d).num_days());
                if dte.is_none_or(|d| d > limits.time_exit_dte) {
                    report.violations.push(Violation {
                        rule: "time_exit".into(),
                        detail: format!(
                            "{}: time exit at {dte:?} DTE > {}",
                            t.trade_id, limits.time_exit_dte
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    report.exits_by_reason = reasons.into_iter().collect();
    report
}
