//! # broker-ibkr
//!
//! **Owns:** the `Broker` and `MarketData` traits over the `ibapi` crate
//! (connection, pacing, reconnect and reconciliation, IBKR error codes mapped
//! to domain errors) and the loopback simulated TWS gateway used to test it.
//!
//! **Must not:** decide what to trade, bypass the risk governor, or let an
//! IBKR type leak past its public API.
//!
//! Status: filled by the Interactive Brokers issue (#8); empty until then.
#![deny(unsafe_code)]
