//! Exact binomial test, for win rates.

use serde::{Deserialize, Serialize};

use statrs::function::beta;

use super::dist::binomial_pmf;
use super::error::{StatsError, StatsResult};
use super::sample::check_open_unit;

/// scipy's relative tolerance for "as likely as the observed count".
const RELATIVE_TOLERANCE: f64 = 1.0 + 1e-7;

/// Result of [`binomial_test`] (two-sided, exact).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinomialTest {
    /// Number of successes (wins).
    pub successes: u64,
    /// Number of trials (closed trades).
    pub trials: u64,
    /// The success probability under the null hypothesis.
    pub p0: f64,
    /// The observed rate successes / trials.
    pub estimate: f64,
    /// Two-sided exact p-value.
    pub p_value: f64,
}

/// Exact two-sided binomial test that the success probability is `p0` (as
/// `scipy.stats.binomtest(successes, trials, p0)`).
///
/// The p-value sums the probabilities of every count at most as likely as
/// the observed one (within scipy's relative tolerance 1e-7), taking the
/// observed side's whole tail and, beyond the mode, the counts whose
/// probability is at most the observed one's. Assumes independent trials
/// with one common win probability — trades opened on the same day in
/// correlated underlyings are not independent, and the test then
/// overstates the evidence.
///
/// # Errors
/// No trials, more successes than trials, or `p0` outside (0, 1).
///
/// # Example
/// ```
/// // 17 wins out of 21 trades against a coin flip
/// let t = learning::stats::binomial_test(17, 21, 0.5)?;
/// assert!((t.p_value - 0.007_197_380_065_917_969).abs() < 1e-15);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn binomial_test(successes: u64, trials: u64, p0: f64) -> StatsResult<BinomialTest> {
    if trials == 0 {
        return Err(StatsError::InvalidCount {
            what: "trials = 0: the binomial test needs at least one trial".to_owned(),
        });
    }
    if successes > trials {
        return Err(StatsError::InvalidCount {
            what: format!(
                "successes = {successes} exceeds trials = {trials}: count each trial once, \
                 as a success or a failure"
            ),
        });
    }
    check_open_unit("p0", p0)?;

    let (k, n) = (successes, trials);
    let expected = p0 * n as f64;
    let pmf = |i: u64| binomial_pmf(i, n, p0);
    let p_value = if k as f64 == expected {
        1.0
    } else {
        let threshold = pmf(k) * RELATIVE_TOLERANCE;
        let (own_tail, other_side) = if (k as f64) < expected {
            // scipy: cdf(k) + the upper counts from ceil(np) as unlikely as k
            let from = expected.ceil() as u64;
            ((0..=k).map(pmf).sum::<f64>(), from..=n)
        } else {
            // scipy: sf(k − 1) + the lower counts up to floor(np) as unlikely as k
            let to = expected.floor() as u64;
            ((k..=n).map(pmf).sum::<f64>(), 0..=to)
        };
        let other_tail: f64 = other_side.map(pmf).filter(|&q| q <= threshold).sum();
        (own_tail + other_tail).min(1.0)
    };
    Ok(BinomialTest {
        successes,
        trials,
        p0,
        estimate: successes as f64 / trials as f64,
        p_value,
    })
}

/// An exact (Clopper–Pearson) two-sided confidence interval for a
/// binomial proportion: the `confidence` interval (0.95 for 95%) of the
/// rate behind `successes` in `trials`, from the beta quantiles
/// `B(α/2; k, n−k+1)` and `B(1−α/2; k+1, n−k)` (as
/// `scipy.stats.binomtest(k, n).proportion_ci(confidence, method="exact")`).
/// Conservative: it covers the true rate at least `confidence` of the time.
/// 0 successes give a lower bound of 0, `trials` successes an upper bound
/// of 1.
///
/// # Errors
/// No trials, more successes than trials, or `confidence` outside (0, 1).
///
/// # Example
/// ```
/// // 3 adoptions in 40 simulated years: 1.6% to 20.4%
/// let (lo, hi) = learning::stats::binomial_ci(3, 40, 0.95)?;
/// assert!((lo - 0.0157).abs() < 5e-4 && (hi - 0.2039).abs() < 5e-4);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn binomial_ci(successes: u64, trials: u64, confidence: f64) -> StatsResult<(f64, f64)> {
    if trials == 0 {
        return Err(StatsError::InvalidCount {
            what: "trials = 0: an interval needs at least one trial".to_owned(),
        });
    }
    if successes > trials {
        return Err(StatsError::InvalidCount {
            what: format!(
                "successes = {successes} exceeds trials = {trials}: count each trial once"
            ),
        });
    }
    check_open_unit("confidence", confidence)?;
    let tail = (1.0 - confidence) / 2.0;
    let (k, n) = (successes as f64, trials as f64);
    let lower = if successes == 0 {
        0.0
    } else {
        beta::inv_beta_reg(k, n - k + 1.0, tail)
    };
    let upper = if successes == trials {
        1.0
    } else {
        beta::inv_beta_reg(k + 1.0, n - k, 1.0 - tail)
    };
    Ok((lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn symmetric_null_doubles_the_tail() {
        // P(X ≤ 2) for Binomial(10, ½) = 56/1024, doubled
        let t = binomial_test(2, 10, 0.5).unwrap();
        assert!((t.p_value - 112.0 / 1024.0).abs() < 1e-15);
        let t = binomial_test(5, 10, 0.5).unwrap();
        assert_eq!(t.p_value, 1.0);
    }

    #[test]
    fn asymmetric_null_sums_counts_no_more_likely_than_observed() {
        // Binomial(10, 0.3): P(0) = 0.0282475249 < P(6) = 0.0367569090, so
        // p(0 wins) = P(0) + P(7..=10) (0.0388396033)
        let t = binomial_test(0, 10, 0.3).unwrap();
        let direct: f64 = [0_u64, 7, 8, 9, 10]
            .iter()
            .map(|&i| binomial_pmf(i, 10, 0.3))
            .sum();
        assert!((t.p_value - direct).abs() < 1e-15);
        assert!((t.p_value - 0.038_839_603_3).abs() < 1e-9);
    }

    #[test]
    fn refuses_impossible_counts() {
        let err = binomial_test(5, 4, 0.5).unwrap_err();
        assert!(err.to_string().contains("successes = 5 exceeds trials = 4"));
        assert!(binomial_test(0, 0, 0.5).is_err());
        let err = binomial_test(1, 4, 1.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p0 = 1 is invalid: it must be strictly between 0 and 1"
        );
    }

    #[test]
    fn the_exact_interval_solves_its_defining_tails() {
        // P(X >= k | lower) = P(X <= k | upper) = (1 - confidence) / 2
        for (k, n) in [(1u64, 10u64), (3, 40), (10, 200), (37, 40)] {
            let (lo, hi) = binomial_ci(k, n, 0.95).unwrap();
            let at_least = |p: f64| (k..=n).map(|i| binomial_pmf(i, n, p)).sum::<f64>();
            let at_most = |p: f64| (0..=k).map(|i| binomial_pmf(i, n, p)).sum::<f64>();
            assert!((at_least(lo) - 0.025).abs() < 1e-9, "{k}/{n}: lower {lo}");
            assert!((at_most(hi) - 0.025).abs() < 1e-9, "{k}/{n}: upper {hi}");
            let rate = k as f64 / n as f64;
            assert!(lo < rate && rate < hi);
        }
        assert_eq!(binomial_ci(0, 20, 0.95).unwrap().0, 0.0);
        assert_eq!(binomial_ci(20, 20, 0.95).unwrap().1, 1.0);
        assert!(binomial_ci(0, 0, 0.95).is_err());
        assert!(binomial_ci(3, 2, 0.95).is_err());
        assert!(binomial_ci(1, 2, 1.0).is_err());
    }
}
