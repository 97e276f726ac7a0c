//! The deflated Sharpe ratio: how likely the best of many backtests has a
//! true Sharpe ratio above zero, once the number of trials, the spread of
//! their Sharpe ratios and the non-normality of the returns are accounted
//! for.
//!
//! Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio:
//! Correcting for Selection Bias, Backtest Overfitting, and Non-Normality",
//! *Journal of Portfolio Management* 40(5), 94–107,
//! <https://doi.org/10.3905/jpm.2014.40.5.094> (SSRN 2460551):
//!
//! ```text
//! SR₀ = √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))
//!
//! DSR = Φ( (SR̂ − SR₀) √(T − 1) / √(1 − γ̂₃ SR̂ + (γ̂₄ − 1)/4 · SR̂²) )
//! ```
//!
//! * `SR̂` — the selected strategy's Sharpe ratio **per period** (daily, not
//!   annualised): mean ÷ sample standard deviation (n − 1) of its returns;
//! * `T` — its number of returns; `γ̂₃`, `γ̂₄` — their skewness `m₃/m₂^{3/2}`
//!   and (non-excess, normal = 3) kurtosis `m₄/m₂²`, with population
//!   central moments `mₖ = Σ(x − x̄)ᵏ / n` (scipy's `skew`,
//!   `kurtosis(fisher=False)`);
//! * `N` — the number of (independent) trials and `V` the sample variance
//!   (n − 1) of their per-period Sharpe ratios;
//! * `SR₀` — the expected maximum Sharpe ratio of `N` trials of a strategy
//!   without skill (γ = 0.5772… is the Euler-Mascheroni constant); with one
//!   trial there is no selection and `SR₀ = 0`, which makes the DSR the
//!   probabilistic Sharpe ratio against zero. The formula is asymptotic and
//!   turns negative for `N` just above 1, where the true expected maximum
//!   of zero-mean trials is ≥ 0, so `SR₀` is `max(0, …)`;
//! * `Φ` — the standard normal CDF.
//!
//! # Correlated trials
//!
//! A parameter search's trials are not independent: neighbouring parameter
//! sets trade almost the same positions, and their returns move together.
//! Counting each as an independent trial would deflate a real optimum as
//! hard as the luckiest of as many coin flips — and the spread `V` of a
//! search's Sharpe ratios is mostly the real difference between good and
//! bad regions, not luck. [`summarize_trials`] therefore uses the number of
//! independent trials `N = ρ̄ + (1 − ρ̄) M` for `M` trials whose return
//! series have average pairwise correlation `ρ̄` (clamped to [0, 1]): `M`
//! uncorrelated trials count fully, `M` identical ones count once. This is
//! the approximation the DSR literature uses for correlated trials
//! (López de Prado's later work refines it by clustering trials). Pure
//! noise searched hard stays at `N ≈ M`; a smooth landscape whose
//! neighbours share their returns collapses towards `N ≈ 1`.
//!
//! The paper's example (annualised SR̂ 2.5 over T = 1250 days, γ̂₃ = −3,
//! γ̂₄ = 10, N = 100 trials with annualised V = 0.5) gives DSR ≈ 0.9004;
//! `tools/golden/deflated_sharpe.py` recomputes it and the other reference
//! cases the tests check to 1e-9.

use serde::{Deserialize, Serialize};
use statrs::function::erf;

use super::error::{OptimizerError, OptimizerResult};
use super::evaluation::per_period_sharpe;

/// The Euler-Mascheroni constant γ.
pub const EULER_MASCHERONI: f64 = 0.577_215_664_901_532_9;

/// A Sharpe ratio estimated from a return series, with what its standard
/// error depends on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharpeEstimate {
    /// Mean ÷ sample standard deviation, per period (not annualised).
    pub sharpe: f64,
    /// Number of returns `T`.
    pub observations: usize,
    /// Skewness `m₃ / m₂^{3/2}` (population moments).
    pub skewness: f64,
    /// Kurtosis `m₄ / m₂²` (population moments; 3 for a normal).
    pub kurtosis: f64,
}

impl SharpeEstimate {
    /// Estimates the Sharpe ratio, skewness and kurtosis of `returns`
    /// (per period). Needs at least three finite returns that are not all
    /// equal.
    pub fn from_returns(returns: &[f64]) -> OptimizerResult<Self> {
        let n = returns.len();
        if n < 3 {
            return Err(OptimizerError::Numerical {
                what: "the Sharpe ratio estimate",
                why: format!(
                    "{n} return(s) given, at least 3 are needed: evaluate over a longer window"
                ),
            });
        }
        if let Some((index, value)) = returns.iter().enumerate().find(|(_, r)| !r.is_finite()) {
            return Err(OptimizerError::Numerical {
                what: "the Sharpe ratio estimate",
                why: format!("return {index} is {value}: drop or repair it"),
            });
        }
        let count = n as f64;
        let mean = returns.iter().sum::<f64>() / count;
        let central = |k: i32| returns.iter().map(|r| (r - mean).powi(k)).sum::<f64>() / count;
        let (m2, m3, m4) = (central(2), central(3), central(4));
        if !varies(returns, m2) {
            return Err(OptimizerError::Numerical {
                what: "the Sharpe ratio estimate",
                why: "every return is the same (no variation): the Sharpe ratio is undefined"
                    .into(),
            });
        }
        let sample_sd = (m2 * count / (count - 1.0)).sqrt();
        Ok(SharpeEstimate {
            sharpe: mean / sample_sd,
            observations: n,
            skewness: m3 / m2.powf(1.5),
            kurtosis: m4 / (m2 * m2),
        })
    }
}

/// The result of [`deflated_sharpe_ratio`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeflatedSharpe {
    /// The estimate that was deflated.
    pub estimate: SharpeEstimate,
    /// Number of (independent) trials `N`, ≥ 1; fractional when it comes
    /// from [`effective_trials`].
    pub trials: f64,
    /// Variance `V` of the trials' per-period Sharpe ratios.
    pub trial_sharpe_variance: f64,
    /// `SR₀`: the expected maximum per-period Sharpe ratio of `N` trials
    /// without skill.
    pub expected_max_sharpe: f64,
    /// The standardized distance of `SR̂` above `SR₀`.
    pub statistic: f64,
    /// `Φ(statistic)`: the probability that the true Sharpe ratio exceeds
    /// zero after the selection among `N` trials (the DSR).
    pub probability: f64,
}

/// `SR₀ = max(0, √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))))`, the
/// expected maximum of `trials` (N ≥ 1) per-period Sharpe ratios of
/// strategies without skill whose Sharpe ratios vary with variance
/// `trial_sharpe_variance`; 0 for one trial.
pub fn expected_max_sharpe(trials: f64, trial_sharpe_variance: f64) -> OptimizerResult<f64> {
    check_trials(trials, trial_sharpe_variance)?;
    if trials == 1.0 {
        return Ok(0.0);
    }
    let n = trials;
    let expected = trial_sharpe_variance.sqrt()
        * ((1.0 - EULER_MASCHERONI) * normal_upper_quantile(1.0 / n)
            + EULER_MASCHERONI * normal_upper_quantile(1.0 / (n * std::f64::consts::E)));
    Ok(expected.max(0.0))
}

/// The probabilistic Sharpe ratio statistic of `estimate` against the
/// per-period `benchmark`: `(SR̂ − SR*) √(T − 1) / √(1 − γ̂₃ SR̂ + (γ̂₄ − 1)/4 SR̂²)`.
pub fn probabilistic_sharpe_statistic(
    estimate: &SharpeEstimate,
    benchmark: f64,
) -> OptimizerResult<f64> {
    let SharpeEstimate {
        sharpe,
        observations,
        skewness,
        kurtosis,
    } = *estimate;
    if observations < 2
        || ![sharpe, skewness, kurtosis, benchmark]
            .iter()
            .all(|x| x.is_finite())
    {
        return Err(OptimizerError::Numerical {
            what: "the probabilistic Sharpe ratio",
            why: format!(
                "the estimate (Sharpe {sharpe}, {observations} observations, skewness \
                 {skewness}, kurtosis {kurtosis}) or the benchmark {benchmark} is unusable: \
                 it needs at least 2 observations and finite numbers"
            ),
        });
    }
    let denominator = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe;
    if denominator <= 0.0 {
        return Err(OptimizerError::Numerical {
            what: "the probabilistic Sharpe ratio",
            why: format!(
                "the variance term 1 − skewness·SR + (kurtosis − 1)/4·SR² = {denominator} is not \
                 positive (Sharpe {sharpe}, skewness {skewness}, kurtosis {kurtosis}): the \
                 moments are inconsistent, check the returns"
            ),
        });
    }
    Ok((sharpe - benchmark) * ((observations - 1) as f64).sqrt() / denominator.sqrt())
}

/// The deflated Sharpe ratio of `estimate`, the best of `trials` trials
/// whose per-period Sharpe ratios have variance `trial_sharpe_variance`
/// (see the module documentation for the formula).
pub fn deflated_sharpe_ratio(
    estimate: &SharpeEstimate,
    trials: f64,
    trial_sharpe_variance: f64,
) -> OptimizerResult<DeflatedSharpe> {
    let expected_max = expected_max_sharpe(trials, trial_sharpe_variance)?;
    let statistic = probabilistic_sharpe_statistic(estimate, expected_max)?;
    Ok(DeflatedSharpe {
        estimate: *estimate,
        trials,
        trial_sharpe_variance,
        expected_max_sharpe: expected_max,
        statistic,
        probability: normal_cdf(statistic),
    })
}

impl DeflatedSharpe {
    /// The deflated Sharpe ratio of the strategy with `returns`, selected
    /// among trials with per-period Sharpe ratios `trial_sharpes`
    /// (`N` = their count, `V` = their sample variance, 0 for one trial).
    pub fn from_trials(returns: &[f64], trial_sharpes: &[f64]) -> OptimizerResult<Self> {
        let estimate = SharpeEstimate::from_returns(returns)?;
        let n = trial_sharpes.len();
        if let Some((index, value)) = trial_sharpes
            .iter()
            .enumerate()
            .find(|(_, s)| !s.is_finite())
        {
            return Err(OptimizerError::Numerical {
                what: "the deflated Sharpe ratio",
                why: format!("trial Sharpe ratio {index} is {value}: leave undefined ones out"),
            });
        }
        let variance = if n > 1 {
            let mean = trial_sharpes.iter().sum::<f64>() / n as f64;
            trial_sharpes
                .iter()
                .map(|s| (s - mean) * (s - mean))
                .sum::<f64>()
                / (n - 1) as f64
        } else {
            0.0
        };
        deflated_sharpe_ratio(&estimate, n as f64, variance)
    }
}

/// What the deflation needs to know about a search's trials.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    /// Trials tested `M` (return series given).
    pub tested: usize,
    /// Sample variance (n − 1) of their per-period Sharpe ratios; 0 for
    /// one trial.
    pub sharpe_variance: f64,
    /// Mean pairwise Pearson correlation `ρ̄` of their return series (1
    /// for one trial; may be negative).
    pub average_correlation: f64,
    /// `N = ρ̂ + (1 − ρ̂) M`, `ρ̂` = `average_correlation` clamped to [0, 1].
    pub effective_trials: f64,
}

/// Summarizes the return series of a search's trials (each with a defined
/// Sharpe ratio, all of the same length): `M`, the variance of their
/// Sharpe ratios, their average correlation and the number of independent
/// trials it implies (see the module documentation).
pub fn summarize_trials(trial_returns: &[&[f64]]) -> OptimizerResult<TrialSummary> {
    let tested = trial_returns.len();
    let sharpes = trial_returns
        .iter()
        .enumerate()
        .map(|(index, returns)| {
            per_period_sharpe(returns).ok_or_else(|| OptimizerError::Numerical {
                what: "the trials' Sharpe ratios",
                why: format!(
                    "trial {index} has an undefined Sharpe ratio (fewer than two returns or no \
                     variation): leave it out"
                ),
            })
        })
        .collect::<OptimizerResult<Vec<f64>>>()?;
    if tested == 0 {
        return Err(OptimizerError::Numerical {
            what: "the trials' summary",
            why: "no trial given: count at least the selected strategy itself".into(),
        });
    }
    if tested == 1 {
        return Ok(TrialSummary {
            tested,
            sharpe_variance: 0.0,
            average_correlation: 1.0,
            effective_trials: 1.0,
        });
    }
    let mean = sharpes.iter().sum::<f64>() / tested as f64;
    let sharpe_variance =
        sharpes.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (tested - 1) as f64;
    let average_correlation = average_correlation(trial_returns)?;
    Ok(TrialSummary {
        tested,
        sharpe_variance,
        average_correlation,
        effective_trials: effective_trials(tested, average_correlation),
    })
}

/// `ρ̂ + (1 − ρ̂) M` with `ρ̂` = `average_correlation` clamped to [0, 1]
/// (a NaN counts as 0: independent).
pub fn effective_trials(tested: usize, average_correlation: f64) -> f64 {
    let rho = if average_correlation.is_nan() {
        0.0
    } else {
        average_correlation.clamp(0.0, 1.0)
    };
    rho + (1.0 - rho) * tested as f64
}

/// Mean pairwise Pearson correlation of at least two series of the same
/// length (≥ 2), none constant. Computed in O(M·T): with each series
/// centred and scaled to unit norm (`sᵢ`), `Σ_{i≠j} sᵢ·sⱼ = ‖Σ sᵢ‖² − M`.
pub fn average_correlation(series: &[&[f64]]) -> OptimizerResult<f64> {
    let m = series.len();
    let length = series.first().map_or(0, |s| s.len());
    let refuse = |why: String| {
        Err(OptimizerError::Numerical {
            what: "the average correlation of the trials",
            why,
        })
    };
    if m < 2 || length < 2 {
        return refuse(format!(
            "{m} series of {length} returns given: it needs at least 2 series of at least 2"
        ));
    }
    let mut sum = vec![0.0; length];
    for (index, s) in series.iter().enumerate() {
        if s.len() != length {
            return refuse(format!(
                "series {index} has {} returns, the first has {length}: evaluate every trial \
                 on the same window",
                s.len()
            ));
        }
        let mean = s.iter().sum::<f64>() / length as f64;
        let norm = s
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum::<f64>()
            .sqrt();
        if !(norm.is_finite() && varies(s, norm * norm / length as f64)) {
            return refuse(format!(
                "series {index} is constant or not finite: leave it out"
            ));
        }
        for (total, x) in sum.iter_mut().zip(s.iter()) {
            *total += (x - mean) / norm;
        }
    }
    let squared: f64 = sum.iter().map(|x| x * x).sum();
    let m = m as f64;
    Ok((squared - m) / (m * (m - 1.0)))
}

/// Whether `values` with (any) variance `variance` vary by more than
/// rounding: a standard deviation above 1e-12 of the largest magnitude
/// (the mean of ten equal returns need not be exactly that return).
pub(crate) fn varies(values: &[f64], variance: f64) -> bool {
    let largest = values.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    variance.is_finite() && variance.sqrt() > 1e-12 * largest
}

fn check_trials(trials: f64, variance: f64) -> OptimizerResult<()> {
    if !(trials.is_finite() && trials >= 1.0) {
        return Err(OptimizerError::Numerical {
            what: "the expected maximum Sharpe ratio",
            why: format!("{trials} trials given: count at least the strategy itself (N ≥ 1)"),
        });
    }
    if !variance.is_finite() || variance < 0.0 {
        return Err(OptimizerError::Numerical {
            what: "the expected maximum Sharpe ratio",
            why: format!("the variance of the trials' Sharpe ratios is {variance}: it must be ≥ 0"),
        });
    }
    Ok(())
}

/// Φ(z), from erfc so that both tails keep their accuracy.
fn normal_cdf(z: f64) -> f64 {
    0.5 * erf::erfc(-z / std::f64::consts::SQRT_2)
}

/// The z with P(Z > z) = `upper`, 0 < upper < 1, from statrs' erfc⁻¹
/// (good to about 1e-12 in z). Not polished by Newton steps on statrs'
/// erfc: that is off by up to ~5e-11 relative (e.g. near z = 1.96), which
/// would move z by ~2e-11.
fn normal_upper_quantile(upper: f64) -> f64 {
    std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_python() {
        // statistics.NormalDist().inv_cdf (Python 3.11), upper tail
        let cases = [
            (0.5, 0.0),
            (0.1, 1.281_551_565_544_600_8),
            (0.01, 2.326_347_874_040_840_8),
            (1e-4, 3.719_016_485_455_708_4),
            (1.0 / (100.0 * std::f64::consts::E), 2.680_210_444_966_887),
            (
                1.0 / (10_000.0 * std::f64::consts::E),
                3.964_415_871_972_523_3,
            ),
            (1e-8, 5.612_001_244_174_79),
        ];
        for (p, want) in cases {
            let z = normal_upper_quantile(p);
            assert!((z - want).abs() < 1e-12, "p {p}: {z} vs {want}");
        }
        let z = normal_upper_quantile(0.025);
        assert!((z - 1.959_963_984_540_054).abs() < 1e-14, "{z}");
    }

    #[test]
    fn one_trial_is_the_probabilistic_sharpe_ratio_against_zero() {
        let estimate = SharpeEstimate {
            sharpe: 0.1,
            observations: 101,
            skewness: 0.0,
            kurtosis: 3.0,
        };
        let d = deflated_sharpe_ratio(&estimate, 1.0, 0.0).unwrap();
        assert_eq!(d.expected_max_sharpe, 0.0);
        let z = 0.1 * 10.0 / (1.0 + 0.5 * 0.01f64).sqrt();
        assert!((d.statistic - z).abs() < 1e-14);
    }

    #[test]
    fn correlated_trials_count_as_fewer() {
        let a = [0.01, -0.02, 0.03, 0.0, 0.015];
        let b = a.map(|x| 2.0 * x + 0.001); // perfectly correlated with a
        let c = [-0.01, 0.02, -0.03, 0.0, -0.015]; // perfectly anti-correlated
        assert!((average_correlation(&[&a, &b]).unwrap() - 1.0).abs() < 1e-12);
        assert!((average_correlation(&[&a, &c]).unwrap() + 1.0).abs() < 1e-12);
        // pairs (a,b) = 1, (a,c) = −1, (b,c) = −1
        assert!((average_correlation(&[&a, &b, &c]).unwrap() + 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(effective_trials(10, 1.0), 1.0);
        assert_eq!(effective_trials(10, 0.0), 10.0);
        assert_eq!(effective_trials(10, -0.3), 10.0);
        assert!((effective_trials(10, 0.5) - 5.5).abs() < 1e-15);
        let summary = summarize_trials(&[&a, &b]).unwrap();
        assert_eq!(summary.tested, 2);
        assert!((summary.effective_trials - 1.0).abs() < 1e-12);
        let one = summarize_trials(&[&a]).unwrap();
        assert_eq!((one.effective_trials, one.sharpe_variance), (1.0, 0.0));
    }

    #[test]
    fn the_expected_maximum_is_never_negative() {
        assert_eq!(expected_max_sharpe(1.05, 0.01).unwrap(), 0.0);
        assert!(expected_max_sharpe(2.0, 0.01).unwrap() > 0.0);
    }

    #[test]
    fn more_trials_deflate_more() {
        let estimate = SharpeEstimate {
            sharpe: 0.1,
            observations: 500,
            skewness: -1.0,
            kurtosis: 6.0,
        };
        let few = deflated_sharpe_ratio(&estimate, 10.0, 0.001).unwrap();
        let many = deflated_sharpe_ratio(&estimate, 1000.0, 0.001).unwrap();
        assert!(many.expected_max_sharpe > few.expected_max_sharpe);
        assert!(many.probability < few.probability);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(SharpeEstimate::from_returns(&[0.01, 0.02]).is_err());
        assert!(SharpeEstimate::from_returns(&[0.01; 10]).is_err());
        assert!(SharpeEstimate::from_returns(&[0.01, f64::NAN, 0.0]).is_err());
        assert!(expected_max_sharpe(0.0, 0.1).is_err());
        assert!(expected_max_sharpe(0.5, 0.1).is_err());
        assert!(expected_max_sharpe(5.0, -0.1).is_err());
        assert!(average_correlation(&[&[0.1, 0.2]]).is_err());
        assert!(average_correlation(&[&[0.1, 0.2], &[0.1, 0.2, 0.3]]).is_err());
        assert!(average_correlation(&[&[0.1, 0.2], &[0.1, 0.1]]).is_err());
        assert!(summarize_trials(&[]).is_err());
        assert!(summarize_trials(&[&[0.1, 0.1, 0.1]]).is_err());
        assert!(DeflatedSharpe::from_trials(&[0.01, 0.02, -0.01], &[0.1, f64::INFINITY]).is_err());
    }
}
