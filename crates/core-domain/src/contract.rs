//! Instruments: symbols, stocks and options, shaped after IBKR contracts.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{DomainError, Price};

/// A ticker symbol, upper case, 1–12 characters of `A-Z 0-9 . -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(String);

impl Symbol {
    pub fn new(s: impl AsRef<str>) -> Result<Self, DomainError> {
        let up = s.as_ref().trim().to_ascii_uppercase();
        let ok = !up.is_empty()
            && up.len() <= 12
            && up
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ' ');
        if ok {
            Ok(Symbol(up))
        } else {
            Err(DomainError::InvalidSymbol(s.as_ref().to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Symbol {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Symbol::new(s)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> String {
        s.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Put or call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Right {
    Put,
    Call,
}

impl Right {
    /// IBKR's one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Right::Put => "P",
            Right::Call => "C",
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Right::Put => "PUT",
            Right::Call => "CALL",
        })
    }
}

impl std::str::FromStr for Right {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "P" | "PUT" => Ok(Right::Put),
            "C" | "CALL" => Ok(Right::Call),
            _ => Err(DomainError::Invalid(format!(
                "option right {s:?}: expected PUT or CALL"
            ))),
        }
    }
}

/// A common stock.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StockContract {
    pub symbol: Symbol,
    /// IBKR contract id, when known (0 is never a valid id there).
    pub con_id: Option<i64>,
    pub currency: String,
    pub exchange: String,
}

impl StockContract {
    pub fn us(symbol: Symbol) -> Self {
        StockContract {
            symbol,
            con_id: None,
            currency: "USD".into(),
            exchange: "SMART".into(),
        }
    }
}

/// A listed equity option.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OptionContract {
    pub underlying: Symbol,
    pub right: Right,
    pub strike: Price,
    /// Last trading day (IBKR's `lastTradeDateOrContractMonth`).
    pub expiry: NaiveDate,
    /// Shares per contract; 100 for US equity options.
    pub multiplier: i64,
    pub con_id: Option<i64>,
    pub currency: String,
    pub exchange: String,
}

impl OptionContract {
    /// A standard US equity option (multiplier 100, SMART routing, USD).
    pub fn us(underlying: Symbol, right: Right, strike: Price, expiry: NaiveDate) -> Self {
        OptionContract {
            underlying,
            right,
            strike,
            expiry,
            multiplier: 100,
            con_id: None,
            currency: "USD".into(),
            exchange: "SMART".into(),
        }
    }

    /// A readable, stable key: `AAPL 2024-01-19 150.00 P`. Used as the
    /// position key in the store.
    pub fn key(&self) -> String {
        format!(
            "{} {} {} {}",
            self.underlying,
            self.expiry.format("%Y-%m-%d"),
            self.strike,
            self.right.code()
        )
    }

    /// Calendar days from `today` to expiry (negative once expired).
    pub fn days_to_expiry(&self, today: NaiveDate) -> i64 {
        (self.expiry - today).num_days()
    }
}

/// Any instrument the system trades.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Contract {
    Stock(StockContract),
    Option(OptionContract),
}

impl Contract {
    pub fn symbol(&self) -> &Symbol {
        match self {
            Contract::Stock(s) => &s.symbol,
            Contract::Option(o) => &o.underlying,
        }
    }

    pub fn multiplier(&self) -> i64 {
        match self {
            Contract::Stock(_) => 1,
            Contract::Option(o) => o.multiplier,
        }
    }

    pub fn key(&self) -> String {
        match self {
            Contract::Stock(s) => s.symbol.to_string(),
            Contract::Option(o) => o.key(),
        }
    }

    pub fn con_id(&self) -> Option<i64> {
        match self {
            Contract::Stock(s) => s.con_id,
            Contract::Option(o) => o.con_id,
        }
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_is_normalised_and_validated() {
        assert_eq!(
            Symbol::new(" aapl ").map(|s| s.to_string()).ok(),
            Some("AAPL".into())
        );
        assert!(Symbol::new("").is_err());
        assert!(Symbol::new("A;DROP").is_err());
        assert!(Symbol::new("BRK.B").is_ok());
    }

    #[test]
    fn option_key_is_readable() -> Result<(), DomainError> {
        let expiry =
            NaiveDate::from_ymd_opt(2024, 1, 19).ok_or(DomainError::Invalid("date".into()))?;
        let o = OptionContract::us(
            Symbol::new("AAPL")?,
            Right::Put,
            Price::from_cents(15_000),
            expiry,
        );
        assert_eq!(o.key(), "AAPL 2024-01-19 150.00 P");
        let today =
            NaiveDate::from_ymd_opt(2024, 1, 9).ok_or(DomainError::Invalid("date".into()))?;
        assert_eq!(o.days_to_expiry(today), 10);
        Ok(())
    }
}
