//! The learn step: what the engine runs after every closed trade.
//!
//! [`LearningEngine::learn`], in this order:
//! 1. **Patterns** — [`crate::patterns::refresh`] over every closed real
//!    trade (nothing below 30), with the newest closed shadow outcomes as
//!    evidence, inserting, keeping and retiring patterns; at most every
//!    `pattern_refresh_hours` (168: weekly), the costly step.
//! 2. **Running experiments** — each active (or complete, waiting on the
//!    30-day limit) experiment is analysed with the sequential test
//!    ([`crate::experiments::analyze`]); `Adopt` goes through the
//!    governance limits ([`crate::experiments::adopt`]) and, when adopted,
//!    the change is applied to the live parameters; `Reject` ends it.
//! 3. **Adopted changes** — each adopted, unconfirmed change is watched
//!    ([`crate::experiments::check_rollback`]): the trades entered after
//!    the adoption against the experiment's control arm; significantly
//!    worse → rolled back (the old value restored), a full window that is
//!    not worse → confirmed.
//! 4. **New experiment** — when none is running, the strongest active
//!    pattern that maps to a parameter (smallest adjusted p-value first)
//!    becomes an experiment ([`crate::experiments::propose_from_pattern`]).
//!
//! Every step writes `learning_history` (the modules above do). The live
//! parameters change only through step 2 (adoption) or step 3 (rollback);
//! [`LearningEngine::adopted_changes`] replays them from the database at
//! start so a restart trades with what was adopted.

use chrono::{DateTime, Utc};
use core_domain::{
    Experiment, ExperimentStatus, LearningRepository, PatternStatus, Trade, TradeFilter,
    TradeRepository, TradeStatus,
};
use serde::{Deserialize, Serialize};

use crate::experiments::{
    self, AdoptionOutcome, Decision, ExperimentParams, ParameterChange, ParameterSet,
    RollbackDecision,
};
use crate::patterns::{self, FeatureMap, PatternParams};

/// The learn step's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnParams {
    /// The pattern detector's.
    pub patterns: PatternParams,
    /// The experiment engine's.
    pub experiments: ExperimentParams,
    /// Closed shadow trades (newest first) given to the pattern detector
    /// as evidence (pooled only when `patterns.pool_shadow`), and to the
    /// experiments as their policy allows; 0 = none.
    pub shadow_evidence: usize,
    /// Hours between two pattern refreshes (the costly step: permutation
    /// tests over every comparison); experiments are analysed at every
    /// learn step. 0 = refresh every time.
    pub pattern_refresh_hours: i64,
}

impl Default for LearnParams {
    fn default() -> Self {
        LearnParams {
            patterns: PatternParams::default(),
            experiments: ExperimentParams::default(),
            shadow_evidence: 1_000,
            pattern_refresh_hours: 168,
        }
    }
}

/// What one learn step did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnReport {
    /// Closed real trades looked at.
    pub closed_trades: usize,
    /// Closed shadow trades given as evidence.
    pub shadow_evidence: usize,
    /// Patterns inserted, kept and retired.
    pub patterns_inserted: usize,
    /// Active patterns re-detected.
    pub patterns_kept: usize,
    /// Patterns retired.
    pub patterns_retired: usize,
    /// Experiments analysed, with their decision.
    pub analysed: Vec<(String, String)>,
    /// An experiment started in this step.
    pub started: Option<String>,
    /// Parameter changes applied (adoptions and rollbacks).
    pub changes: Vec<ParameterChange>,
    /// Steps that could not be taken, with why (recorded, not fatal).
    pub notes: Vec<String>,
}

impl LearnReport {
    /// One line for the engine's decision record.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "{} closed trades ({} shadow outcomes as evidence); patterns +{} ={} -{}",
            self.closed_trades,
            self.shadow_evidence,
            self.patterns_inserted,
            self.patterns_kept,
            self.patterns_retired
        )];
        for (id, d) in &self.analysed {
            parts.push(format!("{id}: {d}"));
        }
        if let Some(id) = &self.started {
            parts.push(format!("started {id}"));
        }
        for c in &self.changes {
            parts.push(format!(
                "{} {} -> {} ({})",
                c.parameter, c.from, c.to, c.experiment_id
            ));
        }
        parts.join("; ")
    }
}

/// The learning engine: patterns, experiments, governed adoption.
#[derive(Debug, Clone)]
pub struct LearningEngine {
    params: LearnParams,
    current: ParameterSet,
    last_pattern_refresh: Option<DateTime<Utc>>,
}

impl LearningEngine {
    /// An engine whose live parameters are `current` (the configured ones
    /// with the adopted changes applied, see [`Self::adopted_changes`]).
    pub fn new(params: LearnParams, current: ParameterSet) -> Self {
        LearningEngine {
            params,
            current,
            last_pattern_refresh: None,
        }
    }

    /// The live parameters as the learning engine knows them.
    pub fn current(&self) -> &ParameterSet {
        &self.current
    }

    /// When the patterns were last refreshed (they are refreshed at most
    /// every `pattern_refresh_hours`); state a restart must restore.
    pub fn last_pattern_refresh(&self) -> Option<DateTime<Utc>> {
        self.last_pattern_refresh
    }

    /// Restores [`last_pattern_refresh`](Self::last_pattern_refresh).
    pub fn set_last_pattern_refresh(&mut self, time: Option<DateTime<Utc>>) {
        self.last_pattern_refresh = time;
    }

    /// The settings.
    pub fn params(&self) -> &LearnParams {
        &self.params
    }

    /// Changes adopted and not rolled back, oldest first: applied over the
    /// configured parameters when the engine starts.
    pub fn adopted_changes<R: LearningRepository + ?Sized>(
        repo: &R,
    ) -> Result<Vec<ParameterChange>, String> {
        let mut adopted: Vec<Experiment> = repo
            .experiments()
            .map_err(|e| format!("reading the experiments: {e}"))?
            .into_iter()
            .filter(|e| e.status == ExperimentStatus::Adopted)
            .collect();
        adopted.sort_by(|a, b| {
            a.end_date
                .cmp(&b.end_date)
                .then(a.experiment_id.cmp(&b.experiment_id))
        });
        adopted
            .iter()
            .map(|e| {
                let from = experiments::arm_value(e, experiments::Arm::Control)
                    .map_err(|x| x.to_string())?;
                let to =
                    experiments::arm_value(e, experiments::Arm::Test).map_err(|x| x.to_string())?;
                Ok(ParameterChange {
                    experiment_id: e.experiment_id.clone(),
                    parameter: e.parameter_name.clone(),
                    from,
                    to,
                })
            })
            .collect()
    }

    /// The experiment new opportunities are split by: the one active
    /// experiment, if any.
    pub fn active_experiment<R: LearningRepository + ?Sized>(
        repo: &R,
    ) -> Result<Option<Experiment>, String> {
        Ok(repo
            .experiments()
            .map_err(|e| format!("reading the experiments: {e}"))?
            .into_iter()
            .find(|e| e.status == ExperimentStatus::Active))
    }

    /// The learn step (see the module docs). A step that fails is noted in
    /// the report and the others go on; only a failing store is an error.
    pub fn learn<R>(&mut self, repo: &R, time: DateTime<Utc>) -> Result<LearnReport, String>
    where
        R: LearningRepository + TradeRepository + ?Sized,
    {
        let mut report = LearnReport::default();
        let closed: Vec<Trade> = repo
            .trades(&TradeFilter {
                open: Some(false),
                ..TradeFilter::default()
            })
            .map_err(|e| format!("reading the closed trades: {e}"))?
            .into_iter()
            .filter(|t| t.status == TradeStatus::Closed)
            .collect();
        report.closed_trades = closed.len();

        let refresh = self
            .last_pattern_refresh
            .is_none_or(|t| (time - t).num_hours() >= self.params.pattern_refresh_hours);
        // Shadow evidence: the newest closed shadow trades (read when the
        // patterns are refreshed).
        let shadows: Vec<core_domain::ShadowTrade> = if self.params.shadow_evidence == 0 || !refresh
        {
            Vec::new()
        } else {
            repo.shadows(i64::try_from(self.params.shadow_evidence * 4).unwrap_or(i64::MAX))
                .map_err(|e| format!("reading the shadow trades: {e}"))?
                .into_iter()
                .filter(|s| s.status == TradeStatus::Closed)
                .take(self.params.shadow_evidence)
                .collect()
        };
        let shadow_trades: Vec<Trade> =
            shadows.iter().filter_map(crate::shadow::as_trade).collect();
        let shadow_outcomes: Vec<experiments::ShadowOutcome> = shadows
            .iter()
            .filter_map(|s| {
                Some(experiments::ShadowOutcome {
                    shadow_id: s.shadow_id.clone(),
                    experiment_id: s.experiment_id.clone()?,
                    arm: experiments::Arm::parse(s.experiment_arm.as_deref()?)?,
                    exit_date: s.exit_time?.date_naive(),
                    roi: s.roi?,
                })
            })
            .collect();
        report.shadow_evidence = shadow_trades.len();

        // 1. patterns (at most every `pattern_refresh_hours`)
        if refresh {
            self.last_pattern_refresh = Some(time);
            match patterns::refresh_with_shadow(
                repo,
                &closed,
                &shadow_trades,
                &FeatureMap::new(),
                &self.params.patterns,
                time,
            ) {
                Ok(r) => {
                    report.patterns_inserted = r.inserted.len();
                    report.patterns_kept = r.kept.len();
                    report.patterns_retired = r.retired.len();
                }
                Err(e) => report.notes.push(format!("patterns: {e}")),
            }
        }

        // 2. running experiments
        let all = repo
            .experiments()
            .map_err(|e| format!("reading the experiments: {e}"))?;
        let xp = self.params.experiments;
        for exp in all.iter().filter(|e| {
            matches!(
                e.status,
                ExperimentStatus::Active | ExperimentStatus::Complete
            )
        }) {
            let analysis =
                match experiments::analyze(exp, &closed, Some(&shadow_outcomes), &xp, time) {
                    Ok(a) => a,
                    Err(e) => {
                        report.notes.push(format!("{}: {e}", exp.experiment_id));
                        continue;
                    }
                };
            let updated = match experiments::record_analysis(repo, exp, &analysis) {
                Ok(u) => u,
                Err(e) => {
                    report.notes.push(format!("{}: {e}", exp.experiment_id));
                    continue;
                }
            };
            report.analysed.push((
                exp.experiment_id.clone(),
                analysis.decision.as_str().to_string(),
            ));
            match analysis.decision {
                Decision::Adopt => {
                    match experiments::adopt(repo, &updated, &analysis, &self.current, &xp, time) {
                        Ok(AdoptionOutcome::Adopted(change)) => {
                            match change.apply(&mut self.current) {
                                Ok(()) => report.changes.push(change),
                                Err(e) => report.notes.push(format!("{}: {e}", exp.experiment_id)),
                            }
                        }
                        Ok(AdoptionOutcome::Deferred(why)) | Ok(AdoptionOutcome::Refused(why)) => {
                            report.notes.push(format!("{}: {why}", exp.experiment_id));
                        }
                        Err(e) => report.notes.push(format!("{}: {e}", exp.experiment_id)),
                    }
                }
                Decision::Reject => {
                    if let Err(e) = experiments::reject(repo, &updated, &analysis, time) {
                        report.notes.push(format!("{}: {e}", exp.experiment_id));
                    }
                }
                Decision::Continue => {}
            }
        }

        // 3. adopted changes under watch
        let all = repo
            .experiments()
            .map_err(|e| format!("reading the experiments: {e}"))?;
        for exp in all
            .iter()
            .filter(|e| e.status == ExperimentStatus::Adopted && !experiments::is_confirmed(e))
        {
            let adopted_on = exp.end_date.unwrap_or(exp.start_date);
            let after: Vec<Trade> = closed
                .iter()
                .filter(|t| t.entry_date > adopted_on)
                .cloned()
                .collect();
            let before: Vec<Trade> = closed
                .iter()
                .filter(|t| {
                    t.experiment_id.as_deref() == Some(exp.experiment_id.as_str())
                        && t.experiment_arm.as_deref() == Some("control")
                })
                .cloned()
                .collect();
            match experiments::check_rollback(exp, &after, &before, &xp) {
                Ok(check) => match check.decision {
                    RollbackDecision::RollBack => {
                        match experiments::rollback(repo, exp, &check, time) {
                            Ok(change) => match change.apply(&mut self.current) {
                                Ok(()) => report.changes.push(change),
                                Err(e) => report.notes.push(format!("{}: {e}", exp.experiment_id)),
                            },
                            Err(e) => report.notes.push(format!("{}: {e}", exp.experiment_id)),
                        }
                    }
                    RollbackDecision::Confirmed => {
                        if let Err(e) = experiments::confirm_adoption(repo, exp, &check, time) {
                            report.notes.push(format!("{}: {e}", exp.experiment_id));
                        }
                    }
                    RollbackDecision::Watching => {}
                },
                Err(e) => report.notes.push(format!("{}: {e}", exp.experiment_id)),
            }
        }

        // 4. a new experiment from the strongest pattern
        let running = repo
            .experiments()
            .map_err(|e| format!("reading the experiments: {e}"))?
            .into_iter()
            .any(|e| {
                matches!(
                    e.status,
                    ExperimentStatus::Active | ExperimentStatus::Complete
                )
            });
        if !running {
            let mut active = repo
                .patterns(Some(PatternStatus::Active))
                .map_err(|e| format!("reading the patterns: {e}"))?;
            active.sort_by(|a, b| a.1.p_value.total_cmp(&b.1.p_value));
            let today = time.date_naive();
            for (_, pattern) in &active {
                match experiments::propose_from_pattern(pattern, &self.current, &xp, today) {
                    Ok(exp) => match experiments::start(repo, &exp, &xp, time) {
                        Ok(()) => {
                            report.started = Some(exp.experiment_id.clone());
                            break;
                        }
                        Err(e) => report.notes.push(format!("{}: {e}", exp.experiment_id)),
                    },
                    Err(why) => report
                        .notes
                        .push(format!("{}: {why}", pattern.pattern_name)),
                }
            }
        }
        Ok(report)
    }
}
