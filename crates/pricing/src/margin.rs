//! Reg-T / Cboe initial margin of a short (naked) equity put.
//!
//! Per share: `premium + max(20% × underlying − OTM amount, 10% × strike)`,
//! with `OTM amount = max(underlying − strike, 0)`; times 100 shares a
//! contract, times the number of contracts. (Cboe Margin Manual, short
//! puts: 100% of the option proceeds plus 20% of the underlying less any
//! out-of-the-money amount, at least the proceeds plus 10% of the exercise
//! price.) Brokers may ask more (IBKR's house margin); this is the
//! regulatory floor the simulated exchange charges.

use core_domain::{Money, Price};

use crate::error::{PricingError, non_negative, positive};

/// Shares per standard US equity option contract.
const MULTIPLIER: i64 = 100;

/// The margin requirement of `contracts` short puts, in exact money.
///
/// Inputs are per-share prices ([`Price`], ten-thousandths of a dollar):
/// `underlying` > 0, `strike` > 0, `premium` ≥ 0 (the option's price, per
/// share), `contracts` ≥ 0. Computed in integers: with four decimals the
/// 20% and 10% terms are exact in hundred-thousandths of a dollar, so the
/// result is exact before rounding; it is rounded **up** to the cent only
/// when it is not a whole number of cents (a sub-cent requirement is owed in
/// full). With prices of at most two decimals it is always a whole cent.
pub fn short_put_margin(
    underlying: Price,
    strike: Price,
    premium: Price,
    contracts: i64,
) -> Result<Money, PricingError> {
    let price_error =
        |name: &'static str, p: Price, requirement: &'static str| PricingError::InvalidInput {
            name,
            value: p.to_f64(),
            requirement,
        };
    if !underlying.is_positive() {
        return Err(price_error("underlying price", underlying, "above 0"));
    }
    if !strike.is_positive() {
        return Err(price_error("strike", strike, "above 0"));
    }
    if premium.raw() < 0 {
        return Err(price_error("premium", premium, "at least 0"));
    }
    if contracts < 0 {
        return Err(PricingError::InvalidInput {
            name: "contracts",
            value: contracts as f64,
            requirement: "at least 0 (a count of short contracts)",
        });
    }
    // Per share in hundred-thousandths of a dollar (1e-5): a Price unit is
    // 1e-4 dollars, so ×10; 20% of it is ×2; 10% of it is ×1.
    let (u, k, p) = (
        i128::from(underlying.raw()),
        i128::from(strike.raw()),
        i128::from(premium.raw()),
    );
    let otm = (u - k).max(0);
    let per_share = p * 10 + (u * 2 - otm * 10).max(k);
    // × 100 shares × contracts, still in 1e-5 dollars; 1000 of them a cent.
    let total = per_share * i128::from(MULTIPLIER) * i128::from(contracts);
    let cents = total.div_euclid(1000) + i128::from(total.rem_euclid(1000) != 0);
    i64::try_from(cents)
        .map(Money::from_cents)
        .map_err(|_| PricingError::Overflow {
            why: format!(
                "{contracts} contracts at strike {strike} and underlying {underlying} exceed i64 cents"
            ),
        })
}

/// The same requirement in floating dollars, for models and statistics:
/// `100 × contracts × (premium + max(0.2·underlying − max(underlying − strike, 0), 0.1·strike))`,
/// not rounded. Inputs in dollars per share: `underlying` > 0, `strike` > 0,
/// `premium` ≥ 0, all finite; `contracts` ≥ 0.
pub fn short_put_margin_f64(
    underlying: f64,
    strike: f64,
    premium: f64,
    contracts: i64,
) -> Result<f64, PricingError> {
    positive("underlying price", underlying)?;
    positive("strike", strike)?;
    non_negative("premium", premium)?;
    if contracts < 0 {
        return Err(PricingError::InvalidInput {
            name: "contracts",
            value: contracts as f64,
            requirement: "at least 0 (a count of short contracts)",
        });
    }
    let otm = (underlying - strike).max(0.0);
    let per_share = premium + (0.2 * underlying - otm).max(0.1 * strike);
    Ok(per_share * MULTIPLIER as f64 * contracts as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sub_cent_requirement_rounds_up() {
        // 20% of $12.3456 = $2.46912 a share = $246.912 a contract.
        let m = short_put_margin(
            Price::from_raw(123_456),
            Price::from_raw(123_456),
            Price::ZERO,
            1,
        )
        .unwrap();
        assert_eq!(m, Money::from_cents(24_692));
    }

    #[test]
    fn test_whole_cent_requirement_is_not_rounded() {
        // $47.50 underlying, $45 strike, $0.50 premium: 0.5 + max(9.5 − 2.5, 4.5) = 7.5.
        let m = short_put_margin(
            Price::from_cents(4_750),
            Price::from_cents(4_500),
            Price::from_cents(50),
            1,
        )
        .unwrap();
        assert_eq!(m, Money::from_cents(75_000));
    }

    #[test]
    fn test_bad_margin_inputs_are_errors() {
        let p = Price::from_cents(100);
        assert!(short_put_margin(Price::ZERO, p, p, 1).is_err());
        assert!(short_put_margin(p, p, p, -1).is_err());
        assert!(short_put_margin(p, p, Price::from_raw(-1), 1).is_err());
        assert!(short_put_margin_f64(f64::NAN, 1.0, 0.1, 1).is_err());
        assert!(short_put_margin(p, p, p, i64::MAX).is_err());
    }
}
