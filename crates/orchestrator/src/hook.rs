//! The learning hook: what the engine's learn step calls. The learning
//! issue fills it; until then [`NoLearning`] does nothing.

use chrono::{DateTime, Utc};
use core_domain::Trade;
use store::Store;

/// Called by the engine's learn step.
pub trait LearningHook: Send {
    /// A short name for the records.
    fn name(&self) -> &str;

    /// After trades closed in this cycle (real trades only). Returns a
    /// one-line summary of what was learned, for the cycle's decision
    /// record, or `None` when nothing was done.
    fn on_trades_closed(
        &mut self,
        store: &Store,
        closed: &[Trade],
        time: DateTime<Utc>,
    ) -> Result<Option<String>, String>;
}

/// The hook that learns nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLearning;

impl LearningHook for NoLearning {
    fn name(&self) -> &str {
        "none"
    }

    fn on_trades_closed(
        &mut self,
        _store: &Store,
        _closed: &[Trade],
        _time: DateTime<Utc>,
    ) -> Result<Option<String>, String> {
        Ok(None)
    }
}
