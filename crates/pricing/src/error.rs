//! The one error type of the crate.

use core_domain::Right;

/// What went wrong in a pricing call, and why. Every message names the
/// offending number and the rule it breaks, so that a caller can print it
/// as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PricingError {
    /// An input is out of its domain (negative, zero where it must be
    /// positive, NaN or infinite).
    #[error("{name} {value} is invalid: it must be {requirement}")]
    InvalidInput {
        name: &'static str,
        value: f64,
        requirement: &'static str,
    },

    /// The inputs are each valid but together overflow `f64` (for example a
    /// forward `spot·e^((r−q)t)` that is infinite).
    #[error("{what} is not a finite number for these inputs: {why}")]
    OutOfRange { what: &'static str, why: String },

    /// An implied-volatility target below the lowest value a European option
    /// can have (its discounted forward intrinsic value).
    #[error(
        "price {price} is below the intrinsic value {intrinsic} of the {right} \
         (discounted forward intrinsic, the value at zero volatility): no volatility gives it"
    )]
    BelowIntrinsic {
        price: f64,
        intrinsic: f64,
        right: RightName,
    },

    /// An implied-volatility target at or above the most a European option
    /// can be worth (the discounted spot for a call, the discounted strike for
    /// a put), the limit as volatility goes to infinity.
    #[error(
        "price {price} is at or above {bound} (to within rounding), the most a {right} \
         can be worth (its value at infinite volatility): no volatility gives it"
    )]
    AboveUpperBound {
        price: f64,
        bound: f64,
        right: RightName,
    },

    /// Implied volatility asked of an option with no time left: at expiry an
    /// option is worth its intrinsic value whatever the volatility.
    #[error(
        "no volatility can be implied at expiry (t = {t_years} years): the option is worth \
         its intrinsic value {intrinsic} whatever the volatility"
    )]
    NoTimeValue { t_years: f64, intrinsic: f64 },

    /// The implied-volatility iteration did not meet its tolerance. It has a
    /// bracketing fallback, so this means a bug or inputs at the edge of
    /// floating point; the message carries the inputs to reproduce it.
    #[error("implied volatility did not converge for {details}")]
    NoConvergence { details: String },

    /// Integer money arithmetic overflowed `i64` cents.
    #[error("margin overflows: {why}")]
    Overflow { why: String },
}

/// `put` or `call`, lower case, for messages (core-domain's `Right` displays
/// as `PUT`/`CALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RightName(pub Right);

impl std::fmt::Display for RightName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Right::Put => "put",
            Right::Call => "call",
        })
    }
}

/// Checks that `value` is finite and at least zero.
#[inline]
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<f64, PricingError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(PricingError::InvalidInput {
            name,
            value,
            requirement: "a finite number at least 0",
        })
    }
}

/// Checks that `value` is finite and above zero.
#[inline]
pub(crate) fn positive(name: &'static str, value: f64) -> Result<f64, PricingError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(PricingError::InvalidInput {
            name,
            value,
            requirement: "a finite number above 0",
        })
    }
}

/// Checks that `value` is finite (any sign).
#[inline]
pub(crate) fn finite(name: &'static str, value: f64) -> Result<f64, PricingError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(PricingError::InvalidInput {
            name,
            value,
            requirement: "a finite number",
        })
    }
}
