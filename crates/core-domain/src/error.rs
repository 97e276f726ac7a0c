//! Errors of the domain layer and of the traits it defines.

use thiserror::Error;

use crate::OrderStatus;

/// A value or a state change the domain refuses.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DomainError {
    #[error("invalid symbol {0:?}: use 1-12 characters of A-Z, 0-9, '.', '-'")]
    InvalidSymbol(String),
    #[error("invalid price: {0}")]
    InvalidPrice(String),
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    #[error("malformed quote: {0}")]
    MalformedQuote(String),
    #[error("order {order_ref}: cannot go from {from} to {to}: {why}")]
    IllegalTransition {
        order_ref: String,
        from: OrderStatus,
        to: OrderStatus,
        why: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// What a broker or market-data source can answer instead of data. Shaped
/// after what IBKR really reports, so the simulated exchange and the IBKR
/// adapter map onto the same cases.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BrokerError {
    #[error("not connected to the broker: {0}")]
    NotConnected(String),
    #[error("unknown contract {0}: check the symbol, expiry and strike")]
    UnknownContract(String),
    #[error("no market data for {0}")]
    NoData(String),
    #[error("market closed: {0}")]
    MarketClosed(String),
    #[error("order {order_ref} rejected: {reason}")]
    Rejected { order_ref: String, reason: String },
    #[error("insufficient margin for {order_ref}: {detail}")]
    InsufficientMargin { order_ref: String, detail: String },
    #[error("pacing limit reached ({0}); slow down and retry")]
    Pacing(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("unexpected reply from the broker: {0}")]
    Protocol(String),
    #[error("broker error {code}: {message}")]
    Api { code: i32, message: String },
}

impl BrokerError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BrokerError::NotConnected(_) | BrokerError::Pacing(_) | BrokerError::Timeout(_)
        )
    }
}

/// What a repository can answer instead of data.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RepoError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The update contradicts what is stored (an order status going
    /// backwards, a filled quantity shrinking): a stale copy was written.
    #[error("conflicting update: {0}; re-read it and apply the change again")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(String),
}
