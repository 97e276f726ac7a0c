//! Multiple-testing corrections: Holm (family-wise error) and
//! Benjamini-Hochberg (false discovery rate).

use serde::{Deserialize, Serialize};

use super::error::{StatsError, StatsResult};
use super::sample::check_alpha;

/// Which correction produced a [`MultipleTesting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm's step-down procedure (family-wise error rate ≤ α).
    Holm,
    /// Benjamini-Hochberg step-up procedure (false discovery rate ≤ α).
    BenjaminiHochberg,
}

/// Adjusted p-values and decisions, in the order of the input p-values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultipleTesting {
    /// The procedure applied.
    pub correction: Correction,
    /// The level the decisions are taken at.
    pub alpha: f64,
    /// Adjusted p-values, capped at 1; hypothesis i is rejected exactly when
    /// its adjusted p-value is ≤ α (up to rounding at the boundary).
    pub adjusted: Vec<f64>,
    /// Whether each hypothesis is rejected.
    pub reject: Vec<bool>,
}

impl MultipleTesting {
    /// Number of rejected hypotheses.
    #[must_use]
    pub fn rejections(&self) -> usize {
        self.reject.iter().filter(|r| **r).count()
    }
}

/// Holm's step-down correction (as statsmodels' `multipletests(p, alpha,
/// method="holm")`).
///
/// Controls the probability of even one false rejection among the family at
/// `alpha`, under any dependence between the tests. Use it when a single
/// false adoption is costly — for example deciding which parameter changes
/// go live. An empty list gives an empty result.
///
/// # Errors
/// `alpha` outside (0, 1), or a p-value that is not a number in [0, 1].
///
/// # Example
/// ```
/// let r = learning::stats::holm(&[0.01, 0.04, 0.03, 0.005], 0.05)?;
/// assert_eq!(r.reject, [true, false, false, true]);
/// assert!((r.adjusted[0] - 0.03).abs() < 1e-12); // 0.01 × 3 (second smallest)
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn holm(p_values: &[f64], alpha: f64) -> StatsResult<MultipleTesting> {
    check_alpha("alpha", alpha)?;
    let order = sorted_order(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut reject = vec![false; m];
    let mut running_max = 0.0_f64;
    let mut still_rejecting = true;
    for (rank, &i) in order.iter().enumerate() {
        let p = p_values[i];
        let remaining = (m - rank) as f64;
        // Step down: stop rejecting at the first p above α / (m − rank).
        still_rejecting = still_rejecting && p <= alpha / remaining;
        reject[i] = still_rejecting;
        running_max = running_max.max(p * remaining);
        adjusted[i] = running_max.min(1.0);
    }
    Ok(MultipleTesting {
        correction: Correction::Holm,
        alpha,
        adjusted,
        reject,
    })
}

/// Benjamini-Hochberg step-up correction (as statsmodels' `multipletests(p,
/// alpha, method="fdr_bh")`).
///
/// Controls the expected share of false discoveries among the rejections
/// at `alpha` for independent or positively dependent tests. More powerful
/// than [`holm`]; use it to screen many candidate patterns when a few false
/// leads are acceptable because they are confirmed before adoption. An
/// empty list gives an empty result.
///
/// # Errors
/// `alpha` outside (0, 1), or a p-value that is not a number in [0, 1].
///
/// # Example
/// ```
/// let r = learning::stats::benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005], 0.05)?;
/// assert_eq!(r.reject, [true, true, true, true]);
/// assert!((r.adjusted[1] - 0.04).abs() < 1e-12);
/// # Ok::<(), learning::stats::StatsError>(())
/// ```
pub fn benjamini_hochberg(p_values: &[f64], alpha: f64) -> StatsResult<MultipleTesting> {
    check_alpha("alpha", alpha)?;
    let order = sorted_order(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut reject = vec![false; m];
    // Step up: reject every hypothesis up to the largest rank whose p is at
    // most (rank / m)·α.
    let largest = order
        .iter()
        .enumerate()
        .filter(|&(rank, &i)| p_values[i] <= ecdf_factor(rank, m) * alpha)
        .map(|(rank, _)| rank)
        .next_back();
    let mut running_min = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        running_min = running_min.min(p_values[i] / ecdf_factor(rank, m));
        adjusted[i] = running_min.min(1.0);
        reject[i] = largest.is_some_and(|last| rank <= last);
    }
    Ok(MultipleTesting {
        correction: Correction::BenjaminiHochberg,
        alpha,
        adjusted,
        reject,
    })
}

/// (rank + 1) / m, computed as statsmodels does.
fn ecdf_factor(rank: usize, m: usize) -> f64 {
    (rank + 1) as f64 / m as f64
}

/// Indices of `p_values` sorted by value, after checking each is in [0, 1].
fn sorted_order(p_values: &[f64]) -> StatsResult<Vec<usize>> {
    if let Some((index, &value)) = p_values
        .iter()
        .enumerate()
        .find(|(_, p)| !(p.is_finite() && (0.0..=1.0).contains(*p)))
    {
        return Err(StatsError::InvalidPValue { index, value });
    }
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&x, &y| p_values[x].total_cmp(&p_values[y]));
    Ok(order)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_family_gives_empty_result() {
        assert_eq!(holm(&[], 0.05).unwrap().adjusted, Vec::<f64>::new());
        assert_eq!(benjamini_hochberg(&[], 0.05).unwrap().rejections(), 0);
    }

    #[test]
    fn refuses_values_that_are_not_probabilities() {
        let err = holm(&[0.1, 1.5], 0.05).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p-value at index 1 is 1.5: every p-value must be a finite number in [0, 1]"
        );
        assert!(benjamini_hochberg(&[f64::NAN], 0.05).is_err());
        assert!(holm(&[0.1], 0.0).is_err());
    }

    #[test]
    fn holm_stops_at_the_first_failure_even_if_later_ones_pass() {
        // sorted: 0.01 ≤ 0.05/3, 0.03 > 0.05/2 → stop; 0.04 ≤ 0.05 is not rejected
        let r = holm(&[0.04, 0.01, 0.03], 0.05).unwrap();
        assert_eq!(r.reject, [false, true, false]);
        for (got, want) in r.adjusted.iter().zip([0.06, 0.03, 0.06]) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn ties_get_equal_adjusted_values() {
        let r = benjamini_hochberg(&[0.02, 0.02, 0.5], 0.05).unwrap();
        assert_eq!(r.adjusted[0], r.adjusted[1]);
        assert!((r.adjusted[0] - 0.03).abs() < 1e-15);
        let r = holm(&[0.02, 0.02, 0.5], 0.05).unwrap();
        assert_eq!(r.adjusted[0], r.adjusted[1]);
        assert!((r.adjusted[0] - 0.06).abs() < 1e-15);
    }
}
