//! # learning
//!
//! **Owns:** the statistical tests, pattern detection, shadow trades, A/B
//! experiments with governed adoption, and the parameter optimizer. Usable
//! on its own by researchers.
//!
//! **Must not:** change a live parameter except through an adopted
//! experiment, or count shadow trades as P&L.
//!
//! Modules:
//! - [`stats`] — the statistical validator: Welch's t, Mann-Whitney U, the
//!   exact binomial test, bootstrap intervals, effect sizes, power and
//!   sample size, Holm and Benjamini-Hochberg, and an always-valid
//!   sequential test for results checked at every cycle.
//! - [`experiments`] — A/B tests of one strategy parameter: proposals from
//!   patterns, deterministic assignment, sequential analysis, adoption
//!   under the governance limits, rollback, each step in
//!   `learning_history`.
//!
//! Status: the rest of the learning issue (#7) — patterns, shadow trades,
//! the optimizer — is still to come.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod experiments;
pub mod stats;
