//! The one error type of [`crate::optimizer`].

use thiserror::Error;

use super::Window;

/// Why the optimizer refused its inputs or could not finish.
///
/// Every variant names the input at fault and says what to do about it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimizerError {
    /// The parameter space is not usable.
    #[error("parameter space: {what}; {fix}")]
    InvalidSpace {
        /// What is wrong, with the dimension's name and values.
        what: String,
        /// What to do.
        fix: &'static str,
    },
    /// A parameter set does not fit the space.
    #[error("parameter set `{input}`: {what}; {fix}")]
    InvalidParameterSet {
        /// Which input (`current`, `parameters`, …).
        input: &'static str,
        /// What is wrong, with the parameter's name and value.
        what: String,
        /// What to do.
        fix: &'static str,
    },
    /// A setting of the search, the walk-forward or the guard is out of range.
    #[error("optimizer setting `{name}` = {value} is invalid: it must be {requirement}")]
    InvalidConfig {
        /// The setting's name as the caller knows it.
        name: &'static str,
        /// The value given.
        value: String,
        /// The accepted range, in words.
        requirement: String,
    },
    /// A window (or a history to split into folds) is empty or too short.
    #[error("window {window}: {what}")]
    InvalidWindow {
        /// The window at fault.
        window: Window,
        /// What is wrong and what to do.
        what: String,
    },
    /// The objective (the caller's backtest) returned an error.
    #[error(
        "the objective failed for {parameters} on {window}: {message}; fix the backtest's \
         inputs or narrow the parameter space so that every point of it can be backtested"
    )]
    Objective {
        /// The parameter set, rendered as `name=value, …`.
        parameters: String,
        /// The window it was evaluated on.
        window: Window,
        /// The objective's own message.
        message: String,
    },
    /// The objective returned a number that is not finite (or a negative
    /// drawdown, a win rate outside [0, 1]).
    #[error(
        "the objective returned {field} = {value} for {parameters} on {window}: {requirement} \
         (map undefined ratios to 0, or to `None` for the Sharpe ratio)"
    )]
    InvalidEvaluation {
        /// The field of the [`Evaluation`](super::Evaluation) at fault.
        field: String,
        /// Its value, rendered.
        value: String,
        /// What it must be.
        requirement: &'static str,
        /// The parameter set, rendered as `name=value, …`.
        parameters: String,
        /// The window it was evaluated on.
        window: Window,
    },
    /// A statistic is undefined for the data given.
    #[error("{what} could not be computed: {why}")]
    Numerical {
        /// What was being computed.
        what: &'static str,
        /// Why, with the inputs, and what to do.
        why: String,
    },
    /// argmin's Nelder-Mead stopped with an error of its own.
    #[error("Nelder-Mead (argmin) failed: {0}; this is a bug in the optimizer, please report it")]
    Solver(String),
}

/// Shorthand for results of [`crate::optimizer`].
pub type OptimizerResult<T> = Result<T, OptimizerError>;
