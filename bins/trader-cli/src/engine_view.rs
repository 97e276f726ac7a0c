//! What the engine is doing, read from its working memory in the database
//! (the keys of [`orchestrator::engine::keys`]): the engine's memory
//! (cycles, session, regime, VIX, recent actions and events), its goals,
//! and the position monitor's last report. `status` and `positions` show
//! it; the engine (`traderd`, `trader-cli backtest`) writes it.

use anyhow::Result;
use chrono::{DateTime, Utc};
use core_domain::WorkingMemory;
use execution::{Alert, MonitorReport, PositionView};
use orchestrator::engine::keys;
use orchestrator::report::fmt_money;
use orchestrator::{EngineEvent, Memory};
use serde_json::{Value, json};
use store::{ControlAction, ControlRequest, Store};

use crate::output::{opt, table};

/// How many recent actions and events `status` prints.
const SHOWN: usize = 5;

/// The engine's working memory as stored.
#[derive(Debug, Default)]
pub struct EngineView {
    /// The engine's memory (`engine`); `None` if the engine never ran on
    /// this database.
    pub memory: Option<Memory>,
    /// The goals (`goals`, else those in the memory).
    pub goals: Vec<String>,
    /// The position monitor's last report (`last_monitor`).
    pub monitor: Option<MonitorReport>,
    /// Keys that could not be read, each with the reason and what to do.
    pub problems: Vec<String>,
}

/// Reads one key and decodes it; a value that does not decode is a
/// problem to show, not a failure of the command.
fn recall_as<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
    problems: &mut Vec<String>,
) -> Result<Option<T>> {
    let Some(value) = store.recall(key)? else {
        return Ok(None);
    };
    match serde_json::from_value(value) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            problems.push(format!(
                "working memory key `{key}` is unreadable ({e}); it was written by another \
                 version of the engine: run this version's `traderd` to rewrite it"
            ));
            Ok(None)
        }
    }
}

/// Reads the engine's working memory from `store`.
pub fn load(store: &Store) -> Result<EngineView> {
    let mut problems = Vec::new();
    let memory: Option<Memory> = recall_as(store, keys::ENGINE, &mut problems)?;
    let goals: Option<Vec<String>> = recall_as(store, keys::GOALS, &mut problems)?;
    let monitor: Option<MonitorReport> = recall_as(store, keys::LAST_MONITOR, &mut problems)?;
    let goals = goals
        .or_else(|| memory.as_ref().map(|m| m.goals.clone()))
        .unwrap_or_default();
    Ok(EngineView {
        memory,
        goals,
        monitor,
        problems,
    })
}

/// When an engine event happened.
fn event_time(e: &EngineEvent) -> DateTime<Utc> {
    match e {
        EngineEvent::VixSpike { time, .. }
        | EngineEvent::RegimeShift { time, .. }
        | EngineEvent::TradeClosed { time, .. }
        | EngineEvent::SystemError { time, .. } => *time,
    }
}

/// An alert's short name (`in_the_money`, `at_stop`, ...).
pub fn alert_kind(a: &Alert) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.get("alert").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "alert".to_string())
}

fn alert_kinds(p: &PositionView) -> String {
    if p.alerts.is_empty() {
        "-".to_string()
    } else {
        p.alerts
            .iter()
            .map(alert_kind)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A pending control request as one line.
pub fn describe_request(r: &ControlRequest) -> String {
    let what = match (r.action, r.flatten) {
        (ControlAction::EmergencyStop, true) => "emergency stop + flatten",
        (ControlAction::EmergencyStop, false) => "emergency stop",
        (ControlAction::Resume, _) => "resume",
    };
    format!(
        "#{} {what} by {} at {}: {}",
        r.id.map_or_else(|| "?".to_string(), |i| i.to_string()),
        r.actor,
        r.time.format("%Y-%m-%d %H:%M:%S UTC"),
        r.reason
    )
}

/// The `engine` object of `status --json`: `null` if the engine never ran.
pub fn status_json(view: &EngineView, pending: &[ControlRequest]) -> Value {
    let engine = view.memory.as_ref().map(|m| {
        json!({
            "cycles": m.cycles,
            "last_cycle": m.last_cycle,
            "session": m.session,
            "regime": m.regime,
            "vix": m.vix,
            "last_actions": m.last_actions,
            "recent_actions": m.recent_actions,
            "recent_events": m.recent_events,
            "position_mismatches": m.position_mismatches,
            "cancels_pending": m.cancels_pending,
        })
    });
    json!({
        "engine": engine,
        "goals": view.goals,
        "monitor": view.monitor,
        "pending_control_requests": pending,
        "working_memory_problems": view.problems,
    })
}

/// The engine lines of `status`.
pub fn print_status(view: &EngineView, pending: &[ControlRequest]) {
    for p in &view.problems {
        println!("  !           {p}");
    }
    let Some(m) = &view.memory else {
        println!("  engine      has not run on this database; start it with `traderd`");
        print_requests(pending);
        return;
    };
    let last = m.last_cycle.map_or_else(
        || "no cycle yet".to_string(),
        |t| format!("last cycle {}", t.format("%Y-%m-%d %H:%M UTC")),
    );
    let session = m
        .session
        .map_or_else(String::new, |s| format!(", session {s}"));
    println!("  engine      {last} (cycle {}){session}", m.cycles);
    if !m.last_actions.is_empty() {
        let names: Vec<&str> = m.last_actions.iter().map(|a| a.as_str()).collect();
        println!("              last actions: {}", names.join(", "));
    }
    for (i, mismatch) in m.position_mismatches.iter().enumerate() {
        let label = if i == 0 { "MISMATCH" } else { "" };
        println!("  {label:<12}{mismatch}");
    }
    if !m.position_mismatches.is_empty() {
        println!(
            "              trading is reduce-only: settle the position in TWS, then `trader-cli resume`"
        );
    }
    if !m.cancels_pending.is_empty() {
        println!(
            "  cancels     {} to send at reconnect (emergency stop): {}",
            m.cancels_pending.len(),
            m.cancels_pending.join(", ")
        );
    }
    println!(
        "  market      regime {}, VIX {}",
        opt(m.regime),
        opt(m.vix.map(|v| format!("{v:.2}")))
    );
    for (i, g) in view.goals.iter().enumerate() {
        let label = if i == 0 { "goals" } else { "" };
        println!("  {label:<12}{g}");
    }
    if m.recent_actions.is_empty() {
        println!("  actions     none yet");
    } else {
        println!(
            "  actions     latest {} of {}:",
            m.recent_actions.len().min(SHOWN),
            m.recent_actions.len()
        );
        for a in m.recent_actions.iter().rev().take(SHOWN) {
            println!("    {a}");
        }
    }
    if m.recent_events.is_empty() {
        println!("  events      none yet");
    } else {
        println!(
            "  events      latest {} of {}:",
            m.recent_events.len().min(SHOWN),
            m.recent_events.len()
        );
        for e in m.recent_events.iter().rev().take(SHOWN) {
            println!(
                "    {} {}: {}",
                event_time(e).format("%Y-%m-%d %H:%M"),
                e.kind(),
                e.describe()
            );
        }
    }
    match &view.monitor {
        None => println!("  book        no monitor report yet"),
        Some(r) => {
            let g = &r.greeks;
            // Greeks are per year (theta) and per share × 100 × position.
            println!(
                "  book        {} open, unrealized P&L {}; delta {:.1} shares, theta ${:.2}/day (as of {})",
                r.position_count,
                fmt_money(r.unrealized_pnl),
                g.delta,
                g.theta / 365.0,
                r.time.format("%Y-%m-%d %H:%M UTC")
            );
            for p in &r.positions {
                println!(
                    "    {}  {}  {} DTE  P&L {}  alerts: {}",
                    p.trade_id,
                    p.contract,
                    p.dte,
                    p.unrealized_pnl.map_or_else(|| "-".to_string(), fmt_money),
                    alert_kinds(p)
                );
            }
        }
    }
    print_requests(pending);
}

fn print_requests(pending: &[ControlRequest]) {
    if pending.is_empty() {
        println!("  requests    none pending");
    } else {
        println!(
            "  requests    {} pending (the engine carries them out at its next cycle):",
            pending.len()
        );
        for r in pending {
            println!("    {}", describe_request(r));
        }
    }
}

/// `positions` from the monitor's last report: one row per open short put,
/// then every alert in full.
pub fn print_monitor_positions(r: &MonitorReport) {
    println!(
        "{} open position(s) as the engine last saw them at {}; unrealized P&L {}",
        r.position_count,
        r.time.format("%Y-%m-%d %H:%M UTC"),
        fmt_money(r.unrealized_pnl)
    );
    let rows: Vec<Vec<String>> = r
        .positions
        .iter()
        .map(|p| {
            vec![
                p.trade_id.clone(),
                p.contract.clone(),
                p.contracts.to_string(),
                p.dte.to_string(),
                p.days_held.to_string(),
                p.entry_premium.to_string(),
                opt(p.mark),
                p.unrealized_pnl.map_or_else(|| "-".to_string(), fmt_money),
                alert_kinds(p),
            ]
        })
        .collect();
    table(
        &[
            "trade", "contract", "qty", "DTE", "held", "entry", "mark", "P&L", "alerts",
        ],
        &rows,
    );
    let alerts: Vec<String> = r.alerts().map(Alert::message).collect();
    if !alerts.is_empty() {
        println!();
        println!("alerts:");
        for a in alerts {
            println!("  {a}");
        }
    }
}
