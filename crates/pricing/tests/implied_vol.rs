//! Implied volatility: round trips price → vol → price over a wide grid,
//! the measured cost in price evaluations, agreement with an independent
//! implementation of Jäckel's "Let's Be Rational" (the `implied-vol` crate),
//! and errors that say why no volatility exists.
//!
//! Invariants (also checked by the property test at the end):
//! * wherever the price carries the information (`common::vol_is_determined`:
//!   its rounding moves the vol by less than 1e-11 relative), the solved vol
//!   is within 1e-10 relative of the vol that made the price;
//! * everywhere else the solved vol reprices to within the price's rounding
//!   uncertainty (`common::price_uncertainty`);
//! * a solve never returns NaN and never fails for a price strictly inside
//!   the no-arbitrage bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use core_domain::Right;
use implied_vol::{ImpliedBlackVolatility, solver::Jaeckel};
use pricing::{OptionInputs, PricingError, european_price, implied_vol, years_from_days};
use proptest::prelude::*;

const SPOTS: [f64; 5] = [1.0, 7.5, 50.0, 180.0, 1000.0];
const MONEYNESS: [f64; 11] = [0.3, 0.5, 0.7, 0.85, 0.95, 1.0, 1.05, 1.2, 1.5, 2.0, 3.0];
const DAYS: [f64; 11] = [
    1.0, 2.0, 3.0, 7.0, 14.0, 30.0, 60.0, 91.0, 182.0, 365.0, 730.0,
];
const VOLS: [f64; 10] = [0.01, 0.03, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0];
const RATES: [f64; 4] = [-0.01, 0.0, 0.03, 0.1];
const DIVIDENDS: [f64; 3] = [0.0, 0.03, 0.1];

fn grid() -> impl Iterator<Item = (OptionInputs, f64)> {
    SPOTS.into_iter().flat_map(|spot| {
        MONEYNESS.into_iter().flat_map(move |m| {
            DAYS.into_iter().flat_map(move |days| {
                VOLS.into_iter().flat_map(move |vol| {
                    RATES.into_iter().flat_map(move |rate| {
                        DIVIDENDS.into_iter().flat_map(move |dividend_yield| {
                            [Right::Put, Right::Call].into_iter().map(move |right| {
                                (
                                    OptionInputs {
                                        right,
                                        spot,
                                        strike: spot * m,
                                        t_years: years_from_days(days),
                                        rate,
                                        dividend_yield,
                                    },
                                    vol,
                                )
                            })
                        })
                    })
                })
            })
        })
    })
}

/// What a round trip showed.
enum Outcome {
    /// The price is at its lower bound (underflowed or no time value left
    /// in floating point: vol 0 comes back, at no cost) or rounds to its
    /// upper bound (an error says no vol gives it).
    NoTimeValue,
    /// The vol was recovered to 1e-10 relative.
    Vol { evaluations: u32, rel_error: f64 },
    /// The price carries less than 1e-10 of the vol; the solved vol
    /// reprices within the price's uncertainty.
    PriceOnly { evaluations: u32 },
}

fn round_trip(inputs: &OptionInputs, vol: f64) -> Outcome {
    let price = european_price(inputs, vol).unwrap();
    let result = implied_vol(inputs, price);
    if let Err(PricingError::AboveUpperBound { .. }) = result {
        // So much total vol that the price rounds to its supremum.
        let upper = inputs.upper_bound().unwrap();
        assert!(
            price >= upper - 8.0 * f64::EPSILON * (inputs.spot + inputs.strike),
            "{inputs:?} vol {vol}: {result:?}"
        );
        return Outcome::NoTimeValue;
    }
    let sol = result.unwrap_or_else(|e| panic!("{inputs:?} vol {vol}: {e}"));
    assert!(
        sol.vol.is_finite() && sol.vol >= 0.0,
        "{inputs:?} vol {vol}: {sol:?}"
    );
    if price <= inputs.lower_bound().unwrap() {
        assert_eq!(sol.vol, 0.0, "{inputs:?} vol {vol} price {price}");
        return Outcome::NoTimeValue;
    }
    let uncertainty = common::price_uncertainty(inputs, vol);
    if common::vol_is_determined(inputs, vol, uncertainty) {
        let rel_error = ((sol.vol - vol) / vol).abs();
        assert!(
            rel_error <= 1e-10,
            "{inputs:?} vol {vol} price {price:e}: got {} ({} evaluations)",
            sol.vol,
            sol.price_evaluations
        );
        Outcome::Vol {
            evaluations: sol.price_evaluations,
            rel_error,
        }
    } else {
        let back = european_price(inputs, sol.vol).unwrap();
        assert!(
            (back - price).abs() <= 2.0 * uncertainty,
            "{inputs:?} vol {vol} price {price:e}: solved vol {} reprices to {back:e}",
            sol.vol
        );
        Outcome::PriceOnly {
            evaluations: sol.price_evaluations,
        }
    }
}

#[test]
fn test_implied_vol_round_trips_over_the_whole_grid_at_about_three_evaluations_on_average() {
    let (mut no_time_value, mut vols, mut prices) = (0_u64, 0_u64, 0_u64);
    let (mut evaluations, mut max_evaluations, mut worst) = (0_u64, 0_u32, 0.0_f64);
    let mut histogram = [0_u64; 8];
    for (inputs, vol) in grid() {
        let n = match round_trip(&inputs, vol) {
            Outcome::NoTimeValue => {
                no_time_value += 1;
                continue;
            }
            Outcome::Vol {
                evaluations,
                rel_error,
            } => {
                vols += 1;
                worst = worst.max(rel_error);
                evaluations
            }
            Outcome::PriceOnly { evaluations } => {
                prices += 1;
                evaluations
            }
        };
        evaluations += u64::from(n);
        max_evaluations = max_evaluations.max(n);
        histogram[(n as usize).min(7)] += 1;
    }
    let solves = vols + prices;
    let average = evaluations as f64 / solves as f64;
    println!(
        "round trip: {solves} solves ({vols} vols recovered, worst relative error {worst:.1e}; \
         {prices} where the price carries less than 1e-10 of the vol), {no_time_value} prices \
         with no time value left; price evaluations per solve: average {average:.3}, max \
         {max_evaluations}, histogram by count 0..7+ {histogram:?}"
    );
    assert!(vols > 100_000, "{vols}");
    assert!(average <= 3.0, "average {average}");
}

/// The `implied-vol` crate's Jäckel solver, an independent implementation
/// of "Let's Be Rational", gives the same vols to 1e-12 relative wherever
/// the price determines the vol.
#[test]
fn test_implied_vol_agrees_with_lets_be_rational_over_the_whole_grid() {
    let mut compared = 0_u64;
    let mut worst = 0.0_f64;
    for (inputs, vol) in grid() {
        let price = european_price(&inputs, vol).unwrap();
        if price <= inputs.lower_bound().unwrap()
            || !common::vol_is_determined(&inputs, vol, common::price_uncertainty(&inputs, vol))
        {
            continue;
        }
        let t = inputs.t_years;
        let df_r = (-inputs.rate * t).exp();
        let forward = inputs.spot * ((inputs.rate - inputs.dividend_yield) * t).exp();
        let Some(lbr) = ImpliedBlackVolatility::builder()
            .option_price(price / df_r)
            .forward(forward)
            .strike(inputs.strike)
            .expiry(t)
            .is_call(inputs.right == Right::Call)
            .build()
            .and_then(|b| b.calculate_with::<Jaeckel>())
        else {
            continue;
        };
        let ours = implied_vol(&inputs, price).unwrap().vol;
        let diff = ((ours - lbr) / lbr).abs();
        worst = worst.max(diff);
        compared += 1;
        assert!(
            diff <= 1e-10,
            "{inputs:?} vol {vol}: ours {ours}, LBR {lbr}"
        );
    }
    println!(
        "agreement with Let's Be Rational: {compared} solves, worst relative difference {worst:.1e}"
    );
    assert!(compared > 100_000);
}

#[test]
fn test_implied_vol_converges_deep_out_of_the_money_one_day_from_expiry() {
    // A put 40% below the spot, one day out, at 150% vol: 6.5 standard
    // deviations out, worth about 1e-9.
    let inputs = OptionInputs {
        right: Right::Put,
        spot: 100.0,
        strike: 60.0,
        t_years: years_from_days(1.0),
        rate: 0.05,
        dividend_yield: 0.0,
    };
    let price = european_price(&inputs, 1.5).unwrap();
    assert!(price > 0.0 && price < 1e-6, "{price}");
    let sol = implied_vol(&inputs, price).unwrap();
    assert!((sol.vol / 1.5 - 1.0).abs() < 1e-12, "{sol:?}");
    assert!(sol.price_evaluations <= 4, "{sol:?}");
}

#[test]
fn test_price_below_intrinsic_has_no_implied_vol_and_says_why() {
    let inputs = OptionInputs {
        right: Right::Put,
        spot: 99.5,
        strike: 100.0,
        t_years: years_from_days(30.0),
        rate: 0.0,
        dividend_yield: 0.0,
    };
    let err = implied_vol(&inputs, 0.001).unwrap_err();
    assert!(matches!(err, PricingError::BelowIntrinsic { .. }));
    assert_eq!(
        err.to_string(),
        "price 0.001 is below the intrinsic value 0.5 of the put (discounted forward intrinsic, \
         the value at zero volatility): no volatility gives it"
    );
}

#[test]
fn test_price_above_the_upper_bound_has_no_implied_vol_and_says_why() {
    let inputs = OptionInputs {
        right: Right::Call,
        spot: 50.0,
        strike: 40.0,
        t_years: 1.0,
        rate: 0.0,
        dividend_yield: 0.0,
    };
    let err = implied_vol(&inputs, 50.0).unwrap_err();
    assert!(matches!(err, PricingError::AboveUpperBound { .. }), "{err}");
    assert!(
        err.to_string().contains("the most a call can be worth"),
        "{err}"
    );
}

#[test]
fn test_zero_time_has_no_implied_vol_and_says_why() {
    let inputs = OptionInputs {
        right: Right::Put,
        spot: 90.0,
        strike: 100.0,
        t_years: 0.0,
        rate: 0.05,
        dividend_yield: 0.0,
    };
    let err = implied_vol(&inputs, 10.5).unwrap_err();
    assert!(matches!(err, PricingError::NoTimeValue { .. }), "{err}");
    assert!(err.to_string().contains("at expiry"), "{err}");
}

#[test]
fn test_price_at_intrinsic_gives_zero_vol_without_evaluating() {
    let inputs = OptionInputs {
        right: Right::Put,
        spot: 90.0,
        strike: 100.0,
        t_years: 0.5,
        rate: 0.0,
        dividend_yield: 0.0,
    };
    let sol = implied_vol(&inputs, 10.0).unwrap();
    assert_eq!((sol.vol, sol.price_evaluations), (0.0, 0));
}

#[test]
fn test_bad_implied_vol_inputs_are_errors() {
    let inputs = OptionInputs {
        right: Right::Put,
        spot: 90.0,
        strike: 100.0,
        t_years: 0.5,
        rate: 0.0,
        dividend_yield: 0.0,
    };
    assert!(implied_vol(&inputs, f64::NAN).is_err());
    assert!(implied_vol(&inputs, -1.0).is_err());
    assert!(
        implied_vol(
            &OptionInputs {
                spot: f64::INFINITY,
                ..inputs
            },
            1.0
        )
        .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn implied_vol_inverts_the_price_for_random_inputs(
        log_spot in 0.0_f64..7.0,
        log_moneyness in -1.2_f64..1.1,
        days in 1.0_f64..730.0,
        log_vol in -4.6_f64..1.1,
        rate in -0.01_f64..0.1,
        dividend_yield in 0.0_f64..0.1,
        put in any::<bool>(),
    ) {
        let spot = log_spot.exp();
        let inputs = OptionInputs {
            right: if put { Right::Put } else { Right::Call },
            spot,
            strike: spot * log_moneyness.exp(),
            t_years: years_from_days(days.round()),
            rate,
            dividend_yield,
        };
        let _ = round_trip(&inputs, log_vol.exp());
    }
}
