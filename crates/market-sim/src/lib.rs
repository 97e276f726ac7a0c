//! # market-sim
//!
//! **Owns:** the real historical prices shipped with the project, the NYSE
//! calendar, option chains modelled from the underlying (strikes,
//! expirations, an implied-volatility surface, spreads, open interest), the
//! simulated exchange that implements `Broker` and `MarketData`, and the
//! seeded synthetic market generator.
//!
//! **Must not:** know about strategies, risk limits or the database; make a
//! fill at a price the modelled book did not offer.
//!
//! Status: filled by the simulated-market issue (#3); empty until then.
#![deny(unsafe_code)]
