//! What the objective is asked (a parameter set on a window) and what it
//! answers (an [`Evaluation`]), and how an answer becomes one score.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::deflated::varies;
use super::error::{OptimizerError, OptimizerResult};
use super::space::{ParameterSet, render};

/// Trading sessions in a year, to annualise the Sharpe ratio of daily
/// returns (× √252), as the backtest summary does.
pub const SESSIONS_PER_YEAR: f64 = 252.0;

/// A period of history, `[from, to)`: `from` included, `to` excluded, so
/// consecutive windows share no day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// First day (included).
    pub from: NaiveDate,
    /// First day after the window (excluded).
    pub to: NaiveDate,
}

impl Window {
    /// The window `[from, to)`; `from` must be before `to`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> OptimizerResult<Self> {
        let window = Window { from, to };
        if from < to {
            Ok(window)
        } else {
            Err(OptimizerError::InvalidWindow {
                window,
                what: "it is empty: `from` must be before `to` (the end is excluded)".into(),
            })
        }
    }

    /// Calendar days in the window.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days()
    }

    /// Whether `date` lies in the window.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && date < self.to
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.from, self.to)
    }
}

/// What the objective reports for one parameter set on one window — the
/// backtest summary's numbers the optimizer uses
/// (`orchestrator::metrics::Summary` defines them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean ROI (P&L ÷ margin) of the closed trades; 0 without one.
    pub roi_mean: f64,
    /// Final ÷ starting equity − 1.
    pub total_return: f64,
    /// Largest peak-to-trough fall of equity as a fraction of the peak, in [0, 1].
    pub max_drawdown: f64,
    /// Winning closed trades ÷ closed trades, in [0, 1]; 0 without one.
    pub win_rate: f64,
    /// Annualised Sharpe ratio of the daily returns; `None` when undefined
    /// (fewer than two returns, no variation).
    pub sharpe: Option<f64>,
    /// Closed trades.
    pub trades: usize,
    /// One return per session, `Vᵢ / Vᵢ₋₁ − 1`, in date order (the deflated
    /// Sharpe ratio and the walk-forward's stitched out-of-sample curve use
    /// them).
    pub daily_returns: Vec<f64>,
}

impl Evaluation {
    /// An evaluation whose equity numbers come from `daily_returns` as the
    /// backtest summary defines them (equity starts at 1): total return
    /// `Π(1 + rᵢ) − 1`, max drawdown of the compounded curve, Sharpe =
    /// mean ÷ sample standard deviation × √252.
    pub fn from_daily_returns(
        daily_returns: Vec<f64>,
        trades: usize,
        roi_mean: f64,
        win_rate: f64,
    ) -> Self {
        let curve = CurveStats::of(&daily_returns);
        Evaluation {
            roi_mean,
            total_return: curve.total_return,
            max_drawdown: curve.max_drawdown,
            win_rate,
            sharpe: per_period_sharpe(&daily_returns).map(|s| s * SESSIONS_PER_YEAR.sqrt()),
            trades,
            daily_returns,
        }
    }

    /// The evaluations of consecutive windows as one: returns concatenated
    /// (and the equity numbers recomputed from them when there are any;
    /// without returns, total returns compound and the drawdown is the
    /// largest), trades summed, mean ROI and win rate weighted by trades.
    pub fn stitch(parts: &[Evaluation]) -> Evaluation {
        let daily_returns: Vec<f64> = parts
            .iter()
            .flat_map(|p| p.daily_returns.iter().copied())
            .collect();
        let trades: usize = parts.iter().map(|p| p.trades).sum();
        let weighted = |field: fn(&Evaluation) -> f64| {
            if trades == 0 {
                0.0
            } else {
                parts
                    .iter()
                    .map(|p| field(p) * p.trades as f64)
                    .sum::<f64>()
                    / trades as f64
            }
        };
        let roi_mean = weighted(|p| p.roi_mean);
        let win_rate = weighted(|p| p.win_rate);
        if daily_returns.is_empty() {
            return Evaluation {
                roi_mean,
                total_return: parts.iter().map(|p| 1.0 + p.total_return).product::<f64>() - 1.0,
                max_drawdown: parts.iter().map(|p| p.max_drawdown).fold(0.0, f64::max),
                win_rate,
                sharpe: None,
                trades,
                daily_returns,
            };
        }
        Evaluation::from_daily_returns(daily_returns, trades, roi_mean, win_rate)
    }

    /// Refuses non-finite numbers, a drawdown outside [0, 1] and a win
    /// rate outside [0, 1].
    pub(crate) fn check(&self, parameters: &ParameterSet, window: Window) -> OptimizerResult<()> {
        let invalid = |field: String, value: f64, requirement| {
            Err(OptimizerError::InvalidEvaluation {
                field,
                value: value.to_string(),
                requirement,
                parameters: render(parameters),
                window,
            })
        };
        for (field, value) in [
            ("roi_mean", self.roi_mean),
            ("total_return", self.total_return),
            ("sharpe", self.sharpe.unwrap_or(0.0)),
        ] {
            if !value.is_finite() {
                return invalid(field.into(), value, "it must be finite");
            }
        }
        if !(0.0..=1.0).contains(&self.max_drawdown) {
            return invalid(
                "max_drawdown".into(),
                self.max_drawdown,
                "it must be a fraction in [0, 1]",
            );
        }
        if !(0.0..=1.0).contains(&self.win_rate) {
            return invalid(
                "win_rate".into(),
                self.win_rate,
                "it must be a fraction in [0, 1]",
            );
        }
        if let Some((index, &value)) = self
            .daily_returns
            .iter()
            .enumerate()
            .find(|(_, r)| !r.is_finite())
        {
            return invalid(
                format!("daily_returns[{index}]"),
                value,
                "it must be finite",
            );
        }
        Ok(())
    }
}

/// The objective: runs a backtest of `parameters` over `window` and
/// reports its [`Evaluation`]. The caller (`trader-cli optimize`) supplies
/// it; any `Fn(&ParameterSet, Window) -> Result<Evaluation, String> + Sync`
/// closure is one.
///
/// It must be a deterministic function of its arguments (the simulated
/// market is: same seed, same market): the optimizer caches answers and
/// calls it from several threads at once. The parameter sets it receives
/// always hold every dimension of the space, within bounds and on the grid.
pub trait Objective: Sync {
    /// Backtests `parameters` over `window`; an `Err` says why it could not
    /// (it ends the search with [`OptimizerError::Objective`]).
    fn evaluate(&self, parameters: &ParameterSet, window: Window) -> Result<Evaluation, String>;
}

impl<F> Objective for F
where
    F: Fn(&ParameterSet, Window) -> Result<Evaluation, String> + Sync,
{
    fn evaluate(&self, parameters: &ParameterSet, window: Window) -> Result<Evaluation, String> {
        self(parameters, window)
    }
}

/// Score of an evaluation with fewer trades than
/// [`Scalarization::min_trades`], minus the shortfall (so the search still
/// sees which way more trades lie). Far below any feasible score.
pub const INFEASIBLE_SCORE: f64 = -1_000.0;

/// How an [`Evaluation`] becomes the one number Nelder-Mead maximizes:
///
/// `score = sharpe·Sharpe + total_return·total return + roi_mean·mean ROI
///  + win_rate·win rate − max_drawdown·max drawdown`
///
/// with an undefined Sharpe ratio counted as 0, and [`INFEASIBLE_SCORE`]
/// − (min_trades − trades) when the window had fewer than `min_trades`
/// closed trades. The default maximizes the annualised Sharpe ratio less
/// the max drawdown (a 20% drawdown costs 0.2 of Sharpe).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scalarization {
    /// Weight of the annualised Sharpe ratio.
    pub sharpe: f64,
    /// Weight of the total return.
    pub total_return: f64,
    /// Weight of the mean ROI per trade.
    pub roi_mean: f64,
    /// Weight of the win rate.
    pub win_rate: f64,
    /// Penalty per unit of max drawdown (subtracted).
    pub max_drawdown: f64,
    /// Fewest closed trades for a feasible evaluation.
    pub min_trades: usize,
}

impl Default for Scalarization {
    fn default() -> Self {
        Scalarization {
            sharpe: 1.0,
            total_return: 0.0,
            roi_mean: 0.0,
            win_rate: 0.0,
            max_drawdown: 1.0,
            min_trades: 10,
        }
    }
}

impl Scalarization {
    /// The score of `evaluation` (higher is better; always finite for a
    /// checked evaluation and finite weights).
    pub fn score(&self, evaluation: &Evaluation) -> f64 {
        if evaluation.trades < self.min_trades {
            return INFEASIBLE_SCORE - (self.min_trades - evaluation.trades) as f64;
        }
        self.sharpe * evaluation.sharpe.unwrap_or(0.0)
            + self.total_return * evaluation.total_return
            + self.roi_mean * evaluation.roi_mean
            + self.win_rate * evaluation.win_rate
            - self.max_drawdown * evaluation.max_drawdown
    }

    pub(crate) fn check(&self) -> OptimizerResult<()> {
        for (name, value) in [
            ("scalarization.sharpe", self.sharpe),
            ("scalarization.total_return", self.total_return),
            ("scalarization.roi_mean", self.roi_mean),
            ("scalarization.win_rate", self.win_rate),
            ("scalarization.max_drawdown", self.max_drawdown),
        ] {
            if !value.is_finite() || value.abs() > 1e6 {
                return Err(OptimizerError::InvalidConfig {
                    name,
                    value: value.to_string(),
                    requirement: "a finite weight of magnitude at most 1e6".into(),
                });
            }
        }
        Ok(())
    }
}

/// Equity numbers of a return series, the curve starting at 1.
struct CurveStats {
    total_return: f64,
    max_drawdown: f64,
}

impl CurveStats {
    fn of(returns: &[f64]) -> Self {
        let mut value: f64 = 1.0;
        let mut peak: f64 = 1.0;
        let mut max_drawdown: f64 = 0.0;
        for r in returns {
            value *= 1.0 + r;
            peak = peak.max(value);
            let drawdown = if peak > 0.0 {
                ((peak - value) / peak).clamp(0.0, 1.0)
            } else {
                1.0
            };
            max_drawdown = max_drawdown.max(drawdown);
        }
        CurveStats {
            total_return: value - 1.0,
            max_drawdown,
        }
    }
}

/// Mean ÷ sample standard deviation (n − 1) of `returns`, per period (not
/// annualised); `None` with fewer than two returns, no variation beyond
/// rounding (a standard deviation ≤ 1e-12 of the largest return) or a
/// non-finite result.
pub fn per_period_sharpe(returns: &[f64]) -> Option<f64> {
    let n = returns.len();
    if n < 2 {
        return None;
    }
    let mean = returns.iter().sum::<f64>() / n as f64;
    let variance = returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1) as f64;
    let sharpe = mean / variance.sqrt();
    (varies(returns, variance) && sharpe.is_finite()).then_some(sharpe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
    }

    #[test]
    fn curve_numbers_follow_the_summary_definitions() {
        let e = Evaluation::from_daily_returns(vec![0.1, -0.5, 0.2], 3, 0.01, 2.0 / 3.0);
        assert!((e.total_return - (1.1 * 0.5 * 1.2 - 1.0)).abs() < 1e-15);
        assert!((e.max_drawdown - 0.5).abs() < 1e-15);
        let mean: f64 = (0.1 - 0.5 + 0.2) / 3.0;
        let sd =
            (((0.1 - mean).powi(2) + (-0.5 - mean).powi(2) + (0.2 - mean).powi(2)) / 2.0).sqrt();
        assert!((e.sharpe.unwrap() - mean / sd * 252f64.sqrt()).abs() < 1e-12);
        assert_eq!(per_period_sharpe(&[0.01, 0.01]), None);
        assert_eq!(per_period_sharpe(&[0.01; 10]), None);
        assert_eq!(per_period_sharpe(&[0.01]), None);
    }

    #[test]
    fn stitching_concatenates_and_weights_by_trades() {
        let a = Evaluation::from_daily_returns(vec![0.1, -0.1], 1, 0.2, 1.0);
        let b = Evaluation::from_daily_returns(vec![-0.2, 0.05], 3, 0.0, 0.0);
        let s = Evaluation::stitch(&[a, b]);
        assert_eq!(s.daily_returns, vec![0.1, -0.1, -0.2, 0.05]);
        assert_eq!(s.trades, 4);
        assert!((s.roi_mean - 0.05).abs() < 1e-15);
        assert!((s.win_rate - 0.25).abs() < 1e-15);
        // the drawdown spans both windows: peak 1.1, trough 1.1·0.9·0.8
        assert!((s.max_drawdown - (1.0 - 0.9 * 0.8)).abs() < 1e-12);
    }

    #[test]
    fn windows_are_half_open_and_checked() {
        let w = Window::new(day(1), day(11)).unwrap();
        assert_eq!(w.days(), 10);
        assert!(w.contains(day(1)) && !w.contains(day(11)));
        assert!(Window::new(day(5), day(5)).is_err());
        assert_eq!(w.to_string(), "[2024-01-01, 2024-01-11)");
    }

    #[test]
    fn scalarization_penalizes_too_few_trades_and_drawdown() {
        let s = Scalarization::default();
        let mut e = Evaluation::from_daily_returns(vec![0.01, -0.005, 0.02], 20, 0.1, 0.6);
        let full = s.score(&e);
        assert!((full - (e.sharpe.unwrap() - e.max_drawdown)).abs() < 1e-12);
        e.trades = 7;
        assert_eq!(s.score(&e), INFEASIBLE_SCORE - 3.0);
    }
}
