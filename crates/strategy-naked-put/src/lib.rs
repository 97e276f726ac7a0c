//! # strategy-naked-put
//!
//! **Owns:** the trader's baseline strategy: the screener (uptrend, price
//! and liquidity filters, ranking), the options finder (OTM %, premium at
//! the bid, DTE, liquidity, what-if margin against Reg-T, ranking by margin
//! efficiency), the pure entry and exit rules with their decision records,
//! `NakedPutStrategy` (the `Strategy` trait), the scan, and the validator
//! that replays selection over history.
//!
//! **Must not:** send orders, touch the database, or read the clock: it
//! works on the snapshot and the traits it is given (`MarketData`,
//! `Broker` for what-if margin only), so it runs unchanged on the simulated
//! exchange and on IBKR.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod error;
pub mod finder;
pub mod indicators;
pub mod params;
pub mod rules;
pub mod scan;
pub mod screener;
pub mod strategy;
pub mod validator;

pub use error::StrategyError;
pub use finder::{
    FindContext, MarginSource, Opportunity, check_params, contracts_to_quote, find, find_in_quotes,
    rank,
};
pub use params::{NakedPutParams, TUNABLE, TrendFilter};
pub use rules::{EntryCandidate, ExitInput, is_uptrend, otm_pct, should_enter, should_exit};
pub use scan::{ScanReport, UnderlyingScan, scan};
pub use screener::{ScreenInput, ScreenedUnderlying, screen};
pub use strategy::NakedPutStrategy;
