//! Walk-forward validation and the guarded proposal.

use chrono::Days;
use serde::{Deserialize, Serialize};

use super::deflated::{
    DeflatedSharpe, SharpeEstimate, TrialSummary, deflated_sharpe_ratio, summarize_trials,
};
use super::error::{OptimizerError, OptimizerResult};
use super::evaluation::{Evaluation, Objective, Window, per_period_sharpe};
use super::search::{EvaluatedPoint, Optimizer, SearchResult, parallel_map};
use super::space::ParameterSet;

/// One fold: search on `train`, test on the `test` window right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// 0-based position.
    pub index: usize,
    /// `[start of history, tᵢ)`.
    pub train: Window,
    /// `[tᵢ, tᵢ₊₁)`.
    pub test: Window,
}

/// Splits `history` into `folds` anchored walk-forward folds: the days are
/// cut into `folds + 1` consecutive segments of (nearly) equal length at
/// `t₀ = from < t₁ < … < t_{k+1} = to` (`tᵢ = from + ⌊i · days / (k + 1)⌋`
/// days); fold `i` trains on `[t₀, tᵢ₊₁)` and tests on `[tᵢ₊₁, tᵢ₊₂)`. The
/// test windows follow each other without a gap or an overlap and,
/// with the first segment, cover the history; each fold tests only on
/// days after everything it trained on.
pub fn walk_forward_folds(history: Window, folds: usize) -> OptimizerResult<Vec<Fold>> {
    let segments = folds + 1;
    let days = history.days();
    if folds == 0 {
        return Err(OptimizerError::InvalidConfig {
            name: "folds",
            value: "0".into(),
            requirement: "at least 1".into(),
        });
    }
    if days < segments as i64 {
        return Err(OptimizerError::InvalidWindow {
            window: history,
            what: format!(
                "{days} day(s) cannot be cut into {segments} segments for {folds} fold(s): \
                 use a longer history or fewer folds"
            ),
        });
    }
    let boundary = |i: usize| -> OptimizerResult<chrono::NaiveDate> {
        let offset = (i as i64 * days) / segments as i64;
        history
            .from
            .checked_add_days(Days::new(offset.unsigned_abs()))
            .ok_or_else(|| OptimizerError::InvalidWindow {
                window: history,
                what: "its dates overflow the calendar".into(),
            })
    };
    (0..folds)
        .map(|index| {
            Ok(Fold {
                index,
                train: Window::new(history.from, boundary(index + 1)?)?,
                test: Window::new(boundary(index + 1)?, boundary(index + 2)?)?,
            })
        })
        .collect()
}

/// When a walk-forward may become a [`Proposal`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProposalGuard {
    /// The stitched out-of-sample score of the searched parameters must
    /// beat the current parameters' over the same test windows by at least
    /// this much (in score units: annualised Sharpe with the default
    /// scalarization). Default 0.25.
    pub min_oos_improvement: f64,
    /// The proposed set's deflated Sharpe probability on its training
    /// window must reach this. Default 0.95.
    pub min_deflated_sharpe: f64,
}

impl Default for ProposalGuard {
    fn default() -> Self {
        ProposalGuard {
            min_oos_improvement: 0.25,
            min_deflated_sharpe: 0.95,
        }
    }
}

impl ProposalGuard {
    fn check(&self) -> OptimizerResult<()> {
        if !(self.min_oos_improvement.is_finite() && self.min_oos_improvement >= 0.0) {
            return Err(OptimizerError::InvalidConfig {
                name: "min_oos_improvement",
                value: self.min_oos_improvement.to_string(),
                requirement: "a finite number ≥ 0".into(),
            });
        }
        if !(self.min_deflated_sharpe > 0.0 && self.min_deflated_sharpe < 1.0) {
            return Err(OptimizerError::InvalidConfig {
                name: "min_deflated_sharpe",
                value: self.min_deflated_sharpe.to_string(),
                requirement: "a probability strictly between 0 and 1".into(),
            });
        }
        Ok(())
    }
}

/// One fold of a walk-forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldReport {
    /// The windows.
    pub fold: Fold,
    /// The best parameter set of the search on the training window.
    pub best: ParameterSet,
    /// `best` on the training window.
    pub in_sample: Evaluation,
    /// `best` on the test window.
    pub out_of_sample: Evaluation,
    /// The current parameters on the training window.
    pub current_in_sample: Evaluation,
    /// The current parameters on the test window.
    pub current_out_of_sample: Evaluation,
    /// Distinct parameter sets the search evaluated.
    pub trials: usize,
    /// Objective calls the fold made.
    pub backtests: usize,
}

/// One fold's run ([`Optimizer::walk_forward_fold`]): its report and the
/// search behind it (the last fold's search makes the proposal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldRun {
    /// The fold's windows, best set and evaluations.
    pub report: FoldReport,
    /// The search of its training window.
    pub search: SearchResult,
}

/// A parameter change the optimizer recommends **testing**: it is never
/// applied by the optimizer; it must pass an experiment before adoption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Names of the parameters whose value changes.
    pub parameters: Vec<String>,
    /// The parameters in force.
    pub current: ParameterSet,
    /// The parameters proposed for an experiment (the last fold's best).
    pub proposed: ParameterSet,
    /// `proposed` on its training window (the last fold's).
    pub in_sample: Evaluation,
    /// The walk-forward out of sample: each fold's best on its test
    /// window, stitched.
    pub out_of_sample: Evaluation,
    /// The current parameters over the same test windows, stitched.
    pub current_out_of_sample: Evaluation,
    /// `proposed`'s deflated Sharpe ratio on its training window.
    pub deflated_sharpe: DeflatedSharpe,
    /// The last fold's trials the deflation counted.
    pub trials: TrialSummary,
    /// `proposed`'s Pareto rank among the last fold's trials.
    pub pareto_rank: usize,
    /// Why, in words, with the numbers.
    pub reasoning: String,
}

/// The outcome of [`Optimizer::walk_forward`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkForwardReport {
    /// The history split into folds.
    pub history: Window,
    /// Every fold.
    pub folds: Vec<FoldReport>,
    /// Each fold's best on its test window, stitched.
    pub out_of_sample: Evaluation,
    /// The current parameters over the same windows, stitched.
    pub current_out_of_sample: Evaluation,
    /// Score of `out_of_sample`.
    pub out_of_sample_score: f64,
    /// Score of `current_out_of_sample`.
    pub current_out_of_sample_score: f64,
    /// The last fold's best: what a proposal would carry.
    pub candidate: ParameterSet,
    /// The last fold's trials as the deflation counts them (those with a
    /// defined Sharpe ratio over the candidate's days); `None` when
    /// undefined.
    pub trials: Option<TrialSummary>,
    /// The candidate's deflated Sharpe ratio on its training window
    /// (`None` when undefined, e.g. constant returns).
    pub deflated_sharpe: Option<DeflatedSharpe>,
    /// The last fold's Pareto front (mean ROI ↑, drawdown ↓, win rate ↑).
    pub pareto_front: Vec<EvaluatedPoint>,
    /// The proposal, when the guard passed.
    pub proposal: Option<Proposal>,
    /// Why there is no proposal (empty when there is one).
    pub rejections: Vec<String>,
}

impl<O: Objective> Optimizer<O> {
    /// Walk-forward validation of the search over `history` in `folds`
    /// folds (see [`walk_forward_folds`]) against the `current` parameters,
    /// and a [`Proposal`] of the last fold's best when `guard` passes:
    ///
    /// 1. the candidate differs from `current`;
    /// 2. the stitched out-of-sample score beats the current parameters'
    ///    by at least [`ProposalGuard::min_oos_improvement`];
    /// 3. the candidate's deflated Sharpe probability on its training
    ///    window, with every trial of that search counted, reaches
    ///    [`ProposalGuard::min_deflated_sharpe`].
    ///
    /// Fold `i` is searched with seed `config.seed + i`.
    pub fn walk_forward(
        &self,
        history: Window,
        folds: usize,
        current: &ParameterSet,
        guard: &ProposalGuard,
    ) -> OptimizerResult<WalkForwardReport> {
        guard.check()?;
        self.space().check("current", current)?;
        let mut runs = Vec::new();
        for fold in walk_forward_folds(history, folds)? {
            runs.push(self.walk_forward_fold(fold, current)?);
        }
        self.conclude(history, folds, runs, current, guard)
    }

    /// One fold of [`Self::walk_forward`]: the search of its training
    /// window (seed `config.seed + fold.index`), then the best set and
    /// the current one on both windows. Folds are independent (each is
    /// seeded by its index), so they can run in separate processes and be
    /// [concluded](Self::conclude) together.
    pub fn walk_forward_fold(
        &self,
        fold: Fold,
        current: &ParameterSet,
    ) -> OptimizerResult<FoldRun> {
        self.space().check("current", current)?;
        let before = self.backtests();
        let search = self.search_seeded(
            fold.train,
            Some(current),
            self.config().seed.wrapping_add(fold.index as u64),
        )?;
        let best = search.best.parameters.clone();
        let jobs = [
            (&best, fold.train),
            (&best, fold.test),
            (current, fold.train),
            (current, fold.test),
        ];
        let mut evaluations = parallel_map(&jobs, self.threads(), |(set, window)| {
            self.cached_evaluate(set, *window)
        })
        .into_iter()
        .collect::<OptimizerResult<Vec<_>>>()?
        .into_iter();
        let mut next = || {
            evaluations
                .next()
                .ok_or_else(|| OptimizerError::Solver("a fold evaluation is missing".into()))
        };
        let report = FoldReport {
            fold,
            in_sample: next()?,
            out_of_sample: next()?,
            current_in_sample: next()?,
            current_out_of_sample: next()?,
            best,
            trials: search.trials(),
            backtests: self.backtests() - before,
        };
        Ok(FoldRun { report, search })
    }

    /// The walk-forward's conclusion from its folds' runs (every fold of
    /// `walk_forward_folds(history, folds)` exactly once, in any order):
    /// the stitched out of sample, the last fold's candidate, its
    /// deflated Sharpe ratio and the guard (see [`Self::walk_forward`]).
    ///
    /// # Errors
    /// A fold missing, given twice, or not a fold of `history` in
    /// `folds` folds; the guard's or the current set's invalid values.
    pub fn conclude(
        &self,
        history: Window,
        folds: usize,
        mut runs: Vec<FoldRun>,
        current: &ParameterSet,
        guard: &ProposalGuard,
    ) -> OptimizerResult<WalkForwardReport> {
        guard.check()?;
        self.space().check("current", current)?;
        let expected = walk_forward_folds(history, folds)?;
        runs.sort_by_key(|r| r.report.fold.index);
        let got: Vec<Fold> = runs.iter().map(|r| r.report.fold).collect();
        if got != expected {
            let missing: Vec<String> = expected
                .iter()
                .filter(|f| !got.contains(f))
                .map(|f| f.index.to_string())
                .collect();
            return Err(OptimizerError::InvalidConfig {
                name: "folds",
                value: format!(
                    "{} fold runs (indices {:?})",
                    got.len(),
                    got.iter().map(|f| f.index).collect::<Vec<_>>()
                ),
                requirement: format!(
                    "every fold of {history} in {folds} folds exactly once{}",
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; missing fold(s) {}", missing.join(", "))
                    }
                ),
            });
        }
        let last =
            runs.last()
                .map(|r| r.search.clone())
                .ok_or_else(|| OptimizerError::InvalidConfig {
                    name: "folds",
                    value: folds.to_string(),
                    requirement: "at least 1".into(),
                })?;
        let reports: Vec<FoldReport> = runs.into_iter().map(|r| r.report).collect();

        let scalarization = &self.config().scalarization;
        let out_of_sample = Evaluation::stitch(
            &reports
                .iter()
                .map(|r| r.out_of_sample.clone())
                .collect::<Vec<_>>(),
        );
        let current_out_of_sample = Evaluation::stitch(
            &reports
                .iter()
                .map(|r| r.current_out_of_sample.clone())
                .collect::<Vec<_>>(),
        );
        let out_of_sample_score = scalarization.score(&out_of_sample);
        let current_out_of_sample_score = scalarization.score(&current_out_of_sample);

        let candidate = last.best.parameters.clone();
        let best_returns = &last.best.evaluation.daily_returns;
        let trial_returns: Vec<&[f64]> = last
            .evaluated
            .iter()
            .map(|p| p.evaluation.daily_returns.as_slice())
            .filter(|r| r.len() == best_returns.len() && per_period_sharpe(r).is_some())
            .collect();
        let deflated = summarize_trials(&trial_returns).and_then(|summary| {
            let estimate = SharpeEstimate::from_returns(best_returns)?;
            let deflated = deflated_sharpe_ratio(
                &estimate,
                summary.effective_trials,
                summary.sharpe_variance,
            )?;
            Ok((summary, deflated))
        });

        let mut rejections = Vec::new();
        let changed = self.changed(current, &candidate);
        if changed.is_empty() {
            rejections.push(format!(
                "the best of {} trials on {} is the current parameter set",
                last.trials(),
                last.window
            ));
        }
        let improvement = out_of_sample_score - current_out_of_sample_score;
        if improvement < guard.min_oos_improvement {
            rejections.push(format!(
                "out of sample the searched parameters scored {out_of_sample_score:.4} against \
                 {current_out_of_sample_score:.4} for the current ones: an improvement of \
                 {improvement:.4} < the required {}",
                guard.min_oos_improvement
            ));
        }
        match &deflated {
            Ok((_, d)) if d.probability >= guard.min_deflated_sharpe => {}
            Ok((summary, d)) => rejections.push(format!(
                "the deflated Sharpe probability is {:.4} < {}: a per-period Sharpe of {:.4} is \
                 not enough above the {:.4} expected from the best of {:.1} independent trials \
                 without skill ({} tested, average correlation {:.2})",
                d.probability,
                guard.min_deflated_sharpe,
                d.estimate.sharpe,
                d.expected_max_sharpe,
                d.trials,
                summary.tested,
                summary.average_correlation
            )),
            Err(e) => rejections.push(format!("the deflated Sharpe ratio is undefined: {e}")),
        }

        let (trials, deflated_sharpe) = match deflated {
            Ok((summary, d)) => (Some(summary), Some(d)),
            Err(_) => (None, None),
        };
        let proposal = match (trials, deflated_sharpe) {
            (Some(trials), Some(deflated_sharpe)) if rejections.is_empty() => {
                let reasoning = reasoning(&ReasoningInput {
                    history,
                    folds: &reports,
                    changed: &changed,
                    current,
                    candidate: &candidate,
                    out_of_sample: &out_of_sample,
                    current_out_of_sample: &current_out_of_sample,
                    out_of_sample_score,
                    current_out_of_sample_score,
                    guard,
                    deflated: &deflated_sharpe,
                    summary: &trials,
                    best: &last.best,
                    trials: last.trials(),
                    training: last.window,
                    starts: self.config().starts,
                    budget: self.config().budget,
                });
                Some(Proposal {
                    parameters: changed,
                    current: current.clone(),
                    proposed: candidate.clone(),
                    in_sample: last.best.evaluation.clone(),
                    out_of_sample: out_of_sample.clone(),
                    current_out_of_sample: current_out_of_sample.clone(),
                    deflated_sharpe,
                    trials,
                    pareto_rank: last.best.pareto_rank,
                    reasoning,
                })
            }
            _ => None,
        };
        Ok(WalkForwardReport {
            history,
            folds: reports,
            out_of_sample,
            current_out_of_sample,
            out_of_sample_score,
            current_out_of_sample_score,
            candidate,
            trials,
            deflated_sharpe,
            pareto_front: last.pareto_front,
            proposal,
            rejections,
        })
    }

    /// Names of the dimensions whose value differs by more than 1e-9 of
    /// the dimension's range.
    fn changed(&self, current: &ParameterSet, candidate: &ParameterSet) -> Vec<String> {
        self.space()
            .dimensions()
            .iter()
            .filter(|d| {
                let (a, b) = (current.get(&d.name), candidate.get(&d.name));
                match (a, b) {
                    (Some(a), Some(b)) => (a - b).abs() > 1e-9 * (d.upper - d.lower),
                    _ => true,
                }
            })
            .map(|d| d.name.clone())
            .collect()
    }
}

struct ReasoningInput<'a> {
    history: Window,
    folds: &'a [FoldReport],
    changed: &'a [String],
    current: &'a ParameterSet,
    candidate: &'a ParameterSet,
    out_of_sample: &'a Evaluation,
    current_out_of_sample: &'a Evaluation,
    out_of_sample_score: f64,
    current_out_of_sample_score: f64,
    guard: &'a ProposalGuard,
    deflated: &'a DeflatedSharpe,
    summary: &'a TrialSummary,
    best: &'a EvaluatedPoint,
    trials: usize,
    training: Window,
    starts: usize,
    budget: usize,
}

fn describe(e: &Evaluation) -> String {
    let sharpe = e
        .sharpe
        .map_or_else(|| "undefined".to_string(), |s| format!("{s:.2}"));
    format!(
        "Sharpe {sharpe}, total return {:.2}%, max drawdown {:.2}%, win rate {:.1}%, mean ROI \
         {:.2}%, {} trades",
        e.total_return * 100.0,
        e.max_drawdown * 100.0,
        e.win_rate * 100.0,
        e.roi_mean * 100.0,
        e.trades
    )
}

fn reasoning(input: &ReasoningInput<'_>) -> String {
    let changes = input
        .changed
        .iter()
        .map(|name| {
            let from = input.current.get(name).copied().unwrap_or(f64::NAN);
            let to = input.candidate.get(name).copied().unwrap_or(f64::NAN);
            format!("{name} {from} → {to}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let d = input.deflated;
    format!(
        "Walk-forward over {history} in {folds} fold(s): each fold searched its training window \
         with Nelder-Mead ({starts} starts, budget {budget}) and was tested on the following, \
         unseen window. Out of sample the searched parameters scored {oos:.4} ({oos_desc}) \
         against {cur:.4} for the current ones ({cur_desc}), an improvement of {gain:.4} ≥ the \
         required {margin}. The proposed set ({changes}) was the best of {trials} trials on \
         {training} ({in_desc}); its deflated Sharpe probability is {p:.4} ≥ {p_min} (per-period \
         Sharpe {sr:.4} against {sr0:.4} expected from the best of {n:.1} independent trials \
         without skill — {trials} tested, average correlation {rho:.2}; skewness {skew:.2}, kurtosis {kurt:.2}, {t} returns). Pareto rank {rank} of {trials} \
         (mean ROI, drawdown, win rate). This is a proposal only: run it as an experiment \
         against the current parameters before adopting it.",
        history = input.history,
        folds = input.folds.len(),
        starts = input.starts,
        budget = input.budget,
        oos = input.out_of_sample_score,
        oos_desc = describe(input.out_of_sample),
        cur = input.current_out_of_sample_score,
        cur_desc = describe(input.current_out_of_sample),
        gain = input.out_of_sample_score - input.current_out_of_sample_score,
        margin = input.guard.min_oos_improvement,
        trials = input.trials,
        training = input.training,
        in_desc = describe(&input.best.evaluation),
        p = d.probability,
        p_min = input.guard.min_deflated_sharpe,
        sr = d.estimate.sharpe,
        sr0 = d.expected_max_sharpe,
        n = d.trials,
        rho = input.summary.average_correlation,
        skew = d.estimate.skewness,
        kurt = d.estimate.kurtosis,
        t = d.estimate.observations,
        rank = input.best.pareto_rank,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn folds_need_enough_days() {
        let d = |day| NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
        let short = Window::new(d(1), d(3)).unwrap();
        assert!(walk_forward_folds(short, 2).is_err());
        assert!(walk_forward_folds(short, 0).is_err());
        let folds = walk_forward_folds(short, 1).unwrap();
        assert_eq!(folds[0].train, Window::new(d(1), d(2)).unwrap());
        assert_eq!(folds[0].test, Window::new(d(2), d(3)).unwrap());
    }
}
