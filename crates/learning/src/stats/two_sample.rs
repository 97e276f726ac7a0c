//! Two-sample location tests: Welch's t-test and the Mann-Whitney U test.

use serde::{Deserialize, Serialize};

use super::dist::{normal_sf, t_two_sided_p};
use super::error::{StatsError, StatsResult};
use super::sample::{Summary, check_sample};

/// Result of [`welch_t_test`] (two-sided).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchTTest {
    /// t = (mean(a) − mean(b)) / standard error.
    pub statistic: f64,
    /// Two-sided p-value, P(|T| ≥ |t|) under equal means.
    pub p_value: f64,
    /// Welch–Satterthwaite degrees of freedom (not an integer in general).
    pub df: f64,
    /// mean(a) − mean(b).
    pub mean_difference: f64,
    /// √(s²_a/n_a + s²_b/n_b), the standard error of the difference.
    pub standard_error: f64,
}

/// Welch's unequal-variance t-test of equal means, two-sided (as
/// `scipy.stats.ttest_ind(a, b, equal_var=False)`).
///
/// Assumes independent observations and roughly normal sample means (the
/// central limit theorem makes it robust from a few dozen observations
/// unless the data are very skewed); it does not assume equal variances.
///
/// # Errors
/// Fewer than 2 observations in a sample, a non-finite value, or both
/// samples constant (the standard error is 0).
///
/// # Example
/// ```
/// let a = [0.12, 0.08, 0.15, 0.11, 0.09, 0.14];
/// let b = [0.02, 0.05, -0.01, 0.04, 0.03, 0.00, 0.01];
/// let t = learning::stats::welch_t_test(&a, &b)?;
/// assert!(t.statistic > 0.0 && t.p_value < 0.001);
/// assert!(t.df > 5.0 && t.df < 11.0);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn welch_t_test(a: &[f64], b: &[f64]) -> StatsResult<WelchTTest> {
    const METHOD: &str = "Welch's t-test";
    let sa = Summary::of("a", METHOD, a, 2)?;
    let sb = Summary::of("b", METHOD, b, 2)?;
    welch_from_summaries(&sa, &sb)
}

/// Welch's t-test from validated summaries (shared with the sequential test).
pub(crate) fn welch_from_summaries(sa: &Summary, sb: &Summary) -> StatsResult<WelchTTest> {
    let va = sa.variance_of_mean();
    let vb = sb.variance_of_mean();
    let se2 = va + vb;
    if se2 <= 0.0 {
        return Err(StatsError::ZeroSpread {
            method: "Welch's t-test",
            why: "both samples are constant, so the standard error is 0; \
                  wait for observations that vary, or compare win counts with binomial_test",
        });
    }
    let standard_error = se2.sqrt();
    let mean_difference = sa.mean - sb.mean;
    let statistic = mean_difference / standard_error;
    let df = se2 * se2 / (va * va / (sa.n - 1) as f64 + vb * vb / (sb.n - 1) as f64);
    Ok(WelchTTest {
        statistic,
        p_value: t_two_sided_p(statistic, df),
        df,
        mean_difference,
        standard_error,
    })
}

/// Result of [`mann_whitney_u`] (two-sided, normal approximation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitneyU {
    /// U of sample `a`: the number of pairs (x from a, y from b) with
    /// x > y, ties counting ½ (scipy's `statistic`).
    pub statistic: f64,
    /// The continuity-corrected, tie-corrected z of max(U_a, U_b).
    pub z: f64,
    /// Two-sided p-value, 2·P(Z ≥ z), capped at 1.
    pub p_value: f64,
    /// U / (n_a·n_b) = P(X > Y) + ½P(X = Y) for a random pair: the
    /// "probability of superiority" of `a` (0.5 when neither dominates).
    pub probability_of_superiority: f64,
}

/// Mann-Whitney U (Wilcoxon rank-sum) test, two-sided, asymptotic with
/// continuity and tie corrections (as `scipy.stats.mannwhitneyu(a, b,
/// method="asymptotic", use_continuity=True)`).
///
/// Assumes independent observations; makes no assumption on the shape of
/// the distributions. It tests whether one sample tends to be larger
/// (P(X > Y) ≠ ½), which is not the same as a difference in means: a
/// strategy with many small wins and rare large losses can "win" this test
/// while losing money on average. Ties get average ranks.
///
/// # Errors
/// An empty sample, a non-finite value, or every observation equal (the
/// rank variance is 0).
///
/// # Example
/// ```
/// let a = [1.1, 2.3, 3.0, 4.8, 5.2, 6.7];
/// let b = [0.2, 0.4, 1.0, 1.5, 2.0, 2.2, 2.9];
/// let u = learning::stats::mann_whitney_u(&a, &b)?;
/// assert_eq!(u.statistic, 37.0);
/// assert!(u.p_value < 0.05);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> StatsResult<MannWhitneyU> {
    const METHOD: &str = "the Mann-Whitney U test";
    check_sample("a", METHOD, a, 1)?;
    check_sample("b", METHOD, b, 1)?;
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let n = n1 + n2;

    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&y| (y, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));

    // Average ranks over runs of equal values; Σ(t³ − t) over the runs.
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        let run = (end - start) as f64;
        let average_rank = (start + end + 1) as f64 / 2.0;
        let in_a = pooled[start..end].iter().filter(|(_, is_a)| *is_a).count() as f64;
        rank_sum_a += in_a * average_rank;
        tie_term += run * run * run - run;
        start = end;
    }

    let u_a = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let u_max = u_a.max(n1 * n2 - u_a);
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return Err(StatsError::ZeroSpread {
            method: "the Mann-Whitney U test",
            why: "every observation of both samples is equal, so the ranks carry no information; \
                  wait for observations that differ",
        });
    }
    let z = (u_max - n1 * n2 / 2.0 - 0.5) / variance.sqrt();
    let p_value = (2.0 * normal_sf(z)).clamp(0.0, 1.0);
    Ok(MannWhitneyU {
        statistic: u_a,
        z,
        p_value,
        probability_of_superiority: u_a / (n1 * n2),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Reference values: scipy's formulas evaluated in Python with mpmath
    // (see the golden tests for scipy's own outputs).
    #[test]
    fn mann_whitney_with_ties_uses_average_ranks_and_tie_correction() {
        let a = [1.0, 2.0, 2.0, 3.0, 5.0];
        let b = [2.0, 3.0, 3.0, 4.0];
        let u = mann_whitney_u(&a, &b).unwrap();
        // ranks: 1:1, 2:3,3,3 (a,a,b), 3:6,6,6 (a,b,b), 4:8, 5:9
        // R_a = 1 + 3 + 3 + 6 + 9 = 22, U_a = 22 − 15 = 7
        assert_eq!(u.statistic, 7.0);
        // ties: runs of 3 and 3 → Σ(t³−t) = 48; σ² = 20/12·(10 − 48/72)
        let sigma = (20.0_f64 / 12.0 * (10.0 - 48.0 / 72.0)).sqrt();
        let z = (13.0 - 10.0 - 0.5) / sigma;
        assert!((u.z - z).abs() < 1e-15);
        assert!((u.p_value - 2.0 * normal_sf(z)).abs() < 1e-15);
    }

    #[test]
    fn mann_whitney_at_the_centre_caps_p_at_one() {
        let u = mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0]).unwrap();
        assert_eq!(u.statistic, 2.0);
        assert_eq!(u.p_value, 1.0);
    }

    #[test]
    fn mann_whitney_refuses_all_equal_values() {
        let err = mann_whitney_u(&[1.0, 1.0], &[1.0]).unwrap_err();
        assert!(matches!(err, StatsError::ZeroSpread { .. }), "{err}");
    }

    #[test]
    fn welch_refuses_constant_samples_and_short_samples() {
        let err = welch_t_test(&[1.0, 1.0], &[2.0, 2.0]).unwrap_err();
        assert!(
            err.to_string().contains("both samples are constant"),
            "{err}"
        );
        let err = welch_t_test(&[1.0], &[2.0, 3.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sample `a` has 1 observation(s) but Welch's t-test needs at least 2: \
             collect more observations before testing"
        );
        let err = welch_t_test(&[1.0, 2.0], &[2.0, f64::NAN]).unwrap_err();
        assert!(
            err.to_string()
                .contains("sample `b` has a non-finite value (NaN) at index 1")
        );
    }

    #[test]
    fn welch_with_one_constant_sample_has_n_minus_one_df() {
        let t = welch_t_test(&[1.0, 2.0, 3.0, 4.0], &[0.0, 0.0, 0.0]).unwrap();
        assert!((t.df - 3.0).abs() < 1e-12);
        assert!((t.statistic - 2.5 / (5.0_f64 / 12.0).sqrt()).abs() < 1e-12);
    }
}
