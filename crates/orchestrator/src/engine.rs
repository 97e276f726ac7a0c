//! The engine loop: perceive → reason → act → learn, one cycle at a time.
//!
//! Generic over the broker (which is also the market data source), the
//! strategy and the learning hook; time comes in as an argument (the
//! caller's [`Clock`](core_domain::Clock)), so backtest and live run this
//! same code and differ only in the clock and the broker they wire.
//!
//! ## One cycle
//! 1. **Perceive** — broker events (fills, statuses, expirations,
//!    assignments, errors) are recorded through the executor and the trade
//!    logger; then operator requests queued in the database (emergency
//!    stop, resume) are carried out, against that book (so a stop closes a
//!    trade whose entry filled since the last cycle); the account and
//!    positions are read (positions are stored); at a session's first
//!    cycle its starting account and the market events (VIX spike, regime
//!    shift) are taken; the open trades' quotes and the underlyings'
//!    prices feed the [`PositionMonitor`]; the circuit breakers run.
//! 2. **Reason** — rules on that state choose among [`Action`]s: cancel
//!    stale orders, manage exits, scan for entries, learn, idle. The choice
//!    is a decision record (a repeated idle is recorded once, when it
//!    starts).
//! 3. **Act** — every order passes the risk governor and goes through the
//!    executor (intent written before it is sent).
//! 4. **Learn** — the learning hook sees the trades closed this cycle.
//!
//! Working memory (goals, recent actions and events, the session's
//! starting account, the regime, the last scan, a pending flatten) is
//! written to the database at the end of every cycle that changed it, and
//! in full when the loop stops, so a restart continues where it stopped.
//!
//! ## Where each phase lives
//! - [`perceive`](self::perceive): the perceive step, building a
//!   [`Perception`]; operator requests, the session's start, the risk
//!   context;
//! - [`reason`](self::reason): the pure rules, [`reason()`] →
//!   [`Plan`], unit-tested without a database;
//! - `act`: the actions carried out, and the learn step;
//! - `exits` and `entries`: the two order-sending actions;
//! - `shadows`: shadow trades recorded and followed;
//! - [`memory`](self::memory): working memory and its writes;
//! - `live`: the broker-truth checks (orders resolved, positions
//!   reconciled, the emergency stop).
//!
//! ## Entries
//! Scans run in the `Open` phase only, when trading is active and a
//! position slot is free, at the session's first open cycle and then at
//! most every `entry_scan_minutes`. Each approved order is counted at once
//! (as a working position and as opened today) before the next one is
//! checked, so orders in flight cannot overrun a limit.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AccountSnapshot, AuditEntry, AuditRepository, Broker, MarketData, OptionContract, Right,
    Strategy, Symbol, Trade, WorkingMemory,
};
use execution::{ExitManager, OrderExecutor, PositionMonitor, ReconcileReport, RepricePolicy};
use risk::{RiskGovernor, TradingState};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::Store;

use crate::EngineError;
use crate::events::{DetectorParams, EngineEvent};
use crate::hook::LearningHook;
use crate::schedule::Schedule;

mod act;
mod entries;
mod exits;
mod live;
pub mod memory;
pub mod perceive;
pub mod reason;
mod shadows;

pub use entries::trade_id_for;
use memory::MonitorWritten;
pub use memory::{Memory, default_goals, keys};
pub use perceive::Perception;
pub use reason::{Plan, action_record, reason};
pub use shadows::EXPLORED_REASON;

/// The actor name of the engine's records.
pub const ENGINE_ACTOR: &str = "engine";

/// Broker codes that are notices, not errors (IBKR's connectivity and
/// market-data farm messages); they do not count toward the API-error
/// breaker.
pub const INFORMATIONAL_CODES: [i32; 6] = [2104, 2106, 2107, 2108, 2119, 2158];

/// The engine's own parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineParams {
    /// Symbols to trade, with their sectors.
    pub universe: Vec<(Symbol, Option<String>)>,
    pub reprice: RepricePolicy,
    pub detector: DetectorParams,
    /// Minutes between entry scans within a session.
    pub entry_scan_minutes: i64,
    /// Risk-free rate for the governor's revaluation.
    pub risk_free_rate: f64,
    /// Daily returns fetched per underlying for VaR and correlation.
    pub returns_lookback: usize,
    /// Implied vol assumed for a position whose quote has none.
    pub fallback_implied_vol: f64,
    /// Record a shadow trade for every evaluated opportunity.
    pub shadow_trades: bool,
    /// Minutes between checks of the open shadow trades in market hours.
    pub shadow_check_minutes: i64,
    /// The exit rules shadows are followed by.
    pub shadow_rules: learning::shadow::ShadowRules,
    /// How far beyond the strategy's search range (relative, each end) the
    /// entry scan also quotes puts, only to record them as shadow trades
    /// (see [`core_domain::Strategy::exploration_contracts`]): evidence of
    /// what widening the range would do. 0 quotes the range alone.
    pub exploration_band: f64,
    /// When the cycle's writes are committed (see [`CommitMode`]).
    #[serde(default)]
    pub commit: CommitMode,
}

/// When a cycle's database writes are committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Each write at once (a live broker: an order's intent is on disk
    /// before the order is sent, a fill as soon as it is seen).
    #[default]
    PerWrite,
    /// The whole cycle in one transaction ([`Store::begin_unit`]): its
    /// orders, fills, decision records, audit entries and working memory
    /// land together or not at all. For a simulated broker that is rebuilt
    /// from the database on restart, a killed cycle then leaves no trace
    /// and runs again exactly.
    PerCycle,
}

impl Default for EngineParams {
    fn default() -> Self {
        EngineParams {
            universe: Vec::new(),
            reprice: RepricePolicy::default(),
            detector: DetectorParams::default(),
            entry_scan_minutes: 120,
            risk_free_rate: 0.03,
            returns_lookback: 251,
            fallback_implied_vol: 0.30,
            shadow_trades: true,
            shadow_check_minutes: 60,
            shadow_rules: learning::shadow::ShadowRules::default(),
            exploration_band: 0.20,
            commit: CommitMode::PerWrite,
        }
    }
}

/// What the engine can choose to do in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    CancelStale,
    ManageExits,
    ScanEntries,
    /// At a session's close: the performance of the closed trades so far,
    /// into working memory and a decision record.
    AnalyzePerformance,
    Learn,
    Idle,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CancelStale => "cancel_stale",
            Action::ManageExits => "manage_exits",
            Action::ScanEntries => "scan_entries",
            Action::AnalyzePerformance => "analyze_performance",
            Action::Learn => "learn",
            Action::Idle => "idle",
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CycleReport {
    pub time: Option<DateTime<Utc>>,
    pub actions: Vec<Action>,
    pub entries_sent: usize,
    pub entries_refused: usize,
    pub exits_sent: usize,
    pub cancelled: usize,
    pub fills: usize,
    pub trades_opened: usize,
    /// Shadow trades that reached an exit this cycle.
    pub shadows_closed: usize,
    pub trades_closed: usize,
    pub events: Vec<EngineEvent>,
    pub open_trades: usize,
    pub net_liquidation_cents: i64,
    /// The account as the broker reported it this cycle (observers:
    /// the dashboard, metrics).
    #[serde(default)]
    pub account: Option<AccountSnapshot>,
}

/// The engine.
pub struct Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    store: Arc<Store>,
    executor: OrderExecutor<B>,
    strategy: S,
    governor: RiskGovernor,
    monitor: PositionMonitor,
    exits: ExitManager,
    learning: L,
    schedule: Schedule,
    params: EngineParams,
    memory: Memory,
    /// Daily log returns per symbol, fetched once per session.
    returns: HashMap<Symbol, Vec<f64>>,
    returns_session: Option<NaiveDate>,
    /// What was last written, to skip identical writes: positions
    /// (contract key, quantity, average cost) and working memory.
    stored_positions: Option<Vec<(String, i64, i64)>>,
    stored_memory: Option<memory::Memory>,
    /// Working memory must be written at the end of this cycle even if
    /// only the counter and the time changed (the cycle wrote, or the
    /// loop stops).
    memory_due: bool,
    /// Open trades as last read; `None` after anything that may change
    /// them (a fill, a settlement), so the store is read again.
    open_cache: Option<Vec<Trade>>,
    /// Trades opened and closed in the current session (for the risk
    /// governor's count and the monitor's realized P&L).
    today: Option<(NaiveDate, Vec<Trade>)>,
    /// The last monitor report written (its positions and alerts).
    monitor_written: Option<MonitorWritten>,
    /// Skips recorded this session: (subject, failed criteria).
    skips_recorded: std::collections::HashSet<(String, String)>,
    skips_session: Option<NaiveDate>,
    /// The store's write count when the cycle in progress began.
    cycle_writes: u64,
    /// The weekly analysis and the AI reasoner (`crate::agent`); off
    /// unless installed with `Engine::with_agent`.
    pub(crate) agent: crate::agent::AgentHooks,
    /// The broker-truth checks' state (`engine::live`).
    live: live::LiveState,
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// An engine over `store` and `broker`. Working memory and the trading
    /// state are read back from the store (a restart continues).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        broker: B,
        strategy: S,
        governor: RiskGovernor,
        monitor: PositionMonitor,
        exits: ExitManager,
        learning: L,
        schedule: Schedule,
        params: EngineParams,
    ) -> Result<Self, EngineError> {
        let mut learning = learning;
        let memory: Memory = match store.recall(keys::ENGINE)? {
            Some(v) => serde_json::from_value(v).map_err(|e| {
                EngineError::Config(format!(
                    "working memory key `{}` is unreadable ({e}); delete it with `trader-cli db reset-memory` or restore the database",
                    keys::ENGINE
                ))
            })?,
            None => Memory {
                goals: default_goals(),
                ..Memory::default()
            },
        };
        let state = match store.trading_state()? {
            Some(record) => record.state,
            None => TradingState::Active,
        };
        if let Some(v) = &memory.learning {
            learning.restore_state(v).map_err(|e| {
                EngineError::Config(format!(
                    "restoring the learning state from working memory: {e}"
                ))
            })?;
        }
        let governor = if state == governor.state() {
            governor
        } else {
            RiskGovernor::with_state(governor.limits().clone(), state)
        };
        Ok(Engine {
            executor: OrderExecutor::new(Arc::clone(&store), broker)
                .with_trading_hours(Arc::new(schedule.clone())),
            store,
            strategy,
            governor,
            monitor,
            exits,
            learning,
            schedule,
            params,
            memory,
            returns: HashMap::new(),
            returns_session: None,
            stored_positions: None,
            stored_memory: None,
            memory_due: false,
            skips_recorded: std::collections::HashSet::new(),
            skips_session: None,
            cycle_writes: 0,
            agent: crate::agent::AgentHooks::off(),
            open_cache: None,
            today: None,
            monitor_written: None,
            live: live::LiveState::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn broker(&self) -> &B {
        self.executor.broker()
    }

    /// The engine's parameters; changes apply from the next cycle.
    pub fn params_mut(&mut self) -> &mut EngineParams {
        &mut self.params
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    pub fn governor(&self) -> &RiskGovernor {
        &self.governor
    }

    /// Reconciles the store with the broker (after a start or restart):
    /// orders written but not sent are placed, missed executions recorded.
    pub async fn start(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        // The changes pending now were adopted (and recorded) before this
        // start: applied again, not recorded again.
        let restored = self.restore_parameter_changes(now)?;
        // With per-cycle commits the database holds whole cycles and the
        // simulated exchange was rebuilt from it: they agree by
        // construction, and what the last cycle's orders did after its
        // perceive step is still queued for the next cycle to see (as it
        // was in the run that was stopped). Reconciling here would record
        // those fills outside a cycle, where the learn step never sees
        // them.
        let reconciled = if self.params.commit == CommitMode::PerCycle {
            Ok(ReconcileReport::default())
        } else {
            self.executor.reconcile(now).await
        };
        // A broker that cannot be asked now (disconnected at start) does
        // not stop the engine: every cycle resolves orders against the
        // broker once it answers.
        let report = match reconciled {
            Ok(r) => r,
            Err(execution::ExecutionError::Broker { what, source }) => {
                let what = format!("reconcile at start: {what}: {source}");
                tracing::warn!(%what, "engine: broker unavailable at start");
                self.audit(now, "engine.error", json!({ "what": what }), None)?;
                ReconcileReport::default()
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(
            now,
            "engine.start",
            json!({
                "resent": report.resent,
                "fills_recorded": report.events.fills_recorded,
                "unresolved": report.unresolved,
                "trading_state": self.governor.state().as_str(),
                "cycles_before": self.memory.cycles,
                "parameters_restored": restored,
            }),
            None,
        )?;
        store::crash_point("start");
        Ok(())
    }

    /// Runs one cycle at `now` (see the module docs). With
    /// [`CommitMode::PerCycle`] the cycle's writes are one unit of work:
    /// committed at its end, rolled back when it fails.
    pub async fn cycle(&mut self, now: DateTime<Utc>) -> Result<CycleReport, EngineError> {
        if self.params.commit != CommitMode::PerCycle {
            self.cycle_writes = self.store.write_count();
            return self.run_cycle(now).await;
        }
        self.store.begin_unit()?;
        self.cycle_writes = self.store.write_count();
        match self.run_cycle(now).await {
            Ok(report) => {
                store::crash_point("cycle");
                self.store.commit_unit()?;
                Ok(report)
            }
            Err(e) => {
                if let Err(r) = self.store.rollback_unit() {
                    tracing::error!(error = %r, "rolling back a failed cycle");
                }
                // What was read or written in the failed cycle is gone:
                // read everything again.
                self.forget_caches();
                Err(e)
            }
        }
    }

    /// Drops every cache of database contents (after a rollback).
    fn forget_caches(&mut self) {
        self.stored_positions = None;
        self.stored_memory = None;
        self.open_cache = None;
        self.today = None;
        self.monitor_written = None;
        self.skips_session = None;
        self.skips_recorded.clear();
    }

    async fn run_cycle(&mut self, now: DateTime<Utc>) -> Result<CycleReport, EngineError> {
        let mut report = CycleReport {
            time: Some(now),
            ..CycleReport::default()
        };
        let Some(perception) = self.perceive(now, &mut report).await? else {
            self.finish(now, &report)?;
            return Ok(report);
        };
        let actions = self.decide(&perception, &mut report).await?;
        self.act(&perception, &actions, &mut report).await?;
        self.learn(now, &perception.closed_now, &mut report)?;
        self.remember_monitor(now, &perception.monitor)?;
        // The weekly analysis (crate::agent), when installed and due.
        self.agent
            .after_cycle(
                &self.store,
                now,
                self.strategy.parameters().into_iter().collect(),
            )
            .await;
        self.finish(now, &report)?;
        Ok(report)
    }

    fn audit(
        &self,
        time: DateTime<Utc>,
        action: &str,
        context: serde_json::Value,
        outcome: Option<String>,
    ) -> Result<(), EngineError> {
        let mut entry = AuditEntry::new(time, ENGINE_ACTOR, action).context(context);
        entry.outcome = outcome;
        self.store.append_audit(&entry)?;
        Ok(())
    }

    fn system_error(
        &mut self,
        now: DateTime<Utc>,
        what: String,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        tracing::warn!(%what, "engine: system error");
        self.memory.api_errors.push(now);
        self.audit(now, "engine.error", json!({ "what": what }), None)?;
        report
            .events
            .push(EngineEvent::SystemError { time: now, what });
        Ok(())
    }

    fn sector_of(&self, symbol: &Symbol) -> Option<String> {
        self.params
            .universe
            .iter()
            .find(|(s, _)| s == symbol)
            .and_then(|(_, sector)| sector.clone())
    }
}

/// The put a trade holds short.
pub fn put_of(t: &Trade) -> OptionContract {
    OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration)
}
