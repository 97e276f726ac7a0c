//! # core-domain
//!
//! The vocabulary of the trader: money, contracts, quotes, orders and their
//! state machine, fills, positions, trades, experiments, patterns, decision
//! records, and the traits the other crates speak ([`Clock`],
//! [`MarketData`], [`Broker`], [`Strategy`] and the repositories).
//!
//! **Owns:** the domain types and their invariants (legal order transitions,
//! exact money, a ledger that balances to the cent).
//!
//! **Must not:** depend on any other crate of the workspace, do I/O, read
//! configuration, or know which broker or database is behind a trait.
//!
//! ## Money
//! Cash and P&L are [`Money`] (integer cents); per-share prices are
//! [`Price`] (integer ten-thousandths of a dollar). Floats appear only in
//! models and statistics (IV, greeks, ratios), never in the ledger.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod account;
mod clock;
mod contract;
mod decision;
mod error;
mod learning;
mod ledger;
mod macros;
mod market;
mod money;
mod order;
mod trade;
mod trading_state;
mod traits;

pub use account::{AccountSnapshot, MarginImpact, Position};
pub use clock::{Clock, SimulatedClock};
pub use contract::{Contract, OptionContract, Right, StockContract, Symbol};
pub use decision::{AuditEntry, Criterion, DecisionKind, DecisionRecord};
pub use error::{BrokerError, DomainError, RepoError};
pub use learning::{
    Experiment, ExperimentStatus, LearningEvent, LearningEventType, Pattern, PatternStatus,
    ShadowOrigin, ShadowTrade,
};
pub use ledger::{BookPosition, Ledger, LedgerEntry, LedgerEntryKind};
pub use market::{DailyBar, Greeks, OptionChain, OptionQuote, Quote};
pub use money::{CENTS, Money, PRICE_SCALE, Price};
pub use order::{
    Fill, Order, OrderIntent, OrderPurpose, OrderStatus, Side, Slippage, TimeInForce, exec_id_base,
};
pub use trade::{ExitReason, MarketRegime, Trade, TradeExit, TradeStatus};
pub use trading_state::TradingState;
pub use traits::{
    AccountRepository, AuditRepository, Broker, BrokerEvent, EntryProposal, ExitProposal,
    LearningRepository, MarketData, MarketSnapshot, OrderRepository, OrderUpdate, Strategy,
    TradeFilter, TradeRepository, UnderlyingSnapshot, WorkingMemory,
};

#[cfg(any(test, feature = "stubs"))]
pub mod stubs;
