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
//! ## Position monitor
//! [`PositionMonitor::evaluate`] is pure: each cycle it turns the open
//! trades, the option quotes and the underlyings' prices into a
//! [`MonitorReport`] (mark, unrealized P&L, aging, moneyness, position
//! greeks and [`Alert`]s per position, and the book's sums); see
//! [`PositionMonitor`] for every definition and threshold.
//!
//! ## Exits
//! [`ExitManager`] (pure: snapshot, trades, positions in; [`ExitOrder`]s
//! and hold records out) turns the strategy's exits, the per-position
//! −$500 loss limit, the sale of stock received by assignment and the
//! emergency stop into closing (`Close`) and liquidating (`Liquidate`)
//! order intents, each with its [`ExitReason`](core_domain::ExitReason)
//! and decision record; every rule is documented on [`ExitManager`].
//!
//! ## Trade log, cancel/replace, emergency stop
//! [`trade_log`] writes each trade's life into `trades` in the transaction
//! of the fill or settlement that moves it; [`reprice`] documents how
//! unfilled orders are cancelled and re-priced within a bound, and every
//! fill's slippage against mid and limit is stored; [`emergency_stop`]
//! halts, cancels every open order and optionally flattens, recording who
//! asked and why.
#![deny(unsafe_code)]

mod context;
pub mod emergency;
mod error;
mod executor;
mod exits;
mod monitor;
pub mod reprice;
pub mod trade_log;

pub use context::OrderContext;
pub use emergency::{
    EmergencyReport, EmergencyStop, audit_emergency, emergency_stop, halt_and_cancel,
    record_state_change, send_closing,
};
pub use error::ExecutionError;
pub use executor::{
    EXECUTION_ACTOR, EventReport, ORDER_CANCELLED_CODE, ORDER_REJECTION_CODES, OrderExecutor,
    PreFlightPolicy, ReconcileReport, ResolvePolicy, ResolveReport, TradingHours,
};
pub use exits::{
    ExitManager, ExitOrder, ExitParams, ExitPlan, LiquidationRule, close_order_ref,
    liquidation_order_ref,
};
pub use monitor::{
    Alert, MarkSource, MonitorInput, MonitorParams, MonitorParamsError, MonitorReport,
    PositionMonitor, PositionView,
};
pub use reprice::{RepricePolicy, exit_limit};
pub use trade_log::TradeChange;
