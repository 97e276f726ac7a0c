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
//! - [`patterns`] — the pattern detector: each bucket of each dimension
//!   (OTM %, DTE, sector, entry weekday and hour, VIX regime, market
//!   regime, trend strength, IV rank) against the rest, p-values corrected
//!   across every comparison, a minimum effect and a persistence check;
//!   and the lifecycle of the stored patterns.
//! - [`optimizer`] — the parameter optimizer: multi-start Nelder-Mead
//!   (argmin) over a parameter space with the caller's backtest as the
//!   objective, a Pareto front, walk-forward validation and a deflated
//!   Sharpe ratio guard; its output is a change proposal for an experiment,
//!   never a configuration change.
//! - [`experiments`] — A/B tests of one strategy parameter: proposals from
//!   patterns, deterministic assignment, sequential analysis, adoption
//!   under the governance limits, rollback, each step in
//!   `learning_history`.
//!
//! - [`learn`] — the learn step the engine runs after every closed trade:
//!   patterns, experiments analysed and adopted or rejected under the
//!   governance limits, rollbacks, a new experiment from the strongest
//!   pattern.
//! - [`metrics`] — learning metrics: win rate and ROI over time against
//!   the baseline, experiments by status, the parameter history.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod experiments;
pub mod learn;
pub mod metrics;
pub mod optimizer;
pub mod patterns;
pub mod shadow;
pub mod stats;

pub use error::LearningError;
