//! Loading and checking the statistics golden files: the ones copied from
//! ../shared/golden and the larger held-out sets made by
//! tools/golden/make_stats_holdout.py (same JSON shape, same conventions).
//!
//! The files' `meta` fixes the conventions (two-sided tests, Mann-Whitney
//! asymptotic with continuity correction, Cohen's d with the pooled SD,
//! scipy's `binomtest`) but no tolerance form, so each number must agree
//! to 1e-6 both absolutely and relatively (the relative bound is what
//! matters for p-values far below 1e-6). Reject flags must match exactly.
//! serde_json is built with `float_roundtrip` for the tests (see Cargo.toml)
//! so that p-values lying exactly on a Holm / BH threshold parse to the very
//! double statsmodels compared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use learning::stats::{
    benjamini_hochberg, binomial_test, cohens_d, holm, mann_whitney_u, welch_t_test,
};
use serde::Deserialize;

pub const TOLERANCE: f64 = 1e-6;

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
    #[serde(default)]
    category: Option<String>,
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
    #[serde(default)]
    category: Option<String>,
    p: Vec<f64>,
    alpha: f64,
    bh_reject: Vec<bool>,
    bh_adjusted: Vec<f64>,
    holm_reject: Vec<bool>,
    holm_adjusted: Vec<f64>,
}

#[derive(Deserialize)]
struct BinomialCase {
    #[serde(default)]
    category: Option<String>,
    trials: u64,
    wins: u64,
    p0: f64,
    p_two_sided: f64,
}

/// How a file was checked: number of cases, largest absolute and relative
/// error over every number compared.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub cases: usize,
    pub max_abs: f64,
    pub max_rel: f64,
}

impl Outcome {
    /// Compares one number (1e-6 absolute and relative) and records its error.
    fn check(&mut self, what: &str, got: f64, want: f64) {
        let abs = (got - want).abs();
        let rel = if want == 0.0 { abs } else { abs / want.abs() };
        assert!(
            abs <= TOLERANCE && rel <= TOLERANCE,
            "{what}: got {got:e}, want {want:e} (abs {abs:e}, rel {rel:e})"
        );
        self.max_abs = self.max_abs.max(abs);
        self.max_rel = self.max_rel.max(rel);
    }

    fn report(self, name: &str) -> Self {
        println!(
            "{name}: {} cases, max abs error {:e}, max rel error {:e}",
            self.cases, self.max_abs, self.max_rel
        );
        self
    }
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> File<T> {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn label(i: usize, category: Option<&String>) -> String {
    category.map_or_else(|| format!("case {i}"), |c| format!("case {i} ({c})"))
}

/// Welch's t, Mann-Whitney U and Cohen's d against every case of `name`.
pub fn check_two_sample_file(name: &str) -> Outcome {
    let file: File<TwoSampleCase> = load(name);
    let conventions = &file.meta.conventions;
    for needle in [
        "Welch t-test two-sided",
        "Mann-Whitney U asymptotic with continuity, two-sided",
        "Cohen's d with pooled sd",
    ] {
        assert!(conventions.contains(needle), "{name}: {conventions}");
    }
    assert!(!file.cases.is_empty(), "{name} has no cases");
    let mut out = Outcome {
        cases: file.cases.len(),
        ..Outcome::default()
    };
    for (i, c) in file.cases.iter().enumerate() {
        let l = label(i, c.category.as_ref());
        let w = welch_t_test(&c.a, &c.b).unwrap_or_else(|e| panic!("{name} {l}: {e}"));
        out.check(&format!("{name} {l} welch_t"), w.statistic, c.welch_t);
        out.check(&format!("{name} {l} welch_p"), w.p_value, c.welch_p);
        out.check(&format!("{name} {l} welch_df"), w.df, c.welch_df);
        let u = mann_whitney_u(&c.a, &c.b).unwrap_or_else(|e| panic!("{name} {l}: {e}"));
        out.check(&format!("{name} {l} U"), u.statistic, c.mann_whitney_u);
        out.check(&format!("{name} {l} U p"), u.p_value, c.mann_whitney_p);
        let d = cohens_d(&c.a, &c.b).unwrap_or_else(|e| panic!("{name} {l}: {e}"));
        out.check(&format!("{name} {l} cohens_d"), d, c.cohens_d);
    }
    out.report(name)
}

/// Holm and Benjamini-Hochberg against every case of `name`.
pub fn check_multiple_testing_file(name: &str) -> Outcome {
    let file: File<MultipleCase> = load(name);
    assert!(!file.cases.is_empty(), "{name} has no cases");
    let mut out = Outcome {
        cases: file.cases.len(),
        ..Outcome::default()
    };
    for (i, c) in file.cases.iter().enumerate() {
        let l = label(i, c.category.as_ref());
        let bh = benjamini_hochberg(&c.p, c.alpha).unwrap_or_else(|e| panic!("{name} {l}: {e}"));
        assert_eq!(bh.reject, c.bh_reject, "{name} {l} BH reject");
        let h = holm(&c.p, c.alpha).unwrap_or_else(|e| panic!("{name} {l}: {e}"));
        assert_eq!(h.reject, c.holm_reject, "{name} {l} Holm reject");
        assert_eq!(bh.adjusted.len(), c.bh_adjusted.len(), "{name} {l}");
        assert_eq!(h.adjusted.len(), c.holm_adjusted.len(), "{name} {l}");
        for (j, (got, want)) in bh.adjusted.iter().zip(&c.bh_adjusted).enumerate() {
            out.check(&format!("{name} {l} BH adjusted[{j}]"), *got, *want);
        }
        for (j, (got, want)) in h.adjusted.iter().zip(&c.holm_adjusted).enumerate() {
            out.check(&format!("{name} {l} Holm adjusted[{j}]"), *got, *want);
        }
    }
    out.report(name)
}

/// The exact binomial test against every case of `name`.
pub fn check_binomial_file(name: &str) -> Outcome {
    let file: File<BinomialCase> = load(name);
    assert!(
        file.meta
            .conventions
            .contains("binomial exact two-sided (scipy binomtest)"),
        "{name}: {}",
        file.meta.conventions
    );
    assert!(!file.cases.is_empty(), "{name} has no cases");
    let mut out = Outcome {
        cases: file.cases.len(),
        ..Outcome::default()
    };
    for (i, c) in file.cases.iter().enumerate() {
        let l = label(i, c.category.as_ref());
        let t = binomial_test(c.wins, c.trials, c.p0).unwrap_or_else(|e| panic!("{name} {l}: {e}"));
        out.check(
            &format!(
                "{name} {l} p (k = {}, n = {}, p0 = {})",
                c.wins, c.trials, c.p0
            ),
            t.p_value,
            c.p_two_sided,
        );
    }
    out.report(name)
}
