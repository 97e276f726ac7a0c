//! Input checks and the summary statistics every test starts from.

use super::error::{StatsError, StatsResult};

/// Count, mean and unbiased variance of a validated sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    /// Unbiased (n − 1) variance; 0 for a single observation.
    pub(crate) variance: f64,
}

impl Summary {
    /// Checks that `values` has at least `needed` finite observations and
    /// summarises it with a two-pass mean and variance (as numpy does).
    pub(crate) fn of(
        sample: &'static str,
        method: &'static str,
        values: &[f64],
        needed: usize,
    ) -> StatsResult<Self> {
        check_sample(sample, method, values, needed)?;
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let variance = if n > 1 {
            values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Ok(Self { n, mean, variance })
    }

    /// Variance of the mean, s² / n.
    pub(crate) fn variance_of_mean(&self) -> f64 {
        self.variance / self.n as f64
    }
}

/// Refuses samples that are too short or hold a non-finite value.
pub(crate) fn check_sample(
    sample: &'static str,
    method: &'static str,
    values: &[f64],
    needed: usize,
) -> StatsResult<()> {
    if values.len() < needed {
        return Err(StatsError::TooFewObservations {
            sample,
            method,
            needed,
            got: values.len(),
        });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(StatsError::NonFinite {
            sample,
            index,
            value,
        });
    }
    Ok(())
}

/// Refuses a significance level outside (0, 1).
pub(crate) fn check_alpha(name: &'static str, alpha: f64) -> StatsResult<()> {
    check_open_unit(name, alpha)
}

/// Refuses a value outside the open interval (0, 1).
pub(crate) fn check_open_unit(name: &'static str, value: f64) -> StatsResult<()> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            value,
            requirement: "strictly between 0 and 1",
        })
    }
}
