//! The one error type of [`crate::stats`].

use thiserror::Error;

/// Why a statistical function refused its inputs.
///
/// Every variant names the input at fault and says what to do about it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// A sample has fewer observations than the method needs.
    #[error(
        "sample `{sample}` has {got} observation(s) but {method} needs at least {needed}: \
         collect more observations before testing"
    )]
    TooFewObservations {
        /// Which input (`a`, `b`, `sample`, …).
        sample: &'static str,
        /// The method that refused it.
        method: &'static str,
        /// The minimum it needs.
        needed: usize,
        /// How many it got.
        got: usize,
    },
    /// A sample contains NaN or ±∞.
    #[error(
        "sample `{sample}` has a non-finite value ({value}) at index {index}: \
         drop or repair that observation before testing"
    )]
    NonFinite {
        /// Which input.
        sample: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// The statistic divides by a spread that is zero.
    #[error("{method} is undefined: {why}")]
    ZeroSpread {
        /// The method that refused the data.
        method: &'static str,
        /// What is constant and what to do.
        why: &'static str,
    },
    /// A scalar parameter is outside its range.
    #[error("{name} = {value} is invalid: it must be {requirement}")]
    InvalidParameter {
        /// The parameter's name as the caller knows it.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The accepted range, in words.
        requirement: &'static str,
    },
    /// A count is inconsistent (for example more wins than trials).
    #[error("{what}")]
    InvalidCount {
        /// What is wrong, with the numbers.
        what: String,
    },
    /// An entry of a list of p-values is not a probability.
    #[error("p-value at index {index} is {value}: every p-value must be a finite number in [0, 1]")]
    InvalidPValue {
        /// Position in the list.
        index: usize,
        /// The value given.
        value: f64,
    },
    /// A numerical routine could not produce a finite answer.
    #[error("{what} could not be computed: {why}")]
    Numerical {
        /// What was being computed.
        what: &'static str,
        /// Why it failed, with the inputs.
        why: String,
    },
}

/// Shorthand for results of [`crate::stats`].
pub type StatsResult<T> = Result<T, StatsError>;
