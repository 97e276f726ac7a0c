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
//! - [`shadow`] — shadow trades: every evaluated opportunity followed to
//!   its outcome by the exit rules, evidence apart from P&L.
//!
//! Status: the rest of the learning issue (#7) — patterns, shadow trades,
//! experiments, the optimizer — is still to come.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod shadow;
pub mod stats;
