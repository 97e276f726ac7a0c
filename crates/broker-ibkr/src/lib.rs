//! # broker-ibkr
//!
//! **Owns:** the `Broker` and `MarketData` traits over the `ibapi` crate
//! (connection, pacing, reconnect and reconciliation, IBKR error codes mapped
//! to domain errors) and the loopback simulated TWS gateway used to test it.
//!
//! **Must not:** decide what to trade, bypass the risk governor, or let an
//! IBKR type leak past its public API.
//!
//! The adapter is [`IbkrBroker`], built from an [`IbkrConfig`] with
//! [`IbkrBroker::connect`]. Setup of TWS / IB Gateway and the config keys:
//! `docs/IBKR_SETUP.md`.
//!
//! Modules whose logic needs no connection (and is unit-tested here):
//! [`errors`] (the IBKR code table), [`pacing`], `contracts` (contract
//! mapping and the float boundary), [`market_data_type`] (delayed-data
//! fallback and tick folding), [`orders`] (order ids, statuses, fill
//! joining), [`bars`] and [`connection`] (backoff).
#![deny(unsafe_code)]

pub mod bars;
mod broker;
pub mod config;
pub mod connection;
mod contracts;
pub mod errors;
pub mod market_data_type;
pub mod orders;
pub mod pacing;

pub use broker::{IbkrBroker, Resume};
pub use config::IbkrConfig;
pub use errors::{Disposition, map_error};
pub use market_data_type::MarketDataKind;
