//! Every case of the golden files (QuantLib 1.44 / scipy 1.17, copied from
//! ../shared/golden) and of the larger held-out sets made by
//! tools/golden/make_pricing_holdout.py, with the same tolerances:
//! European prices and greeks to 1e-8 relative (1e-10 absolute for tiny
//! values), American puts to 1e-3, margin exactly to the cent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    AMERICAN_TOL, AmericanCase, BsmCase, DeepOtmCase, MarginCase, NormalCdfCase, close, load,
    scaled_error,
};
use core_domain::{Money, Price};
use pricing::{
    american_price, early_exercise_premium, european_valuation, implied_vol, short_put_margin,
    short_put_margin_f64,
};

fn check_bsm_file(name: &str) {
    let cases: Vec<BsmCase> = load(name);
    let mut failures = Vec::new();
    let mut worst = (0.0_f64, String::new());
    for (i, c) in cases.iter().enumerate() {
        assert!(
            (c.t_years - c.days / 365.0).abs() < 1e-15,
            "case {i}: t_years convention"
        );
        let v = european_valuation(&c.inputs(), c.vol).unwrap();
        let g = v.greeks;
        for (what, got, want) in [
            ("price", v.price, c.price),
            ("delta", g.delta, c.delta),
            ("gamma", g.gamma, c.gamma),
            ("vega", g.vega, c.vega),
            ("theta", g.theta, c.theta),
            ("rho", g.rho, c.rho),
        ] {
            let e = scaled_error(got, want);
            if e > worst.0 {
                worst = (e, format!("case {i} {what}: got {got:e}, want {want:e}"));
            }
            if !close(got, want) {
                failures.push(format!("case {i} {c:?} {what}: got {got:e}, want {want:e}"));
            }
        }
    }
    println!(
        "{name}: {} cases, worst error {:.2e} of the tolerance ({})",
        cases.len(),
        worst.0,
        worst.1
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn test_price_and_greeks_match_quantlib_for_every_golden_case() {
    check_bsm_file("bsm_european.json");
}

#[test]
fn test_price_and_greeks_match_quantlib_for_every_held_out_case() {
    check_bsm_file("holdout_bsm_european.json");
}

/// Options 4 to 25 standard deviations out of the money (prices 1e-136 to
/// 4e-4), against the closed form at 50 digits: price, delta and vega keep
/// their relative accuracy, and the vol comes back from the price.
#[test]
fn test_deep_out_of_the_money_prices_keep_relative_accuracy_for_every_held_out_case() {
    let cases: Vec<DeepOtmCase> = load("holdout_bsm_deep_otm.json");
    let mut worst = 0.0_f64;
    for (i, c) in cases.iter().enumerate() {
        let v = european_valuation(&c.inputs(), c.vol).unwrap();
        for (what, got, want) in [
            ("price", v.price, c.price),
            ("delta", v.greeks.delta, c.delta),
            ("vega", v.greeks.vega, c.vega),
        ] {
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
            assert!(
                rel <= 1e-11,
                "case {i} {c:?} {what}: got {got:e}, want {want:e}, rel {rel:e}"
            );
        }
        let sol = implied_vol(&c.inputs(), c.price).unwrap();
        assert!(
            ((sol.vol - c.vol) / c.vol).abs() <= 1e-10,
            "case {i} {c:?}: vol {sol:?}"
        );
    }
    println!(
        "deep out of the money: {} cases, worst relative error {worst:.1e}",
        cases.len()
    );
}

#[test]
fn test_american_put_matches_quantlib_for_every_golden_case() {
    let cases: Vec<AmericanCase> = load("american_put.json");
    for (i, c) in cases.iter().enumerate() {
        let got = american_price(&c.inputs(), c.vol).unwrap();
        let err = (got - c.price).abs();
        println!(
            "golden american {i}: got {got:.6}, QuantLib FD 1000x1000 {:.6}, error {err:.2e}",
            c.price
        );
        assert!(
            err <= AMERICAN_TOL,
            "case {i} {c:?}: got {got}, want {}",
            c.price
        );
    }
}

/// The held-out American puts carry two references: QuantLib's FD
/// 1000x1000 (`price`, how the golden file was made) and its
/// high-precision Andersen-Lake-Offengenden engine (`price_high_precision`).
/// Every case must be within 1e-3 of the high-precision value. Against the
/// 1000x1000 grid the same 1e-3 applies wherever that grid is itself within
/// 5e-4 of the high-precision value; where it is not (long-dated, high-priced
/// puts: the grid is off by up to 7e-3), ours must instead be closer to the
/// high-precision value than the grid is.
#[test]
fn test_american_put_matches_quantlib_for_every_held_out_case() {
    let cases: Vec<AmericanCase> = load("holdout_american_put.json");
    let mut worst_hp = 0.0_f64;
    let mut worst_fd = 0.0_f64;
    let mut unresolved = 0;
    for (i, c) in cases.iter().enumerate() {
        let got = american_price(&c.inputs(), c.vol).unwrap();
        let hp = c.price_high_precision.unwrap();
        let err_hp = (got - hp).abs();
        let err_fd = (got - c.price).abs();
        worst_hp = worst_hp.max(err_hp);
        assert!(
            err_hp <= AMERICAN_TOL,
            "case {i} {c:?}: got {got}, high precision {hp}"
        );
        if (c.price - hp).abs() <= 0.5 * AMERICAN_TOL {
            worst_fd = worst_fd.max(err_fd);
            assert!(
                err_fd <= AMERICAN_TOL,
                "case {i} {c:?}: got {got}, FD 1000x1000 {}",
                c.price
            );
        } else {
            unresolved += 1;
            assert!(err_hp < (c.price - hp).abs(), "case {i} {c:?}: got {got}");
        }
        let european = c.european_price.unwrap();
        let premium = early_exercise_premium(&c.inputs(), c.vol).unwrap();
        assert!(
            (premium - (got - european)).abs() <= 1e-9 * got.max(1.0) + 1e-12,
            "case {i}: premium {premium} vs {got} - {european}"
        );
    }
    println!(
        "held-out american: {} cases, worst vs high precision {worst_hp:.2e}, worst vs FD 1000x1000 {worst_fd:.2e} ({unresolved} cases where that grid is off by more than 5e-4)",
        cases.len()
    );
}

fn price(dollars: f64) -> Price {
    Price::from_f64(dollars).unwrap()
}

fn check_margin_file(name: &str) {
    let cases: Vec<MarginCase> = load(name);
    for (i, c) in cases.iter().enumerate() {
        let got = short_put_margin(
            price(c.underlying),
            price(c.strike),
            price(c.premium),
            c.contracts,
        )
        .unwrap();
        let want = c.requirement_cents.map_or_else(
            || Money::from_f64_dollars(c.requirement).unwrap(),
            Money::from_cents,
        );
        assert_eq!(got, want, "case {i} {c:?}");
        let f = short_put_margin_f64(c.underlying, c.strike, c.premium, c.contracts).unwrap();
        // The float variant is not rounded; it is within a cent of the exact one.
        assert!(
            (f - c.requirement).abs() <= 0.01 + 1e-9 * c.requirement,
            "case {i} {c:?}: float {f}"
        );
    }
}

#[test]
fn test_short_put_margin_matches_the_formula_to_the_cent_for_every_golden_case() {
    check_margin_file("short_put_margin.json");
}

#[test]
fn test_short_put_margin_matches_the_formula_to_the_cent_for_every_held_out_case() {
    check_margin_file("holdout_short_put_margin.json");
}

/// Reference: mpmath at 50 digits. Relative error at most 1e-15 wherever
/// the value is a normal `f64` (down to z = −37.5); below that (subnormal
/// results) the absolute error is below 1e-320.
#[test]
fn test_normal_cdf_matches_mpmath_to_a_few_ulp_including_far_tails() {
    let cases: Vec<NormalCdfCase> = load("holdout_normal_cdf.json");
    let mut worst = 0.0_f64;
    for c in &cases {
        let got = pricing::normal_cdf(c.z);
        if c.cdf < f64::MIN_POSITIVE {
            assert!(
                (got - c.cdf).abs() < 1e-320,
                "z = {}: got {got:e}, want {:e}",
                c.z,
                c.cdf
            );
            continue;
        }
        let rel = ((got - c.cdf) / c.cdf).abs();
        worst = worst.max(rel);
        assert!(
            rel <= 1e-15,
            "z = {}: got {got:e}, want {:e}, rel {rel:e}",
            c.z,
            c.cdf
        );
    }
    println!(
        "normal cdf: {} cases, worst relative error {worst:.2e}",
        cases.len()
    );
}

/// QuantLib's prices of the golden and held-out sets, inverted: the vol
/// comes back to 1e-10 relative wherever the price carries that much
/// information (`common::vol_is_determined`), and otherwise the solved vol
/// reprices to within the price's own rounding. QuantLib computes `Φ(−d)` as
/// `1 − Φ(d)`, so its prices carry an absolute rounding of a few ulp of
/// `S + K` (its deep out-of-the-money puts are off by whole percents: 5.56e-15
/// for a true 5.97e-15 in case 2 of the held-out set); that is the
/// uncertainty used here.
#[test]
fn test_implied_vol_recovers_quantlib_vol_for_every_golden_and_held_out_case() {
    let mut checked_vol = 0;
    let mut checked_price = 0;
    for name in ["bsm_european.json", "holdout_bsm_european.json"] {
        let cases: Vec<BsmCase> = load(name);
        for (i, c) in cases.iter().enumerate() {
            let inputs = c.inputs();
            let uncertainty = common::price_uncertainty(&inputs, c.vol)
                .max(4.0 * f64::EPSILON * (c.spot + c.strike));
            // QuantLib's rounding can put a price a hair outside the bounds.
            if c.price <= inputs.lower_bound().unwrap() + uncertainty {
                continue;
            }
            let sol = implied_vol(&inputs, c.price)
                .unwrap_or_else(|e| panic!("{name} case {i} {c:?}: {e}"));
            if common::vol_is_determined(&inputs, c.vol, uncertainty) {
                checked_vol += 1;
                assert!(
                    ((sol.vol - c.vol) / c.vol).abs() <= 1e-10,
                    "{name} case {i} {c:?}: vol {} ({} evaluations)",
                    sol.vol,
                    sol.price_evaluations
                );
            } else {
                checked_price += 1;
                let back = pricing::european_price(&inputs, sol.vol).unwrap();
                assert!(
                    (back - c.price).abs() <= 4.0 * uncertainty,
                    "{name} case {i}: {back}"
                );
            }
        }
    }
    println!(
        "implied vol of QuantLib prices: {checked_vol} vols and {checked_price} prices checked"
    );
    assert!(checked_vol > 300);
}
