//! The order executor: writes the intent, sends it, follows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use core_domain::{
    AccountRepository, AuditEntry, AuditRepository, Broker, BrokerError, BrokerEvent, Fill, Ledger,
    LedgerEntry, LedgerEntryKind, Money, OptionContract, Order, OrderIntent, OrderRepository,
    OrderStatus, OrderUpdate, Price, RepoError, Side, Slippage, Symbol, exec_id_base,
};
use risk::RiskApproved;
use serde_json::json;
use store::Store;

use crate::trade_log::{self, TradeChange};
use crate::{ExecutionError, OrderContext};

mod resolve;
pub use resolve::{ResolvePolicy, ResolveReport};

/// The actor name of audit entries the executor writes.
pub const EXECUTION_ACTOR: &str = "execution";

/// What [`OrderExecutor::process_events`] did with a batch of events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventReport {
    /// Status updates that moved a stored order.
    pub statuses_applied: usize,
    /// Fills recorded (with their order update and ledger entries).
    pub fills_recorded: usize,
    /// Fills whose `exec_id` was known already: ignored.
    pub duplicate_fills: usize,
    /// Events kept only in the audit log: unknown order refs, illegal
    /// transitions, refused fills and events that are not about orders.
    pub audited: usize,
    /// What the trade logger did: trades opened, increased and closed by
    /// fills, expirations and assignments.
    pub trades: Vec<TradeChange>,
    /// Assignments that could not be applied for want of the underlying's
    /// price (see [`OrderExecutor::process_events_with_marks`]); audited,
    /// their trades still open.
    pub unpriced_assignments: Vec<OptionContract>,
    /// Broker error events (codes and messages), for the API-error breaker.
    pub broker_errors: Vec<(i32, String)>,
    /// Terminal statuses not applied because the broker reports more
    /// filled than recorded: the order stays working until its executions
    /// are recorded (then [`OrderExecutor::resolve_orders`] ends it).
    pub deferred: Vec<String>,
    /// Orders ended by an order-scoped broker error code (see
    /// [`ORDER_REJECTION_CODES`]).
    pub rejected_by_code: Vec<String>,
    /// Fills recorded for an order already cancelled, expired or rejected.
    pub late_fills: usize,
    /// Execution corrections (same execution id base as a recorded fill)
    /// with the recorded figures: never added as a second fill.
    pub corrections: usize,
    /// Recorded fills restated by a late commission report or by a
    /// correction with other figures (order, ledger and trade follow).
    pub amended: usize,
    /// The part of each trade settled by assignment, as a trade closed by
    /// assignment (`contracts` = the contracts assigned, `exit_reason`
    /// [`ExitReason::Assigned`](core_domain::ExitReason::Assigned)): whole
    /// and partial assignments alike. Their shares are the system's to
    /// sell (see [`crate::ExitManager::evaluate`]'s `assigned`).
    pub assignments: Vec<core_domain::Trade>,
}

impl EventReport {
    fn add(&mut self, other: &EventReport) {
        self.statuses_applied += other.statuses_applied;
        self.fills_recorded += other.fills_recorded;
        self.duplicate_fills += other.duplicate_fills;
        self.audited += other.audited;
        self.trades.extend(other.trades.iter().cloned());
        self.unpriced_assignments
            .extend(other.unpriced_assignments.iter().cloned());
        self.broker_errors
            .extend(other.broker_errors.iter().cloned());
        self.deferred.extend(other.deferred.iter().cloned());
        self.rejected_by_code
            .extend(other.rejected_by_code.iter().cloned());
        self.late_fills += other.late_fills;
        self.corrections += other.corrections;
        self.amended += other.amended;
        self.assignments.extend(other.assignments.iter().cloned());
    }
}

/// What [`OrderExecutor::reconcile`] found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconcileReport {
    /// Orders stored as `created` that were (re-)placed and are now `sent`.
    pub resent: Vec<String>,
    /// Orders stored as `created` the broker could not be reached for;
    /// still `created`, the next reconcile tries again.
    pub still_unsent: Vec<String>,
    /// Orders stored as `created` the broker rejected when re-placed.
    pub rejected: Vec<String>,
    /// Orders stored as `created` expired unsent: older than
    /// [`ResolvePolicy::intent_max_age_minutes`], or entries the trading
    /// state forbids (see [`OrderExecutor::resolve_orders`]).
    pub expired: Vec<String>,
    /// The executions and open-order statuses applied.
    pub events: EventReport,
    /// Orders stored as working that the broker no longer lists as open
    /// and that are not filled: their end is unknown, an operator (or the
    /// broker's order history) must settle them. Audited.
    pub unresolved: Vec<String>,
}

/// IBKR error codes that end one order (its `orderRef` comes with the
/// error): the order is rejected (or, when part of it filled already,
/// cancelled) with the code and message as its reason. 103 duplicate order
/// id, 105/106/107 modification refused, 109/110 price out of range or off
/// the tick, 111 time in force, 113/116/117/118 order type or exchange
/// refused, 200/203 contract unknown or not tradable, 201 rejected (margin,
/// permissions, …), 383/387 size limits, 434 zero size.
pub const ORDER_REJECTION_CODES: [i32; 17] = [
    103, 105, 106, 107, 109, 110, 111, 113, 116, 117, 118, 200, 201, 203, 383, 387, 434,
];

/// IBKR's "order cancelled" code (202): the order ends cancelled.
pub const ORDER_CANCELLED_CODE: i32 = 202;

/// Outcome of one fill inside its transaction.
enum FillOutcome {
    Recorded(Box<TradeChange>, bool),
    Duplicate,
    Correction(Box<Fill>),
    /// A recorded fill restated (the original, the restated one, what its
    /// trade did).
    Amended(Box<(Fill, Fill, TradeChange)>),
    UnknownOrder,
}

/// Sends risk-approved orders and follows them through the order state
/// machine, writing every step to the store before or as it happens.
#[derive(Debug)]
pub struct OrderExecutor<B: Broker> {
    store: Arc<Store>,
    broker: B,
    hours: Option<Arc<dyn TradingHours>>,
    preflight: PreFlightPolicy,
    /// Working orders missing from the broker's open orders, since when
    /// (see [`OrderExecutor::resolve_orders`]).
    missing_since: std::sync::Mutex<BTreeMap<String, DateTime<Utc>>>,
}

/// When the market takes orders (the engine's schedule). Without one the
/// broker's own rejection is the market-hours check.
pub trait TradingHours: Send + Sync + std::fmt::Debug {
    fn is_open(&self, time: DateTime<Utc>) -> bool;
}

/// The pre-flight checks' bounds.
///
/// Before an order is written the executor checks, in this order: the
/// market is open (with [`TradingHours`]); the broker knows the contract
/// (`contract_details`); the limit is sane against the quote the order was
/// made from (a sell not below the bid by more than the band, a buy not
/// above the ask by more than the band; band = max(`price_band_min`,
/// `price_band_fraction` × the touch)); and, for an opening order, the
/// broker's what-if margin answers. A failed check writes nothing but an
/// audit entry and returns [`ExecutionError::PreFlight`]. A check the
/// broker cannot answer now (a transient error) is skipped: the intent is
/// written and the send itself is retried by reconcile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreFlightPolicy {
    pub price_band_min: f64,
    pub price_band_fraction: f64,
}

impl Default for PreFlightPolicy {
    fn default() -> Self {
        PreFlightPolicy {
            price_band_min: 0.10,
            price_band_fraction: 0.25,
        }
    }
}

impl<B: Broker> OrderExecutor<B> {
    pub fn new(store: Arc<Store>, broker: B) -> Self {
        OrderExecutor {
            store,
            broker,
            hours: None,
            preflight: PreFlightPolicy::default(),
            missing_since: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The executor refusing orders outside `hours`.
    pub fn with_trading_hours(mut self, hours: Arc<dyn TradingHours>) -> Self {
        self.hours = Some(hours);
        self
    }

    /// Other pre-flight bounds.
    pub fn with_preflight(mut self, policy: PreFlightPolicy) -> Self {
        self.preflight = policy;
        self
    }

    /// The pre-flight checks (see [`PreFlightPolicy`]).
    async fn preflight(
        &self,
        intent: &OrderIntent,
        context: &OrderContext,
        time: DateTime<Utc>,
    ) -> Result<(), ExecutionError> {
        let fail = |check: &'static str, reason: String| ExecutionError::PreFlight {
            order_ref: intent.order_ref.clone(),
            check,
            reason,
        };
        if let Some(hours) = &self.hours
            && !hours.is_open(time)
        {
            return Err(fail(
                "market_open",
                format!("the market is closed at {time}"),
            ));
        }
        match self.broker.contract_details(&intent.contract).await {
            Ok(_) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => {
                return Err(fail(
                    "contract",
                    format!("{} is not a valid contract: {e}", intent.contract.key()),
                ));
            }
        }
        let band = |touch: Price| {
            let t = touch.to_f64();
            (self.preflight.price_band_fraction * t).max(self.preflight.price_band_min)
        };
        let limit = intent.limit_price.to_f64();
        match intent.side {
            core_domain::Side::Sell => {
                if let Some(bid) = context.bid
                    && limit < bid.to_f64() - band(bid) - 1e-9
                {
                    return Err(fail(
                        "limit_price",
                        format!(
                            "sell limit {} is more than {:.2} below the bid {bid}",
                            intent.limit_price,
                            band(bid)
                        ),
                    ));
                }
            }
            core_domain::Side::Buy => {
                if let Some(ask) = context.ask
                    && limit > ask.to_f64() + band(ask) + 1e-9
                {
                    return Err(fail(
                        "limit_price",
                        format!(
                            "buy limit {} is more than {:.2} above the ask {ask}",
                            intent.limit_price,
                            band(ask)
                        ),
                    ));
                }
            }
        }
        if intent.purpose == core_domain::OrderPurpose::Open {
            match self.broker.what_if(intent).await {
                Ok(_) => {}
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(fail("what_if", format!("what-if margin refused: {e}"))),
            }
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn broker(&self) -> &B {
        &self.broker
    }

    /// The only way to send an order. The intent is validated, written as
    /// `created` (with the approval's decision record) before the broker
    /// sees it, then placed and stored as `sent`.
    ///
    /// An `order_ref` already stored is not sent again: the stored order is
    /// returned. A broker rejection stores the order as `rejected` and is
    /// an error naming the order and the reason; a transient broker error
    /// leaves it `created` for [`reconcile`](Self::reconcile).
    pub async fn submit(
        &self,
        approved: RiskApproved<OrderIntent>,
        time: DateTime<Utc>,
    ) -> Result<Order, ExecutionError> {
        self.submit_with_context(approved, OrderContext::default(), time)
            .await
    }

    /// [`submit`](Self::submit) with the order's context (quote and mid at
    /// sending, the trade it opens, the exit reason, the order it
    /// replaces), written with the intent and used for slippage and the
    /// trade log.
    pub async fn submit_with_context(
        &self,
        approved: RiskApproved<OrderIntent>,
        context: OrderContext,
        time: DateTime<Utc>,
    ) -> Result<Order, ExecutionError> {
        let (intent, decision) = approved.into_parts();
        intent
            .validate()
            .map_err(|source| ExecutionError::InvalidIntent {
                order_ref: intent.order_ref.clone(),
                source,
            })?;
        if self.stored_order(&intent.order_ref)?.is_none()
            && let Err(e) = self.preflight(&intent, &context, time).await
        {
            self.audit(
                time,
                "order.preflight_failed",
                json!({ "intent": to_json(&intent), "context": context.to_json() }),
                Some(e.to_string()),
            )?;
            return Err(e);
        }
        let order = Order::new(intent).with_context(context.to_json());
        let order_ref = order.intent.order_ref.clone();
        let inserted = self.store.atomically(|tx| {
            match tx.insert_order(&order) {
                Ok(()) => {}
                Err(RepoError::Duplicate(_)) => return Ok(false),
                Err(e) => {
                    return Err(ExecutionError::repo(format!("writing order {order_ref}"))(
                        e,
                    ));
                }
            }
            tx.append_decision(&decision)
                .map_err(ExecutionError::repo(format!(
                    "writing the approval of order {order_ref}"
                )))?;
            Ok(true)
        })?;
        if !inserted {
            let stored = self
                .stored_order(&order_ref)?
                .ok_or_else(|| ExecutionError::Repo {
                    what: format!("reading order {order_ref}"),
                    source: RepoError::NotFound(format!("order {order_ref}")),
                })?;
            self.audit(
                time,
                "order.duplicate_intent",
                json!({ "order_ref": order_ref, "status": stored.status }),
                Some(format!(
                    "order {order_ref} exists already ({}); not sent again",
                    stored.status
                )),
            )?;
            return Ok(stored);
        }
        self.send(order, time).await
    }

    /// Places a `created` order and stores the outcome.
    async fn send(&self, mut order: Order, time: DateTime<Utc>) -> Result<Order, ExecutionError> {
        let order_ref = order.intent.order_ref.clone();
        store::crash_point("intent");
        match self.broker.place_order(&order.intent).await {
            Ok(id) => {
                store::crash_point("sent");
                order.broker_order_id = Some(id);
                self.transition_or_audit(&mut order, OrderStatus::Sent, time, None)?;
                self.store
                    .update_order(&order)
                    .map_err(ExecutionError::repo(format!(
                        "marking order {order_ref} sent"
                    )))?;
                self.audit(
                    time,
                    "order.sent",
                    json!({
                        "order_ref": order_ref,
                        "broker_order_id": id,
                        "intent": to_json(&order.intent),
                        "context": order.context,
                    }),
                    None,
                )?;
                Ok(order)
            }
            Err(e) if e.is_transient() => {
                self.audit(
                    time,
                    "order.not_sent",
                    json!({ "order_ref": order_ref, "error": e.to_string() }),
                    Some("left created; reconcile retries it".into()),
                )?;
                Err(ExecutionError::NotSent {
                    order_ref,
                    source: e,
                })
            }
            Err(e) => {
                let reason = match &e {
                    BrokerError::Rejected { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                self.transition_or_audit(
                    &mut order,
                    OrderStatus::Rejected,
                    time,
                    Some(reason.clone()),
                )?;
                self.store
                    .update_order(&order)
                    .map_err(ExecutionError::repo(format!(
                        "marking order {order_ref} rejected"
                    )))?;
                self.audit(
                    time,
                    "order.rejected",
                    json!({ "order_ref": order_ref, "reason": reason }),
                    None,
                )?;
                Err(ExecutionError::Rejected { order_ref, reason })
            }
        }
    }

    /// A transition the executor itself makes (from `created`); refused
    /// only if the stored order moved meanwhile, which is an error.
    fn transition_or_audit(
        &self,
        order: &mut Order,
        next: OrderStatus,
        time: DateTime<Utc>,
        reason: Option<String>,
    ) -> Result<(), ExecutionError> {
        order
            .transition(next, time, reason)
            .map_err(|e| ExecutionError::Repo {
                what: format!("moving order {} to {next}", order.intent.order_ref),
                source: RepoError::Conflict(e.to_string()),
            })
    }

    /// Applies broker events to the stored orders: status updates through
    /// the state machine, each fill (deduplicated by `exec_id`) with its
    /// order update and ledger entries in one transaction. Unknown order
    /// refs, illegal transitions, refused fills and events that are not
    /// about orders go to the audit log; only a store failure is an error.
    pub async fn process_events(
        &self,
        events: Vec<BrokerEvent>,
        time: DateTime<Utc>,
    ) -> Result<EventReport, ExecutionError> {
        self.process_events_with_marks(events, &BTreeMap::new(), time)
            .await
    }

    /// [`process_events`](Self::process_events) with the underlyings'
    /// current prices, which an assignment needs (its trade closes at the
    /// intrinsic value `strike − price`). Expirations close their trades
    /// at 0. Both post the settlement to the ledger in the transaction that
    /// closes the trade.
    pub async fn process_events_with_marks(
        &self,
        events: Vec<BrokerEvent>,
        marks: &BTreeMap<Symbol, Price>,
        time: DateTime<Utc>,
    ) -> Result<EventReport, ExecutionError> {
        let mut report = EventReport::default();
        for event in events {
            match event {
                BrokerEvent::OrderStatus(update) => {
                    self.apply_update(&update, time, &mut report)?;
                }
                BrokerEvent::Fill(fill) => self.apply_fill(&fill, time, &mut report)?,
                BrokerEvent::Commission {
                    exec_id,
                    commission,
                    ..
                } => self.apply_commission(&exec_id, commission, time, &mut report)?,
                BrokerEvent::Expiration {
                    contract,
                    quantity,
                    time: at,
                } => {
                    self.apply_settlement(&contract, quantity, None, at, &mut report)?;
                }
                BrokerEvent::Assignment {
                    contract,
                    quantity,
                    time: at,
                } => match marks.get(&contract.underlying) {
                    Some(price) => {
                        self.apply_settlement(&contract, quantity, Some(*price), at, &mut report)?;
                    }
                    None => {
                        self.audit(
                            time,
                            "settlement.no_price",
                            json!({ "contract": contract.key(), "quantity": quantity }),
                            Some(format!(
                                "assignment of {} cannot be valued without a price of {}; its trade stays open",
                                contract.key(),
                                contract.underlying
                            )),
                        )?;
                        report.unpriced_assignments.push(contract);
                        report.audited += 1;
                    }
                },
                other => {
                    if let BrokerEvent::Error {
                        code,
                        message,
                        order_ref,
                    } = &other
                    {
                        report.broker_errors.push((*code, message.clone()));
                        if let Some(order_ref) = order_ref {
                            self.apply_order_error(order_ref, *code, message, time, &mut report)?;
                        }
                    }
                    let action = match &other {
                        BrokerEvent::Error { .. } => "broker.error",
                        BrokerEvent::ConnectionLost { .. } => "broker.connection_lost",
                        BrokerEvent::ConnectionRestored { .. } => "broker.connection_restored",
                        BrokerEvent::OrderStatus(_)
                        | BrokerEvent::Fill(_)
                        | BrokerEvent::Commission { .. }
                        | BrokerEvent::Assignment { .. }
                        | BrokerEvent::Expiration { .. } => "broker.event",
                    };
                    self.audit(time, action, to_json(&other), None)?;
                    report.audited += 1;
                }
            }
        }
        Ok(report)
    }

    fn apply_update(
        &self,
        update: &OrderUpdate,
        time: DateTime<Utc>,
        report: &mut EventReport,
    ) -> Result<(), ExecutionError> {
        let order_ref = &update.order_ref;
        let Some(mut order) = self.stored_order(order_ref)? else {
            self.audit(
                time,
                "order.unknown_ref",
                to_json(update),
                Some(format!(
                    "status {} for order {order_ref}, which is not stored",
                    update.status
                )),
            )?;
            report.audited += 1;
            return Ok(());
        };
        if order.status == update.status {
            return Ok(());
        }
        let cancel_refused = order.status == OrderStatus::PendingCancel
            && update.status == OrderStatus::PartiallyFilled;
        if matches!(
            update.status,
            OrderStatus::PartiallyFilled | OrderStatus::Filled
        ) && !cancel_refused
        {
            // Fill states follow the fills themselves; a status ahead of
            // them means executions are still to come (or to reconcile).
            if update.filled_quantity > order.filled_quantity {
                self.audit(
                    time,
                    "order.fills_pending",
                    to_json(update),
                    Some(format!(
                        "broker reports {} filled for order {order_ref}, {} recorded; waiting for the executions",
                        update.filled_quantity, order.filled_quantity
                    )),
                )?;
                report.audited += 1;
            }
            return Ok(());
        }
        let ends = matches!(
            update.status,
            OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::Rejected
        );
        if ends && !order.status.is_terminal() && update.filled_quantity > order.filled_quantity {
            // IBKR sends an order's final status before executions still
            // waiting for their commission: ending the order now would
            // free its trade for a second close while a fill is on its
            // way. The order stays working until its fills are recorded.
            self.audit(
                time,
                "order.terminal_deferred",
                to_json(update),
                Some(format!(
                    "broker reports order {order_ref} {} with {} filled, {} recorded: kept {} until the executions are recorded",
                    update.status, update.filled_quantity, order.filled_quantity, order.status
                )),
            )?;
            report.deferred.push(order_ref.clone());
            report.audited += 1;
            return Ok(());
        }
        // A rejection after part of the order filled ends it as cancelled
        // (the filled part stands).
        let next = if update.status == OrderStatus::Rejected
            && order.filled_quantity > 0
            && !order.status.is_terminal()
        {
            OrderStatus::Cancelled
        } else {
            update.status
        };
        let result = (|| {
            if order.status == OrderStatus::Created {
                // Placed but not marked sent (a crash in between).
                order.transition(OrderStatus::Sent, update.time, None)?;
            }
            order.transition(next, update.time, update.reason.clone())
        })();
        match result {
            Ok(()) => {
                if order.broker_order_id.is_none() {
                    order.broker_order_id = update.broker_order_id;
                }
                self.store
                    .update_order(&order)
                    .map_err(ExecutionError::repo(format!(
                        "storing status {} of order {order_ref}",
                        update.status
                    )))?;
                report.statuses_applied += 1;
            }
            Err(e) => {
                self.audit(
                    time,
                    "order.illegal_transition",
                    to_json(update),
                    Some(e.to_string()),
                )?;
                report.audited += 1;
            }
        }
        Ok(())
    }

    /// A late commission report: the recorded fill takes the commission
    /// (through [`Self::apply_fill`]'s restatement, so order, ledger and
    /// trade follow). An unknown execution id is audited.
    fn apply_commission(
        &self,
        exec_id: &str,
        commission: Money,
        time: DateTime<Utc>,
        report: &mut EventReport,
    ) -> Result<(), ExecutionError> {
        let recorded = self
            .store
            .fill(exec_id)
            .map_err(ExecutionError::repo(format!("reading fill {exec_id}")))?;
        match recorded {
            Some(fill) => self.apply_fill(&Fill { commission, ..fill }, time, report),
            None => {
                self.audit(
                    time,
                    "fill.commission_unknown",
                    json!({ "exec_id": exec_id, "commission": commission.to_string() }),
                    Some(format!(
                        "a commission report of {commission} for execution {exec_id}, which is not recorded: nothing changed"
                    )),
                )?;
                report.audited += 1;
                Ok(())
            }
        }
    }

    fn apply_fill(
        &self,
        fill: &Fill,
        time: DateTime<Utc>,
        report: &mut EventReport,
    ) -> Result<(), ExecutionError> {
        let order_ref = &fill.order_ref;
        let refused = |e: core_domain::DomainError| ExecutionError::FillRefused {
            order_ref: order_ref.clone(),
            exec_id: fill.exec_id.clone(),
            reason: e.to_string(),
        };
        let outcome = self.store.atomically(|tx| {
            let Some(mut order) = tx
                .order(order_ref)
                .map_err(ExecutionError::repo(format!("reading order {order_ref}")))?
            else {
                return Ok(FillOutcome::UnknownOrder);
            };
            let base = exec_id_base(&fill.exec_id);
            let recorded = tx.fills(order_ref).map_err(ExecutionError::repo(format!(
                "reading the fills of order {order_ref}"
            )))?;
            // The same execution again (a re-sent report, a late
            // commission report re-reported under its id), or IBKR's
            // correction of it (`….01.02` for `….01.01`): it restates the
            // recorded fill when its figures differ, it never adds to it.
            let same_id = recorded.iter().find(|f| f.exec_id == fill.exec_id);
            let same_base = || recorded.iter().find(|f| exec_id_base(&f.exec_id) == base);
            if let Some(original) = same_id.or_else(same_base) {
                let Some(restated) = restated_fill(original, fill) else {
                    return Ok(if original.exec_id == fill.exec_id {
                        FillOutcome::Duplicate
                    } else {
                        FillOutcome::Correction(Box::new(original.clone()))
                    });
                };
                return amend_recorded(tx, order, original, restated, time);
            }
            let new = tx.record_fill(fill).map_err(ExecutionError::repo(format!(
                "recording fill {} of order {order_ref}",
                fill.exec_id
            )))?;
            if !new {
                return Ok(FillOutcome::Duplicate);
            }
            if order.status == OrderStatus::Created {
                // Placed but not marked sent (a crash in between).
                order
                    .transition(OrderStatus::Sent, fill.time, None)
                    .map_err(refused)?;
            }
            let late = matches!(
                order.status,
                OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::Rejected
            );
            if late {
                // The broker executed it before the order ended: recorded.
                order.apply_late_fill(fill).map_err(refused)?;
            } else {
                order.apply_fill(fill).map_err(refused)?;
            }
            tx.update_order(&order)
                .map_err(ExecutionError::repo(format!(
                    "storing fill {} on order {order_ref}",
                    fill.exec_id
                )))?;
            let mut ledger = Ledger::new();
            ledger.post_fill(fill).map_err(refused)?;
            tx.append_ledger(ledger.entries())
                .map_err(ExecutionError::repo(format!(
                    "posting fill {} of order {order_ref} to the ledger",
                    fill.exec_id
                )))?;
            let context = OrderContext::of(&order);
            let slippage = Slippage::of(fill, order.intent.limit_price, context.mid);
            tx.record_slippage(&slippage)
                .map_err(ExecutionError::repo(format!(
                    "recording the slippage of fill {}",
                    fill.exec_id
                )))?;
            let change = trade_log::on_fill(tx, &order, fill)?;
            Ok(FillOutcome::Recorded(Box::new(change), late))
        });
        match outcome {
            Ok(FillOutcome::Recorded(change, late)) => {
                report.fills_recorded += 1;
                if late {
                    report.late_fills += 1;
                    self.audit(
                        time,
                        "fill.late",
                        to_json(fill),
                        Some(format!(
                            "fill {} recorded for order {order_ref}, which had ended already",
                            fill.exec_id
                        )),
                    )?;
                }
                self.audit_trade_change(time, &change)?;
                report.trades.push(*change);
            }
            Ok(FillOutcome::Duplicate) => report.duplicate_fills += 1,
            Ok(FillOutcome::Correction(original)) => {
                let same = original.quantity == fill.quantity && original.price == fill.price;
                let outcome = if same {
                    format!(
                        "execution {} corrects {} with the same quantity and price: nothing changed",
                        fill.exec_id, original.exec_id
                    )
                } else {
                    format!(
                        "execution {} corrects {} ({} at {} → {} at {}): the recorded fill is kept, not added to; an operator must check order {order_ref}",
                        fill.exec_id,
                        original.exec_id,
                        original.quantity,
                        original.price,
                        fill.quantity,
                        fill.price
                    )
                };
                self.audit(
                    time,
                    "fill.correction",
                    json!({ "recorded": to_json(&*original), "correction": to_json(fill) }),
                    Some(outcome),
                )?;
                report.corrections += 1;
                report.audited += 1;
            }
            Ok(FillOutcome::Amended(amended)) => {
                let (original, restated, change) = *amended;
                self.audit(
                    time,
                    "fill.amended",
                    json!({
                        "recorded": to_json(&original),
                        "reported": to_json(fill),
                        "restated": to_json(&restated),
                    }),
                    Some(format!(
                        "fill {} of order {order_ref} restated: {} at {} with commission {} → {} at {} with commission {}; order, ledger and trade follow",
                        original.exec_id,
                        original.quantity,
                        original.price,
                        original.commission,
                        restated.quantity,
                        restated.price,
                        restated.commission
                    )),
                )?;
                self.audit_trade_change(time, &change)?;
                report.amended += 1;
                report.trades.push(change);
            }
            Ok(FillOutcome::UnknownOrder) => {
                self.audit(
                    time,
                    "fill.unknown_order",
                    to_json(fill),
                    Some(format!(
                        "fill {} for order {order_ref}, which is not stored",
                        fill.exec_id
                    )),
                )?;
                report.audited += 1;
            }
            Err(e @ ExecutionError::FillRefused { .. }) => {
                self.audit(time, "fill.refused", to_json(fill), Some(e.to_string()))?;
                report.audited += 1;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Brings the store and the broker together after a (re)start:
    /// re-places every order stored as `created` with the same `order_ref`
    /// (the broker deduplicates by it, so nothing is sent twice), records
    /// the executions the store is missing (deduplicated by `exec_id`) and
    /// applies the broker's open-order statuses. Running it again changes
    /// no order, fill or ledger entry.
    pub async fn reconcile(&self, time: DateTime<Utc>) -> Result<ReconcileReport, ExecutionError> {
        let mut report = ReconcileReport::default();
        let open = self
            .store
            .open_orders()
            .map_err(ExecutionError::repo("listing open orders"))?;

        for order in open.iter().filter(|o| o.status == OrderStatus::Created) {
            let order_ref = order.intent.order_ref.clone();
            // An old intent, or an entry written before a halt, is not
            // sent with its old limit: it expires.
            if let Some(why) = self.intent_expiry(order, time, &ResolvePolicy::default())? {
                self.expire_intent(order.clone(), &why, time).await?;
                report.expired.push(order_ref);
                continue;
            }
            match self.send(order.clone(), time).await {
                Ok(_) => report.resent.push(order_ref),
                Err(ExecutionError::NotSent { .. }) => report.still_unsent.push(order_ref),
                Err(ExecutionError::Rejected { .. }) => report.rejected.push(order_ref),
                Err(e) => return Err(e),
            }
        }

        // From the newest recorded fill, or earlier if an open order is
        // older (its fills may predate fills of other orders).
        let last_fill = self
            .store
            .last_fill_time()
            .map_err(ExecutionError::repo("reading the newest fill time"))?;
        let since = last_fill
            .into_iter()
            .chain(open.iter().map(|o| o.intent.created_at))
            .min()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let fills = self
            .broker
            .executions_since(since)
            .await
            .map_err(|source| ExecutionError::Broker {
                what: format!("executions_since({since})"),
                source,
            })?;
        let mut events = EventReport::default();
        for fill in &fills {
            self.apply_fill(fill, time, &mut events)?;
        }

        let working = self
            .broker
            .open_orders()
            .await
            .map_err(|source| ExecutionError::Broker {
                what: "open_orders".into(),
                source,
            })?;
        for update in &working {
            self.apply_update(update, time, &mut events)?;
        }
        report.events.add(&events);

        let still_open = self
            .store
            .open_orders()
            .map_err(ExecutionError::repo("listing open orders"))?;
        for order in still_open.iter().filter(|o| o.status.is_working()) {
            let order_ref = &order.intent.order_ref;
            if !working.iter().any(|u| &u.order_ref == order_ref) {
                self.audit(
                    time,
                    "order.unresolved",
                    json!({ "order_ref": order_ref, "status": order.status }),
                    Some(format!(
                        "order {order_ref} is stored as {} but the broker does not list it as open",
                        order.status
                    )),
                )?;
                report.unresolved.push(order_ref.clone());
            }
        }

        self.audit(
            time,
            "reconcile",
            json!({
                "resent": report.resent,
                "still_unsent": report.still_unsent,
                "rejected": report.rejected,
                "expired": report.expired,
                "fills_recorded": report.events.fills_recorded,
                "duplicate_fills": report.events.duplicate_fills,
                "statuses_applied": report.events.statuses_applied,
                "unresolved": report.unresolved,
            }),
            None,
        )?;
        Ok(report)
    }

    /// Requests the cancellation of `order`: a working order is asked of
    /// the broker and stored as `pending_cancel` (the broker's answer
    /// arrives as an event); an order never marked sent (`created`) is
    /// cancelled at the broker too, in case it was placed before a crash,
    /// and stored as `cancelled`. Returns whether the request was made;
    /// a broker refusal is audited and returns `false`.
    pub async fn cancel(
        &self,
        order_ref: &str,
        time: DateTime<Utc>,
        why: &str,
    ) -> Result<bool, ExecutionError> {
        let Some(mut order) = self.stored_order(order_ref)? else {
            return Ok(false);
        };
        if order.status.is_terminal() || order.status == OrderStatus::PendingCancel {
            return Ok(false);
        }
        let answer = self.broker.cancel_order(order_ref).await;
        let next = if order.status == OrderStatus::Created {
            OrderStatus::Cancelled
        } else {
            match &answer {
                Ok(()) => OrderStatus::PendingCancel,
                Err(e) => {
                    self.audit(
                        time,
                        "order.cancel_failed",
                        json!({ "order_ref": order_ref, "error": e.to_string(), "why": why }),
                        Some(format!(
                            "cancel of {order_ref} failed: {e}; the next cycle retries"
                        )),
                    )?;
                    return Ok(false);
                }
            }
        };
        self.transition_or_audit(&mut order, next, time, Some(why.to_string()))?;
        self.store
            .update_order(&order)
            .map_err(ExecutionError::repo(format!(
                "marking order {order_ref} {next}"
            )))?;
        self.audit(
            time,
            "order.cancel_requested",
            json!({ "order_ref": order_ref, "why": why, "status": next }),
            None,
        )?;
        Ok(true)
    }

    /// Cancels every order that has worked `policy.reprice_after_minutes`
    /// or longer without completing (see [`crate::reprice`]); returns the
    /// order refs cancelled.
    pub async fn cancel_stale(
        &self,
        time: DateTime<Utc>,
        policy: &crate::RepricePolicy,
    ) -> Result<Vec<String>, ExecutionError> {
        let open = self
            .store
            .open_orders()
            .map_err(ExecutionError::repo("listing open orders"))?;
        let mut cancelled = Vec::new();
        for order in open {
            let age = time - order.intent.created_at;
            let working = matches!(
                order.status,
                OrderStatus::Sent | OrderStatus::Accepted | OrderStatus::PartiallyFilled
            );
            if working && age.num_minutes() >= policy.reprice_after_minutes {
                let why = format!(
                    "reprice: unfilled after {} minutes ({} of {} filled)",
                    age.num_minutes(),
                    order.filled_quantity,
                    order.intent.quantity
                );
                if self.cancel(&order.intent.order_ref, time, &why).await? {
                    cancelled.push(order.intent.order_ref);
                }
            }
        }
        Ok(cancelled)
    }

    /// Cancels every open order (the emergency stop); returns the refs
    /// cancelled or asked to cancel, and those whose cancel failed.
    pub async fn cancel_all(
        &self,
        time: DateTime<Utc>,
        why: &str,
    ) -> Result<(Vec<String>, Vec<String>), ExecutionError> {
        let open = self
            .store
            .open_orders()
            .map_err(ExecutionError::repo("listing open orders"))?;
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for order in open {
            let order_ref = order.intent.order_ref;
            if order.status == OrderStatus::PendingCancel {
                done.push(order_ref);
                continue;
            }
            if self.cancel(&order_ref, time, why).await? {
                done.push(order_ref);
            } else {
                failed.push(order_ref);
            }
        }
        Ok((done, failed))
    }

    fn apply_settlement(
        &self,
        contract: &OptionContract,
        quantity: i64,
        underlying: Option<Price>,
        time: DateTime<Utc>,
        report: &mut EventReport,
    ) -> Result<(), ExecutionError> {
        let change = self
            .store
            .atomically(|tx| trade_log::on_settlement(tx, contract, quantity, underlying, time))?;
        let action = if underlying.is_some() {
            "broker.assignment"
        } else {
            "broker.expiration"
        };
        self.audit(
            time,
            action,
            json!({
                "contract": contract.key(),
                "quantity": quantity,
                "underlying_price": underlying.map(Price::to_f64),
            }),
            None,
        )?;
        self.audit_trade_change(time, &change)?;
        if underlying.is_some() {
            match &change {
                TradeChange::Closed(t) => report.assignments.push(t.clone()),
                TradeChange::PartlySettled(t) => {
                    let mut part = t.clone();
                    part.contracts = quantity.abs();
                    part.exit_reason = Some(core_domain::ExitReason::Assigned);
                    report.assignments.push(part);
                }
                _ => {}
            }
        }
        report.trades.push(change);
        Ok(())
    }

    /// Every trade change goes to the audit log with the whole trade.
    fn audit_trade_change(
        &self,
        time: DateTime<Utc>,
        change: &TradeChange,
    ) -> Result<(), ExecutionError> {
        let (action, context, outcome) = match change {
            TradeChange::Opened(t) => ("trade.opened", to_json(t), None),
            TradeChange::Increased(t) => ("trade.increased", to_json(t), None),
            TradeChange::PartlySettled(t) => (
                "trade.partly_settled",
                to_json(t),
                Some(format!(
                    "{} partly settled: {} contracts stay open",
                    t.trade_id, t.contracts
                )),
            ),
            TradeChange::Closed(t) => (
                "trade.closed",
                to_json(t),
                Some(format!(
                    "{} closed: {} , P&L {}",
                    t.trade_id,
                    t.exit_reason.map_or("?", |r| r.as_str()),
                    t.profit_loss.map_or("?".to_string(), |p| p.to_string())
                )),
            ),
            TradeChange::Amended(t) => (
                "trade.amended",
                to_json(t),
                Some(format!(
                    "{} restated after an amended fill: commissions {}, P&L {}",
                    t.trade_id,
                    t.commissions,
                    t.profit_loss.map_or("open".to_string(), |p| p.to_string())
                )),
            ),
            TradeChange::Unmatched(what) => (
                "trade.unmatched",
                json!({ "subject": what }),
                Some(format!(
                    "{what}: no open trade to apply this to; nothing changed"
                )),
            ),
            TradeChange::None => return Ok(()),
        };
        self.audit(time, action, context, outcome)
    }

    fn stored_order(&self, order_ref: &str) -> Result<Option<Order>, ExecutionError> {
        self.store
            .order(order_ref)
            .map_err(ExecutionError::repo(format!("reading order {order_ref}")))
    }

    fn audit(
        &self,
        time: DateTime<Utc>,
        action: &str,
        context: serde_json::Value,
        outcome: Option<String>,
    ) -> Result<(), ExecutionError> {
        let mut entry = AuditEntry::new(time, EXECUTION_ACTOR, action);
        entry.context = context;
        entry.outcome = outcome;
        self.store
            .append_audit(&entry)
            .map_err(ExecutionError::repo(format!(
                "writing audit entry {action}"
            )))
    }
}

/// The recorded fill as `reported` restates it, or `None` when nothing
/// changes: the quantity and price are the report's; its commission too,
/// except that a zero commission never replaces a recorded one (an
/// execution re-sent without its commission report is not a correction).
fn restated_fill(original: &Fill, reported: &Fill) -> Option<Fill> {
    let commission = if reported.commission == Money::ZERO {
        original.commission
    } else {
        reported.commission
    };
    let restated = Fill {
        quantity: reported.quantity,
        price: reported.price,
        commission,
        ..original.clone()
    };
    (restated != *original).then_some(restated)
}

/// Restates a recorded fill, in the caller's transaction: the fill row,
/// the order's filled quantity, average price and commission, the ledger
/// (entries for the difference, so it stays append-only and equal to the
/// fills' cash to the cent) and the trade.
fn amend_recorded(
    tx: &store::StoreTx<'_>,
    mut order: Order,
    original: &Fill,
    restated: Fill,
    time: DateTime<Utc>,
) -> Result<FillOutcome, ExecutionError> {
    let order_ref = order.intent.order_ref.clone();
    let refused = |e: core_domain::DomainError| ExecutionError::FillRefused {
        order_ref: order_ref.clone(),
        exec_id: restated.exec_id.clone(),
        reason: e.to_string(),
    };
    if restated.quantity < original.quantity {
        // The store never lowers an order's filled quantity (a stale copy
        // must not undo a fill): an operator checks it with the broker.
        return Err(refused(core_domain::DomainError::Invalid(format!(
            "the broker restates execution {} from {} to {} contracts: a recorded fill is never lowered; check order {order_ref} in TWS",
            original.exec_id, original.quantity, restated.quantity
        ))));
    }
    tx.amend_fill(&restated)
        .map_err(ExecutionError::repo(format!(
            "amending fill {}",
            restated.exec_id
        )))?;
    let fills = tx.fills(&order_ref).map_err(ExecutionError::repo(format!(
        "reading the fills of order {order_ref}"
    )))?;
    order.restate_fills(&fills, time).map_err(refused)?;
    tx.update_order(&order)
        .map_err(ExecutionError::repo(format!("restating order {order_ref}")))?;
    tx.append_ledger(&amendment_entries(original, &restated, time))
        .map_err(ExecutionError::repo(format!(
            "posting the amendment of fill {} to the ledger",
            restated.exec_id
        )))?;
    let change = trade_log::on_amendment(tx, &order, original, &restated)?;
    Ok(FillOutcome::Amended(Box::new((
        original.clone(),
        restated,
        change,
    ))))
}

/// The ledger entries that take the cash of `original` to that of
/// `restated`: the gross difference (as proceeds of a sale, cost of a
/// purchase) and the commission difference, each only when not zero.
fn amendment_entries(original: &Fill, restated: &Fill, time: DateTime<Utc>) -> Vec<LedgerEntry> {
    let gross = |f: &Fill| {
        let g = f.price.notional(f.quantity, f.contract.multiplier());
        match f.side {
            Side::Sell => g,
            Side::Buy => -g,
        }
    };
    let mut entries = Vec::new();
    let delta = gross(restated) - gross(original);
    if delta != Money::ZERO {
        entries.push(LedgerEntry {
            time,
            kind: match original.side {
                Side::Sell => LedgerEntryKind::SaleProceeds,
                Side::Buy => LedgerEntryKind::PurchaseCost,
            },
            amount: delta,
            reference: restated.exec_id.clone(),
        });
    }
    let commission = original.commission - restated.commission;
    if commission != Money::ZERO {
        entries.push(LedgerEntry {
            time,
            kind: LedgerEntryKind::Commission,
            amount: commission,
            reference: restated.exec_id.clone(),
        });
    }
    entries
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| json!({ "unserializable": e.to_string() }))
}
