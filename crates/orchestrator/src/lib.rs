//! # orchestrator
//!
//! **Owns:** the engine loop (perceive → reason → act → learn) in
//! [`engine`], the event detector ([`events`]), the working memory (kept
//! in the database by the engine), the schedule ([`schedule`]), the
//! learning hook ([`hook`]), backtests ([`backtest`]) and their
//! performance summary ([`metrics`]) and report ([`report`]).
//!
//! **Must not:** pick implementations (the binaries wire them) or contain a
//! code path that exists only in backtest or only in live: the engine is
//! generic over the broker, the strategy and the learning hook, and takes
//! time as an argument.
#![deny(unsafe_code)]

pub mod agent;
pub mod backtest;
pub mod engine;
pub mod events;
pub mod hook;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod schedule;

use thiserror::Error;

pub use agent::AgentHooks;
pub use engine::{Action, CommitMode, CycleReport, ENGINE_ACTOR, Engine, EngineParams, Memory};
pub use events::{DetectorParams, EngineEvent};
pub use hook::{Learner, LearningHook, NoLearning};
pub use runner::{CycleObserver, Pace, Stopped, run, run_observed};
pub use schedule::{Phase, Schedule, ScheduleParams};

/// The index whose 200-session average sets the regime (IBKR `SPX`).
pub const INDEX_SYMBOL: &str = "SPX";
/// The volatility index (IBKR `VIX`).
pub const VIX_SYMBOL: &str = "VIX";

/// What can stop the engine. Broker failures inside a cycle are recorded
/// as system errors and do not stop it; a store failure does (nothing can
/// be recorded any more), and so does a bad configuration.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Execution(#[from] execution::ExecutionError),
    #[error("store: {0}")]
    Repo(#[from] core_domain::RepoError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("broker: {0}")]
    Broker(#[from] core_domain::BrokerError),
}
