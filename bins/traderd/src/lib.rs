//! The wiring shared by `traderd` and `trader-cli`: which implementations
//! the engine runs with, built from the settings. Binaries only wire; the
//! engine, its parts and their rules live in the crates.

#![deny(unsafe_code)]

pub mod agent;
pub mod clocks;
pub mod ibkr;
pub mod lock;
pub mod wiring;
