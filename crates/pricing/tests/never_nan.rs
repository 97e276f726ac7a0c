//! No silent NaN: whatever `f64`s come in (negative, zero, subnormal, huge,
//! infinite, NaN), every function either returns finite numbers or an error.
//!
//! Invariants:
//! * `european_price`, `european_valuation`, `implied_vol`, `american_price`
//!   return `Ok` only with finite values, and the prices lie within their
//!   no-arbitrage bounds;
//! * inputs outside the domain (spot or strike ≤ 0, time or vol < 0, any
//!   non-finite number) are `Err(PricingError::InvalidInput)`;
//! * over a wide realistic domain the American price is finite and between
//!   `max(European, intrinsic)` and its upper bound (the strike for a put,
//!   or its value at expiry `K·e^(−rt)` if the rate is negative; likewise
//!   the spot for a call).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core_domain::Right;
use pricing::{
    OptionInputs, PricingError, american_price, european_price, european_valuation, implied_vol,
};
use proptest::prelude::*;

/// Any `f64`, with the edges over-represented.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::ANY,
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::from_bits(1)),
        Just(f64::MAX),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        -1e3_f64..1e3,
        0.0_f64..5.0,
    ]
}

fn inputs_strategy() -> impl Strategy<Value = (OptionInputs, f64)> {
    (
        any::<bool>(),
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
    )
        .prop_map(|(put, spot, strike, t_years, rate, dividend_yield, vol)| {
            (
                OptionInputs {
                    right: if put { Right::Put } else { Right::Call },
                    spot,
                    strike,
                    t_years,
                    rate,
                    dividend_yield,
                },
                vol,
            )
        })
}

fn in_domain(i: &OptionInputs, vol: f64) -> bool {
    i.spot.is_finite()
        && i.spot > 0.0
        && i.strike.is_finite()
        && i.strike > 0.0
        && i.t_years.is_finite()
        && i.t_years >= 0.0
        && i.rate.is_finite()
        && i.dividend_yield.is_finite()
        && vol.is_finite()
        && vol >= 0.0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn european_price_and_greeks_are_finite_or_an_error((inputs, vol) in inputs_strategy()) {
        match european_valuation(&inputs, vol) {
            Ok(v) => {
                prop_assert!(in_domain(&inputs, vol));
                let g = v.greeks;
                for x in [v.price, g.delta, g.gamma, g.vega, g.theta, g.rho] {
                    prop_assert!(x.is_finite(), "{inputs:?} vol {vol}: {v:?}");
                }
                prop_assert!(v.price >= inputs.lower_bound().unwrap());
                prop_assert!(v.price <= inputs.upper_bound().unwrap());
                prop_assert_eq!(european_price(&inputs, vol).unwrap(), v.price);
            }
            Err(PricingError::InvalidInput { .. }) => prop_assert!(!in_domain(&inputs, vol)),
            Err(PricingError::OutOfRange { .. }) => prop_assert!(in_domain(&inputs, vol)),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn implied_vol_is_finite_or_an_error((inputs, price) in inputs_strategy()) {
        if let Ok(sol) = implied_vol(&inputs, price) {
            prop_assert!(sol.vol.is_finite() && sol.vol >= 0.0, "{inputs:?} price {price}: {sol:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn american_price_is_finite_or_an_error((inputs, vol) in inputs_strategy()) {
        match american_price(&inputs, vol) {
            Ok(p) => {
                prop_assert!(p.is_finite(), "{inputs:?} vol {vol}: {p}");
                prop_assert!(p >= european_price(&inputs, vol).unwrap());
            }
            Err(PricingError::InvalidInput { .. }) => prop_assert!(!in_domain(&inputs, vol)),
            Err(_) => prop_assert!(in_domain(&inputs, vol)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn american_price_is_bounded_for_realistic_inputs(
        log_spot in 0.0_f64..7.0,
        log_moneyness in -1.6_f64..1.6,
        days in 1.0_f64..3650.0,
        log_vol in -6.9_f64..1.6,
        rate in -0.05_f64..0.2,
        dividend_yield in 0.0_f64..0.2,
        put in any::<bool>(),
    ) {
        let spot = log_spot.exp();
        let inputs = OptionInputs {
            right: if put { Right::Put } else { Right::Call },
            spot,
            strike: spot * log_moneyness.exp(),
            t_years: days.round() / 365.0,
            rate,
            dividend_yield,
        };
        let vol = log_vol.exp();
        let p = american_price(&inputs, vol).unwrap();
        let european = european_price(&inputs, vol).unwrap();
        // Exercising now or holding to expiry bounds what the option can pay.
        let t = inputs.t_years;
        let (intrinsic, upper) = if put {
            let k = inputs.strike;
            ((k - spot).max(0.0), k.max(k * (-rate * t).exp()))
        } else {
            ((spot - inputs.strike).max(0.0), spot.max(spot * (-dividend_yield * t).exp()))
        };
        prop_assert!(p.is_finite() && p >= european && p >= intrinsic, "{inputs:?} vol {vol}: {p}");
        prop_assert!(p <= upper * (1.0 + 1e-12), "{inputs:?} vol {vol}: {p} above {upper}");
    }
}
