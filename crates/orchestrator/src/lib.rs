//! # orchestrator
//!
//! **Owns:** the engine loop (perceive → reason → act → learn), the event
//! detector, the working memory and the schedule, generic over the clock,
//! broker, strategy, execution, risk and learning hook.
//!
//! **Must not:** pick implementations (the binaries wire them) or contain a
//! code path that exists only in backtest or only in live.
//!
//! Built so far: [`metrics`] (the performance summary of trades and an
//! equity curve) and [`report`] (the backtest report: Markdown, a
//! self-contained HTML page and SVG charts). The engine loop itself comes
//! with issue #6.
#![deny(unsafe_code)]

pub mod metrics;
pub mod report;
