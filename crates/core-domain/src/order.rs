//! Orders: the intent written before sending, the status state machine, and
//! fills.
//!
//! The state machine follows the life of an IBKR order:
//!
//! ```text
//!            ┌──────────────► Rejected ◄───────────────┐
//!            │                                          │
//! Created ──► Sent ──► Accepted ──► PartiallyFilled ──► Filled
//!    │         │  │       │  ▲           │      ▲         ▲
//!    │         │  │       ▼  │           ▼      │         │
//!    │         │  └──► PendingCancel ───────────┴─────────┘
//!    │         │            │
//!    └─────────┴────────────┴──► Cancelled        (Expired from any live state)
//! ```
//!
//! `Filled`, `Cancelled`, `Rejected` and `Expired` are terminal. A fill may
//! race a cancel request, so `PendingCancel` can still become
//! `PartiallyFilled` or `Filled`; a refused cancel returns to `Accepted`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Contract, DomainError, Money, Price};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for a buy, −1 for a sell: the sign of the position change.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        })
    }
}

/// How long an order works (IBKR's `tif`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TimeInForce {
    /// Day order: cancelled by the exchange at the close.
    Day,
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
}

/// Why an order exists; closing orders are never blocked by entry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPurpose {
    /// Sell to open a short put.
    Open,
    /// Buy to close a short put.
    Close,
    /// Sell stock received by assignment.
    Liquidate,
}

impl OrderPurpose {
    pub fn reduces_risk(self) -> bool {
        !matches!(self, OrderPurpose::Open)
    }
}

/// What the system wants to do, before any broker sees it. It is written to
/// the store (with its idempotency key) before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderIntent {
    /// Idempotency key, sent to IBKR as `orderRef`; unique forever.
    pub order_ref: String,
    pub contract: Contract,
    pub side: Side,
    /// Contracts (options) or shares (stock); always positive.
    pub quantity: i64,
    pub limit_price: Price,
    pub time_in_force: TimeInForce,
    pub purpose: OrderPurpose,
    /// The trade this order opens or closes.
    pub trade_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OrderIntent {
    /// Checks what can be checked without a market: positive quantity and
    /// limit, a non-empty idempotency key.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.order_ref.trim().is_empty() {
            return Err(DomainError::Invalid("order intent: empty order_ref".into()));
        }
        if self.quantity <= 0 {
            return Err(DomainError::Invalid(format!(
                "order {}: quantity must be positive, got {}",
                self.order_ref, self.quantity
            )));
        }
        if !self.limit_price.is_positive() {
            return Err(DomainError::Invalid(format!(
                "order {}: limit price must be positive, got {}",
                self.order_ref, self.limit_price
            )));
        }
        Ok(())
    }
}

/// The status of an order. See the module docs for the legal transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Written to the store, not yet sent.
    Created,
    /// Handed to the broker, no acknowledgement yet (IBKR PendingSubmit).
    Sent,
    /// Working at the broker (IBKR PreSubmitted / Submitted).
    Accepted,
    PartiallyFilled,
    /// A cancel was requested and not yet confirmed.
    PendingCancel,
    Filled,
    Cancelled,
    Rejected,
    /// The time in force ran out (a day order at the close).
    Expired,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::Created,
        OrderStatus::Sent,
        OrderStatus::Accepted,
        OrderStatus::PartiallyFilled,
        OrderStatus::PendingCancel,
        OrderStatus::Filled,
        OrderStatus::Cancelled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Cancelled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }

    /// Whether the broker may still fill (part of) the order.
    pub fn is_working(self) -> bool {
        matches!(
            self,
            OrderStatus::Sent
                | OrderStatus::Accepted
                | OrderStatus::PartiallyFilled
                | OrderStatus::PendingCancel
        )
    }

    /// The legal transitions. Staying in `PartiallyFilled` (another partial
    /// fill) is legal; every other self-transition is not.
    pub fn can_transition_to(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        match self {
            Created => matches!(next, Sent | Cancelled | Rejected),
            Sent => matches!(
                next,
                Accepted
                    | PartiallyFilled
                    | Filled
                    | PendingCancel
                    | Cancelled
                    | Rejected
                    | Expired
            ),
            Accepted => matches!(
                next,
                PartiallyFilled | Filled | PendingCancel | Cancelled | Rejected | Expired
            ),
            PartiallyFilled => matches!(
                next,
                PartiallyFilled | Filled | PendingCancel | Cancelled | Expired
            ),
            PendingCancel => matches!(
                next,
                Accepted | PartiallyFilled | Filled | Cancelled | Expired
            ),
            Filled | Cancelled | Rejected | Expired => false,
        }
    }

    /// Whether `target` can be reached from here by one or more legal
    /// transitions (an update that skipped intermediate writes).
    pub fn can_reach(self, target: OrderStatus) -> bool {
        let mut seen = vec![self];
        let mut frontier = vec![self];
        while let Some(s) = frontier.pop() {
            for next in OrderStatus::ALL {
                if s.can_transition_to(next) && !seen.contains(&next) {
                    if next == target {
                        return true;
                    }
                    seen.push(next);
                    frontier.push(next);
                }
            }
        }
        self.can_transition_to(target)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Sent => "sent",
            OrderStatus::Accepted => "accepted",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::PendingCancel => "pending_cancel",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::Invalid(format!("unknown order status {s:?}")))
    }
}

/// An execution (a fill, whole or partial) with its commission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// Broker execution id; unique (fills are deduplicated by it).
    pub exec_id: String,
    pub order_ref: String,
    pub contract: Contract,
    pub side: Side,
    /// Contracts or shares, positive.
    pub quantity: i64,
    pub price: Price,
    pub commission: Money,
    pub time: DateTime<Utc>,
}

impl Fill {
    /// The cash this fill moves, commission included: a sell brings in
    /// premium, a buy pays it, and the commission is always paid.
    pub fn cash_flow(&self) -> Money {
        let gross = self
            .price
            .notional(self.quantity, self.contract.multiplier());
        let signed = match self.side {
            Side::Sell => gross,
            Side::Buy => -gross,
        };
        signed - self.commission
    }
}

/// An order and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub intent: OrderIntent,
    pub status: OrderStatus,
    /// The broker's id once sent (IBKR order id; not stable across gateway
    /// restarts, which is why `order_ref` is the key).
    pub broker_order_id: Option<i64>,
    pub filled_quantity: i64,
    /// Volume-weighted average fill price so far.
    pub avg_fill_price: Option<Price>,
    pub commission: Money,
    /// The last rejection or cancellation reason.
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// Everything known when the order was made (the quote and mid at
    /// sending, the decision behind it, the order it replaces, the trade it
    /// opens): written once with the intent, never changed. JSON object;
    /// `{}` when nothing was given.
    #[serde(default = "empty_context")]
    pub context: serde_json::Value,
}

fn empty_context() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl Order {
    pub fn new(intent: OrderIntent) -> Self {
        let updated_at = intent.created_at;
        Order {
            intent,
            status: OrderStatus::Created,
            broker_order_id: None,
            filled_quantity: 0,
            avg_fill_price: None,
            commission: Money::ZERO,
            reason: None,
            updated_at,
            context: empty_context(),
        }
    }

    /// The order with its context (see [`Order::context`]).
    pub fn with_context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    pub fn remaining(&self) -> i64 {
        self.intent.quantity - self.filled_quantity
    }

    /// Moves to `next` if the transition is legal; otherwise the order is
    /// unchanged and the error names both states. Fill states are reached
    /// through [`Order::apply_fill`] only, which keeps the filled quantity
    /// and the status in step.
    pub fn transition(
        &mut self,
        next: OrderStatus,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) -> Result<(), DomainError> {
        // A refused cancel returns the order to where it was: Accepted if
        // nothing filled, PartiallyFilled otherwise.
        let cancel_refused = self.status == OrderStatus::PendingCancel
            && matches!(next, OrderStatus::Accepted | OrderStatus::PartiallyFilled);
        if cancel_refused {
            let back = if self.filled_quantity > 0 {
                OrderStatus::PartiallyFilled
            } else {
                OrderStatus::Accepted
            };
            if next != back {
                return Err(DomainError::IllegalTransition {
                    order_ref: self.intent.order_ref.clone(),
                    from: self.status,
                    to: next,
                    why: format!(
                        "a refused cancel returns to {back} ({} of {} filled)",
                        self.filled_quantity, self.intent.quantity
                    ),
                });
            }
            self.status = next;
            self.updated_at = at;
            if reason.is_some() {
                self.reason = reason;
            }
            return Ok(());
        }
        if matches!(next, OrderStatus::PartiallyFilled | OrderStatus::Filled) {
            return Err(DomainError::IllegalTransition {
                order_ref: self.intent.order_ref.clone(),
                from: self.status,
                to: next,
                why: "fill states are reached by applying a fill".into(),
            });
        }
        self.check_transition(next)?;
        self.status = next;
        self.updated_at = at;
        if reason.is_some() {
            self.reason = reason;
        }
        Ok(())
    }

    fn check_transition(&self, next: OrderStatus) -> Result<(), DomainError> {
        if self.status.can_transition_to(next) {
            Ok(())
        } else {
            Err(DomainError::IllegalTransition {
                order_ref: self.intent.order_ref.clone(),
                from: self.status,
                to: next,
                why: "not a legal order status transition".into(),
            })
        }
    }

    /// Applies an execution. Refused (order unchanged) when the fill belongs
    /// to another order, is for a non-positive quantity, would overfill, or
    /// arrives in a state that cannot fill.
    pub fn apply_fill(&mut self, fill: &Fill) -> Result<(), DomainError> {
        if fill.order_ref != self.intent.order_ref {
            return Err(DomainError::Invalid(format!(
                "fill {} is for order {}, not {}",
                fill.exec_id, fill.order_ref, self.intent.order_ref
            )));
        }
        if fill.quantity <= 0 || fill.quantity > self.remaining() {
            return Err(DomainError::Invalid(format!(
                "fill {} of {} on order {} with {} remaining",
                fill.exec_id,
                fill.quantity,
                self.intent.order_ref,
                self.remaining()
            )));
        }
        let next = if fill.quantity == self.remaining() {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        self.check_transition(next)?;
        let filled_before = self.filled_quantity;
        let total = filled_before + fill.quantity;
        let prev_value =
            i128::from(self.avg_fill_price.map_or(0, Price::raw)) * i128::from(filled_before);
        let value = prev_value + i128::from(fill.price.raw()) * i128::from(fill.quantity);
        let avg = value / i128::from(total);
        self.avg_fill_price = Some(Price::from_raw(i64::try_from(avg).unwrap_or(i64::MAX)));
        self.filled_quantity = total;
        self.commission += fill.commission;
        self.status = next;
        self.updated_at = fill.time;
        Ok(())
    }
}

impl Order {
    /// Records an execution the broker reports for an order already in a
    /// terminal state (`cancelled`, `expired`, `rejected`): IBKR may send
    /// an order's final status before its last execution (the execution
    /// waits for its commission report). The status stays where it is —
    /// "cancelled with N filled" is what the broker's order is — and the
    /// filled quantity, average price and commission follow the fill.
    /// Refused (order unchanged) for another order's fill, a non-positive
    /// quantity, an overfill, or an order that is not in one of those
    /// states.
    pub fn apply_late_fill(&mut self, fill: &Fill) -> Result<(), DomainError> {
        if !matches!(
            self.status,
            OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::Rejected
        ) {
            return Err(DomainError::Invalid(format!(
                "fill {} on order {}: a late fill applies to a cancelled, expired or rejected order, not to a {} one",
                fill.exec_id, self.intent.order_ref, self.status
            )));
        }
        if fill.order_ref != self.intent.order_ref {
            return Err(DomainError::Invalid(format!(
                "fill {} is for order {}, not {}",
                fill.exec_id, fill.order_ref, self.intent.order_ref
            )));
        }
        if fill.quantity <= 0 || fill.quantity > self.remaining() {
            return Err(DomainError::Invalid(format!(
                "fill {} of {} on order {} with {} remaining",
                fill.exec_id,
                fill.quantity,
                self.intent.order_ref,
                self.remaining()
            )));
        }
        let filled_before = self.filled_quantity;
        let total = filled_before + fill.quantity;
        let prev_value =
            i128::from(self.avg_fill_price.map_or(0, Price::raw)) * i128::from(filled_before);
        let value = prev_value + i128::from(fill.price.raw()) * i128::from(fill.quantity);
        let avg = value / i128::from(total);
        self.avg_fill_price = Some(Price::from_raw(i64::try_from(avg).unwrap_or(i64::MAX)));
        self.filled_quantity = total;
        self.commission += fill.commission;
        self.updated_at = fill.time;
        Ok(())
    }

    /// Restates the filled quantity, average price and commission from
    /// the order's recorded fills, after one of them was amended (a late
    /// commission report, an execution correction). The status stays: an
    /// amendment never moves the order through its state machine. Refused
    /// (order unchanged) when the fills belong to another order or add up
    /// to more than the order's quantity.
    pub fn restate_fills(
        &mut self,
        fills: &[Fill],
        time: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if let Some(f) = fills.iter().find(|f| f.order_ref != self.intent.order_ref) {
            return Err(DomainError::Invalid(format!(
                "fill {} is for order {}, not {}",
                f.exec_id, f.order_ref, self.intent.order_ref
            )));
        }
        let total: i64 = fills.iter().map(|f| f.quantity).sum();
        if total < 0 || total > self.intent.quantity {
            return Err(DomainError::Invalid(format!(
                "the fills of order {} add up to {total}, outside 0..={}",
                self.intent.order_ref, self.intent.quantity
            )));
        }
        let value: i128 = fills
            .iter()
            .map(|f| i128::from(f.price.raw()) * i128::from(f.quantity))
            .sum();
        self.avg_fill_price = (total > 0)
            .then(|| Price::from_raw(i64::try_from(value / i128::from(total)).unwrap_or(i64::MAX)));
        self.filled_quantity = total;
        self.commission = fills.iter().map(|f| f.commission).sum();
        self.updated_at = time;
        Ok(())
    }
}

/// An execution id without IBKR's correction suffix. IBKR execution ids
/// look like `0000e0d5.6571c9f1.01.01`; a correction of that execution
/// comes as `….01.02` (then `.03`, …), replacing it. Both have the base
/// `0000e0d5.6571c9f1.01`. Ids of another shape (the simulated exchange's
/// `E-00000001`) are their own base.
pub fn exec_id_base(exec_id: &str) -> &str {
    let parts = exec_id.split('.').count();
    match exec_id.rsplit_once('.') {
        Some((base, last))
            if parts >= 4 && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => exec_id,
    }
}

/// How one fill compared with the market when its order was sent and with
/// its own limit. Per-share amounts in [`Price`]; signs are chosen so that
/// a positive `vs_mid` is a cost and a positive `vs_limit` an improvement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slippage {
    pub exec_id: String,
    pub order_ref: String,
    pub time: DateTime<Utc>,
    pub side: Side,
    pub quantity: i64,
    pub fill_price: Price,
    pub limit_price: Price,
    /// The quote's mid when the order (or the first order of its chain of
    /// replacements) was sent, when known.
    pub mid_at_send: Option<Price>,
    /// Cost against that mid per share: a sell `mid − fill`, a buy
    /// `fill − mid`.
    pub vs_mid: Option<Price>,
    /// Improvement on the limit per share: a sell `fill − limit`, a buy
    /// `limit − fill` (never negative for a fill that respects its limit).
    pub vs_limit: Price,
}

impl Slippage {
    /// The slippage of `fill` on an order with limit `limit_price`, sent
    /// when the mid was `mid_at_send`.
    pub fn of(fill: &Fill, limit_price: Price, mid_at_send: Option<Price>) -> Self {
        let sign = fill.side.sign();
        // Buy (+1): cost = fill − mid; Sell (−1): cost = mid − fill.
        let vs_mid = mid_at_send.map(|m| Price::from_raw(sign * (fill.price.raw() - m.raw())));
        let vs_limit = Price::from_raw(sign * (limit_price.raw() - fill.price.raw()));
        Slippage {
            exec_id: fill.exec_id.clone(),
            order_ref: fill.order_ref.clone(),
            time: fill.time,
            side: fill.side,
            quantity: fill.quantity,
            fill_price: fill.price,
            limit_price,
            mid_at_send,
            vs_mid,
            vs_limit,
        }
    }

    /// The cost against mid for the whole fill, in money.
    pub fn cost_vs_mid(&self, multiplier: i64) -> Option<Money> {
        self.vs_mid.map(|v| v.notional(self.quantity, multiplier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StockContract, Symbol};
    use proptest::prelude::*;

    fn intent(qty: i64) -> OrderIntent {
        OrderIntent {
            order_ref: "ref-1".into(),
            contract: Contract::Stock(StockContract::us(Symbol::new("KO").unwrap())),
            side: Side::Sell,
            quantity: qty,
            limit_price: Price::from_cents(50),
            time_in_force: TimeInForce::Day,
            purpose: OrderPurpose::Open,
            trade_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn fill(qty: i64, n: usize) -> Fill {
        Fill {
            exec_id: format!("e{n}"),
            order_ref: "ref-1".into(),
            contract: Contract::Stock(StockContract::us(Symbol::new("KO").unwrap())),
            side: Side::Sell,
            quantity: qty,
            price: Price::from_cents(50),
            commission: Money::from_cents(100),
            time: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn test_fill_after_cancel_is_refused_and_order_unchanged() {
        let mut o = Order::new(intent(5));
        let t = DateTime::<Utc>::UNIX_EPOCH;
        o.transition(OrderStatus::Sent, t, None).unwrap();
        o.transition(OrderStatus::Cancelled, t, Some("user".into()))
            .unwrap();
        let before = o.clone();
        assert!(o.apply_fill(&fill(1, 0)).is_err());
        assert_eq!(o, before);
    }

    #[test]
    fn test_exec_id_base_strips_the_correction_suffix_only() {
        assert_eq!(
            exec_id_base("0000e0d5.6571c9f1.01.01"),
            "0000e0d5.6571c9f1.01"
        );
        assert_eq!(
            exec_id_base("0000e0d5.6571c9f1.01.02"),
            "0000e0d5.6571c9f1.01"
        );
        assert_eq!(exec_id_base("E-00000001"), "E-00000001");
        assert_eq!(exec_id_base("a.b.c"), "a.b.c");
        assert_eq!(exec_id_base("a.b.c.x1"), "a.b.c.x1");
    }

    #[test]
    fn test_a_late_fill_on_a_cancelled_order_is_recorded_and_the_status_stays() {
        let mut o = Order::new(intent(5));
        let t = DateTime::<Utc>::UNIX_EPOCH;
        o.transition(OrderStatus::Sent, t, None).unwrap();
        o.transition(OrderStatus::Cancelled, t, None).unwrap();
        o.apply_late_fill(&fill(2, 0)).unwrap();
        assert_eq!((o.status, o.filled_quantity), (OrderStatus::Cancelled, 2));
        assert_eq!(o.commission, Money::from_cents(100));
        assert!(o.apply_late_fill(&fill(4, 1)).is_err(), "overfill");
        let mut working = Order::new(intent(5));
        working.transition(OrderStatus::Sent, t, None).unwrap();
        assert!(working.apply_late_fill(&fill(1, 2)).is_err());
    }

    #[test]
    fn test_created_order_cannot_be_filled_before_it_is_sent() {
        let mut o = Order::new(intent(5));
        assert!(o.apply_fill(&fill(5, 0)).is_err());
        assert_eq!(o.status, OrderStatus::Created);
    }

    #[test]
    fn test_partial_fills_average_price_and_sum_commission() {
        let mut o = Order::new(intent(5));
        let t = DateTime::<Utc>::UNIX_EPOCH;
        o.transition(OrderStatus::Sent, t, None).unwrap();
        o.apply_fill(&fill(2, 0)).unwrap();
        assert_eq!(o.status, OrderStatus::PartiallyFilled);
        let mut f = fill(3, 1);
        f.price = Price::from_cents(40);
        o.apply_fill(&f).unwrap();
        assert_eq!(o.status, OrderStatus::Filled);
        assert_eq!(o.avg_fill_price, Some(Price::from_cents(44)));
        assert_eq!(o.commission, Money::from_cents(200));
    }

    #[test]
    fn test_sell_fill_cash_flow_is_premium_less_commission() {
        let f = Fill {
            contract: Contract::Option(crate::OptionContract::us(
                Symbol::new("KO").unwrap(),
                crate::Right::Put,
                Price::from_cents(5_000),
                chrono::NaiveDate::from_ymd_opt(2024, 1, 19).unwrap(),
            )),
            ..fill(5, 0)
        };
        // 5 × $0.50 × 100 = $250.00, less $1.00 commission
        assert_eq!(f.cash_flow(), Money::from_cents(24_900));
    }

    /// Events the broker or the executor can throw at an order.
    #[derive(Debug, Clone)]
    enum Event {
        To(usize),
        Fill(i64),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0..OrderStatus::ALL.len()).prop_map(Event::To),
            (-2i64..8).prop_map(Event::Fill),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Invariants of the order state machine, under any sequence of
        /// requested transitions and fills:
        /// 1. an illegal transition or fill is refused and leaves the order unchanged;
        /// 2. a terminal order never changes again;
        /// 3. 0 ≤ filled ≤ quantity, and status is Filled exactly when filled = quantity.
        #[test]
        fn order_state_machine_rejects_illegal_transitions(
            qty in 1i64..6,
            events in proptest::collection::vec(event(), 0..40),
        ) {
            let mut o = Order::new(intent(qty));
            let t = DateTime::<Utc>::UNIX_EPOCH;
            for (n, e) in events.into_iter().enumerate() {
                let before = o.clone();
                let result = match e {
                    Event::To(i) => o.transition(OrderStatus::ALL[i], t, None),
                    Event::Fill(q) => o.apply_fill(&fill(q, n)),
                };
                match &result {
                    Ok(()) => {
                        prop_assert!(before.status.can_transition_to(o.status));
                        prop_assert!(!before.status.is_terminal());
                    }
                    Err(_) => prop_assert_eq!(&o, &before),
                }
                prop_assert!(o.filled_quantity >= 0 && o.filled_quantity <= qty);
                prop_assert_eq!(o.status == OrderStatus::Filled, o.filled_quantity == qty);
                if before.status.is_terminal() {
                    prop_assert_eq!(&o, &before);
                }
            }
        }

        /// Every pair of states the table calls illegal is refused by `transition`.
        #[test]
        fn transition_agrees_with_the_table(from in 0..OrderStatus::ALL.len(), to in 0..OrderStatus::ALL.len()) {
            let (from, to) = (OrderStatus::ALL[from], OrderStatus::ALL[to]);
            let mut o = Order::new(intent(1));
            o.status = from;
            let r = o.transition(to, DateTime::<Utc>::UNIX_EPOCH, None);
            let fill_state = matches!(to, OrderStatus::PartiallyFilled | OrderStatus::Filled);
            prop_assert_eq!(r.is_ok(), from.can_transition_to(to) && !fill_state);
        }
    }

    /// The legal transitions, written out by hand from the module docs and
    /// IBKR's order life, independently of `can_transition_to`: a wrong
    /// entry in either fails here.
    #[test]
    fn test_transition_table_is_exactly_the_documented_one() {
        use OrderStatus::*;
        let legal: &[(OrderStatus, &[OrderStatus])] = &[
            (Created, &[Sent, Cancelled, Rejected]),
            (
                Sent,
                &[
                    Accepted,
                    PartiallyFilled,
                    Filled,
                    PendingCancel,
                    Cancelled,
                    Rejected,
                    Expired,
                ],
            ),
            (
                Accepted,
                &[
                    PartiallyFilled,
                    Filled,
                    PendingCancel,
                    Cancelled,
                    Rejected,
                    Expired,
                ],
            ),
            (
                PartiallyFilled,
                &[PartiallyFilled, Filled, PendingCancel, Cancelled, Expired],
            ),
            (
                PendingCancel,
                &[Accepted, PartiallyFilled, Filled, Cancelled, Expired],
            ),
            (Filled, &[]),
            (Cancelled, &[]),
            (Rejected, &[]),
            (Expired, &[]),
        ];
        for (from, tos) in legal {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    tos.contains(&to),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn test_refused_cancel_of_a_partly_filled_order_returns_to_partially_filled() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let mut o = Order::new(intent(5));
        o.transition(OrderStatus::Sent, t, None).unwrap();
        o.apply_fill(&fill(2, 0)).unwrap();
        o.transition(OrderStatus::PendingCancel, t, None).unwrap();
        assert!(o.transition(OrderStatus::Accepted, t, None).is_err());
        o.transition(
            OrderStatus::PartiallyFilled,
            t,
            Some("cancel refused".into()),
        )
        .unwrap();
        assert_eq!(o.status, OrderStatus::PartiallyFilled);
        let mut fresh = Order::new(intent(5));
        fresh.transition(OrderStatus::Sent, t, None).unwrap();
        fresh
            .transition(OrderStatus::PendingCancel, t, None)
            .unwrap();
        assert!(
            fresh
                .transition(OrderStatus::PartiallyFilled, t, None)
                .is_err()
        );
        fresh.transition(OrderStatus::Accepted, t, None).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn partially_filled_orders_never_claim_to_be_unfilled(qty in 2i64..6, part in 1i64..2) {
            let t = DateTime::<Utc>::UNIX_EPOCH;
            let mut o = Order::new(intent(qty));
            o.transition(OrderStatus::Sent, t, None).unwrap();
            o.apply_fill(&fill(part, 0)).unwrap();
            o.transition(OrderStatus::PendingCancel, t, None).unwrap();
            let _ = o.transition(OrderStatus::Accepted, t, None);
            prop_assert!(o.status != OrderStatus::Accepted);
        }
    }
}
