//! Act and learn: the last phases of a cycle. Act carries out the plan's
//! actions — every order through the risk governor and the executor
//! (intent written before it is sent; exits in `engine::exits`, entries in
//! `engine::entries`) — and follows the shadow trades; learn hands the
//! trades closed this cycle to the learning hook and applies the parameter
//! changes it adopted or rolled back.

use chrono::{DateTime, Utc};
use core_domain::{
    AuditRepository, Broker, DecisionKind, DecisionRecord, MarketData, Strategy, Trade,
    TradeFilter, TradeRepository,
};
use serde_json::json;

use super::perceive::Perception;
use super::{Action, CycleReport, Engine, live};
use crate::EngineError;
use crate::hook::LearningHook;
use crate::schedule::Phase;

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// Carries out `actions` in order, then follows the shadow trades
    /// (hourly in market hours and at each close, where expiries settle;
    /// evidence only, never P&L).
    pub(super) async fn act(
        &mut self,
        p: &Perception,
        actions: &[Action],
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let now = p.now;
        for action in actions {
            match action {
                Action::CancelStale => {
                    let cancelled = self
                        .executor
                        .cancel_stale(now, &self.params.reprice)
                        .await?;
                    report.cancelled += cancelled.len();
                }
                Action::ManageExits => {
                    let closable = live::closable(&p.open_trades, &p.position_gone);
                    report.exits_sent += self
                        .manage_exits(now, &closable, &p.held_quotes, &p.positions, &p.risk)
                        .await?;
                }
                Action::ScanEntries => {
                    self.memory.last_scan = Some(now);
                    let (sent, refused) = self.scan_entries(p).await?;
                    report.entries_sent += sent;
                    report.entries_refused += refused;
                }
                Action::AnalyzePerformance => self.analyze_performance(now)?,
                Action::Learn | Action::Idle => {}
            }
        }
        let trading = p.phase != Phase::Closed;
        let shadow_due = self
            .memory
            .last_shadow_check
            .is_none_or(|t| (now - t).num_minutes() >= self.params.shadow_check_minutes);
        if self.params.shadow_trades && ((trading && shadow_due) || p.analyze_now) {
            report.shadows_closed += self.follow_shadows(now, p.today).await?;
            self.memory.last_shadow_check = Some(now);
        }
        Ok(())
    }

    /// The learn step: the learning hook on the trades closed this cycle
    /// (its summary a decision record), then the parameter changes it
    /// adopted or rolled back applied to the strategy.
    pub(super) fn learn(
        &mut self,
        now: DateTime<Utc>,
        closed_now: &[Trade],
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        if closed_now.is_empty() {
            return Ok(());
        }
        match self.learning.on_trades_closed(&self.store, closed_now, now) {
            Ok(Some(summary)) => {
                self.store.append_decision(
                    &DecisionRecord::new(now, DecisionKind::Action, "learning", "learn", summary.clone())
                        .with_context(json!({ "closed_now": closed_now.iter().map(|t| t.trade_id.clone()).collect::<Vec<_>>() })),
                )?;
                self.memory.push_action(format!("{now} learn: {summary}"));
            }
            Ok(None) => {}
            Err(e) => self.system_error(
                now,
                format!("learning hook {}: {e}", self.learning.name()),
                report,
            )?,
        }
        self.apply_parameter_changes(now)?;
        store::crash_point("learn");
        Ok(())
    }

    /// Applies the learning hook's pending changes at start — those adopted
    /// before, already on record — without writing their decision records
    /// again. Returns them for the start's audit entry.
    pub(super) fn restore_parameter_changes(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<serde_json::Value>, EngineError> {
        self.take_parameter_changes(now, false)
    }

    /// Applies the learning hook's parameter changes (adoptions and
    /// rollbacks) to the live strategy, each a `parameter_change` decision
    /// record.
    fn apply_parameter_changes(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        self.take_parameter_changes(now, true).map(|_| ())
    }

    /// Applies the hook's pending changes to the strategy, with a decision
    /// record each when `record`; a change the strategy refuses is audited
    /// and skipped. Returns the changes applied.
    fn take_parameter_changes(
        &mut self,
        now: DateTime<Utc>,
        record: bool,
    ) -> Result<Vec<serde_json::Value>, EngineError> {
        let mut applied = Vec::new();
        for (name, value) in self.learning.take_parameter_changes() {
            let before = self.strategy.parameters().get(&name).copied();
            match self.strategy.with_parameter(&name, value) {
                Ok(s) => {
                    self.strategy = s;
                    applied.push(json!({ "parameter": name, "value": value }));
                    if record {
                        let record = DecisionRecord::new(
                            now,
                            DecisionKind::ParameterChange,
                            name.clone(),
                            "parameter_change",
                            format!(
                                "{name}: {} -> {value} (through an experiment of the learning engine)",
                                before.map_or("?".into(), |b| b.to_string())
                            ),
                        )
                        .with_context(json!({ "parameter": name, "from": before, "to": value }));
                        self.store.append_decision(&record)?;
                    }
                }
                Err(e) => self.audit(
                    now,
                    "parameter_change.refused",
                    json!({ "parameter": name, "value": value }),
                    Some(e),
                )?,
            }
        }
        Ok(applied)
    }

    /// The running experiment and the strategy of its test arm.
    pub(super) fn experiment_strategy(&self) -> Option<(core_domain::Experiment, S)> {
        let e = self.learning.active_experiment(&self.store)?;
        let value: f64 = e.test_value.trim().parse().ok()?;
        let s = self
            .strategy
            .with_parameter(&e.parameter_name, value)
            .ok()?;
        Some((e, s))
    }

    /// The performance of every closed trade so far: count, win rate, mean
    /// ROI, total P&L, by exit reason — into working memory (`performance`)
    /// and a decision record.
    fn analyze_performance(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let closed = self.store.trades(&TradeFilter {
            open: Some(false),
            ..TradeFilter::default()
        })?;
        let summary = crate::metrics::summarize(
            &closed,
            &[],
            core_domain::Money::ZERO,
            &crate::metrics::MetricsParams::default(),
        );
        let value = json!({
            "time": now,
            "closed_trades": summary.closed_trades,
            "win_rate": summary.win_rate,
            "avg_roi": summary.avg_roi,
            "total_pnl": summary.total_pnl.to_string(),
            "by_exit_reason": summary.by_exit_reason,
        });
        let record = DecisionRecord::new(
            now,
            DecisionKind::Action,
            "performance",
            "analyze_performance",
            format!(
                "{} closed trades, win rate {}, mean ROI {}, total P&L {}",
                summary.closed_trades,
                summary
                    .win_rate
                    .map_or("n/a".into(), |w| format!("{:.1}%", w * 100.0)),
                summary
                    .avg_roi
                    .map_or("n/a".into(), |r| format!("{:.2}%", r * 100.0)),
                summary.total_pnl
            ),
        )
        .with_context(value.clone());
        self.store.append_decision(&record)?;
        self.memory.performance = Some(value);
        Ok(())
    }
}
