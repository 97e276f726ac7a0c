//! The one place the market model calls the pricing crate.

use core_domain::{Greeks, Right};
use pricing::{OptionInputs, european_valuation};

/// Black-Scholes-Merton value and greeks; a zero value and zero greeks if
/// the inputs are degenerate (the model never produces such inputs, but a
/// quote must not carry NaN).
pub(crate) fn price_and_greeks(
    is_put: bool,
    spot: f64,
    strike: f64,
    rate: f64,
    dividend_yield: f64,
    vol: f64,
    t_years: f64,
) -> (f64, Greeks) {
    let inputs = OptionInputs {
        right: if is_put { Right::Put } else { Right::Call },
        spot,
        strike,
        t_years,
        rate,
        dividend_yield,
    };
    match european_valuation(&inputs, vol) {
        Ok(v) => (v.price, v.greeks),
        Err(e) => {
            tracing::warn!("option model produced unusable inputs: {e}");
            (0.0, Greeks::default())
        }
    }
}
