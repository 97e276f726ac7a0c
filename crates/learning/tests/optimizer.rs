//! The optimizer on synthetic objectives.
//!
//! * **Smooth**: the daily mean return is a concave quadratic of the
//!   unit-cube coordinates with a known optimum,
//!   `μ(u) = EDGE − CURVATURE · Σ (uᵢ − cᵢ)²`, plus a tiny seeded noise per
//!   parameter set; daily returns are `μ + σ zₜ` with one seeded `zₜ` per
//!   calendar day shared by every parameter set (common random numbers),
//!   so the Sharpe ratio and the drawdown are monotone in `μ` and the best
//!   score sits at the optimum.
//! * **Noise**: every parameter set gets its own seeded i.i.d. returns
//!   with mean zero — nothing to find, only luck to overfit. (Over seeds
//!   1–12 of this search the out-of-sample margin alone would have let 3
//!   of 12 through; the deflated Sharpe probability stayed ≤ 0.79.)
//!
//! Run with `--nocapture` to see what the searches found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use learning::optimizer::{
    Evaluation, Optimizer, OptimizerError, ParameterSet, ParameterSpace, ProposalGuard,
    Scalarization, SearchConfig, Window, dominates, names, pareto_front, pareto_ranks,
    walk_forward_folds,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const EDGE: f64 = 0.0015;
const CURVATURE: f64 = 0.004;
const SIGMA: f64 = 0.01;
const PARAMETER_NOISE: f64 = 1e-7;
/// Mixed into the pure-noise objective's seeds.
const NOISE_SALT: u64 = 0x5eed;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn history() -> Window {
    Window::new(date(2020, 1, 1), date(2023, 1, 1)).unwrap()
}

fn set(values: [(&str, f64); 8]) -> ParameterSet {
    values.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The optimum of the smooth objective, on the naked-put grid.
fn optimum() -> ParameterSet {
    set([
        (names::OTM_MIN, 0.17),
        (names::OTM_WIDTH, 0.04),
        (names::PREMIUM_MIN, 0.35),
        (names::PREMIUM_WIDTH, 0.25),
        (names::DTE_MIN, 9.0),
        (names::DTE_WIDTH, 5.0),
        (names::PROFIT_TARGET, 0.60),
        (names::STOP_LOSS, -1.80),
    ])
}

fn hash(set: &ParameterSet) -> u64 {
    // FNV-1a over the values' bits, in key order
    set.values().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
    })
}

fn normals(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// The days of `window` as offsets into the history.
fn days(window: Window) -> std::ops::Range<usize> {
    let start = (window.from - history().from).num_days() as usize;
    start..start + window.days() as usize
}

struct Smooth {
    space: ParameterSpace,
    /// The optimum in parameter values (may lie outside the box).
    optimum: Vec<f64>,
    shocks: Vec<f64>,
    calls: AtomicUsize,
    out_of_bounds: AtomicUsize,
}

impl Smooth {
    fn new(optimum: &ParameterSet) -> Self {
        let space = ParameterSpace::naked_put();
        let optimum = space
            .dimensions()
            .iter()
            .map(|d| optimum[&d.name])
            .collect();
        Smooth {
            space,
            optimum,
            shocks: normals(42, history().days() as usize),
            calls: AtomicUsize::new(0),
            out_of_bounds: AtomicUsize::new(0),
        }
    }

    fn mean(&self, set: &ParameterSet) -> f64 {
        let distance: f64 = self
            .space
            .dimensions()
            .iter()
            .zip(&self.optimum)
            .map(|(d, c)| {
                let range = d.upper - d.lower;
                ((set[&d.name] - c) / range).powi(2)
            })
            .sum();
        EDGE - CURVATURE * distance
    }

    fn evaluate(&self, set: &ParameterSet, window: Window) -> Result<Evaluation, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        for d in self.space.dimensions() {
            let v = set[&d.name];
            if v < d.lower || v > d.upper {
                self.out_of_bounds.fetch_add(1, Ordering::SeqCst);
            }
        }
        let noise = PARAMETER_NOISE * normals(hash(set), 1)[0];
        let mu = self.mean(set) + noise;
        let returns: Vec<f64> = self.shocks[days(window)]
            .iter()
            .map(|z| mu + SIGMA * z)
            .collect();
        let trades = returns.len() / 3;
        Ok(Evaluation::from_daily_returns(
            returns,
            trades,
            10.0 * mu,
            (0.8 + 50.0 * mu).clamp(0.0, 1.0),
        ))
    }
}

fn noise_objective(set: &ParameterSet, window: Window) -> Result<Evaluation, String> {
    let all = normals(hash(set) ^ NOISE_SALT, history().days() as usize);
    let returns: Vec<f64> = all[days(window)].iter().map(|z| SIGMA * z).collect();
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let trades = returns.len() / 3;
    Ok(Evaluation::from_daily_returns(
        returns,
        trades,
        10.0 * mean,
        (0.8 + 50.0 * mean).clamp(0.0, 1.0),
    ))
}

fn config(threads: usize) -> SearchConfig {
    SearchConfig {
        budget: 1600,
        starts: 4,
        seed: 11,
        threads,
        ..SearchConfig::default()
    }
}

fn train_window() -> Window {
    Window::new(date(2020, 1, 1), date(2021, 7, 1)).unwrap()
}

#[test]
fn nelder_mead_finds_the_optimum() {
    let smooth = Smooth::new(&optimum());
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), objective, config(0)).unwrap();
    let current = ParameterSpace::naked_put_defaults();
    let result = optimizer.search(train_window(), Some(&current)).unwrap();
    let want = optimum();
    eprintln!(
        "found {:?} with score {:.4} in {} requests, {} backtests; starts stopped {:?}",
        result.best.parameters,
        result.best.score,
        result.requests,
        result.backtests,
        result.starts.iter().map(|s| s.stop).collect::<Vec<_>>()
    );
    for d in ParameterSpace::naked_put().dimensions() {
        let got = result.best.parameters[&d.name];
        let tolerance = 0.005 * (d.upper - d.lower);
        assert!(
            (got - want[&d.name]).abs() <= tolerance,
            "{}: found {got}, optimum {} (± {tolerance}); best {:?}",
            d.name,
            want[&d.name],
            result.best.parameters
        );
    }
    for integer in [names::DTE_MIN, names::DTE_WIDTH] {
        assert_eq!(result.best.parameters[integer], want[integer], "{integer}");
    }
    // the best is at least as good as the optimum itself, up to the noise
    let at_optimum = optimizer.evaluate(&want, train_window()).unwrap();
    let score = config(0).scalarization.score(&at_optimum);
    assert!(
        result.best.score >= score - 0.01,
        "{} vs {score}",
        result.best.score
    );
    assert!(result.requests <= config(0).budget);
    assert_eq!(result.starts.len(), 4);
    assert_eq!(result.starts[0].origin, current);
}

#[test]
fn bounds_are_respected_and_a_boundary_optimum_is_found_on_the_bound() {
    let mut outside = optimum();
    outside.insert(names::OTM_MIN.into(), 0.40); // above the upper bound 0.30
    outside.insert(names::STOP_LOSS.into(), -5.0); // below the lower bound −4.00
    let smooth = Smooth::new(&outside);
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), objective, config(0)).unwrap();
    let result = optimizer
        .search(train_window(), Some(&ParameterSpace::naked_put_defaults()))
        .unwrap();
    assert!(smooth.calls.load(Ordering::SeqCst) > 100);
    assert_eq!(smooth.out_of_bounds.load(Ordering::SeqCst), 0);
    for point in &result.evaluated {
        ParameterSpace::naked_put()
            .check("evaluated", &point.parameters)
            .unwrap();
    }
    assert_eq!(result.best.parameters[names::OTM_MIN], 0.30);
    assert_eq!(result.best.parameters[names::STOP_LOSS], -4.0);
    let want = optimum();
    for name in [names::PREMIUM_MIN, names::PROFIT_TARGET] {
        let d = ParameterSpace::naked_put()
            .dimensions()
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .clone();
        let got = result.best.parameters[name];
        assert!(
            (got - want[name]).abs() <= 0.02 * (d.upper - d.lower),
            "{name}: {got}"
        );
    }
}

#[test]
fn the_cache_avoids_re_evaluation() {
    let smooth = Smooth::new(&optimum());
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), objective, config(2)).unwrap();
    let first = optimizer.search(train_window(), None).unwrap();
    let calls = smooth.calls.load(Ordering::SeqCst);
    // one backtest per distinct point, though many points were requested twice
    assert_eq!(calls, first.backtests);
    assert_eq!(calls, optimizer.cached());
    assert_eq!(calls, first.trials());
    assert!(
        first.requests > first.backtests,
        "{} requests, {} backtests",
        first.requests,
        first.backtests
    );
    // the same search again is answered entirely from the cache
    let second = optimizer.search(train_window(), None).unwrap();
    assert_eq!(smooth.calls.load(Ordering::SeqCst), calls);
    assert_eq!(second.backtests, 0);
    assert_eq!(second.best, first.best);
    assert_eq!(second.evaluated, first.evaluated);
    // a known point through the public method as well
    let again = optimizer
        .evaluate(&first.best.parameters, train_window())
        .unwrap();
    assert_eq!(again, first.best.evaluation);
    assert_eq!(smooth.calls.load(Ordering::SeqCst), calls);
}

#[test]
fn parallel_and_sequential_searches_agree() {
    let run = |threads| {
        let smooth = Smooth::new(&optimum());
        let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
        let optimizer =
            Optimizer::new(ParameterSpace::naked_put(), objective, config(threads)).unwrap();
        assert_eq!(optimizer.threads(), threads);
        optimizer
            .search(train_window(), Some(&ParameterSpace::naked_put_defaults()))
            .unwrap()
    };
    let sequential = run(1);
    let parallel = run(4);
    assert_eq!(sequential, parallel);
    // another seed is another search
    let smooth = Smooth::new(&optimum());
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let other = Optimizer::new(
        ParameterSpace::naked_put(),
        objective,
        SearchConfig {
            seed: 12,
            ..config(2)
        },
    )
    .unwrap()
    .search(train_window(), Some(&ParameterSpace::naked_put_defaults()))
    .unwrap();
    assert_ne!(other.evaluated, sequential.evaluated);
}

fn point(roi_mean: f64, max_drawdown: f64, win_rate: f64) -> Evaluation {
    Evaluation {
        roi_mean,
        total_return: 0.0,
        max_drawdown,
        win_rate,
        sharpe: None,
        trades: 10,
        daily_returns: Vec::new(),
    }
}

#[test]
fn pareto_front_of_a_hand_made_set() {
    let points = [
        point(0.10, 0.05, 0.80), // A: front
        point(0.08, 0.03, 0.85), // B: front (less ROI, less drawdown, more wins)
        point(0.07, 0.06, 0.70), // C: dominated by A and by H (rank 2) → rank 3
        point(0.10, 0.05, 0.80), // D: equal to A, not dominated → front
        point(0.12, 0.10, 0.60), // E: front (most ROI)
        point(0.06, 0.07, 0.65), // F: dominated by C → rank 4
        point(0.09, 0.04, 0.80), // G: front (vs A: less ROI, less drawdown)
        point(0.08, 0.03, 0.84), // H: dominated by B only → rank 2
    ];
    assert!(dominates(&points[0], &points[2]));
    assert!(!dominates(&points[0], &points[3]) && !dominates(&points[3], &points[0]));
    assert!(!dominates(&points[0], &points[1]) && !dominates(&points[1], &points[0]));
    assert!(dominates(&points[1], &points[7]));
    assert!(dominates(&points[7], &points[2]));
    assert_eq!(pareto_ranks(&points), vec![1, 1, 3, 1, 1, 4, 1, 2]);
    assert_eq!(pareto_front(&points), vec![0, 1, 3, 4, 6]);
    assert!(pareto_ranks::<Evaluation>(&[]).is_empty());
}

#[test]
fn a_search_returns_the_pareto_front_of_its_points() {
    let smooth = Smooth::new(&optimum());
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), objective, config(2)).unwrap();
    let result = optimizer.search(train_window(), None).unwrap();
    assert!(!result.pareto_front.is_empty());
    for p in &result.evaluated {
        let dominated = result
            .evaluated
            .iter()
            .any(|q| dominates(&q.evaluation, &p.evaluation));
        assert_eq!(p.pareto_rank == 1, !dominated);
    }
    assert_eq!(
        result.pareto_front.len(),
        result
            .evaluated
            .iter()
            .filter(|p| p.pareto_rank == 1)
            .count()
    );
    // the set is distinct points
    let keys: BTreeSet<String> = result
        .evaluated
        .iter()
        .map(|p| format!("{:?}", p.parameters))
        .collect();
    assert_eq!(keys.len(), result.evaluated.len());
}

#[test]
fn walk_forward_folds_cover_the_window_without_overlap() {
    for (history, folds) in [
        (history(), 4),
        (Window::new(date(2021, 3, 5), date(2021, 3, 12)).unwrap(), 6),
        (Window::new(date(2019, 1, 1), date(2024, 2, 29)).unwrap(), 1),
        (
            Window::new(date(2019, 1, 1), date(2019, 12, 31)).unwrap(),
            5,
        ),
    ] {
        let list = walk_forward_folds(history, folds).unwrap();
        assert_eq!(list.len(), folds);
        let segment = history.days() / (folds as i64 + 1);
        // the first training window is the first segment
        assert_eq!(list[0].train.from, history.from);
        assert_eq!(list[0].train.to, list[0].test.from);
        let mut covered = list[0].train.days();
        for (i, fold) in list.iter().enumerate() {
            assert_eq!(fold.index, i);
            assert_eq!(fold.train.from, history.from, "anchored training");
            assert_eq!(fold.train.to, fold.test.from, "test right after training");
            assert!((fold.test.days() - segment).abs() <= 1);
            if let Some(next) = list.get(i + 1) {
                assert_eq!(fold.test.to, next.test.from, "no gap, no overlap");
                assert_eq!(next.train.to, fold.test.to);
            }
            covered += fold.test.days();
        }
        assert_eq!(list[folds - 1].test.to, history.to);
        assert_eq!(covered, history.days());
    }
    let tiny = Window::new(date(2021, 1, 1), date(2021, 1, 3)).unwrap();
    assert!(walk_forward_folds(tiny, 2).is_err());
}

#[test]
fn pure_noise_with_many_trials_yields_no_proposal() {
    let optimizer = Optimizer::new(
        ParameterSpace::naked_put(),
        noise_objective,
        SearchConfig {
            budget: 1200,
            starts: 6,
            seed: 5,
            threads: 0,
            ..SearchConfig::default()
        },
    )
    .unwrap();
    let current = ParameterSpace::naked_put_defaults();
    let report = optimizer
        .walk_forward(history(), 2, &current, &ProposalGuard::default())
        .unwrap();
    eprintln!(
        "noise: trials {:?}, DSR {:?}, OOS score {:.3} vs current {:.3}, rejections {:#?}",
        report.trials,
        report.deflated_sharpe.map(|d| d.probability),
        report.out_of_sample_score,
        report.current_out_of_sample_score,
        report.rejections
    );
    assert!(report.proposal.is_none(), "{:?}", report.proposal);
    assert!(!report.rejections.is_empty());
    // the deflated Sharpe ratio alone rejects it: the best of many
    // noise trials looks good only until the trials are counted
    let deflated = report.deflated_sharpe.expect("defined for noise");
    assert!(deflated.trials > 200.0, "{} trials", deflated.trials);
    assert!(
        deflated.probability < 0.95,
        "DSR {} (SR {}, SR0 {})",
        deflated.probability,
        deflated.estimate.sharpe,
        deflated.expected_max_sharpe
    );
    assert!(
        deflated.estimate.sharpe > 0.0,
        "the best of noise looks positive"
    );
    assert!(
        report
            .rejections
            .iter()
            .any(|r| r.contains("deflated Sharpe")),
        "{:?}",
        report.rejections
    );
    // the in-sample Sharpe of the best is flattering, out of sample it is gone
    let last = report.folds.last().unwrap();
    assert!(
        last.in_sample.sharpe.unwrap() > 1.0,
        "{:?}",
        last.in_sample.sharpe
    );
}

#[test]
fn a_real_edge_passes_the_guard_as_a_proposal() {
    let smooth = Smooth::new(&optimum());
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), objective, config(0)).unwrap();
    let current = ParameterSpace::naked_put_defaults();
    let report = optimizer
        .walk_forward(history(), 3, &current, &ProposalGuard::default())
        .unwrap();
    assert_eq!(report.folds.len(), 3);
    let proposal = report
        .proposal
        .as_ref()
        .unwrap_or_else(|| panic!("no proposal: {:?}", report.rejections));
    eprintln!("{}", proposal.reasoning);
    assert!(report.rejections.is_empty());
    assert_eq!(proposal.current, current);
    // the landscape's trials share their returns' shocks: one independent trial
    assert!(proposal.trials.tested > 100);
    assert!(proposal.trials.effective_trials < 1.01);
    assert_eq!(proposal.proposed, report.candidate);
    assert!(proposal.parameters.contains(&names::OTM_MIN.to_string()));
    assert!(proposal.deflated_sharpe.probability >= 0.95);
    assert!(report.out_of_sample_score >= report.current_out_of_sample_score + 0.25);
    assert_eq!(
        proposal.out_of_sample.daily_returns.len() as i64,
        report.folds.iter().map(|f| f.fold.test.days()).sum::<i64>()
    );
    assert!(proposal.pareto_rank >= 1);
    assert!(proposal.reasoning.contains("experiment"));
    assert!(proposal.reasoning.contains("otm_min 0.15 →"));
    // in sample and out of sample are different windows
    let last = report.folds.last().unwrap();
    assert_eq!(proposal.in_sample, last.in_sample);
    assert_ne!(
        last.in_sample.daily_returns,
        last.out_of_sample.daily_returns
    );
}

#[test]
fn folds_run_apart_and_concluded_together_equal_one_walk_forward() {
    // As shards do: each fold in its own optimizer (its own cache), the
    // runs passed through JSON, then concluded by a third optimizer that
    // never calls the objective.
    let smooth = Smooth::new(&optimum());
    let objective = |s: &ParameterSet, w: Window| smooth.evaluate(s, w);
    let current = ParameterSpace::naked_put_defaults();
    let guard = ProposalGuard::default();
    let whole = Optimizer::new(ParameterSpace::naked_put(), objective, config(0))
        .unwrap()
        .walk_forward(history(), 3, &current, &guard)
        .unwrap();
    let mut runs = Vec::new();
    for fold in learning::optimizer::walk_forward_folds(history(), 3)
        .unwrap()
        .into_iter()
        .rev()
    {
        let shard = Optimizer::new(ParameterSpace::naked_put(), objective, config(0)).unwrap();
        let run = shard.walk_forward_fold(fold, &current).unwrap();
        let json = serde_json::to_string(&run).unwrap();
        runs.push(serde_json::from_str::<learning::optimizer::FoldRun>(&json).unwrap());
    }
    let never = |_: &ParameterSet, _: Window| -> Result<Evaluation, String> {
        Err("the conclusion runs no backtest".into())
    };
    let merger = Optimizer::new(ParameterSpace::naked_put(), never, config(0)).unwrap();
    let mut merged = merger
        .conclude(history(), 3, runs.clone(), &current, &guard)
        .unwrap();
    // only the backtest counts differ (each shard had its own cache)
    for (m, w) in merged.folds.iter_mut().zip(&whole.folds) {
        m.backtests = w.backtests;
    }
    assert_eq!(merged, whole);
    // a fold missing or given twice is refused, naming it
    let err = merger
        .conclude(history(), 3, runs[1..].to_vec(), &current, &guard)
        .unwrap_err();
    assert!(err.to_string().contains("missing fold(s) 2"), "{err}");
    let mut twice = runs.clone();
    twice.push(runs[0].clone());
    assert!(
        merger
            .conclude(history(), 3, twice, &current, &guard)
            .is_err()
    );
}

#[test]
fn objective_errors_and_bad_inputs_name_the_culprit() {
    let failing = |s: &ParameterSet, _: Window| -> Result<Evaluation, String> {
        if s[names::DTE_MIN] > 20.0 {
            Err("no option chain that far out".into())
        } else {
            Ok(point(0.01, 0.1, 0.5))
        }
    };
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), failing, config(1)).unwrap();
    let mut far = ParameterSpace::naked_put_defaults();
    far.insert(names::DTE_MIN.into(), 25.0);
    match optimizer.evaluate(&far, train_window()) {
        Err(OptimizerError::Objective {
            parameters,
            message,
            ..
        }) => {
            assert!(parameters.contains("dte_min=25"));
            assert!(message.contains("option chain"));
        }
        other => panic!("{other:?}"),
    }

    let nan = |_: &ParameterSet, _: Window| -> Result<Evaluation, String> {
        Ok(point(f64::NAN, 0.1, 0.5))
    };
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), nan, config(1)).unwrap();
    let err = optimizer.search(train_window(), None).unwrap_err();
    assert!(
        matches!(&err, OptimizerError::InvalidEvaluation { field, .. } if field == "roi_mean"),
        "{err}"
    );

    let small = SearchConfig {
        budget: 10,
        ..config(1)
    };
    let err = Optimizer::new(ParameterSpace::naked_put(), noise_objective, small)
        .err()
        .unwrap();
    assert!(err.to_string().contains("budget"), "{err}");

    let optimizer =
        Optimizer::new(ParameterSpace::naked_put(), noise_objective, config(1)).unwrap();
    let mut current = ParameterSpace::naked_put_defaults();
    current.insert(names::OTM_MIN.into(), 0.5);
    let err = optimizer
        .walk_forward(history(), 2, &current, &ProposalGuard::default())
        .unwrap_err();
    assert!(err.to_string().contains("`current`"), "{err}");
    let bad_guard = ProposalGuard {
        min_deflated_sharpe: 1.5,
        ..ProposalGuard::default()
    };
    assert!(
        optimizer
            .walk_forward(
                history(),
                2,
                &ParameterSpace::naked_put_defaults(),
                &bad_guard
            )
            .is_err()
    );
    let _ = Scalarization::default();
}
