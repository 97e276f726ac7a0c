//! The agent hooks of the engine: the weekly analysis and the optional AI
//! reasoner (`agents-claude`), both off unless the binaries install them
//! ([`Engine::with_agent`]). The engine calls them at two points only —
//! [`AgentHooks::reason`] after the rules chose the cycle's actions, and
//! [`AgentHooks::after_cycle`] at the end of the cycle — and neither can
//! fail a cycle: a failure is logged, and the rules' choice stands.
//!
//! Determinism: with the hooks off (the default, and what traderd installs
//! in a simulated replay without `ANTHROPIC_API_KEY`) the engine is
//! unchanged. The weekly run is keyed to the engine's clock (New York day
//! and time) and writes only `analyst_reports`, `agent_calls` and
//! `proposal_received` learning events, which no trading decision reads;
//! the reasoner can only leave out `scan_entries` (and so changes what is
//! traded) and is off by default.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use agents_claude::analysis::AnalysisInput;
use agents_claude::{Analyst, reasoner};
use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use core_domain::{Broker, DecisionKind, DecisionRecord, MarketData, Strategy};
use learning::experiments::ParameterSet;
use serde_json::{Value, json};
use store::Store;

use crate::engine::{Action, Engine};
use crate::hook::LearningHook;

/// Builds the analysis input at `now` with the parameters in force.
pub type InputBuilder =
    dyn Fn(&Store, DateTime<Utc>, ParameterSet) -> Result<AnalysisInput, String> + Send + Sync;

/// The weekly analysis.
pub struct Weekly {
    analyst: Arc<Analyst>,
    day: Weekday,
    /// New York time of day.
    time: NaiveTime,
    input: Box<InputBuilder>,
    /// The first engine time seen: a slot before it is not run (a new
    /// daemon waits for the next slot).
    first_seen: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Weekly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weekly")
            .field("day", &self.day)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// The AI reasoner.
#[derive(Debug)]
pub struct Reasoner {
    analyst: Arc<Analyst>,
    timeout: StdDuration,
}

/// The agent hooks; [`AgentHooks::default`] is off.
#[derive(Debug, Default)]
pub struct AgentHooks {
    weekly: Option<Weekly>,
    reasoner: Option<Reasoner>,
}

/// The latest weekly slot (`day` at `time` New York) at or before `now`.
#[must_use]
pub fn last_slot(now: DateTime<Utc>, day: Weekday, time: NaiveTime) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&New_York).date_naive();
    (0..8).find_map(|back| {
        let date = local - Duration::days(back);
        if date.weekday() != day {
            return None;
        }
        let at = New_York
            .from_local_datetime(&date.and_time(time))
            .earliest()?
            .with_timezone(&Utc);
        (at <= now).then_some(at)
    })
}

impl AgentHooks {
    /// No hooks.
    #[must_use]
    pub fn off() -> Self {
        Self::default()
    }

    /// Whether any hook is installed.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.weekly.is_some() || self.reasoner.is_some()
    }

    /// Adds the weekly analysis.
    #[must_use]
    pub fn with_weekly(
        mut self,
        analyst: Arc<Analyst>,
        day: Weekday,
        time: NaiveTime,
        input: Box<InputBuilder>,
    ) -> Self {
        self.weekly = Some(Weekly {
            analyst,
            day,
            time,
            input,
            first_seen: None,
        });
        self
    }

    /// Adds the AI reasoner (it needs the analyst's client: a key).
    #[must_use]
    pub fn with_reasoner(mut self, analyst: Arc<Analyst>, timeout: StdDuration) -> Self {
        if analyst.has_model() {
            self.reasoner = Some(Reasoner { analyst, timeout });
        }
        self
    }

    /// At the end of a cycle: the weekly analysis when its slot has come
    /// (once per slot, judged from the stored weekly reports), stored with
    /// its proposals. Returns the report's summary line when it ran.
    pub async fn after_cycle(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        parameters: ParameterSet,
    ) -> Option<String> {
        let weekly = self.weekly.as_mut()?;
        let first = *weekly.first_seen.get_or_insert(now);
        let slot = last_slot(now, weekly.day, weekly.time)?;
        let last = match store.latest_analyst_report("weekly") {
            Ok(r) => r.map(|r| r.created_at),
            Err(e) => {
                tracing::error!("weekly analysis: reading the reports: {e}");
                return None;
            }
        };
        let due = match last {
            Some(t) => t < slot,
            None => slot > first,
        };
        if !due {
            return None;
        }
        let input = match (weekly.input)(store, now, parameters) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!("weekly analysis: {e}");
                return None;
            }
        };
        let report = match weekly.analyst.analyze(store, &input).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("weekly analysis: {e}; the statistical report is stored instead");
                let stats = input.statistics();
                agents_claude::analysis::statistical_report(&input, &stats, &e.to_string())
            }
        };
        match Analyst::store_report(store, &report, "weekly") {
            Ok(id) => {
                let line = format!(
                    "weekly analysis #{id} ({}): {} recommendation(s) accepted of {}",
                    report.source.as_str(),
                    report.accepted().count(),
                    report.recommendations.len()
                );
                tracing::info!("{line}");
                // On record for the operator: the notifications (an
                // `analyst_report` event) and the audit log.
                let entry = core_domain::AuditEntry::new(now, "analyst", "analyst.report")
                    .context(json!({
                        "report_id": id,
                        "trigger": "weekly",
                        "source": report.source.as_str(),
                        "summary": report.summary,
                        "accepted": report.accepted().count(),
                        "recommendations": report.recommendations.len(),
                    }))
                    .outcome(line.clone());
                if let Err(e) = core_domain::AuditRepository::append_audit(store, &entry) {
                    tracing::error!("weekly analysis: auditing the report: {e}");
                }
                Some(line)
            }
            Err(e) => {
                tracing::error!("weekly analysis: storing the report: {e}");
                None
            }
        }
    }

    /// After the rules chose `rules`: the reasoner (when installed) may
    /// leave actions out; exits, cancellations, analysis and learning are
    /// always kept, and nothing the rules did not choose can be added. On
    /// any failure or timeout the rules' choice stands. The model's choice
    /// is recorded as a decision record with its reason and tokens.
    pub async fn reason(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        rules: Vec<Action>,
        context: impl FnOnce() -> Value,
    ) -> Vec<Action> {
        let Some(r) = &self.reasoner else {
            return rules;
        };
        if rules == [Action::Idle] {
            return rules;
        }
        let Some(client) = r.analyst.client() else {
            return rules;
        };
        let mut allowed: Vec<&str> = rules.iter().map(|a| a.as_str()).collect();
        if !allowed.contains(&"idle") {
            allowed.push("idle");
        }
        let budget_ok = r.analyst.budget_left(store, now).unwrap_or(false);
        if !budget_ok {
            tracing::warn!("reasoner: the monthly spend cap is reached; the rules decide");
            return rules;
        }
        let cfg = r.analyst.config();
        let ctx = reasoner_context(store, context());
        let outcome = tokio::time::timeout(
            r.timeout,
            reasoner::choose(client, &cfg.model, cfg.max_tokens, &allowed, &ctx),
        )
        .await;
        let (usage, result) = match outcome {
            Ok(pair) => pair,
            Err(_) => {
                tracing::warn!(
                    "reasoner: no answer within {:?}; the rules decide",
                    r.timeout
                );
                return rules;
            }
        };
        // Every answered turn's tokens are recorded, whatever the outcome.
        let cost = if usage.input_tokens + usage.output_tokens > 0 {
            r.analyst
                .record_call(store, now, "reasoner", &usage, None)
                .unwrap_or_else(|e| {
                    tracing::error!("reasoner: recording the call: {e}");
                    0
                })
        } else {
            0
        };
        let choice = match result {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reasoner: {e}; the rules decide");
                return rules;
            }
        };
        let mut chosen: Vec<Action> = rules
            .iter()
            .copied()
            .filter(|a| {
                !matches!(a, Action::ScanEntries | Action::Idle)
                    || choice.actions.iter().any(|c| c == a.as_str())
            })
            .collect();
        if chosen.is_empty() {
            chosen.push(Action::Idle);
        }
        let names = |v: &[Action]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join("+");
        let record = DecisionRecord::new(
            now,
            DecisionKind::Action,
            "claude",
            names(&chosen),
            choice.reason.clone(),
        )
        .with_context(json!({
            "rules_choice": names(&rules),
            "model_choice": choice.actions,
            "model": cfg.model,
            "tool_calls": choice.tool_calls,
            "input_tokens": choice.usage.input_tokens,
            "output_tokens": choice.usage.output_tokens,
            "cache_read_input_tokens": choice.usage.cache_read_input_tokens,
            "cost_usd": cost as f64 / 1e6,
        }));
        if let Err(e) = core_domain::AuditRepository::append_decision(store, &record) {
            tracing::error!("reasoner: recording the decision: {e}; the rules decide");
            return rules;
        }
        chosen
    }
}

/// The tools' answers: the engine's `context` without trade ids, plus the
/// overall statistics of the closed trades.
fn reasoner_context(store: &Store, mut ctx: Value) -> Value {
    if let Some(positions) = ctx
        .get_mut("positions")
        .and_then(|p| p.get_mut("positions"))
        .and_then(Value::as_array_mut)
    {
        for p in positions {
            if let Some(o) = p.as_object_mut() {
                o.remove("trade_id");
            }
        }
    }
    let closed = core_domain::TradeRepository::trades(
        store,
        &core_domain::TradeFilter {
            open: Some(false),
            ..core_domain::TradeFilter::default()
        },
    )
    .unwrap_or_default();
    ctx["statistics"] = json!(agents_claude::stats::overall(&closed));
    ctx
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// Installs the agent hooks (the weekly analysis, the AI reasoner).
    #[must_use]
    pub fn with_agent(mut self, hooks: AgentHooks) -> Self {
        self.agent = hooks;
        self
    }

    /// [`Engine::with_agent`] in place.
    pub fn set_agent(&mut self, hooks: AgentHooks) {
        self.agent = hooks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_slot_is_the_latest_weekday_at_the_new_york_time() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
        // Saturday 2026-12-05 09:00 New York = 14:00 UTC.
        let sat = Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).single();
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 19, 0, 0).single();
        assert_eq!(last_slot(now.unwrap_or_default(), Weekday::Sat, nine), sat);
        // One minute before the slot: the previous week's.
        let before = Utc.with_ymd_and_hms(2026, 12, 5, 13, 59, 0).single();
        assert_eq!(
            last_slot(before.unwrap_or_default(), Weekday::Sat, nine),
            Utc.with_ymd_and_hms(2026, 11, 28, 14, 0, 0).single()
        );
    }
}
