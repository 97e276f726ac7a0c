//! The deflated Sharpe ratio against `tests/golden/deflated_sharpe.json`,
//! made by `tools/golden/deflated_sharpe.py` (Python 3.11 standard library:
//! the formula of Bailey & López de Prado 2014, the normal CDF from
//! `math.erfc`, its inverse polished by Newton steps). The first case is
//! the paper's own example (DSR ≈ 0.9004); `correlated_trials` checks the
//! average correlation of 25 trial return series (pair by pair in Python,
//! by an O(M·T) identity here) and the number of independent trials it
//! implies. Every number must agree to 1e-9, absolutely and relatively.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use learning::optimizer::{
    DeflatedSharpe, SharpeEstimate, deflated_sharpe_ratio, summarize_trials,
};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct File {
    meta: Meta,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Meta {
    conventions: String,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    returns: Option<Vec<f64>>,
    #[serde(default)]
    trial_sharpes: Option<Vec<f64>>,
    #[serde(default)]
    trial_returns: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    candidate: Option<usize>,
    #[serde(default)]
    average_correlation: Option<f64>,
    sharpe: f64,
    observations: usize,
    skewness: f64,
    kurtosis: f64,
    trials: f64,
    trial_sharpe_variance: f64,
    expected_max_sharpe: f64,
    statistic: f64,
    probability: f64,
}

fn close(case: &str, what: &str, got: f64, want: f64) {
    let absolute = (got - want).abs();
    let relative = if want == 0.0 {
        absolute
    } else {
        absolute / want.abs()
    };
    assert!(
        absolute <= TOLERANCE && relative <= TOLERANCE,
        "{case}: {what} = {got}, Python says {want} (abs {absolute:e}, rel {relative:e})"
    );
}

#[test]
fn deflated_sharpe_matches_the_python_reference() {
    let file: File =
        serde_json::from_str(include_str!("golden/deflated_sharpe.json")).expect("golden file");
    assert!(file.meta.conventions.contains("Bailey"));
    assert!(file.cases.len() >= 9);
    assert!(file.cases.iter().any(|c| c.trial_returns.is_some()));
    for case in &file.cases {
        let name = case.name.as_str();
        let result = match (&case.returns, &case.trial_sharpes, &case.trial_returns) {
            (_, _, Some(trial_returns)) => {
                let series: Vec<&[f64]> = trial_returns.iter().map(Vec::as_slice).collect();
                let summary = summarize_trials(&series).unwrap();
                assert_eq!(summary.tested, series.len(), "{name}");
                close(
                    name,
                    "average_correlation",
                    summary.average_correlation,
                    case.average_correlation.unwrap(),
                );
                close(
                    name,
                    "effective_trials",
                    summary.effective_trials,
                    case.trials,
                );
                close(
                    name,
                    "sharpe_variance",
                    summary.sharpe_variance,
                    case.trial_sharpe_variance,
                );
                let best = &trial_returns[case.candidate.unwrap()];
                let estimate = SharpeEstimate::from_returns(best).unwrap();
                close(name, "sharpe", estimate.sharpe, case.sharpe);
                deflated_sharpe_ratio(&estimate, summary.effective_trials, summary.sharpe_variance)
                    .unwrap()
            }
            (Some(returns), Some(trial_sharpes), None) => {
                let estimate = SharpeEstimate::from_returns(returns).unwrap();
                close(name, "sharpe", estimate.sharpe, case.sharpe);
                close(name, "skewness", estimate.skewness, case.skewness);
                close(name, "kurtosis", estimate.kurtosis, case.kurtosis);
                assert_eq!(estimate.observations, case.observations, "{name}");
                DeflatedSharpe::from_trials(returns, trial_sharpes).unwrap()
            }
            _ => {
                let estimate = SharpeEstimate {
                    sharpe: case.sharpe,
                    observations: case.observations,
                    skewness: case.skewness,
                    kurtosis: case.kurtosis,
                };
                deflated_sharpe_ratio(&estimate, case.trials, case.trial_sharpe_variance).unwrap()
            }
        };
        close(name, "trials", result.trials, case.trials);
        close(
            name,
            "trial_sharpe_variance",
            result.trial_sharpe_variance,
            case.trial_sharpe_variance,
        );
        close(
            name,
            "expected_max_sharpe",
            result.expected_max_sharpe,
            case.expected_max_sharpe,
        );
        close(name, "statistic", result.statistic, case.statistic);
        close(name, "probability", result.probability, case.probability);
    }
    let paper = &file.cases[0];
    assert_eq!(paper.name, "paper_example");
    assert!((paper.probability - 0.9004).abs() < 5e-4);
}
