//! The learning hook: what the engine's learn step calls, and how learning
//! reaches the strategy — only through adopted (or rolled-back) parameter
//! changes and the running experiment's split of new opportunities.

use chrono::{DateTime, Utc};
use core_domain::{Experiment, Trade};
use learning::experiments::{self, ParameterSet};
use learning::learn::{LearnParams, LearningEngine};
use store::Store;

/// Called by the engine.
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

    /// Parameter changes (name, new value) to apply to the live strategy
    /// since the last call: adoptions and rollbacks, and at start those
    /// adopted before.
    fn take_parameter_changes(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// The experiment new opportunities are split by, if any.
    fn active_experiment(&self, store: &Store) -> Option<Experiment> {
        let _ = store;
        None
    }

    /// The hook's own state that later decisions depend on and the
    /// database does not hold (kept in the engine's working memory with
    /// the cycle that changed it); `None` when it has none.
    fn save_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores what [`save_state`](Self::save_state) returned (after a
    /// restart).
    fn restore_state(&mut self, state: &serde_json::Value) -> Result<(), String> {
        let _ = state;
        Ok(())
    }

    /// The arm (`control` or `test`) of opportunity `key` in `experiment`:
    /// deterministic, so the split is reproducible and on record.
    fn arm(&self, experiment: &Experiment, key: &str) -> &'static str {
        let _ = (experiment, key);
        "control"
    }
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

/// The learning engine as the engine's hook (`learning::learn`).
#[derive(Debug, Clone)]
pub struct Learner {
    engine: LearningEngine,
    pending: Vec<(String, f64)>,
    seed: u64,
}

impl Learner {
    /// A learner over the configured parameters `configured`; the changes
    /// adopted before (on record in `store`) are applied to them and
    /// handed to the engine at its first call.
    pub fn new(
        store: &Store,
        params: LearnParams,
        configured: ParameterSet,
    ) -> Result<Self, String> {
        let mut current = configured;
        let mut pending = Vec::new();
        for change in LearningEngine::adopted_changes(store)? {
            // A change decided against a value no longer configured is
            // not replayed (the configuration moved on).
            if change.apply(&mut current).is_ok() {
                pending.push((change.parameter.clone(), change.to));
            }
        }
        let seed = params.experiments.assignment_seed;
        Ok(Learner {
            engine: LearningEngine::new(params, current),
            pending,
            seed,
        })
    }

    /// The live parameters as the learner knows them.
    pub fn current(&self) -> &ParameterSet {
        self.engine.current()
    }
}

impl LearningHook for Learner {
    fn name(&self) -> &str {
        "learning"
    }

    fn on_trades_closed(
        &mut self,
        store: &Store,
        closed: &[Trade],
        time: DateTime<Utc>,
    ) -> Result<Option<String>, String> {
        if closed.is_empty() {
            return Ok(None);
        }
        let report = self.engine.learn(store, time)?;
        for c in &report.changes {
            self.pending.push((c.parameter.clone(), c.to));
        }
        Ok(Some(report.summary()))
    }

    fn take_parameter_changes(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.pending)
    }

    fn active_experiment(&self, store: &Store) -> Option<Experiment> {
        LearningEngine::active_experiment(store).ok().flatten()
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "last_pattern_refresh": self.engine.last_pattern_refresh(),
        }))
    }

    fn restore_state(&mut self, state: &serde_json::Value) -> Result<(), String> {
        let last = match state.get("last_pattern_refresh") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<DateTime<Utc>>(v.clone())
                    .map_err(|e| format!("last_pattern_refresh: {e}"))?,
            ),
        };
        self.engine.set_last_pattern_refresh(last);
        Ok(())
    }

    fn arm(&self, experiment: &Experiment, key: &str) -> &'static str {
        experiments::assign(experiment, key, self.seed).as_str()
    }
}
