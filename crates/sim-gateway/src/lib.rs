//! # sim-gateway
//!
//! **Owns:** a simulated TWS / IB Gateway: a loopback TCP server speaking
//! the TWS API exactly as the `ibapi` client negotiates it (server
//! versions 213–226, protobuf frames), answering from the simulated
//! exchange ([`market_sim::SimExchange`]): handshake, ids, contracts,
//! option chains, market data (real-time and delayed), daily bars, orders
//! (what-if, place, cancel, open orders, executions with commissions),
//! positions and the account summary; simulated time (lockstep through a
//! control channel, or paced); fault injection (dropped connections,
//! delays, rejections, pacing errors, malformed frames). See
//! `docs/SIM_GATEWAY.md`.
//!
//! **Must not:** know about strategies, risk or the database; share code
//! with the `ibapi` client (the protobuf messages here are written for
//! this crate); create an order the exchange already has (one orderRef,
//! one order); panic on anything a client sends.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod config;
mod control;
mod error;
mod faults;
pub mod proto;
mod server;
pub mod wire;

pub use config::{GatewayConfig, TimeMode};
pub use control::ControlClient;
pub use error::GatewayError;
pub use faults::{Fault, FaultConfig, MalformedKind};
pub use server::{GatewayHandle, SimGateway, build_exchange, serve, serve_history};
