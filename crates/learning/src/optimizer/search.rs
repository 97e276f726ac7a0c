//! The search: seeded multi-start Nelder-Mead (argmin) in the unit cube,
//! evaluations cached and spread over threads.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argmin::core::{CostFunction, Executor, State, TerminationReason};
use argmin::solver::neldermead::NelderMead;
use argmin_math::{ArgminAdd, ArgminMul, ArgminSub};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::error::{OptimizerError, OptimizerResult};
use super::evaluation::{Evaluation, Objective, Scalarization, Window};
use super::pareto::pareto_ranks;
use super::space::{ParameterSet, ParameterSpace, render};

/// Settings of a search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// How an evaluation becomes the score Nelder-Mead maximizes.
    pub scalarization: Scalarization,
    /// Objective requests per search, over all starts (each start gets
    /// `budget / starts`, at least dimensions + 2). Requests the cache
    /// answers count too, so that the path of a start never depends on
    /// what other threads happened to evaluate first; the cache saves the
    /// backtests, not the budget.
    pub budget: usize,
    /// Nelder-Mead runs from different starting points: the first from the
    /// current parameters when given, the others uniform in the box from
    /// `seed`.
    pub starts: usize,
    /// Seed of the starting points (ChaCha8); the same seed gives the same
    /// search.
    pub seed: u64,
    /// Worker threads; 0 = `std::thread::available_parallelism`. The
    /// result does not depend on it.
    pub threads: usize,
    /// Edge of the initial simplex in unit-cube coordinates (a fraction of
    /// each dimension's range, at least one grid step), in (0, 0.5].
    pub initial_step: f64,
    /// Nelder-Mead stops when the standard deviation of the simplex's
    /// scores falls below this; it is restarted from its best point (with
    /// half the previous simplex) while that improves the best score by
    /// more than this.
    pub tolerance: f64,
    /// Weight of the squared distance outside the box added to the cost of
    /// a point outside it (see the module documentation), > 0.
    pub bound_penalty: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            scalarization: Scalarization::default(),
            budget: 400,
            starts: 4,
            seed: 7,
            threads: 0,
            initial_step: 0.15,
            tolerance: 1e-6,
            bound_penalty: 1.0,
        }
    }
}

impl SearchConfig {
    fn check(&self, dimensions: usize) -> OptimizerResult<()> {
        self.scalarization.check()?;
        let invalid = |name, value: String, requirement: String| {
            Err(OptimizerError::InvalidConfig {
                name,
                value,
                requirement,
            })
        };
        if self.starts == 0 {
            return invalid("starts", "0".into(), "at least 1".into());
        }
        let per_start = dimensions + 2;
        if self.budget < self.starts * per_start {
            return invalid(
                "budget",
                self.budget.to_string(),
                format!(
                    "at least starts × (dimensions + 2) = {} × {per_start} (a simplex and one \
                     step per start); raise it or use fewer starts",
                    self.starts
                ),
            );
        }
        if !(self.initial_step > 0.0 && self.initial_step <= 0.5) {
            return invalid(
                "initial_step",
                self.initial_step.to_string(),
                "in (0, 0.5] (a fraction of each dimension's range)".into(),
            );
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return invalid(
                "tolerance",
                self.tolerance.to_string(),
                "a finite number ≥ 0".into(),
            );
        }
        if !(self.bound_penalty.is_finite() && self.bound_penalty > 0.0) {
            return invalid(
                "bound_penalty",
                self.bound_penalty.to_string(),
                "a finite number > 0".into(),
            );
        }
        Ok(())
    }
}

/// One evaluated parameter set of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluatedPoint {
    /// The parameter set backtested.
    pub parameters: ParameterSet,
    /// What the objective reported.
    pub evaluation: Evaluation,
    /// Its score under the search's [`Scalarization`].
    pub score: f64,
    /// Its Pareto rank among the search's points over (mean ROI ↑, max
    /// drawdown ↓, win rate ↑); 1 = on the front.
    pub pareto_rank: usize,
}

/// Why a Nelder-Mead start stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The simplex's scores agreed within the tolerance.
    Converged,
    /// The start used its share of the budget.
    Budget,
    /// argmin stopped for another reason (an iteration limit).
    Other,
}

/// One Nelder-Mead start of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartReport {
    /// Where it started.
    pub origin: ParameterSet,
    /// The best parameter set it evaluated.
    pub best: ParameterSet,
    /// That set's score.
    pub best_score: f64,
    /// Objective requests it made (cache hits included).
    pub requests: usize,
    /// Times Nelder-Mead was restarted from the best point after
    /// converging.
    pub restarts: usize,
    /// Why it stopped.
    pub stop: StopReason,
}

/// The outcome of [`Optimizer::search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The window searched.
    pub window: Window,
    /// The best point (highest score; on a tie, the first start's).
    pub best: EvaluatedPoint,
    /// Every start, in order.
    pub starts: Vec<StartReport>,
    /// Every distinct parameter set the search evaluated (the trials),
    /// in a fixed order, with its Pareto rank.
    pub evaluated: Vec<EvaluatedPoint>,
    /// The points of `evaluated` with Pareto rank 1.
    pub pareto_front: Vec<EvaluatedPoint>,
    /// Objective requests (cache hits included).
    pub requests: usize,
    /// Objective calls this search made (requests the cache could not
    /// answer; counts another search's calls if two run at once on the
    /// same optimizer).
    pub backtests: usize,
}

impl SearchResult {
    /// Number of trials: distinct parameter sets evaluated.
    pub fn trials(&self) -> usize {
        self.evaluated.len()
    }
}

type CacheKey = (Window, Vec<u64>);
type Slot = Arc<OnceLock<OptimizerResult<Evaluation>>>;

/// Every answer of the objective, keyed by window and parameter values;
/// one in-flight evaluation per key (the others wait for it).
#[derive(Default)]
struct Cache {
    slots: Mutex<BTreeMap<CacheKey, Slot>>,
    calls: AtomicUsize,
}

/// Searches a [`ParameterSpace`] with an [`Objective`]; see the module
/// documentation. Keeps a cache of every evaluation across its searches.
pub struct Optimizer<O> {
    space: ParameterSpace,
    objective: O,
    config: SearchConfig,
    threads: usize,
    cache: Cache,
}

impl<O: Objective> Optimizer<O> {
    /// An optimizer of `objective` over `space`, after checking `config`.
    pub fn new(space: ParameterSpace, objective: O, config: SearchConfig) -> OptimizerResult<Self> {
        config.check(space.len())?;
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.threads
        };
        Ok(Optimizer {
            space,
            objective,
            config,
            threads,
            cache: Cache::default(),
        })
    }

    /// The space searched.
    pub fn space(&self) -> &ParameterSpace {
        &self.space
    }

    /// The search settings.
    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// Worker threads used.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Objective calls made so far (cache misses).
    pub fn backtests(&self) -> usize {
        self.cache.calls.load(Ordering::SeqCst)
    }

    /// Distinct (parameter set, window) pairs in the cache.
    pub fn cached(&self) -> usize {
        self.slots().len()
    }

    /// The evaluation of `parameters` (checked against the space) on
    /// `window`, from the cache or the objective.
    pub fn evaluate(
        &self,
        parameters: &ParameterSet,
        window: Window,
    ) -> OptimizerResult<Evaluation> {
        self.space.check("parameters", parameters)?;
        self.cached_evaluate(parameters, window)
    }

    /// Searches `window` with seeded multi-start Nelder-Mead, the first
    /// start at `current` when given (checked against the space).
    pub fn search(
        &self,
        window: Window,
        current: Option<&ParameterSet>,
    ) -> OptimizerResult<SearchResult> {
        self.search_seeded(window, current, self.config.seed)
    }

    pub(crate) fn search_seeded(
        &self,
        window: Window,
        current: Option<&ParameterSet>,
        seed: u64,
    ) -> OptimizerResult<SearchResult> {
        if let Some(current) = current {
            self.space.check("current", current)?;
        }
        let calls_before = self.backtests();
        let dimensions = self.space.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let simplices: Vec<Vec<Point>> = (0..self.config.starts)
            .map(|start| {
                let origin = match current {
                    Some(current) if start == 0 => self.space.to_unit(current),
                    _ => (0..dimensions).map(|_| rng.random::<f64>()).collect(),
                };
                self.simplex(origin, self.config.initial_step)
            })
            .collect();

        // Every start's simplex at once: the one phase where evaluations
        // are independent of each other.
        let mut keys = BTreeSet::new();
        let initial: Vec<ParameterSet> = simplices
            .iter()
            .flatten()
            .map(|vertex| self.space.at_unit(&vertex.0).0)
            .filter(|set| keys.insert(self.space.key(set)))
            .collect();
        for result in parallel_map(&initial, self.threads, |set| {
            self.cached_evaluate(set, window)
        }) {
            result?;
        }

        let per_start = self.config.budget / self.config.starts;
        let outcomes = parallel_map(&simplices, self.threads, |simplex| {
            self.run_start(window, simplex, per_start)
        });
        let mut starts = Vec::with_capacity(outcomes.len());
        let mut seen: BTreeMap<Vec<u64>, ParameterSet> = BTreeMap::new();
        for (outcome, simplex) in outcomes.into_iter().zip(&simplices) {
            let (mut report, points) = outcome?;
            if let Some(origin) = simplex.first() {
                report.origin = self.space.at_unit(&origin.0).0;
            }
            seen.extend(points);
            starts.push(report);
        }

        let evaluated_raw = seen
            .into_values()
            .map(|set| {
                let evaluation = self.cached_evaluate(&set, window)?;
                Ok((set, evaluation))
            })
            .collect::<OptimizerResult<Vec<_>>>()?;
        let ranks = pareto_ranks(
            &evaluated_raw
                .iter()
                .map(|(_, evaluation)| evaluation)
                .collect::<Vec<_>>(),
        );
        let evaluated: Vec<EvaluatedPoint> = evaluated_raw
            .into_iter()
            .zip(ranks)
            .map(|((parameters, evaluation), pareto_rank)| EvaluatedPoint {
                score: self.config.scalarization.score(&evaluation),
                parameters,
                evaluation,
                pareto_rank,
            })
            .collect();

        let mut best_start: Option<&StartReport> = None;
        for start in &starts {
            if best_start.is_none_or(|best| start.best_score > best.best_score) {
                best_start = Some(start);
            }
        }
        let best = best_start
            .and_then(|start| evaluated.iter().find(|p| p.parameters == start.best))
            .cloned()
            .ok_or_else(|| OptimizerError::Solver("no start evaluated a point".into()))?;
        let pareto_front = evaluated
            .iter()
            .filter(|p| p.pareto_rank == 1)
            .cloned()
            .collect();
        Ok(SearchResult {
            window,
            best,
            requests: starts.iter().map(|s| s.requests).sum(),
            starts,
            evaluated,
            pareto_front,
            backtests: self.backtests() - calls_before,
        })
    }

    /// A simplex around `origin`: the origin and one vertex per
    /// dimension, `step` (at least one grid step) along it — inwards when
    /// outwards would leave the cube.
    fn simplex(&self, origin: Vec<f64>, step: f64) -> Vec<Point> {
        let mut vertices = vec![Point(origin.clone())];
        for i in 0..origin.len() {
            let step = step.max(self.space.unit_resolution(i)).min(0.5);
            let mut vertex = origin.clone();
            vertex[i] = if origin[i] + step <= 1.0 {
                origin[i] + step
            } else {
                origin[i] - step
            };
            vertices.push(Point(vertex));
        }
        vertices
    }

    /// One start: Nelder-Mead from `simplex`, restarted from its best
    /// point with a simplex half as large each time it converges, while a
    /// restart improves the best score by more than the tolerance and the
    /// budget allows another simplex. Its report and every point it
    /// evaluated.
    fn run_start(
        &self,
        window: Window,
        simplex: &[Point],
        budget: usize,
    ) -> OptimizerResult<(StartReport, BTreeMap<Vec<u64>, ParameterSet>)> {
        let state = StartState::default();
        let mut simplex = simplex.to_vec();
        let mut restarts: usize = 0;
        let mut previous_best = f64::NEG_INFINITY;
        let stop = loop {
            let stop = self.nelder_mead(window, simplex, budget, &state)?;
            if stop != StopReason::Converged {
                break stop;
            }
            let Some((best_score, best)) = state.best.borrow().clone() else {
                break stop;
            };
            let remaining = budget.saturating_sub(state.requests.get());
            if best_score <= previous_best + self.config.tolerance
                || remaining < self.space.len() + 2
            {
                break stop;
            }
            previous_best = best_score;
            restarts += 1;
            let step = self.config.initial_step * 0.5f64.powi(restarts.min(64) as i32);
            simplex = self.simplex(self.space.to_unit(&best), step);
            // argmin evaluates a new simplex with `unwrap`: answer it from
            // the cache, and stop here on an objective error
            for vertex in &simplex {
                self.cached_evaluate(&self.space.at_unit(&vertex.0).0, window)?;
            }
        };
        let StartState {
            requests,
            best,
            seen,
        } = state;
        let (best_score, best) = best
            .into_inner()
            .ok_or_else(|| OptimizerError::Solver("a start evaluated no point".into()))?;
        Ok((
            StartReport {
                origin: BTreeMap::new(),
                best,
                best_score,
                requests: requests.get(),
                restarts,
                stop,
            },
            seen.into_inner(),
        ))
    }

    /// One argmin Nelder-Mead run from `simplex` (whose vertices are in
    /// the cache), until it converges or the start's budget is used.
    fn nelder_mead(
        &self,
        window: Window,
        simplex: Vec<Point>,
        budget: usize,
        state: &StartState,
    ) -> OptimizerResult<StopReason> {
        let problem = StartProblem {
            optimizer: self,
            window,
            budget,
            state,
        };
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(self.config.tolerance)
            .map_err(|e| OptimizerError::Solver(e.to_string()))?;
        match Executor::new(problem, solver)
            .configure(|s| s.max_iters(budget as u64))
            .run()
        {
            Ok(result) => Ok(match result.state().get_termination_reason() {
                Some(TerminationReason::SolverConverged) => StopReason::Converged,
                _ => StopReason::Other,
            }),
            Err(error) => {
                if error.downcast_ref::<BudgetExhausted>().is_some() {
                    Ok(StopReason::Budget)
                } else if let Some(error) = error.downcast_ref::<OptimizerError>() {
                    Err(error.clone())
                } else {
                    Err(OptimizerError::Solver(error.to_string()))
                }
            }
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<CacheKey, Slot>> {
        self.cache
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The evaluation of a set of the space, from the cache or the
    /// objective (checked).
    pub(crate) fn cached_evaluate(
        &self,
        parameters: &ParameterSet,
        window: Window,
    ) -> OptimizerResult<Evaluation> {
        let key = (window, self.space.key(parameters));
        let slot = Arc::clone(self.slots().entry(key).or_default());
        slot.get_or_init(|| {
            self.cache.calls.fetch_add(1, Ordering::SeqCst);
            let evaluation = self
                .objective
                .evaluate(parameters, window)
                .map_err(|message| OptimizerError::Objective {
                    parameters: render(parameters),
                    window,
                    message,
                })?;
            evaluation.check(parameters, window)?;
            Ok(evaluation)
        })
        .clone()
    }
}

/// A point of the unit cube, with the three vector operations argmin's
/// Nelder-Mead needs (implemented here rather than through an argmin-math
/// backend, which would bring ndarray or a second `rand`).
#[derive(Debug, Clone, PartialEq)]
struct Point(Vec<f64>);

impl ArgminAdd<Point, Point> for Point {
    fn add(&self, other: &Point) -> Point {
        Point(self.0.iter().zip(&other.0).map(|(a, b)| a + b).collect())
    }
}

impl ArgminSub<Point, Point> for Point {
    fn sub(&self, other: &Point) -> Point {
        Point(self.0.iter().zip(&other.0).map(|(a, b)| a - b).collect())
    }
}

impl ArgminMul<f64, Point> for Point {
    fn mul(&self, factor: &f64) -> Point {
        Point(self.0.iter().map(|a| a * factor).collect())
    }
}

/// Raised by the cost function when a start has used its budget; ends the
/// run (argmin has no evaluation limit of its own).
#[derive(Debug, Error)]
#[error("the start's evaluation budget is used up")]
struct BudgetExhausted;

/// What one start records while argmin runs (kept outside the problem,
/// which argmin drops when the run ends with an error).
#[derive(Default)]
struct StartState {
    requests: Cell<usize>,
    best: RefCell<Option<(f64, ParameterSet)>>,
    seen: RefCell<BTreeMap<Vec<u64>, ParameterSet>>,
}

struct StartProblem<'a, O> {
    optimizer: &'a Optimizer<O>,
    window: Window,
    budget: usize,
    state: &'a StartState,
}

impl<O: Objective> CostFunction for StartProblem<'_, O> {
    type Param = Point;
    type Output = f64;

    /// −score of the point's projection onto the box, plus the bound
    /// penalty × its squared distance to the box.
    fn cost(&self, point: &Point) -> Result<f64, argmin::core::Error> {
        let requests = self.state.requests.get();
        if requests >= self.budget {
            return Err(argmin::core::Error::new(BudgetExhausted));
        }
        self.state.requests.set(requests + 1);
        let optimizer = self.optimizer;
        let (set, outside) = optimizer.space.at_unit(&point.0);
        let evaluation = optimizer
            .cached_evaluate(&set, self.window)
            .map_err(argmin::core::Error::new)?;
        let score = optimizer.config.scalarization.score(&evaluation);
        {
            let mut best = self.state.best.borrow_mut();
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                *best = Some((score, set.clone()));
            }
        }
        self.state
            .seen
            .borrow_mut()
            .entry(optimizer.space.key(&set))
            .or_insert(set);
        Ok(-score + optimizer.config.bound_penalty * outside)
    }
}

/// `f` over `items` on up to `threads` scoped threads, results in input
/// order (identical to the sequential map).
pub(crate) fn parallel_map<T, R, F>(items: &[T], threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let workers = threads.min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(index) else {
                            break;
                        };
                        done.push((index, f(item)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => {
                    for (index, result) in done {
                        slots[index] = Some(result);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots.into_iter().flatten().collect()
}
