//! # execution
//!
//! **Owns:** turning risk-approved orders into broker orders (intent written
//! before it is sent), following them through the order state machine,
//! position monitoring, exits, the trade log and the emergency stop.
//!
//! **Must not:** decide what to open (that is the strategy), approve its
//! own orders (that is the risk governor), or send anything that is not a
//! [`risk::RiskApproved`]: [`OrderExecutor::submit`] takes the approval by
//! value and is the only way an order reaches the broker.
//!
//! ## Nothing is lost
//! * The intent is written (status `created`, with the approval's decision
//!   record) before the broker is called; a known `order_ref` is never sent
//!   again.
//! * Each fill is recorded with its order update and ledger entries in one
//!   transaction, deduplicated by `exec_id`.
//! * Unknown order refs, illegal transitions, refused fills and events that
//!   are not about orders are written to the audit log, never dropped.
//! * [`OrderExecutor::reconcile`] re-places `created` orders with the same
//!   `order_ref` (the broker deduplicates by it) and pulls the executions
//!   missed while disconnected.
//!
//! ## Exits
//! [`ExitManager`] (pure: snapshot, trades, positions in; [`ExitOrder`]s
//! and hold records out) turns the strategy's exits, the per-position
//! −$500 loss limit, the sale of stock received by assignment and the
//! emergency stop into closing (`Close`) and liquidating (`Liquidate`)
//! order intents, each with its [`ExitReason`](core_domain::ExitReason)
//! and decision record; every rule is documented on [`ExitManager`].
//!
//! Status: the order executor and the exit manager are done; the position
//! monitor, trade logger and emergency stop wiring are still to come.
#![deny(unsafe_code)]

mod error;
mod executor;
mod exits;

pub use error::ExecutionError;
pub use executor::{EXECUTION_ACTOR, EventReport, OrderExecutor, ReconcileReport};
pub use exits::{
    ExitManager, ExitOrder, ExitParams, ExitPlan, LiquidationRule, close_order_ref,
    liquidation_order_ref,
};
