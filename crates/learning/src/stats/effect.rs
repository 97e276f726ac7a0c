//! Effect sizes: how large a difference is, as opposed to how sure we are
//! that it exists.

use serde::{Deserialize, Serialize};

use super::dist::t_two_sided_critical;
use super::error::{StatsError, StatsResult};
use super::sample::{Summary, check_open_unit};
use super::two_sample::welch_from_summaries;

/// A point estimate with a two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The statistic on the full data.
    pub estimate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Coverage the interval aims at, e.g. 0.95.
    pub confidence: f64,
}

impl ConfidenceInterval {
    /// Whether `value` lies inside the interval (bounds included).
    #[must_use]
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }
}

/// Effect sizes of `a` against `b` (see [`effect_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EffectSize {
    /// mean(a) − mean(b), in the data's own unit (for trades: the
    /// difference in mean ROI).
    pub mean_difference: f64,
    /// Pooled standard deviation √(((n_a−1)s²_a + (n_b−1)s²_b)/(n_a+n_b−2)).
    pub pooled_sd: f64,
    /// Cohen's d = mean_difference / pooled_sd (unitless; 0.2 is
    /// conventionally small, 0.5 medium, 0.8 large).
    pub cohens_d: f64,
}

/// Difference in means and Cohen's d (pooled standard deviation) of `a`
/// against `b`.
///
/// # Errors
/// Fewer than 2 observations in a sample, a non-finite value, or both
/// samples constant (the pooled standard deviation is 0).
///
/// # Example
/// ```
/// let new_rule = [0.04, 0.06, 0.05, 0.07];
/// let old_rule = [0.03, 0.05, 0.04, 0.06];
/// let e = learning::stats::effect_size(&new_rule, &old_rule)?;
/// assert!((e.mean_difference - 0.01).abs() < 1e-12);
/// assert!((e.cohens_d - 0.01 / e.pooled_sd).abs() < 1e-12);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn effect_size(a: &[f64], b: &[f64]) -> StatsResult<EffectSize> {
    const METHOD: &str = "Cohen's d";
    let sa = Summary::of("a", METHOD, a, 2)?;
    let sb = Summary::of("b", METHOD, b, 2)?;
    let pooled_variance = ((sa.n - 1) as f64 * sa.variance + (sb.n - 1) as f64 * sb.variance)
        / (sa.n + sb.n - 2) as f64;
    if pooled_variance <= 0.0 {
        return Err(StatsError::ZeroSpread {
            method: METHOD,
            why: "both samples are constant, so the pooled standard deviation is 0; \
                  report the difference in means alone",
        });
    }
    let pooled_sd = pooled_variance.sqrt();
    let mean_difference = sa.mean - sb.mean;
    Ok(EffectSize {
        mean_difference,
        pooled_sd,
        cohens_d: mean_difference / pooled_sd,
    })
}

/// Cohen's d of `a` against `b` with the pooled standard deviation (as
/// [`effect_size`]`(a, b)?.cohens_d`).
///
/// # Errors
/// As [`effect_size`].
///
/// # Example
/// ```
/// let d = learning::stats::cohens_d(&[2.0, 4.0, 6.0], &[1.0, 3.0, 5.0])?;
/// assert!((d - 0.5).abs() < 1e-12);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn cohens_d(a: &[f64], b: &[f64]) -> StatsResult<f64> {
    Ok(effect_size(a, b)?.cohens_d)
}

/// Confidence interval of mean(a) − mean(b) from Welch's t distribution:
/// difference ± t_{1−(1−confidence)/2, df} · standard error. For skewed
/// data with few observations prefer
/// [`bootstrap_mean_difference_ci`](super::bootstrap_mean_difference_ci).
///
/// # Errors
/// As [`welch_t_test`](super::welch_t_test), or `confidence` outside (0, 1).
///
/// # Example
/// ```
/// let a = [0.05, 0.07, 0.06, 0.08, 0.04];
/// let b = [0.01, 0.03, 0.02, 0.00, 0.04];
/// let ci = learning::stats::mean_difference_ci(&a, &b, 0.95)?;
/// assert!((ci.estimate - 0.04).abs() < 1e-12);
/// assert!(ci.lower > 0.0 && ci.contains(0.04));
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn mean_difference_ci(
    a: &[f64],
    b: &[f64],
    confidence: f64,
) -> StatsResult<ConfidenceInterval> {
    check_open_unit("confidence", confidence)?;
    const METHOD: &str = "the Welch confidence interval";
    let sa = Summary::of("a", METHOD, a, 2)?;
    let sb = Summary::of("b", METHOD, b, 2)?;
    let t = welch_from_summaries(&sa, &sb)?;
    let half_width = t_two_sided_critical(1.0 - confidence, t.df) * t.standard_error;
    Ok(ConfidenceInterval {
        estimate: t.mean_difference,
        lower: t.mean_difference - half_width,
        upper: t.mean_difference + half_width,
        confidence,
    })
}
