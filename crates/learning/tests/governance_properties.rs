#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The governance constraints hold over long simulated runs of the real
//! learn step (a property test).
//!
//! Each case simulates a few hundred to ~1,000 trades over one to three
//! years against a real database in a temporary directory, and drives
//! [`LearningEngine`] the way the engine does: every new opportunity is
//! assigned an arm of the active experiment (if any) by the assignment
//! hash and traded with that arm's parameters, inserted open, closed
//! later, and `learn` runs after every close at the close time. ROIs are
//! put-like (mostly small gains, sometimes large losses), with a planted
//! effect in a random OTM or DTE bucket (or none), a random shift of each
//! experiment's test arm (so adoptions and rejections both occur), and
//! random bad spells of the market (so rollbacks occur too).
//!
//! Invariants, checked on the database after each run:
//! 1. every adoption has at least `min_samples` (30) closed real trades in
//!    each arm of its experiment, closed at or before the adoption;
//! 2. every adoption comes at least `min_days_between_changes` (30) days
//!    after the previous parameter change (adoption or rollback).
//!    Rollbacks themselves are not governed (the experiments module's
//!    documented decision: a rollback restores the value in force before,
//!    at any time) — they are counted, not held to the 30 days;
//! 3. every change moves its parameter by at most `max_shift` (20%): an
//!    adoption relative to the value it replaces, a rollback relative to
//!    the value it restores (the undone adoption's own shift; restoring
//!    0.12 → 0.15 is the undo of a 20% step, 25% of 0.12);
//! 4. at most one experiment is running (active or complete) at any time
//!    (checked after every learn step);
//! 5. the changes form one consistent chain: each change starts from the
//!    value in force, and the engine's live parameters equal the
//!    configured ones with the recorded changes replayed.
//!
//! At least 20% of the cases must adopt something (the test cannot pass
//! vacuously); the counts are printed (`-- --nocapture`). Cases:
//! `GOVPROP_CASES` (default 12, run by two runners in parallel). The pattern detector's permutation test
//! runs with 199 relabellings instead of 9,999 and no shadow evidence is
//! read, to keep a run within seconds; neither touches the governance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use core_domain::{
    Experiment, ExperimentStatus, LearningEvent, LearningEventType, LearningRepository, Money,
    Price, Symbol, Trade, TradeRepository, TradeStatus,
};
use learning::experiments::{Arm, Assignment, ExperimentParams, ParameterSet, arm_value};
use learning::learn::{LearnParams, LearningEngine};
use learning::patterns::PatternParams;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use store::Store;

/// Where the planted effect sits.
#[derive(Debug, Clone, Copy)]
enum Plant {
    None,
    /// OTM in [lo, lo + 0.02).
    Otm(f64),
    /// DTE in lo..=lo + 2.
    Dte(i64),
}

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    trades: usize,
    plant: Plant,
    /// Added to the ROI of trades in the planted bucket.
    effect: f64,
    /// Chance that an experiment's test arm is better.
    better_share: f64,
}

fn case() -> impl Strategy<Value = Case> {
    let plant = prop_oneof![
        1 => Just(Plant::None),
        4 => prop::sample::select(vec![0.14, 0.16, 0.18]).prop_map(Plant::Otm),
        3 => prop::sample::select(vec![6_i64, 9, 12]).prop_map(Plant::Dte),
    ];
    let effect = prop_oneof![
        1 => -0.01..0.01_f64,
        3 => 0.02..0.05_f64,
        2 => -0.05..-0.02_f64,
    ];
    (any::<u64>(), 300_usize..800, plant, effect, 0.6..0.95_f64).prop_map(
        |(seed, trades, plant, effect, better_share)| Case {
            seed,
            trades,
            plant,
            effect,
            better_share,
        },
    )
}

fn learn_params() -> LearnParams {
    LearnParams {
        patterns: PatternParams {
            permutations: 199,
            ..PatternParams::default()
        },
        experiments: ExperimentParams::default(),
        shadow_evidence: 0,
        // Every learn step refreshes the patterns (as the engine did before
        // the daily cap): the strictest schedule for the constraints.
        pattern_refresh_hours: 0,
    }
}

const SYMBOLS: [(&str, &str); 6] = [
    ("AAPL", "Technology"),
    ("MSFT", "Technology"),
    ("XOM", "Energy"),
    ("JPM", "Financials"),
    ("KO", "Consumer Staples"),
    ("UNH", "Health Care"),
];

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    adoptions: usize,
    rollbacks: usize,
    rollbacks_within_limit: usize,
    experiments: usize,
    rejected: usize,
}

/// A closed trade as the simulation knows it (the ground truth for the
/// invariants).
struct Closed {
    experiment_id: Option<String>,
    arm: Option<Arm>,
    exit_time: DateTime<Utc>,
}

fn put_like_noise(rng: &mut ChaCha8Rng) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    // 85%: +2% ± 0.5%; 15%: −8% ± 3% (mean +0.5%)
    if rng.random::<f64>() < 0.85 {
        0.02 + 0.005 * z
    } else {
        -0.08 + 0.03 * z
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// The experiment id an event's reasoning names (`experiment <id>: …` or
/// `experiment <id> (…`).
fn named_experiment(e: &LearningEvent) -> Option<String> {
    let rest = e.reasoning.strip_prefix("experiment ")?;
    let end = rest.find([' ', ':']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

fn run(case: &Case) -> Result<Outcome, TestCaseError> {
    // on tmpfs when there is one: the store syncs every commit to disk
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new().tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let store = Store::open_and_migrate(dir.path().join("trader.db").to_str().unwrap()).unwrap();
    let params = learn_params();
    let xp = params.experiments;
    let configured = ParameterSet::naked_put_defaults();
    let mut engine = LearningEngine::new(params, configured.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);

    // per experiment: the test arm's ROI shift
    let mut shifts: BTreeMap<String, f64> = BTreeMap::new();
    let mut open: Vec<Trade> = Vec::new();
    let mut closed: Vec<Closed> = Vec::new();
    let mut clock = Utc.with_ymd_and_hms(2020, 1, 2, 15, 0, 0).unwrap();
    let mut bad_spell_until: Option<DateTime<Utc>> = None;
    let mut roi_of: BTreeMap<String, f64> = BTreeMap::new();

    // closes every open trade due by `until`, in exit order, with a learn
    // step after each
    let close_due = |until: DateTime<Utc>,
                     open: &mut Vec<Trade>,
                     closed: &mut Vec<Closed>,
                     engine: &mut LearningEngine,
                     roi_of: &BTreeMap<String, f64>|
     -> Result<(), TestCaseError> {
        open.sort_by_key(|t| std::cmp::Reverse((t.exit_time, t.trade_id.clone())));
        while open.last().is_some_and(|t| t.exit_time <= Some(until)) {
            let mut t = open.pop().unwrap();
            let at = t.exit_time.unwrap();
            t.status = TradeStatus::Closed;
            t.exit_date = Some(at.date_naive());
            t.roi = Some(roi_of[&t.trade_id]);
            t.days_held = Some((at.date_naive() - t.entry_date).num_days());
            t.exit_premium = Some(Price::ZERO);
            store.update_trade(&t).unwrap();
            closed.push(Closed {
                experiment_id: t.experiment_id.clone(),
                arm: t.experiment_arm.as_deref().and_then(Arm::parse),
                exit_time: at,
            });
            engine.learn(&store, at).map_err(fail)?;
            let running = store
                .experiments()
                .unwrap()
                .into_iter()
                .filter(|e| {
                    matches!(
                        e.status,
                        ExperimentStatus::Active | ExperimentStatus::Complete
                    )
                })
                .count();
            if running > 1 {
                return Err(fail(format!("{running} experiments running at {at}")));
            }
        }
        Ok(())
    };

    for i in 0..case.trades {
        // the next opportunity: 0–3 days later, during the session
        let gap = match rng.random::<f64>() {
            x if x < 0.3 => 0,
            x if x < 0.7 => 1,
            x if x < 0.9 => 2,
            _ => 3,
        };
        clock += Duration::days(gap) + Duration::minutes(rng.random_range(1..60));
        close_due(clock, &mut open, &mut closed, &mut engine, &roi_of)?;
        if bad_spell_until.is_none_or(|u| u < clock) && rng.random::<f64>() < 0.004 {
            bad_spell_until = Some(clock + Duration::days(rng.random_range(30..120)));
        }

        // the arm, and the parameters it trades with
        let key = format!("{}/{i}", clock.date_naive());
        let active = LearningEngine::active_experiment(&store).unwrap();
        let assignment = active
            .as_ref()
            .map(|e| Assignment::new(e, &key, xp.assignment_seed).unwrap());
        let p = match &assignment {
            Some(a) => a.parameters(engine.current()).unwrap(),
            None => engine.current().clone(),
        };
        let (otm_lo, otm_hi) = (p.get("otm_min").unwrap(), p.get("otm_max").unwrap());
        let otm = if otm_hi > otm_lo {
            rng.random_range(otm_lo..otm_hi)
        } else {
            otm_lo
        };
        let dte_lo = p.get("dte_min").unwrap() as i64;
        let dte_hi = p.get("dte_max").unwrap() as i64;
        let dte = rng.random_range(dte_lo..=dte_hi.max(dte_lo));

        // the outcome
        let mut roi = put_like_noise(&mut rng);
        let in_bucket = match case.plant {
            Plant::None => false,
            Plant::Otm(lo) => otm >= lo && otm < lo + 0.02,
            Plant::Dte(lo) => (lo..=lo + 2).contains(&dte),
        };
        if in_bucket {
            roi += case.effect;
        }
        if bad_spell_until.is_some_and(|u| clock <= u) {
            roi -= 0.02;
        }
        if let Some(a) = assignment.as_ref().filter(|a| a.arm == Arm::Test) {
            let better = case.better_share;
            let shift = *shifts.entry(a.experiment_id.clone()).or_insert_with(|| {
                if rng.random::<f64>() < better {
                    rng.random_range(0.01..0.05)
                } else {
                    rng.random_range(-0.04..0.005)
                }
            });
            roi += shift;
        }

        let (symbol, sector) = SYMBOLS[rng.random_range(0..SYMBOLS.len())];
        let underlying = 10_000 + rng.random_range(0..40_000_i64);
        let strike = ((underlying as f64) * (1.0 - otm)).round() as i64;
        let entry_date = clock.date_naive();
        let mut t = Trade::opened(
            format!("T-{i:05}"),
            Symbol::new(symbol).unwrap(),
            Price::from_cents(strike),
            entry_date + Duration::days(dte),
            clock,
            entry_date,
            Price::from_cents(40),
            1,
        );
        t.sector = Some(sector.to_owned());
        t.entry_underlying_price = Price::from_cents(underlying);
        t.margin_at_entry = Money::from_cents(strike * 20);
        t.otm_pct = otm;
        if let Some(a) = &assignment {
            a.tag(&mut t);
        }
        let held = rng.random_range(1..dte.max(2));
        t.exit_time =
            Some(clock + Duration::days(held) + Duration::minutes(rng.random_range(0..300)));
        roi_of.insert(t.trade_id.clone(), roi);
        let mut stored = t.clone();
        stored.exit_time = None;
        store.insert_trade(&stored).unwrap();
        open.push(t);
    }
    close_due(
        DateTime::<Utc>::MAX_UTC,
        &mut open,
        &mut closed,
        &mut engine,
        &roi_of,
    )?;

    check(&store, &engine, &configured, &xp, &closed)
}

fn check(
    store: &Store,
    engine: &LearningEngine,
    configured: &ParameterSet,
    xp: &ExperimentParams,
    closed: &[Closed],
) -> Result<Outcome, TestCaseError> {
    let experiments: BTreeMap<String, Experiment> = store
        .experiments()
        .unwrap()
        .into_iter()
        .map(|e| (e.experiment_id.clone(), e))
        .collect();
    let mut changes: Vec<LearningEvent> = store
        .learning_history(i64::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(
                e.event_type,
                LearningEventType::ParameterAdopted | LearningEventType::ParameterRolledBack
            )
        })
        .collect();
    changes.sort_by_key(|e| e.event_date);
    let mut out = Outcome {
        experiments: experiments.len(),
        rejected: experiments
            .values()
            .filter(|e| e.status == ExperimentStatus::Rejected)
            .count(),
        ..Outcome::default()
    };
    let min = usize::try_from(xp.min_samples).unwrap();
    let min_gap = Duration::days(xp.min_days_between_changes);
    let mut live = configured.clone();
    let mut last_change: Option<DateTime<Utc>> = None;
    for e in &changes {
        let id = named_experiment(e).ok_or_else(|| fail(format!("no id in {e:?}")))?;
        let exp = experiments
            .get(&id)
            .ok_or_else(|| fail(format!("{e:?} names no experiment")))?;
        let control = arm_value(exp, Arm::Control).unwrap();
        let test = arm_value(exp, Arm::Test).unwrap();
        let parameter = exp.parameter_name.clone();
        let in_force = live.get(&parameter).unwrap();
        let (from, to) = if e.event_type == LearningEventType::ParameterAdopted {
            out.adoptions += 1;
            // (1) the evidence: min_samples closed trades per arm by then
            for arm in [Arm::Control, Arm::Test] {
                let n = closed
                    .iter()
                    .filter(|c| {
                        c.experiment_id.as_deref() == Some(id.as_str())
                            && c.arm == Some(arm)
                            && c.exit_time <= e.event_date
                    })
                    .count();
                if n < min {
                    return Err(fail(format!(
                        "{id} adopted at {} with {n} closed {arm} trades (< {min})",
                        e.event_date
                    )));
                }
            }
            // (2) 30 days after the previous change, whatever it was
            if let Some(last) = last_change
                && e.event_date - last < min_gap
            {
                return Err(fail(format!(
                    "{id} adopted at {}, {} days after the change at {last}",
                    e.event_date,
                    (e.event_date - last).num_days()
                )));
            }
            // (3) relative to the value replaced
            let shift = (test - control).abs() / control.abs();
            if shift > xp.max_shift + 1e-9 {
                return Err(fail(format!(
                    "{id}: adoption shifts {parameter} by {shift}"
                )));
            }
            (control, test)
        } else {
            out.rollbacks += 1;
            if last_change.is_some_and(|last| e.event_date - last < min_gap) {
                out.rollbacks_within_limit += 1;
            }
            // (3) the undo of a governed shift: relative to the value restored
            let shift = (test - control).abs() / control.abs();
            if shift > xp.max_shift + 1e-9 {
                return Err(fail(format!("{id}: rollback undoes a shift of {shift}")));
            }
            (test, control)
        };
        // (5) one consistent chain of changes
        if (in_force - from).abs() > 1e-9 {
            return Err(fail(format!(
                "{id}: {:?} changes {parameter} from {from}, but {in_force} was in force",
                e.event_type
            )));
        }
        live.set(parameter, to);
        last_change = Some(e.event_date);
    }
    // (1) also on the rows: every experiment that was adopted has its counts
    for exp in experiments.values().filter(|e| {
        matches!(
            e.status,
            ExperimentStatus::Adopted | ExperimentStatus::RolledBack
        )
    }) {
        if exp.control_trades < xp.min_samples || exp.test_trades < xp.min_samples {
            return Err(fail(format!(
                "{} was adopted with {} control and {} test trades",
                exp.experiment_id, exp.control_trades, exp.test_trades
            )));
        }
    }
    // (5) the live parameters are the recorded chain, and what a restart
    // would replay
    if &live != engine.current() {
        return Err(fail(format!(
            "the engine trades with {:?}, the history says {live:?}",
            engine.current()
        )));
    }
    let mut replayed = configured.clone();
    for c in LearningEngine::adopted_changes(store).unwrap() {
        c.apply(&mut replayed)
            .map_err(|x| fail(format!("replaying {c:?}: {x}")))?;
    }
    if &replayed != engine.current() {
        return Err(fail(format!(
            "a restart would trade with {replayed:?}, the engine with {:?}",
            engine.current()
        )));
    }
    Ok(out)
}

/// Totals over the runs.
#[derive(Debug, Default)]
struct Totals {
    runs: AtomicUsize,
    trades: AtomicUsize,
    adopting: AtomicUsize,
    adoptions: AtomicUsize,
    rollbacks: AtomicUsize,
    fast_rollbacks: AtomicUsize,
    experiments: AtomicUsize,
    rejected: AtomicUsize,
}

/// Runs `cases` cases from a fixed stream (`stream` picks it), so the
/// adoption count the vacuity check reads is reproducible.
fn run_cases(cases: u32, stream: u8, totals: &Totals) {
    let config = Config {
        cases,
        source_file: Some(file!()),
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[stream; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&case(), |c| {
        let out = run(&c)?;
        let add = |n: &AtomicUsize, k: usize| n.fetch_add(k, Ordering::Relaxed);
        add(&totals.runs, 1);
        add(&totals.trades, c.trades);
        add(&totals.adopting, usize::from(out.adoptions > 0));
        add(&totals.adoptions, out.adoptions);
        add(&totals.rollbacks, out.rollbacks);
        add(&totals.fast_rollbacks, out.rollbacks_within_limit);
        add(&totals.experiments, out.experiments);
        add(&totals.rejected, out.rejected);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn governance_constraints_hold_over_long_simulated_runs() {
    let cases: u32 = std::env::var("GOVPROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let started = Instant::now();
    let totals = Totals::default();
    // two independent runners, one per core
    std::thread::scope(|s| {
        let half = cases.div_ceil(2);
        let totals = &totals;
        let a = s.spawn(move || run_cases(half, 1, totals));
        let b = s.spawn(move || run_cases(cases - half, 2, totals));
        for h in [a, b] {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let get = |n: &AtomicUsize| n.load(Ordering::Relaxed);
    let (runs, adopting) = (get(&totals.runs), get(&totals.adopting));
    println!(
        "{runs} runs, {} trades, in {:.1?}: {} experiments ({} rejected), {} adoptions in \
         {adopting} runs, {} rollbacks ({} within 30 days of the previous change)",
        get(&totals.trades),
        started.elapsed(),
        get(&totals.experiments),
        get(&totals.rejected),
        get(&totals.adoptions),
        get(&totals.rollbacks),
        get(&totals.fast_rollbacks),
    );
    assert!(
        adopting * 5 >= runs,
        "only {adopting} of {runs} runs adopted anything: the test is nearly vacuous"
    );
}
