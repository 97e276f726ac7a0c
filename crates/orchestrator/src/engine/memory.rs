//! Working memory: what the engine keeps between cycles and across a
//! restart (goals, recent actions and events, the session's state), and
//! its writes — once per cycle that changed it, the monitor's report when
//! the book or its alerts change.

use std::collections::VecDeque;

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AccountSnapshot, Broker, MarketData, MarketRegime, Strategy, Trade, WorkingMemory,
};
use execution::MonitorReport;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Action, CycleReport, Engine};
use crate::EngineError;
use crate::events::EngineEvent;
use crate::hook::LearningHook;

/// How many recent actions and events working memory keeps.
const RECENT: usize = 50;

/// The working memory, persisted every cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub goals: Vec<String>,
    pub cycles: u64,
    pub last_cycle: Option<DateTime<Utc>>,
    pub session: Option<NaiveDate>,
    pub session_start: Option<AccountSnapshot>,
    /// The session whose close was recorded.
    pub closed_session: Option<NaiveDate>,
    pub last_scan: Option<DateTime<Utc>>,
    pub last_actions: Vec<Action>,
    pub api_errors: Vec<DateTime<Utc>>,
    pub recent_actions: VecDeque<String>,
    pub recent_events: VecDeque<EngineEvent>,
    pub regime: Option<MarketRegime>,
    pub vix: Option<f64>,
    /// Trades closed by assignment whose stock may still be held.
    pub assigned: Vec<Trade>,
    /// Experiments running (ids and hypotheses), read at each session's
    /// start.
    #[serde(default)]
    pub active_experiments: Vec<String>,
    /// Patterns the learning engine holds as true, read at each session's
    /// start.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The latest performance analysis (at a session's close).
    #[serde(default)]
    pub performance: Option<serde_json::Value>,
    /// When the open shadow trades were last followed.
    #[serde(default)]
    pub last_shadow_check: Option<DateTime<Utc>>,
    /// An emergency stop asked to close every position: until a resume,
    /// the exits of a halted engine are the emergency's (so a close that
    /// was rejected, did not fill, or could not be sent while the market
    /// was closed is sent again).
    #[serde(default)]
    pub flatten: bool,
    /// The learning hook's own state ([`LearningHook::save_state`]), kept
    /// with the cycle that changed it so a restart continues it exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<serde_json::Value>,
    /// Orders an emergency stop could not cancel (the broker unreachable):
    /// their cancels are sent again every cycle until the broker takes
    /// them.
    #[serde(default)]
    pub cancels_pending: Vec<String>,
    /// Differences between the broker's positions and the open trades
    /// that no rule settled (see `engine::live`): trading is reduce-only
    /// while any is listed; an operator settles them.
    #[serde(default)]
    pub position_mismatches: Vec<String>,
}

impl Memory {
    /// Whether `other` holds the same memory but for the cycle counter and
    /// the last cycle's time (which alone do not warrant a write).
    pub(super) fn same_apart_from_the_clock(&self, other: &Memory) -> bool {
        let Memory {
            goals,
            cycles: _,
            last_cycle: _,
            session,
            session_start,
            closed_session,
            last_scan,
            last_actions,
            api_errors,
            recent_actions,
            recent_events,
            regime,
            vix,
            assigned,
            active_experiments,
            patterns,
            performance,
            last_shadow_check,
            flatten,
            learning,
            cancels_pending,
            position_mismatches,
        } = self;
        *goals == other.goals
            && *session == other.session
            && *session_start == other.session_start
            && *closed_session == other.closed_session
            && *last_scan == other.last_scan
            && *last_actions == other.last_actions
            && *api_errors == other.api_errors
            && *recent_actions == other.recent_actions
            && *recent_events == other.recent_events
            && *regime == other.regime
            && *vix == other.vix
            && *assigned == other.assigned
            && *active_experiments == other.active_experiments
            && *patterns == other.patterns
            && *performance == other.performance
            && *last_shadow_check == other.last_shadow_check
            && *flatten == other.flatten
            && *learning == other.learning
            && *cancels_pending == other.cancels_pending
            && *position_mismatches == other.position_mismatches
    }

    pub(super) fn push_action(&mut self, line: String) {
        self.recent_actions.push_back(line);
        while self.recent_actions.len() > RECENT {
            self.recent_actions.pop_front();
        }
    }

    pub(super) fn push_event(&mut self, event: EngineEvent) {
        self.recent_events.push_back(event);
        while self.recent_events.len() > RECENT {
            self.recent_events.pop_front();
        }
    }
}

/// Working-memory keys.
pub mod keys {
    pub const ENGINE: &str = "engine";
    pub const GOALS: &str = "goals";
    pub const RECENT_ACTIONS: &str = "recent_actions";
    pub const RECENT_EVENTS: &str = "recent_events";
    pub const LAST_MONITOR: &str = "last_monitor";
}

/// The default goals written to a new working memory.
pub fn default_goals() -> Vec<String> {
    vec![
        "sell 15-20% OTM puts for $0.30-0.50 with 7-14 days to expiry on uptrending stocks".into(),
        "exit at 50% profit, at a 200% loss, or 3 days before expiry".into(),
        "stay within every risk limit; never block a closing order".into(),
        "learn from every trade; adopt a change only when the statistics prove it".into(),
    ]
}

/// What the last monitor write held: trade ids, alert messages, time.
pub(super) type MonitorWritten = (Vec<String>, Vec<String>, Option<DateTime<Utc>>);

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    pub(super) fn finish(
        &mut self,
        now: DateTime<Utc>,
        report: &CycleReport,
    ) -> Result<(), EngineError> {
        self.memory.cycles += 1;
        self.memory.last_cycle = Some(now);
        let did = report.entries_sent + report.exits_sent + report.cancelled + report.fills;
        if did > 0 || report.trades_closed > 0 {
            let names: Vec<&str> = report.actions.iter().map(|a| a.as_str()).collect();
            self.memory.push_action(format!(
                "{now} {}: {} entries, {} exits, {} cancels, {} fills",
                names.join("+"),
                report.entries_sent,
                report.exits_sent,
                report.cancelled,
                report.fills
            ));
        }
        for e in &report.events {
            self.memory.push_event(e.clone());
        }
        self.memory.learning = self.learning.save_state();
        // A cycle that wrote anything records itself as the last cycle run
        // (with its writes, in a unit of work): a restart continues after
        // it, never re-running it against its own records.
        if self.store.write_count() != self.cycle_writes {
            self.memory_due = true;
        }
        self.persist_memory()
    }

    /// Writes working memory now, the cycle counter and the last cycle's
    /// time included. The loop calls it when it stops: an idle stretch
    /// skips these writes, and a restart must continue from the last
    /// cycle run, not from the last one that changed something.
    pub fn save_memory(&mut self) -> Result<(), EngineError> {
        self.memory_due = true;
        self.persist_memory()
    }

    /// Writes working memory when anything but the cycle counter and time
    /// changed (an idle night writes nothing; the counter catches up with
    /// the next write).
    fn persist_memory(&mut self) -> Result<(), EngineError> {
        // Compared as values (no serialization unless it changed): most
        // cycles change nothing but the counter and the time.
        if !self.memory_due
            && let Some(stored) = &self.stored_memory
            && stored.same_apart_from_the_clock(&self.memory)
        {
            return Ok(());
        }
        let memory = serde_json::to_value(&self.memory)
            .map_err(|e| EngineError::Config(format!("serializing working memory: {e}")))?;
        // The other keys only when they changed since the last write.
        let last = self.stored_memory.as_ref();
        let goals =
            (last.is_none_or(|m| m.goals != self.memory.goals)).then(|| json!(self.memory.goals));
        let actions = (last.is_none_or(|m| m.recent_actions != self.memory.recent_actions))
            .then(|| json!(self.memory.recent_actions));
        let events =
            (last.is_none_or(|m| m.recent_events != self.memory.recent_events)).then(|| {
                serde_json::to_value(&self.memory.recent_events).unwrap_or_else(|_| json!([]))
            });
        self.store.atomically(|tx| -> Result<(), EngineError> {
            tx.remember(keys::ENGINE, &memory)?;
            if let Some(v) = &goals {
                tx.remember(keys::GOALS, v)?;
            }
            if let Some(v) = &actions {
                tx.remember(keys::RECENT_ACTIONS, v)?;
            }
            if let Some(v) = &events {
                tx.remember(keys::RECENT_EVENTS, v)?;
            }
            Ok(())
        })?;
        self.stored_memory = Some(self.memory.clone());
        self.memory_due = false;
        Ok(())
    }

    /// Keeps the latest monitor report in working memory (for `trader-cli
    /// positions` and the dashboard): written when the positions or their
    /// alerts change, and at least hourly while positions are open.
    pub(super) fn remember_monitor(
        &mut self,
        now: DateTime<Utc>,
        monitor: &MonitorReport,
    ) -> Result<(), EngineError> {
        let ids: Vec<String> = monitor
            .positions
            .iter()
            .map(|p| p.trade_id.clone())
            .collect();
        let alerts: Vec<String> = monitor.alerts().map(|a| a.message()).collect();
        let due = match &self.monitor_written {
            None => true,
            Some((i, a, at)) => {
                *i != ids
                    || *a != alerts
                    || (!ids.is_empty()
                        && at.is_none_or(|t| now - t >= chrono::Duration::minutes(60)))
            }
        };
        if !due {
            return Ok(());
        }
        let value = serde_json::to_value(monitor).unwrap_or_else(|_| json!({}));
        self.store.remember(keys::LAST_MONITOR, &value)?;
        self.monitor_written = Some((ids, alerts, Some(now)));
        Ok(())
    }
}
