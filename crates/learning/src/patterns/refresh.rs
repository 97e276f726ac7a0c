//! The lifecycle of stored patterns: insert what is new, keep what is
//! re-detected, retire what is not, and record each change as a learning
//! event.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::America::New_York;
use core_domain::{
    LearningEvent, LearningEventType, LearningRepository, Pattern, PatternStatus, Trade,
};
use serde::{Deserialize, Serialize};

use super::PatternParams;
use super::buckets::FeatureMap;
use super::detect::{DetectionOutcome, DetectionReport, Verdict, detect_with_shadow};
use crate::error::LearningError;

/// A pattern row with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPattern {
    /// The row's id in `patterns`.
    pub id: i64,
    /// The pattern: as inserted for a new one; as detected in this run for
    /// a kept one (its stored row keeps the numbers of its first
    /// detection).
    pub pattern: Pattern,
}

/// A pattern retired by a refresh, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetiredPattern {
    /// The row's id in `patterns`.
    pub id: i64,
    /// The pattern as stored.
    pub pattern: Pattern,
    /// Why it was retired (also the learning event's reasoning).
    pub reason: String,
}

/// What a [`refresh`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshReport {
    /// The detector's report.
    pub detection: DetectionReport,
    /// Patterns inserted in this run.
    pub inserted: Vec<StoredPattern>,
    /// Active patterns re-detected in this run (left as they are).
    pub kept: Vec<StoredPattern>,
    /// Active patterns set to retired in this run.
    pub retired: Vec<RetiredPattern>,
    /// Learning events appended (one per insertion and retirement).
    pub events: usize,
}

/// Runs [`detect`](super::detect) on real trades and reconciles the
/// `patterns` table (see [`apply_detection`]).
///
/// # Errors
/// Invalid `params`, or the repository refusing a read or write
/// ([`LearningError::Repository`]). Changes made before a failure stay;
/// running again completes the reconciliation without duplicating a row.
pub fn refresh<R: LearningRepository + ?Sized>(
    repo: &R,
    trades: &[Trade],
    features: &FeatureMap,
    params: &PatternParams,
    time: DateTime<Utc>,
) -> Result<RefreshReport, LearningError> {
    refresh_with_shadow(repo, trades, &[], features, params, time)
}

/// [`refresh`] with shadow trades (reported apart, or pooled when
/// [`PatternParams::pool_shadow`] is set).
///
/// # Errors
/// As [`refresh`].
pub fn refresh_with_shadow<R: LearningRepository + ?Sized>(
    repo: &R,
    trades: &[Trade],
    shadow_trades: &[Trade],
    features: &FeatureMap,
    params: &PatternParams,
    time: DateTime<Utc>,
) -> Result<RefreshReport, LearningError> {
    let detection = detect_with_shadow(trades, shadow_trades, features, params)?;
    apply_detection(repo, detection, time)
}

/// Reconciles the `patterns` table with a detector's report, at `time`:
///
/// * a detected pattern with no active row of the same `pattern_type` and
///   `pattern_name` is inserted (status active, `date_detected` the New
///   York date of `time`) and a `pattern_detected` event records its
///   evidence;
/// * a detected pattern with such a row is kept: nothing is written;
/// * an active row not detected in the report is set to retired and a
///   `pattern_retired` event says why (what the run found for its
///   bucket). A second active row of the same key (from an earlier bug or
///   a manual insert) is retired as a duplicate.
///
/// A report of too few trades changes nothing: there is no evidence
/// either way.
///
/// # Errors
/// [`LearningError::Repository`] when a read or write fails.
pub fn apply_detection<R: LearningRepository + ?Sized>(
    repo: &R,
    detection: DetectionReport,
    time: DateTime<Utc>,
) -> Result<RefreshReport, LearningError> {
    let mut out = RefreshReport {
        detection,
        inserted: Vec::new(),
        kept: Vec::new(),
        retired: Vec::new(),
        events: 0,
    };
    if matches!(out.detection.outcome, DetectionOutcome::TooFewTrades { .. }) {
        return Ok(out);
    }
    let detection = &out.detection;
    let active = repo
        .patterns(Some(PatternStatus::Active))
        .map_err(LearningError::repo("list the active patterns"))?;
    let key = |p: &Pattern| (p.pattern_type.clone(), p.pattern_name.clone());
    let detected: HashSet<(String, String)> = detection.patterns.iter().map(key).collect();
    let run = format!(
        "the pattern run of {} over {} closed trades",
        time.format("%Y-%m-%d %H:%M UTC"),
        detection.closed_trades
    );

    let mut first_of_key: Vec<((String, String), i64)> = Vec::new();
    let mut to_retire: Vec<(i64, Pattern, String)> = Vec::new();
    for (id, p) in &active {
        let k = key(p);
        if let Some((_, first)) = first_of_key.iter().find(|(fk, _)| *fk == k) {
            to_retire.push((
                *id,
                p.clone(),
                format!("duplicate of the active pattern {first} with the same type and name"),
            ));
        } else if detected.contains(&k) {
            first_of_key.push((k, *id));
        } else {
            first_of_key.push((k, *id));
            to_retire.push((*id, p.clone(), retirement_reason(detection, p, &run)));
        }
    }

    let date = time.with_timezone(&New_York).date_naive();
    let mut inserted = Vec::new();
    let mut kept = Vec::new();
    let mut events = 0;
    for p in &detection.patterns {
        let k = key(p);
        if let Some((_, id)) = first_of_key.iter().find(|(fk, _)| *fk == k) {
            kept.push(StoredPattern {
                id: *id,
                pattern: p.clone(),
            });
            continue;
        }
        let mut row = p.clone();
        row.date_detected = date;
        row.status = PatternStatus::Active;
        let id = repo
            .insert_pattern(&row)
            .map_err(LearningError::repo(format!(
                "insert pattern {}",
                row.pattern_name
            )))?;
        let evidence = detection
            .comparison_for(&row.pattern_type, &row.pattern_name)
            .map_or_else(String::new, |c| c.explanation(detection));
        let event = LearningEvent {
            event_type: LearningEventType::PatternDetected,
            event_date: time,
            pattern_name: Some(row.pattern_name.clone()),
            confidence: Some(row.confidence),
            sample_size: Some(row.sample_size),
            parameter_changed: None,
            old_value: None,
            new_value: None,
            reasoning: format!(
                "detected by {run} (pattern {id}, type {}): {evidence}",
                row.pattern_type
            ),
        };
        repo.append_learning_event(&event)
            .map_err(LearningError::repo(format!(
                "record the detection of pattern {}",
                row.pattern_name
            )))?;
        events += 1;
        inserted.push(StoredPattern { id, pattern: row });
    }

    let mut retired = Vec::new();
    for (id, p, reason) in to_retire {
        repo.set_pattern_status(id, PatternStatus::Retired)
            .map_err(LearningError::repo(format!(
                "retire pattern {id} ({})",
                p.pattern_name
            )))?;
        let sample_size = detection
            .comparison_for(&p.pattern_type, &p.pattern_name)
            .map(|c| i64::try_from(c.bucket_stats.n).unwrap_or(i64::MAX));
        let event = LearningEvent {
            event_type: LearningEventType::PatternRetired,
            event_date: time,
            pattern_name: Some(p.pattern_name.clone()),
            confidence: None,
            sample_size,
            parameter_changed: None,
            old_value: None,
            new_value: None,
            reasoning: format!("pattern {id} (type {}) retired: {reason}", p.pattern_type),
        };
        repo.append_learning_event(&event)
            .map_err(LearningError::repo(format!(
                "record the retirement of pattern {id} ({})",
                p.pattern_name
            )))?;
        events += 1;
        retired.push(RetiredPattern {
            id,
            pattern: p,
            reason,
        });
    }
    out.inserted = inserted;
    out.kept = kept;
    out.retired = retired;
    out.events = events;
    Ok(out)
}

/// Why an active pattern was not re-detected: what the run found for its
/// bucket.
fn retirement_reason(detection: &DetectionReport, p: &Pattern, run: &str) -> String {
    match detection.comparison_for(&p.pattern_type, &p.pattern_name) {
        None => format!(
            "not re-detected by {run}: no trade of the run falls in its bucket \
             (or its dimension is no longer compared)"
        ),
        Some(c) => match &c.verdict {
            Verdict::Detected { pattern_name } => format!(
                "not re-detected by {run}: the effect reversed, the run detects \"{pattern_name}\""
            ),
            verdict => format!("not re-detected by {run}: {verdict}"),
        },
    }
}
