//! # risk
//!
//! **Owns:** the `RiskGovernor` (position and loss limits, VaR, sector
//! concentration, correlation, margin utilization), the circuit breakers and
//! the trading state (active, reduce-only, halted). It issues the only
//! approval type the executor accepts.
//!
//! **Must not:** send orders or block a closing, risk-reducing order with an
//! entry limit.
//!
//! Status: filled by the execution and risk issue (#5); empty until then.
#![deny(unsafe_code)]
