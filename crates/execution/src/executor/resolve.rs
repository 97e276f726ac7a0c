//! No stuck order: every cycle, orders the store holds as not ended are
//! brought back in line with the broker.
//!
//! * **Intents (`created`)** are re-sent under the same `order_ref` while
//!   fresh (younger than [`ResolvePolicy::intent_max_age_minutes`]); an
//!   older one, and an opening one when the trading state forbids entries
//!   (not active, or changed since the intent was written — a halt in
//!   between), is expired: cancelled, audited (`order.intent_expired`),
//!   never sent. The broker is asked to cancel it too, in case it was
//!   placed before a crash.
//! * **Working orders the broker does not list as open** (a status lost in
//!   a disconnect, a `pending_cancel` whose confirmation never came, a
//!   terminal status deferred while executions were missing): the
//!   executions since the order was written are fetched and recorded; an
//!   order still short of its quantity and missing from the open orders at
//!   two consecutive resolutions ended at the broker without us: it is
//!   stored as `cancelled` (`expired` for a day order past its day), with
//!   the reason, audited `order.resolved`.
//! * **A `pending_cancel` the broker still lists as open** after
//!   [`ResolvePolicy::cancel_retry_minutes`] gets its cancel sent again.
//!
//! An order-scoped broker error (an IBKR code in
//! [`ORDER_REJECTION_CODES`](super::ORDER_REJECTION_CODES) with the order's
//! `orderRef`) ends the order at once: see
//! [`OrderExecutor::process_events`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use core_domain::{Broker, OrderPurpose, OrderRepository, OrderStatus};
use serde_json::json;

use super::{EventReport, OrderExecutor, to_json};
use crate::{ExecutionError, trade_log::exchange_date};

/// How long intents and cancels may wait (see the module docs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolvePolicy {
    /// An unsent intent older than this is expired, never sent (30).
    pub intent_max_age_minutes: i64,
    /// A cancel the broker has not confirmed after this is sent again (15).
    pub cancel_retry_minutes: i64,
}

impl Default for ResolvePolicy {
    fn default() -> Self {
        ResolvePolicy {
            intent_max_age_minutes: 30,
            cancel_retry_minutes: 15,
        }
    }
}

/// What [`OrderExecutor::resolve_orders`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolveReport {
    /// Intents sent (now `sent`).
    pub resent: Vec<String>,
    /// Intents the broker could not be reached for; still `created`.
    pub still_unsent: Vec<String>,
    /// Intents the broker rejected when sent.
    pub rejected: Vec<String>,
    /// Intents expired unsent, with why.
    pub expired_intents: Vec<(String, String)>,
    /// Working orders missing from the broker's open orders this time
    /// (resolved when missing twice).
    pub missing: Vec<String>,
    /// Orders ended because the broker no longer works them, with the
    /// status they were given.
    pub resolved: Vec<(String, OrderStatus)>,
    /// Cancels sent again.
    pub cancels_resent: Vec<String>,
    /// Executions recorded while resolving.
    pub events: EventReport,
}

impl ResolveReport {
    /// Whether anything changed or needs attention.
    pub fn is_empty(&self) -> bool {
        *self == ResolveReport::default()
    }
}

/// Why an opening intent may not be sent now, from the stored trading
/// state: entries need `active`, unchanged since the intent was written.
pub(crate) fn entry_forbidden(
    state: Option<&store::TradingStateRecord>,
    created_at: DateTime<Utc>,
) -> Option<String> {
    let store::TradingStateRecord {
        state: name,
        cause,
        time: at,
    } = state?;
    if *name != core_domain::TradingState::Active {
        return Some(format!("trading is {name} ({cause}): no entry is sent"));
    }
    if at.and_utc() > created_at {
        return Some(format!(
            "the trading state changed at {} after the intent was written ({cause})",
            at.and_utc()
        ));
    }
    None
}

impl<B: Broker> OrderExecutor<B> {
    /// Why the `created` order `order` must not be sent now, if it must
    /// not: too old, or an entry the trading state forbids.
    pub(crate) fn intent_expiry(
        &self,
        order: &core_domain::Order,
        time: DateTime<Utc>,
        policy: &ResolvePolicy,
    ) -> Result<Option<String>, ExecutionError> {
        let age = (time - order.intent.created_at).num_minutes();
        if age > policy.intent_max_age_minutes {
            return Ok(Some(format!(
                "written {age} minutes ago, unsent (the limit is {} minutes): its price is stale",
                policy.intent_max_age_minutes
            )));
        }
        if order.intent.purpose == OrderPurpose::Open {
            let state = self
                .store
                .trading_state()
                .map_err(|e| ExecutionError::Repo {
                    what: "reading the trading state".into(),
                    source: core_domain::RepoError::Backend(e.to_string()),
                })?;
            return Ok(entry_forbidden(state.as_ref(), order.intent.created_at));
        }
        Ok(None)
    }

    /// Expires a `created` order: cancelled (the broker asked too, in case
    /// it was placed before a crash), audited, never sent.
    pub(crate) async fn expire_intent(
        &self,
        mut order: core_domain::Order,
        why: &str,
        time: DateTime<Utc>,
    ) -> Result<(), ExecutionError> {
        let order_ref = order.intent.order_ref.clone();
        // Not placed, or placed before a crash: either way not working
        // after this (an unknown ref is the expected answer).
        let _ = self.broker.cancel_order(&order_ref).await;
        self.transition_or_audit(
            &mut order,
            OrderStatus::Cancelled,
            time,
            Some(format!("intent expired unsent: {why}")),
        )?;
        self.store
            .update_order(&order)
            .map_err(ExecutionError::repo(format!("expiring intent {order_ref}")))?;
        self.audit(
            time,
            "order.intent_expired",
            json!({ "order_ref": order_ref, "intent": to_json(&order.intent), "why": why }),
            Some(format!("intent {order_ref} expired, never sent: {why}")),
        )
    }

    /// Brings every order the store holds as not ended in line with the
    /// broker (see the module docs). Run by the engine every cycle; a
    /// broker that cannot be asked leaves everything as it was (the error
    /// is returned, nothing is changed).
    pub async fn resolve_orders(
        &self,
        time: DateTime<Utc>,
        policy: &ResolvePolicy,
    ) -> Result<ResolveReport, ExecutionError> {
        let mut report = ResolveReport::default();
        let open = self
            .store
            .open_orders()
            .map_err(ExecutionError::repo("listing open orders"))?;
        if open.is_empty() {
            self.missing_since.lock().map(|mut m| m.clear()).ok();
            return Ok(report);
        }
        for order in open.iter().filter(|o| o.status == OrderStatus::Created) {
            let order_ref = order.intent.order_ref.clone();
            if let Some(why) = self.intent_expiry(order, time, policy)? {
                self.expire_intent(order.clone(), &why, time).await?;
                report.expired_intents.push((order_ref, why));
                continue;
            }
            match self.send(order.clone(), time).await {
                Ok(_) => report.resent.push(order_ref),
                Err(ExecutionError::NotSent { .. }) => report.still_unsent.push(order_ref),
                Err(ExecutionError::Rejected { .. }) => report.rejected.push(order_ref),
                Err(e) => return Err(e),
            }
        }
        if !open.iter().any(|o| o.status.is_working()) {
            self.missing_since.lock().map(|mut m| m.clear()).ok();
            return Ok(report);
        }

        let listed = self
            .broker
            .open_orders()
            .await
            .map_err(|source| ExecutionError::Broker {
                what: "open_orders".into(),
                source,
            })?;
        let listed: BTreeMap<&str, &core_domain::OrderUpdate> =
            listed.iter().map(|u| (u.order_ref.as_str(), u)).collect();
        let working: Vec<&core_domain::Order> =
            open.iter().filter(|o| o.status.is_working()).collect();

        // Cancels the broker still works on after the retry time.
        for order in &working {
            let order_ref = order.intent.order_ref.as_str();
            if order.status == OrderStatus::PendingCancel
                && listed.contains_key(order_ref)
                && (time - order.updated_at).num_minutes() >= policy.cancel_retry_minutes
            {
                let answer = self.broker.cancel_order(order_ref).await;
                self.audit(
                    time,
                    "order.cancel_resent",
                    json!({ "order_ref": order_ref, "error": answer.as_ref().err().map(ToString::to_string) }),
                    Some(format!(
                        "the cancel of {order_ref} is unconfirmed since {}: asked again",
                        order.updated_at
                    )),
                )?;
                report.cancels_resent.push(order_ref.to_string());
            }
        }

        let missing: Vec<&core_domain::Order> = working
            .iter()
            .copied()
            .filter(|o| !listed.contains_key(o.intent.order_ref.as_str()))
            .collect();
        let mut seen_before = {
            let mut m = self
                .missing_since
                .lock()
                .map_err(|_| ExecutionError::Repo {
                    what: "the executor's missing-order list".into(),
                    source: core_domain::RepoError::Backend("poisoned lock".into()),
                })?;
            let before = m.clone();
            m.retain(|r, _| missing.iter().any(|o| &o.intent.order_ref == r));
            for o in &missing {
                m.entry(o.intent.order_ref.clone()).or_insert(time);
            }
            before
        };
        if missing.is_empty() {
            return Ok(report);
        }
        report.missing = missing.iter().map(|o| o.intent.order_ref.clone()).collect();

        // Their executions, first: an order that filled while we were not
        // told is filled, not cancelled.
        let since = missing
            .iter()
            .map(|o| o.intent.created_at)
            .min()
            .unwrap_or(time);
        let fills = self
            .broker
            .executions_since(since)
            .await
            .map_err(|source| ExecutionError::Broker {
                what: format!("executions_since({since})"),
                source,
            })?;
        for fill in fills
            .iter()
            .filter(|f| missing.iter().any(|o| o.intent.order_ref == f.order_ref))
        {
            self.apply_fill(fill, time, &mut report.events)?;
        }

        for order in missing {
            let order_ref = order.intent.order_ref.clone();
            let Some(mut current) = self.stored_order(&order_ref)? else {
                continue;
            };
            if current.status.is_terminal() {
                seen_before.remove(&order_ref);
                continue;
            }
            // Missing twice in a row (a listing taken while an order is
            // being placed or reported must not end it).
            if !seen_before.contains_key(&order_ref) {
                continue;
            }
            let past_its_day = exchange_date(time) > exchange_date(current.intent.created_at)
                && current.intent.time_in_force == core_domain::TimeInForce::Day;
            let next = if past_its_day && current.status != OrderStatus::PendingCancel {
                OrderStatus::Expired
            } else {
                OrderStatus::Cancelled
            };
            let why = format!(
                "the broker no longer lists it as open and reports {} of {} filled (was {}): resolved as {next}",
                current.filled_quantity, current.intent.quantity, current.status
            );
            let was = current.status;
            current
                .transition(next, time, Some(why.clone()))
                .map_err(|e| ExecutionError::Repo {
                    what: format!("resolving order {order_ref}"),
                    source: core_domain::RepoError::Conflict(e.to_string()),
                })?;
            self.store
                .update_order(&current)
                .map_err(ExecutionError::repo(format!(
                    "storing order {order_ref} {next}"
                )))?;
            self.audit(
                time,
                "order.resolved",
                json!({ "order_ref": order_ref, "from": was, "to": next, "filled": current.filled_quantity }),
                Some(why),
            )?;
            if let Ok(mut m) = self.missing_since.lock() {
                m.remove(&order_ref);
            }
            report.resolved.push((order_ref, next));
        }
        Ok(report)
    }

    /// An order-scoped broker error: the order ends (rejected, or
    /// cancelled when part of it filled or the code says cancelled) with
    /// the code and message as its reason.
    pub(crate) fn apply_order_error(
        &self,
        order_ref: &str,
        code: i32,
        message: &str,
        time: DateTime<Utc>,
        report: &mut EventReport,
    ) -> Result<(), ExecutionError> {
        let rejects = super::ORDER_REJECTION_CODES.contains(&code);
        if !rejects && code != super::ORDER_CANCELLED_CODE {
            return Ok(());
        }
        let Some(order) = self.stored_order(order_ref)? else {
            return Ok(());
        };
        if order.status.is_terminal() {
            return Ok(());
        }
        let status = if rejects {
            OrderStatus::Rejected
        } else {
            OrderStatus::Cancelled
        };
        let update = core_domain::OrderUpdate {
            order_ref: order_ref.to_string(),
            broker_order_id: order.broker_order_id,
            status,
            filled_quantity: order.filled_quantity,
            remaining_quantity: order.remaining(),
            avg_fill_price: order.avg_fill_price,
            reason: Some(format!("IB code {code}: {message}")),
            time,
        };
        self.apply_update(&update, time, report)?;
        if self
            .stored_order(order_ref)?
            .is_some_and(|o| o.status.is_terminal())
        {
            report.rejected_by_code.push(order_ref.to_string());
        }
        Ok(())
    }
}
