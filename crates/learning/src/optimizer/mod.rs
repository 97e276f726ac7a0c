//! The parameter optimizer: searches the strategy's parameters with a
//! backtest as the objective, validates what it finds walk-forward and
//! guards against overfitting, and hands back a change **proposal** — never
//! a configuration change. A proposal must pass an experiment before the
//! parameters it names are adopted.
//!
//! # Pieces
//!
//! * [`ParameterSpace`] — named [`Dimension`]s with bounds and an optional
//!   decimal grid (whole days for DTE, cents for premiums);
//!   [`ParameterSpace::naked_put`] is the strategy's (ranges as a lower end
//!   and a width, see [`names`]). A point is a [`ParameterSet`]
//!   (`BTreeMap<String, f64>`).
//! * [`Objective`] — the caller's backtest, any
//!   `Fn(&ParameterSet, Window) -> Result<Evaluation, String> + Sync`. This
//!   crate sits below the engine and cannot run one itself; `trader-cli
//!   optimize` supplies it. [`Window`]s are half-open, `[from, to)`.
//! * [`Evaluation`] — mean ROI, total return, max drawdown, win rate,
//!   Sharpe, trades and the daily returns of one backtest.
//! * [`Optimizer::search`] — seeded multi-start Nelder-Mead on a
//!   [`Scalarization`] of the evaluation, returning the best point, every
//!   evaluated point and their Pareto front.
//! * [`Optimizer::walk_forward`] — the search validated out of sample, the
//!   deflated Sharpe ratio of the candidate, and a [`Proposal`] when the
//!   [`ProposalGuard`] passes.
//!
//! # Search
//!
//! Nelder-Mead (argmin's `NelderMead`, standard coefficients) moves in the
//! unit cube `[0, 1]ᵈ`, one coordinate per dimension, `u = (x − lower) /
//! (upper − lower)`, so that a step means the same share of every range.
//! It minimizes `−score`.
//!
//! * **Bounds** — a point outside the cube is evaluated at its projection
//!   (each coordinate clamped to [0, 1], then snapped to the grid), so the
//!   backtest only ever sees legal parameters, and its cost is
//!   `−score(projection) + bound_penalty · ‖u − projection‖²`. Without the
//!   penalty the outside would be a flat copy of the boundary where the
//!   simplex could drift; with it the boundary point is always strictly
//!   better than any point beyond it, so an optimum on a bound is found on
//!   the bound.
//! * **Grid** — values are rounded to their dimension's decimals before
//!   evaluation (as `k / 10ᵈ`, so 0.15 stays the double nearest 0.15).
//!   Nearby simplex points then share a backtest through the cache.
//! * **Budget and restarts** — [`SearchConfig::budget`] objective requests
//!   per search, `budget / starts` per start. When a start's simplex
//!   converges (its scores agree within [`SearchConfig::tolerance`]),
//!   Nelder-Mead is restarted from the best point with a simplex half as
//!   large, as long as the previous restart improved the best score and
//!   the budget allows a simplex: on grid dimensions a simplex can
//!   collapse onto a plateau of equal scores and stop short of the
//!   optimum, and a fresh simplex gets it moving again.
//! * **Multi-start** — [`SearchConfig::starts`] runs; the first from the
//!   current parameters when given, the others uniform in the cube from a
//!   ChaCha8 stream seeded with [`SearchConfig::seed`]. Each begins with a
//!   simplex of the origin and one vertex per dimension,
//!   [`SearchConfig::initial_step`] (at least one grid step) along it.
//! * **Parallel** — `std::thread::scope` over
//!   [`SearchConfig::threads`] workers (0 = `available_parallelism`):
//!   first every start's initial simplex at once, then the starts
//!   themselves, each on one thread (Nelder-Mead's own steps are
//!   sequential). With 2 cores and 4 starts both cores stay busy; more
//!   cores help up to the number of starts.
//! * **Cache** — every answer, keyed by window and the parameter values,
//!   for the optimizer's lifetime; two threads asking for the same point
//!   wait for one backtest. The objective must therefore be deterministic.
//! * **Determinism** — a start's path depends only on its origin and the
//!   objective's answers, and its budget counts requests (cache hits
//!   included), so the result — best point, every evaluated point, the
//!   Pareto front, even the number of backtests — is the same for any
//!   number of threads.
//!
//! # Multi-objective
//!
//! Every distinct point a search evaluates gets a Pareto rank over (mean
//! ROI ↑, max drawdown ↓, win rate ↑) — [`pareto_ranks`], Deb's fast
//! non-dominated sort — and the search returns the front (rank 1). The
//! scalarized best need not be on the front (the default score is Sharpe
//! less drawdown); the front shows the trade-offs a researcher may prefer.
//!
//! # Walk-forward
//!
//! [`walk_forward_folds`] cuts the history into `k + 1` consecutive
//! segments; fold `i` searches `[start, tᵢ₊₁)` and tests its best on the
//! next segment `[tᵢ₊₁, tᵢ₊₂)`, which it has never seen. The test windows
//! tile the history after the first segment without overlap. Each fold
//! also evaluates the current parameters on both windows. The folds' test
//! evaluations are stitched ([`Evaluation::stitch`]) into one out-of-sample
//! record of *the procedure* (search, then trade what it found), compared
//! with the current parameters' over the same days.
//!
//! # Overfitting guard
//!
//! Searching hundreds of parameter sets on the same history finds one
//! that looks good by chance. Two defences, both required by
//! [`ProposalGuard`]:
//!
//! * **out of sample** — the stitched out-of-sample score must beat the
//!   current parameters' by [`ProposalGuard::min_oos_improvement`]
//!   (default 0.25 score units; annualised Sharpe with the default
//!   scalarization);
//! * **deflated Sharpe** — the candidate (the last fold's best) must have
//!   a deflated Sharpe probability ≥ [`ProposalGuard::min_deflated_sharpe`]
//!   (default 0.95) on its training window. The trials are every point
//!   that search evaluated with a defined Sharpe ratio: `V` is the variance
//!   of their Sharpe ratios and `N` the number of *independent* trials they
//!   amount to, `ρ̄ + (1 − ρ̄) M` for `M` trials with average return
//!   correlation `ρ̄` ([`summarize_trials`]). See [`deflated`] for the
//!   formula (Bailey & López de Prado 2014) and why correlation matters.
//!
//! A candidate equal to the current parameters is not proposed either.
//! [`WalkForwardReport::rejections`] says which test failed and by how
//! much.
//!
//! # Output
//!
//! A [`Proposal`] names the parameters that change, the current and
//! proposed sets, in-sample and out-of-sample evaluations, the deflated
//! Sharpe ratio, the Pareto rank and a reasoning text with every number.
//! Nothing here changes a parameter: the proposal goes to an experiment.

pub mod deflated;
mod error;
mod evaluation;
mod pareto;
mod search;
mod space;
mod walk_forward;

pub use deflated::{
    DeflatedSharpe, EULER_MASCHERONI, SharpeEstimate, TrialSummary, average_correlation,
    deflated_sharpe_ratio, effective_trials, expected_max_sharpe, probabilistic_sharpe_statistic,
    summarize_trials,
};
pub use error::{OptimizerError, OptimizerResult};
pub use evaluation::{
    Evaluation, INFEASIBLE_SCORE, Objective, SESSIONS_PER_YEAR, Scalarization, Window,
    per_period_sharpe,
};
pub use pareto::{dominates, pareto_front, pareto_ranks};
pub use search::{EvaluatedPoint, Optimizer, SearchConfig, SearchResult, StartReport, StopReason};
pub use space::{Dimension, MAX_DECIMALS, ParameterSet, ParameterSpace, names};
pub use walk_forward::{
    Fold, FoldReport, FoldRun, Proposal, ProposalGuard, WalkForwardReport, walk_forward_folds,
};
