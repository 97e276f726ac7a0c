//! Every case of the statistics golden files (scipy 1.17.1 / statsmodels
//! 0.15, copied from ../shared/golden into tests/golden so that no test
//! needs ../shared): Welch's t, Mann-Whitney U and Cohen's d
//! (two_sample_tests.json), Holm and Benjamini-Hochberg
//! (multiple_testing.json), and the exact binomial test
//! (binomial_tests.json).
//!
//! The files' `meta` fixes the conventions (two-sided tests, Mann-Whitney
//! asymptotic with continuity correction, Cohen's d with the pooled SD,
//! scipy's `binomtest`) but no tolerance form, so each number must agree
//! to 1e-6 both absolutely and relatively (the relative bound is what
//! matters for p-values far below 1e-6). Reject flags must match exactly.
//! Run with `--nocapture` to see the largest error per file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use learning::stats::{
    benjamini_hochberg, binomial_test, cohens_d, holm, mann_whitney_u, welch_t_test,
};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-6;

#[derive(Deserialize)]
struct File<T> {
    meta: Meta,
    cases: Vec<T>,
}

#[derive(Deserialize)]
struct Meta {
    conventions: String,
}

#[derive(Deserialize)]
struct TwoSampleCase {
    a: Vec<f64>,
    b: Vec<f64>,
    welch_t: f64,
    welch_p: f64,
    welch_df: f64,
    mann_whitney_u: f64,
    mann_whitney_p: f64,
    cohens_d: f64,
}

#[derive(Deserialize)]
struct MultipleCase {
    p: Vec<f64>,
    alpha: f64,
    bh_reject: Vec<bool>,
    bh_adjusted: Vec<f64>,
    holm_reject: Vec<bool>,
    holm_adjusted: Vec<f64>,
}

#[derive(Deserialize)]
struct BinomialCase {
    trials: u64,
    wins: u64,
    p0: f64,
    p_two_sided: f64,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> File<T> {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Compares one number; returns its absolute error.
fn check(what: &str, got: f64, want: f64) -> f64 {
    let abs = (got - want).abs();
    let rel = if want == 0.0 { abs } else { abs / want.abs() };
    assert!(
        abs <= TOLERANCE && rel <= TOLERANCE,
        "{what}: got {got:e}, want {want:e} (abs {abs:e}, rel {rel:e})"
    );
    abs
}

#[test]
fn two_sample_tests_match_scipy() {
    let file: File<TwoSampleCase> = load("two_sample_tests.json");
    let conventions = &file.meta.conventions;
    assert!(
        conventions.contains("Welch t-test two-sided"),
        "{conventions}"
    );
    assert!(
        conventions.contains("Mann-Whitney U asymptotic with continuity, two-sided"),
        "{conventions}"
    );
    assert!(
        conventions.contains("Cohen's d with pooled sd"),
        "{conventions}"
    );
    assert!(!file.cases.is_empty());
    let mut worst = 0.0_f64;
    for (i, c) in file.cases.iter().enumerate() {
        let w = welch_t_test(&c.a, &c.b).unwrap();
        worst = worst.max(check(&format!("case {i} welch_t"), w.statistic, c.welch_t));
        worst = worst.max(check(&format!("case {i} welch_p"), w.p_value, c.welch_p));
        worst = worst.max(check(&format!("case {i} welch_df"), w.df, c.welch_df));
        let u = mann_whitney_u(&c.a, &c.b).unwrap();
        worst = worst.max(check(&format!("case {i} U"), u.statistic, c.mann_whitney_u));
        worst = worst.max(check(&format!("case {i} U p"), u.p_value, c.mann_whitney_p));
        let d = cohens_d(&c.a, &c.b).unwrap();
        worst = worst.max(check(&format!("case {i} cohens_d"), d, c.cohens_d));
    }
    println!(
        "two_sample_tests.json: {} cases, max abs error {worst:e}",
        file.cases.len()
    );
}

#[test]
fn multiple_testing_matches_statsmodels() {
    let file: File<MultipleCase> = load("multiple_testing.json");
    assert!(!file.cases.is_empty());
    let mut worst = 0.0_f64;
    for (i, c) in file.cases.iter().enumerate() {
        let bh = benjamini_hochberg(&c.p, c.alpha).unwrap();
        assert_eq!(bh.reject, c.bh_reject, "case {i} BH reject");
        let h = holm(&c.p, c.alpha).unwrap();
        assert_eq!(h.reject, c.holm_reject, "case {i} Holm reject");
        assert_eq!(bh.adjusted.len(), c.bh_adjusted.len());
        assert_eq!(h.adjusted.len(), c.holm_adjusted.len());
        for (j, (got, want)) in bh.adjusted.iter().zip(&c.bh_adjusted).enumerate() {
            worst = worst.max(check(&format!("case {i} BH adjusted[{j}]"), *got, *want));
        }
        for (j, (got, want)) in h.adjusted.iter().zip(&c.holm_adjusted).enumerate() {
            worst = worst.max(check(&format!("case {i} Holm adjusted[{j}]"), *got, *want));
        }
    }
    println!(
        "multiple_testing.json: {} cases, max abs error {worst:e}",
        file.cases.len()
    );
}

#[test]
fn binomial_tests_match_scipy_binomtest() {
    let file: File<BinomialCase> = load("binomial_tests.json");
    assert!(
        file.meta
            .conventions
            .contains("binomial exact two-sided (scipy binomtest)"),
        "{}",
        file.meta.conventions
    );
    assert!(!file.cases.is_empty());
    let mut worst = 0.0_f64;
    for (i, c) in file.cases.iter().enumerate() {
        let t = binomial_test(c.wins, c.trials, c.p0).unwrap();
        worst = worst.max(check(&format!("case {i} p"), t.p_value, c.p_two_sided));
    }
    println!(
        "binomial_tests.json: {} cases, max abs error {worst:e}",
        file.cases.len()
    );
}
