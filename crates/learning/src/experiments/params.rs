//! The experiment engine's settings and the shadow-evidence rule.

use serde::{Deserialize, Serialize};

use super::error::{ExperimentError, ExperimentResult};
use crate::stats::SequentialConfig;

/// How much shadow evidence (outcomes of opportunities followed from
/// market data, never traded) may count in an experiment's analysis.
///
/// Real-trade evidence is always required: whatever the policy, no
/// decision is taken before each arm has
/// [`ExperimentParams::min_samples`] closed **real** trades, and an
/// adoption also needs the real trades alone to show an effect above
/// [`ExperimentParams::min_effect_roi`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ShadowPolicy {
    /// Shadow outcomes are counted and summarized in the analysis (for the
    /// reasoning) but do not enter the test. The default: shadow fills are
    /// modelled (no queue, no slippage, no rejects), fall on the same days
    /// as the real trades, and would let cheap evidence outvote dear.
    Ignore,
    /// Once both arms have `min_samples` real trades, each arm's sample is
    /// topped up with its shadow outcomes, the earliest first (by exit date,
    /// then id, so the streams only grow, as the sequential test needs), at
    /// most `max_ratio` × that arm's real count. `max_ratio` lies in
    /// (0, 1]: at most as many shadow outcomes as real trades.
    Supplement {
        /// Shadow outcomes per real trade, at most; in (0, 1].
        max_ratio: f64,
    },
}

/// Settings of experiments: design, the adoption rule, the governance
/// limits and the rollback watch.
///
/// The defaults are the issue's: 20% of opportunities to the test arm, 30
/// closed trades per arm before any decision, the sequential test at
/// α = 0.05, adoption only for an effect above 0.5% ROI, at most one
/// parameter change per 30 days and at most a 20% shift per change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentParams {
    /// Share of new opportunities assigned to the test arm, in (0, 1).
    pub allocation: f64,
    /// Closed real trades each arm needs before any decision (≥ 2).
    pub min_samples: i64,
    /// An experiment whose smaller arm reaches this many closed trades
    /// without an adoption is rejected (≥ `min_samples`).
    pub max_samples_per_arm: i64,
    /// False-adoption rate of the sequential test over all looks, in (0, 1).
    pub alpha: f64,
    /// τ of the sequential test: the standardized effect (in standard
    /// deviations of trade ROI) it is tuned to find soonest (> 0).
    pub mixing_sd: f64,
    /// Smallest mean ROI gain per trade (test − control) worth a change:
    /// 0.005 = 0.5 percentage points of margin. Adoption needs a larger one.
    pub min_effect_roi: f64,
    /// Days that must pass after a parameter change (an adoption or a
    /// rollback) before the next adoption (≥ 0).
    pub min_days_between_changes: i64,
    /// Largest relative shift of a parameter in one change:
    /// |test − control| / |control| ≤ this, in (0, 1].
    pub max_shift: f64,
    /// Closed trades after an adoption that the rollback watch covers; at
    /// that count it concludes with one Welch test (≥ 2).
    pub rollback_window: i64,
    /// Closed trades after an adoption before the rollback watch looks at
    /// all (its sequential test runs from here until the window is full;
    /// 2 ≤ this ≤ `rollback_window`).
    pub rollback_min_trades: i64,
    /// Significance of "worse after adoption", in (0, 1).
    pub rollback_alpha: f64,
    /// How much shadow evidence may count.
    pub shadow: ShadowPolicy,
    /// Seed of the assignment hash ([`super::assign`]); recorded in the
    /// history when an experiment starts, so the split can be recomputed.
    pub assignment_seed: u64,
}

impl Default for ExperimentParams {
    fn default() -> Self {
        Self {
            allocation: 0.20,
            min_samples: 30,
            max_samples_per_arm: 150,
            alpha: 0.05,
            mixing_sd: 0.5,
            min_effect_roi: 0.005,
            min_days_between_changes: 30,
            max_shift: 0.20,
            rollback_window: 30,
            rollback_min_trades: 10,
            rollback_alpha: 0.05,
            shadow: ShadowPolicy::Ignore,
            assignment_seed: 0x5EED_0007,
        }
    }
}

impl ExperimentParams {
    /// Checks every field and reports all problems at once.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidParams`] listing each field out of range.
    pub fn validate(&self) -> ExperimentResult<()> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                problems.push(what);
            }
        };
        let open_unit = |v: f64| v.is_finite() && v > 0.0 && v < 1.0;
        check(
            open_unit(self.allocation),
            format!("allocation = {} must lie in (0, 1)", self.allocation),
        );
        check(
            self.min_samples >= 2,
            format!("min_samples = {} must be at least 2", self.min_samples),
        );
        check(
            self.max_samples_per_arm >= self.min_samples,
            format!(
                "max_samples_per_arm = {} must be at least min_samples ({})",
                self.max_samples_per_arm, self.min_samples
            ),
        );
        check(
            open_unit(self.alpha),
            format!("alpha = {} must lie in (0, 1)", self.alpha),
        );
        check(
            self.mixing_sd.is_finite() && self.mixing_sd > 0.0,
            format!("mixing_sd = {} must be positive", self.mixing_sd),
        );
        check(
            self.min_effect_roi.is_finite() && self.min_effect_roi >= 0.0,
            format!(
                "min_effect_roi = {} must be a fraction ≥ 0 (0.005 = 0.5% ROI)",
                self.min_effect_roi
            ),
        );
        check(
            self.min_days_between_changes >= 0,
            format!(
                "min_days_between_changes = {} must not be negative",
                self.min_days_between_changes
            ),
        );
        check(
            self.max_shift.is_finite() && self.max_shift > 0.0 && self.max_shift <= 1.0,
            format!("max_shift = {} must lie in (0, 1]", self.max_shift),
        );
        check(
            self.rollback_window >= 2,
            format!(
                "rollback_window = {} must be at least 2",
                self.rollback_window
            ),
        );
        check(
            self.rollback_min_trades >= 2 && self.rollback_min_trades <= self.rollback_window,
            format!(
                "rollback_min_trades = {} must lie in 2..=rollback_window ({})",
                self.rollback_min_trades, self.rollback_window
            ),
        );
        check(
            open_unit(self.rollback_alpha),
            format!(
                "rollback_alpha = {} must lie in (0, 1)",
                self.rollback_alpha
            ),
        );
        if let ShadowPolicy::Supplement { max_ratio } = self.shadow {
            check(
                max_ratio.is_finite() && max_ratio > 0.0 && max_ratio <= 1.0,
                format!("shadow.max_ratio = {max_ratio} must lie in (0, 1]"),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ExperimentError::InvalidParams {
                problems: problems.join("; "),
            })
        }
    }

    /// The sequential test's settings: `alpha`, `mixing_sd`, and no look
    /// before `min_samples` per group.
    #[must_use]
    pub fn sequential_config(&self) -> SequentialConfig {
        SequentialConfig {
            alpha: self.alpha,
            mixing_sd: self.mixing_sd,
            min_per_group: usize::try_from(self.min_samples.max(2)).unwrap_or(2),
        }
    }

    /// The rollback watch's sequential settings: `rollback_alpha`,
    /// `mixing_sd`, from `rollback_min_trades` on.
    #[must_use]
    pub fn rollback_sequential_config(&self) -> SequentialConfig {
        SequentialConfig {
            alpha: self.rollback_alpha,
            mixing_sd: self.mixing_sd,
            min_per_group: usize::try_from(self.rollback_min_trades.max(2)).unwrap_or(2),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_fields_are_all_reported() {
        ExperimentParams::default().validate().unwrap();
        let bad = ExperimentParams {
            allocation: 1.0,
            min_samples: 1,
            max_shift: 0.0,
            shadow: ShadowPolicy::Supplement { max_ratio: 2.0 },
            ..ExperimentParams::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        for field in ["allocation", "min_samples", "max_shift", "shadow.max_ratio"] {
            assert!(err.contains(field), "{err}");
        }
    }
}
