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
//! ## Entries
//! Scans run in the `Open` phase only, when trading is active and a
//! position slot is free, at the session's first open cycle and then at
//! most every `entry_scan_minutes`. Each approved order is counted at once
//! (as a working position and as opened today) before the next one is
//! checked, so orders in flight cannot overrun a limit.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AccountRepository, AccountSnapshot, AuditEntry, AuditRepository, Broker, Contract, Criterion,
    DecisionKind, DecisionRecord, EntryProposal, LearningRepository, MarketData, MarketRegime,
    MarketSnapshot, OptionContract, OptionQuote, Order, OrderIntent, OrderPurpose, OrderRepository,
    OrderStatus, Position, Price, Right, Side, Strategy, Symbol, TimeInForce, Trade, TradeFilter,
    TradeRepository, TradeStatus, UnderlyingSnapshot, WorkingMemory,
};
use execution::{
    EmergencyStop, ExitManager, ExitOrder, MonitorInput, MonitorReport, OrderContext,
    OrderExecutor, PositionMonitor, ReconcileReport, RepricePolicy, TradeChange,
    record_state_change,
};
use risk::{OrderMarket, RiskContext, RiskGovernor, ShortPutExposure, TradingState};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::{ControlAction, Store};

use crate::events::{self, DetectorParams, EngineEvent};
use crate::hook::LearningHook;
use crate::schedule::{Phase, Schedule};
use crate::{EngineError, INDEX_SYMBOL, VIX_SYMBOL};

mod live;

/// The actor name of the engine's records.
pub const ENGINE_ACTOR: &str = "engine";

/// Broker codes that are notices, not errors (IBKR's connectivity and
/// market-data farm messages); they do not count toward the API-error
/// breaker.
pub const INFORMATIONAL_CODES: [i32; 6] = [2104, 2106, 2107, 2108, 2119, 2158];

/// How many recent actions and events working memory keeps.
const RECENT: usize = 50;

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
    fn push_action(&mut self, line: String) {
        self.recent_actions.push_back(line);
        while self.recent_actions.len() > RECENT {
            self.recent_actions.pop_front();
        }
    }

    fn push_event(&mut self, event: EngineEvent) {
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
type MonitorWritten = (Vec<String>, Vec<String>, Option<DateTime<Utc>>);

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
    stored_memory: Option<serde_json::Value>,
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
            Some((s, _, _)) => match s.as_str() {
                "halted" => TradingState::Halted,
                "reduce_only" => TradingState::ReduceOnly,
                _ => TradingState::Active,
            },
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

    /// Applies the learning hook's pending changes at start — those adopted
    /// before, already on record — without writing their decision records
    /// again. Returns them for the start's audit entry.
    fn restore_parameter_changes(
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
    fn experiment_strategy(&self) -> Option<(core_domain::Experiment, S)> {
        let e = self.learning.active_experiment(&self.store)?;
        let value: f64 = e.test_value.trim().parse().ok()?;
        let s = self
            .strategy
            .with_parameter(&e.parameter_name, value)
            .ok()?;
        Some((e, s))
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
        let phase = self.schedule.phase(now);
        let today = execution::trade_log::exchange_date(now);

        // ---- perceive ------------------------------------------------
        let broker_events = match self.broker().poll_events().await {
            Ok(e) => e,
            Err(e) => {
                self.system_error(now, format!("poll_events: {e}"), &mut report)?;
                Vec::new()
            }
        };
        let mut symbols: Vec<Symbol> = self
            .open_trades()?
            .iter()
            .map(|t| t.symbol.clone())
            .collect();
        for e in &broker_events {
            if let core_domain::BrokerEvent::Assignment { contract, .. } = e {
                symbols.push(contract.underlying.clone());
            }
        }
        let marks = self.stock_prices(&symbols).await;
        let processed = self
            .executor
            .process_events_with_marks(broker_events, &marks, now)
            .await?;
        report.fills = processed.fills_recorded;
        if !processed.trades.is_empty() {
            self.open_cache = None;
        }
        let mut closed_now = Vec::new();
        for change in &processed.trades {
            match change {
                TradeChange::Opened(t) | TradeChange::Increased(t) | TradeChange::Closed(t) => {
                    self.note_trade_change(today, t);
                }
                _ => {}
            }
            match change {
                TradeChange::Opened(_) => report.trades_opened += 1,
                TradeChange::Closed(t) => {
                    report.trades_closed += 1;
                    if let Some(e) = events::trade_closed(now, t) {
                        report.events.push(e);
                    }
                    closed_now.push(t.clone());
                }
                _ => {}
            }
        }
        // Whole and partial assignments: their shares are ours to sell.
        self.memory
            .assigned
            .extend(processed.assignments.iter().cloned());
        for (code, message) in &processed.broker_errors {
            if !INFORMATIONAL_CODES.contains(code) {
                self.memory.api_errors.push(now);
                report.events.push(EngineEvent::SystemError {
                    time: now,
                    what: format!("broker error {code}: {message}"),
                });
            }
        }
        self.memory
            .api_errors
            .retain(|t| now - *t < chrono::Duration::hours(1));
        // Operator requests, against the book as it is now.
        self.handle_control_requests(now).await?;
        // Orders not ended, against the broker (no stuck order).
        self.resolve_orders(now, &mut report).await?;

        // Without an account summary the last one stands in: exits run,
        // entries wait.
        let Some((account, account_fresh)) = self.account_or_last(now, &mut report).await? else {
            self.finish(now, &report)?;
            return Ok(report);
        };
        report.net_liquidation_cents = account.net_liquidation.cents();
        let mut positions_fresh = true;
        report.account = Some(account.clone());
        let positions = match self.broker().positions().await {
            Ok(p) => {
                let key: Vec<(String, i64, i64)> = p
                    .iter()
                    .map(|x| (x.contract.key(), x.quantity, x.avg_cost.raw()))
                    .collect();
                // Marks change every cycle; the stored book only when a
                // position does (and at each session's close, below).
                if self.stored_positions.as_ref() != Some(&key) {
                    self.store.replace_positions(&p)?;
                    self.stored_positions = Some(key);
                }
                p
            }
            Err(e) => {
                self.system_error(now, format!("positions: {e}"), &mut report)?;
                positions_fresh = false;
                self.store.positions()?
            }
        };
        if account_fresh && phase != Phase::Closed && self.memory.session != Some(today) {
            self.start_session(now, today, &account, &mut report)
                .await?;
        }
        let mut analyze_now = false;
        if account_fresh
            && phase == Phase::Closed
            && self.memory.session == Some(today)
            && self.memory.closed_session != Some(today)
        {
            // The session's close: the day's account for the equity curve,
            // and the positions at their closing marks.
            self.store.insert_snapshot(&account)?;
            self.store.replace_positions(&positions)?;
            self.memory.closed_session = Some(today);
            analyze_now = true;
        }

        // The broker's positions against the open trades and working
        // orders; trades whose position is gone are not closed.
        let position_gone = if positions_fresh {
            self.reconcile_positions(now, today, &positions, &mut closed_now, &mut report)
                .await?
        } else {
            std::collections::BTreeSet::new()
        };
        let open_trades = self.open_trades()?;
        report.open_trades = open_trades.len();
        let held: Vec<OptionContract> = open_trades.iter().map(put_of).collect();
        let held_quotes = if held.is_empty() {
            Vec::new()
        } else {
            match self.broker().option_quotes(&held).await {
                Ok(q) => q,
                Err(e) => {
                    self.system_error(now, format!("option_quotes (held): {e}"), &mut report)?;
                    Vec::new()
                }
            }
        };
        let mut watch: Vec<Symbol> = open_trades.iter().map(|t| t.symbol.clone()).collect();
        for p in &positions {
            if let Contract::Stock(s) = &p.contract {
                watch.push(s.symbol.clone());
            }
        }
        watch.sort();
        watch.dedup();
        let prices = self.stock_prices(&watch).await;
        let todays = self.trades_of_day(today)?;
        let closed_today: Vec<Trade> = todays
            .iter()
            .filter(|t| t.status == TradeStatus::Closed && t.exit_date == Some(today))
            .cloned()
            .collect();
        let opened_today = todays.iter().filter(|t| t.entry_date == today).count() as i64;
        let monitor = self.monitor.evaluate(&MonitorInput {
            time: now,
            open_trades: &open_trades,
            quotes: &held_quotes,
            underlying_prices: &prices,
            closed_trades: &closed_today,
        });

        let session_start = self
            .memory
            .session_start
            .clone()
            .unwrap_or_else(|| account.clone());
        let working = self.store.open_orders()?;
        let base_ctx = self.risk_context(
            &session_start,
            &account,
            &open_trades,
            &held_quotes,
            &prices,
            &working,
            today,
            opened_today,
        )?;
        for change in self.governor.on_cycle(&base_ctx, now) {
            record_state_change(&self.executor, &change)?;
        }

        // ---- reason --------------------------------------------------
        let trading = phase != Phase::Closed;
        let stale = working.iter().any(|o| {
            matches!(
                o.status,
                OrderStatus::Sent | OrderStatus::Accepted | OrderStatus::PartiallyFilled
            ) && (now - o.intent.created_at).num_minutes()
                >= self.params.reprice.reprice_after_minutes
        });
        let has_stock = positions
            .iter()
            .any(|p| matches!(p.contract, Contract::Stock(_)) && p.quantity != 0);
        let free_slots = self.free_slots(&open_trades, &working);
        let scan_due = match self.memory.last_scan {
            Some(t) => {
                execution::trade_log::exchange_date(t) != today
                    || (now - t).num_minutes() >= self.params.entry_scan_minutes
            }
            None => true,
        };
        let mut actions = Vec::new();
        let mut why = Vec::new();
        if trading && stale {
            actions.push(Action::CancelStale);
            why.push(Criterion::text(
                "stale_orders",
                "yes",
                "orders unfilled past the reprice time",
                true,
            ));
        }
        if trading && (!open_trades.is_empty() || has_stock) && positions_fresh {
            actions.push(Action::ManageExits);
            why.push(Criterion::number(
                "open_trades",
                open_trades.len() as f64,
                "> 0",
                true,
            ));
        }
        let state = self.governor.state();
        let can_scan = phase == Phase::Open
            && state == TradingState::Active
            && free_slots > 0
            && scan_due
            && account_fresh
            && positions_fresh;
        if !(account_fresh && positions_fresh) {
            why.push(Criterion::text(
                "broker_data",
                format!("account {account_fresh}, positions {positions_fresh}"),
                "fresh account and positions for entries (exits need fresh positions)",
                false,
            ));
        }
        if can_scan {
            actions.push(Action::ScanEntries);
        }
        why.push(Criterion::text(
            "phase",
            format!("{phase:?}").to_lowercase(),
            "open for entries",
            phase == Phase::Open,
        ));
        why.push(Criterion::text(
            "trading_state",
            state.as_str(),
            "active for entries",
            state == TradingState::Active,
        ));
        why.push(Criterion::number(
            "free_slots",
            free_slots as f64,
            "> 0 for entries",
            free_slots > 0,
        ));
        why.push(Criterion::text(
            "scan_due",
            scan_due.to_string(),
            format!(
                "first open cycle or {} min since the last scan",
                self.params.entry_scan_minutes
            ),
            scan_due,
        ));
        if self.memory.flatten {
            why.push(Criterion::text(
                "flatten",
                "pending",
                "after an emergency stop with flatten, exits are emergency closes until a resume",
                true,
            ));
        }
        if analyze_now {
            actions.push(Action::AnalyzePerformance);
        }
        if !closed_now.is_empty() {
            actions.push(Action::Learn);
        }
        if actions.is_empty() {
            actions.push(Action::Idle);
        }
        // The optional AI reasoner (crate::agent) may leave actions out.
        let actions = self.agent.reason(&self.store, now, actions, || json!({"state": {"phase": format!("{phase:?}").to_lowercase(), "trading_state": state.as_str(), "open_trades": open_trades.len(), "free_slots": free_slots, "working_orders": working.len()}, "positions": &monitor, "events": report.events.iter().map(EngineEvent::describe).collect::<Vec<_>>()})).await;
        report.actions = actions.clone();
        if actions != self.memory.last_actions || actions != [Action::Idle] {
            let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            let record = DecisionRecord::new(
                now,
                DecisionKind::Action,
                "engine",
                names.join("+"),
                format!(
                    "phase {phase:?}, {state}, {} open trades, {free_slots} free slots, {} working orders",
                    open_trades.len(),
                    working.len()
                ),
            )
            .with_criteria(why)
            .with_context(json!({
                "alerts": monitor.alerts().map(|a| a.message()).collect::<Vec<_>>(),
                "unrealized_pnl": monitor.unrealized_pnl.to_string(),
                "net_liquidation": account.net_liquidation.to_string(),
                "events": report.events.iter().map(EngineEvent::describe).collect::<Vec<_>>(),
            }));
            self.store.append_decision(&record)?;
        }
        self.memory.last_actions = actions.clone();

        // ---- act -----------------------------------------------------
        for action in &actions {
            match action {
                Action::CancelStale => {
                    let cancelled = self
                        .executor
                        .cancel_stale(now, &self.params.reprice)
                        .await?;
                    report.cancelled += cancelled.len();
                }
                Action::ManageExits => {
                    let closable = live::closable(&open_trades, &position_gone);
                    report.exits_sent += self
                        .manage_exits(now, &closable, &held_quotes, &positions, &prices, &base_ctx)
                        .await?;
                }
                Action::ScanEntries => {
                    self.memory.last_scan = Some(now);
                    let (sent, refused) = self
                        .scan_entries(
                            now,
                            today,
                            &session_start,
                            &account,
                            &open_trades,
                            &held_quotes,
                        )
                        .await?;
                    report.entries_sent += sent;
                    report.entries_refused += refused;
                }
                Action::AnalyzePerformance => self.analyze_performance(now)?,
                Action::Learn | Action::Idle => {}
            }
        }
        // Shadow trades are followed hourly in market hours and at each
        // close (where expiries settle); evidence only, never P&L.
        let shadow_due = self
            .memory
            .last_shadow_check
            .is_none_or(|t| (now - t).num_minutes() >= self.params.shadow_check_minutes);
        if self.params.shadow_trades && ((trading && shadow_due) || analyze_now) {
            report.shadows_closed += self.follow_shadows(now, today).await?;
            self.memory.last_shadow_check = Some(now);
        }

        // ---- learn ---------------------------------------------------
        if !closed_now.is_empty() {
            match self
                .learning
                .on_trades_closed(&self.store, &closed_now, now)
            {
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
                    &mut report,
                )?,
            }
            self.apply_parameter_changes(now)?;
            store::crash_point("learn");
        }
        self.remember_monitor(now, &monitor)?;
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

    fn finish(&mut self, now: DateTime<Utc>, report: &CycleReport) -> Result<(), EngineError> {
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
            self.stored_memory = None;
        }
        self.persist_memory()
    }

    /// Writes working memory now, the cycle counter and the last cycle's
    /// time included. The loop calls it when it stops: an idle stretch
    /// skips these writes, and a restart must continue from the last
    /// cycle run, not from the last one that changed something.
    pub fn save_memory(&mut self) -> Result<(), EngineError> {
        self.stored_memory = None;
        self.persist_memory()
    }

    /// Writes working memory when anything but the cycle counter and time
    /// changed (an idle night writes nothing; the counter catches up with
    /// the next write).
    fn persist_memory(&mut self) -> Result<(), EngineError> {
        let memory = serde_json::to_value(&self.memory)
            .map_err(|e| EngineError::Config(format!("serializing working memory: {e}")))?;
        let mut comparable = memory.clone();
        if let Some(o) = comparable.as_object_mut() {
            o.remove("cycles");
            o.remove("last_cycle");
        }
        if self.stored_memory.as_ref() == Some(&comparable) {
            return Ok(());
        }
        let goals = json!(self.memory.goals);
        let actions = json!(self.memory.recent_actions);
        let events = serde_json::to_value(&self.memory.recent_events).unwrap_or_else(|_| json!([]));
        self.store.atomically(|tx| -> Result<(), EngineError> {
            tx.remember(keys::ENGINE, &memory)?;
            tx.remember(keys::GOALS, &goals)?;
            tx.remember(keys::RECENT_ACTIONS, &actions)?;
            tx.remember(keys::RECENT_EVENTS, &events)?;
            Ok(())
        })?;
        self.stored_memory = Some(comparable);
        Ok(())
    }

    /// Keeps the latest monitor report in working memory (for `trader-cli
    /// positions` and the dashboard): written when the positions or their
    /// alerts change, and at least hourly while positions are open.
    fn remember_monitor(
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

    /// The open trades, read from the store when they may have changed.
    fn open_trades(&mut self) -> Result<Vec<Trade>, EngineError> {
        if let Some(cached) = &self.open_cache {
            return Ok(cached.clone());
        }
        let open = self.store.trades(&TradeFilter {
            open: Some(true),
            ..TradeFilter::default()
        })?;
        self.open_cache = Some(open.clone());
        Ok(open)
    }

    /// Trades entered or closed on `date` (read once per session, then
    /// kept up to date from the trade log's changes).
    fn trades_of_day(&mut self, date: NaiveDate) -> Result<Vec<Trade>, EngineError> {
        if let Some((d, trades)) = &self.today
            && *d == date
        {
            return Ok(trades.clone());
        }
        let recent = self.store.trades(&TradeFilter {
            limit: Some(100),
            ..TradeFilter::default()
        })?;
        let trades: Vec<Trade> = recent
            .into_iter()
            .filter(|t| t.entry_date == date || t.exit_date == Some(date))
            .collect();
        self.today = Some((date, trades.clone()));
        Ok(trades)
    }

    fn note_trade_change(&mut self, date: NaiveDate, trade: &Trade) {
        if let Some((d, trades)) = &mut self.today
            && *d == date
        {
            trades.retain(|t| t.trade_id != trade.trade_id);
            trades.push(trade.clone());
        }
    }

    /// Current prices (mid, else last) of `symbols`; a symbol whose quote
    /// fails is left out.
    async fn stock_prices(&self, symbols: &[Symbol]) -> BTreeMap<Symbol, Price> {
        let mut out = BTreeMap::new();
        for s in symbols {
            if out.contains_key(s) {
                continue;
            }
            if let Ok(q) = self.broker().stock_quote(s).await
                && let Some(p) = q.mid().filter(|p| p.is_positive()).or(q.last)
            {
                out.insert(s.clone(), p);
            }
        }
        out
    }

    async fn closes(&self, symbol: &Symbol, today: NaiveDate, n: usize) -> Vec<f64> {
        match self.broker().daily_bars(symbol, today, n + 1).await {
            Ok(bars) => bars
                .into_iter()
                .filter(|b| b.date < today)
                .map(|b| b.close.to_f64())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Closes of `symbol` up to the last completed session, or none when
    /// the series stops before it: a broker returns the last bars it has,
    /// and an index whose data ended must read as unknown, not as its last
    /// value frozen.
    async fn fresh_closes(&self, symbol: &Symbol, today: NaiveDate, n: usize) -> Vec<f64> {
        let Ok(bars) = self.broker().daily_bars(symbol, today, n + 1).await else {
            return Vec::new();
        };
        let bars: Vec<_> = bars.into_iter().filter(|b| b.date < today).collect();
        let expected = self.schedule.calendar().previous_session(today);
        match (bars.last(), expected) {
            (Some(last), Some(prev)) if last.date >= prev => {
                bars.into_iter().map(|b| b.close.to_f64()).collect()
            }
            _ => Vec::new(),
        }
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

    /// A session's first cycle: its starting account, the market events,
    /// the regime and the VIX.
    async fn start_session(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
        account: &AccountSnapshot,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        self.memory.session = Some(today);
        self.memory.session_start = Some(account.clone());
        self.store.insert_snapshot(account)?;
        self.memory.active_experiments = self
            .store
            .experiments()?
            .into_iter()
            .filter(|e| e.status == core_domain::ExperimentStatus::Active)
            .map(|e| format!("{}: {}", e.experiment_id, e.hypothesis))
            .collect();
        self.memory.patterns = self
            .store
            .patterns(Some(core_domain::PatternStatus::Active))?
            .into_iter()
            .map(|(_, p)| p.pattern_name)
            .collect();
        let p = self.params.detector.clone();
        let index_symbol =
            Symbol::new(INDEX_SYMBOL).map_err(|e| EngineError::Config(e.to_string()))?;
        let vix_symbol = Symbol::new(VIX_SYMBOL).map_err(|e| EngineError::Config(e.to_string()))?;
        let index = self
            .fresh_closes(&index_symbol, today, p.regime_average_sessions + 1)
            .await;
        let vix = self.fresh_closes(&vix_symbol, today, 2).await;
        self.memory.vix = vix.last().copied();
        self.memory.regime = Some(events::regime(&index, self.memory.vix, &p));
        for e in events::market_events(now, &index, &vix, &p) {
            report.events.push(e);
        }
        Ok(())
    }

    /// Slots free for new positions: the strategy's maximum (the risk
    /// limit checks it again) minus open trades and working entries.
    fn free_slots(&self, open_trades: &[Trade], working: &[Order]) -> i64 {
        let max = self.governor.limits().max_open_positions;
        let entries = working
            .iter()
            .filter(|o| o.intent.purpose == OrderPurpose::Open)
            .count();
        max - open_trades.len() as i64 - entries as i64
    }

    #[allow(clippy::too_many_arguments)]
    fn risk_context(
        &self,
        session_start: &AccountSnapshot,
        account: &AccountSnapshot,
        open_trades: &[Trade],
        quotes: &[OptionQuote],
        prices: &BTreeMap<Symbol, Price>,
        working: &[Order],
        today: NaiveDate,
        opened_today: i64,
    ) -> Result<RiskContext, EngineError> {
        let mut ctx = RiskContext::new(session_start.clone(), account.clone());
        ctx.risk_free_rate = self.params.risk_free_rate;
        ctx.api_errors_last_hour = u32::try_from(self.memory.api_errors.len()).unwrap_or(u32::MAX);
        for t in open_trades {
            let contract = put_of(t);
            let quote = quotes.iter().find(|q| q.contract.key() == contract.key());
            let mark = quote
                .and_then(|q| q.quote.mid().or(q.quote.ask).or(q.quote.last))
                .unwrap_or(t.entry_premium);
            let iv = quote
                .and_then(|q| q.quote.implied_vol)
                .filter(|v| v.is_finite() && *v > 0.0)
                .unwrap_or(self.params.fallback_implied_vol);
            ctx.positions.push(ShortPutExposure {
                contract,
                sector: t.sector.clone(),
                contracts: t.contracts,
                mark,
                underlying_price: prices
                    .get(&t.symbol)
                    .copied()
                    .unwrap_or(t.entry_underlying_price),
                implied_vol: iv,
            });
        }
        let mut opened_today = opened_today;
        for o in working
            .iter()
            .filter(|o| o.intent.purpose == OrderPurpose::Open)
        {
            if let Contract::Option(c) = &o.intent.contract {
                let ctx_o = OrderContext::of(o);
                let entry = ctx_o.entry.as_ref();
                ctx.positions.push(ShortPutExposure {
                    contract: c.clone(),
                    sector: entry.and_then(|e| e.sector.clone()),
                    contracts: o.remaining(),
                    mark: o.intent.limit_price,
                    underlying_price: ctx_o.underlying_price.unwrap_or(c.strike),
                    implied_vol: self.params.fallback_implied_vol,
                });
                if execution::trade_log::exchange_date(o.intent.created_at) == today {
                    opened_today += 1;
                }
            }
        }
        ctx.opened_today = opened_today;
        Ok(ctx)
    }

    /// Operator requests queued in the database, oldest first.
    async fn handle_control_requests(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        for request in self.store.pending_control_requests()? {
            let Some(id) = request.id else { continue };
            let outcome = match request.action {
                ControlAction::EmergencyStop => {
                    let stop = EmergencyStop {
                        actor: request.actor.clone(),
                        reason: request.reason.clone(),
                        flatten: request.flatten,
                    };
                    let report = self.emergency(now, &stop).await?;
                    let mut outcome = format!(
                        "halted; {} orders cancelled, {} closing orders sent, {} failed",
                        report.cancelled.len(),
                        report.closing_orders.len(),
                        report.closing_failed.len() + report.cancel_failed.len()
                    );
                    if !report.closing_held.is_empty() {
                        outcome.push_str(&format!(
                            "; {} positions close at a later cycle (cancels unconfirmed, or no position at the broker)",
                            report.closing_held.len()
                        ));
                    }
                    if request.flatten {
                        self.memory.flatten = true;
                        if self.schedule.phase(now) == Phase::Closed {
                            outcome.push_str("; the market is closed: positions close at the next session's open");
                        }
                    }
                    outcome
                }
                ControlAction::Resume => {
                    self.memory.flatten = false;
                    match self.governor.resume(now, &request.actor, &request.reason) {
                        Some(change) => {
                            record_state_change(&self.executor, &change)?;
                            "resumed: active".to_string()
                        }
                        None => "already active".to_string(),
                    }
                }
            };
            self.store.mark_control_handled(id, now, &outcome)?;
            self.memory
                .push_action(format!("{now} {}: {outcome}", request.action.as_str()));
        }
        Ok(())
    }

    /// The emergency stop against the live book: halt, cancel everything
    /// and, with `flatten`, close every position (at the touch, as every
    /// urgent exit: [`execution::exit_limit`]), each close with its
    /// decision record. Outside a session nothing can be sent: the closes
    /// go out from the next session's first cycle (see [`Memory::flatten`]).
    /// The closes are sized after the cancels, from the broker's positions
    /// read again then; a trade with an order still open at the broker is
    /// closed at a later cycle, once the cancel is confirmed. While the
    /// broker is unreachable the halt is recorded and the cancels are sent
    /// at reconnect (see `engine::live`).
    pub async fn emergency(
        &mut self,
        now: DateTime<Utc>,
        stop: &EmergencyStop,
    ) -> Result<execution::EmergencyReport, EngineError> {
        self.emergency_live(now, stop).await
    }

    /// Prices an exit by the reprice policy when its contract has a quote
    /// (urgent exits at the touch, chasing one step per earlier unfilled
    /// attempt; patient ones between the mid and the touch); returns the
    /// attempt number.
    fn price_exit(
        &self,
        order: &mut ExitOrder,
        snapshot: &MarketSnapshot,
    ) -> Result<u32, EngineError> {
        let attempt = self.previous_attempts(order)?;
        let quote = quote_in(snapshot, &order.intent.contract);
        if let Some(q) = &quote
            && let Some(limit) = self
                .exits
                .repriced_limit(order, q, attempt, &self.params.reprice)
        {
            order.intent.limit_price = limit;
        }
        Ok(attempt)
    }

    async fn exit_snapshot(
        &self,
        now: DateTime<Utc>,
        open_trades: &[Trade],
        positions: &[Position],
        quotes: Vec<OptionQuote>,
    ) -> MarketSnapshot {
        let mut symbols: Vec<Symbol> = open_trades.iter().map(|t| t.symbol.clone()).collect();
        for p in positions {
            if let Contract::Stock(s) = &p.contract {
                symbols.push(s.symbol.clone());
            }
        }
        symbols.sort();
        symbols.dedup();
        let mut underlyings = Vec::new();
        for s in symbols {
            if let Ok(q) = self.broker().stock_quote(&s).await {
                underlyings.push(UnderlyingSnapshot {
                    sector: self.sector_of(&s),
                    symbol: s,
                    quote: q,
                    closes: Vec::new(),
                });
            }
        }
        MarketSnapshot {
            time: now,
            underlyings,
            option_quotes: quotes,
            vix: self.memory.vix,
        }
    }

    fn sector_of(&self, symbol: &Symbol) -> Option<String> {
        self.params
            .universe
            .iter()
            .find(|(s, _)| s == symbol)
            .and_then(|(_, sector)| sector.clone())
    }

    fn exit_context(
        &self,
        order: &ExitOrder,
        snapshot: &MarketSnapshot,
        attempt: u32,
    ) -> OrderContext {
        let quote = quote_in(snapshot, &order.intent.contract);
        let mut context = quote
            .as_ref()
            .map(OrderContext::with_quote)
            .unwrap_or_default();
        context.exit_reason = Some(order.reason);
        context.attempt = attempt;
        context.note = json!({ "decision": order.decision.reason });
        context
    }

    async fn manage_exits(
        &mut self,
        now: DateTime<Utc>,
        open_trades: &[Trade],
        quotes: &[OptionQuote],
        positions: &[Position],
        _prices: &BTreeMap<Symbol, Price>,
        ctx: &RiskContext,
    ) -> Result<usize, EngineError> {
        let working: Vec<String> = self
            .store
            .open_orders()?
            .into_iter()
            .filter(|o| o.intent.purpose != OrderPurpose::Open)
            .map(|o| o.intent.order_ref)
            .collect();
        let snapshot = self
            .exit_snapshot(now, open_trades, positions, quotes.to_vec())
            .await;
        // Forget assigned trades whose stock is gone.
        self.memory.assigned.retain(|t| {
            positions.iter().any(|p| {
                matches!(&p.contract, Contract::Stock(s) if s.symbol == t.symbol) && p.quantity > 0
            })
        });
        // After an emergency stop with flatten, while halted: every
        // position is closed, whatever the strategy says.
        let plan = if self.memory.flatten && self.governor.state() == TradingState::Halted {
            self.exits
                .emergency_exits(&snapshot, open_trades, positions, &working, now)
        } else if let Some((exp, test)) = self.experiment_strategy() {
            // Trades of the test arm exit by the test arm's rules.
            let in_test = |t: &&Trade| {
                t.experiment_id.as_deref() == Some(exp.experiment_id.as_str())
                    && t.experiment_arm.as_deref() == Some("test")
            };
            let test_trades: Vec<Trade> = open_trades.iter().filter(in_test).cloned().collect();
            let control_trades: Vec<Trade> = open_trades
                .iter()
                .filter(|t| !in_test(t))
                .cloned()
                .collect();
            let mut plan = self.exits.evaluate(
                &self.strategy,
                &snapshot,
                &control_trades,
                positions,
                &self.memory.assigned,
                &working,
            );
            if !test_trades.is_empty() {
                let t =
                    self.exits
                        .evaluate(&test, &snapshot, &test_trades, positions, &[], &working);
                plan.exits.extend(t.exits);
                plan.holds.extend(t.holds);
            }
            plan
        } else {
            self.exits.evaluate(
                &self.strategy,
                &snapshot,
                open_trades,
                positions,
                &self.memory.assigned,
                &working,
            )
        };
        let mut sent = 0;
        let mut records: Vec<DecisionRecord> = Vec::new();
        for mut order in plan.exits {
            let attempt = self.price_exit(&mut order, &snapshot)?;
            let context = self.exit_context(&order, &snapshot, attempt);
            records.push(order.decision.clone());
            let order_ref = order.intent.order_ref.clone();
            match self.governor.check(order.intent, ctx, now) {
                Ok(approved) => match self
                    .executor
                    .submit_with_context(approved, context, now)
                    .await
                {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        self.audit(
                            now,
                            "exit.not_sent",
                            json!({ "order_ref": order_ref, "error": e.to_string() }),
                            None,
                        )?;
                    }
                },
                Err(refused) => {
                    // Never expected: closing orders reduce risk.
                    self.store.append_decision(&refused.decision)?;
                }
            }
        }
        for r in records {
            self.store.append_decision(&r)?;
        }
        Ok(sent)
    }

    /// Earlier attempts of the same exit: closing orders of the trade (or
    /// liquidations of the symbol) that ended unfilled.
    fn previous_attempts(&self, order: &ExitOrder) -> Result<u32, EngineError> {
        let Some(trade_id) = &order.intent.trade_id else {
            return Ok(0);
        };
        let n = self
            .store
            .orders_for_trade(trade_id)?
            .iter()
            .filter(|o| {
                o.intent.purpose == order.intent.purpose
                    && matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired)
                    && o.filled_quantity == 0
            })
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Builds the snapshot for entries, asks the strategy, and sends each
    /// proposal through what-if margin and the governor. Returns (sent,
    /// refused).
    #[allow(clippy::too_many_arguments)]
    async fn scan_entries(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
        session_start: &AccountSnapshot,
        account: &AccountSnapshot,
        open_trades: &[Trade],
        held_quotes: &[OptionQuote],
    ) -> Result<(usize, usize), EngineError> {
        let days = self.strategy.history_days();
        let mut underlyings = Vec::new();
        let mut option_quotes = Vec::new();
        let mut skipped = Vec::new();
        // The running experiment, read once for the whole scan; its test
        // arm's range may reach beyond the control's: quote both.
        let experiment = self.experiment_strategy();
        let test_arm = experiment.as_ref().map(|(_, s)| s);
        let band = if self.params.shadow_trades {
            self.params.exploration_band
        } else {
            0.0
        };
        // Keys of the puts some arm could trade; the rest were quoted only
        // to explore.
        let mut in_range: HashSet<String> = HashSet::new();
        for (symbol, sector) in self.params.universe.clone() {
            let quote = match self.broker().stock_quote(&symbol).await {
                Ok(q) => q,
                Err(e) => {
                    skipped.push(skip(now, &symbol, format!("no quote: {e}")));
                    continue;
                }
            };
            let closes: Vec<Price> = self
                .closes(&symbol, today, days)
                .await
                .into_iter()
                .filter_map(|c| Price::from_f64(c).ok())
                .collect();
            let u = UnderlyingSnapshot {
                symbol: symbol.clone(),
                sector,
                quote,
                closes,
            };
            if self.strategy.wants_chain(&u, now) {
                let price = u.quote.mid().filter(|p| p.is_positive()).or(u.quote.last);
                if let Some(price) = price {
                    match self.broker().option_chain(&symbol).await {
                        Ok(chain) => {
                            let mut wanted = self
                                .strategy
                                .contracts_of_interest(&symbol, price, &chain, now);
                            if let Some(t) = &test_arm {
                                wanted.extend(t.contracts_of_interest(&symbol, price, &chain, now));
                            }
                            in_range.extend(wanted.iter().map(OptionContract::key));
                            if band > 0.0 {
                                wanted.extend(
                                    self.strategy
                                        .exploration_contracts(&symbol, price, &chain, now, band)
                                        .into_iter()
                                        .filter(|c| !in_range.contains(&c.key())),
                                );
                            }
                            let mut seen = HashSet::new();
                            wanted.retain(|c| seen.insert(c.key()));
                            if !wanted.is_empty() {
                                match self.broker().option_quotes(&wanted).await {
                                    Ok(q) => option_quotes.extend(q),
                                    Err(e) => skipped.push(skip(
                                        now,
                                        &symbol,
                                        format!("no option quotes: {e}"),
                                    )),
                                }
                            }
                        }
                        Err(e) => skipped.push(skip(now, &symbol, format!("no option chain: {e}"))),
                    }
                }
            }
            underlyings.push(u);
        }
        option_quotes.extend(held_quotes.iter().cloned());
        let snapshot = MarketSnapshot {
            time: now,
            underlyings,
            option_quotes,
            vix: self.memory.vix,
        };
        let (control, rejected) = self.strategy.propose_entries(&snapshot, open_trades);
        // With an experiment running, each opportunity goes to the arm its
        // key hashes to: the control arm's proposals of control keys and
        // the test arm's (the strategy with the test value) of test keys,
        // interleaved by rank; what the other arm proposed becomes an
        // `arm` shadow trade.
        let mut tagged: Vec<(EntryProposal, Option<(String, &'static str)>)> = Vec::new();
        let mut other_arm: Vec<(EntryProposal, String, &'static str)> = Vec::new();
        match experiment {
            Some((exp, test)) => {
                let (test_proposals, _) = test.propose_entries(&snapshot, open_trades);
                let id = exp.experiment_id.clone();
                let mut keep_control = Vec::new();
                for p in control {
                    if self.learning.arm(&exp, &p.contract.key()) == "control" {
                        keep_control.push(p);
                    } else {
                        other_arm.push((p, id.clone(), "control"));
                    }
                }
                let mut keep_test = Vec::new();
                for p in test_proposals {
                    if self.learning.arm(&exp, &p.contract.key()) == "test" {
                        keep_test.push(p);
                    } else {
                        other_arm.push((p, id.clone(), "test"));
                    }
                }
                let (mut c, mut t) = (keep_control.into_iter(), keep_test.into_iter());
                loop {
                    let (a, b) = (c.next(), t.next());
                    if a.is_none() && b.is_none() {
                        break;
                    }
                    if let Some(p) = a {
                        tagged.push((p, Some((id.clone(), "control"))));
                    }
                    if let Some(p) = b {
                        tagged.push((p, Some((id.clone(), "test"))));
                    }
                }
            }
            None => tagged.extend(control.into_iter().map(|p| (p, None))),
        }
        // Skip records: the screen's and the finder's, one per symbol or
        // contract, written together; a skip repeated in the same session
        // for the same failed criteria is recorded once.
        if self.skips_session != Some(today) {
            // A new session, or the first scan since a restart: the skips
            // already on record this session (none in a new one).
            self.skips_recorded = self.skips_on_record(today)?;
            self.skips_session = Some(today);
        }
        // The first reason each contract (or symbol) was left out, for its
        // shadow trade.
        let mut skip_reasons: HashMap<String, String> = HashMap::new();
        for r in rejected.iter() {
            skip_reasons
                .entry(r.subject.clone())
                .or_insert_with(|| r.reason.clone());
        }
        let mut fresh = Vec::new();
        for r in skipped.into_iter().chain(rejected) {
            let key = (r.subject.clone(), skip_key(&r));
            if self.skips_recorded.insert(key) {
                fresh.push(r);
            }
        }
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for r in &fresh {
                tx.append_decision(r)?;
            }
            Ok(())
        })?;
        store::crash_point("scan");

        let working = self.store.open_orders()?;
        let prices: BTreeMap<Symbol, Price> = snapshot
            .underlyings
            .iter()
            .filter_map(|u| {
                u.quote
                    .mid()
                    .or(u.quote.last)
                    .map(|p| (u.symbol.clone(), p))
            })
            .collect();
        let opened_today = self
            .trades_of_day(today)?
            .iter()
            .filter(|t| t.entry_date == today)
            .count() as i64;
        let mut ctx = self.risk_context(
            session_start,
            account,
            open_trades,
            &snapshot.option_quotes,
            &prices,
            &working,
            today,
            opened_today,
        )?;
        let (mut sent, mut refused) = (0, 0);
        let mut outcomes: HashMap<String, ShadowTag> = HashMap::new();
        for (p, id, arm) in other_arm {
            outcomes.insert(
                p.contract.key(),
                ShadowTag {
                    origin: core_domain::ShadowOrigin::Arm,
                    reason: format!(
                        "proposed by the {arm} arm of {id}; the key belongs to the other arm"
                    ),
                    experiment: Some((id, arm.to_string())),
                },
            );
        }
        for (proposal, arm) in tagged {
            let symbol = proposal.contract.underlying.clone();
            let quote = snapshot
                .option_quotes
                .iter()
                .find(|q| q.contract.key() == proposal.contract.key())
                .map(|q| q.quote.clone());
            let Some(underlying) = prices.get(&symbol).copied() else {
                continue;
            };
            let trade_id = trade_id_for(&proposal.contract, now);
            let intent = OrderIntent {
                order_ref: format!("O-{trade_id}"),
                contract: Contract::Option(proposal.contract.clone()),
                side: Side::Sell,
                quantity: proposal.contracts,
                limit_price: proposal.limit_price,
                time_in_force: TimeInForce::Day,
                purpose: OrderPurpose::Open,
                trade_id: Some(trade_id.clone()),
                created_at: now,
            };
            let what_if = self.broker().what_if(&intent).await;
            let (margin_change, margin_after) = match &what_if {
                Ok(m) => (Some(m.initial_margin_change), Some(m.initial_margin_after)),
                Err(_) => (None, None),
            };
            let iv = quote
                .as_ref()
                .and_then(|q| q.implied_vol)
                .filter(|v| v.is_finite() && *v > 0.0)
                .unwrap_or(self.params.fallback_implied_vol);
            ctx.what_if_initial_margin_after = margin_after;
            ctx.order_market = Some(OrderMarket {
                sector: self.sector_of(&symbol),
                underlying_price: underlying,
                implied_vol: iv,
            });
            self.load_returns(today, &ctx, &symbol).await;
            ctx.returns = self.returns_for(&ctx, &symbol);
            match self.governor.check(intent, &ctx, now) {
                Ok(approved) => {
                    let mut entry = self.entry_template(
                        &proposal,
                        &trade_id,
                        now,
                        today,
                        underlying,
                        margin_change,
                    );
                    if let Some((id, a)) = &arm {
                        entry.is_experiment = true;
                        entry.experiment_id = Some(id.clone());
                        entry.experiment_arm = Some((*a).to_string());
                    }
                    let mut context = quote
                        .as_ref()
                        .map(OrderContext::with_quote)
                        .unwrap_or_default();
                    context.underlying_price = Some(underlying);
                    context.entry = Some(entry);
                    context.note = json!({ "decision": proposal.decision.reason });
                    self.store.append_decision(&proposal.decision)?;
                    match self
                        .executor
                        .submit_with_context(approved, context, now)
                        .await
                    {
                        Ok(order) => {
                            sent += 1;
                            outcomes.insert(
                                proposal.contract.key(),
                                ShadowTag {
                                    origin: core_domain::ShadowOrigin::Taken,
                                    reason: proposal.decision.reason.clone(),
                                    experiment: arm.clone().map(|(i, a)| (i, a.to_string())),
                                },
                            );
                            // Counted at once: the next check sees it.
                            ctx.positions.push(ShortPutExposure {
                                contract: proposal.contract.clone(),
                                sector: self.sector_of(&symbol),
                                contracts: order.intent.quantity,
                                mark: order.intent.limit_price,
                                underlying_price: underlying,
                                implied_vol: iv,
                            });
                            ctx.opened_today += 1;
                            if let Ok(a) = self.broker().account_summary().await {
                                ctx.account = a;
                            }
                        }
                        Err(e) => {
                            self.audit(
                                now,
                                "entry.not_sent",
                                json!({ "trade_id": trade_id, "error": e.to_string() }),
                                None,
                            )?;
                        }
                    }
                }
                Err(r) => {
                    refused += 1;
                    outcomes.insert(
                        proposal.contract.key(),
                        ShadowTag {
                            origin: core_domain::ShadowOrigin::Refused,
                            reason: r.decision.reason.clone(),
                            experiment: arm.clone().map(|(i, a)| (i, a.to_string())),
                        },
                    );
                    self.store.append_decision(&r.decision)?;
                    for change in &r.state_changes {
                        record_state_change(&self.executor, change)?;
                    }
                }
            }
        }
        ctx.what_if_initial_margin_after = None;
        if self.params.shadow_trades {
            self.record_shadows(
                now,
                today,
                &snapshot,
                &prices,
                &skip_reasons,
                &outcomes,
                &in_range,
            )?;
        }
        Ok((sent, refused))
    }

    /// The (subject, failed criteria) keys of the skip records written in
    /// the session of `today` — what a restarted engine must not record
    /// again.
    fn skips_on_record(
        &self,
        today: NaiveDate,
    ) -> Result<std::collections::HashSet<(String, String)>, EngineError> {
        let midnight = today
            .and_hms_opt(0, 0, 0)
            .and_then(|t| {
                t.and_local_timezone(chrono_tz::America::New_York)
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc));
        let Some(since) = midnight else {
            return Ok(std::collections::HashSet::new());
        };
        Ok(self
            .store
            .decisions_since(DecisionKind::Skip, since)?
            .into_iter()
            .map(|r| (r.subject.clone(), skip_key(&r)))
            .collect())
    }

    /// A shadow trade for every put the strategy evaluated in this scan
    /// (the snapshot's quotes of its search range, with a bid): taken,
    /// refused, or skipped with the strategy's reason; one per contract
    /// (its first evaluation: later ones of the same contract are the same
    /// opportunity at another price and are not recorded again). Puts
    /// quoted only to explore (not in `in_range`) are skipped with the
    /// reason "outside the search range".
    #[allow(clippy::too_many_arguments)]
    fn record_shadows(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        snapshot: &MarketSnapshot,
        prices: &BTreeMap<Symbol, Price>,
        skip_reasons: &HashMap<String, String>,
        outcomes: &HashMap<String, ShadowTag>,
        in_range: &HashSet<String>,
    ) -> Result<(), EngineError> {
        let held: Vec<String> = self
            .open_cache
            .as_ref()
            .map(|t| t.iter().map(|t| put_of(t).key()).collect())
            .unwrap_or_default();
        let mut shadows = Vec::new();
        for q in &snapshot.option_quotes {
            let c = &q.contract;
            let key = c.key();
            if c.right != Right::Put || held.contains(&key) {
                continue;
            }
            let (Some(bid), Some(underlying)) = (
                q.quote.bid.filter(|b| b.is_positive()),
                prices.get(&c.underlying).copied(),
            ) else {
                continue;
            };
            let tag = outcomes.get(&key).cloned().unwrap_or_else(|| {
                if !in_range.contains(&key) {
                    return ShadowTag {
                        origin: core_domain::ShadowOrigin::Skipped,
                        reason: EXPLORED_REASON.into(),
                        experiment: None,
                    };
                }
                let why = skip_reasons
                    .get(&key)
                    .or_else(|| skip_reasons.get(c.underlying.as_str()))
                    .cloned()
                    .unwrap_or_else(|| "not proposed".into());
                ShadowTag {
                    origin: core_domain::ShadowOrigin::Skipped,
                    reason: why,
                    experiment: None,
                }
            });
            let (origin, reason) = (tag.origin, tag.reason);
            let (experiment_id, experiment_arm) = match tag.experiment {
                Some((i, a)) => (Some(i), Some(a)),
                None => (None, None),
            };
            let s = underlying.to_f64();
            shadows.push(core_domain::ShadowTrade {
                shadow_id: format!("S-{key}"),
                created_at: now,
                symbol: c.underlying.clone(),
                sector: self.sector_of(&c.underlying),
                strike: c.strike,
                expiration: c.expiry,
                entry_premium: bid,
                entry_underlying_price: underlying,
                otm_pct: if s > 0.0 {
                    (s - c.strike.to_f64()) / s
                } else {
                    0.0
                },
                dte: (c.expiry - today).num_days(),
                margin_at_entry: pricing::short_put_margin(underlying, c.strike, bid, 1)
                    .unwrap_or(core_domain::Money::ZERO),
                origin,
                reason,
                experiment_id,
                experiment_arm,
                vix_at_entry: self.memory.vix,
                status: TradeStatus::Open,
                exit_time: None,
                exit_premium: None,
                exit_reason: None,
                profit_loss: None,
                roi: None,
            });
        }
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for s in &shadows {
                tx.insert_shadow(s)?;
            }
            Ok(())
        })
    }

    /// Follows the open shadow trades (see `learning::shadow`): quotes
    /// them, applies the exit rules, closes those that exit.
    async fn follow_shadows(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<usize, EngineError> {
        let open = self.store.open_shadows()?;
        if open.is_empty() {
            return Ok(0);
        }
        let contracts: Vec<OptionContract> = open
            .iter()
            .filter(|s| s.expiration >= today)
            .map(|s| OptionContract::us(s.symbol.clone(), Right::Put, s.strike, s.expiration))
            .collect();
        let quotes = if contracts.is_empty() {
            Vec::new()
        } else {
            self.broker()
                .option_quotes(&contracts)
                .await
                .unwrap_or_default()
        };
        let mut symbols: Vec<Symbol> = open.iter().map(|s| s.symbol.clone()).collect();
        symbols.sort();
        symbols.dedup();
        let prices = self.stock_prices(&symbols).await;
        let mut closed = Vec::new();
        for mut s in open {
            let key =
                OptionContract::us(s.symbol.clone(), Right::Put, s.strike, s.expiration).key();
            let ask = quotes
                .iter()
                .find(|q| q.contract.key() == key)
                .and_then(|q| q.quote.ask);
            if let Some((reason, price)) = learning::shadow::follow(
                &s,
                ask,
                prices.get(&s.symbol).copied(),
                today,
                &self.params.shadow_rules,
            ) {
                learning::shadow::close(&mut s, reason, price, now);
                closed.push(s);
            }
        }
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for s in &closed {
                tx.update_shadow(s)?;
            }
            Ok(())
        })?;
        Ok(closed.len())
    }

    async fn load_returns(&mut self, today: NaiveDate, ctx: &RiskContext, new: &Symbol) {
        if self.returns_session != Some(today) {
            self.returns.clear();
            self.returns_session = Some(today);
        }
        let mut wanted: Vec<Symbol> = ctx
            .positions
            .iter()
            .map(|p| p.contract.underlying.clone())
            .collect();
        wanted.push(new.clone());
        for s in wanted {
            if self.returns.contains_key(&s) {
                continue;
            }
            let closes = self
                .closes(&s, today, self.params.returns_lookback + 1)
                .await;
            let r: Vec<f64> = closes
                .windows(2)
                .filter(|w| w[0] > 0.0 && w[1] > 0.0)
                .map(|w| (w[1] / w[0]).ln())
                .collect();
            self.returns.insert(s, r);
        }
    }

    fn returns_for(&self, ctx: &RiskContext, new: &Symbol) -> BTreeMap<Symbol, Vec<f64>> {
        let mut out = BTreeMap::new();
        for s in ctx
            .positions
            .iter()
            .map(|p| &p.contract.underlying)
            .chain(std::iter::once(new))
        {
            if let Some(r) = self.returns.get(s) {
                out.insert(s.clone(), r.clone());
            }
        }
        // All series must end on the same session and have equal length:
        // cut to the shortest.
        let shortest = out.values().map(Vec::len).min().unwrap_or(0);
        for v in out.values_mut() {
            let cut = v.len() - shortest;
            v.drain(..cut);
        }
        out
    }

    fn entry_template(
        &self,
        proposal: &EntryProposal,
        trade_id: &str,
        now: DateTime<Utc>,
        today: NaiveDate,
        underlying: Price,
        margin: Option<core_domain::Money>,
    ) -> Trade {
        let c = &proposal.contract;
        let s = underlying.to_f64();
        let margin = margin.filter(|m| m.cents() > 0).unwrap_or_else(|| {
            pricing::short_put_margin(
                underlying,
                c.strike,
                proposal.limit_price,
                proposal.contracts,
            )
            .unwrap_or(core_domain::Money::ZERO)
        });
        let mut trade = Trade::opened(
            trade_id,
            c.underlying.clone(),
            c.strike,
            c.expiry,
            now,
            today,
            proposal.limit_price,
            proposal.contracts,
        );
        trade.sector = self.sector_of(&c.underlying);
        trade.entry_underlying_price = underlying;
        trade.margin_at_entry = margin;
        trade.otm_pct = if s > 0.0 {
            (s - c.strike.to_f64()) / s
        } else {
            0.0
        };
        trade.vix_at_entry = self.memory.vix;
        trade.market_regime = self.memory.regime.unwrap_or(MarketRegime::Unknown);
        trade
    }
}

/// The quote of `contract` in `snapshot` (an option's, or a stock's).
fn quote_in(snapshot: &MarketSnapshot, contract: &Contract) -> Option<core_domain::Quote> {
    match contract {
        Contract::Option(c) => snapshot
            .option_quotes
            .iter()
            .find(|q| q.contract.key() == c.key())
            .map(|q| q.quote.clone()),
        Contract::Stock(s) => snapshot
            .underlyings
            .iter()
            .find(|u| u.symbol == s.symbol)
            .map(|u| u.quote.clone()),
    }
}

/// The reason of a shadow trade quoted only to explore beyond the range.
pub const EXPLORED_REASON: &str =
    "outside the search range: quoted to learn what widening the range would do";

/// How an evaluated opportunity is recorded as a shadow trade.
#[derive(Debug, Clone)]
struct ShadowTag {
    origin: core_domain::ShadowOrigin,
    reason: String,
    experiment: Option<(String, String)>,
}

/// The put a trade holds short.
pub fn put_of(t: &Trade) -> OptionContract {
    OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration)
}

/// `T-{yyyymmddHHMM}-{SYMBOL}-{strike}P`: one trade per underlying and
/// cycle, the same on a re-run of the same cycle (so a restart cannot
/// send it twice: the order ref is `O-` + this).
pub fn trade_id_for(contract: &OptionContract, now: DateTime<Utc>) -> String {
    format!(
        "T-{}-{}-{}P",
        now.format("%Y%m%d%H%M"),
        contract.underlying,
        contract.strike
    )
}

/// What makes two skips of one subject the same: the names of the
/// criteria that failed.
fn skip_key(r: &DecisionRecord) -> String {
    let failed: Vec<&str> = r
        .criteria
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    failed.join(",")
}

fn skip(now: DateTime<Utc>, symbol: &Symbol, why: String) -> DecisionRecord {
    DecisionRecord::new(now, DecisionKind::Skip, symbol.to_string(), "skip", why)
}
