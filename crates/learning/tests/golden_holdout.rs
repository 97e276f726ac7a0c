#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The held-out statistics golden sets made by
//! tools/golden/make_stats_holdout.py (scipy / statsmodels, cross-checked
//! against mpmath and plain-Python formulas), larger than the shared files
//! and not used while writing the code: two-sample tests with sizes 5-200,
//! unequal variances, ties, skewed and heavy-tailed data and p-values far
//! below 1e-6; exact binomial tests with k = 0, k = n, n up to 10 000 and
//! p0 from 0.001 to 0.999; Holm / Benjamini-Hochberg on families of 1-50
//! p-values with ties, zeros, ones and p-values exactly on the thresholds.
//! Same comparison as tests/golden.rs (tests/common): 1e-6 absolute and
//! relative on every number, reject flags exact. Run with `--nocapture` to
//! see the largest errors.

mod common;

#[test]
fn holdout_two_sample_tests_match_scipy() {
    let out = common::check_two_sample_file("holdout_two_sample_tests.json");
    assert!(out.cases >= 60, "{out:?}");
}

#[test]
fn holdout_binomial_tests_match_scipy_binomtest() {
    let out = common::check_binomial_file("holdout_binomial_tests.json");
    assert!(out.cases >= 40, "{out:?}");
}

#[test]
fn holdout_multiple_testing_matches_statsmodels() {
    let out = common::check_multiple_testing_file("holdout_multiple_testing.json");
    assert!(out.cases >= 20, "{out:?}");
}
