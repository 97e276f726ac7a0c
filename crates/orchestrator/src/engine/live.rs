//! The broker is the source of truth: what the engine does each cycle so
//! that the store never drifts from the broker (issue #12).
//!
//! * **Orders** — [`OrderExecutor::resolve_orders`](execution::OrderExecutor::resolve_orders)
//!   every cycle: fresh unsent intents re-sent, stale or forbidden ones
//!   expired, orders the broker no longer works resolved, unconfirmed
//!   cancels asked again; cancels that failed in an emergency stop (the
//!   broker unreachable) are sent again until the broker takes them.
//! * **Positions** — the broker's option positions against the open trades
//!   and the working orders (the reconciliation invariant, see
//!   `docs/ARCHITECTURE.md`): for each contract the broker's quantity must
//!   equal the open trades' short contracts, give or take what working
//!   orders may have done since (an entry's unfilled rest, a close's). A
//!   difference seen at two consecutive cycles (one cycle lets in-flight
//!   events arrive) is settled by rule when it can be — fewer contracts
//!   short than the trades hold, on or after expiry, is an expiry (or an
//!   assignment when the underlying's shares arrived); before expiry with
//!   the shares arrived, an early (possibly partial) assignment — and
//!   otherwise is a `position_mismatch`: audited, an event, trading
//!   reduce-only, listed in working memory (`trader-cli status`) until it
//!   is gone. A trade whose position is gone is never closed (a close would
//!   buy puts that are not held).
//! * **Account** — a failed account summary does not end the cycle: the
//!   last one read stands in, exits run, entries wait.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AccountSnapshot, AuditRepository, Broker, BrokerEvent, Contract, MarketData, OptionContract,
    OrderRepository, Position, Side, Strategy, Trade,
};
use execution::{ResolvePolicy, TradeChange, record_state_change};
use risk::TradingState;
use serde_json::json;

use super::{CycleReport, ENGINE_ACTOR, Engine, put_of};
use crate::EngineError;
use crate::events::EngineEvent;
use crate::hook::LearningHook;
use crate::schedule::Phase;

/// What the engine keeps between cycles for the live checks (not
/// persisted: a restart re-checks from the broker).
#[derive(Debug, Default)]
pub(crate) struct LiveState {
    /// The last account summary read.
    pub last_account: Option<AccountSnapshot>,
    /// Position differences seen at the last cycle: contract key →
    /// (expected, at the broker).
    pub suspects: BTreeMap<String, (i64, i64)>,
}

/// Shares delivered by one assigned equity option contract.
const SHARES_PER_CONTRACT: i64 = 100;

/// One contract's numbers in the position reconciliation.
#[derive(Debug, Default, Clone)]
struct Book {
    contract: Option<OptionContract>,
    /// The open trades' short contracts, negative.
    expected: i64,
    /// The broker's quantity (negative short).
    broker: i64,
    /// Contracts working orders may still sell (entries) or buy (closes).
    may_sell: i64,
    may_buy: i64,
    trades: Vec<String>,
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// The account summary, or (when the broker cannot give it) the last
    /// one read, marked stale; `None` when there is none.
    pub(super) async fn account_or_last(
        &mut self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<Option<(AccountSnapshot, bool)>, EngineError> {
        match self.broker().account_summary().await {
            Ok(a) => {
                self.live.last_account = Some(a.clone());
                Ok(Some((a, true)))
            }
            Err(e) => {
                self.system_error(now, format!("account_summary: {e}"), report)?;
                let last = self
                    .live
                    .last_account
                    .clone()
                    .or_else(|| self.memory.session_start.clone());
                Ok(last.map(|a| (a, false)))
            }
        }
    }

    /// Resolves the orders the store holds as not ended against the
    /// broker, and re-sends the cancels an emergency stop could not send.
    pub(super) async fn resolve_orders(
        &mut self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        if !self.memory.cancels_pending.is_empty() {
            let mut still = Vec::new();
            for order_ref in std::mem::take(&mut self.memory.cancels_pending) {
                let open = self.store.order(&order_ref)?.is_some_and(|o| {
                    !o.status.is_terminal() && o.status != core_domain::OrderStatus::PendingCancel
                });
                if open
                    && !self
                        .executor
                        .cancel(&order_ref, now, "emergency stop: cancel sent at reconnect")
                        .await?
                {
                    still.push(order_ref);
                }
            }
            self.memory.cancels_pending = still;
        }
        match self
            .executor
            .resolve_orders(now, &ResolvePolicy::default())
            .await
        {
            Ok(r) => {
                report.fills += r.events.fills_recorded;
                if r.events.fills_recorded > 0 || !r.resolved.is_empty() {
                    self.open_cache = None;
                }
            }
            Err(execution::ExecutionError::Broker { what, source }) => {
                self.system_error(now, format!("resolving orders: {what}: {source}"), report)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The emergency stop (see [`Engine::emergency`]): the halt and the
    /// cancels first; then, with `flatten` in a session, the broker's
    /// positions and open orders are read again and each trade is closed
    /// from the position left — unless an order of it is still open at
    /// the broker (its cancel not yet confirmed: a fill may be racing it)
    /// or the broker shows no short position for it. Those are held and
    /// closed by a later cycle's flatten. Never fails for a broker that
    /// cannot be reached: the halt is recorded, failed cancels are sent
    /// again every cycle.
    pub(super) async fn emergency_live(
        &mut self,
        now: DateTime<Utc>,
        stop: &execution::EmergencyStop,
    ) -> Result<execution::EmergencyReport, EngineError> {
        let mut report =
            execution::halt_and_cancel(&self.executor, &mut self.governor, stop, now).await?;
        for r in &report.cancel_failed {
            if !self.memory.cancels_pending.contains(r) {
                self.memory.cancels_pending.push(r.clone());
            }
        }
        let mut records = Vec::new();
        if stop.flatten && self.schedule.phase(now) != Phase::Closed {
            match (
                self.broker().positions().await,
                self.broker().open_orders().await,
            ) {
                (Ok(positions), Ok(listed)) => {
                    // Orders still open at the broker after the cancels.
                    let mut working: Vec<String> = report.cancel_failed.clone();
                    working.extend(listed.iter().map(|u| u.order_ref.clone()));
                    let mut busy = BTreeSet::new();
                    for r in &working {
                        if let Some(o) = self.store.order(r)?
                            && let Some(t) = o.intent.trade_id
                        {
                            busy.insert(t);
                        }
                    }
                    working.extend(busy.iter().cloned());
                    let open_trades = self.open_trades()?;
                    let short = |t: &Trade| {
                        let key = Contract::Option(put_of(t)).key();
                        positions
                            .iter()
                            .any(|p| p.contract.key() == key && p.quantity < 0)
                    };
                    let mut closable = Vec::new();
                    for t in open_trades {
                        if busy.contains(&t.trade_id) {
                            report.closing_held.push((
                                t.trade_id.clone(),
                                "an order of it is still open at the broker: closed once its cancel is confirmed".into(),
                            ));
                        } else if !short(&t) {
                            report.closing_held.push((
                                t.trade_id.clone(),
                                "the broker shows no short position: nothing to buy back (reconciliation settles it)".into(),
                            ));
                        } else {
                            closable.push(t);
                        }
                    }
                    let held: Vec<OptionContract> = closable.iter().map(put_of).collect();
                    let quotes = if held.is_empty() {
                        Vec::new()
                    } else {
                        self.broker().option_quotes(&held).await.unwrap_or_default()
                    };
                    let snapshot = self.exit_snapshot(now, &closable, &positions, quotes).await;
                    let plan = self
                        .exits
                        .emergency_exits(&snapshot, &closable, &positions, &working, now);
                    let mut closing = Vec::new();
                    for mut order in plan.exits {
                        let attempt = self.price_exit(&mut order, &snapshot)?;
                        let context = self.exit_context(&order, &snapshot, attempt);
                        records.push(order.decision);
                        closing.push((order.intent, context));
                    }
                    records.extend(plan.holds);
                    records.extend(plan.untouched);
                    let account = match self.broker().account_summary().await {
                        Ok(a) => a,
                        Err(_) => self.live.last_account.clone().unwrap_or_else(|| {
                            self.memory
                                .session_start
                                .clone()
                                .unwrap_or(AccountSnapshot {
                                    time: now,
                                    account: String::new(),
                                    net_liquidation: core_domain::Money::ZERO,
                                    cash: core_domain::Money::ZERO,
                                    excess_liquidity: core_domain::Money::ZERO,
                                    initial_margin: core_domain::Money::ZERO,
                                    maintenance_margin: core_domain::Money::ZERO,
                                    realized_pnl: core_domain::Money::ZERO,
                                    unrealized_pnl: core_domain::Money::ZERO,
                                })
                        }),
                    };
                    let ctx = risk::RiskContext::new(
                        self.memory
                            .session_start
                            .clone()
                            .unwrap_or_else(|| account.clone()),
                        account,
                    );
                    execution::send_closing(
                        &self.executor,
                        &mut self.governor,
                        closing,
                        &ctx,
                        now,
                        &mut report,
                    )
                    .await;
                }
                (p, o) => {
                    let why = [p.err(), o.err()]
                        .into_iter()
                        .flatten()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    report.closing_held.push((
                        "*".into(),
                        format!("the broker's positions and open orders cannot be read ({why}): positions close at a later cycle"),
                    ));
                }
            }
        }
        execution::audit_emergency(&self.executor, stop, &report, now)?;
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for r in &records {
                tx.append_decision(r)?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// The position reconciliation (see the module docs). Returns the
    /// trades that must not be closed this cycle: their position is gone
    /// at the broker. Trades it closes by rule join `closed_now` (the
    /// learning hook sees them).
    pub(super) async fn reconcile_positions(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
        positions: &[Position],
        closed_now: &mut Vec<Trade>,
        report: &mut CycleReport,
    ) -> Result<BTreeSet<String>, EngineError> {
        let open_trades = self.open_trades()?;
        let working = self.store.open_orders()?;
        let mut books: BTreeMap<String, Book> = BTreeMap::new();
        for t in &open_trades {
            let put = put_of(t);
            let b = books
                .entry(Contract::Option(put.clone()).key())
                .or_default();
            b.contract = Some(put);
            b.expected -= t.contracts;
            b.trades.push(t.trade_id.clone());
        }
        for p in positions {
            if let Contract::Option(o) = &p.contract {
                let b = books.entry(p.contract.key()).or_default();
                b.contract.get_or_insert_with(|| o.clone());
                b.broker += p.quantity;
            }
        }
        for o in working
            .iter()
            .filter(|o| matches!(o.intent.contract, Contract::Option(_)))
        {
            let Some(b) = books.get_mut(&o.intent.contract.key()) else {
                continue;
            };
            match o.intent.side {
                Side::Sell => b.may_sell += o.remaining(),
                Side::Buy => b.may_buy += o.remaining(),
            }
        }
        let stock: BTreeMap<&str, i64> = positions
            .iter()
            .filter_map(|p| match &p.contract {
                Contract::Stock(s) => Some((s.symbol.as_str(), p.quantity)),
                Contract::Option(_) => None,
            })
            .collect();

        let mut suspects = BTreeMap::new();
        let mut mismatches = Vec::new();
        let mut settle = Vec::new();
        let mut hold = BTreeSet::new();
        for (key, b) in &books {
            let explained = b.broker == b.expected
                || (b.expected - b.may_sell..=b.expected + b.may_buy).contains(&b.broker);
            if explained {
                continue;
            }
            let gone = b.broker >= 0 && b.expected < 0;
            if gone {
                hold.extend(b.trades.iter().cloned());
            }
            let seen = self.live.suspects.get(key) == Some(&(b.expected, b.broker));
            suspects.insert(key.clone(), (b.expected, b.broker));
            if !seen {
                continue;
            }
            let missing = b.broker.min(0) - b.expected;
            match &b.contract {
                Some(c) if missing > 0 && !b.trades.is_empty() => {
                    let shares = stock.get(c.underlying.as_str()).copied().unwrap_or(0);
                    let assigned_shares: i64 = self
                        .memory
                        .assigned
                        .iter()
                        .filter(|t| t.symbol == c.underlying)
                        .map(|t| t.contracts * c.multiplier)
                        .sum();
                    let new_shares = shares - assigned_shares;
                    let assigned = new_shares >= missing * c.multiplier;
                    if assigned {
                        settle.push(BrokerEvent::Assignment {
                            contract: c.clone(),
                            quantity: -missing,
                            time: now,
                        });
                    } else if today > c.expiry
                        || (today == c.expiry && self.schedule.phase(now) == Phase::Closed)
                    {
                        settle.push(BrokerEvent::Expiration {
                            contract: c.clone(),
                            quantity: -missing,
                            time: now,
                        });
                    } else {
                        mismatches.push(format!(
                            "{key}: the open trades ({}) hold {} short, the broker {}; no expiry or assignment explains it",
                            b.trades.join(", "),
                            -b.expected,
                            -b.broker
                        ));
                    }
                }
                _ => mismatches.push(format!(
                    "{key}: the broker holds {}, the open trades {}{}",
                    b.broker,
                    b.expected,
                    if b.trades.is_empty() {
                        " (a position no trade knows)".to_string()
                    } else {
                        format!(" ({})", b.trades.join(", "))
                    }
                )),
            }
        }
        let previous = std::mem::replace(&mut self.live.suspects, suspects);

        if !settle.is_empty() {
            let symbols: Vec<_> = settle
                .iter()
                .filter_map(|e| match e {
                    BrokerEvent::Assignment { contract, .. } => Some(contract.underlying.clone()),
                    _ => None,
                })
                .collect();
            let marks = self.stock_prices(&symbols).await;
            let what: Vec<String> = settle
                .iter()
                .map(|e| serde_json::to_string(e).unwrap_or_default())
                .collect();
            let processed = self
                .executor
                .process_events_with_marks(settle, &marks, now)
                .await?;
            self.open_cache = None;
            self.audit(
                now,
                "position_reconciled",
                json!({ "settlements": what }),
                Some("settled by rule from the broker's positions (expiry or assignment)".into()),
            )?;
            for change in &processed.trades {
                match change {
                    TradeChange::Closed(t) => {
                        report.trades_closed += 1;
                        if let Some(e) = crate::events::trade_closed(now, t) {
                            report.events.push(e);
                        }
                        self.note_trade_change(today, t);
                        closed_now.push(t.clone());
                    }
                    TradeChange::PartlySettled(t) => {
                        hold.remove(&t.trade_id);
                    }
                    _ => {}
                }
            }
            // Whole and partial assignments: their shares are ours to sell.
            self.memory
                .assigned
                .extend(processed.assignments.iter().cloned());
            for c in &processed.unpriced_assignments {
                mismatches.push(format!(
                    "{}: assigned, but {} has no price to value it",
                    Contract::Option(c.clone()).key(),
                    c.underlying
                ));
            }
        }

        // Stock in a symbol the system trades: the shares must be what the
        // assignments on record delivered (their sale only lowers them).
        // A symbol with an option difference still pending is left for
        // that settlement to explain.
        let pending: BTreeSet<&str> = books
            .iter()
            .filter(|(key, _)| self.live.suspects.contains_key(*key))
            .filter_map(|(_, b)| b.contract.as_ref().map(|c| c.underlying.as_str()))
            .collect();
        let traded: BTreeSet<&str> = self
            .params
            .universe
            .iter()
            .map(|(s, _)| s.as_str())
            .chain(open_trades.iter().map(|t| t.symbol.as_str()))
            .chain(self.memory.assigned.iter().map(|t| t.symbol.as_str()))
            .collect();
        let mut stock_suspects = Vec::new();
        for (symbol, shares) in &stock {
            if !traded.contains(symbol) || pending.contains(symbol) {
                continue;
            }
            let received: i64 = self
                .memory
                .assigned
                .iter()
                .filter(|t| t.symbol.as_str() == *symbol)
                .map(|t| t.contracts.max(0).saturating_mul(SHARES_PER_CONTRACT))
                .sum();
            if (0..=received).contains(shares) {
                continue;
            }
            let key = format!("STK:{symbol}");
            let seen = previous.get(&key) == Some(&(received, *shares));
            stock_suspects.push((key, (received, *shares)));
            if seen {
                mismatches.push(format!(
                    "{symbol} stock: the broker holds {shares} shares, the assignments on record explain {received} (stock the system did not receive is never sold by it)"
                ));
            }
        }
        self.live.suspects.extend(stock_suspects);

        if mismatches != self.memory.position_mismatches {
            for m in mismatches
                .iter()
                .filter(|m| !self.memory.position_mismatches.contains(m))
            {
                let mut entry =
                    core_domain::AuditEntry::new(now, ENGINE_ACTOR, "position_mismatch");
                entry.context = json!({ "mismatch": m });
                entry.outcome = Some(
                    "trading reduce-only; an operator must settle it (trader-cli status lists it)"
                        .into(),
                );
                self.store.append_audit(&entry)?;
                report.events.push(EngineEvent::SystemError {
                    time: now,
                    what: format!("position mismatch: {m}"),
                });
                tracing::warn!(mismatch = %m, "engine: position mismatch");
            }
            self.memory.position_mismatches = mismatches.clone();
        }
        if !mismatches.is_empty()
            && self.governor.state() == TradingState::Active
            && let Some(change) = self.governor.reduce_only(
                now,
                ENGINE_ACTOR,
                &format!("position mismatch: {}", mismatches.join("; ")),
            )
        {
            record_state_change(&self.executor, &change)?;
        }
        Ok(hold)
    }
}

/// The open trades an exit may close: those whose position is not gone.
pub(super) fn closable(open_trades: &[Trade], held: &BTreeSet<String>) -> Vec<Trade> {
    open_trades
        .iter()
        .filter(|t| !held.contains(&t.trade_id))
        .cloned()
        .collect()
}
