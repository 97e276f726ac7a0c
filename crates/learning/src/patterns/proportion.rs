//! Comparing two win rates: the pooled two-proportion z-test and, for
//! small expected counts, Fisher's exact test.

use serde::{Deserialize, Serialize};
use statrs::function::{erf, factorial};

use crate::stats::{StatsError, StatsResult};

/// Result of [`two_proportion_z_test`] (two-sided).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TwoProportionZ {
    /// z = (p̂_a − p̂_b) / √(p̂(1 − p̂)(1/n_a + 1/n_b)), p̂ the pooled rate.
    pub statistic: f64,
    /// Two-sided p-value, 2·P(Z ≥ |z|).
    pub p_value: f64,
    /// p̂_a − p̂_b.
    pub difference: f64,
}

/// Two-sided z-test of equal proportions with the pooled variance and no
/// continuity correction (as statsmodels' `proportions_ztest([wins_a,
/// wins_b], [n_a, n_b])`).
///
/// The normal approximation needs every expected count n·p̂ and n·(1 − p̂)
/// of both groups to be at least about 5; below that use
/// [`fisher_exact_test`] (the pattern detector switches by itself).
///
/// # Errors
/// A group with no trials, more wins than trials, or a pooled rate of 0
/// or 1 (every trade won, or every trade lost: nothing to compare).
///
/// # Example
/// ```
/// // 15 of 50 against 25 of 50
/// let z = learning::patterns::two_proportion_z_test(15, 50, 25, 50)?;
/// assert!((z.statistic + 2.041_241_452_319_315).abs() < 1e-12);
/// assert!((z.p_value - 0.041_226_833_337_163_71).abs() < 1e-10); // statrs erfc: ~1e-11 relative
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn two_proportion_z_test(
    wins_a: u64,
    n_a: u64,
    wins_b: u64,
    n_b: u64,
) -> StatsResult<TwoProportionZ> {
    check_counts(wins_a, n_a, wins_b, n_b, "the two-proportion z-test")?;
    let (na, nb) = (n_a as f64, n_b as f64);
    let pooled = (wins_a + wins_b) as f64 / (na + nb);
    let variance = pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb);
    if variance <= 0.0 {
        return Err(StatsError::ZeroSpread {
            method: "the two-proportion z-test",
            why: "every trade of both groups has the same outcome, so the win rates cannot differ; \
                  wait for both wins and losses",
        });
    }
    let difference = wins_a as f64 / na - wins_b as f64 / nb;
    let statistic = difference / variance.sqrt();
    let p_value = erf::erfc(statistic.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0);
    Ok(TwoProportionZ {
        statistic,
        p_value,
        difference,
    })
}

/// Two-sided Fisher exact test of the 2×2 table (wins_a, n_a − wins_a;
/// wins_b, n_b − wins_b), conditional on the margins: the p-value is the
/// total hypergeometric probability of the tables no more likely than the
/// observed one (as `scipy.stats.fisher_exact`, with its relative tolerance
/// of 1e-7 for ties). Exact at any sample size, and conservative (its
/// p-values are discrete).
///
/// # Errors
/// A group with no trials, or more wins than trials.
///
/// # Example
/// ```
/// // scipy.stats.fisher_exact([[6, 2], [1, 4]]).pvalue
/// let p = learning::patterns::fisher_exact_test(6, 8, 1, 5)?;
/// assert!((p - 0.102_564_102_564_102_57).abs() < 1e-12);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn fisher_exact_test(wins_a: u64, n_a: u64, wins_b: u64, n_b: u64) -> StatsResult<f64> {
    check_counts(wins_a, n_a, wins_b, n_b, "Fisher's exact test")?;
    let n = n_a + n_b;
    let wins = wins_a + wins_b;
    let ln_total = factorial::ln_binomial(n, n_a);
    let ln_p = |x: u64| {
        factorial::ln_binomial(wins, x) + factorial::ln_binomial(n - wins, n_a - x) - ln_total
    };
    let low = n_a.saturating_sub(n - wins);
    let high = n_a.min(wins);
    let observed = ln_p(wins_a);
    // scipy's tolerance: tables within a relative 1e-7 of the observed
    // probability count as equally likely.
    let threshold = observed + (1.0_f64 + 1e-7).ln();
    let p: f64 = (low..=high)
        .map(ln_p)
        .filter(|&lp| lp <= threshold)
        .map(f64::exp)
        .sum();
    Ok(p.clamp(0.0, 1.0))
}

fn check_counts(
    wins_a: u64,
    n_a: u64,
    wins_b: u64,
    n_b: u64,
    method: &'static str,
) -> StatsResult<()> {
    for (sample, wins, n) in [("a", wins_a, n_a), ("b", wins_b, n_b)] {
        if n == 0 {
            return Err(StatsError::TooFewObservations {
                sample,
                method,
                needed: 1,
                got: 0,
            });
        }
        if wins > n {
            return Err(StatsError::InvalidCount {
                what: format!(
                    "group `{sample}` has {wins} wins out of {n} trades: \
                     wins cannot exceed trades; count them again"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fisher_sums_the_tables_no_more_likely_than_the_observed_one() {
        // margins 8/5 rows, 7 wins: P(x) ∝ C(7,x)·C(6,8−x) over 1287 tables;
        // x = 2..7 → 21, 210, 525, 420, 105, 6; observed x = 6 (105):
        // 21 + 105 + 6 = 132.
        let p = fisher_exact_test(6, 8, 1, 5).unwrap();
        assert!((p - 132.0 / 1287.0).abs() < 1e-14);
        // symmetric in the groups
        let q = fisher_exact_test(1, 5, 6, 8).unwrap();
        assert!((p - q).abs() < 1e-14);
        // identical groups: p = 1
        assert!((fisher_exact_test(5, 10, 5, 10).unwrap() - 1.0).abs() < 1e-12);
        // all wins: a single table, p = 1
        assert!((fisher_exact_test(10, 10, 20, 20).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn z_test_refuses_degenerate_inputs() {
        assert!(matches!(
            two_proportion_z_test(10, 10, 5, 5),
            Err(StatsError::ZeroSpread { .. })
        ));
        let err = two_proportion_z_test(11, 10, 5, 5).unwrap_err();
        assert!(err.to_string().contains("11 wins out of 10"), "{err}");
        assert!(matches!(
            fisher_exact_test(0, 0, 1, 2),
            Err(StatsError::TooFewObservations { .. })
        ));
    }

    #[test]
    fn z_test_is_antisymmetric() {
        let a = two_proportion_z_test(40, 50, 150, 250).unwrap();
        let b = two_proportion_z_test(150, 250, 40, 50).unwrap();
        assert!((a.statistic + b.statistic).abs() < 1e-14);
        assert!((a.p_value - b.p_value).abs() < 1e-14);
        assert!((a.difference - 0.2).abs() < 1e-14);
    }
}
