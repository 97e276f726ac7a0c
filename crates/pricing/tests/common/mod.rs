//! Loading the golden files (copied from ../shared/golden, plus the held-out
//! sets made by tools/golden/make_pricing_holdout.py) and the tolerances
//! every golden test uses.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use core_domain::Right;
use pricing::OptionInputs;
use serde::Deserialize;

/// Relative tolerance on European prices and greeks.
pub const REL_TOL: f64 = 1e-8;
/// Absolute tolerance for values so small that relative error means nothing
/// (a deep out-of-the-money put worth 1e-28).
pub const ABS_TOL_TINY: f64 = 1e-10;
/// Absolute tolerance on American prices (per share).
pub const AMERICAN_TOL: f64 = 1e-3;

#[derive(Debug, Deserialize)]
pub struct File<T> {
    pub meta: serde_json::Value,
    pub cases: Vec<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BsmCase {
    #[serde(default)]
    pub category: Option<String>,
    pub spot: f64,
    pub strike: f64,
    pub rate: f64,
    pub dividend_yield: f64,
    pub vol: f64,
    pub days: f64,
    pub t_years: f64,
    pub right: String,
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
}

impl BsmCase {
    pub fn inputs(&self) -> OptionInputs {
        OptionInputs {
            right: match self.right.as_str() {
                "P" => Right::Put,
                "C" => Right::Call,
                other => panic!("unknown right {other}"),
            },
            spot: self.spot,
            strike: self.strike,
            t_years: pricing::years_from_days(self.days),
            rate: self.rate,
            dividend_yield: self.dividend_yield,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeepOtmCase {
    pub spot: f64,
    pub strike: f64,
    pub rate: f64,
    pub dividend_yield: f64,
    pub vol: f64,
    pub days: f64,
    pub right: String,
    pub standard_deviations_out: f64,
    pub price: f64,
    pub delta: f64,
    pub vega: f64,
}

impl DeepOtmCase {
    pub fn inputs(&self) -> OptionInputs {
        OptionInputs {
            right: if self.right == "P" {
                Right::Put
            } else {
                Right::Call
            },
            spot: self.spot,
            strike: self.strike,
            t_years: pricing::years_from_days(self.days),
            rate: self.rate,
            dividend_yield: self.dividend_yield,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmericanCase {
    pub spot: f64,
    pub strike: f64,
    pub rate: f64,
    pub dividend_yield: f64,
    pub vol: f64,
    pub days: f64,
    pub t_years: f64,
    pub price: f64,
    #[serde(default)]
    pub price_high_precision: Option<f64>,
    #[serde(default)]
    pub fd1000_error: Option<f64>,
    #[serde(default)]
    pub european_price: Option<f64>,
}

impl AmericanCase {
    pub fn inputs(&self) -> OptionInputs {
        OptionInputs {
            right: Right::Put,
            spot: self.spot,
            strike: self.strike,
            t_years: pricing::years_from_days(self.days),
            rate: self.rate,
            dividend_yield: self.dividend_yield,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MarginCase {
    pub underlying: f64,
    pub strike: f64,
    pub premium: f64,
    pub contracts: i64,
    pub requirement: f64,
    #[serde(default)]
    pub requirement_cents: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NormalCdfCase {
    pub z: f64,
    pub cdf: f64,
}

pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(name)
}

pub fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = golden_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: File<T> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    assert!(!file.cases.is_empty(), "{name} has no cases");
    file.cases
}

/// `|got − want| ≤ max(1e-8·|want|, 1e-10)`.
pub fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= (REL_TOL * want.abs()).max(ABS_TOL_TINY)
}

/// The error measure reported in failures and summaries: relative where the
/// value is above the tiny threshold, absolute (scaled to the same bar)
/// below.
pub fn scaled_error(got: f64, want: f64) -> f64 {
    (got - want).abs() / (REL_TOL * want.abs()).max(ABS_TOL_TINY)
}

/// The rounding uncertainty of a Black-Scholes price: a few ulp of the two
/// terms of the formula, `S·e^(−qt)·Φ(±d1)` and `K·e^(−rt)·Φ(±d2)`, added in
/// magnitude, plus the granularity of subnormal numbers scaled by `S + K`
/// (a price below 2.2e-308 has fewer than 53 significant bits). Deep out of
/// the money the terms are tiny and so is this; deep in the money it is a few
/// ulp of the strike, however small the time value.
pub fn price_uncertainty(inputs: &OptionInputs, vol: f64) -> f64 {
    let t = inputs.t_years;
    let sd = vol * t.sqrt();
    let d1 = ((inputs.spot / inputs.strike).ln() + (inputs.rate - inputs.dividend_yield) * t) / sd
        + 0.5 * sd;
    let d2 = d1 - sd;
    let spot_pv = inputs.spot * (-inputs.dividend_yield * t).exp();
    let strike_pv = inputs.strike * (-inputs.rate * t).exp();
    let n = pricing::normal_cdf;
    let terms = match inputs.right {
        Right::Call => spot_pv * n(d1) + strike_pv * n(d2),
        Right::Put => strike_pv * n(-d2) + spot_pv * n(-d1),
    };
    4.0 * f64::EPSILON * terms + 4.0 * (inputs.spot + inputs.strike) * f64::from_bits(1)
}

/// The tolerance rule for implied-vol round trips: the vol must come back to
/// 1e-10 relative where the price carries that information, i.e. where the
/// price's rounding `uncertainty` moves the vol by less than 1e-11 relative
/// (`uncertainty / (vega·σ) < 1e-11`). Elsewhere (deep in the money with a
/// time value below the strike's rounding, or a price that underflows) any
/// vol that reprices to within the uncertainty is a right answer.
pub fn vol_is_determined(inputs: &OptionInputs, vol: f64, uncertainty: f64) -> bool {
    let v = pricing::european_valuation(inputs, vol).unwrap();
    let sensitivity = v.greeks.vega * vol;
    v.price > 1e-290 && sensitivity > 0.0 && uncertainty < 1e-11 * sensitivity
}
