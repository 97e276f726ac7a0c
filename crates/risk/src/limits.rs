//! The limits the governor enforces, with the configured defaults.

use serde::{Deserialize, Serialize};

use crate::RiskError;

/// What a circuit breaker does when it trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerAction {
    /// Refuse every opening order until an operator resumes.
    HaltTrading,
    /// Refuse opening orders; closing orders pass (as they always do).
    ReduceOnly,
}

/// Every limit of the governor. The defaults are those of the configuration
/// file (`[risk]` and `[circuit_breakers]`); the binaries map the settings
/// onto this type, so that `risk` does not depend on `settings`.
///
/// Ratios are fractions (0.8 is 80%); money limits are dollars as in the
/// configuration. A value exactly at a "≤" limit passes; breakers trip at
/// their threshold (see [`RATIO_TOLERANCE`](crate::RATIO_TOLERANCE)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskLimits {
    /// Open short-put positions after the trade, at most.
    pub max_open_positions: i64,
    /// Positions opened in the current session, the new one included, at most.
    pub max_positions_per_day: i64,
    /// Dollars, negative: the largest loss one position may be sized for.
    pub max_position_loss: f64,
    /// The strategy's stop: close when the cost to close reaches this
    /// multiple of the entry premium (3.0 is a −200% loss).
    pub stop_loss_multiple: f64,
    /// Daily loss breaker: change of net liquidation since the session's
    /// start, as a fraction (negative). At or below it the breaker trips.
    pub max_daily_loss: f64,
    pub daily_loss_action: BreakerAction,
    /// API errors in the last hour at which the breaker trips.
    pub max_api_errors_per_hour: u32,
    pub api_errors_action: BreakerAction,
    /// One-day 95% historical VaR after the trade, as a fraction of net
    /// liquidation, at most.
    pub max_portfolio_var_95: f64,
    /// Daily return scenarios of the historical VaR (the most recent ones).
    pub var_lookback_days: usize,
    /// Margin of one sector as a share of the margin base, at most (see the
    /// crate docs for the measure).
    pub max_sector_concentration: f64,
    /// Pearson correlation of daily returns between the new underlying and
    /// each held one, at most.
    pub max_correlation: f64,
    /// Daily returns the correlation is measured over (the most recent).
    pub correlation_lookback_days: usize,
    /// Fewest aligned daily returns VaR and correlation accept; with less
    /// history the order is refused (fail closed).
    pub min_history_days: usize,
    /// Initial margin after the trade as a fraction of net liquidation, at most.
    pub max_margin_utilization: f64,
}

impl Default for RiskLimits {
    fn default() -> Self {
        RiskLimits {
            max_open_positions: 10,
            max_positions_per_day: 10,
            max_position_loss: -500.0,
            stop_loss_multiple: 3.0,
            max_daily_loss: -0.02,
            daily_loss_action: BreakerAction::HaltTrading,
            max_api_errors_per_hour: 5,
            api_errors_action: BreakerAction::HaltTrading,
            max_portfolio_var_95: 0.10,
            var_lookback_days: 250,
            max_sector_concentration: 0.30,
            max_correlation: 0.70,
            correlation_lookback_days: 60,
            min_history_days: 20,
            max_margin_utilization: 0.80,
        }
    }
}

impl RiskLimits {
    /// Checks every field and reports every problem at once.
    pub fn validate(&self) -> Result<(), RiskError> {
        let mut problems = Vec::new();
        let mut need = |ok: bool, msg: String| {
            if !ok {
                problems.push(msg);
            }
        };
        need(
            self.max_open_positions >= 0,
            format!(
                "max_open_positions must be at least 0, got {}",
                self.max_open_positions
            ),
        );
        need(
            self.max_positions_per_day >= 0,
            format!(
                "max_positions_per_day must be at least 0, got {}",
                self.max_positions_per_day
            ),
        );
        need(
            self.max_position_loss.is_finite() && self.max_position_loss < 0.0,
            format!(
                "max_position_loss must be negative dollars, got {}",
                self.max_position_loss
            ),
        );
        need(
            self.stop_loss_multiple.is_finite() && self.stop_loss_multiple > 1.0,
            format!(
                "stop_loss_multiple must be above 1, got {}",
                self.stop_loss_multiple
            ),
        );
        need(
            self.max_daily_loss.is_finite() && self.max_daily_loss < 0.0,
            format!(
                "max_daily_loss must be negative, got {}",
                self.max_daily_loss
            ),
        );
        need(
            self.max_api_errors_per_hour >= 1,
            "max_api_errors_per_hour must be at least 1, got 0".to_string(),
        );
        for (name, v) in [
            ("max_portfolio_var_95", self.max_portfolio_var_95),
            ("max_sector_concentration", self.max_sector_concentration),
            ("max_margin_utilization", self.max_margin_utilization),
        ] {
            need(
                v.is_finite() && v > 0.0 && v <= 1.0,
                format!("{name} must be in (0, 1], got {v}"),
            );
        }
        need(
            self.max_correlation.is_finite()
                && self.max_correlation >= -1.0
                && self.max_correlation <= 1.0,
            format!(
                "max_correlation must be in [-1, 1], got {}",
                self.max_correlation
            ),
        );
        need(
            self.min_history_days >= 2,
            format!(
                "min_history_days must be at least 2, got {}",
                self.min_history_days
            ),
        );
        for (name, v) in [
            ("var_lookback_days", self.var_lookback_days),
            ("correlation_lookback_days", self.correlation_lookback_days),
        ] {
            need(
                v >= self.min_history_days,
                format!(
                    "{name} must be at least min_history_days ({}), got {v}",
                    self.min_history_days
                ),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RiskError::InvalidLimits(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_match_the_configuration_and_validate() {
        let l = RiskLimits::default();
        assert_eq!(l.max_open_positions, 10);
        assert_eq!(l.max_positions_per_day, 10);
        assert_eq!(l.max_position_loss, -500.0);
        assert_eq!(l.max_daily_loss, -0.02);
        assert_eq!(l.max_api_errors_per_hour, 5);
        assert_eq!(l.max_portfolio_var_95, 0.10);
        assert_eq!(l.max_sector_concentration, 0.30);
        assert_eq!(l.max_correlation, 0.70);
        assert_eq!(l.max_margin_utilization, 0.80);
        assert_eq!(l.validate(), Ok(()));
    }

    #[test]
    fn test_validate_reports_every_problem_at_once() {
        let l = RiskLimits {
            max_daily_loss: 0.02,
            max_margin_utilization: 1.5,
            max_api_errors_per_hour: 0,
            ..RiskLimits::default()
        };
        match l.validate() {
            Err(RiskError::InvalidLimits(p)) => assert_eq!(p.len(), 3, "{p:?}"),
            other => panic!("expected invalid limits, got {other:?}"),
        }
    }

    #[test]
    fn test_limits_deserialize_with_defaults_and_reject_unknown_keys() {
        let l: RiskLimits = serde_json::from_str(
            r#"{"max_open_positions": 4, "daily_loss_action": "reduce_only"}"#,
        )
        .unwrap();
        assert_eq!(l.max_open_positions, 4);
        assert_eq!(l.daily_loss_action, BreakerAction::ReduceOnly);
        assert_eq!(l.max_correlation, 0.70);
        assert!(serde_json::from_str::<RiskLimits>(r#"{"max_positons": 4}"#).is_err());
    }
}
