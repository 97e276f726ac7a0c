//! The one error type of [`crate::experiments`].

use core_domain::{ExperimentStatus, RepoError};
use thiserror::Error;

use crate::stats::StatsError;

/// Why the experiment engine refused to act.
///
/// Every variant names the input at fault and says what to do about it.
/// A proposal that maps to no parameter is not an error but a
/// [`super::NoProposal`]; an adoption the governance limits forbid is a
/// [`super::GovernanceRefusal`] inside an [`super::AdoptionOutcome`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExperimentError {
    /// [`super::ExperimentParams`] has out-of-range fields (all listed).
    #[error("experiment settings are invalid: {problems}; fix these fields of ExperimentParams")]
    InvalidParams {
        /// Every problem found, separated by `; `.
        problems: String,
    },
    /// A parameter name is not one of [`super::PARAMETERS`].
    #[error("parameter `{name}` is not a parameter experiments may change; use one of: {known}")]
    UnknownParameter {
        /// The name given.
        name: String,
        /// The accepted names, comma-separated.
        known: String,
    },
    /// The current parameter set lacks a parameter the step needs.
    #[error(
        "the current parameter set has no value for `{name}`: build it with \
         ParameterSet::from_json from the strategy's parameters"
    )]
    MissingParameter {
        /// The parameter.
        name: String,
    },
    /// A parameter value is not acceptable (outside its range, not a whole
    /// number where one is needed, or inconsistent with another value).
    #[error("{name} = {value} is invalid: {requirement}")]
    InvalidValue {
        /// The parameter (or field) at fault.
        name: String,
        /// The value given, as text.
        value: String,
        /// What it must be.
        requirement: String,
    },
    /// An experiment's stored control or test value is not a number.
    #[error(
        "experiment {experiment_id}: {field} {value:?} is not a number; the experiment \
         engine only runs numeric experiments, conclude this one by hand"
    )]
    UnparsableValue {
        /// The experiment.
        experiment_id: String,
        /// `control_value` or `test_value`.
        field: &'static str,
        /// The stored text.
        value: String,
    },
    /// The experiment is in the wrong state for the step.
    #[error(
        "experiment {experiment_id} is {status}; {action} needs an experiment that is {expected}"
    )]
    WrongStatus {
        /// The experiment.
        experiment_id: String,
        /// Its status.
        status: ExperimentStatus,
        /// What was attempted.
        action: &'static str,
        /// The status(es) the step accepts.
        expected: &'static str,
    },
    /// The analysis or check handed in does not call for this step.
    #[error(
        "experiment {experiment_id}: {action} needs {needed}, but the result says {got}; \
         call the step the result asks for"
    )]
    DecisionMismatch {
        /// The experiment.
        experiment_id: String,
        /// What was attempted.
        action: &'static str,
        /// The decision the step needs.
        needed: &'static str,
        /// The decision handed in.
        got: String,
    },
    /// The analysis belongs to another experiment.
    #[error(
        "the analysis is of experiment {analysis_of}, not of {experiment_id}: analyse this \
         experiment's own trades"
    )]
    WrongExperiment {
        /// The experiment the step was asked to change.
        experiment_id: String,
        /// The experiment the analysis is about.
        analysis_of: String,
    },
    /// Another experiment already tests the same parameter.
    #[error(
        "parameter `{parameter}` is already under test by experiment {running} ({status}); \
         conclude it before starting {experiment_id}"
    )]
    ParameterBusy {
        /// The parameter.
        parameter: String,
        /// The experiment that was to start.
        experiment_id: String,
        /// The experiment already running on it.
        running: String,
        /// Its status.
        status: ExperimentStatus,
    },
    /// A parameter change no longer fits the current value.
    #[error(
        "cannot apply {parameter} {from} → {to}: the current value is {current}; \
         re-read the parameters, the change was made against another value"
    )]
    StaleChange {
        /// The parameter.
        parameter: String,
        /// The value the change starts from.
        from: f64,
        /// The value it sets.
        to: f64,
        /// The value found.
        current: f64,
    },
    /// A JSON document does not have the expected shape.
    #[error("parameters as JSON: {what}; pass the serde_json form of the strategy's parameters")]
    Json {
        /// What is wrong.
        what: String,
    },
    /// The statistical test refused the samples.
    #[error("experiment {experiment_id}: the statistical test failed: {source}")]
    Stats {
        /// The experiment.
        experiment_id: String,
        /// The test's own error.
        #[source]
        source: StatsError,
    },
    /// The repository failed.
    #[error("could not {what}: {source}")]
    Repo {
        /// What was being written or read.
        what: String,
        /// The repository's error.
        #[source]
        source: RepoError,
    },
}

/// Shorthand for results of [`crate::experiments`].
pub type ExperimentResult<T> = Result<T, ExperimentError>;

/// Wraps a repository error with what was being done.
pub(crate) fn repo(what: impl Into<String>) -> impl FnOnce(RepoError) -> ExperimentError {
    let what = what.into();
    move |source| ExperimentError::Repo { what, source }
}
