//! Perceive: the first phase of a cycle. Broker events are recorded
//! through the executor, operator requests carried out, orders resolved
//! against the broker, the account and positions read, the session started
//! (or its close recorded), the positions reconciled with the open trades,
//! the open trades quoted and monitored, and the circuit breakers run.
//! What it saw is a [`Perception`], the only input of
//! [`reason`](super::reason::reason).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AccountRepository, AccountSnapshot, Broker, Contract, LearningRepository, MarketData,
    OptionContract, OptionQuote, Order, OrderPurpose, OrderRepository, Position, Price, Strategy,
    Symbol, Trade, TradeFilter, TradeRepository, TradeStatus,
};
use execution::{
    EmergencyStop, MonitorInput, MonitorReport, OrderContext, TradeChange, record_state_change,
};
use risk::{RiskContext, ShortPutExposure, TradingState};
use store::ControlAction;

use super::{Action, CycleReport, Engine, INFORMATIONAL_CODES, put_of};
use crate::events::{self, EngineEvent};
use crate::hook::LearningHook;
use crate::schedule::Phase;
use crate::{EngineError, INDEX_SYMBOL, VIX_SYMBOL};

/// What a cycle's perceive step saw: everything [`reason`](super::reason::reason)
/// decides on and the act step works with. Built once per cycle, read-only
/// afterwards.
#[derive(Debug, Clone)]
pub struct Perception {
    pub now: DateTime<Utc>,
    /// The exchange (New York) date of `now`.
    pub today: NaiveDate,
    pub phase: Phase,
    /// The trading state after this cycle's circuit breakers.
    pub trading_state: TradingState,
    /// The broker's account, or the last one read when it did not answer.
    pub account: AccountSnapshot,
    /// Whether `account` was read this cycle.
    pub account_fresh: bool,
    /// The session's starting account (the daily-loss base); `account`
    /// before the session started.
    pub session_start: AccountSnapshot,
    /// The broker's positions, or the stored ones when it did not answer.
    pub positions: Vec<Position>,
    /// Whether `positions` were read this cycle.
    pub positions_fresh: bool,
    pub open_trades: Vec<Trade>,
    /// Quotes of the open trades' puts.
    pub held_quotes: Vec<OptionQuote>,
    /// Prices of the open trades' underlyings and of stock held.
    pub prices: BTreeMap<Symbol, Price>,
    /// Orders the store holds as not ended.
    pub working: Vec<Order>,
    /// Slots free for new positions (the limit minus open trades and
    /// working entries).
    pub free_slots: i64,
    pub monitor: MonitorReport,
    /// The governor's context of the book as it is (before any entry).
    pub risk: RiskContext,
    /// Trades closed this cycle (by fills, expiry, assignment or the
    /// reconciliation): the learn step's input.
    pub closed_now: Vec<Trade>,
    /// Contract keys of open trades whose broker position is gone: never
    /// closed (see `engine::live`).
    pub position_gone: BTreeSet<String>,
    /// The session's close was recorded this cycle: analyze performance.
    pub analyze_now: bool,
    /// From working memory: when entries were last scanned.
    pub last_scan: Option<DateTime<Utc>>,
    /// From working memory: the previous cycle's actions.
    pub last_actions: Vec<Action>,
    /// From working memory: an emergency flatten is pending.
    pub flatten: bool,
    /// Minutes between entry scans within a session.
    pub entry_scan_minutes: i64,
    /// Minutes after which an unfilled order is stale.
    pub reprice_after_minutes: i64,
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// The perceive step (see the module docs). `None` when the broker
    /// gave no account and none was ever read: the cycle ends there.
    pub(super) async fn perceive(
        &mut self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<Option<Perception>, EngineError> {
        let phase = self.schedule.phase(now);
        let today = execution::trade_log::exchange_date(now);
        let mut closed_now = self.record_broker_events(now, today, report).await?;
        // Operator requests, against the book as it is now.
        self.handle_control_requests(now).await?;
        // Orders not ended, against the broker (no stuck order).
        self.resolve_orders(now, report).await?;

        // Without an account summary the last one stands in: exits run,
        // entries wait.
        let Some((account, account_fresh)) = self.account_or_last(now, report).await? else {
            return Ok(None);
        };
        report.net_liquidation_cents = account.net_liquidation.cents();
        report.account = Some(account.clone());
        let (positions, positions_fresh) = self.read_positions(now, report).await?;
        if account_fresh && phase != Phase::Closed && self.memory.session != Some(today) {
            self.start_session(now, today, &account, report).await?;
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
            self.reconcile_positions(now, today, &positions, &mut closed_now, report)
                .await?
        } else {
            BTreeSet::new()
        };
        let open_trades = self.open_trades()?;
        report.open_trades = open_trades.len();
        let (held_quotes, prices) = self
            .quote_book(now, &open_trades, &positions, report)
            .await?;
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
        let risk = self.risk_context(
            &session_start,
            &account,
            &open_trades,
            &held_quotes,
            &prices,
            &working,
            today,
            opened_today,
        )?;
        for change in self.governor.on_cycle(&risk, now) {
            record_state_change(&self.executor, &change)?;
        }
        let free_slots = self.free_slots(&open_trades, &working);
        Ok(Some(Perception {
            now,
            today,
            phase,
            trading_state: self.governor.state(),
            account,
            account_fresh,
            session_start,
            positions,
            positions_fresh,
            open_trades,
            held_quotes,
            prices,
            working,
            free_slots,
            monitor,
            risk,
            closed_now,
            position_gone,
            analyze_now,
            last_scan: self.memory.last_scan,
            last_actions: self.memory.last_actions.clone(),
            flatten: self.memory.flatten,
            entry_scan_minutes: self.params.entry_scan_minutes,
            reprice_after_minutes: self.params.reprice.reprice_after_minutes,
        }))
    }

    /// The broker's events, recorded through the executor (fills, statuses,
    /// expirations, assignments — an assignment valued at the underlying's
    /// price now) and counted as events and API errors. Returns the trades
    /// they closed.
    async fn record_broker_events(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
        report: &mut CycleReport,
    ) -> Result<Vec<Trade>, EngineError> {
        let broker_events = match self.broker().poll_events().await {
            Ok(e) => e,
            Err(e) => {
                self.system_error(now, format!("poll_events: {e}"), report)?;
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
        Ok(closed_now)
    }

    /// The broker's positions, stored when they changed; the stored ones
    /// when the broker does not answer. Returns them and whether they are
    /// fresh.
    async fn read_positions(
        &mut self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(Vec<Position>, bool), EngineError> {
        match self.broker().positions().await {
            Ok(p) => {
                let key: Vec<(String, i64, i64)> = p
                    .iter()
                    .map(|x| (x.contract.key(), x.quantity, x.avg_cost.raw()))
                    .collect();
                // Marks change every cycle; the stored book only when a
                // position does (and at each session's close).
                if self.stored_positions.as_ref() != Some(&key) {
                    self.store.replace_positions(&p)?;
                    self.stored_positions = Some(key);
                }
                Ok((p, true))
            }
            Err(e) => {
                self.system_error(now, format!("positions: {e}"), report)?;
                Ok((self.store.positions()?, false))
            }
        }
    }

    /// Quotes of the open trades' puts, and prices of their underlyings and
    /// of the stock held.
    async fn quote_book(
        &mut self,
        now: DateTime<Utc>,
        open_trades: &[Trade],
        positions: &[Position],
        report: &mut CycleReport,
    ) -> Result<(Vec<OptionQuote>, BTreeMap<Symbol, Price>), EngineError> {
        let held: Vec<OptionContract> = open_trades.iter().map(put_of).collect();
        let held_quotes = if held.is_empty() {
            Vec::new()
        } else {
            match self.broker().option_quotes(&held).await {
                Ok(q) => q,
                Err(e) => {
                    self.system_error(now, format!("option_quotes (held): {e}"), report)?;
                    Vec::new()
                }
            }
        };
        let mut watch: Vec<Symbol> = open_trades.iter().map(|t| t.symbol.clone()).collect();
        for p in positions {
            if let Contract::Stock(s) = &p.contract {
                watch.push(s.symbol.clone());
            }
        }
        watch.sort();
        watch.dedup();
        let prices = self.stock_prices(&watch).await;
        Ok((held_quotes, prices))
    }

    /// The open trades, read from the store when they may have changed.
    pub(super) fn open_trades(&mut self) -> Result<Vec<Trade>, EngineError> {
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
    pub(super) fn trades_of_day(&mut self, date: NaiveDate) -> Result<Vec<Trade>, EngineError> {
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

    pub(super) fn note_trade_change(&mut self, date: NaiveDate, trade: &Trade) {
        if let Some((d, trades)) = &mut self.today
            && *d == date
        {
            trades.retain(|t| t.trade_id != trade.trade_id);
            trades.push(trade.clone());
        }
    }

    /// Current prices (mid, else last) of `symbols`; a symbol whose quote
    /// fails is left out.
    pub(super) async fn stock_prices(&self, symbols: &[Symbol]) -> BTreeMap<Symbol, Price> {
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

    pub(super) async fn closes(&self, symbol: &Symbol, today: NaiveDate, n: usize) -> Vec<f64> {
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
    pub(super) fn risk_context(
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
}
