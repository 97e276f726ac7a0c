//! The engine loop over the simulated exchange, wired as the daemon wires
//! it (`traderd::wiring`), checked from the database: decision records,
//! working memory and a restart, operator control requests, the schedule,
//! the daily-loss breaker, determinism.
//!
//! Each test replays a few weeks of real history (debug build: about a
//! second per simulated month). Most use a loosened strategy (the one of
//! `tests/risk_backtest.rs`) so that positions are open in the window; the
//! default strategy trades rarely.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use core_domain::{
    AuditRepository, Clock, DecisionKind, DecisionRecord, ExitReason, Order, OrderPurpose,
    OrderRepository, OrderStatus, Trade, TradeFilter, TradeRepository, TradeStatus, WorkingMemory,
};
use diesel::prelude::*;
use execution::OrderContext;
use market_sim::calendar::NyseCalendar;
use orchestrator::engine::{default_goals, keys, put_of};
use orchestrator::{Action, CycleReport, Memory, Pace, Phase, Stopped, run};
use risk::{BreakerAction, TradingState};
use store::{ControlAction, ControlRequest, Store};
use traderd::wiring::{
    ReplayIdentity, SimRun, Start, resume_or_start, sim_run, sim_run_with_limits,
};

// ------------------------------------------------------------------ helpers

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

/// A database in a temporary directory (kept alive with it).
struct Db {
    _dir: tempfile::TempDir,
    url: String,
    store: Arc<Store>,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("engine.db").display().to_string();
    let store = Arc::new(Store::open_and_migrate(&url).unwrap());
    store.relax_durability_for_research().unwrap();
    Db {
        _dir: dir,
        url,
        store,
    }
}

/// The loosened strategy of `tests/risk_backtest.rs`: wider OTM, premium
/// and DTE ranges, no open-interest or spread filter, six positions, and
/// no sector, correlation or VaR limit in the way.
fn loose_settings() -> settings::Settings {
    let mut settings = settings::Settings::default();
    let s = &mut settings.strategy;
    s.otm_range.min = 0.05;
    s.otm_range.max = 0.25;
    s.premium_range.min = 0.05;
    s.premium_range.max = 5.0;
    s.dte_range.min = 5;
    s.dte_range.max = 30;
    s.max_positions = 6;
    s.min_open_interest = 0;
    s.max_spread_pct = 1.0;
    let r = &mut settings.risk;
    r.max_sector_concentration = 1.0;
    r.max_correlation = 1.0;
    r.max_portfolio_var_95 = 1.0;
    settings
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the engine's loop up to `until` (or a raised `stop`), collecting
/// the cycle reports.
fn drive(
    rt: &tokio::runtime::Runtime,
    sim: &mut SimRun,
    until: DateTime<Utc>,
    reports: &mut Vec<CycleReport>,
) -> Stopped {
    let stop = AtomicBool::new(false);
    rt.block_on(run(
        &mut sim.engine,
        &sim.clock,
        until,
        Pace::AsFastAsPossible,
        &stop,
        |r| reports.push(r.clone()),
    ))
    .unwrap()
}

/// The next cycle after the exchange's time.
fn next_cycle(sim: &SimRun) -> DateTime<Utc> {
    sim.engine.schedule().next_cycle(sim.clock.now())
}

fn trades(store: &Store) -> Vec<Trade> {
    let mut t = store.trades(&TradeFilter::default()).unwrap();
    t.sort_by(|a, b| {
        a.entry_time
            .cmp(&b.entry_time)
            .then(a.trade_id.cmp(&b.trade_id))
    });
    t
}

fn open_trades(store: &Store) -> Vec<Trade> {
    trades(store)
        .into_iter()
        .filter(|t| t.status == TradeStatus::Open)
        .collect()
}

/// Every decision record, oldest first.
fn decisions(store: &Store) -> Vec<DecisionRecord> {
    let mut d = store.recent_decisions(10_000_000).unwrap();
    d.reverse();
    d
}

fn stored_memory(store: &Store) -> Memory {
    serde_json::from_value(store.recall(keys::ENGINE).unwrap().unwrap()).unwrap()
}

fn sqlite(url: &str) -> SqliteConnection {
    SqliteConnection::establish(url).unwrap()
}

/// The trading-state history: (time, state, cause, actor), oldest first.
fn trading_states(url: &str) -> Vec<(DateTime<Utc>, String, String, String)> {
    use store::schema::trading_state::dsl as ts;
    let rows: Vec<(NaiveDateTime, String, String, String)> = ts::trading_state
        .order(ts::id.asc())
        .select((ts::time, ts::state, ts::cause, ts::actor))
        .load(&mut sqlite(url))
        .unwrap();
    rows.into_iter()
        .map(|(t, s, c, a)| (Utc.from_utc_datetime(&t), s, c, a))
        .collect()
}

/// A control request as stored: (handled_at, outcome).
fn control_row(url: &str, id: i64) -> (Option<DateTime<Utc>>, Option<String>) {
    use store::schema::control_requests::dsl as cr;
    let (handled, outcome): (Option<NaiveDateTime>, Option<String>) = cr::control_requests
        .filter(cr::id.eq(id))
        .select((cr::handled_at, cr::outcome))
        .first(&mut sqlite(url))
        .unwrap();
    (handled.map(|t| Utc.from_utc_datetime(&t)), outcome)
}

fn entries(orders: &[Order]) -> impl Iterator<Item = &Order> {
    orders
        .iter()
        .filter(|o| o.intent.purpose == OrderPurpose::Open)
}

fn action_name(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

fn criterion<'a>(d: &'a DecisionRecord, name: &str) -> &'a core_domain::Criterion {
    d.criteria
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no criterion {name} in {d:#?}"))
}

// ------------------------------------------------------ 1. decision records

#[test]
fn test_every_cycle_entry_and_exit_has_its_decision_on_record() {
    let db = db();
    let settings = loose_settings();
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db.store),
        date("2020-02-03"),
        date("2020-02-28"),
        Some(7),
    )
    .unwrap();
    let rt = runtime();
    let mut reports = Vec::new();
    let until = sim.until;
    assert_eq!(drive(&rt, &mut sim, until, &mut reports), Stopped::Reached);

    let all = decisions(&db.store);
    let actions: BTreeMap<DateTime<Utc>, Vec<&DecisionRecord>> = all
        .iter()
        .filter(|d| d.kind == DecisionKind::Action && d.subject == "engine")
        .fold(BTreeMap::new(), |mut m, d| {
            m.entry(d.time).or_default().push(d);
            m
        });

    // Every session's close: one performance analysis on record.
    let analyses = all
        .iter()
        .filter(|d| d.kind == DecisionKind::Action && d.subject == "performance")
        .count();
    let closes = reports
        .iter()
        .filter(|r| r.actions.contains(&Action::AnalyzePerformance))
        .count();
    assert!(closes > 0);
    assert_eq!(analyses, closes);

    // Every non-idle cycle: one action record naming its actions, with
    // the criteria it weighed. An idle stretch: one record, at its start.
    let mut expected_records = 0;
    let mut previous_idle = false;
    for r in &reports {
        let t = r.time.unwrap();
        let at = actions.get(&t).map(Vec::as_slice).unwrap_or_default();
        let idle = r.actions == [Action::Idle];
        if idle && previous_idle {
            assert!(at.is_empty(), "a repeated idle cycle recorded at {t}");
        } else {
            expected_records += 1;
            assert_eq!(at.len(), 1, "cycle {t} ({:?}): {at:#?}", r.actions);
            let d = at[0];
            assert_eq!(d.subject, "engine");
            assert_eq!(d.decision, action_name(&r.actions), "at {t}");
            for name in ["phase", "trading_state", "free_slots", "scan_due"] {
                criterion(d, name);
            }
            if r.actions.contains(&Action::ManageExits) {
                assert!(criterion(d, "open_trades").numeric_value.unwrap() > 0.0);
            }
            if r.actions.contains(&Action::CancelStale) {
                assert!(criterion(d, "stale_orders").passed);
            }
            if r.actions.contains(&Action::ScanEntries) {
                assert!(
                    ["phase", "trading_state", "free_slots", "scan_due"]
                        .iter()
                        .all(|n| criterion(d, n).passed),
                    "a scan whose criteria do not all pass: {d:#?}"
                );
            }
            assert!(!d.reason.is_empty());
        }
        previous_idle = idle;
    }
    let recorded: usize = actions.values().map(Vec::len).sum();
    assert_eq!(recorded, expected_records, "action records vs cycles");
    let idle_stretches = reports
        .windows(2)
        .filter(|w| w[1].actions == [Action::Idle] && w[0].actions != [Action::Idle])
        .count()
        + usize::from(reports[0].actions == [Action::Idle]);
    assert!(idle_stretches > 10, "{idle_stretches} idle stretches");
    assert!(
        reports.len() > recorded + 100,
        "idle nights are not recorded cycle by cycle"
    );

    // Every entry order: the strategy's `enter` and the governor's
    // approval, at the order's time, about its contract.
    let orders = db.store.all_orders().unwrap();
    let at = |t: DateTime<Utc>| all.iter().filter(move |d| d.time == t);
    let mut n_entries = 0;
    for o in entries(&orders) {
        n_entries += 1;
        let key = o.intent.contract.key();
        let t = o.intent.created_at;
        let enter = at(t)
            .find(|d| d.kind == DecisionKind::Entry && d.decision == "enter" && d.subject == key)
            .unwrap_or_else(|| panic!("no enter decision for {}", o.intent.order_ref));
        assert!(!enter.criteria.is_empty() && enter.criteria.iter().all(|c| c.passed));
        let approval = at(t)
            .find(|d| {
                d.kind == DecisionKind::Entry && d.decision == "risk_approved" && d.subject == key
            })
            .unwrap_or_else(|| panic!("no risk approval for {}", o.intent.order_ref));
        assert!(approval.criteria.iter().all(|c| c.passed), "{approval:#?}");
        for name in [
            "trading_state",
            "open_positions_after",
            "new_positions_today_after",
        ] {
            criterion(approval, name);
        }
    }
    // Every closing order: the exit decision with its reason, about the
    // trade, naming the order; and the governor's approval.
    let mut n_exits = 0;
    for o in orders
        .iter()
        .filter(|o| o.intent.purpose == OrderPurpose::Close)
    {
        n_exits += 1;
        let reason = OrderContext::of(o).exit_reason.unwrap();
        let trade_id = o.intent.trade_id.clone().unwrap();
        let t = o.intent.created_at;
        let exit = at(t)
            .find(|d| {
                d.kind == DecisionKind::Exit
                    && d.subject == trade_id
                    && d.context["exit_manager"]["order_ref"] == o.intent.order_ref.as_str()
            })
            .unwrap_or_else(|| panic!("no exit decision for {}", o.intent.order_ref));
        assert_eq!(exit.decision, format!("exit:{reason}"));
        assert!(!exit.criteria.is_empty());
        assert!(
            at(t).any(|d| d.kind == DecisionKind::Exit
                && d.decision == "risk_approved"
                && d.subject == o.intent.contract.key()),
            "no approval of {}",
            o.intent.order_ref
        );
    }
    // Every trade: entered by a recorded entry; every closed trade's exit
    // reason is on the record of the cycle that saw it close, and an
    // engine exit is the reason of its filled closing order.
    let trades = trades(&db.store);
    let closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed)
        .collect();
    assert!(closed.len() >= 8, "{} closed trades", closed.len());
    let mut reasons: Vec<ExitReason> = closed.iter().filter_map(|t| t.exit_reason).collect();
    reasons.sort_by_key(|r| r.as_str());
    reasons.dedup();
    assert!(reasons.len() >= 2, "exit reasons {reasons:?}");
    for t in &trades {
        let open = orders
            .iter()
            .find(|o| o.intent.order_ref == format!("O-{}", t.trade_id))
            .unwrap_or_else(|| panic!("no entry order for {}", t.trade_id));
        assert!(open.filled_quantity > 0);
    }
    for t in &closed {
        let reason = t.exit_reason.unwrap();
        let needle = format!("{} closed ({reason})", t.trade_id);
        assert!(
            actions.values().flatten().any(|d| d.context["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|s| s.as_str().unwrap().starts_with(&needle)))),
            "the close of {} ({reason}) is on no cycle's record",
            t.trade_id
        );
        if !matches!(reason, ExitReason::ExpiredWorthless | ExitReason::Assigned) {
            assert!(
                orders
                    .iter()
                    .any(|o| o.intent.trade_id.as_deref() == Some(&t.trade_id)
                        && o.intent.purpose == OrderPurpose::Close
                        && o.status == OrderStatus::Filled
                        && OrderContext::of(o).exit_reason == Some(reason)),
                "{}: no filled closing order for {reason}",
                t.trade_id
            );
        }
    }
    assert!(n_entries >= closed.len() && n_exits >= closed.len());
    // Refusals carry their criteria too.
    for d in all.iter().filter(|d| d.kind == DecisionKind::RiskRefusal) {
        assert!(d.criteria.iter().any(|c| !c.passed), "{d:#?}");
    }
}

// ------------------------------------- 2. working memory and a restart

fn identity(settings: &settings::Settings, from: &str, to: &str) -> ReplayIdentity {
    ReplayIdentity {
        from: date(from),
        to: date(to),
        seed: settings.broker.sim.exchange.seed,
        starting_cash: settings.broker.sim.exchange.starting_cash,
    }
}

#[test]
fn test_working_memory_persists_and_a_restart_continues_as_one_run() {
    let settings = loose_settings();
    let id = identity(&settings, "2020-02-03", "2020-02-21");
    let rt = runtime();

    // One uninterrupted run.
    let whole = db();
    let (mut sim, start) = resume_or_start(&settings, Arc::clone(&whole.store), &id).unwrap();
    assert_eq!(start, Start::Fresh);
    let mut reports = Vec::new();
    let until = sim.until;
    assert_eq!(drive(&rt, &mut sim, until, &mut reports), Stopped::Reached);
    let whole_cycles = sim.engine.memory().cycles;
    assert_eq!(whole_cycles, reports.len() as u64);
    let whole_memory = sim.engine.memory().clone();
    drop(sim);

    // The same replay stopped mid-session with positions open (the stop
    // flag, as SIGINT raises it), then resumed on a new engine.
    let split = db();
    let (mut first, start) = resume_or_start(&settings, Arc::clone(&split.store), &id).unwrap();
    assert_eq!(start, Start::Fresh);
    let stop = AtomicBool::new(false);
    let stop_after = utc("2020-02-11 17:00");
    let mut first_reports: Vec<CycleReport> = Vec::new();
    let until = first.until;
    let stopped = rt
        .block_on(run(
            &mut first.engine,
            &first.clock,
            until,
            Pace::AsFastAsPossible,
            &stop,
            |r| {
                if r.time.unwrap() >= stop_after && r.open_trades > 0 {
                    stop.store(true, Ordering::SeqCst);
                }
                first_reports.push(r.clone());
            },
        ))
        .unwrap();
    assert_eq!(stopped, Stopped::Requested);
    let stopped_at = first_reports.last().unwrap().time.unwrap();
    assert!(first_reports.last().unwrap().open_trades > 0);
    assert_eq!(first.engine.schedule().phase(stopped_at), Phase::Open);
    let memory_at_stop = first.engine.memory().clone();
    assert_eq!(memory_at_stop.cycles, first_reports.len() as u64);
    assert_eq!(memory_at_stop.last_cycle, Some(stopped_at));
    // What the database holds is what the engine had.
    assert_eq!(stored_memory(&split.store), memory_at_stop);
    assert_eq!(
        split.store.recall(keys::GOALS).unwrap(),
        Some(serde_json::json!(default_goals()))
    );
    let recent: Vec<String> =
        serde_json::from_value(split.store.recall(keys::RECENT_ACTIONS).unwrap().unwrap()).unwrap();
    assert_eq!(recent, Vec::from(memory_at_stop.recent_actions.clone()));
    assert!(!recent.is_empty());
    drop(first);

    let (mut second, start) = resume_or_start(&settings, Arc::clone(&split.store), &id).unwrap();
    match start {
        Start::Resumed { last_cycle, .. } => assert_eq!(last_cycle, stopped_at),
        other => panic!("not resumed: {other:?}"),
    }
    // The new engine starts from the stored memory.
    assert_eq!(second.engine.memory(), &memory_at_stop);
    assert_eq!(second.engine.memory().goals, default_goals());
    assert_eq!(second.clock.now(), stopped_at);
    let mut second_reports = Vec::new();
    let until = second.until;
    assert_eq!(
        drive(&rt, &mut second, until, &mut second_reports),
        Stopped::Reached
    );
    // The cycles continue: no cycle run twice, none skipped.
    assert!(second_reports[0].time.unwrap() > stopped_at);
    let times: Vec<DateTime<Utc>> = first_reports
        .iter()
        .chain(&second_reports)
        .map(|r| r.time.unwrap())
        .collect();
    let whole_times: Vec<DateTime<Utc>> = reports.iter().map(|r| r.time.unwrap()).collect();
    assert_eq!(times, whole_times);
    assert_eq!(second.engine.memory().cycles, whole_cycles);
    assert_eq!(stored_memory(&split.store).cycles, whole_cycles);
    assert_eq!(second.engine.memory(), &whole_memory);

    // The same trades and orders as the uninterrupted run.
    let a = trades(&whole.store);
    let b = trades(&split.store);
    assert!(a.len() >= 5, "{} trades", a.len());
    assert!(
        b.iter()
            .any(|t| t.entry_time < stopped_at && t.exit_time.is_some_and(|x| x > stopped_at)),
        "no trade spans the restart"
    );
    assert_eq!(a, b);
    let key = |o: &Order| {
        (
            o.intent.clone(),
            o.status,
            o.filled_quantity,
            o.avg_fill_price,
            o.commission,
        )
    };
    let oa: Vec<_> = whole.store.all_orders().unwrap().iter().map(key).collect();
    let ob: Vec<_> = split.store.all_orders().unwrap().iter().map(key).collect();
    assert_eq!(oa, ob);
    assert_eq!(
        split.store.recall(keys::GOALS).unwrap(),
        Some(serde_json::json!(default_goals()))
    );
}

// ------------------------------------------------- 3. control requests

fn request(store: &Store, time: DateTime<Utc>, action: ControlAction, flatten: bool) -> i64 {
    store
        .request_control(&ControlRequest {
            id: None,
            time,
            actor: "operator:test".into(),
            action,
            flatten,
            reason: "integration test".into(),
        })
        .unwrap()
}

#[test]
fn test_emergency_stop_flattens_and_halts_until_resumed() {
    let db = db();
    let settings = loose_settings();
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db.store),
        date("2020-02-03"),
        date("2020-02-21"),
        Some(7),
    )
    .unwrap();
    let rt = runtime();
    let mut reports = Vec::new();
    drive(&rt, &mut sim, utc("2020-02-12 16:00"), &mut reports);
    let open_before = open_trades(&db.store);
    assert!(
        open_before.len() >= 2,
        "{} open trades at the stop",
        open_before.len()
    );
    let queued_at = sim.clock.now();
    let id = request(&db.store, queued_at, ControlAction::EmergencyStop, true);
    assert_eq!(db.store.pending_control_requests().unwrap().len(), 1);

    // The next cycle carries it out.
    let stop_cycle = next_cycle(&sim);
    let mut after = Vec::new();
    drive(&rt, &mut sim, stop_cycle, &mut after);
    assert_eq!(after.last().unwrap().time, Some(stop_cycle));
    assert_eq!(sim.engine.governor().state(), TradingState::Halted);
    assert_eq!(
        db.store.trading_state().unwrap().unwrap().state.as_str(),
        "halted"
    );
    assert!(db.store.pending_control_requests().unwrap().is_empty());
    let (handled, outcome) = control_row(&db.url, id);
    assert_eq!(handled, Some(stop_cycle));
    let outcome = outcome.unwrap();
    assert!(
        outcome.starts_with("halted;")
            && outcome.contains(&format!("{} closing orders sent", open_before.len())),
        "{outcome}"
    );
    let states = trading_states(&db.url);
    let (t, state, cause, actor) = states.last().unwrap();
    assert_eq!(
        (t, state.as_str(), actor.as_str()),
        (&stop_cycle, "halted", "operator:test")
    );
    assert!(cause.contains("integration test"), "{cause}");
    // One emergency close per open trade, sent in that cycle, each with
    // its decision.
    let orders = db.store.all_orders().unwrap();
    let all = decisions(&db.store);
    for t in &open_before {
        let close = orders
            .iter()
            .find(|o| {
                o.intent.trade_id.as_deref() == Some(&t.trade_id)
                    && o.intent.purpose == OrderPurpose::Close
                    && o.intent.created_at == stop_cycle
            })
            .unwrap_or_else(|| panic!("no emergency close for {}", t.trade_id));
        assert_eq!(
            OrderContext::of(close).exit_reason,
            Some(ExitReason::Emergency)
        );
        assert_eq!(close.intent.contract.key(), put_of(t).key());
        assert!(
            all.iter().any(|d| d.time == stop_cycle
                && d.kind == DecisionKind::Exit
                && d.subject == t.trade_id
                && d.decision == "exit:emergency"),
            "no exit:emergency decision for {}",
            t.trade_id
        );
    }

    // The next cycles: every trade closed by the emergency, no entry.
    let resume_at = utc("2020-02-14 15:00");
    drive(&rt, &mut sim, resume_at, &mut after);
    assert!(open_trades(&db.store).is_empty());
    for t in &open_before {
        let t = db.store.trade(&t.trade_id).unwrap().unwrap();
        assert_eq!(t.exit_reason, Some(ExitReason::Emergency), "{t:#?}");
        assert!(t.exit_time.unwrap() <= stop_cycle + Duration::minutes(15));
    }
    let orders = db.store.all_orders().unwrap();
    assert!(
        entries(&orders).all(|o| o.intent.created_at < stop_cycle),
        "an entry while halted"
    );
    assert!(
        after
            .iter()
            .all(|r| r.entries_sent == 0 && !r.actions.contains(&Action::ScanEntries))
    );
    assert_eq!(sim.engine.governor().state(), TradingState::Halted);

    // Resume: active at the next cycle, and entries come back.
    let resumed_at = sim.clock.now();
    let id = request(&db.store, resumed_at, ControlAction::Resume, false);
    let resume_cycle = next_cycle(&sim);
    drive(&rt, &mut sim, resume_cycle, &mut after);
    assert_eq!(sim.engine.governor().state(), TradingState::Active);
    assert_eq!(
        db.store.trading_state().unwrap().unwrap().state.as_str(),
        "active"
    );
    let (handled, outcome) = control_row(&db.url, id);
    assert_eq!(handled, Some(resume_cycle));
    assert_eq!(outcome.as_deref(), Some("resumed: active"));
    let until = sim.until;
    drive(&rt, &mut sim, until, &mut after);
    let orders = db.store.all_orders().unwrap();
    assert!(
        entries(&orders).any(|o| o.intent.created_at >= resume_cycle),
        "no entry after the resume"
    );
    // The state history: active (implicit) → halted → active, each with
    // its decision record.
    let states: Vec<String> = trading_states(&db.url)
        .into_iter()
        .map(|(_, s, _, _)| s)
        .collect();
    assert_eq!(states, ["halted", "active"]);
    let changes = decisions(&db.store)
        .into_iter()
        .filter(|d| d.kind == DecisionKind::TradingState)
        .count();
    assert_eq!(changes, 2);
}

/// The stop is queued in the cycle that sends entries; they fill at the
/// next checkpoint, before the cycle that carries out the stop. The
/// emergency must see those fills and close the new trades too.
#[test]
fn test_emergency_stop_closes_trades_whose_entry_filled_since_the_last_cycle() {
    let db = db();
    let settings = loose_settings();
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db.store),
        date("2020-02-03"),
        date("2020-02-14"),
        Some(7),
    )
    .unwrap();
    let rt = runtime();
    let stop = AtomicBool::new(false);
    let mut reports: Vec<CycleReport> = Vec::new();
    let until = sim.until;
    let queued = rt
        .block_on(run(
            &mut sim.engine,
            &sim.clock,
            until,
            Pace::AsFastAsPossible,
            &stop,
            |r| {
                if r.entries_sent > 0 && r.time.unwrap() >= utc("2020-02-05 00:00") {
                    stop.store(true, Ordering::SeqCst);
                }
                reports.push(r.clone());
            },
        ))
        .unwrap();
    assert_eq!(queued, Stopped::Requested);
    let sent_at = reports.last().unwrap().time.unwrap();
    let working: Vec<Order> = db
        .store
        .all_orders()
        .unwrap()
        .into_iter()
        .filter(|o| o.intent.purpose == OrderPurpose::Open && o.intent.created_at == sent_at)
        .collect();
    assert!(!working.is_empty());
    request(&db.store, sent_at, ControlAction::EmergencyStop, true);
    let stop_cycle = next_cycle(&sim);
    let mut after = Vec::new();
    drive(
        &rt,
        &mut sim,
        stop_cycle + Duration::minutes(60),
        &mut after,
    );
    assert_eq!(sim.engine.governor().state(), TradingState::Halted);
    let filled: Vec<&Order> = working.iter().collect();
    for o in filled {
        let o = db.store.order(&o.intent.order_ref).unwrap().unwrap();
        if o.filled_quantity == 0 {
            continue;
        }
        let t = db
            .store
            .trade(o.intent.trade_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            t.exit_reason,
            Some(ExitReason::Emergency),
            "trade {} opened just before the stop was left {:?}",
            t.trade_id,
            t.status
        );
    }
    assert!(
        open_trades(&db.store).is_empty(),
        "{:#?}",
        open_trades(&db.store)
    );
}

/// An emergency stop queued at night: halted at once; nothing can be sent
/// while the market is closed, so the positions are closed at the next
/// session's open, with reason `emergency`, and stay flat until a resume.
#[test]
fn test_emergency_stop_at_night_flattens_at_the_next_open() {
    let db = db();
    let settings = loose_settings();
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db.store),
        date("2020-02-03"),
        date("2020-02-14"),
        Some(7),
    )
    .unwrap();
    let rt = runtime();
    let mut reports = Vec::new();
    drive(&rt, &mut sim, utc("2020-02-10 23:00"), &mut reports);
    let open_before = open_trades(&db.store);
    assert!(!open_before.is_empty());
    let id = request(
        &db.store,
        sim.clock.now(),
        ControlAction::EmergencyStop,
        true,
    );
    let stop_cycle = next_cycle(&sim);
    assert_eq!(sim.engine.schedule().phase(stop_cycle), Phase::Closed);
    let mut after = Vec::new();
    drive(&rt, &mut sim, stop_cycle, &mut after);
    assert_eq!(sim.engine.governor().state(), TradingState::Halted);
    let (handled, outcome) = control_row(&db.url, id);
    assert_eq!(handled, Some(stop_cycle));
    let outcome = outcome.unwrap();
    assert!(outcome.contains("next session"), "{outcome}");
    let orders = db.store.all_orders().unwrap();
    assert!(
        !orders
            .iter()
            .any(|o| o.status == OrderStatus::Rejected || o.intent.created_at >= stop_cycle),
        "an order sent into the closed market"
    );
    assert!(sim.engine.memory().flatten);

    let open = sim
        .engine
        .schedule()
        .calendar()
        .session_open(date("2020-02-11"))
        .unwrap();
    drive(&rt, &mut sim, open + Duration::minutes(60), &mut after);
    assert!(
        open_trades(&db.store).is_empty(),
        "{:#?}",
        open_trades(&db.store)
    );
    let all = decisions(&db.store);
    for t in &open_before {
        let t = db.store.trade(&t.trade_id).unwrap().unwrap();
        assert_eq!(t.exit_reason, Some(ExitReason::Emergency), "{t:#?}");
        assert!(t.exit_time.unwrap() <= open + Duration::minutes(15));
        assert!(
            all.iter().any(|d| d.time == open
                && d.subject == t.trade_id
                && d.decision == "exit:emergency")
        );
    }
    let orders = db.store.all_orders().unwrap();
    assert!(entries(&orders).all(|o| o.intent.created_at < stop_cycle));
    // The cycle records say why.
    let record = all
        .iter()
        .find(|d| d.time == open && d.kind == DecisionKind::Action)
        .unwrap();
    assert_eq!(criterion(record, "trading_state").value, "halted");
    assert_eq!(criterion(record, "flatten").value, "pending");
    // A resume ends the flatten.
    request(&db.store, sim.clock.now(), ControlAction::Resume, false);
    let resume_cycle = next_cycle(&sim);
    drive(&rt, &mut sim, resume_cycle, &mut after);
    assert!(!sim.engine.memory().flatten);
    assert_eq!(sim.engine.governor().state(), TradingState::Active);
}

// ------------------------------------------------------------ 4. schedule

#[test]
fn test_orders_only_in_sessions_and_no_entry_in_the_last_minutes() {
    let db = db();
    let settings = loose_settings();
    let no_entries = settings.schedule.no_entries_last_minutes;
    // Across the end of daylight saving time (Nov 3), Thanksgiving (Nov
    // 28) and its early close (Nov 29, 13:00).
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db.store),
        date("2019-10-28"),
        date("2019-12-06"),
        Some(3),
    )
    .unwrap();
    let rt = runtime();
    let mut reports = Vec::new();
    let until = sim.until;
    drive(&rt, &mut sim, until, &mut reports);

    let cal = NyseCalendar::new();
    let ny = |t: DateTime<Utc>| execution::trade_log::exchange_date(t);
    let orders = db.store.all_orders().unwrap();
    assert!(entries(&orders).count() >= 10, "{} orders", orders.len());
    assert!(
        orders
            .iter()
            .any(|o| o.intent.purpose == OrderPurpose::Close)
    );
    for o in &orders {
        let t = o.intent.created_at;
        let day = ny(t);
        assert!(
            cal.is_session(day),
            "{} on {day}, no session",
            o.intent.order_ref
        );
        let (open, close) = (
            cal.session_open(day).unwrap(),
            cal.session_close(day).unwrap(),
        );
        assert!(
            open <= t && t < close,
            "{} at {t}, outside {open}..{close}",
            o.intent.order_ref
        );
        if o.intent.purpose == OrderPurpose::Open {
            assert!(
                t < close - Duration::minutes(no_entries),
                "entry {} at {t}, within {no_entries} minutes of the close {close}",
                o.intent.order_ref
            );
        }
    }
    // The cycles: 15 minutes apart in sessions, on the open's grid, the
    // close the last; scans only in the open phase.
    let schedule = sim.engine.schedule();
    let mut closing_cycles = 0;
    for r in &reports {
        let t = r.time.unwrap();
        let phase = schedule.phase(t);
        if phase == Phase::Closing {
            closing_cycles += 1;
        }
        if r.actions.contains(&Action::ScanEntries) || r.entries_sent > 0 {
            assert_eq!(phase, Phase::Open, "a scan at {t}");
        }
        if phase != Phase::Closed {
            let open = cal.session_open(ny(t)).unwrap();
            assert_eq!((t - open).num_minutes() % 15, 0, "{t} off the grid");
        }
    }
    assert!(closing_cycles > 0);
    // The early close: the last cycle of Nov 29 is at 13:00 New York.
    let early = cal.session_close(date("2019-11-29")).unwrap();
    assert_eq!(early, utc("2019-11-29 18:00"));
    assert!(reports.iter().any(|r| r.time == Some(early)));
    assert!(!reports.iter().any(|r| r.time.unwrap() > early
        && r.time.unwrap() < utc("2019-11-29 21:00")
        && schedule.phase(r.time.unwrap()) != Phase::Closed));
    // No cycle on Thanksgiving is in a session.
    assert!(
        reports
            .iter()
            .filter(|r| ny(r.time.unwrap()) == date("2019-11-28"))
            .all(|r| schedule.phase(r.time.unwrap()) == Phase::Closed)
    );
}

// ------------------------------------------- 5. the daily-loss breaker

/// `one_at_a_time`: one position at most, so no second order is checked
/// in the cycle of the first and the breaker trips at a cycle's start;
/// otherwise it trips in the scan that filled the first entry.
fn breaker_run(action: BreakerAction, one_at_a_time: bool) -> (DateTime<Utc>, DateTime<Utc>) {
    let db = db();
    let mut settings = loose_settings();
    if one_at_a_time {
        settings.strategy.max_positions = 1;
    }
    let mut limits = settings.risk_limits();
    // Any loss trips it (the half spread and commission of the first fill
    // do).
    limits.max_daily_loss = -0.0001;
    limits.daily_loss_action = action;
    let mut sim = sim_run_with_limits(
        &settings,
        Arc::clone(&db.store),
        date("2020-02-03"),
        date("2020-02-12"),
        Some(7),
        limits,
    )
    .unwrap();
    let rt = runtime();
    let mut reports = Vec::new();
    let until = sim.until;
    drive(&rt, &mut sim, until, &mut reports);

    // The first cycle that reads an account down 0.01% on its session's
    // start (the account a cycle reads first is in its report).
    let schedule = sim.engine.schedule();
    let mut start: Option<(NaiveDate, i64)> = None;
    let mut first_loss = None;
    for r in &reports {
        let t = r.time.unwrap();
        let day = execution::trade_log::exchange_date(t);
        if schedule.phase(t) != Phase::Closed && start.is_none_or(|(d, _)| d != day) {
            start = Some((day, r.net_liquidation_cents));
        }
        if let Some((_, s)) = start
            && (r.net_liquidation_cents as f64 / s as f64 - 1.0) <= -0.0001 + 1e-9
        {
            first_loss = Some(t);
            break;
        }
    }
    let first_loss = first_loss.expect("no loss in the window");
    let want = match action {
        BreakerAction::HaltTrading => "halted",
        BreakerAction::ReduceOnly => "reduce_only",
    };
    let states = trading_states(&db.url);
    assert!(!states.is_empty(), "no trading state written");
    let (tripped_at, state, cause, actor) = states[0].clone();
    assert_eq!(state, want);
    assert!(cause.starts_with("daily loss breaker"), "{cause}");
    // Written in the cycle that first saw the loss: the one that read it
    // at its start, or an earlier one whose own entry filled at once (the
    // governor reads the account again before the next order) — never
    // later.
    assert!(
        tripped_at <= first_loss,
        "tripped at {tripped_at}, the loss was read at {first_loss}"
    );
    if tripped_at < first_loss {
        let r = reports.iter().find(|r| r.time == Some(tripped_at)).unwrap();
        assert!(r.entries_sent > 0, "{r:#?}");
        let pct: f64 = cause
            .split('(')
            .nth(1)
            .and_then(|x| x.split('%').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(pct <= -0.01, "{cause}");
    }
    assert_eq!(actor, "risk");
    assert_eq!(states.len(), 1, "breakers only escalate: {states:#?}");
    let all = decisions(&db.store);
    let change = all
        .iter()
        .position(|d| d.kind == DecisionKind::TradingState)
        .unwrap();
    assert_eq!(
        (all[change].time, all[change].decision.as_str()),
        (tripped_at, want)
    );
    // No entry approved after the change, in that cycle or later.
    assert!(
        !all[change..]
            .iter()
            .any(|d| d.kind == DecisionKind::Entry && d.decision == "risk_approved"),
        "an entry approved after the breaker tripped"
    );
    // The first cycle record written after the change shows the new state
    // and no scan (the tripping cycle's own, when the breaker ran at its
    // start; the next one's, when it tripped during the scan).
    let record = all[change..]
        .iter()
        .find(|d| d.kind == DecisionKind::Action)
        .unwrap();
    assert_eq!(
        record.time,
        if tripped_at == first_loss {
            tripped_at
        } else {
            reports
                .iter()
                .map(|r| r.time.unwrap())
                .find(|t| *t > tripped_at)
                .unwrap()
        }
    );
    assert_eq!(criterion(record, "trading_state").value, want);
    assert!(!record.decision.contains("scan_entries"), "{record:#?}");
    // No entry order after it, in that session or later; exits go on.
    let orders = db.store.all_orders().unwrap();
    assert!(entries(&orders).any(|o| o.intent.created_at <= tripped_at));
    assert!(
        entries(&orders).all(|o| o.intent.created_at <= tripped_at),
        "an entry after the breaker tripped"
    );
    assert!(
        reports
            .iter()
            .filter(|r| r.time.unwrap() > tripped_at)
            .all(|r| r.entries_sent == 0 && !r.actions.contains(&Action::ScanEntries))
    );
    assert_eq!(sim.engine.governor().state().as_str(), want);
    if action == BreakerAction::ReduceOnly {
        assert!(
            orders.iter().any(
                |o| o.intent.purpose == OrderPurpose::Close && o.intent.created_at > tripped_at
            ),
            "no exit in reduce-only"
        );
    }
    (tripped_at, first_loss)
}

#[test]
fn test_daily_loss_breaker_halts_in_the_cycle_that_sees_the_loss() {
    let (tripped, first_read) = breaker_run(BreakerAction::HaltTrading, false);
    assert!(tripped < first_read, "expected a trip during the scan");
    let (tripped, first_read) = breaker_run(BreakerAction::HaltTrading, true);
    assert_eq!(tripped, first_read, "expected a trip at a cycle's start");
}

#[test]
fn test_daily_loss_breaker_reduce_only_keeps_exits_and_stops_entries() {
    breaker_run(BreakerAction::ReduceOnly, false);
}

// --------------------------------------------------------- 6. determinism

#[test]
fn test_same_settings_and_seed_give_the_same_trades_and_orders() {
    let settings = loose_settings();
    let once = || {
        let db = db();
        let mut sim = sim_run(
            &settings,
            Arc::clone(&db.store),
            date("2020-02-03"),
            date("2020-02-21"),
            Some(5),
        )
        .unwrap();
        let mut reports = Vec::new();
        let until = sim.until;
        drive(&runtime(), &mut sim, until, &mut reports);
        let trades = trades(&db.store);
        let orders = db.store.all_orders().unwrap();
        let decisions = decisions(&db.store);
        let memory = sim.engine.memory().clone();
        (reports, trades, orders, decisions, memory)
    };
    let (ra, ta, oa, da, ma) = once();
    let (rb, tb, ob, db_, mb) = once();
    assert!(ta.len() >= 5 && oa.len() >= 10, "{} trades", ta.len());
    assert_eq!(ra, rb);
    assert_eq!(ta, tb);
    assert_eq!(oa.len(), ob.len());
    for (a, b) in oa.iter().zip(&ob) {
        assert_eq!(a.intent.order_ref, b.intent.order_ref);
        assert_eq!(a.intent.limit_price, b.intent.limit_price);
        assert_eq!(a.status, b.status, "{}", a.intent.order_ref);
        assert_eq!(a, b);
    }
    assert_eq!(da, db_);
    assert_eq!(ma, mb);
}

// ------------------------------------------------------ exploration band

/// Puts up to 20% beyond each end of the OTM and DTE range are quoted and
/// recorded as shadow trades (skipped: outside the range), and never
/// traded; puts in the range keep the strategy's own reasons.
#[test]
fn test_exploration_band_records_shadows_beyond_the_range_and_never_trades_them() {
    use core_domain::LearningRepository;
    let banded = db();
    let mut settings = loose_settings();
    settings.strategy.otm_range.min = 0.10;
    settings.strategy.otm_range.max = 0.20;
    settings.strategy.dte_range.min = 10;
    settings.strategy.dte_range.max = 20;
    let mut sim = sim_run(
        &settings,
        Arc::clone(&banded.store),
        date("2020-02-03"),
        date("2020-02-14"),
        Some(3),
    )
    .unwrap();
    let rt = runtime();
    let until = sim.until;
    drive(&rt, &mut sim, until, &mut Vec::new());

    let in_range =
        |otm: f64, dte: i64| (0.10 - 1e-6..=0.20 + 1e-6).contains(&otm) && (10..=20).contains(&dte);
    let shadows = banded.store.shadows(i64::MAX).unwrap();
    let (inside, outside): (Vec<_>, Vec<_>) =
        shadows.iter().partition(|s| in_range(s.otm_pct, s.dte));
    assert!(
        !inside.is_empty() && !outside.is_empty(),
        "{} shadows",
        shadows.len()
    );
    for s in &outside {
        assert_eq!(s.origin, core_domain::ShadowOrigin::Skipped, "{s:?}");
        assert_eq!(s.reason, orchestrator::engine::EXPLORED_REASON, "{s:?}");
        // Within the band: 20% beyond each end (DTE rounded outward; the
        // OTM measured at the quote, so allow a little drift).
        assert!((0.075..=0.245).contains(&s.otm_pct), "{s:?}");
        assert!((8..=24).contains(&s.dte), "{s:?}");
    }
    assert!(
        inside
            .iter()
            .all(|s| s.reason != orchestrator::engine::EXPLORED_REASON)
    );
    let trades = banded.store.trades(&TradeFilter::default()).unwrap();
    assert!(!trades.is_empty());
    for t in &trades {
        assert!(
            (0.10 - 0.01..=0.20 + 0.01).contains(&t.otm_pct) && (10..=20).contains(&t.dte),
            "a trade outside the range: {t:?}"
        );
    }

    // Without the band, nothing outside the range is quoted or recorded.
    let db2 = db();
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db2.store),
        date("2020-02-03"),
        date("2020-02-14"),
        Some(3),
    )
    .unwrap();
    sim.engine.params_mut().exploration_band = 0.0;
    drive(&rt, &mut sim, until, &mut Vec::new());
    let shadows = db2.store.shadows(i64::MAX).unwrap();
    assert!(!shadows.is_empty());
    assert!(
        shadows
            .iter()
            .all(|s| s.reason != orchestrator::engine::EXPLORED_REASON)
    );
}

// ------------------------------------------ the wait between cycles

/// A clock whose wait for the next cycle lasts an hour of wall time, as
/// the wall clock's does at night (the time itself is the exchange's).
struct NightClock<'a>(&'a market_sim::ExchangeClock);

impl Clock for NightClock<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    async fn sleep_until(&self, _until: DateTime<Utc>) {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

/// Issue 12, defect 9: in IBKR mode the runner slept up to an hour
/// without looking at SIGTERM or operator requests. Now an operator
/// request runs a cycle at once and the stop flag ends the wait within a
/// second, whatever the clock's wait.
#[test]
fn test_the_wait_between_cycles_wakes_for_requests_and_the_stop_flag() {
    let db = db();
    let settings = loose_settings();
    let mut sim = sim_run(
        &settings,
        Arc::clone(&db.store),
        date("2020-02-03"),
        date("2020-02-21"),
        Some(7),
    )
    .unwrap();
    let rt = runtime();
    let stop = AtomicBool::new(false);
    let store = Arc::clone(&db.store);
    let queued_at = sim.clock.now();
    let started = std::time::Instant::now();
    let clock = NightClock(&sim.clock);
    let (stopped, handled) = rt.block_on(async {
        let runner = run(
            &mut sim.engine,
            &clock,
            DateTime::<Utc>::MAX_UTC,
            Pace::AsFastAsPossible,
            &stop,
            |_| {},
        );
        let operator = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let id = request(&store, queued_at, ControlAction::EmergencyStop, false);
            // handled by a cycle run for it, not an hour later
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let handled = loop {
                if store.pending_control_requests().unwrap().is_empty() {
                    break true;
                }
                if std::time::Instant::now() > deadline {
                    break false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            stop.store(true, Ordering::SeqCst);
            (id, handled)
        };
        let (stopped, (_, handled)) =
            tokio::time::timeout(std::time::Duration::from_secs(20), async {
                tokio::join!(runner, operator)
            })
            .await
            .expect("the runner slept through the stop flag");
        (stopped, handled)
    });
    assert!(handled, "the operator request waited for the clock");
    assert_eq!(stopped.unwrap(), Stopped::Requested);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sim.engine.governor().state(), TradingState::Halted);
}
