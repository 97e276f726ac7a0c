//! The risk rules hold on a backtest over real history, checked from the
//! database alone: a loose strategy (it would open 20 positions) under a
//! tighter governor (6 open, 3 a day) — the limits bind and are never
//! exceeded; every profit-target exit is at ≤ 50% of the premium, every
//! stop at ≥ 3×, every time exit at ≤ 3 DTE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::NaiveDate;
use core_domain::{AuditRepository, DecisionKind, Money};
use orchestrator::backtest::{RuleLimits, check_rules, results};
use orchestrator::metrics::MetricsParams;
use orchestrator::{Pace, Stopped, run};

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn test_limits_bind_and_hold_on_a_year_of_real_history_read_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("risk.db").display().to_string();
    let store = Arc::new(store::Store::open_and_migrate(&url).unwrap());
    store.relax_durability_for_research().unwrap();

    let mut settings = settings::Settings::default();
    let s = &mut settings.strategy;
    s.otm_range.min = 0.05;
    s.otm_range.max = 0.25;
    s.premium_range.min = 0.05;
    s.premium_range.max = 5.0;
    s.dte_range.min = 5;
    s.dte_range.max = 30;
    s.max_positions = 20;
    s.min_open_interest = 0;
    s.max_spread_pct = 1.0;
    let mut limits = settings.risk_limits();
    limits.max_open_positions = 6;
    limits.max_positions_per_day = 3;
    limits.max_sector_concentration = 1.0;
    limits.max_correlation = 1.0;
    limits.max_portfolio_var_95 = 1.0;

    let (from, to) = (date("2019-01-02"), date("2019-12-31"));
    let mut sim = traderd::wiring::sim_run_with_limits(
        &settings,
        Arc::clone(&store),
        from,
        to,
        Some(11),
        limits.clone(),
    )
    .unwrap();
    let start = sim.exchange.now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = AtomicBool::new(false);
    let stopped = rt
        .block_on(run(
            &mut sim.engine,
            &sim.clock,
            sim.until,
            Pace::AsFastAsPossible,
            &stop,
            |_| {},
        ))
        .unwrap();
    assert_eq!(stopped, Stopped::Reached);

    // From the database alone.
    let res = results(
        &store,
        start,
        sim.until,
        Money::from_cents(10_000_000),
        &MetricsParams::default(),
    )
    .unwrap();
    let report = check_rules(
        &res.trades,
        &RuleLimits {
            max_open: 6,
            max_new_per_day: 3,
            profit_target: 0.5,
            stop_loss: -2.0,
            time_exit_dte: 3,
            slippage_tolerance: 0.0,
        },
    );
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.trades >= 20, "{} trades", report.trades);
    assert_eq!(report.max_open_seen, 6, "the open-positions limit binds");
    assert_eq!(report.max_new_in_a_day, 3, "the per-day limit binds");
    let reasons: Vec<&str> = report
        .exits_by_reason
        .iter()
        .map(|(r, _)| r.as_str())
        .collect();
    for r in ["profit_target", "stop_loss", "time_exit"] {
        assert!(reasons.contains(&r), "no {r} exit in {reasons:?}");
    }
    // The governor refused what the strategy proposed beyond the limits,
    // on record.
    let refusals = store
        .recent_decisions(100_000)
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == DecisionKind::RiskRefusal)
        .collect::<Vec<_>>();
    let failed = |name: &str| {
        refusals
            .iter()
            .any(|d| d.criteria.iter().any(|c| c.name == name && !c.passed))
    };
    assert!(
        failed("open_positions_after"),
        "no refusal for open positions"
    );
    assert!(
        failed("new_positions_today_after"),
        "no refusal for the daily limit"
    );
}
