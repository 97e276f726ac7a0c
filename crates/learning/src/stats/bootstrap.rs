//! Percentile bootstrap confidence intervals, deterministic for a seed.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::effect::ConfidenceInterval;
use super::error::{StatsError, StatsResult};
use super::sample::{check_open_unit, check_sample};

/// The fewest resamples accepted; percentile tails need many more (use
/// 10,000 for a 95% interval).
pub const MIN_RESAMPLES: usize = 100;

/// How to bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Two-sided coverage, in (0, 1).
    pub confidence: f64,
    /// Number of resamples, at least [`MIN_RESAMPLES`].
    pub resamples: usize,
    /// Seed of the ChaCha8 stream the resamples are drawn from: the same
    /// seed and data give the same interval on every platform.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    /// 95% coverage, 10,000 resamples, seed 0.
    fn default() -> Self {
        Self {
            confidence: 0.95,
            resamples: 10_000,
            seed: 0,
        }
    }
}

impl BootstrapConfig {
    fn check(&self) -> StatsResult<()> {
        check_open_unit("confidence", self.confidence)?;
        if self.resamples < MIN_RESAMPLES {
            return Err(StatsError::InvalidParameter {
                name: "resamples",
                value: self.resamples as f64,
                requirement: "at least 100 (10,000 is a good default for a 95% interval)",
            });
        }
        Ok(())
    }
}

/// Percentile bootstrap interval of any statistic of one sample.
///
/// Draws `config.resamples` samples of the same size with replacement,
/// evaluates `statistic` on each, and takes the (1 − confidence)/2 and
/// (1 + confidence)/2 quantiles (linear interpolation between order
/// statistics, numpy's default). Assumes independent, identically
/// distributed observations; with fewer than about 20 observations
/// percentile intervals are too narrow.
///
/// # Errors
/// Fewer than 2 observations, a non-finite value, a bad `config`, or a
/// statistic that returns a non-finite value.
///
/// # Example
/// ```
/// use learning::stats::{BootstrapConfig, bootstrap_ci};
/// let roi = [0.05, 0.04, 0.06, -0.20, 0.05, 0.03, 0.05, 0.04, 0.06, 0.05];
/// let median = |s: &[f64]| {
///     let mut v = s.to_vec();
///     v.sort_by(f64::total_cmp);
///     (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
/// };
/// let ci = bootstrap_ci(&roi, &BootstrapConfig::default(), median)?;
/// assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn bootstrap_ci<F>(
    sample: &[f64],
    config: &BootstrapConfig,
    statistic: F,
) -> StatsResult<ConfidenceInterval>
where
    F: Fn(&[f64]) -> f64,
{
    config.check()?;
    check_sample("sample", "the bootstrap", sample, 2)?;
    let estimate = finite_statistic(statistic(sample))?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut buffer = vec![0.0; sample.len()];
    let mut draws = Vec::with_capacity(config.resamples);
    for _ in 0..config.resamples {
        resample_into(&mut rng, sample, &mut buffer);
        draws.push(finite_statistic(statistic(&buffer))?);
    }
    Ok(percentile_interval(estimate, draws, config.confidence))
}

/// Percentile bootstrap interval of the mean of one sample (for example
/// the mean ROI of a strategy's closed trades). See [`bootstrap_ci`].
///
/// # Errors
/// As [`bootstrap_ci`].
///
/// # Example
/// ```
/// use learning::stats::{BootstrapConfig, bootstrap_mean_ci};
/// let roi = [0.05, 0.04, 0.06, -0.20, 0.05, 0.03, 0.05, 0.04, 0.06, 0.05];
/// let config = BootstrapConfig { seed: 7, ..BootstrapConfig::default() };
/// let ci = bootstrap_mean_ci(&roi, &config)?;
/// assert!((ci.estimate - 0.023).abs() < 1e-12);
/// assert!(ci.lower < 0.0 && ci.upper > 0.04);
/// // the same seed gives the same interval
/// assert_eq!(ci, bootstrap_mean_ci(&roi, &config)?);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn bootstrap_mean_ci(
    sample: &[f64],
    config: &BootstrapConfig,
) -> StatsResult<ConfidenceInterval> {
    bootstrap_ci(sample, config, mean)
}

/// Percentile bootstrap interval of mean(a) − mean(b), resampling each
/// sample separately (a stratified bootstrap: the group sizes stay fixed).
/// The interval for the difference in mean ROI between two variants.
///
/// # Errors
/// Fewer than 2 observations in a sample, a non-finite value, or a bad
/// `config`.
///
/// # Example
/// ```
/// use learning::stats::{BootstrapConfig, bootstrap_mean_difference_ci};
/// let a = [0.06, 0.05, 0.07, 0.04, 0.06, 0.08, 0.05, 0.07];
/// let b = [0.02, 0.03, 0.01, 0.04, 0.02, 0.03, 0.00, 0.02];
/// let ci = bootstrap_mean_difference_ci(&a, &b, &BootstrapConfig::default())?;
/// assert!(ci.lower > 0.0); // a beats b at 95%
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn bootstrap_mean_difference_ci(
    a: &[f64],
    b: &[f64],
    config: &BootstrapConfig,
) -> StatsResult<ConfidenceInterval> {
    config.check()?;
    check_sample("a", "the bootstrap", a, 2)?;
    check_sample("b", "the bootstrap", b, 2)?;
    let estimate = mean(a) - mean(b);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut buffer_a = vec![0.0; a.len()];
    let mut buffer_b = vec![0.0; b.len()];
    let mut draws = Vec::with_capacity(config.resamples);
    for _ in 0..config.resamples {
        resample_into(&mut rng, a, &mut buffer_a);
        resample_into(&mut rng, b, &mut buffer_b);
        draws.push(mean(&buffer_a) - mean(&buffer_b));
    }
    Ok(percentile_interval(estimate, draws, config.confidence))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn resample_into<R: Rng>(rng: &mut R, sample: &[f64], buffer: &mut [f64]) {
    for slot in buffer.iter_mut() {
        *slot = sample[rng.random_range(0..sample.len())];
    }
}

fn finite_statistic(value: f64) -> StatsResult<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(StatsError::Numerical {
            what: "the bootstrap statistic",
            why: format!("it returned {value} on a resample; make it finite for any sample"),
        })
    }
}

/// The percentile interval of sorted `draws`.
fn percentile_interval(estimate: f64, mut draws: Vec<f64>, confidence: f64) -> ConfidenceInterval {
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    ConfidenceInterval {
        estimate,
        lower: quantile_sorted(&draws, tail),
        upper: quantile_sorted(&draws, 1.0 - tail),
        confidence,
    }
}

/// Linear-interpolation quantile of a non-empty sorted slice (numpy's
/// default, "type 7").
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let below = h.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (h - below as f64) * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!((quantile_sorted(&v, 0.25) - 1.75).abs() < 1e-15);
        assert!((quantile_sorted(&v, 0.5) - 2.5).abs() < 1e-15);
    }

    #[test]
    fn different_seeds_give_different_intervals() {
        let x = [1.3, 3.1, 2.4, 5.9, 4.2, 7.7, 6.5, 9.8, 0.6, 2.2, 8.1, 4.4];
        let one = bootstrap_mean_ci(
            &x,
            &BootstrapConfig {
                seed: 1,
                ..Default::default()
            },
        );
        let two = bootstrap_mean_ci(
            &x,
            &BootstrapConfig {
                seed: 2,
                ..Default::default()
            },
        );
        assert_ne!(one.unwrap(), two.unwrap());
    }

    #[test]
    fn refuses_bad_configuration() {
        let x = [1.0, 2.0, 3.0];
        let few = BootstrapConfig {
            resamples: 10,
            ..Default::default()
        };
        assert!(
            bootstrap_mean_ci(&x, &few)
                .unwrap_err()
                .to_string()
                .contains("resamples = 10")
        );
        let wide = BootstrapConfig {
            confidence: 1.0,
            ..Default::default()
        };
        assert!(bootstrap_mean_ci(&x, &wide).is_err());
        let err = bootstrap_ci(&x, &BootstrapConfig::default(), |_| f64::NAN).unwrap_err();
        assert!(err.to_string().contains("returned NaN"), "{err}");
    }
}
