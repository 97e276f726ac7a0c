//! The emergency stop: one function that halts trading, cancels every open
//! order and, when asked, closes every position, recording who asked and
//! why.
//!
//! Order of work: the halt first (persisted with its decision record and
//! audit entry before anything is sent, so a crash leaves trading halted),
//! then the cancels, then the closing orders. Closing orders go through
//! the risk governor like any order; they reduce risk, so they are
//! approved in the halted state. A failure on one order is recorded and
//! the others go on.
//!
//! The closing orders are the caller's (the engine builds them with the
//! exit manager's emergency exits, at marketable limits), so this module
//! needs no market data.

use chrono::{DateTime, Utc};
use core_domain::{AuditEntry, AuditRepository, Broker, OrderIntent};
use risk::{RiskContext, RiskGovernor, StateChange};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{ExecutionError, OrderContext, OrderExecutor};

/// Who asks for the stop, why, and whether to close everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergencyStop {
    /// `operator:<name>`, `dashboard`, `risk`, ...
    pub actor: String,
    pub reason: String,
    pub flatten: bool,
}

/// What the emergency stop did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmergencyReport {
    /// The transition to `Halted` (`None` if trading was halted already).
    pub state_change: Option<StateChange>,
    /// Orders cancelled or asked to cancel.
    pub cancelled: Vec<String>,
    /// Orders whose cancel the broker refused (audited; the next cycle
    /// retries).
    pub cancel_failed: Vec<String>,
    /// Closing orders sent (with `flatten`).
    pub closing_orders: Vec<String>,
    /// Closing orders that could not be sent, with the reason.
    pub closing_failed: Vec<(String, String)>,
    /// Trades not closed now, with why: an order of theirs is still open
    /// at the broker after its cancel (a close sized now could add to a
    /// fill racing the cancel), or the broker shows no position for them.
    /// The engine closes them at a later cycle (a pending flatten).
    #[serde(default)]
    pub closing_held: Vec<(String, String)>,
}

/// Persists a trading-state change with its decision record and audit
/// entry, in one transaction, stamped with the change's time.
pub fn record_state_change<B: Broker>(
    executor: &OrderExecutor<B>,
    change: &StateChange,
) -> Result<(), ExecutionError> {
    executor.store().atomically(|tx| {
        tx.set_trading_state_at(change.time, change.to, &change.cause, &change.actor)?;
        tx.append_decision(&change.decision_record())
            .map_err(ExecutionError::repo("writing the state change's decision"))?;
        tx.append_audit(&change.audit_entry())
            .map_err(ExecutionError::repo(
                "writing the state change's audit entry",
            ))?;
        Ok(())
    })
}

/// Halts trading, cancels every open order and, with `request.flatten`,
/// sends `closing` (each with its context) through the governor and the
/// executor. See the module docs. A caller that can re-read the broker
/// between the cancels and the closes (to size the closes from the
/// position left after the cancels) uses [`halt_and_cancel`],
/// [`send_closing`] and [`audit_emergency`] instead.
pub async fn emergency_stop<B: Broker>(
    executor: &OrderExecutor<B>,
    governor: &mut RiskGovernor,
    request: &EmergencyStop,
    closing: Vec<(OrderIntent, OrderContext)>,
    ctx: &RiskContext,
    time: DateTime<Utc>,
) -> Result<EmergencyReport, ExecutionError> {
    let mut report = halt_and_cancel(executor, governor, request, time).await?;
    if request.flatten {
        send_closing(executor, governor, closing, ctx, time, &mut report).await;
    }
    audit_emergency(executor, request, &report, time)?;
    Ok(report)
}

/// The first half of the stop: the halt (persisted first), then a cancel
/// of every open order. A cancel the broker cannot take now (it is not
/// connected) is in [`EmergencyReport::cancel_failed`] for the caller to
/// send again.
pub async fn halt_and_cancel<B: Broker>(
    executor: &OrderExecutor<B>,
    governor: &mut RiskGovernor,
    request: &EmergencyStop,
    time: DateTime<Utc>,
) -> Result<EmergencyReport, ExecutionError> {
    let mut report = EmergencyReport {
        state_change: governor.emergency_halt(time, &request.actor, &request.reason),
        ..EmergencyReport::default()
    };
    if let Some(change) = &report.state_change {
        record_state_change(executor, change)?;
    }
    let why = format!("emergency stop by {}: {}", request.actor, request.reason);
    let (cancelled, failed) = executor.cancel_all(time, &why).await?;
    report.cancelled = cancelled;
    report.cancel_failed = failed;
    Ok(report)
}

/// Sends the closing orders through the governor and the executor; each
/// failure is recorded in the report and the others go on.
pub async fn send_closing<B: Broker>(
    executor: &OrderExecutor<B>,
    governor: &mut RiskGovernor,
    closing: Vec<(OrderIntent, OrderContext)>,
    ctx: &RiskContext,
    time: DateTime<Utc>,
    report: &mut EmergencyReport,
) {
    for (intent, context) in closing {
        let order_ref = intent.order_ref.clone();
        match governor.check(intent, ctx, time) {
            Ok(approved) => match executor.submit_with_context(approved, context, time).await {
                Ok(_) => report.closing_orders.push(order_ref),
                Err(e) => report.closing_failed.push((order_ref, e.to_string())),
            },
            Err(refused) => {
                let why = refused
                    .reasons
                    .iter()
                    .map(|r| format!("{r:?}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                report.closing_failed.push((order_ref, why));
            }
        }
    }
}

/// The stop's audit entry: who, why, what was cancelled and sent.
pub fn audit_emergency<B: Broker>(
    executor: &OrderExecutor<B>,
    request: &EmergencyStop,
    report: &EmergencyReport,
    time: DateTime<Utc>,
) -> Result<(), ExecutionError> {
    let entry = AuditEntry::new(time, request.actor.clone(), "emergency_stop")
        .context(json!({
            "reason": request.reason,
            "flatten": request.flatten,
            "cancelled": report.cancelled,
            "cancel_failed": report.cancel_failed,
            "closing_orders": report.closing_orders,
            "closing_failed": report.closing_failed,
            "closing_held": report.closing_held,
        }))
        .decision(if request.flatten {
            "halt+flatten"
        } else {
            "halt"
        })
        .outcome(format!(
            "halted; {} orders cancelled ({} failed); {} closing orders sent ({} failed){}",
            report.cancelled.len(),
            report.cancel_failed.len(),
            report.closing_orders.len(),
            report.closing_failed.len(),
            if report.closing_held.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} positions held until their cancels are confirmed",
                    report.closing_held.len()
                )
            }
        ));
    executor
        .store()
        .append_audit(&entry)
        .map_err(ExecutionError::repo(
            "writing the emergency stop's audit entry",
        ))
}
