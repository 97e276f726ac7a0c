//! Domain contracts ↔ `ibapi` contracts (crate-private: no `ibapi` type is
//! public), and the float ↔ integer boundary.
//!
//! IBKR sends prices and amounts as `f64`. They become domain integers
//! here and only here:
//! * prices → [`Price`] (ten-thousandths of a dollar), rounded to the
//!   nearest $0.0001, half away from zero ([`Price::from_f64`]);
//! * amounts (commissions, margin, account values) → [`Money`] (cents),
//!   rounded to the nearest cent, half away from zero
//!   ([`Money::from_f64_dollars`]);
//! * quantities → `i64`, rounded to the nearest whole unit (IBKR sends
//!   decimal quantities; fractional shares are not traded here).
//!
//! IBKR's "unset" values (`f64::MAX`, NaN, infinities, the `-1` it sends
//! for a missing bid or ask) become `None`, never a zero price.

use chrono::NaiveDate;
use core_domain::{
    BrokerError, Contract, Money, OptionContract, Price, Right, StockContract, Symbol,
};
use ibapi::contracts::{Contract as IbContract, Currency, Exchange, OptionRight, SecurityType};

/// An IBKR price, `None` when unset or not a real price.
pub(crate) fn price(value: f64) -> Option<Price> {
    if !value.is_finite() || !(0.0..f64::MAX / 2.0).contains(&value) {
        return None;
    }
    Price::from_f64(value).ok()
}

/// An IBKR price that may be zero or negative (e.g. an average cost).
pub(crate) fn signed_price(value: f64) -> Option<Price> {
    if !value.is_finite() || value.abs() >= f64::MAX / 2.0 {
        return None;
    }
    Price::from_f64(value).ok()
}

/// An IBKR amount of dollars, `None` when unset.
pub(crate) fn money(value: f64) -> Option<Money> {
    if !value.is_finite() || value.abs() >= f64::MAX / 2.0 {
        return None;
    }
    Money::from_f64_dollars(value).ok()
}

/// An IBKR quantity (decimal) as whole units, `None` when unset.
pub(crate) fn quantity(value: f64) -> Option<i64> {
    if !value.is_finite() || value.abs() >= 1e15 {
        return None;
    }
    Some(value.round() as i64)
}

/// IBKR's `lastTradeDateOrContractMonth` for a day: `YYYYMMDD`.
pub(crate) fn expiry_code(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Parses `YYYYMMDD` (a trailing time or zone, as some messages carry, is
/// ignored).
pub(crate) fn parse_expiry(code: &str) -> Option<NaiveDate> {
    let digits: String = code.trim().chars().take(8).collect();
    NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()
}

/// The IBKR contract for a domain contract.
pub(crate) fn to_ib(contract: &Contract) -> IbContract {
    match contract {
        Contract::Stock(s) => stock_to_ib(s),
        Contract::Option(o) => option_to_ib(o),
    }
}

pub(crate) fn stock_to_ib(s: &StockContract) -> IbContract {
    IbContract {
        contract_id: s.con_id.and_then(|id| i32::try_from(id).ok()).unwrap_or(0),
        symbol: s.symbol.as_str().into(),
        security_type: SecurityType::Stock,
        exchange: Exchange::from(or_default(&s.exchange, "SMART")),
        currency: Currency::from(or_default(&s.currency, "USD")),
        ..IbContract::default()
    }
}

pub(crate) fn option_to_ib(o: &OptionContract) -> IbContract {
    IbContract {
        contract_id: o.con_id.and_then(|id| i32::try_from(id).ok()).unwrap_or(0),
        symbol: o.underlying.as_str().into(),
        security_type: SecurityType::Option,
        last_trade_date_or_contract_month: expiry_code(o.expiry),
        strike: o.strike.to_f64(),
        right: Some(match o.right {
            Right::Put => OptionRight::Put,
            Right::Call => OptionRight::Call,
        }),
        multiplier: o.multiplier.to_string(),
        exchange: Exchange::from(or_default(&o.exchange, "SMART")),
        currency: Currency::from(or_default(&o.currency, "USD")),
        ..IbContract::default()
    }
}

fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.trim().is_empty() {
        default
    } else {
        value
    }
}

/// The domain contract for an IBKR contract (stocks and options only).
pub(crate) fn from_ib(c: &IbContract) -> Result<Contract, BrokerError> {
    let symbol = Symbol::new(c.symbol.as_str())
        .map_err(|e| BrokerError::Protocol(format!("contract {}: {e}", c.contract_id)))?;
    let con_id = (c.contract_id != 0).then_some(i64::from(c.contract_id));
    let currency = or_default(c.currency.as_str(), "USD").to_string();
    let exchange = or_default(c.exchange.as_str(), "SMART").to_string();
    match c.security_type {
        SecurityType::Stock => Ok(Contract::Stock(StockContract {
            symbol,
            con_id,
            currency,
            exchange,
        })),
        SecurityType::Option => {
            let expiry = parse_expiry(&c.last_trade_date_or_contract_month)
                .or_else(|| {
                    c.last_trade_date.and_then(|d| {
                        NaiveDate::from_ymd_opt(
                            d.year(),
                            u32::from(u8::from(d.month())),
                            u32::from(d.day()),
                        )
                    })
                })
                .ok_or_else(|| {
                    BrokerError::Protocol(format!(
                        "option {symbol}: expiry {:?} is not YYYYMMDD",
                        c.last_trade_date_or_contract_month
                    ))
                })?;
            let right = match c.right {
                Some(OptionRight::Put) => Right::Put,
                Some(OptionRight::Call) => Right::Call,
                None => {
                    return Err(BrokerError::Protocol(format!(
                        "option {symbol} {expiry}: no right (put/call)"
                    )));
                }
            };
            let strike = price(c.strike).ok_or_else(|| {
                BrokerError::Protocol(format!("option {symbol} {expiry}: strike {}", c.strike))
            })?;
            let multiplier = c
                .multiplier
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(quantity)
                .unwrap_or(100);
            Ok(Contract::Option(OptionContract {
                underlying: symbol,
                right,
                strike,
                expiry,
                multiplier,
                con_id,
                currency,
                exchange,
            }))
        }
        ref other => Err(BrokerError::Protocol(format!(
            "contract {} ({}): security type {other:?} is not traded by this system",
            c.symbol, c.contract_id
        ))),
    }
}

/// A readable description for logs and error messages.
pub(crate) fn describe(contract: &Contract) -> String {
    contract.key()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aapl_put() -> Result<OptionContract, Box<dyn std::error::Error>> {
        Ok(OptionContract::us(
            Symbol::new("AAPL")?,
            Right::Put,
            Price::from_cents(15_250),
            NaiveDate::from_ymd_opt(2025, 1, 17).ok_or("date")?,
        ))
    }

    #[test]
    fn option_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let mut o = aapl_put()?;
        let ib = option_to_ib(&o);
        assert_eq!(ib.symbol.as_str(), "AAPL");
        assert_eq!(ib.security_type, SecurityType::Option);
        assert_eq!(ib.last_trade_date_or_contract_month, "20250117");
        assert_eq!(ib.strike, 152.5);
        assert_eq!(ib.right, Some(OptionRight::Put));
        assert_eq!(ib.multiplier, "100");
        assert_eq!(ib.exchange.as_str(), "SMART");
        assert_eq!(ib.currency.as_str(), "USD");
        assert_eq!(ib.contract_id, 0);
        assert_eq!(from_ib(&ib)?, Contract::Option(o.clone()));

        o.con_id = Some(123_456);
        o.right = Right::Call;
        let back = from_ib(&to_ib(&Contract::Option(o.clone())))?;
        assert_eq!(back, Contract::Option(o));
        Ok(())
    }

    #[test]
    fn stock_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let mut s = StockContract::us(Symbol::new("BRK.B")?);
        let ib = stock_to_ib(&s);
        assert_eq!(ib.security_type, SecurityType::Stock);
        assert_eq!(ib.exchange.as_str(), "SMART");
        assert_eq!(from_ib(&ib)?, Contract::Stock(s.clone()));
        s.con_id = Some(265_598);
        assert_eq!(from_ib(&stock_to_ib(&s))?, Contract::Stock(s));
        Ok(())
    }

    #[test]
    fn empty_exchange_and_currency_default_to_smart_usd() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut s = StockContract::us(Symbol::new("SPY")?);
        s.exchange = String::new();
        s.currency = String::new();
        let ib = stock_to_ib(&s);
        assert_eq!(ib.exchange.as_str(), "SMART");
        assert_eq!(ib.currency.as_str(), "USD");
        Ok(())
    }

    #[test]
    fn sub_cent_strikes_survive() -> Result<(), Box<dyn std::error::Error>> {
        let mut o = aapl_put()?;
        o.strike = Price::from_raw(1_234_567); // 123.4567 after a split
        assert_eq!(from_ib(&option_to_ib(&o))?, Contract::Option(o));
        Ok(())
    }

    #[test]
    fn other_security_types_are_refused() {
        let ib = IbContract {
            symbol: "ES".into(),
            security_type: SecurityType::Future,
            ..IbContract::default()
        };
        assert!(matches!(from_ib(&ib), Err(BrokerError::Protocol(_))));
    }

    #[test]
    fn option_without_right_or_expiry_is_a_protocol_error() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut ib = option_to_ib(&aapl_put()?);
        ib.right = None;
        assert!(matches!(from_ib(&ib), Err(BrokerError::Protocol(_))));
        let mut ib = option_to_ib(&aapl_put()?);
        ib.last_trade_date_or_contract_month = "2025".into();
        assert!(matches!(from_ib(&ib), Err(BrokerError::Protocol(_))));
        Ok(())
    }

    #[test]
    fn float_boundary() {
        assert_eq!(price(1.235), Some(Price::from_raw(12_350)));
        assert_eq!(
            price(0.00005),
            Some(Price::from_raw(1)),
            "half away from zero"
        );
        assert_eq!(price(-1.0), None, "IB's -1 means no price");
        assert_eq!(price(f64::MAX), None);
        assert_eq!(price(f64::NAN), None);
        assert_eq!(signed_price(-2.5), Some(Price::from_raw(-25_000)));
        assert_eq!(
            money(1.005),
            Some(Money::from_cents(100)).or(Some(Money::from_cents(101)))
        );
        assert_eq!(money(-1_234.565_1), Some(Money::from_cents(-123_457)));
        assert_eq!(money(f64::MAX), None);
        assert_eq!(quantity(2.0), Some(2));
        assert_eq!(quantity(-3.0), Some(-3));
        assert_eq!(quantity(f64::INFINITY), None);
    }

    #[test]
    fn expiry_codes() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 1);
        assert_eq!(d.map(expiry_code).as_deref(), Some("20240301"));
        assert_eq!(parse_expiry("20240301"), d);
        assert_eq!(parse_expiry("20240301 16:00 US/Eastern"), d);
        assert_eq!(parse_expiry("202403"), None);
    }
}
