//! The one error type of the store, and its mapping onto the repository
//! traits' [`RepoError`].

use core_domain::RepoError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use thiserror::Error;

/// What can go wrong in the store. Every message says what failed and what
/// to do about it.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "unsupported database url {url:?}: use sqlite://PATH, sqlite:PATH, a plain file path \
         or :memory: (PostgreSQL is not supported yet)"
    )]
    UnsupportedUrl { url: String },

    #[error(
        "cannot create the database directory {path}: {source}; check the parent exists and \
         is writable"
    )]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot open database at {path}: {source}; check the directory exists and is writable")]
    Open {
        path: String,
        #[source]
        source: diesel::ConnectionError,
    },

    #[error(
        "cannot configure database at {path} ({what}): {source}; check that it is a SQLite \
         database and that no other program holds an exclusive lock on it"
    )]
    Configure {
        path: String,
        what: &'static str,
        #[source]
        source: DieselError,
    },

    #[error(
        "database migration failed: {detail}; the failed migration was rolled back, fix it or \
         restore the database from a backup before starting again"
    )]
    Migration { detail: String },

    #[error("conflicting update: {what}; re-read it and apply the change again")]
    Conflict { what: String },

    #[error("{what} already exists")]
    Duplicate { what: String },

    #[error("{what} not found")]
    NotFound { what: String },

    #[error(
        "stored value in table {table}, row {row}, column {column} is unreadable: {detail}; the \
         row was written by another version or edited by hand, inspect and repair it"
    )]
    Corrupt {
        table: &'static str,
        row: String,
        column: &'static str,
        detail: String,
    },

    #[error("cannot encode {what} for storage: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "invalid trading state {state:?} in the database: the states are active, reduce_only, halted; record the intended one with `trader-cli emergency-stop` or `resume`"
    )]
    InvalidTradingState { state: String },

    #[error("the database connection is unusable ({detail}); restart the process")]
    Poisoned { detail: String },

    #[error(
        "database error while trying to {what}: {source}; if it says 'database is locked', \
         another process held the write lock for more than 5 s"
    )]
    Query {
        what: String,
        #[source]
        source: DieselError,
    },
}

impl StoreError {
    /// A database error with what we were trying to do.
    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(DieselError) -> StoreError {
        let what = what.into();
        move |source| StoreError::Query { what, source }
    }

    /// A failed insert: a unique violation is a [`StoreError::Duplicate`] of
    /// `what`; a foreign-key violation is a [`StoreError::NotFound`] of
    /// `parent` (the row the new one refers to); anything else is a query
    /// error.
    pub(crate) fn on_insert(
        what: impl Into<String>,
        parent: impl FnOnce() -> String,
    ) -> impl FnOnce(DieselError) -> StoreError {
        let what = what.into();
        move |source| match &source {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::Duplicate { what }
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                StoreError::NotFound {
                    what: format!("{} (referenced by {what})", parent()),
                }
            }
            _ => StoreError::Query {
                what: format!("write {what}"),
                source,
            },
        }
    }
}

/// Lets diesel's transaction functions roll back on any error of ours and
/// report their own failures (BEGIN, COMMIT) as ours.
impl From<DieselError> for StoreError {
    fn from(source: DieselError) -> Self {
        StoreError::Query {
            what: "run a transaction".into(),
            source,
        }
    }
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what } => RepoError::Duplicate(what),
            StoreError::NotFound { what } => RepoError::NotFound(what),
            StoreError::Conflict { what } => RepoError::Conflict(what),
            e @ StoreError::Corrupt { .. } => RepoError::Corrupt(e.to_string()),
            StoreError::Query {
                source: DieselError::NotFound,
                what,
            } => RepoError::NotFound(what),
            e => RepoError::Backend(e.to_string()),
        }
    }
}
