//! The experiment engine end to end, against a real database in a
//! temporary directory and seeded simulated trades.
//!
//! Invariants:
//! * assignment is a pure function of (seed, experiment, key) and sends
//!   the allocated share (±2% on 10,000 keys) to the test arm;
//! * a planted +2 pp ROI gain is adopted once both arms have their
//!   minimum; the governance limits hold (a second adoption within 30 days
//!   is deferred with its reason, a 50% wish becomes a 20% step, a 50%
//!   experiment is refused);
//! * null experiments analysed after every trade (continuous monitoring,
//!   200 seeded runs each of normal and put-like ROIs) are adopted in about
//!   α = 5% of runs at most — the measured rates are printed (`cargo test
//!   -p learning --test experiments -- --nocapture`; more runs with
//!   `EXPERIMENTS_NULL_RUNS`);
//! * a clearly worse performance after adoption is rolled back, a harmless
//!   one confirmed;
//! * every step with a consequence appends its reasoning to
//!   `learning_history`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use core_domain::{
    Experiment, ExperimentStatus, LearningEventType, LearningRepository, Pattern, PatternStatus,
    Price, Symbol, Trade, TradeStatus,
};
use learning::experiments::{
    AdoptionOutcome, Analysis, Arm, Assignment, Decision, ExperimentError, ExperimentParams,
    GovernanceRefusal, Governor, PARAMETERS, ParameterSet, Proposal, RollbackDecision,
    ShadowOutcome, ShadowPolicy, adopt, analyze, assign, check_rollback, confirm_adoption,
    history_of, is_confirmed, propose, propose_from_pattern, record_analysis, reject, rollback,
    start,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use store::Store;
use tempfile::TempDir;

const SEED: u64 = 0x5EED_0007;

fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trader.db");
    let store = Store::open_and_migrate(path.to_str().unwrap()).unwrap();
    (dir, store)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 9, 15, 0, 0).unwrap()
}

fn day() -> NaiveDate {
    t0().date_naive()
}

fn otm_pattern() -> Pattern {
    Pattern {
        pattern_type: "otm_bucket".into(),
        pattern_name: "18-20% OTM outperforms".into(),
        sample_size: 60,
        win_rate: 0.93,
        avg_roi: 0.021,
        confidence: 0.995,
        p_value: 0.005,
        status: PatternStatus::Active,
        date_detected: day(),
        context: serde_json::json!({"min": 0.18, "max": 0.20, "baseline_roi": 0.009}),
    }
}

/// A closed trade of an experiment's arm with the given ROI.
fn closed_trade(id: &str, experiment_id: &str, arm: Arm, roi: f64, at: DateTime<Utc>) -> Trade {
    let entry = at - Duration::days(5);
    let mut t = Trade::opened(
        id,
        Symbol::new("AAPL").unwrap(),
        Price::from_cents(15_000),
        entry.date_naive() + Duration::days(10),
        entry,
        entry.date_naive(),
        Price::from_cents(40),
        5,
    );
    t.is_experiment = true;
    t.experiment_id = Some(experiment_id.to_owned());
    t.experiment_arm = Some(arm.as_str().to_owned());
    t.status = TradeStatus::Closed;
    t.exit_time = Some(at);
    t.exit_date = Some(at.date_naive());
    t.roi = Some(roi);
    t
}

/// Seeded trades of one experiment: each opportunity is assigned by the
/// engine's hash and its ROI drawn from N(mean of its arm, sd²).
struct Market {
    rng: ChaCha8Rng,
    control_mean: f64,
    test_mean: f64,
    sd: f64,
    /// Put-like returns instead of normal ones: usually a small gain,
    /// sometimes a large loss (mean shifted by the arm's mean).
    skewed: bool,
    count: usize,
    start: DateTime<Utc>,
}

impl Market {
    fn new(seed: u64, control_mean: f64, test_mean: f64, sd: f64, start: DateTime<Utc>) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            control_mean,
            test_mean,
            sd,
            skewed: false,
            count: 0,
            start,
        }
    }

    fn skewed(mut self) -> Self {
        self.skewed = true;
        self
    }

    /// A draw with mean 0.
    fn noise(&mut self) -> f64 {
        let z: f64 = StandardNormal.sample(&mut self.rng);
        if !self.skewed {
            return self.sd * z;
        }
        // 85%: +2% ± 0.5%; 15%: −8% ± 3% (mean +0.5%), centred
        if self.rng.random::<f64>() < 0.85 {
            0.02 + 0.005 * z - 0.005
        } else {
            -0.08 + 0.03 * z - 0.005
        }
    }

    /// The next opportunity, assigned and closed an hour after the last.
    fn next(&mut self, experiment: &Experiment) -> Trade {
        self.count += 1;
        let key = format!("opp-{}", self.count);
        let assignment = Assignment::new(experiment, &key, SEED).unwrap();
        let mean = match assignment.arm {
            Arm::Control => self.control_mean,
            Arm::Test => self.test_mean,
        };
        let roi = mean + self.noise();
        let at = self.start + Duration::hours(self.count as i64);
        let mut t = closed_trade(
            &format!("T-{}-{}", experiment.experiment_id, self.count),
            &experiment.experiment_id,
            assignment.arm,
            roi,
            at,
        );
        assignment.tag(&mut t);
        t
    }

    fn now(&self) -> DateTime<Utc> {
        self.start + Duration::hours(self.count as i64)
    }
}

/// Adds trades one at a time and analyses after each (recording each look
/// when a store is given) until the analysis decides or `max_trades`.
fn run(
    experiment: &Experiment,
    market: &mut Market,
    trades: &mut Vec<Trade>,
    params: &ExperimentParams,
    max_trades: usize,
    store: Option<&Store>,
) -> Analysis {
    let mut row = experiment.clone();
    for _ in 0..max_trades {
        trades.push(market.next(experiment));
        let analysis = analyze(experiment, trades, None, params, market.now()).unwrap();
        if let Some(store) = store {
            row = record_analysis(store, &row, &analysis).unwrap();
        }
        if analysis.decision != Decision::Continue {
            return analysis;
        }
    }
    panic!("no decision after {max_trades} trades");
}

fn events_of(store: &Store, kind: LearningEventType) -> usize {
    store
        .learning_history(10_000)
        .unwrap()
        .iter()
        .filter(|e| e.event_type == kind)
        .count()
}

#[test]
fn test_assignment_is_reproducible_and_sends_the_allocation_to_the_test_arm() {
    let current = ParameterSet::naked_put_defaults();
    let params = ExperimentParams::default();
    let experiment = propose_from_pattern(&otm_pattern(), &current, &params, day()).unwrap();
    let keys: Vec<String> = (0..10_000).map(|i| format!("2024-01-09/S{i}")).collect();
    let arms: Vec<Arm> = keys.iter().map(|k| assign(&experiment, k, SEED)).collect();
    let again: Vec<Arm> = keys.iter().map(|k| assign(&experiment, k, SEED)).collect();
    assert_eq!(arms, again, "same inputs, same arms");
    let share = arms.iter().filter(|a| **a == Arm::Test).count() as f64 / 10_000.0;
    println!("test-arm share on 10,000 keys: {share:.4} (allocation 0.20)");
    assert!((share - 0.20).abs() <= 0.02, "share {share}");

    // another seed re-splits but keeps the share
    let other: Vec<Arm> = keys
        .iter()
        .map(|k| assign(&experiment, k, SEED + 1))
        .collect();
    assert_ne!(arms, other);
    let share = other.iter().filter(|a| **a == Arm::Test).count() as f64 / 10_000.0;
    assert!((share - 0.20).abs() <= 0.02, "share {share}");

    // the assignment gives the arm's parameters and tags the trade
    let key = keys
        .iter()
        .find(|k| assign(&experiment, k, SEED) == Arm::Test)
        .unwrap();
    let assignment = Assignment::new(&experiment, key, SEED).unwrap();
    assert_eq!(assignment.value, 0.18);
    let set = assignment.parameters(&current).unwrap();
    assert_eq!(set.get("otm_min"), Some(0.18));
    assert_eq!(set.get("otm_max"), Some(0.20));
    let mut trade = closed_trade("T-1", "x", Arm::Control, 0.0, t0());
    assignment.tag(&mut trade);
    assert_eq!(trade.experiment_arm.as_deref(), Some("test"));
    assert_eq!(
        trade.experiment_id.as_deref(),
        Some(experiment.experiment_id.as_str())
    );
}

#[test]
fn test_planted_gain_is_adopted_within_the_governance_limits() {
    let (_dir, store) = temp_store();
    let params = ExperimentParams::default();
    let mut current = ParameterSet::naked_put_defaults();

    // 1. pattern → experiment → start
    let first = propose_from_pattern(&otm_pattern(), &current, &params, day()).unwrap();
    assert_eq!(
        (first.control_value.as_str(), first.test_value.as_str()),
        ("0.15", "0.18")
    );
    start(&store, &first, &params, t0()).unwrap();
    assert_eq!(events_of(&store, LearningEventType::ExperimentStarted), 1);
    let started = &store.learning_history(1).unwrap()[0];
    assert!(started.reasoning.contains("seed"), "{}", started.reasoning);
    assert_eq!(started.parameter_changed.as_deref(), Some("otm_min"));

    // a second experiment on the same parameter is refused
    let busy = propose(
        &Proposal {
            name: "other".into(),
            parameter: "otm_min".into(),
            target: 0.16,
            rationale: "r".into(),
        },
        &current,
        &params,
        day(),
    )
    .unwrap();
    let err = start(&store, &busy, &params, t0()).unwrap_err();
    assert!(
        matches!(err, ExperimentError::ParameterBusy { .. }),
        "{err}"
    );

    // 2. +2 pp planted in the test arm, analysed after every trade
    let mut market = Market::new(1, 0.010, 0.030, 0.03, t0());
    let mut trades = Vec::new();
    let analysis = run(
        &first,
        &mut market,
        &mut trades,
        &params,
        2_000,
        Some(&store),
    );
    println!("planted +2 pp: {}", analysis.reasoning);
    assert_eq!(analysis.decision, Decision::Adopt);
    assert!(analysis.control.real_trades >= 30 && analysis.test.real_trades >= 30);
    assert!(analysis.effect_roi.unwrap() > 0.005);
    assert!(analysis.p_value.unwrap() <= 0.05);
    let row = store.experiment(&first.experiment_id).unwrap().unwrap();
    assert_eq!(row.test_trades, analysis.test.real_trades as i64);
    assert!(events_of(&store, LearningEventType::ExperimentAnalyzed) >= 60);

    // 3. adopt: no earlier change, 20% shift → adopted
    let adopted_at = market.now();
    let outcome = adopt(&store, &row, &analysis, &current, &params, adopted_at).unwrap();
    let AdoptionOutcome::Adopted(change) = outcome else {
        panic!("{outcome:?}");
    };
    change.apply(&mut current).unwrap();
    assert_eq!(current.get("otm_min"), Some(0.18));
    let row = store.experiment(&first.experiment_id).unwrap().unwrap();
    assert_eq!(row.status, ExperimentStatus::Adopted);
    assert_eq!(events_of(&store, LearningEventType::ParameterAdopted), 1);
    let last = &store.learning_history(1).unwrap()[0];
    assert_eq!(last.event_type, LearningEventType::ParameterAdopted);
    assert_eq!(
        (last.old_value.as_deref(), last.new_value.as_deref()),
        (Some("0.15"), Some("0.18"))
    );
    assert!(last.reasoning.contains("Governance"), "{}", last.reasoning);

    // 4. a 50% wish on another parameter becomes a 20% step
    let second = propose(
        &Proposal {
            name: "optimizer: higher profit target".into(),
            parameter: "profit_target".into(),
            target: 0.75,
            rationale: "the optimizer's best value in sample".into(),
        },
        &current,
        &params,
        adopted_at.date_naive(),
    )
    .unwrap();
    assert_eq!(second.test_value, "0.6", "0.50 → 0.75 clamped to +20%");
    start(&store, &second, &params, adopted_at).unwrap();
    let mut market = Market::new(2, 0.010, 0.030, 0.03, adopted_at);
    let mut trades = Vec::new();
    let analysis = run(
        &second,
        &mut market,
        &mut trades,
        &params,
        2_000,
        Some(&store),
    );
    assert_eq!(analysis.decision, Decision::Adopt);
    let decided_at = market.now();
    assert!(
        decided_at - adopted_at < Duration::days(30),
        "the second decision must fall within 30 days for this test"
    );

    // 5. within 30 days of the first change: deferred, with the reason
    let row = store.experiment(&second.experiment_id).unwrap().unwrap();
    let outcome = adopt(&store, &row, &analysis, &current, &params, decided_at).unwrap();
    let AdoptionOutcome::Deferred(refusal) = outcome else {
        panic!("{outcome:?}");
    };
    let why = refusal.to_string();
    println!("second adoption within 30 days: {why}");
    assert!(matches!(refusal, GovernanceRefusal::TooSoon { .. }));
    assert!(
        why.contains("otm_min") && why.contains("next is allowed from"),
        "{why}"
    );
    let row = store.experiment(&second.experiment_id).unwrap().unwrap();
    assert_eq!(row.status, ExperimentStatus::Complete);
    let concluded = &store.learning_history(1).unwrap()[0];
    assert_eq!(concluded.event_type, LearningEventType::ExperimentConcluded);
    assert!(
        concluded.reasoning.contains("deferred"),
        "{}",
        concluded.reasoning
    );
    // asking again while still too soon writes no second conclusion
    let before = events_of(&store, LearningEventType::ExperimentConcluded);
    let again = adopt(
        &store,
        &row,
        &analysis,
        &current,
        &params,
        decided_at + Duration::days(1),
    )
    .unwrap();
    assert!(matches!(again, AdoptionOutcome::Deferred(_)));
    assert_eq!(
        events_of(&store, LearningEventType::ExperimentConcluded),
        before
    );

    // 6. after 30 days: adopted
    let later = adopted_at + Duration::days(30) + Duration::minutes(1);
    let row = store.experiment(&second.experiment_id).unwrap().unwrap();
    let outcome = adopt(&store, &row, &analysis, &current, &params, later).unwrap();
    let AdoptionOutcome::Adopted(change) = outcome else {
        panic!("{outcome:?}");
    };
    change.apply(&mut current).unwrap();
    assert_eq!(current.get("profit_target"), Some(0.6));
    assert_eq!(events_of(&store, LearningEventType::ParameterAdopted), 2);

    // 7. an experiment asking for a 50% shift (made by hand) is refused for good
    let mut greedy = second.clone();
    greedy.experiment_id = "EXP-hand-made".into();
    greedy.parameter_name = "premium_min".into();
    greedy.control_value = "0.3".into();
    greedy.test_value = "0.45".into();
    greedy.status = ExperimentStatus::Active;
    let refusal = Governor::new(&params)
        .can_adopt(&greedy, &current, &[], later + Duration::days(60))
        .unwrap_err();
    assert!(
        matches!(refusal, GovernanceRefusal::ShiftTooLarge { .. }),
        "{refusal}"
    );
    assert!(!refusal.is_temporary());
    println!("50% experiment: {refusal}");
    start(&store, &greedy, &params, later).unwrap();
    let mut fake = analysis.clone();
    fake.experiment_id = greedy.experiment_id.clone();
    let outcome = adopt(
        &store,
        &greedy,
        &fake,
        &current,
        &params,
        later + Duration::days(60),
    )
    .unwrap();
    assert!(
        matches!(outcome, AdoptionOutcome::Refused(_)),
        "{outcome:?}"
    );
    let row = store.experiment("EXP-hand-made").unwrap().unwrap();
    assert_eq!(row.status, ExperimentStatus::Rejected);

    // every experiment's history names it
    let h = history_of(&store, &first.experiment_id).unwrap();
    let kinds: Vec<LearningEventType> = h.iter().map(|e| e.event_type).collect();
    for kind in [
        LearningEventType::ExperimentStarted,
        LearningEventType::ExperimentAnalyzed,
        LearningEventType::ExperimentConcluded,
        LearningEventType::ParameterAdopted,
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

/// Null runs analysed after every trade until a decision; returns
/// (adopted, rejected as significantly worse, rejected at the budget,
/// looks).
fn null_runs(runs: u64, skewed: bool) -> (usize, usize, usize, usize) {
    let params = ExperimentParams::default();
    let current = ParameterSet::naked_put_defaults();
    let experiment = propose_from_pattern(&otm_pattern(), &current, &params, day()).unwrap();
    let (mut adopted, mut rejected_worse, mut budget, mut looks) = (0, 0, 0, 0);
    for run_seed in 0..runs {
        let market = Market::new(1_000 + run_seed, 0.01, 0.01, 0.03, t0());
        let mut market = if skewed { market.skewed() } else { market };
        // a fresh split per run: the experiment id changes with the run
        let mut e = experiment.clone();
        e.experiment_id = format!("{}-run{run_seed}", experiment.experiment_id);
        let mut trades = Vec::new();
        loop {
            trades.push(market.next(&e));
            let a = analyze(&e, &trades, None, &params, market.now()).unwrap();
            looks += 1;
            match a.decision {
                Decision::Continue => continue,
                Decision::Adopt => adopted += 1,
                Decision::Reject if a.effect_roi.unwrap() < 0.0 && a.p_value.unwrap() <= 0.05 => {
                    rejected_worse += 1;
                }
                Decision::Reject => budget += 1,
            }
            break;
        }
    }
    (adopted, rejected_worse, budget, looks)
}

#[test]
fn test_null_experiments_under_continuous_monitoring_are_rarely_adopted() {
    // EXPERIMENTS_NULL_RUNS=2000 for a tighter estimate
    let runs: u64 = std::env::var("EXPERIMENTS_NULL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for (label, skewed) in [("normal ROI", false), ("put-like ROI", true)] {
        let (adopted, worse, budget, looks) = null_runs(runs, skewed);
        let rate = adopted as f64 / runs as f64;
        println!(
            "null experiments ({label}), analysed after every trade: {adopted}/{runs} adopted \
             ({:.1}%), {worse} rejected as significantly worse, {budget} rejected at the \
             budget; {looks} looks",
            100.0 * rate
        );
        assert_eq!(adopted + worse + budget, runs as usize);
        // Normal ROI: 0/200 here, 13/2000 = 0.7% with EXPERIMENTS_NULL_RUNS=2000.
        // Put-like ROI: 7/200 here, 97/2000 = 4.9% with 2000 runs — at α, and
        // all on the adoption side (the small test arm more often misses the
        // rare large losses, so its mean looks better and its variance
        // smaller); the bound allows two standard errors of 200 runs above α.
        let bound = if skewed { 0.05 + 0.03 } else { 0.05 };
        assert!(rate <= bound, "{label}: null adoption rate {rate}");
        assert!((adopted + worse) as f64 / runs as f64 <= bound);
    }
}

#[test]
fn test_significantly_worse_test_arm_is_rejected_and_recorded() {
    let (_dir, store) = temp_store();
    let params = ExperimentParams::default();
    let current = ParameterSet::naked_put_defaults();
    let e = propose_from_pattern(&otm_pattern(), &current, &params, day()).unwrap();
    start(&store, &e, &params, t0()).unwrap();
    let mut market = Market::new(7, 0.010, -0.015, 0.03, t0());
    let mut trades = Vec::new();
    let analysis = run(&e, &mut market, &mut trades, &params, 2_000, Some(&store));
    assert_eq!(analysis.decision, Decision::Reject);
    assert!(
        analysis.reasoning.contains("significantly worse"),
        "{}",
        analysis.reasoning
    );

    // adopting on a reject is refused
    let row = store.experiment(&e.experiment_id).unwrap().unwrap();
    let err = adopt(&store, &row, &analysis, &current, &params, market.now()).unwrap_err();
    assert!(
        matches!(err, ExperimentError::DecisionMismatch { .. }),
        "{err}"
    );

    let row = reject(&store, &row, &analysis, market.now()).unwrap();
    assert_eq!(row.status, ExperimentStatus::Rejected);
    assert_eq!(
        store.experiment(&e.experiment_id).unwrap().unwrap().status,
        ExperimentStatus::Rejected
    );
    let last = &store.learning_history(1).unwrap()[0];
    assert_eq!(last.event_type, LearningEventType::ExperimentConcluded);
    assert!(
        last.reasoning.contains("rejected; otm_min stays 0.15"),
        "{}",
        last.reasoning
    );
    // a rejected experiment frees its parameter
    let next = propose(
        &Proposal {
            name: "retry".into(),
            parameter: "otm_min".into(),
            target: 0.16,
            rationale: "r".into(),
        },
        &current,
        &params,
        market.now().date_naive(),
    )
    .unwrap();
    start(&store, &next, &params, market.now()).unwrap();
}

/// An adopted experiment in the store with its control-arm trades.
fn adopted_experiment(store: &Store, seed: u64) -> (Experiment, Vec<Trade>, DateTime<Utc>) {
    let params = ExperimentParams::default();
    let current = ParameterSet::naked_put_defaults();
    let e = propose_from_pattern(&otm_pattern(), &current, &params, day()).unwrap();
    start(store, &e, &params, t0()).unwrap();
    let mut market = Market::new(seed, 0.010, 0.030, 0.03, t0());
    let mut trades = Vec::new();
    let analysis = run(&e, &mut market, &mut trades, &params, 2_000, Some(store));
    let row = store.experiment(&e.experiment_id).unwrap().unwrap();
    let outcome = adopt(store, &row, &analysis, &current, &params, market.now()).unwrap();
    assert!(
        matches!(outcome, AdoptionOutcome::Adopted(_)),
        "{outcome:?}"
    );
    let control: Vec<Trade> = trades
        .into_iter()
        .filter(|t| t.experiment_arm.as_deref() == Some("control"))
        .collect();
    (
        store.experiment(&e.experiment_id).unwrap().unwrap(),
        control,
        market.now(),
    )
}

/// Trades after an adoption with ROI ~ N(mean, 0.03²), checked after each.
fn watch(
    adopted: &Experiment,
    baseline: &[Trade],
    mean: f64,
    seed: u64,
    since: DateTime<Utc>,
) -> (learning::experiments::RollbackCheck, usize) {
    let params = ExperimentParams::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut after = Vec::new();
    for i in 1..=100 {
        let z: f64 = StandardNormal.sample(&mut rng);
        let mut t = closed_trade(
            &format!("A-{i}"),
            "none",
            Arm::Control,
            mean + 0.03 * z,
            since + Duration::hours(i),
        );
        t.is_experiment = false;
        t.experiment_id = None;
        t.experiment_arm = None;
        after.push(t);
        let check = check_rollback(adopted, &after, baseline, &params).unwrap();
        if check.decision != RollbackDecision::Watching {
            return (check, after.len());
        }
    }
    panic!("the watch never ended");
}

#[test]
fn test_clearly_worse_performance_after_adoption_is_rolled_back() {
    let (_dir, store) = temp_store();
    let (adopted, control, adopted_at) = adopted_experiment(&store, 11);
    assert!(!is_confirmed(&adopted));
    // the control arm made ~1%; after the adoption trades make −2%
    let (check, n) = watch(&adopted, &control, -0.020, 5, adopted_at);
    println!("rollback after {n} trades: {}", check.reasoning);
    assert_eq!(check.decision, RollbackDecision::RollBack);
    assert!(n <= 30, "caught within the window");

    let at = adopted_at + Duration::hours(n as i64);
    let change = rollback(&store, &adopted, &check, at).unwrap();
    assert_eq!((change.from, change.to), (0.18, 0.15));
    let mut current = ParameterSet::naked_put_defaults().with("otm_min", 0.18);
    change.apply(&mut current).unwrap();
    assert_eq!(current.get("otm_min"), Some(0.15));
    let row = store.experiment(&adopted.experiment_id).unwrap().unwrap();
    assert_eq!(row.status, ExperimentStatus::RolledBack);
    let last = &store.learning_history(1).unwrap()[0];
    assert_eq!(last.event_type, LearningEventType::ParameterRolledBack);
    assert_eq!(
        (last.old_value.as_deref(), last.new_value.as_deref()),
        (Some("0.18"), Some("0.15"))
    );
    // the rollback counts as a change for the governance limit
    let history = store.learning_history(100).unwrap();
    assert_eq!(
        Governor::new(&ExperimentParams::default()).next_change_allowed(&history),
        Some(at + Duration::days(30))
    );
    // a rolled-back experiment cannot be rolled back twice
    assert!(matches!(
        rollback(&store, &row, &check, at).unwrap_err(),
        ExperimentError::WrongStatus { .. }
    ));
}

#[test]
fn test_harmless_performance_after_adoption_is_confirmed() {
    let (_dir, store) = temp_store();
    let (adopted, control, adopted_at) = adopted_experiment(&store, 12);
    let (check, n) = watch(&adopted, &control, 0.025, 6, adopted_at);
    assert_eq!(
        check.decision,
        RollbackDecision::Confirmed,
        "{}",
        check.reasoning
    );
    assert_eq!(n, 30, "confirmed when the window is full");
    let row = confirm_adoption(&store, &adopted, &check, adopted_at + Duration::days(3)).unwrap();
    assert!(is_confirmed(&row));
    assert!(is_confirmed(
        &store.experiment(&adopted.experiment_id).unwrap().unwrap()
    ));
    let last = &store.learning_history(1).unwrap()[0];
    assert_eq!(last.event_type, LearningEventType::ExperimentAnalyzed);
    assert!(last.reasoning.contains("Confirmed"), "{}", last.reasoning);
    // a confirmation is not a rollback
    assert!(matches!(
        rollback(&store, &row, &check, adopted_at).unwrap_err(),
        ExperimentError::DecisionMismatch { .. }
    ));
}

#[test]
fn test_shadow_evidence_counts_only_as_the_policy_allows() {
    let params = ExperimentParams::default();
    let current = ParameterSet::naked_put_defaults();
    let e = propose_from_pattern(&otm_pattern(), &current, &params, day()).unwrap();
    // real trades: no difference; shadow: a large apparent gain
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut trades = Vec::new();
    for i in 0..40 {
        for arm in [Arm::Control, Arm::Test] {
            let z: f64 = StandardNormal.sample(&mut rng);
            trades.push(closed_trade(
                &format!("T-{arm}-{i}"),
                &e.experiment_id,
                arm,
                0.01 + 0.01 * z,
                t0() + Duration::hours(i),
            ));
        }
    }
    let mut shadow = Vec::new();
    for i in 0..200 {
        for (arm, mean) in [(Arm::Control, 0.0), (Arm::Test, 0.05)] {
            let z: f64 = StandardNormal.sample(&mut rng);
            shadow.push(ShadowOutcome {
                shadow_id: format!("S-{arm}-{i:03}"),
                experiment_id: e.experiment_id.clone(),
                arm,
                exit_date: day(),
                roi: mean + 0.01 * z,
            });
        }
    }
    let at = t0() + Duration::days(3);
    let real_only = analyze(&e, &trades, None, &params, at).unwrap();
    let ignored = analyze(&e, &trades, Some(&shadow), &params, at).unwrap();
    assert_eq!(ignored.p_value, real_only.p_value, "ignored by default");
    assert_eq!(ignored.test.shadow_available, 200);
    assert_eq!(ignored.test.shadow_used, 0);
    assert!(
        ignored.reasoning.contains("shadow outcomes"),
        "{}",
        ignored.reasoning
    );

    let supplement = ExperimentParams {
        shadow: ShadowPolicy::Supplement { max_ratio: 1.0 },
        ..params
    };
    let mixed = analyze(&e, &trades, Some(&shadow), &supplement, at).unwrap();
    assert_eq!(mixed.test.shadow_used, 40, "capped at the real count");
    assert_eq!(mixed.control.shadow_used, 40);
    assert!(
        mixed.p_value.unwrap() < 0.05,
        "the shadow gain is significant"
    );
    assert!(mixed.effect_roi.unwrap() > 0.005);
    assert_ne!(
        mixed.decision,
        Decision::Adopt,
        "real trades alone show no gain: {}",
        mixed.reasoning
    );
    assert!(
        mixed.reasoning.contains("real trades alone"),
        "{}",
        mixed.reasoning
    );

    // before the real minimum, shadow outcomes cannot start the test
    let early = analyze(&e, &trades[..40], Some(&shadow), &supplement, at).unwrap();
    assert_eq!(early.decision, Decision::Continue);
    assert_eq!(early.test.shadow_used, 0);
    assert!(early.sequential.is_none());
}

#[test]
fn test_only_trades_closed_by_the_analysis_time_count() {
    let params = ExperimentParams::default();
    let e = propose_from_pattern(
        &otm_pattern(),
        &ParameterSet::naked_put_defaults(),
        &params,
        day(),
    )
    .unwrap();
    let mut trades = vec![
        closed_trade("a", &e.experiment_id, Arm::Control, 0.01, t0()),
        closed_trade(
            "b",
            &e.experiment_id,
            Arm::Test,
            0.02,
            t0() + Duration::hours(2),
        ),
        closed_trade("c", "another", Arm::Test, 0.02, t0()),
    ];
    let mut no_roi = closed_trade("d", &e.experiment_id, Arm::Test, 0.0, t0());
    no_roi.roi = None;
    trades.push(no_roi);
    let mut open = closed_trade("e", &e.experiment_id, Arm::Test, 0.0, t0());
    open.status = TradeStatus::Open;
    trades.push(open);
    let a = analyze(&e, &trades, None, &params, t0() + Duration::hours(1)).unwrap();
    assert_eq!((a.control.real_trades, a.test.real_trades), (1, 0));
    assert_eq!(a.excluded_trades, 1);
    assert_eq!(a.decision, Decision::Continue);
    assert!(
        a.reasoning.contains("no decision before 30"),
        "{}",
        a.reasoning
    );
}

#[test]
fn test_parameter_names_and_defaults_are_those_of_naked_put_params() {
    let strategy = strategy_naked_put::NakedPutParams::default();
    let mut json = serde_json::to_value(&strategy).unwrap();
    let set = ParameterSet::from_json(&json).unwrap();
    for spec in &PARAMETERS {
        assert!(set.get(spec.name).is_some(), "{} is not a field", spec.name);
    }
    assert_eq!(set, ParameterSet::naked_put_defaults());

    // a change goes back into the strategy's own type and passes its check
    let changed = set.with("otm_min", 0.18).with("dte_max", 12.0);
    changed.write_json(&mut json).unwrap();
    let back: strategy_naked_put::NakedPutParams = serde_json::from_value(json).unwrap();
    assert_eq!((back.otm_min, back.dte_max), (0.18, 12));
    strategy_naked_put::check_params(&back).unwrap();
}

#[test]
fn test_a_start_can_share_a_transaction_with_other_writes() {
    #[derive(Debug)]
    enum Failure {
        Store,
        Experiment(ExperimentError),
    }
    impl From<store::StoreError> for Failure {
        fn from(_: store::StoreError) -> Self {
            Failure::Store
        }
    }
    let (_dir, store) = temp_store();
    let params = ExperimentParams::default();
    let e = propose_from_pattern(
        &otm_pattern(),
        &ParameterSet::naked_put_defaults(),
        &params,
        day(),
    )
    .unwrap();
    // a step that fails after the start leaves nothing behind
    let result: Result<(), Failure> = store.atomically(|tx| {
        start(tx, &e, &params, t0()).map_err(Failure::Experiment)?;
        Err(Failure::Experiment(ExperimentError::InvalidParams {
            problems: "a later step failed".into(),
        }))
    });
    assert!(
        matches!(&result, Err(Failure::Experiment(e)) if e.to_string().contains("later step")),
        "{result:?}"
    );
    assert!(store.experiment(&e.experiment_id).unwrap().is_none());
    assert!(store.learning_history(10).unwrap().is_empty());
    // and commits both writes together when it succeeds
    store
        .atomically(|tx| start(tx, &e, &params, t0()).map_err(Failure::Experiment))
        .unwrap();
    assert!(store.experiment(&e.experiment_id).unwrap().is_some());
    assert_eq!(store.learning_history(10).unwrap().len(), 1);
}
