//! # store
//!
//! The trader's persistence: the database schema, its migrations and the
//! implementations of the repository traits of `core_domain`
//! ([`TradeRepository`](core_domain::TradeRepository),
//! [`OrderRepository`](core_domain::OrderRepository),
//! [`AccountRepository`](core_domain::AccountRepository),
//! [`AuditRepository`](core_domain::AuditRepository),
//! [`LearningRepository`](core_domain::LearningRepository),
//! [`WorkingMemory`](core_domain::WorkingMemory)) for [`Store`].
//!
//! **Owns:** persistence over diesel; SQLite embedded (bundled, no server)
//! as the default and, for now, only backend; the SQL migrations under
//! `migrations/` at the workspace root, compiled into the binary; the
//! trading-state history the emergency stop writes; crash consistency
//! (every repository call, and every [`Store::atomically`] block, commits
//! whole or not at all, and a commit is on disk before the call returns).
//!
//! **Must not:** take business decisions (it stores what it is given:
//! order transitions, risk limits and trading-state semantics belong to the
//! crates above), or know about brokers, strategies or configuration files.
//!
//! ## Conventions
//! Money columns are `BIGINT` cents ([`core_domain::Money`]), price columns
//! `BIGINT` ten-thousandths of a dollar ([`core_domain::Price`]), times
//! `TIMESTAMP` in UTC, JSON `TEXT`, enums their serde names. Queries use
//! SQL that PostgreSQL also accepts, so a PostgreSQL backend needs its own
//! migrations but not new queries.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod analyst;
mod cockpit;
mod codec;
mod crash;
mod error;
mod ops;
mod repos;
mod rows;
pub mod schema;
mod store;

pub use analyst::{AgentCall, NewAnalystReport, StoredAnalystReport};
pub use cockpit::NotificationAttempt;
pub use crash::{CRASH_ENV, crash_point};
pub use error::StoreError;
pub use store::{
    ConnectionSettings, ControlAction, ControlRequest, MIGRATIONS, MigrationState, OrderEvent,
    Store, StoreTx, TradingStateRecord, remove_database_files,
};
