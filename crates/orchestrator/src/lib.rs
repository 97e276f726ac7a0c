//! # orchestrator
//!
//! **Owns:** the engine loop (perceive → reason → act → learn), the event
//! detector, the working memory and the schedule, generic over the clock,
//! broker, strategy, execution, risk and learning hook.
//!
//! **Must not:** pick implementations (the binaries wire them) or contain a
//! code path that exists only in backtest or only in live.
//!
//! Status: filled by the engine-loop issue (#6); empty until then.
#![deny(unsafe_code)]
