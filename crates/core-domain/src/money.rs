//! Money and prices as integers, so that the ledger never drifts.
//!
//! * [`Money`] is an amount of account currency in whole **cents** (`i64`).
//!   Cash, P&L, commissions and margin are `Money`. Adding and subtracting
//!   `Money` is exact; there is no floating point anywhere in the ledger.
//! * [`Price`] is a per-unit quote (per share, or per share of an option's
//!   underlying) in **ten-thousandths of a dollar** (`i64`). Four decimals
//!   cover every listed stock and option tick (IBKR quotes sub-dollar stocks
//!   to $0.0001) and every split-adjusted strike.
//!
//! Multiplying a `Price` by a quantity and an option multiplier of 100 gives
//! an exact number of cents (4 decimals × 100 = 2 decimals). Where the product
//! is not a whole number of cents (stock quantities at sub-cent prices) it is
//! rounded half-to-even once, in [`Price::notional`], the only place a price
//! becomes money.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ten-thousandths of a dollar in one dollar.
pub const PRICE_SCALE: i64 = 10_000;
/// Cents in one dollar.
pub const CENTS: i64 = 100;

/// An amount of money in whole cents.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    /// Whole dollars, e.g. `Money::from_dollars(500)` is $500.00.
    pub const fn from_dollars(dollars: i64) -> Self {
        Money(dollars * CENTS)
    }

    /// Rounds a floating amount of dollars to the nearest cent (half away
    /// from zero). Use only at boundaries (reports, model outputs), never to
    /// carry ledger amounts.
    pub fn from_f64_dollars(dollars: f64) -> Result<Self, crate::DomainError> {
        if !dollars.is_finite() {
            return Err(crate::DomainError::InvalidAmount(format!(
                "{dollars} dollars is not a finite amount"
            )));
        }
        let cents = (dollars * CENTS as f64).round();
        if cents.abs() >= i64::MAX as f64 {
            return Err(crate::DomainError::InvalidAmount(format!(
                "{dollars} dollars is out of range"
            )));
        }
        Ok(Money(cents as i64))
    }

    /// Dollars as a float, for statistics and display only.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / CENTS as f64
    }

    pub fn abs(self) -> Self {
        Money(self.0.abs())
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Money> {
        self.0.checked_mul(factor).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Money {
    type Err = crate::DomainError;

    /// Parses `"-12.34"`, `"12"`, `"12.3"`; more than two decimals is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_fixed(s, 2)
            .map(Money)
            .map_err(|why| crate::DomainError::InvalidAmount(format!("money {s:?}: {why}")))
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}
impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}
impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}
impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 -= rhs.0;
    }
}
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}
impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

/// A per-unit price in ten-thousandths of a dollar.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Price(i64);

impl Price {
    pub const ZERO: Price = Price(0);

    /// From ten-thousandths of a dollar: `Price::from_raw(3_500)` is $0.35.
    pub const fn from_raw(ten_thousandths: i64) -> Self {
        Price(ten_thousandths)
    }

    pub const fn raw(self) -> i64 {
        self.0
    }

    /// From whole cents: `Price::from_cents(35)` is $0.35.
    pub const fn from_cents(cents: i64) -> Self {
        Price(cents * (PRICE_SCALE / CENTS))
    }

    /// Rounds a float to the nearest $0.0001 (half away from zero). This is
    /// the boundary where model and broker floats become prices; a NaN, an
    /// infinity or an absurd value is an error, never a silent zero.
    pub fn from_f64(value: f64) -> Result<Self, crate::DomainError> {
        if !value.is_finite() {
            return Err(crate::DomainError::InvalidPrice(format!(
                "{value} is not a finite price"
            )));
        }
        let raw = (value * PRICE_SCALE as f64).round();
        if raw.abs() >= 1e15 {
            return Err(crate::DomainError::InvalidPrice(format!(
                "{value} is out of range for a price"
            )));
        }
        Ok(Price(raw as i64))
    }

    pub fn to_f64(self) -> f64 {
        self.0 as f64 / PRICE_SCALE as f64
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Rounds to a multiple of `tick` (half away from zero). A zero or
    /// negative tick returns the price unchanged.
    pub fn round_to_tick(self, tick: Price) -> Price {
        if tick.0 <= 0 {
            return self;
        }
        let q = self.0.div_euclid(tick.0);
        let r = self.0.rem_euclid(tick.0);
        let down = q * tick.0;
        if r * 2 >= tick.0 {
            Price(down + tick.0)
        } else {
            Price(down)
        }
    }

    /// Rounds down to a multiple of `tick` (for a buyer's worst acceptable
    /// limit rounded in their favour, use [`Price::ceil_to_tick`]).
    pub fn floor_to_tick(self, tick: Price) -> Price {
        if tick.0 <= 0 {
            return self;
        }
        Price(self.0.div_euclid(tick.0) * tick.0)
    }

    /// Rounds up to a multiple of `tick`.
    pub fn ceil_to_tick(self, tick: Price) -> Price {
        if tick.0 <= 0 {
            return self;
        }
        let floor = self.0.div_euclid(tick.0) * tick.0;
        if floor == self.0 {
            self
        } else {
            Price(floor + tick.0)
        }
    }

    /// The money value of `quantity` units at this price with a contract
    /// `multiplier` (100 for equity options, 1 for stock): the one place a
    /// price becomes money. Exact when `multiplier` is a multiple of 100;
    /// otherwise rounded half-to-even to the cent.
    pub fn notional(self, quantity: i64, multiplier: i64) -> Money {
        let ten_thousandths = i128::from(self.0) * i128::from(quantity) * i128::from(multiplier);
        let per_cent = i128::from(PRICE_SCALE / CENTS);
        let q = ten_thousandths.div_euclid(per_cent);
        let r = ten_thousandths.rem_euclid(per_cent);
        let rounded = match (r * 2).cmp(&per_cent) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => {
                if q % 2 == 0 {
                    q
                } else {
                    q + 1
                }
            }
        };
        // Notional amounts of real orders are far below i64::MAX cents.
        Money(i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN }))
    }
}

impl fmt::Display for Price {
    /// At least two decimals, up to four: `0.35`, `12.3456`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / PRICE_SCALE as u64;
        let frac = abs % PRICE_SCALE as u64;
        if frac.is_multiple_of(100) {
            write!(f, "{sign}{whole}.{:02}", frac / 100)
        } else {
            let s = format!("{frac:04}");
            write!(f, "{sign}{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

impl FromStr for Price {
    type Err = crate::DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_fixed(s, 4)
            .map(Price)
            .map_err(|why| crate::DomainError::InvalidPrice(format!("price {s:?}: {why}")))
    }
}

impl Add for Price {
    type Output = Price;
    fn add(self, rhs: Price) -> Price {
        Price(self.0 + rhs.0)
    }
}
impl Sub for Price {
    type Output = Price;
    fn sub(self, rhs: Price) -> Price {
        Price(self.0 - rhs.0)
    }
}

/// Parses a decimal string with at most `decimals` fractional digits into an
/// integer scaled by 10^decimals.
fn parse_fixed(s: &str, decimals: u32) -> Result<i64, String> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return Err("empty number".into());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err("not a decimal number".into());
    }
    if frac.len() > decimals as usize {
        return Err(format!("more than {decimals} decimals"));
    }
    let scale = 10_i64.pow(decimals);
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "out of range".to_string())?
    };
    let mut f_str = frac.to_string();
    while f_str.len() < decimals as usize {
        f_str.push('0');
    }
    let f: i64 = if f_str.is_empty() {
        0
    } else {
        f_str.parse().map_err(|_| "out of range".to_string())?
    };
    let v = w
        .checked_mul(scale)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(|| "out of range".to_string())?;
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn money_displays_with_two_decimals_and_sign() {
        assert_eq!(Money::from_cents(-5).to_string(), "-0.05");
        assert_eq!(Money::from_cents(123_456).to_string(), "1234.56");
        assert_eq!(Money::ZERO.to_string(), "0.00");
    }

    #[test]
    fn price_displays_between_two_and_four_decimals() {
        assert_eq!(Price::from_cents(35).to_string(), "0.35");
        assert_eq!(Price::from_raw(123_456).to_string(), "12.3456");
        assert_eq!(Price::from_raw(123_450).to_string(), "12.345");
    }

    #[test]
    fn parsing_rejects_too_many_decimals_and_garbage() {
        assert!("1.234".parse::<Money>().is_err());
        assert!("abc".parse::<Price>().is_err());
        assert!("".parse::<Price>().is_err());
        assert_eq!("0.35".parse::<Price>().ok(), Some(Price::from_cents(35)));
        assert_eq!("-2.5".parse::<Money>().ok(), Some(Money::from_cents(-250)));
        assert_eq!(".5".parse::<Price>().ok(), Some(Price::from_raw(5_000)));
    }

    #[test]
    fn option_premium_notional_is_exact() {
        // 5 contracts at $0.35 = $175.00
        assert_eq!(
            Price::from_cents(35).notional(5, 100),
            Money::from_cents(17_500)
        );
        // $0.3512 per share on one contract = $35.12
        assert_eq!(
            Price::from_raw(3_512).notional(1, 100),
            Money::from_cents(3_512)
        );
    }

    #[test]
    fn stock_notional_rounds_half_to_even_once() {
        // 1 share at $0.0050 = half a cent -> rounds to the even cent (0)
        assert_eq!(Price::from_raw(50).notional(1, 1), Money::ZERO);
        // 3 shares at $0.0050 = 1.5 cents -> 2 cents
        assert_eq!(Price::from_raw(50).notional(3, 1), Money::from_cents(2));
    }

    #[test]
    fn from_f64_refuses_nan_and_infinity() {
        assert!(Price::from_f64(f64::NAN).is_err());
        assert!(Price::from_f64(f64::INFINITY).is_err());
        assert!(Money::from_f64_dollars(f64::NAN).is_err());
        assert_eq!(Price::from_f64(0.35).ok(), Some(Price::from_cents(35)));
    }

    #[test]
    fn ticks_round_as_documented() {
        let nickel = Price::from_cents(5);
        assert_eq!(
            Price::from_raw(31_240).round_to_tick(nickel),
            Price::from_cents(310)
        );
        assert_eq!(
            Price::from_raw(31_250).round_to_tick(nickel),
            Price::from_cents(315)
        );
        assert_eq!(
            Price::from_raw(31_001).ceil_to_tick(nickel),
            Price::from_cents(315)
        );
        assert_eq!(
            Price::from_raw(31_499).floor_to_tick(nickel),
            Price::from_cents(310)
        );
    }

    proptest! {
        #[test]
        fn price_string_round_trips(raw in -1_000_000_000i64..1_000_000_000) {
            let p = Price::from_raw(raw);
            prop_assert_eq!(p.to_string().parse::<Price>().ok(), Some(p));
        }

        #[test]
        fn money_string_round_trips(cents in -1_000_000_000_000i64..1_000_000_000_000) {
            let m = Money::from_cents(cents);
            prop_assert_eq!(m.to_string().parse::<Money>().ok(), Some(m));
        }

        #[test]
        fn option_notional_is_linear_in_quantity(raw in 0i64..10_000_000, a in 0i64..1000, b in 0i64..1000) {
            let p = Price::from_raw(raw);
            prop_assert_eq!(p.notional(a + b, 100), p.notional(a, 100) + p.notional(b, 100));
        }
    }
}
