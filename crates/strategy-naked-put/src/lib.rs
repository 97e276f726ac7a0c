//! # strategy-naked-put
//!
//! **Owns:** the screener (uptrend, price and liquidity filters), the
//! options finder (OTM %, premium at the bid, DTE, liquidity, margin
//! efficiency), the pure entry and exit rules with their decision records,
//! and the validator that replays selection over history.
//!
//! **Must not:** send orders, touch the database, or read the clock: it
//! works on the snapshot it is given, so it runs unchanged in backtest and
//! live.
//!
//! Status: filled by the strategy issue (#4); empty until then.
#![deny(unsafe_code)]
