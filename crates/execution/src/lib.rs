//! # execution
//!
//! **Owns:** turning risk-approved orders into broker orders (intent written
//! before it is sent), following them through the order state machine,
//! position monitoring, exits, the trade log and the emergency stop.
//!
//! **Must not:** decide what to open (that is the strategy) or approve its
//! own orders (that is the risk governor).
//!
//! Status: filled by the execution and risk issue (#5); empty until then.
#![deny(unsafe_code)]
