//! What the strategy answers instead of a result.

use core_domain::BrokerError;
use thiserror::Error;

/// Why a strategy call failed.
///
/// Broker and market-data failures carry what was being done when they
/// happened, so that the message reads on its own: "reading the option
/// chain of AAPL: no market data for AAPL". A scan records a per-symbol
/// failure as a skip and carries on; only a failure that makes the whole
/// call meaningless (bad parameters) comes back as an `Err`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StrategyError {
    /// A broker or market-data request failed.
    #[error("{doing}: {source}")]
    Broker {
        /// What was being done, e.g. "reading the option chain of AAPL".
        doing: String,
        #[source]
        source: BrokerError,
    },
    /// A margin or price computation refused its inputs.
    #[error("{doing}: {why}")]
    Pricing { doing: String, why: String },
    /// The strategy's parameters cannot be used (e.g. an empty OTM range).
    #[error("invalid strategy parameters: {0}")]
    BadParams(String),
}

impl StrategyError {
    /// Wraps a broker error with what was being done.
    pub fn broker(doing: impl Into<String>, source: BrokerError) -> Self {
        StrategyError::Broker {
            doing: doing.into(),
            source,
        }
    }
}
