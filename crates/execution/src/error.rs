//! What the executor can answer instead of an order.

use core_domain::{BrokerError, DomainError, RepoError};
use store::StoreError;
use thiserror::Error;

/// Why an order could not be sent, or events not recorded.
#[derive(Debug, Error)]
pub enum ExecutionError {
    /// The intent failed its own checks; nothing was written or sent.
    #[error("order {order_ref} is invalid and was not sent: {source}")]
    InvalidIntent {
        order_ref: String,
        #[source]
        source: DomainError,
    },
    /// A pre-flight check failed; nothing was written but an audit entry.
    #[error("order {order_ref} failed its pre-flight check {check}: {reason}")]
    PreFlight {
        order_ref: String,
        check: &'static str,
        reason: String,
    },
    /// The broker refused the order; it is stored as `rejected`.
    #[error("order {order_ref} was rejected by the broker: {reason}")]
    Rejected { order_ref: String, reason: String },
    /// The broker could not be reached; the order is stored as `created`
    /// and `reconcile` will send it (with the same `order_ref`).
    #[error(
        "order {order_ref} is written but not sent ({source}); reconcile will retry it with the same order_ref"
    )]
    NotSent {
        order_ref: String,
        #[source]
        source: BrokerError,
    },
    /// A broker call other than placing an order failed.
    #[error("broker call {what} failed: {source}")]
    Broker {
        what: String,
        #[source]
        source: BrokerError,
    },
    /// A fill the state machine refused (it would overfill, or the order
    /// cannot fill any more); the fill was not recorded and is audited.
    #[error("fill {exec_id} of order {order_ref} was refused: {reason}")]
    FillRefused {
        order_ref: String,
        exec_id: String,
        reason: String,
    },
    /// The store failed; what was being written is named.
    #[error("store failed while {what}: {source}")]
    Repo {
        what: String,
        #[source]
        source: RepoError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExecutionError {
    pub(crate) fn repo(what: impl Into<String>) -> impl FnOnce(RepoError) -> ExecutionError {
        let what = what.into();
        move |source| ExecutionError::Repo { what, source }
    }
}
