//! Performance metrics of a backtest (or of any period of trading): a pure
//! function, [`summarize`], of the trades and the equity curve.
//!
//! # Inputs
//!
//! * **Trades** — every [`Trade`] of the period, open or closed.
//! * **Equity curve** — one [`EquityPoint`] per session close, in date
//!   order (the engine records them from its [`AccountSnapshot`]s).
//! * **Starting equity** — the net liquidation *before* the first session.
//!   The curve the ratios use is `V₀ = starting equity`, then
//!   `V₁ … Vₙ` = the points' net liquidation, so the first session's gain or
//!   loss counts like any other.
//!
//! # Definitions
//!
//! Trade statistics (only closed trades have an outcome):
//!
//! * **closed / open trades** — by [`TradeStatus`].
//! * **win rate** — closed trades with `profit_loss > 0` ÷ closed trades
//!   (a break-even trade is not a win).
//! * **average ROI** — arithmetic mean of `trade.roi` (P&L ÷ margin at
//!   entry) over closed trades that have one; **average profit %** — the
//!   same for `trade.profit_pct` (P&L ÷ premium received).
//! * **total P&L** — the exact sum, in cents, of every trade's
//!   `profit_loss` (open trades have none yet, so they add nothing).
//!   **Gross profit / gross loss** — the sums of the positive / negative
//!   ones; **profit factor** — gross profit ÷ |gross loss|.
//! * **commissions** — the sum of every trade's commissions, open ones
//!   included (their opening commission is already paid).
//!
//! Equity statistics:
//!
//! * **total return** — `Vₙ / V₀ − 1`.
//! * **CAGR** — `(Vₙ / V₀)^(1 / years) − 1` with `years` = calendar days
//!   between the first and the last equity point ÷ 365.25 (the start has no
//!   date of its own; over a backtest of years the one session this leaves
//!   out of the span does not matter). −100% when `Vₙ ≤ 0`.
//! * **daily returns** — `rᵢ = Vᵢ / Vᵢ₋₁ − 1` for `i = 1 … n` (one per
//!   recorded session). Excess returns `eᵢ = rᵢ − rf / 252`, with `rf` the
//!   annual risk-free rate of [`MetricsParams`] (0 by default: the account's
//!   cash earns nothing in the simulation, so excess over cash is the
//!   return itself).
//! * **annualised volatility** — sample standard deviation (n − 1) of `rᵢ`
//!   × √252.
//! * **Sharpe** — mean(`eᵢ`) ÷ sample standard deviation(`eᵢ`) × √252.
//! * **Sortino** — mean(`eᵢ`) ÷ downside deviation × √252, the downside
//!   deviation being `√(Σ min(eᵢ, 0)² / n)` over all `n` returns (target =
//!   the risk-free rate).
//! * **max drawdown** — with the running peak `Pᵢ = max(V₀ … Vᵢ)`, the
//!   drawdown is `(Pᵢ − Vᵢ) / Pᵢ`, capped to `[0, 1]` (a net liquidation
//!   below zero is a 100% drawdown; a peak ≤ 0 counts as a total loss).
//!   The maximum is the largest such fraction (the first, on ties); its
//!   amount is `Pᵢ − Vᵢ` in money at that point, with the dates of the peak
//!   (`None` = the starting equity), the trough and the first later point
//!   back at or above the peak (`None` = not recovered).
//! * **exposure** — the fraction of equity points with at least one open
//!   position. **Average margin utilization** — the mean of margin used ÷
//!   net liquidation over the points with a positive net liquidation.
//!
//! Breakdowns (closed trades only), each bucket with its count, wins, win
//! rate, mean ROI and total P&L: by exit reason (in [`ExitReason::ALL`]
//! order, non-empty ones), by sector (alphabetical, non-empty ones), by
//! OTM % at entry (`<15%`, `15–16%`, …, `19–20%`, `≥20%`, all seven always
//! listed; lower bound inclusive, with the strategy's 1e-9 tolerance, so
//! an `otm_pct` of 0.17 falls in `17–18%`), by calendar days to expiry at
//! entry (`≤7`, `8–10`, `11–14`, `>14`, always listed). A trade without
//! an exit reason or sector is counted as `unknown`.
//!
//! # Undefined values
//!
//! A ratio whose denominator is zero or missing (no closed trade, fewer
//! than two returns, zero volatility, no losing day, a non-positive
//! starting equity, a non-finite risk-free rate …) is `None`. No field of a
//! [`Summary`] is ever NaN or infinite.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use core_domain::{AccountSnapshot, ExitReason, Money, Trade, TradeStatus};
use serde::{Deserialize, Serialize};

/// Trading sessions in a year, to annualise daily Sharpe, Sortino and
/// volatility (× √252).
pub const SESSIONS_PER_YEAR: f64 = 252.0;

/// Calendar days in a year, for CAGR.
pub const DAYS_PER_YEAR: f64 = 365.25;

/// Tolerance for the OTM bucket boundaries (as in the strategy's rules).
const OTM_TOLERANCE: f64 = 1e-9;

/// The account at one session close: one point of the equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// The session (exchange date) whose close this is.
    pub date: NaiveDate,
    /// Cash plus the market value of all positions.
    pub net_liquidation: Money,
    /// Open option positions at the close.
    pub open_positions: usize,
    /// Initial margin in use at the close.
    pub margin_used: Money,
}

impl EquityPoint {
    /// The point for session `date` from the account snapshot taken at its
    /// close (net liquidation and initial margin) and the number of open
    /// positions. The date is passed in: the snapshot's UTC time need not
    /// fall on the exchange date.
    pub fn from_snapshot(
        date: NaiveDate,
        snapshot: &AccountSnapshot,
        open_positions: usize,
    ) -> Self {
        EquityPoint {
            date,
            net_liquidation: snapshot.net_liquidation,
            open_positions,
            margin_used: snapshot.initial_margin,
        }
    }
}

/// Parameters of [`summarize`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricsParams {
    /// Annual risk-free rate for Sharpe and Sortino (0.04 = 4%); 0 by
    /// default. A non-finite rate leaves both ratios undefined.
    pub risk_free_rate: f64,
}

impl Default for MetricsParams {
    fn default() -> Self {
        MetricsParams {
            risk_free_rate: 0.0,
        }
    }
}

/// The largest drawdown of the equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drawdown {
    /// (peak − trough) ÷ peak, in `[0, 1]`; 0 without a drawdown.
    pub fraction: f64,
    /// peak − trough in money (zero without a drawdown).
    pub amount: Money,
    /// Session of the peak; `None` when the peak is the starting equity (or
    /// there is no drawdown).
    pub peak_date: Option<NaiveDate>,
    /// Session of the trough; `None` without a drawdown.
    pub trough_date: Option<NaiveDate>,
    /// First session after the trough back at or above the peak; `None`
    /// when not recovered by the end (or without a drawdown).
    pub recovery_date: Option<NaiveDate>,
}

impl Drawdown {
    const NONE: Drawdown = Drawdown {
        fraction: 0.0,
        amount: Money::ZERO,
        peak_date: None,
        trough_date: None,
        recovery_date: None,
    };
}

/// Statistics of the closed trades in one bucket of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// What the bucket holds, e.g. `profit_target`, `17–18%`, `8–10`.
    pub label: String,
    /// Closed trades in the bucket.
    pub count: usize,
    /// Of which with `profit_loss > 0`.
    pub wins: usize,
    /// wins ÷ count; `None` for an empty bucket.
    pub win_rate: Option<f64>,
    /// Mean `roi` of its trades that have one; `None` if none has.
    pub mean_roi: Option<f64>,
    /// Exact sum of its trades' `profit_loss`.
    pub total_pnl: Money,
}

/// The performance summary of a period; see the module documentation for
/// every definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Trades with status closed.
    pub closed_trades: usize,
    /// Trades still open.
    pub open_trades: usize,
    /// Closed trades with `profit_loss > 0`.
    pub wins: usize,
    /// Closed trades with `profit_loss < 0`.
    pub losses: usize,
    /// wins ÷ closed trades.
    pub win_rate: Option<f64>,
    /// Mean `roi` (P&L ÷ margin at entry) of the closed trades.
    pub avg_roi: Option<f64>,
    /// Mean `profit_pct` (P&L ÷ premium received) of the closed trades.
    pub avg_profit_pct: Option<f64>,
    /// Mean `days_held` of the closed trades.
    pub avg_days_held: Option<f64>,
    /// Exact sum of every trade's `profit_loss`.
    pub total_pnl: Money,
    /// Sum of the positive `profit_loss`es.
    pub gross_profit: Money,
    /// Sum of the negative `profit_loss`es (≤ 0).
    pub gross_loss: Money,
    /// gross profit ÷ |gross loss|; `None` without a loss.
    pub profit_factor: Option<f64>,
    /// Sum of every trade's commissions, open trades included.
    pub total_commissions: Money,
    /// Net liquidation before the first session (`V₀`).
    pub starting_equity: Money,
    /// Net liquidation at the last equity point (`Vₙ`).
    pub final_equity: Option<Money>,
    /// Vₙ ÷ V₀ − 1.
    pub total_return: Option<f64>,
    /// Compound annual growth rate over the calendar span of the curve.
    pub cagr: Option<f64>,
    /// Equity points (sessions) in the curve.
    pub sessions: usize,
    /// First equity point's date.
    pub first_date: Option<NaiveDate>,
    /// Last equity point's date.
    pub last_date: Option<NaiveDate>,
    /// The annual risk-free rate used for Sharpe and Sortino (`None` if the
    /// one given was not finite).
    pub risk_free_rate: Option<f64>,
    /// Sample standard deviation of daily returns × √252.
    pub annualized_volatility: Option<f64>,
    /// Annualised Sharpe ratio of daily excess returns.
    pub sharpe: Option<f64>,
    /// Annualised Sortino ratio of daily excess returns.
    pub sortino: Option<f64>,
    /// The largest drawdown.
    pub max_drawdown: Drawdown,
    /// Fraction of sessions with at least one open position.
    pub exposure: Option<f64>,
    /// Mean of margin used ÷ net liquidation over the sessions.
    pub avg_margin_utilization: Option<f64>,
    /// Closed trades by exit reason.
    pub by_exit_reason: Vec<Bucket>,
    /// Closed trades by sector.
    pub by_sector: Vec<Bucket>,
    /// Closed trades by OTM % at entry.
    pub by_otm: Vec<Bucket>,
    /// Closed trades by calendar days to expiry at entry.
    pub by_dte: Vec<Bucket>,
}

/// Labels of the OTM buckets, in order (see [`otm_bucket`]).
pub const OTM_BUCKETS: [&str; 7] = [
    "<15%", "15–16%", "16–17%", "17–18%", "18–19%", "19–20%", "≥20%",
];

/// Labels of the DTE buckets, in order (see [`dte_bucket`]).
pub const DTE_BUCKETS: [&str; 4] = ["≤7", "8–10", "11–14", ">14"];

/// Label of a trade without an exit reason or sector, or with a
/// non-finite OTM %.
pub const UNKNOWN: &str = "unknown";

/// The index in [`OTM_BUCKETS`] of an OTM fraction (0.17 = 17%), or `None`
/// when it is not a finite number. Lower bounds are inclusive, with a
/// 1e-9 tolerance.
pub fn otm_bucket(otm_pct: f64) -> Option<usize> {
    if !otm_pct.is_finite() {
        return None;
    }
    let whole_percent = ((otm_pct + OTM_TOLERANCE) * 100.0).floor();
    Some(if whole_percent < 15.0 {
        0
    } else if whole_percent >= 20.0 {
        6
    } else {
        // 15..=19 → 1..=5
        (whole_percent as usize) - 14
    })
}

/// The index in [`DTE_BUCKETS`] of calendar days to expiry at entry.
pub fn dte_bucket(dte: i64) -> usize {
    match dte {
        i64::MIN..=7 => 0,
        8..=10 => 1,
        11..=14 => 2,
        _ => 3,
    }
}

/// Computes the [`Summary`] of `trades` and the equity curve (`equity`,
/// one point per session close in date order, after `starting_equity`).
/// Pure; empty inputs give a summary with zero counts and `None` ratios.
pub fn summarize(
    trades: &[Trade],
    equity: &[EquityPoint],
    starting_equity: Money,
    params: &MetricsParams,
) -> Summary {
    let closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed)
        .collect();
    let open_trades = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Open)
        .count();
    let pnls: Vec<Money> = trades.iter().filter_map(|t| t.profit_loss).collect();
    let total_pnl: Money = pnls.iter().copied().sum();
    let gross_profit: Money = pnls.iter().copied().filter(|p| p.cents() > 0).sum();
    let gross_loss: Money = pnls.iter().copied().filter(|p| p.cents() < 0).sum();
    let profit_factor = if gross_loss.cents() < 0 {
        finite(gross_profit.cents() as f64 / gross_loss.cents().unsigned_abs() as f64)
    } else {
        None
    };
    let wins = closed.iter().filter(|t| is_win(t)).count();
    let losses = closed
        .iter()
        .filter(|t| t.profit_loss.is_some_and(|p| p.cents() < 0))
        .count();

    let values: Vec<i64> = std::iter::once(starting_equity.cents())
        .chain(equity.iter().map(|p| p.net_liquidation.cents()))
        .collect();
    let final_equity = equity.last().map(|p| p.net_liquidation);
    let total_return = final_equity.and_then(|f| ratio_minus_one(f, starting_equity));
    let first_date = equity.first().map(|p| p.date);
    let last_date = equity.last().map(|p| p.date);
    let cagr = match (first_date, last_date, final_equity) {
        (Some(a), Some(b), Some(f)) => cagr(starting_equity, f, (b - a).num_days()),
        _ => None,
    };

    let rf = finite(params.risk_free_rate);
    let returns = daily_returns(&values);
    let (annualized_volatility, sharpe, sortino) = match &returns {
        Some(r) => risk_ratios(r, rf),
        None => (None, None, None),
    };

    Summary {
        closed_trades: closed.len(),
        open_trades,
        wins,
        losses,
        win_rate: fraction(wins, closed.len()),
        avg_roi: mean(closed.iter().filter_map(|t| t.roi)),
        avg_profit_pct: mean(closed.iter().filter_map(|t| t.profit_pct)),
        avg_days_held: mean(closed.iter().filter_map(|t| t.days_held.map(|d| d as f64))),
        total_pnl,
        gross_profit,
        gross_loss,
        profit_factor,
        total_commissions: trades.iter().map(|t| t.commissions).sum(),
        starting_equity,
        final_equity,
        total_return,
        cagr,
        sessions: equity.len(),
        first_date,
        last_date,
        risk_free_rate: rf,
        annualized_volatility,
        sharpe,
        sortino,
        max_drawdown: max_drawdown(starting_equity, equity),
        exposure: fraction(
            equity.iter().filter(|p| p.open_positions > 0).count(),
            equity.len(),
        ),
        avg_margin_utilization: mean(
            equity
                .iter()
                .filter(|p| p.net_liquidation.cents() > 0)
                .map(|p| p.margin_used.cents() as f64 / p.net_liquidation.cents() as f64),
        ),
        by_exit_reason: by_exit_reason(&closed),
        by_sector: by_sector(&closed),
        by_otm: by_otm(&closed),
        by_dte: by_dte(&closed),
    }
}

/// The drawdown, in `[0, 1]`, at each equity point (the running peak
/// includes `starting_equity`), for the drawdown chart.
pub fn drawdown_curve(starting_equity: Money, equity: &[EquityPoint]) -> Vec<(NaiveDate, f64)> {
    let mut peak = starting_equity.cents();
    equity
        .iter()
        .map(|p| {
            peak = peak.max(p.net_liquidation.cents());
            (p.date, drawdown_fraction(peak, p.net_liquidation.cents()))
        })
        .collect()
}

/// The largest drawdown of `starting_equity` followed by `equity` (see the
/// module documentation).
pub fn max_drawdown(starting_equity: Money, equity: &[EquityPoint]) -> Drawdown {
    let mut peak = starting_equity.cents();
    let mut peak_date: Option<NaiveDate> = None;
    let mut worst = Drawdown::NONE;
    let mut worst_peak = peak;
    let mut trough_index = None;
    for (i, p) in equity.iter().enumerate() {
        let v = p.net_liquidation.cents();
        if v > peak {
            peak = v;
            peak_date = Some(p.date);
        }
        let dd = drawdown_fraction(peak, v);
        if dd > worst.fraction {
            worst = Drawdown {
                fraction: dd,
                amount: Money::from_cents(peak - v),
                peak_date,
                trough_date: Some(p.date),
                recovery_date: None,
            };
            worst_peak = peak;
            trough_index = Some(i);
        }
    }
    if let Some(t) = trough_index {
        worst.recovery_date = equity[t + 1..]
            .iter()
            .find(|p| p.net_liquidation.cents() >= worst_peak)
            .map(|p| p.date);
    }
    worst
}

/// (peak − value) ÷ peak, capped to `[0, 1]`; a peak ≤ 0 below which the
/// value fell is a total loss.
fn drawdown_fraction(peak: i64, value: i64) -> f64 {
    if value >= peak {
        0.0
    } else if peak <= 0 {
        1.0
    } else {
        ((peak - value) as f64 / peak as f64).clamp(0.0, 1.0)
    }
}

fn is_win(t: &Trade) -> bool {
    t.profit_loss.is_some_and(|p| p.cents() > 0)
}

/// `Some(x)` when `x` is finite.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn fraction(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Arithmetic mean of the finite values; `None` if there is none.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { None } else { finite(sum / n as f64) }
}

fn ratio_minus_one(value: Money, base: Money) -> Option<f64> {
    if base.cents() <= 0 {
        return None;
    }
    finite(value.cents() as f64 / base.cents() as f64 - 1.0)
}

fn cagr(start: Money, end: Money, days: i64) -> Option<f64> {
    if start.cents() <= 0 || days <= 0 {
        return None;
    }
    if end.cents() <= 0 {
        return Some(-1.0);
    }
    let years = days as f64 / DAYS_PER_YEAR;
    finite((end.cents() as f64 / start.cents() as f64).powf(1.0 / years) - 1.0)
}

/// `Vᵢ / Vᵢ₋₁ − 1`; `None` if a base is not positive.
fn daily_returns(values: &[i64]) -> Option<Vec<f64>> {
    values
        .windows(2)
        .map(|w| (w[0] > 0).then(|| w[1] as f64 / w[0] as f64 - 1.0))
        .collect()
}

/// (annualised volatility, Sharpe, Sortino) of daily returns.
fn risk_ratios(returns: &[f64], rf: Option<f64>) -> (Option<f64>, Option<f64>, Option<f64>) {
    let n = returns.len();
    if n < 2 {
        return (None, None, None);
    }
    let annualize = SESSIONS_PER_YEAR.sqrt();
    let sd = |xs: &[f64]| {
        let m = xs.iter().sum::<f64>() / n as f64;
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let sd_r = sd(returns);
    let volatility = finite(sd_r * annualize);
    let Some(rf) = rf else {
        return (volatility, None, None);
    };
    let excess: Vec<f64> = returns.iter().map(|r| r - rf / SESSIONS_PER_YEAR).collect();
    let mean_excess = excess.iter().sum::<f64>() / n as f64;
    let sd_e = sd(&excess);
    let sharpe = if sd_e > 0.0 {
        finite(mean_excess / sd_e * annualize)
    } else {
        None
    };
    let downside = (excess.iter().map(|e| e.min(0.0).powi(2)).sum::<f64>() / n as f64).sqrt();
    let sortino = if downside > 0.0 {
        finite(mean_excess / downside * annualize)
    } else {
        None
    };
    (volatility, sharpe, sortino)
}

fn bucket(label: &str, trades: &[&Trade]) -> Bucket {
    let wins = trades.iter().filter(|t| is_win(t)).count();
    Bucket {
        label: label.to_string(),
        count: trades.len(),
        wins,
        win_rate: fraction(wins, trades.len()),
        mean_roi: mean(trades.iter().filter_map(|t| t.roi)),
        total_pnl: trades.iter().filter_map(|t| t.profit_loss).sum(),
    }
}

fn by_exit_reason(closed: &[&Trade]) -> Vec<Bucket> {
    let known = ExitReason::ALL.iter().map(|&reason| {
        let ts: Vec<&Trade> = closed
            .iter()
            .copied()
            .filter(|t| t.exit_reason == Some(reason))
            .collect();
        bucket(reason.as_str(), &ts)
    });
    let unknown: Vec<&Trade> = closed
        .iter()
        .copied()
        .filter(|t| t.exit_reason.is_none())
        .collect();
    known
        .chain(std::iter::once(bucket(UNKNOWN, &unknown)))
        .filter(|b| b.count > 0)
        .collect()
}

fn by_sector(closed: &[&Trade]) -> Vec<Bucket> {
    let mut groups: BTreeMap<&str, Vec<&Trade>> = BTreeMap::new();
    for t in closed {
        groups
            .entry(t.sector.as_deref().unwrap_or(UNKNOWN))
            .or_default()
            .push(t);
    }
    groups.iter().map(|(label, ts)| bucket(label, ts)).collect()
}

fn by_otm(closed: &[&Trade]) -> Vec<Bucket> {
    let mut groups: Vec<Vec<&Trade>> = vec![Vec::new(); OTM_BUCKETS.len()];
    let mut unknown = Vec::new();
    for t in closed {
        match otm_bucket(t.otm_pct) {
            Some(i) => groups[i].push(*t),
            None => unknown.push(*t),
        }
    }
    let mut out: Vec<Bucket> = OTM_BUCKETS
        .iter()
        .zip(&groups)
        .map(|(label, ts)| bucket(label, ts))
        .collect();
    if !unknown.is_empty() {
        out.push(bucket(UNKNOWN, &unknown));
    }
    out
}

fn by_dte(closed: &[&Trade]) -> Vec<Bucket> {
    let mut groups: Vec<Vec<&Trade>> = vec![Vec::new(); DTE_BUCKETS.len()];
    for t in closed {
        groups[dte_bucket(t.dte)].push(*t);
    }
    DTE_BUCKETS
        .iter()
        .zip(&groups)
        .map(|(label, ts)| bucket(label, ts))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use core_domain::stubs::{date, open_trade};
    use core_domain::{Price, TradeExit};
    use proptest::prelude::*;

    fn close(
        mut t: Trade,
        id: &str,
        exit_cents: i64,
        reason: ExitReason,
        sector: Option<&str>,
    ) -> Trade {
        t.trade_id = id.into();
        t.sector = sector.map(str::to_string);
        t.close(TradeExit {
            time: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            date: date(2024, 1, 12),
            exit_premium: Price::from_cents(exit_cents),
            reason,
            commission: Money::from_cents(325),
        })
        .unwrap();
        t
    }

    fn point(d: u32, dollars: i64, open_positions: usize, margin_dollars: i64) -> EquityPoint {
        EquityPoint {
            date: date(2024, 1, d),
            net_liquidation: Money::from_dollars(dollars),
            open_positions,
            margin_used: Money::from_dollars(margin_dollars),
        }
    }

    fn close_to(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    /// V = 100, 110, 99, 104.5, 121, 115 (starting equity first).
    fn curve() -> Vec<EquityPoint> {
        vec![
            point(2, 110_000, 1, 20_000),
            point(3, 99_000, 2, 30_000),
            point(4, 104_500, 0, 0),
            point(5, 121_000, 1, 11_000),
            point(8, 115_000, 1, 23_000),
        ]
    }

    #[test]
    fn test_empty_inputs_give_zero_counts_and_no_ratios() {
        let s = summarize(
            &[],
            &[],
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        assert_eq!(s.closed_trades, 0);
        assert_eq!(s.open_trades, 0);
        assert_eq!(s.total_pnl, Money::ZERO);
        assert_eq!(s.win_rate, None);
        assert_eq!(s.avg_roi, None);
        assert_eq!(s.profit_factor, None);
        assert_eq!(s.final_equity, None);
        assert_eq!(s.total_return, None);
        assert_eq!(s.cagr, None);
        assert_eq!(s.sharpe, None);
        assert_eq!(s.sortino, None);
        assert_eq!(s.exposure, None);
        assert_eq!(s.max_drawdown, Drawdown::NONE);
        assert!(s.by_exit_reason.is_empty() && s.by_sector.is_empty());
        assert_eq!(s.by_otm.len(), 7);
        assert_eq!(s.by_dte.len(), 4);
        assert!(
            s.by_otm
                .iter()
                .all(|b| b.count == 0 && b.win_rate.is_none())
        );
        // serialises without NaN (serde_json would write null for NaN)
        let text = format!("{s:?}");
        assert!(!text.contains("NaN") && !text.contains("inf"));
    }

    #[test]
    fn test_five_point_curve_drawdown_return_and_exposure_by_hand() {
        let s = summarize(
            &[],
            &curve(),
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        // peak 110,000 on Jan 2, trough 99,000 on Jan 3: 11,000 = 10%;
        // back above 110,000 on Jan 5.
        assert_eq!(
            s.max_drawdown,
            Drawdown {
                fraction: 0.1,
                amount: Money::from_dollars(11_000),
                peak_date: Some(date(2024, 1, 2)),
                trough_date: Some(date(2024, 1, 3)),
                recovery_date: Some(date(2024, 1, 5)),
            }
        );
        assert_eq!(s.final_equity, Some(Money::from_dollars(115_000)));
        assert!(close_to(s.total_return, 0.15));
        // 6 days from Jan 2 to Jan 8: 1.15^(365.25/6) − 1
        assert!(close_to(s.cagr, 1.15f64.powf(365.25 / 6.0) - 1.0));
        assert_eq!(s.sessions, 5);
        // 4 of 5 sessions with a position
        assert!(close_to(s.exposure, 0.8));
        // margin / net liq: 2/11, 30/99, 0, 11/121, 23/115
        let util = (20.0 / 110.0 + 30.0 / 99.0 + 0.0 + 11.0 / 121.0 + 23.0 / 115.0) / 5.0;
        assert!(close_to(s.avg_margin_utilization, util));
        let dd = drawdown_curve(Money::from_dollars(100_000), &curve());
        let expected = [0.0, 0.1, 0.05, 0.0, 6.0 / 121.0];
        for ((_, got), want) in dd.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn test_sharpe_and_sortino_match_hand_computation() {
        // returns 0.10, −0.10, ≈0.0555556, ≈0.1578947, ≈−0.0495868; values
        // checked in Python 3.11 (statistics.mean / statistics.stdev):
        //   sharpe  = mean/stdev*sqrt(252)                 = 4.8992150096330125
        //   sortino = mean/sqrt(sum(min(r,0)^2)/5)*sqrt(252) = 10.422180368063911
        //   vol     = stdev*sqrt(252)                      = 1.6857233591268226
        let s = summarize(
            &[],
            &curve(),
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        let r = [
            0.1,
            -0.1,
            104_500.0 / 99_000.0 - 1.0,
            121_000.0 / 104_500.0 - 1.0,
            115_000.0 / 121_000.0 - 1.0,
        ];
        let m = r.iter().sum::<f64>() / 5.0;
        let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 4.0).sqrt();
        let dd = ((0.1f64.powi(2) + r[4].powi(2)) / 5.0).sqrt();
        assert!((s.sharpe.unwrap() - m / sd * 252f64.sqrt()).abs() < 1e-9);
        assert!((s.sortino.unwrap() - m / dd * 252f64.sqrt()).abs() < 1e-9);
        assert!((s.sharpe.unwrap() - 4.8992150096330125).abs() < 1e-9);
        assert!((s.sortino.unwrap() - 10.422180368063911).abs() < 1e-9);
        assert!((s.annualized_volatility.unwrap() - 1.6857233591268226).abs() < 1e-9);
        // a 252% risk-free rate takes 1% a day off every return
        let with_rf = summarize(
            &[],
            &curve(),
            Money::from_dollars(100_000),
            &MetricsParams {
                risk_free_rate: 2.52,
            },
        );
        assert!((with_rf.sharpe.unwrap() - (m - 0.01) / sd * 252f64.sqrt()).abs() < 1e-9);
        let bad_rf = summarize(
            &[],
            &curve(),
            Money::from_dollars(100_000),
            &MetricsParams {
                risk_free_rate: f64::NAN,
            },
        );
        assert_eq!(
            (bad_rf.risk_free_rate, bad_rf.sharpe, bad_rf.sortino),
            (None, None, None)
        );
    }

    #[test]
    fn test_flat_or_rising_curve_has_no_sharpe_or_sortino_denominator() {
        let flat = [point(2, 100_000, 0, 0), point(3, 100_000, 0, 0)];
        let s = summarize(
            &[],
            &flat,
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        assert_eq!((s.sharpe, s.sortino), (None, None));
        assert_eq!(s.max_drawdown.fraction, 0.0);
        assert!(close_to(s.total_return, 0.0));
        let rising = [point(2, 101_000, 0, 0), point(3, 103_000, 0, 0)];
        let s = summarize(
            &[],
            &rising,
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        assert!(s.sharpe.is_some());
        assert_eq!(s.sortino, None);
    }

    #[test]
    fn test_drawdown_from_starting_equity_has_no_peak_date_and_negative_equity_is_total_loss() {
        let pts = [point(2, 90_000, 1, 0), point(3, -5_000, 1, 0)];
        let s = summarize(
            &[],
            &pts,
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        assert_eq!(s.max_drawdown.fraction, 1.0);
        assert_eq!(s.max_drawdown.amount, Money::from_dollars(105_000));
        assert_eq!(s.max_drawdown.peak_date, None);
        assert_eq!(s.max_drawdown.trough_date, Some(date(2024, 1, 3)));
        assert_eq!(s.max_drawdown.recovery_date, None);
        assert_eq!(s.cagr, Some(-1.0));
        // a return from a non-positive base is undefined
        let pts = [point(2, -1, 0, 0), point(3, 5, 0, 0), point(4, 6, 0, 0)];
        let s = summarize(
            &[],
            &pts,
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        assert_eq!((s.sharpe, s.annualized_volatility), (None, None));
    }

    #[test]
    fn test_trade_statistics_and_breakdowns_by_hand() {
        // open_trade: 5 × $0.40 = $200 premium, $3.25 commission each side
        // win:   exit 0.20 → 200 − 100 − 6.50 =   93.50
        // loss:  exit 1.20 → 200 − 600 − 6.50 = −406.50
        // other: exit 0.39 → 200 − 195 − 6.50 =   −1.50
        let win = close(
            open_trade(),
            "W",
            20,
            ExitReason::ProfitTarget,
            Some("Tech"),
        );
        let mut loss = close(open_trade(), "L", 120, ExitReason::StopLoss, Some("Energy"));
        loss.otm_pct = 0.17;
        loss.dte = 14;
        let mut other = close(open_trade(), "O", 39, ExitReason::TimeExit, None);
        other.otm_pct = 0.25;
        other.dte = 7;
        let mut still_open = open_trade();
        still_open.trade_id = "OPEN".into();
        let trades = vec![win, loss, other, still_open];
        let s = summarize(
            &trades,
            &[],
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        assert_eq!((s.closed_trades, s.open_trades), (3, 1));
        assert_eq!((s.wins, s.losses), (1, 2));
        assert!(close_to(s.win_rate, 1.0 / 3.0));
        assert_eq!(s.total_pnl, Money::from_cents(9_350 - 40_650 - 150));
        assert_eq!(s.gross_profit, Money::from_cents(9_350));
        assert_eq!(s.gross_loss, Money::from_cents(-40_800));
        assert!(close_to(s.profit_factor, 9_350.0 / 40_800.0));
        // 3 × 6.50 + 3.25 for the open trade
        assert_eq!(s.total_commissions, Money::from_cents(2_275));
        let roi = (9_350.0 - 40_650.0 - 150.0) / 750_000.0 / 3.0;
        assert!(close_to(s.avg_roi, roi));
        let pct = (9_350.0 - 40_650.0 - 150.0) / 20_000.0 / 3.0;
        assert!(close_to(s.avg_profit_pct, pct));
        assert!(close_to(s.avg_days_held, 3.0));

        let labels = |bs: &[Bucket]| {
            bs.iter()
                .map(|b| (b.label.clone(), b.count))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(&s.by_exit_reason),
            vec![
                ("profit_target".to_string(), 1),
                ("stop_loss".to_string(), 1),
                ("time_exit".to_string(), 1)
            ]
        );
        assert_eq!(
            labels(&s.by_sector),
            vec![
                ("Energy".to_string(), 1),
                ("Tech".to_string(), 1),
                ("unknown".to_string(), 1)
            ]
        );
        // otm 1/6 → 16–17%, 0.17 → 17–18%, 0.25 → ≥20%
        let otm: Vec<usize> = s.by_otm.iter().map(|b| b.count).collect();
        assert_eq!(otm, vec![0, 0, 1, 1, 0, 0, 1]);
        // dte 10 → 8–10, 14 → 11–14, 7 → ≤7
        let dte: Vec<usize> = s.by_dte.iter().map(|b| b.count).collect();
        assert_eq!(dte, vec![1, 1, 1, 0]);
        let stop = &s.by_exit_reason[1];
        assert_eq!(stop.total_pnl, Money::from_cents(-40_650));
        assert_eq!(stop.win_rate, Some(0.0));
        assert!(close_to(stop.mean_roi, -40_650.0 / 750_000.0));
    }

    #[test]
    fn test_otm_and_dte_bucket_boundaries() {
        assert_eq!(otm_bucket(0.1499), Some(0));
        assert_eq!(otm_bucket(0.15), Some(1));
        assert_eq!(otm_bucket(0.16), Some(2));
        assert_eq!(otm_bucket(0.17), Some(3));
        assert_eq!(otm_bucket(0.18), Some(4));
        assert_eq!(otm_bucket(0.19), Some(5));
        assert_eq!(otm_bucket(0.1999), Some(5));
        assert_eq!(otm_bucket(0.20), Some(6));
        assert_eq!(otm_bucket(-0.3), Some(0));
        assert_eq!(otm_bucket(f64::NAN), None);
        assert_eq!([7, 8, 10, 11, 14, 15].map(dte_bucket), [0, 1, 1, 2, 2, 3]);
    }

    #[test]
    fn test_equity_point_from_snapshot_takes_net_liq_and_initial_margin() {
        let snap = AccountSnapshot {
            time: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            account: "DU1".into(),
            net_liquidation: Money::from_dollars(100_000),
            cash: Money::from_dollars(100_200),
            excess_liquidity: Money::from_dollars(90_000),
            initial_margin: Money::from_dollars(7_500),
            maintenance_margin: Money::from_dollars(7_000),
            realized_pnl: Money::ZERO,
            unrealized_pnl: Money::from_dollars(-200),
        };
        let p = EquityPoint::from_snapshot(date(2024, 1, 9), &snap, 1);
        assert_eq!(p, point(9, 100_000, 1, 7_500));
    }

    fn arb_trade() -> impl Strategy<Value = Trade> {
        (
            -10_000_000i64..10_000_000,
            any::<bool>(),
            0.0f64..0.4,
            0i64..30,
            proptest::option::of(-1.0f64..1.0),
        )
            .prop_map(|(pl, closed, otm, dte, roi)| {
                let mut t = open_trade();
                t.otm_pct = otm;
                t.dte = dte;
                if closed {
                    t.status = TradeStatus::Closed;
                    t.profit_loss = Some(Money::from_cents(pl));
                    t.roi = roi;
                    t.exit_reason = Some(ExitReason::ALL[(pl.unsigned_abs() % 8) as usize]);
                }
                t
            })
    }

    proptest! {
        #[test]
        fn prop_drawdown_in_unit_interval_and_total_pnl_exact(
            trades in proptest::collection::vec(arb_trade(), 0..40),
            start in -1_000_000i64..100_000_000,
            values in proptest::collection::vec((-50_000_000i64..200_000_000, 0usize..5), 0..60),
        ) {
            let equity: Vec<EquityPoint> = values
                .iter()
                .enumerate()
                .map(|(i, &(v, n))| EquityPoint {
                    date: date(2020, 1, 1) + chrono::Days::new(i as u64),
                    net_liquidation: Money::from_cents(v),
                    open_positions: n,
                    margin_used: Money::from_cents(v.abs() / 3),
                })
                .collect();
            let s = summarize(&trades, &equity, Money::from_cents(start), &MetricsParams::default());
            prop_assert!((0.0..=1.0).contains(&s.max_drawdown.fraction));
            prop_assert!(s.max_drawdown.amount.cents() >= 0);
            for (_, dd) in drawdown_curve(Money::from_cents(start), &equity) {
                prop_assert!((0.0..=1.0).contains(&dd));
                prop_assert!(dd <= s.max_drawdown.fraction);
            }
            let exact: i64 = trades.iter().filter_map(|t| t.profit_loss).map(Money::cents).sum();
            prop_assert_eq!(s.total_pnl.cents(), exact);
            prop_assert_eq!(s.gross_profit + s.gross_loss, s.total_pnl);
            let closed = trades.iter().filter(|t| t.status == TradeStatus::Closed).count();
            prop_assert_eq!(s.by_dte.iter().map(|b| b.count).sum::<usize>(), closed);
            prop_assert_eq!(s.by_otm.iter().map(|b| b.count).sum::<usize>(), closed);
            prop_assert_eq!(s.by_exit_reason.iter().map(|b| b.total_pnl).sum::<Money>(), s.total_pnl);
            for x in [s.win_rate, s.avg_roi, s.total_return, s.cagr, s.sharpe, s.sortino,
                      s.annualized_volatility, s.exposure, s.avg_margin_utilization, s.profit_factor]
                .into_iter()
                .flatten()
            {
                prop_assert!(x.is_finite());
            }
        }
    }
}
