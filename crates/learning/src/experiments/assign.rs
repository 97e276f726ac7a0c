//! Deterministic assignment of opportunities to an experiment's arms.

use core_domain::{Experiment, Trade};
use serde::{Deserialize, Serialize};

use super::error::{ExperimentError, ExperimentResult};
use super::parameters::{ParameterSet, parameter_spec};

/// One arm of an experiment. Stored on trades as `experiment_arm`
/// (`"control"` / `"test"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The current parameter value.
    Control,
    /// The value under test.
    Test,
}

impl Arm {
    /// The text stored in `trades.experiment_arm`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Control => "control",
            Arm::Test => "test",
        }
    }

    /// The arm named by `trades.experiment_arm`, if it is one.
    #[must_use]
    pub fn parse(text: &str) -> Option<Arm> {
        match text {
            "control" => Some(Arm::Control),
            "test" => Some(Arm::Test),
            _ => None,
        }
    }
}

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// MurmurHash3's 64-bit finalizer: every input bit affects every output
/// bit, which FNV alone does poorly for keys that differ only at the end.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

fn fnv_feed(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The assignment hash of an opportunity: FNV-1a (64-bit) over the seed,
/// the experiment id and the key — each field framed by its length in
/// little-endian bytes, so `("ab", "c")` and `("a", "bc")` differ — and
/// MurmurHash3's finalizer. Fixed constants, no per-process randomness
/// (unlike std's `RandomState`): the same inputs give the same hash on
/// every run and platform (pinned by a test).
#[must_use]
pub fn assignment_hash(seed: u64, experiment_id: &str, opportunity_key: &str) -> u64 {
    let mut h = fnv_feed(FNV_OFFSET, &seed.to_le_bytes());
    for field in [experiment_id, opportunity_key] {
        h = fnv_feed(h, &(field.len() as u64).to_le_bytes());
        h = fnv_feed(h, field.as_bytes());
    }
    fmix64(h)
}

/// The hash as a uniform number in [0, 1) (its top 53 bits).
#[must_use]
pub fn assignment_point(seed: u64, experiment_id: &str, opportunity_key: &str) -> f64 {
    (assignment_hash(seed, experiment_id, opportunity_key) >> 11) as f64 / (1u64 << 53) as f64
}

/// The arm of an opportunity: [`Arm::Test`] when its
/// [`assignment_point`] is below the experiment's `allocation`, so about
/// that share of opportunities go to the test arm (an allocation outside
/// (0, 1) sends everything to one arm).
///
/// Deterministic: the same experiment, key and seed always give the same
/// arm, so the split can be recomputed from the record (the experiment row
/// holds the allocation, the start event in `learning_history` the seed).
/// The key must be fixed before the outcome is known and must not depend
/// on the arm's parameters — for example the session and the underlying
/// (`2024-01-09/AAPL`), not the chosen strike — and each opportunity must
/// be assigned at most once.
#[must_use]
pub fn assign(experiment: &Experiment, opportunity_key: &str, seed: u64) -> Arm {
    if assignment_point(seed, &experiment.experiment_id, opportunity_key) < experiment.allocation {
        Arm::Test
    } else {
        Arm::Control
    }
}

/// An opportunity's assignment as it goes on record: the arm and the
/// parameter value the strategy must use for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The experiment.
    pub experiment_id: String,
    /// The opportunity's key.
    pub opportunity_key: String,
    /// The arm.
    pub arm: Arm,
    /// The parameter under test.
    pub parameter: String,
    /// Its value in this arm.
    pub value: f64,
}

impl Assignment {
    /// Assigns an opportunity ([`assign`]) and looks up the arm's value.
    ///
    /// # Errors
    /// [`ExperimentError::UnparsableValue`] when the experiment's value for
    /// the arm is not a number.
    pub fn new(
        experiment: &Experiment,
        opportunity_key: &str,
        seed: u64,
    ) -> ExperimentResult<Self> {
        let arm = assign(experiment, opportunity_key, seed);
        Ok(Self {
            experiment_id: experiment.experiment_id.clone(),
            opportunity_key: opportunity_key.to_owned(),
            arm,
            parameter: experiment.parameter_name.clone(),
            value: arm_value(experiment, arm)?,
        })
    }

    /// The parameters the strategy uses for this opportunity: `current`
    /// with the arm's value of the parameter under test.
    ///
    /// # Errors
    /// [`ExperimentError::UnknownParameter`] for a parameter experiments
    /// may not change, [`ExperimentError::MissingParameter`] when `current`
    /// lacks it.
    pub fn parameters(&self, current: &ParameterSet) -> ExperimentResult<ParameterSet> {
        parameter_spec(&self.parameter)?;
        current.require(&self.parameter)?;
        Ok(current.clone().with(self.parameter.clone(), self.value))
    }

    /// Marks a trade opened for this opportunity as part of the experiment
    /// (`is_experiment`, `experiment_id`, `experiment_arm`), which is what
    /// [`super::analyze`] reads.
    pub fn tag(&self, trade: &mut Trade) {
        trade.is_experiment = true;
        trade.experiment_id = Some(self.experiment_id.clone());
        trade.experiment_arm = Some(self.arm.as_str().to_owned());
    }
}

/// The value of the parameter under test in an arm.
///
/// # Errors
/// [`ExperimentError::UnparsableValue`] when the stored text is not a
/// number.
pub fn arm_value(experiment: &Experiment, arm: Arm) -> ExperimentResult<f64> {
    let (field, text) = match arm {
        Arm::Control => ("control_value", &experiment.control_value),
        Arm::Test => ("test_value", &experiment.test_value),
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| ExperimentError::UnparsableValue {
            experiment_id: experiment.experiment_id.clone(),
            field,
            value: text.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_pinned() {
        // Changing these values re-splits every running experiment: don't.
        // (Computed independently with a Python transcription of the hash.)
        assert_eq!(assignment_hash(0, "", ""), 0x716e_2a0d_c793_f89f);
        assert_eq!(
            assignment_hash(7, "EXP-20240109-otm_min-0.15-0.18", "2024-01-09/AAPL"),
            0xd500_ece2_13cb_75cc
        );
    }

    #[test]
    fn framing_separates_fields() {
        assert_ne!(assignment_hash(1, "ab", "c"), assignment_hash(1, "a", "bc"));
    }
}
