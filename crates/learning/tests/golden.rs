//! Every case of the statistics golden files (scipy 1.17.1 / statsmodels
//! 0.15, copied from ../shared/golden into tests/golden so that no test
//! needs ../shared): Welch's t, Mann-Whitney U and Cohen's d
//! (two_sample_tests.json), Holm and Benjamini-Hochberg
//! (multiple_testing.json), and the exact binomial test
//! (binomial_tests.json). Tolerances and comparison in tests/common: 1e-6
//! absolute and relative on every number, reject flags exact.
//! Run with `--nocapture` to see the largest error per file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn two_sample_tests_match_scipy() {
    common::check_two_sample_file("two_sample_tests.json");
}

#[test]
fn multiple_testing_matches_statsmodels() {
    common::check_multiple_testing_file("multiple_testing.json");
}

#[test]
fn binomial_tests_match_scipy_binomtest() {
    common::check_binomial_file("binomial_tests.json");
}
