//! What the engine is doing, read from its working memory in the database
//! (the keys of [`orchestrator::engine::keys`]): the engine's memory
//! (cycles, session, regime, VIX, recent actions and events), its goals,
//! and the position monitor's last report. `status` and `positions` show
//! it; the engine (`traderd`, `trader-cli backtest`) writes it.

use anyhow::Result;
use execution::{Alert, MonitorReport, PositionView};
use orchestrator::report::fmt_money;
use serde_json::Value;
use store::{ControlRequest, Store};

use crate::output::{opt, table};

/// How many recent actions and events `status` prints.
const SHOWN: usize = 5;

pub use cockpit::ops::{EngineView, alert_kind, describe_request, event_time};

/// Reads the engine's working memory from `store` (the read the dashboard
/// shares: `cockpit::ops::engine_view`).
pub fn load(store: &Store) -> Result<EngineView> {
    Ok(cockpit::ops::engine_view(store)?)
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

/// The `engine` object of `status --json`: `null` if the engine never ran.
pub fn status_json(view: &EngineView, pending: &[ControlRequest]) -> Value {
    cockpit::ops::engine_status_json(view, pending)
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
