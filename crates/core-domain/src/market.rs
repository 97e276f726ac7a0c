//! Market data: quotes with greeks, daily bars, option chains.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{Contract, OptionContract, Price, Symbol};

/// Option sensitivities. `theta` is per year and `vega` per 1.00 of
/// volatility (per 100 vol points), the conventions of the golden files;
/// divide by 365 or 100 for per-day and per-point figures.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Greeks {
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
}

/// A top-of-book quote. Prices are optional because brokers send partial
/// quotes (a bid with no ask, a halted stock with no bid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub contract: Contract,
    pub bid: Option<Price>,
    pub ask: Option<Price>,
    pub last: Option<Price>,
    pub bid_size: Option<i64>,
    pub ask_size: Option<i64>,
    pub time: DateTime<Utc>,
    /// Implied volatility (annualized, 0.25 = 25%), for options.
    pub implied_vol: Option<f64>,
    pub greeks: Option<Greeks>,
    /// The underlying's price the greeks were computed at.
    pub underlying_price: Option<Price>,
    pub open_interest: Option<i64>,
    pub volume: Option<i64>,
}

impl Quote {
    /// The mid of a two-sided quote.
    pub fn mid(&self) -> Option<Price> {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) => Some(Price::from_raw((b.raw() + a.raw()) / 2)),
            _ => None,
        }
    }

    /// Ask minus bid, for a two-sided quote.
    pub fn spread(&self) -> Option<Price> {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) => Some(a - b),
            _ => None,
        }
    }

    /// A quote is usable for trading when both sides are present, positive
    /// (a zero bid is allowed for worthless options) and not crossed.
    pub fn validate(&self) -> Result<(), crate::DomainError> {
        let (bid, ask) = match (self.bid, self.ask) {
            (Some(b), Some(a)) => (b, a),
            _ => {
                return Err(crate::DomainError::MalformedQuote(format!(
                    "{}: one-sided quote (bid {:?}, ask {:?})",
                    self.contract, self.bid, self.ask
                )));
            }
        };
        if bid.raw() < 0 || ask.raw() <= 0 {
            return Err(crate::DomainError::MalformedQuote(format!(
                "{}: non-positive price (bid {bid}, ask {ask})",
                self.contract
            )));
        }
        if bid > ask {
            return Err(crate::DomainError::MalformedQuote(format!(
                "{}: crossed quote (bid {bid} > ask {ask})",
                self.contract
            )));
        }
        if let Some(iv) = self.implied_vol
            && (!iv.is_finite() || iv < 0.0)
        {
            return Err(crate::DomainError::MalformedQuote(format!(
                "{}: implied volatility {iv} is not a non-negative number",
                self.contract
            )));
        }
        Ok(())
    }
}

/// One daily bar. Historical data in this project is adjusted for splits
/// and dividends; `open/high/low` may equal `close` where only closes exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyBar {
    pub symbol: Symbol,
    pub date: NaiveDate,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: Option<i64>,
}

/// What an exchange lists for one underlying: expirations and strikes
/// (IBKR's security-definition option parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionChain {
    pub underlying: Symbol,
    pub underlying_con_id: Option<i64>,
    pub expirations: Vec<NaiveDate>,
    pub strikes: Vec<Price>,
    pub multiplier: i64,
}

/// A quoted option: the contract and its quote (with IV, greeks, open
/// interest when the source has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionQuote {
    pub contract: OptionContract,
    pub quote: Quote,
}
