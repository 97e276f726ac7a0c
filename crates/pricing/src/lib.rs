//! # pricing
//!
//! Options math used everywhere: the chain model of the simulated exchange,
//! the strategy's option finder, the risk governor and the command line all
//! price through this crate, so that they agree to the last digit.
//!
//! **Owns:**
//! * Black-Scholes-Merton prices and greeks of European puts and calls with a
//!   continuous dividend yield ([`european_price`], [`european_valuation`]);
//! * implied volatility ([`implied_vol`]), which reports how many price
//!   evaluations it made;
//! * American prices and the early-exercise premium by finite differences
//!   ([`american_price`], [`early_exercise_premium`]), for assignment risk;
//! * the Reg-T / Cboe short put margin ([`short_put_margin`] in exact
//!   [`Money`](core_domain::Money), [`short_put_margin_f64`]);
//! * an accurate normal distribution ([`normal_cdf`], [`normal_pdf`]).
//!
//! **Must not:** do I/O, fetch or hold market data, know about brokers or
//! accounts, or allocate in the hot paths (price, greeks, implied vol).
//!
//! ## Conventions (those of the golden files in `tests/golden`)
//! * Time in years, Actual/365 Fixed: `t = days / 365` ([`years_from_days`]).
//! * Rates and dividend yields continuously compounded, as fractions.
//! * Volatility annual, as a fraction (0.2 is 20%).
//! * Prices per share; vega per 1.00 of vol; theta per year; rho per 1.00
//!   of rate.
//!
//! ## Errors
//! Every function returns [`PricingError`] for an input out of its domain
//! (negative, NaN, infinite) or a question with no answer (a price below
//! intrinsic has no implied volatility). A NaN never comes out silently.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod american;
mod error;
mod european;
mod implied;
mod lbr_guess;
mod margin;
mod normal;

pub use american::{SPACE_STEPS, TIME_STEPS, american_price, early_exercise_premium};
pub use error::{PricingError, RightName};
pub use european::{
    DAYS_PER_YEAR, OptionInputs, Valuation, european_price, european_valuation, years_from_days,
};
pub use implied::{IvSolution, implied_vol};
pub use margin::{short_put_margin, short_put_margin_f64};
pub use normal::{normal_cdf, normal_pdf};
