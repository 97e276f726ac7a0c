//! # market-sim
//!
//! **Owns:** the real historical prices shipped with the project
//! ([`data`]), the NYSE calendar ([`calendar`]), the aligned [`History`]
//! every model reads, option chains modelled from the underlying
//! (strikes, expirations, an implied-volatility surface, spreads, open
//! interest), the simulated exchange that implements `Broker` and
//! `MarketData`, and the seeded synthetic market generator.
//!
//! **Must not:** know about strategies, risk limits or the database; make a
//! fill at a price the modelled book did not offer.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod bs;
pub mod calendar;
pub mod calibrate;
pub mod chain;
pub mod data;
pub mod exchange;
mod history;
pub mod params;
mod path;
pub mod synthetic;
pub mod universe;

pub use chain::{ChainModel, QuoteContext, VolState};
pub use exchange::{
    ExchangeClock, INDEX_SPX, INDEX_VIX, MARGIN_DEFICIENCY, SIM_ACCOUNT, SimExchange,
};
pub use history::{History, SymbolInfo};
pub use params::{ChainModelParams, ExchangeParams};
