//! The error type of the learning engine's steps that read or write the
//! database (pattern detection and its lifecycle so far).

use core_domain::RepoError;
use thiserror::Error;

use crate::stats::StatsError;

/// Why a learning step could not run or could not record its result.
///
/// Every variant names what was at fault and says what to do about it.
#[derive(Debug, Error)]
pub enum LearningError {
    /// A parameter of the learning engine is out of its range.
    #[error(
        "learning parameter `{name}` = {value} is invalid: it must be {requirement}; \
         fix it in the learning settings and run again"
    )]
    InvalidParameter {
        /// The parameter's name (a field of the parameter struct).
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// The accepted range, in words.
        requirement: &'static str,
    },
    /// The repository refused a read or a write.
    #[error(
        "the learning repository could not {action}: {source}; \
         check the database (`trader-cli db status`) and run the step again"
    )]
    Repository {
        /// What was being read or written.
        action: String,
        /// The repository's error.
        #[source]
        source: RepoError,
    },
    /// A statistical routine refused its inputs (a bug in the caller's
    /// preparation of the data: the learning steps validate what they pass).
    #[error("a statistical test failed: {0}")]
    Stats(#[from] StatsError),
}

impl LearningError {
    /// Wraps a repository error with what was being done.
    pub(crate) fn repo(action: impl Into<String>) -> impl FnOnce(RepoError) -> LearningError {
        let action = action.into();
        move |source| LearningError::Repository { action, source }
    }
}
