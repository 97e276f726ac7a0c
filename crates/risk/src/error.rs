//! The one error type of the crate.

use core_domain::Symbol;
use thiserror::Error;

/// What the risk crate cannot compute or accept.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RiskError {
    /// Limits that make no sense; every problem is listed.
    #[error("risk limits: {}", .0.join("; "))]
    InvalidLimits(Vec<String>),
    #[error("no return history for {0}: supply its daily log returns in the risk context")]
    MissingReturns(Symbol),
    #[error("return history of {symbol} has {have} usable days, {need} needed")]
    ShortHistory {
        symbol: Symbol,
        have: usize,
        need: usize,
    },
    #[error("returns of {0} and the other series have no variance: correlation undefined")]
    UndefinedCorrelation(Symbol),
    /// A position or order the models cannot value (bad price, vol, size).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("pricing failed: {0}")]
    Pricing(String),
}

impl From<pricing::PricingError> for RiskError {
    fn from(e: pricing::PricingError) -> Self {
        RiskError::Pricing(e.to_string())
    }
}
