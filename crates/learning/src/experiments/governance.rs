//! The governance limits on parameter changes, and the rollback watch
//! after an adoption.

use chrono::{DateTime, Duration, Utc};
use core_domain::{
    Experiment, ExperimentStatus, LearningEvent, LearningEventType, Trade, TradeStatus,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::assign::{Arm, arm_value};
use super::error::{ExperimentError, ExperimentResult};
use super::parameters::{ParameterSet, VALUE_TOLERANCE, parameter_spec};
use super::params::ExperimentParams;
use crate::stats::{SequentialDecision, StatsError, sequential_test, welch_t_test};

/// Why the governance limits forbid an adoption now.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GovernanceRefusal {
    /// A parameter changed too recently.
    #[error(
        "the last parameter change ({change}) was on {last}, {days_since} day(s) ago; at most \
         one change per {min_days} days, so the next is allowed from {next_allowed}"
    )]
    TooSoon {
        /// The last change: parameter, old → new value, adoption or
        /// rollback (`otm_min 0.15 → 0.18, adoption`).
        change: String,
        /// When.
        last: DateTime<Utc>,
        /// Whole days since.
        days_since: i64,
        /// The limit.
        min_days: i64,
        /// When the next change is allowed.
        next_allowed: DateTime<Utc>,
    },
    /// The change is larger than one change may be.
    #[error(
        "{parameter} {control} → {test} is a {shift_pct:.1}% shift; one change may move a \
         parameter at most {max_pct:.1}%: start a smaller experiment"
    )]
    ShiftTooLarge {
        /// The parameter.
        parameter: String,
        /// The control value.
        control: f64,
        /// The test value.
        test: f64,
        /// |test − control| / |control| in percent.
        shift_pct: f64,
        /// The limit in percent.
        max_pct: f64,
    },
    /// The parameter no longer has the value the experiment was run
    /// against.
    #[error(
        "{parameter} is now {current}, but the experiment tested {test} against {control}: \
         its evidence no longer applies; start a new experiment from the current value"
    )]
    StaleControl {
        /// The parameter.
        parameter: String,
        /// The experiment's control value.
        control: f64,
        /// The experiment's test value.
        test: f64,
        /// The value in force.
        current: f64,
    },
    /// The experiment cannot be adopted as it stands.
    #[error("the experiment cannot be adopted: {why}")]
    Unadoptable {
        /// Why, with the values.
        why: String,
    },
}

impl GovernanceRefusal {
    /// Whether waiting lifts the refusal ([`Self::TooSoon`]); every other
    /// refusal is permanent and ends the experiment.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        matches!(self, GovernanceRefusal::TooSoon { .. })
    }
}

/// The governance limits: at most one parameter change (adoption or
/// rollback) per `min_days_between_changes`, at most `max_shift` relative
/// shift per change, and only against the value in force.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Governor {
    /// Days between parameter changes.
    pub min_days_between_changes: i64,
    /// Largest relative shift per change.
    pub max_shift: f64,
}

impl Governor {
    /// The limits of `params`.
    #[must_use]
    pub fn new(params: &ExperimentParams) -> Self {
        Self {
            min_days_between_changes: params.min_days_between_changes,
            max_shift: params.max_shift,
        }
    }

    /// The latest parameter change in the history (a
    /// [`LearningEventType::ParameterAdopted`] or
    /// [`LearningEventType::ParameterRolledBack`] event), in any order.
    #[must_use]
    pub fn last_change(history: &[LearningEvent]) -> Option<&LearningEvent> {
        history
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type,
                    LearningEventType::ParameterAdopted | LearningEventType::ParameterRolledBack
                )
            })
            .max_by_key(|e| e.event_date)
    }

    /// When the next change is allowed (`None`: now).
    #[must_use]
    pub fn next_change_allowed(&self, history: &[LearningEvent]) -> Option<DateTime<Utc>> {
        Self::last_change(history)
            .map(|e| e.event_date + Duration::days(self.min_days_between_changes))
    }

    /// Whether `experiment`'s test value may replace the value in force
    /// now. Checks, in order: the experiment is active or complete and
    /// numeric; the parameter still has the control value in `current`;
    /// the shift |test − control| / |control| is within `max_shift`; the
    /// parameters with the test value are consistent; and no parameter
    /// changed (adoption or rollback, from `history`) less than
    /// `min_days_between_changes` days before `now`. Rollbacks themselves
    /// are never held back by these limits.
    ///
    /// # Errors
    /// The [`GovernanceRefusal`] with the reason; only
    /// [`GovernanceRefusal::TooSoon`] is temporary.
    pub fn can_adopt(
        &self,
        experiment: &Experiment,
        current: &ParameterSet,
        history: &[LearningEvent],
        now: DateTime<Utc>,
    ) -> Result<(), GovernanceRefusal> {
        let unadoptable = |why: String| GovernanceRefusal::Unadoptable { why };
        if !matches!(
            experiment.status,
            ExperimentStatus::Active | ExperimentStatus::Complete
        ) {
            return Err(unadoptable(format!(
                "experiment {} is {}",
                experiment.experiment_id, experiment.status
            )));
        }
        let parameter = experiment.parameter_name.clone();
        parameter_spec(&parameter).map_err(|e| unadoptable(e.to_string()))?;
        let control =
            arm_value(experiment, Arm::Control).map_err(|e| unadoptable(e.to_string()))?;
        let test = arm_value(experiment, Arm::Test).map_err(|e| unadoptable(e.to_string()))?;
        let in_force = current
            .require(&parameter)
            .map_err(|e| unadoptable(e.to_string()))?;
        if (in_force - control).abs() > VALUE_TOLERANCE {
            return Err(GovernanceRefusal::StaleControl {
                parameter,
                control,
                test,
                current: in_force,
            });
        }
        if control == 0.0 {
            return Err(unadoptable(format!(
                "{parameter} is 0, so its relative shift is undefined"
            )));
        }
        let shift = (test - control).abs() / control.abs();
        if shift > self.max_shift + VALUE_TOLERANCE {
            return Err(GovernanceRefusal::ShiftTooLarge {
                parameter,
                control,
                test,
                shift_pct: 100.0 * shift,
                max_pct: 100.0 * self.max_shift,
            });
        }
        current
            .clone()
            .with(parameter, test)
            .check()
            .map_err(|e| unadoptable(e.to_string()))?;
        if let Some(last) = Self::last_change(history) {
            let next_allowed = last.event_date + Duration::days(self.min_days_between_changes);
            if now < next_allowed {
                let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
                return Err(GovernanceRefusal::TooSoon {
                    change: format!(
                        "{} {} → {}, {}",
                        text(&last.parameter_changed),
                        text(&last.old_value),
                        text(&last.new_value),
                        if last.event_type == LearningEventType::ParameterRolledBack {
                            "rollback"
                        } else {
                            "adoption"
                        }
                    ),
                    last: last.event_date,
                    days_since: (now - last.event_date).num_days(),
                    min_days: self.min_days_between_changes,
                    next_allowed,
                });
            }
        }
        Ok(())
    }
}

/// Where the watch over an adopted change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackDecision {
    /// Too few trades since the adoption, or no significant deterioration
    /// yet: keep watching.
    Watching,
    /// The window is full and performance is not significantly worse: the
    /// adoption stands and the watch ends.
    Confirmed,
    /// Performance after the adoption is significantly worse: restore the
    /// control value ([`super::rollback`]).
    RollBack,
}

/// One check of an adopted change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackCheck {
    /// The adopted experiment.
    pub experiment_id: String,
    /// Closed trades since the adoption that the check used (at most the
    /// window).
    pub trades_after: usize,
    /// Closed trades of the baseline.
    pub trades_before: usize,
    /// Their mean ROIs.
    pub mean_after: Option<f64>,
    /// Mean ROI of the baseline.
    pub mean_before: Option<f64>,
    /// The p-value behind the decision (always-valid while the window
    /// fills, Welch's at the full window).
    pub p_value: Option<f64>,
    /// The decision.
    pub decision: RollbackDecision,
    /// Why, with the numbers.
    pub reasoning: String,
}

fn closed_rois(trades: &[Trade]) -> Vec<f64> {
    let mut closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed && t.roi.is_some_and(f64::is_finite))
        .collect();
    closed.sort_by(|a, b| (a.exit_time, &a.trade_id).cmp(&(b.exit_time, &b.trade_id)));
    closed.iter().filter_map(|t| t.roi).collect()
}

/// Checks whether performance after an adoption is significantly worse
/// than before.
///
/// `trades_after`: the trades made with the adopted value since the
/// adoption; `trades_before`: the baseline — the experiment's control-arm
/// trades (the old value under the same conditions) are the natural one.
/// Only closed trades with an ROI count; the first `rollback_window` after
/// the adoption (in exit order) are used.
///
/// * fewer than `rollback_min_trades` after: **Watching**;
/// * while the window fills, the always-valid sequential test at
///   `rollback_alpha` is checked at every call: significantly worse →
///   **RollBack** (a clear deterioration is caught early);
/// * once the window is full: the sequential test as above, and one
///   Welch t-test of the window against the baseline: worse with
///   p < `rollback_alpha` → **RollBack**, else **Confirmed** (stop
///   watching).
///
/// Both tests are two-sided but only a deterioration acts, and together
/// they may roll back a harmless change somewhat more often than
/// `rollback_alpha` / 2; a false rollback only restores the value in force
/// before. The comparison is across time, so a market that turned worse
/// after the adoption can trigger it too: that is accepted, since the
/// rollback is the safe direction.
///
/// # Errors
/// [`ExperimentError::WrongStatus`] unless the experiment is adopted;
/// [`ExperimentError::InvalidValue`] when the baseline has fewer than
/// `rollback_min_trades` usable trades; invalid `params`; a failure of the
/// tests other than constant samples.
pub fn check_rollback(
    adopted: &Experiment,
    trades_after: &[Trade],
    trades_before: &[Trade],
    params: &ExperimentParams,
) -> ExperimentResult<RollbackCheck> {
    params.validate()?;
    if adopted.status != ExperimentStatus::Adopted {
        return Err(ExperimentError::WrongStatus {
            experiment_id: adopted.experiment_id.clone(),
            status: adopted.status,
            action: "a rollback check",
            expected: "adopted",
        });
    }
    let id = adopted.experiment_id.clone();
    let before = closed_rois(trades_before);
    let min_trades = usize::try_from(params.rollback_min_trades).unwrap_or(usize::MAX);
    let window = usize::try_from(params.rollback_window).unwrap_or(usize::MAX);
    if before.len() < min_trades {
        return Err(ExperimentError::InvalidValue {
            name: "trades_before".into(),
            value: format!("{} closed trades with an ROI", before.len()),
            requirement: format!(
                "the baseline needs at least rollback_min_trades ({min_trades}); pass the \
                 experiment's control-arm trades"
            ),
        });
    }
    let mut after = closed_rois(trades_after);
    after.truncate(window);
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let (mean_after, mean_before) = (mean(&after), mean(&before));
    let head = format!(
        "experiment {id} ({} {} → {} adopted): {} closed trades since (mean ROI {}), \
         baseline {} (mean ROI {})",
        adopted.parameter_name,
        adopted.control_value,
        adopted.test_value,
        after.len(),
        mean_after.map_or("n/a".into(), |m| format!("{:.2}%", 100.0 * m)),
        before.len(),
        mean_before.map_or("n/a".into(), |m| format!("{:.2}%", 100.0 * m)),
    );
    let check = |p_value: Option<f64>, decision: RollbackDecision, why: String| RollbackCheck {
        experiment_id: id.clone(),
        trades_after: after.len(),
        trades_before: before.len(),
        mean_after,
        mean_before,
        p_value,
        decision,
        reasoning: format!("{head}. {why}"),
    };
    if after.len() < min_trades {
        return Ok(check(
            None,
            RollbackDecision::Watching,
            format!("Watching: the check starts at {min_trades} closed trades"),
        ));
    }
    let full = after.len() >= window;
    let stats_error = |source: StatsError| ExperimentError::Stats {
        experiment_id: id.clone(),
        source,
    };
    let sequential = match sequential_test(&after, &before, &params.rollback_sequential_config()) {
        Ok(look) => Some(look),
        Err(StatsError::ZeroSpread { .. }) => None,
        Err(e) => return Err(stats_error(e)),
    };
    if let Some(look) = sequential
        && look.decision == SequentialDecision::RejectNull
        && look.z < 0.0
    {
        return Ok(check(
            Some(look.p_value),
            RollbackDecision::RollBack,
            format!(
                "Roll back: significantly worse after the adoption (sequential test z = {:.2}, \
                 always-valid p = {:.4} < {})",
                look.z, look.p_value, params.rollback_alpha
            ),
        ));
    }
    if !full {
        return Ok(check(
            sequential.map(|s| s.p_value),
            RollbackDecision::Watching,
            format!(
                "Watching: not significantly worse so far{}; the window closes at {window} trades",
                sequential.map_or_else(String::new, |s| format!(
                    " (always-valid p = {:.4})",
                    s.p_value
                )),
            ),
        ));
    }
    match welch_t_test(&after, &before) {
        Ok(w) if w.mean_difference < 0.0 && w.p_value < params.rollback_alpha => Ok(check(
            Some(w.p_value),
            RollbackDecision::RollBack,
            format!(
                "Roll back: the first {window} trades after the adoption are significantly worse \
                 (Welch t = {:.2}, p = {:.4} < {}, difference {:+.2} pp)",
                w.statistic,
                w.p_value,
                params.rollback_alpha,
                100.0 * w.mean_difference
            ),
        )),
        Ok(w) => Ok(check(
            Some(w.p_value),
            RollbackDecision::Confirmed,
            format!(
                "Confirmed: the first {window} trades after the adoption are not significantly \
                 worse (Welch t = {:.2}, p = {:.4}, difference {:+.2} pp); the watch ends",
                w.statistic,
                w.p_value,
                100.0 * w.mean_difference
            ),
        )),
        Err(StatsError::ZeroSpread { .. }) => Ok(check(
            None,
            RollbackDecision::Confirmed,
            "Confirmed: every ROI is the same, no deterioration can be shown; the watch ends"
                .into(),
        )),
        Err(e) => Err(stats_error(e)),
    }
}
