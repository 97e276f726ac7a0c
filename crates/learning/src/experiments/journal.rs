//! The experiment's life in the database: each step updates the
//! `experiments` row and appends its reasoning to `learning_history`.
//!
//! Each function makes two or three repository writes. Over a `Store`
//! each is its own transaction; to make a step atomic, run it inside
//! `Store::atomically(|tx| ..)` with the `StoreTx` as the repository.

use super::analysis::{Analysis, Decision};
use super::assign::{Arm, arm_value};
use super::error::{ExperimentError, ExperimentResult, repo};
use super::governance::{GovernanceRefusal, Governor, RollbackCheck, RollbackDecision};
use super::parameters::{ParameterChange, ParameterSet, parameter_spec};
use super::params::{ExperimentParams, ShadowPolicy};
use chrono::{DateTime, Utc};
use core_domain::{
    Experiment, ExperimentStatus, LearningEvent, LearningEventType, LearningRepository,
};

/// How many history events [`adopt`] reads to find the last parameter
/// change (newest first). The limit of one change per 30 days needs only
/// the events of the last 30 days; this covers them at any realistic rate.
pub const HISTORY_LOOKBACK: i64 = 100_000;

/// The start of an adopted experiment's `decision` text once the rollback
/// watch confirmed it ([`confirm_adoption`], [`is_confirmed`]).
pub const CONFIRMED_PREFIX: &str = "adopted and confirmed";

/// What [`adopt`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AdoptionOutcome {
    /// The test value is adopted: apply this change to the strategy's
    /// parameters.
    Adopted(ParameterChange),
    /// The governance limits hold it back for now
    /// ([`GovernanceRefusal::TooSoon`]); the experiment is `complete`
    /// (it takes no new opportunities) and [`adopt`] may be called again
    /// with the same analysis once the limit allows.
    Deferred(GovernanceRefusal),
    /// The governance limits forbid it for good; the experiment is
    /// `rejected`.
    Refused(GovernanceRefusal),
}

/// The mark an experiment event carries: which parameter is under test
/// and its two values.
fn event(
    experiment: &Experiment,
    event_type: LearningEventType,
    at: DateTime<Utc>,
    reasoning: String,
) -> LearningEvent {
    LearningEvent {
        event_type,
        event_date: at,
        pattern_name: Some(experiment.name.clone()),
        confidence: None,
        sample_size: None,
        parameter_changed: Some(experiment.parameter_name.clone()),
        old_value: Some(experiment.control_value.clone()),
        new_value: Some(experiment.test_value.clone()),
        reasoning,
    }
}

fn with_evidence(mut e: LearningEvent, analysis: &Analysis) -> LearningEvent {
    e.sample_size = i64::try_from(analysis.real_trades()).ok();
    e.confidence = analysis.p_value.map(|p| 1.0 - p);
    e
}

fn expect_status(
    experiment: &Experiment,
    action: &'static str,
    allowed: &[ExperimentStatus],
    expected: &'static str,
) -> ExperimentResult<()> {
    if allowed.contains(&experiment.status) {
        Ok(())
    } else {
        Err(ExperimentError::WrongStatus {
            experiment_id: experiment.experiment_id.clone(),
            status: experiment.status,
            action,
            expected,
        })
    }
}

fn expect_analysis(
    experiment: &Experiment,
    analysis: &Analysis,
    action: &'static str,
    needed: Option<Decision>,
) -> ExperimentResult<()> {
    if analysis.experiment_id != experiment.experiment_id {
        return Err(ExperimentError::WrongExperiment {
            experiment_id: experiment.experiment_id.clone(),
            analysis_of: analysis.experiment_id.clone(),
        });
    }
    match needed {
        Some(d) if d != analysis.decision => Err(ExperimentError::DecisionMismatch {
            experiment_id: experiment.experiment_id.clone(),
            action,
            needed: d.as_str(),
            got: analysis.decision.as_str().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The experiment's row with the numbers of an analysis.
fn with_numbers(experiment: &Experiment, analysis: &Analysis) -> Experiment {
    Experiment {
        control_trades: i64::try_from(analysis.control.real_trades).unwrap_or(i64::MAX),
        test_trades: i64::try_from(analysis.test.real_trades).unwrap_or(i64::MAX),
        p_value: analysis.p_value,
        effect_size: analysis.effect_roi,
        ..experiment.clone()
    }
}

fn write(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    events: &[LearningEvent],
) -> ExperimentResult<()> {
    repo_.update_experiment(experiment).map_err(repo(format!(
        "update experiment {}",
        experiment.experiment_id
    )))?;
    for e in events {
        repo_.append_learning_event(e).map_err(repo(format!(
            "append the {} event of experiment {}",
            e.event_type, experiment.experiment_id
        )))?;
    }
    Ok(())
}

fn shadow_words(policy: ShadowPolicy) -> String {
    match policy {
        ShadowPolicy::Ignore => "shadow outcomes are reported but not counted".into(),
        ShadowPolicy::Supplement { max_ratio } => format!(
            "shadow outcomes may add up to {max_ratio} per real trade once both arms have \
             their real minimum"
        ),
    }
}

/// Starts an experiment: checks it (active, a known parameter, numeric
/// values, no other active or complete experiment on the same parameter),
/// inserts its row, and appends `experiment_started` with the hypothesis
/// and the design (allocation and assignment seed — enough to recompute
/// every assignment —, sample sizes, test, adoption rule, shadow policy).
///
/// # Errors
/// [`ExperimentError::WrongStatus`], [`ExperimentError::UnknownParameter`],
/// [`ExperimentError::UnparsableValue`], [`ExperimentError::ParameterBusy`],
/// invalid `params`, or a repository failure (a known id is `Duplicate`).
pub fn start(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    params: &ExperimentParams,
    now: DateTime<Utc>,
) -> ExperimentResult<()> {
    params.validate()?;
    expect_status(experiment, "start", &[ExperimentStatus::Active], "active")?;
    parameter_spec(&experiment.parameter_name)?;
    arm_value(experiment, Arm::Control)?;
    arm_value(experiment, Arm::Test)?;
    let running = repo_.experiments().map_err(repo("list the experiments"))?;
    if let Some(other) = running.iter().find(|e| {
        e.parameter_name == experiment.parameter_name
            && e.experiment_id != experiment.experiment_id
            && matches!(
                e.status,
                ExperimentStatus::Active | ExperimentStatus::Complete
            )
    }) {
        return Err(ExperimentError::ParameterBusy {
            parameter: experiment.parameter_name.clone(),
            experiment_id: experiment.experiment_id.clone(),
            running: other.experiment_id.clone(),
            status: other.status,
        });
    }
    repo_.insert_experiment(experiment).map_err(repo(format!(
        "insert experiment {}",
        experiment.experiment_id
    )))?;
    let reasoning = format!(
        "experiment {} started: {}. Design: {:.0}% of new opportunities go to the test arm by \
         the seeded assignment hash (seed {}); no decision before {} closed real trades per \
         arm; sequential test (mSPRT, α = {}, τ = {}) after every look; adopt only if the \
         mean ROI gain exceeds {:.2} pp, reject if significantly worse or after {} trades in \
         the smaller arm; {}",
        experiment.experiment_id,
        experiment.hypothesis,
        100.0 * experiment.allocation,
        params.assignment_seed,
        experiment.min_samples,
        params.alpha,
        params.mixing_sd,
        100.0 * params.min_effect_roi,
        params.max_samples_per_arm,
        shadow_words(params.shadow),
    );
    let mut e = event(
        experiment,
        LearningEventType::ExperimentStarted,
        now,
        reasoning,
    );
    e.sample_size = Some(experiment.min_samples);
    repo_.append_learning_event(&e).map_err(repo(format!(
        "append the start of experiment {}",
        experiment.experiment_id
    )))
}

/// Records a look at an experiment: the row gets the analysis's counts,
/// p-value, effect (mean ROI difference, test − control) and reasoning;
/// when the number of closed real trades changed since the row was last
/// written, `experiment_analyzed` is appended with the reasoning (so the
/// history grows with the evidence, not with every 15-minute cycle).
/// Returns the updated row. Acting on the decision is [`adopt`] or
/// [`reject`].
///
/// # Errors
/// [`ExperimentError::WrongExperiment`], [`ExperimentError::WrongStatus`]
/// unless active or complete, or a repository failure.
pub fn record_analysis(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    analysis: &Analysis,
) -> ExperimentResult<Experiment> {
    expect_analysis(experiment, analysis, "recording an analysis", None)?;
    expect_status(
        experiment,
        "recording an analysis",
        &[ExperimentStatus::Active, ExperimentStatus::Complete],
        "active or complete",
    )?;
    let mut updated = with_numbers(experiment, analysis);
    updated.decision = Some(format!("{}: {}", analysis.decision, analysis.reasoning));
    let grew = (updated.control_trades, updated.test_trades)
        != (experiment.control_trades, experiment.test_trades);
    let events = if grew {
        vec![with_evidence(
            event(
                experiment,
                LearningEventType::ExperimentAnalyzed,
                analysis.at,
                analysis.reasoning.clone(),
            ),
            analysis,
        )]
    } else {
        Vec::new()
    };
    write(repo_, &updated, &events)?;
    Ok(updated)
}

/// Adopts the test value of an experiment whose analysis says
/// [`Decision::Adopt`], if the governance limits allow it now
/// ([`Governor::can_adopt`], with the history read from the repository
/// and `current`, the parameters in force).
///
/// * allowed: the row becomes `adopted` (end date today); appended:
///   `experiment_concluded` (the analysis's reasoning) and
///   `parameter_adopted` (old → new, confidence 1 − p, sample size, the
///   evidence and the governance check). Returns the change to apply.
/// * too soon: the row becomes `complete` and, the first time,
///   `experiment_concluded` says the adoption is deferred and until when.
/// * forbidden otherwise (stale control value, shift over the limit, …):
///   the row becomes `rejected` with `experiment_concluded` saying why.
///
/// # Errors
/// [`ExperimentError::WrongExperiment`], [`ExperimentError::DecisionMismatch`]
/// unless the analysis says adopt, [`ExperimentError::WrongStatus`] unless
/// active or complete, invalid `params`, or a repository failure.
pub fn adopt(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    analysis: &Analysis,
    current: &ParameterSet,
    params: &ExperimentParams,
    now: DateTime<Utc>,
) -> ExperimentResult<AdoptionOutcome> {
    params.validate()?;
    expect_analysis(experiment, analysis, "adopt", Some(Decision::Adopt))?;
    expect_status(
        experiment,
        "adopt",
        &[ExperimentStatus::Active, ExperimentStatus::Complete],
        "active or complete",
    )?;
    let history = repo_
        .learning_history(HISTORY_LOOKBACK)
        .map_err(repo("read the learning history"))?;
    let governor = Governor::new(params);
    let id = &experiment.experiment_id;
    let mut updated = with_numbers(experiment, analysis);
    match governor.can_adopt(experiment, current, &history, now) {
        Ok(()) => {
            let from = arm_value(experiment, Arm::Control)?;
            let to = arm_value(experiment, Arm::Test)?;
            let last = Governor::last_change(&history).map_or_else(
                || "no earlier parameter change".to_owned(),
                |e| {
                    format!(
                        "last parameter change {} ago",
                        match (now - e.event_date).num_days() {
                            1 => "1 day".to_owned(),
                            d => format!("{d} days"),
                        }
                    )
                },
            );
            let shift = 100.0 * (to - from).abs() / from.abs();
            updated.status = ExperimentStatus::Adopted;
            updated.end_date = Some(now.date_naive());
            updated.decision = Some(format!("adopted: {}", analysis.reasoning));
            let concluded = with_evidence(
                event(
                    experiment,
                    LearningEventType::ExperimentConcluded,
                    now,
                    format!("{} → adopted", analysis.reasoning),
                ),
                analysis,
            );
            let adopted = with_evidence(
                event(
                    experiment,
                    LearningEventType::ParameterAdopted,
                    now,
                    format!(
                        "experiment {id}: {} {} → {} adopted. Evidence: {} Governance: {last} \
                         (limit one per {} days), shift {shift:.1}% (limit {:.0}%)",
                        experiment.parameter_name,
                        experiment.control_value,
                        experiment.test_value,
                        analysis.reasoning,
                        params.min_days_between_changes,
                        100.0 * params.max_shift,
                    ),
                ),
                analysis,
            );
            write(repo_, &updated, &[concluded, adopted])?;
            Ok(AdoptionOutcome::Adopted(ParameterChange {
                experiment_id: id.clone(),
                parameter: experiment.parameter_name.clone(),
                from,
                to,
            }))
        }
        Err(refusal) if refusal.is_temporary() => {
            updated.status = ExperimentStatus::Complete;
            updated.decision = Some(format!("adoption deferred: {refusal}"));
            let events = if experiment.status == ExperimentStatus::Active {
                vec![with_evidence(
                    event(
                        experiment,
                        LearningEventType::ExperimentConcluded,
                        now,
                        format!(
                            "{} → adoption deferred by the governance limits: {refusal}; the \
                             experiment takes no new opportunities and waits",
                            analysis.reasoning
                        ),
                    ),
                    analysis,
                )]
            } else {
                Vec::new()
            };
            write(repo_, &updated, &events)?;
            Ok(AdoptionOutcome::Deferred(refusal))
        }
        Err(refusal) => {
            updated.status = ExperimentStatus::Rejected;
            updated.end_date = Some(now.date_naive());
            updated.decision = Some(format!("rejected by the governance limits: {refusal}"));
            let concluded = with_evidence(
                event(
                    experiment,
                    LearningEventType::ExperimentConcluded,
                    now,
                    format!(
                        "{} → adoption refused by the governance limits, experiment rejected: \
                         {refusal}",
                        analysis.reasoning
                    ),
                ),
                analysis,
            );
            write(repo_, &updated, &[concluded])?;
            Ok(AdoptionOutcome::Refused(refusal))
        }
    }
}

/// Rejects an experiment whose analysis says [`Decision::Reject`]: the row
/// becomes `rejected` (end date today) and `experiment_concluded` carries
/// the reasoning. The control value stays. Returns the updated row.
///
/// # Errors
/// [`ExperimentError::WrongExperiment`], [`ExperimentError::DecisionMismatch`]
/// unless the analysis says reject, [`ExperimentError::WrongStatus`] unless
/// active or complete, or a repository failure.
pub fn reject(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    analysis: &Analysis,
    now: DateTime<Utc>,
) -> ExperimentResult<Experiment> {
    expect_analysis(experiment, analysis, "reject", Some(Decision::Reject))?;
    expect_status(
        experiment,
        "reject",
        &[ExperimentStatus::Active, ExperimentStatus::Complete],
        "active or complete",
    )?;
    let mut updated = with_numbers(experiment, analysis);
    updated.status = ExperimentStatus::Rejected;
    updated.end_date = Some(now.date_naive());
    updated.decision = Some(format!("rejected: {}", analysis.reasoning));
    let concluded = with_evidence(
        event(
            experiment,
            LearningEventType::ExperimentConcluded,
            now,
            format!(
                "{} → rejected; {} stays {}",
                analysis.reasoning, experiment.parameter_name, experiment.control_value
            ),
        ),
        analysis,
    );
    write(repo_, &updated, &[concluded])?;
    Ok(updated)
}

/// Undoes an adoption whose [`RollbackCheck`] says
/// [`RollbackDecision::RollBack`]: the row becomes `rolled_back` and
/// `parameter_rolled_back` records test value → control value with the
/// check's reasoning. Returns the change to apply (back to the control
/// value). Rollbacks are never held back by the governance limits, and
/// count as a change for the next adoption's 30 days.
///
/// # Errors
/// [`ExperimentError::WrongStatus`] unless adopted,
/// [`ExperimentError::DecisionMismatch`] unless the check says roll back
/// (or is of another experiment), an unparsable value, or a repository
/// failure.
pub fn rollback(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    check: &RollbackCheck,
    now: DateTime<Utc>,
) -> ExperimentResult<ParameterChange> {
    expect_status(
        experiment,
        "rollback",
        &[ExperimentStatus::Adopted],
        "adopted",
    )?;
    expect_check(experiment, check, "rollback", RollbackDecision::RollBack)?;
    let from = arm_value(experiment, Arm::Test)?;
    let to = arm_value(experiment, Arm::Control)?;
    let mut updated = experiment.clone();
    updated.status = ExperimentStatus::RolledBack;
    updated.end_date = Some(now.date_naive());
    updated.decision = Some(format!("rolled back: {}", check.reasoning));
    let e = LearningEvent {
        event_type: LearningEventType::ParameterRolledBack,
        event_date: now,
        pattern_name: Some(experiment.name.clone()),
        confidence: check.p_value.map(|p| 1.0 - p),
        sample_size: i64::try_from(check.trades_after).ok(),
        parameter_changed: Some(experiment.parameter_name.clone()),
        old_value: Some(experiment.test_value.clone()),
        new_value: Some(experiment.control_value.clone()),
        reasoning: format!(
            "{} → {} restored from {} to {}",
            check.reasoning,
            experiment.parameter_name,
            experiment.test_value,
            experiment.control_value
        ),
    };
    write(repo_, &updated, &[e])?;
    Ok(ParameterChange {
        experiment_id: experiment.experiment_id.clone(),
        parameter: experiment.parameter_name.clone(),
        from,
        to,
    })
}

fn expect_check(
    experiment: &Experiment,
    check: &RollbackCheck,
    action: &'static str,
    needed: RollbackDecision,
) -> ExperimentResult<()> {
    if check.experiment_id != experiment.experiment_id {
        return Err(ExperimentError::WrongExperiment {
            experiment_id: experiment.experiment_id.clone(),
            analysis_of: check.experiment_id.clone(),
        });
    }
    if check.decision != needed {
        return Err(ExperimentError::DecisionMismatch {
            experiment_id: experiment.experiment_id.clone(),
            action,
            needed: match needed {
                RollbackDecision::Watching => "watching",
                RollbackDecision::Confirmed => "confirmed",
                RollbackDecision::RollBack => "roll back",
            },
            got: format!("{:?}", check.decision),
        });
    }
    Ok(())
}

/// Ends the rollback watch of an adopted experiment whose check says
/// [`RollbackDecision::Confirmed`]: the row's decision starts with
/// [`CONFIRMED_PREFIX`] (see [`is_confirmed`]) and `experiment_analyzed`
/// records the check. Returns the updated row.
///
/// # Errors
/// [`ExperimentError::WrongStatus`] unless adopted,
/// [`ExperimentError::DecisionMismatch`] unless the check confirms, or a
/// repository failure.
pub fn confirm_adoption(
    repo_: &(impl LearningRepository + ?Sized),
    experiment: &Experiment,
    check: &RollbackCheck,
    now: DateTime<Utc>,
) -> ExperimentResult<Experiment> {
    expect_status(
        experiment,
        "confirming an adoption",
        &[ExperimentStatus::Adopted],
        "adopted",
    )?;
    expect_check(
        experiment,
        check,
        "confirming an adoption",
        RollbackDecision::Confirmed,
    )?;
    let mut updated = experiment.clone();
    updated.decision = Some(format!("{CONFIRMED_PREFIX}: {}", check.reasoning));
    let mut e = event(
        experiment,
        LearningEventType::ExperimentAnalyzed,
        now,
        check.reasoning.clone(),
    );
    e.sample_size = i64::try_from(check.trades_after).ok();
    e.confidence = check.p_value.map(|p| 1.0 - p);
    write(repo_, &updated, &[e])?;
    Ok(updated)
}

/// Whether an adopted experiment's rollback watch has ended
/// ([`confirm_adoption`]).
#[must_use]
pub fn is_confirmed(experiment: &Experiment) -> bool {
    experiment.status == ExperimentStatus::Adopted
        && experiment
            .decision
            .as_deref()
            .is_some_and(|d| d.starts_with(CONFIRMED_PREFIX))
}

/// The history of one experiment, newest first: the events whose
/// reasoning names it (every event written here starts with
/// `experiment <id>`).
///
/// # Errors
/// A repository failure.
pub fn history_of(
    repo_: &(impl LearningRepository + ?Sized),
    experiment_id: &str,
) -> ExperimentResult<Vec<LearningEvent>> {
    let needle = format!("experiment {experiment_id}");
    // the id must end where the needle ends (EXP-1 is not EXP-10)
    let names_it = |text: &str| {
        text.match_indices(&needle).any(|(i, _)| {
            text[i + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        })
    };
    Ok(repo_
        .learning_history(HISTORY_LOOKBACK)
        .map_err(repo("read the learning history"))?
        .into_iter()
        .filter(|e| names_it(&e.reasoning))
        .collect())
}
