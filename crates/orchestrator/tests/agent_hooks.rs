//! The engine's agent hooks against a fake Messages API: the weekly
//! analysis runs once per slot and stores its report; the reasoner may
//! leave out entries (never exits), reads tools, is recorded with its
//! tokens, and falls back to the rules on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use agents_claude::analysis::AnalysisInput;
use agents_claude::fake::{FakeMessagesApi, FakeResponse, sample_trades};
use agents_claude::{AgentConfig, Analyst, ApiKey, Pricing, RetryPolicy};
use chrono::{NaiveTime, TimeZone, Utc, Weekday};
use core_domain::{AuditRepository, TradeRepository};
use learning::experiments::{Governor, ParameterSet};
use learning::patterns::PatternParams;
use orchestrator::{Action, AgentHooks};
use serde_json::json;
use store::Store;

fn analyst(base_url: &str, key: bool) -> Arc<Analyst> {
    Arc::new(
        Analyst::new(
            AgentConfig {
                enabled: true,
                model: "claude-test".into(),
                max_tokens: 512,
                base_url: base_url.into(),
                timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_retries: 2,
                    base_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(2),
                    deadline: Duration::from_secs(2),
                },
                monthly_budget_usd: 0.0,
                pricing: Pricing {
                    input_per_mtok: 2.0,
                    output_per_mtok: 10.0,
                },
            },
            if key { ApiKey::new("sk-test") } else { None },
        )
        .unwrap(),
    )
}

fn input_builder() -> Box<orchestrator::agent::InputBuilder> {
    Box::new(|store: &Store, now, parameters: ParameterSet| {
        Ok(AnalysisInput {
            now,
            window_days: None,
            trades: store.trades(&core_domain::TradeFilter::default()).unwrap(),
            parameters,
            governor: Governor {
                min_days_between_changes: 30,
                max_shift: 0.2,
            },
            history: Vec::new(),
            experiments: Vec::new(),
            pattern_params: PatternParams::default(),
        })
    })
}

#[tokio::test]
async fn the_weekly_analysis_runs_once_per_slot_and_not_at_start() {
    let store = Store::open_and_migrate(":memory:").unwrap();
    for t in sample_trades(40) {
        store.insert_trade(&t).unwrap();
    }
    // No key: the statistical report is stored.
    let mut hooks = AgentHooks::off().with_weekly(
        analyst("http://127.0.0.1:9", false),
        Weekday::Sat,
        NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        input_builder(),
    );
    let params = || ParameterSet::naked_put_defaults();
    // Monday: the last slot (Saturday) is before the first cycle seen.
    let monday = Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap();
    assert!(hooks.after_cycle(&store, monday, params()).await.is_none());
    // Saturday 08:59 New York: not yet.
    let before = Utc.with_ymd_and_hms(2026, 12, 5, 13, 59, 0).unwrap();
    assert!(hooks.after_cycle(&store, before, params()).await.is_none());
    // Saturday 09:00 New York (14:00 UTC): runs.
    let slot = Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap();
    let line = hooks.after_cycle(&store, slot, params()).await.unwrap();
    assert!(line.contains("statistics"), "{line}");
    // Once per slot.
    let later = Utc.with_ymd_and_hms(2026, 12, 6, 14, 0, 0).unwrap();
    assert!(hooks.after_cycle(&store, later, params()).await.is_none());
    let reports = store.analyst_reports(10).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].trigger, "weekly");
    assert_eq!(reports[0].source, "statistics");
    assert_eq!(reports[0].created_at, slot);
    // The next week's slot runs again.
    let next = Utc.with_ymd_and_hms(2026, 12, 12, 15, 0, 0).unwrap();
    assert!(hooks.after_cycle(&store, next, params()).await.is_some());
    assert_eq!(store.analyst_reports(10).unwrap().len(), 2);
}

fn context() -> serde_json::Value {
    json!({
        "state": {"phase": "open", "trading_state": "active", "open_trades": 2, "free_slots": 3},
        "positions": {"positions": [{"trade_id": "T-9", "contract": "XOM 2026-12-18 100.00 P"}]},
        "events": ["VIX spike: 31"],
    })
}

#[tokio::test]
async fn the_reasoner_reads_tools_may_skip_entries_but_never_exits() {
    let tool_call = FakeResponse::ok(&json!({
        "id": "m1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [
            {"type": "text", "text": "Looking at the events."},
            {"type": "tool_use", "id": "tu_1", "name": "get_events", "input": {}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 500, "output_tokens": 20, "cache_creation_input_tokens": 400}
    }));
    let answer = FakeResponse::message(
        &json!({"actions": ["manage_exits"], "reason": "VIX spike: no new entries today"})
            .to_string(),
        "end_turn",
        60,
        30,
    );
    let server = FakeMessagesApi::scripted(vec![tool_call, answer])
        .await
        .unwrap();
    let store = Store::open_and_migrate(":memory:").unwrap();
    let mut hooks =
        AgentHooks::off().with_reasoner(analyst(server.base_url(), true), Duration::from_secs(5));
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 15, 0, 0).unwrap();
    let rules = vec![
        Action::CancelStale,
        Action::ManageExits,
        Action::ScanEntries,
    ];
    let chosen = hooks.reason(&store, now, rules, context).await;
    // Entries left out; exits and cancels kept whatever the model said.
    assert_eq!(chosen, vec![Action::CancelStale, Action::ManageExits]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let first = reqs[0].json();
    let tools = first["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["get_state", "get_positions", "get_events", "get_statistics"]
    );
    assert_eq!(tools[3]["cache_control"]["type"], "ephemeral");
    assert_eq!(first["system"][0]["cache_control"]["type"], "ephemeral");
    // The tool result went back; no trade id left the process.
    let second = reqs[1].json();
    let result = &second["messages"][2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "tu_1");
    assert!(result["content"].as_str().unwrap().contains("VIX spike"));
    for r in &reqs {
        assert!(!r.body.contains("T-9"));
    }
    // Recorded with the model's reason and tokens.
    let d = store.recent_decisions(5).unwrap();
    let d = d.iter().find(|d| d.subject == "claude").unwrap();
    assert_eq!(d.reason, "VIX spike: no new entries today");
    assert_eq!(d.decision, "cancel_stale+manage_exits");
    assert_eq!(d.context["input_tokens"], 560);
    assert_eq!(
        d.context["rules_choice"],
        "cancel_stale+manage_exits+scan_entries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_decide_when_the_reasoner_fails() {
    let store = Store::open_and_migrate(":memory:").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 15, 0, 0).unwrap();
    let rules = vec![Action::ManageExits, Action::ScanEntries];
    // An action the rules did not choose.
    let server = FakeMessagesApi::scripted(vec![FakeResponse::message(
        &json!({"actions": ["scan_entries", "learn"], "reason": "x"}).to_string(),
        "end_turn",
        10,
        10,
    )])
    .await
    .unwrap();
    let mut hooks =
        AgentHooks::off().with_reasoner(analyst(server.base_url(), true), Duration::from_secs(5));
    assert_eq!(
        hooks.reason(&store, now, rules.clone(), context).await,
        rules
    );
    // Its tokens count all the same.
    let epoch = Utc.timestamp_opt(0, 0).unwrap();
    assert!(store.agent_spend_micros_since(epoch).unwrap() > 0);
    // Overloaded until the deadline.
    let server = FakeMessagesApi::scripted(vec![FakeResponse::error(529, "overloaded_error", "o")])
        .await
        .unwrap();
    let mut hooks =
        AgentHooks::off().with_reasoner(analyst(server.base_url(), true), Duration::from_secs(5));
    assert_eq!(
        hooks.reason(&store, now, rules.clone(), context).await,
        rules
    );
    // A timeout: the fake server answers only after the reasoner's limit.
    let server = FakeMessagesApi::start(|_, _| {
        std::thread::sleep(Duration::from_millis(300));
        FakeResponse::message("{}", "end_turn", 1, 1)
    })
    .await
    .unwrap();
    let mut hooks = AgentHooks::off()
        .with_reasoner(analyst(server.base_url(), true), Duration::from_millis(50));
    assert_eq!(
        hooks.reason(&store, now, rules.clone(), context).await,
        rules
    );
    // No key: no reasoner at all.
    let mut hooks = AgentHooks::off()
        .with_reasoner(analyst("http://127.0.0.1:9", false), Duration::from_secs(1));
    assert!(!hooks.is_on());
    assert_eq!(
        hooks.reason(&store, now, rules.clone(), context).await,
        rules
    );
    assert!(store.recent_decisions(5).unwrap().is_empty());
}
