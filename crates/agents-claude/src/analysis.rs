//! The analysis: the prompt (instructions in the system prompt, one JSON
//! document as the user message), the answer's schema, the grounding checks
//! and the report — the model's, or the statistical one it falls back to.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use core_domain::{Experiment, ExperimentStatus, LearningEvent, LearningEventType, Trade};
use learning::experiments::{Governor, PARAMETERS, ParameterSet, VALUE_TOLERANCE, parameter_spec};
use learning::patterns::PatternParams;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::Usage;
use crate::stats::{self, Statistics};

/// A cited value must be within this relative distance of the computed one.
pub const CITATION_TOLERANCE: f64 = 0.01;

/// Closed trades needed before a recommendation can be accepted (the
/// specification's minimum for any analysis).
pub const MIN_TRADES_FOR_RECOMMENDATION: usize = 30;

/// What the analysis reads.
#[derive(Debug, Clone)]
pub struct AnalysisInput {
    /// The time of the analysis (the engine's clock in the daemon).
    pub now: DateTime<Utc>,
    /// Only trades that closed in the last `days` (all when `None`).
    pub window_days: Option<i64>,
    /// The trades (open ones are ignored).
    pub trades: Vec<Trade>,
    /// The strategy parameters in force.
    pub parameters: ParameterSet,
    /// The learning constraints (largest shift, days between changes).
    pub governor: Governor,
    /// The learning history (for the last parameter change).
    pub history: Vec<LearningEvent>,
    /// Every experiment (the running ones are sent).
    pub experiments: Vec<Experiment>,
    /// The pattern detector's settings (slices, correction, α).
    pub pattern_params: PatternParams,
}

impl AnalysisInput {
    /// The closed trades of the window.
    #[must_use]
    pub fn window_trades(&self) -> Vec<Trade> {
        let from = self.window_days.map(|d| self.now - Duration::days(d));
        self.trades
            .iter()
            .filter(|t| match (from, t.exit_time) {
                (Some(from), Some(exit)) => exit >= from && exit <= self.now,
                (None, Some(exit)) => exit <= self.now,
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// The statistics of the window.
    #[must_use]
    pub fn statistics(&self) -> Statistics {
        stats::compute(&self.window_trades(), &self.pattern_params)
    }

    fn running_experiments(&self) -> Vec<&Experiment> {
        self.experiments
            .iter()
            .filter(|e| {
                matches!(
                    e.status,
                    ExperimentStatus::Active | ExperimentStatus::Complete
                )
            })
            .collect()
    }
}

/// The system prompt: the instructions (fixed, so it can be cached).
pub const SYSTEM_PROMPT: &str = "You are the performance analyst of an automated trading system \
that sells cash-secured-style naked puts on US stocks. You receive one JSON document: \
`statistics` (stat key -> number, computed from the closed trades; p-values `p_roi`, \
`p_win_rate` and `p_adj` are already adjusted for the number of slices compared), \
`parameters` (the strategy parameters in force), `learning_constraints` (the largest relative \
shift one change may make, the days between changes, each parameter's range) and \
`running_experiments`. Write a short summary, insights and at most three recommendations. \
Rules: cite every number you use as evidence {stat, value} with the stat key exactly as given \
and its value as given; never invent a stat. Recommend only changes of the listed parameters, \
from their current value, within the constraints, and only where an adjusted p-value at or \
below alpha in a related slice supports the direction. Prefer no recommendation to a weak one. \
Your recommendations are proposals: an A/B experiment decides, you change nothing. Answer \
with the JSON object the schema describes and nothing else.";

/// The JSON schema of the answer (`output_config.format`).
#[must_use]
pub fn answer_schema() -> Value {
    let evidence = json!({
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["stat", "value"],
            "properties": {
                "stat": {"type": "string"},
                "value": {"type": "number"}
            }
        }
    });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary", "insights", "recommendations"],
        "properties": {
            "summary": {"type": "string"},
            "insights": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["text", "evidence"],
                    "properties": {
                        "text": {"type": "string"},
                        "evidence": evidence
                    }
                }
            },
            "recommendations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["parameter", "from", "to", "rationale", "evidence"],
                    "properties": {
                        "parameter": {"type": "string"},
                        "from": {"type": "number"},
                        "to": {"type": "number"},
                        "rationale": {"type": "string"},
                        "evidence": evidence
                    }
                }
            }
        }
    })
}

/// The user message: exactly one JSON document. Only statistics and
/// parameters: no account number, no key, no trade ids, no symbols beyond
/// the sector names of the slices.
#[must_use]
pub fn user_document(input: &AnalysisInput, statistics: &Statistics) -> Value {
    let ranges: BTreeMap<&str, Value> = PARAMETERS
        .iter()
        .map(|p| {
            (
                p.name,
                json!({"min": p.min, "max": p.max, "inclusive": p.inclusive, "integer": p.integer}),
            )
        })
        .collect();
    let parameters: BTreeMap<&str, f64> = input.parameters.iter().collect();
    json!({
        "statistics": statistics.values,
        "parameters": parameters,
        "learning_constraints": {
            "max_shift": input.governor.max_shift,
            "min_days_between_changes": input.governor.min_days_between_changes,
            "next_change_allowed": input.governor.next_change_allowed(&input.history),
            "alpha": statistics.alpha,
            "min_trades": MIN_TRADES_FOR_RECOMMENDATION,
            "ranges": ranges,
        },
        "running_experiments": input.running_experiments().iter().map(|e| json!({
            "parameter": e.parameter_name,
            "control": e.control_value,
            "test": e.test_value,
            "start_date": e.start_date,
            "control_trades": e.control_trades,
            "test_trades": e.test_trades,
        })).collect::<Vec<_>>(),
        "window": {
            "days": input.window_days,
            "as_of": input.now,
        },
    })
}

/// A cited number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub stat: String,
    pub value: f64,
}

/// The model's answer (the schema, read strictly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub summary: String,
    pub insights: Vec<AnswerInsight>,
    pub recommendations: Vec<AnswerRecommendation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerInsight {
    pub text: String,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRecommendation {
    pub parameter: String,
    pub from: f64,
    pub to: f64,
    pub rationale: String,
    pub evidence: Vec<Evidence>,
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The model's answer, grounded.
    Claude,
    /// The local statistics alone (the fallback).
    Statistics,
}

impl Source {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Claude => "claude",
            Source::Statistics => "statistics",
        }
    }
}

/// Grounded or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    Rejected,
}

/// An insight with the result of its citation check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    pub text: String,
    pub evidence: Vec<Evidence>,
    pub status: Status,
    pub reason: String,
}

/// A recommendation with its grounding verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub parameter: String,
    pub from: f64,
    pub to: f64,
    pub rationale: String,
    pub evidence: Vec<Evidence>,
    pub status: Status,
    pub reason: String,
}

/// Tokens and estimated cost of the calls behind a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCost {
    pub usage: Usage,
    /// Estimated, in US dollars.
    pub cost_usd: f64,
    /// HTTP attempts (retries included).
    pub attempts: u32,
}

/// The analyst's report (also what `--json` prints and the database keeps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub source: Source,
    pub created_at: DateTime<Utc>,
    pub window_days: Option<i64>,
    pub closed_trades: usize,
    pub summary: String,
    pub insights: Vec<Insight>,
    pub recommendations: Vec<Recommendation>,
    /// Why the statistical report was given instead of the model's.
    pub fallback_reason: Option<String>,
    pub model: Option<String>,
    pub cost: Option<CallCost>,
    /// The statistics sent (or that would have been sent).
    pub statistics: BTreeMap<String, f64>,
}

impl Report {
    /// Recommendations accepted by the grounding checks.
    pub fn accepted(&self) -> impl Iterator<Item = &Recommendation> {
        self.recommendations
            .iter()
            .filter(|r| r.status == Status::Accepted)
    }

    /// The learning events that record the accepted recommendations as
    /// proposals for experiments, as `trader-cli optimize` records its own
    /// (`proposal_received`: to be tested, not applied).
    #[must_use]
    pub fn proposal_events(&self) -> Vec<LearningEvent> {
        self.accepted()
            .map(|r| {
                let integer = parameter_spec(&r.parameter).is_ok_and(|s| s.integer);
                let fmt = |v: f64| learning::experiments::format_value(v, integer);
                LearningEvent {
                    event_type: LearningEventType::ProposalReceived,
                    event_date: self.created_at,
                    pattern_name: None,
                    confidence: None,
                    sample_size: Some(self.closed_trades as i64),
                    parameter_changed: Some(r.parameter.clone()),
                    old_value: Some(json!({ &r.parameter: r.from }).to_string()),
                    new_value: Some(json!({ &r.parameter: r.to }).to_string()),
                    reasoning: format!(
                        "analyst proposal ({} report; {} {} -> {}): {}; evidence {}; to be tested by an experiment, not applied",
                        self.source.as_str(),
                        r.parameter,
                        fmt(r.from),
                        fmt(r.to),
                        r.rationale,
                        r.evidence
                            .iter()
                            .map(|e| format!("{} = {}", e.stat, e.value))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            })
            .collect()
    }
}

/// Why a cited value is wrong, if it is.
fn check_citation(e: &Evidence, statistics: &Statistics) -> Result<(), String> {
    let Some(actual) = statistics.get(&e.stat) else {
        return Err(format!(
            "cites {:?}, which is not a computed statistic",
            e.stat
        ));
    };
    let ok = if actual == 0.0 {
        e.value.abs() <= 1e-9
    } else {
        (e.value - actual).abs() <= CITATION_TOLERANCE * actual.abs()
    };
    if ok && e.value.is_finite() {
        Ok(())
    } else {
        Err(format!(
            "cites {} = {} but the computed value is {actual} (more than {}% apart)",
            e.stat,
            e.value,
            CITATION_TOLERANCE * 100.0
        ))
    }
}

fn check_citations(evidence: &[Evidence], statistics: &Statistics) -> Result<(), String> {
    if evidence.is_empty() {
        return Err("cites no statistic".into());
    }
    let problems: Vec<String> = evidence
        .iter()
        .filter_map(|e| check_citation(e, statistics).err())
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The slice dimensions and the winners-vs-losers feature that bear on a
/// parameter.
fn related(parameter: &str) -> (&'static [&'static str], Option<&'static str>) {
    match parameter {
        "otm_min" | "otm_max" => (&["otm"], Some("otm")),
        "dte_min" | "dte_max" => (&["dte"], Some("dte")),
        "premium_min" | "premium_max" => (&[], Some("premium")),
        _ => (&[], None),
    }
}

/// Whether the cited local statistics support moving `parameter` from
/// `from` to `to`: a cited slice of a related dimension that is
/// significant after the correction, with the move toward an
/// outperforming bucket or away from an underperforming one; or a cited
/// significant winners-vs-losers difference of the related feature, with
/// the move in its direction.
fn check_support(
    parameter: &str,
    from: f64,
    to: f64,
    evidence: &[Evidence],
    statistics: &Statistics,
) -> Result<(), String> {
    if statistics.closed_trades < MIN_TRADES_FOR_RECOMMENDATION {
        return Err(format!(
            "{} closed trades; a recommendation needs at least {MIN_TRADES_FOR_RECOMMENDATION}",
            statistics.closed_trades
        ));
    }
    let (dimensions, feature) = related(parameter);
    if dimensions.is_empty() && feature.is_none() {
        return Err(format!(
            "no local statistic tests {parameter}; it can only change through an experiment the learning engine proposes"
        ));
    }
    let mut looked = Vec::new();
    for e in evidence {
        if let Some(slice) = statistics.slice_of(&e.stat)
            && dimensions.contains(&slice.dimension.as_str())
        {
            looked.push(slice.key.clone());
            let (Some((lo, hi)), Some(diff)) = (slice.range, slice.roi_diff) else {
                continue;
            };
            if !slice.significant {
                continue;
            }
            let mid = (lo + hi) / 2.0;
            let toward = (to - mid).abs() < (from - mid).abs();
            if (diff > 0.0 && toward) || (diff < 0.0 && !toward) {
                return Ok(());
            }
        }
        if let Some(f) = feature
            && e.stat.starts_with(&format!("winners_vs_losers.{f}."))
        {
            looked.push(e.stat.clone());
            let p = statistics.get(&format!("winners_vs_losers.{f}.p_adj"));
            let w = statistics.get(&format!("winners.mean_{f}"));
            let l = statistics.get(&format!("losers.mean_{f}"));
            if let (Some(p), Some(w), Some(l)) = (p, w, l)
                && p <= statistics.alpha
                && ((w > l && to > from) || (w < l && to < from))
            {
                return Ok(());
            }
        }
    }
    if looked.is_empty() {
        Err(format!(
            "cites no statistic of a slice that bears on {parameter} ({})",
            dimensions
                .iter()
                .map(|d| format!("{d}.*"))
                .chain(feature.map(|f| format!("winners_vs_losers.{f}.*")))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Err(format!(
            "the cited statistics ({}) do not support the move: no slice significant at alpha {} after the correction points that way",
            looked.join(", "),
            statistics.alpha
        ))
    }
}

/// The grounding of one recommendation; `Err` is the reason to reject it.
fn ground(
    r: &AnswerRecommendation,
    input: &AnalysisInput,
    statistics: &Statistics,
    already_accepted: Option<&str>,
) -> Result<String, String> {
    check_citations(&r.evidence, statistics)?;
    let spec = parameter_spec(&r.parameter).map_err(|_| {
        format!(
            "{:?} is not a strategy parameter ({})",
            r.parameter,
            PARAMETERS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let current = input
        .parameters
        .get(&r.parameter)
        .ok_or_else(|| format!("{} has no value in force", r.parameter))?;
    if (r.from - current).abs() > VALUE_TOLERANCE.max(1e-6 * current.abs()) {
        return Err(format!(
            "recommends {} from {} but the value in force is {current}",
            r.parameter, r.from
        ));
    }
    if !spec.accepts(r.to) {
        return Err(format!("{} is out of range: {}", r.to, spec.requirement()));
    }
    if current == 0.0 {
        return Err(format!(
            "{} is 0: a relative shift is undefined",
            r.parameter
        ));
    }
    let shift = (r.to - current).abs() / current.abs();
    if shift > input.governor.max_shift + VALUE_TOLERANCE {
        return Err(format!(
            "{} {current} -> {} is a {:.1}% shift; one change may move a parameter at most {:.1}%",
            r.parameter,
            r.to,
            shift * 100.0,
            input.governor.max_shift * 100.0
        ));
    }
    if (r.to - current).abs() <= VALUE_TOLERANCE {
        return Err("recommends no change".into());
    }
    input
        .parameters
        .clone()
        .with(r.parameter.clone(), r.to)
        .check()
        .map_err(|e| format!("the parameters would be inconsistent: {e}"))?;
    if let Some(next) = input.governor.next_change_allowed(&input.history)
        && input.now < next
    {
        return Err(format!(
            "at most one parameter change per {} days: the next is allowed from {next}",
            input.governor.min_days_between_changes
        ));
    }
    if let Some(e) = input
        .running_experiments()
        .into_iter()
        .find(|e| e.parameter_name == r.parameter)
    {
        return Err(format!(
            "experiment {} is already testing {} ({} against {})",
            e.experiment_id, r.parameter, e.test_value, e.control_value
        ));
    }
    if let Some(p) = already_accepted {
        return Err(format!(
            "one change at a time: this report already proposes a change of {p}"
        ));
    }
    check_support(&r.parameter, current, r.to, &r.evidence, statistics)?;
    Ok(format!(
        "grounded: citations match, {:.1}% shift within {:.0}%, supported by a significant slice; proposed for an experiment",
        shift * 100.0,
        input.governor.max_shift * 100.0
    ))
}

/// The model's answer checked against the statistics and the constraints.
#[must_use]
pub fn grounded_report(
    answer: Answer,
    input: &AnalysisInput,
    statistics: &Statistics,
    model: Option<String>,
    cost: Option<CallCost>,
) -> Report {
    let insights = answer
        .insights
        .into_iter()
        .map(|i| {
            let (status, reason) = match check_citations(&i.evidence, statistics) {
                Ok(()) => (
                    Status::Accepted,
                    "citations match the statistics".to_owned(),
                ),
                Err(e) => (Status::Rejected, e),
            };
            Insight {
                text: i.text,
                evidence: i.evidence,
                status,
                reason,
            }
        })
        .collect();
    let mut accepted: Option<String> = None;
    let mut recommendations = Vec::new();
    for r in answer.recommendations {
        let verdict = ground(&r, input, statistics, accepted.as_deref());
        let (status, reason) = match verdict {
            Ok(why) => {
                accepted = Some(r.parameter.clone());
                (Status::Accepted, why)
            }
            Err(why) => (Status::Rejected, why),
        };
        recommendations.push(Recommendation {
            parameter: r.parameter,
            from: r.from,
            to: r.to,
            rationale: r.rationale,
            evidence: r.evidence,
            status,
            reason,
        });
    }
    Report {
        source: Source::Claude,
        created_at: input.now,
        window_days: input.window_days,
        closed_trades: statistics.closed_trades,
        summary: answer.summary,
        insights,
        recommendations,
        fallback_reason: None,
        model,
        cost,
        statistics: statistics.values.clone(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The statistical report: the same structure from the local statistics
/// alone. Insights are the overall figures and every slice significant
/// after the correction; there are no recommendations (the learning engine
/// turns significant patterns into experiments itself).
#[must_use]
pub fn statistical_report(input: &AnalysisInput, statistics: &Statistics, reason: &str) -> Report {
    let v = |k: &str| statistics.get(k);
    let ev = |k: &str| {
        v(k).map(|value| Evidence {
            stat: k.into(),
            value,
        })
    };
    let summary = match (v("overall.win_rate"), v("overall.mean_roi")) {
        (Some(w), Some(r)) => format!(
            "{} closed trades: win rate {}, mean ROI {}, total P&L ${:.2}; {} of {} slices significant after the correction (alpha {}).",
            statistics.closed_trades,
            pct(w),
            pct(r),
            v("overall.total_pnl").unwrap_or(0.0),
            statistics.slices.iter().filter(|s| s.significant).count(),
            statistics.slices.len(),
            statistics.alpha
        ),
        _ => "No closed trades in the window: nothing to analyse yet.".to_owned(),
    };
    let mut insights = Vec::new();
    if statistics.closed_trades > 0 {
        insights.push(Insight {
            text: format!(
                "Overall: {} trades, win rate {}, mean ROI {}.",
                statistics.closed_trades,
                pct(v("overall.win_rate").unwrap_or(0.0)),
                pct(v("overall.mean_roi").unwrap_or(0.0))
            ),
            evidence: ["overall.trades", "overall.win_rate", "overall.mean_roi"]
                .iter()
                .filter_map(|k| ev(k))
                .collect(),
            status: Status::Accepted,
            reason: "computed locally".into(),
        });
    }
    if statistics.closed_trades < MIN_TRADES_FOR_RECOMMENDATION {
        insights.push(Insight {
            text: format!(
                "Fewer than {MIN_TRADES_FOR_RECOMMENDATION} closed trades: slices are descriptive only."
            ),
            evidence: ev("overall.trades").into_iter().collect(),
            status: Status::Accepted,
            reason: "computed locally".into(),
        });
    }
    for s in statistics.slices.iter().filter(|s| s.significant) {
        let dir = if s.roi_diff.unwrap_or(0.0) >= 0.0 {
            "outperforms"
        } else {
            "underperforms"
        };
        insights.push(Insight {
            text: format!(
                "{} {dir} the rest of its dimension: mean ROI {} over {} trades (win rate {}), adjusted p {}.",
                s.key,
                pct(s.mean_roi),
                s.trades,
                pct(s.win_rate),
                s.p_adjusted.map_or("n/a".into(), |p| format!("{p:.4}"))
            ),
            evidence: ["trades", "mean_roi", "roi_diff", "p_roi", "p_win_rate"]
                .iter()
                .filter_map(|f| ev(&format!("{}.{f}", s.key)))
                .collect(),
            status: Status::Accepted,
            reason: "computed locally".into(),
        });
    }
    Report {
        source: Source::Statistics,
        created_at: input.now,
        window_days: input.window_days,
        closed_trades: statistics.closed_trades,
        summary,
        insights,
        recommendations: Vec::new(),
        fallback_reason: Some(reason.to_owned()),
        model: None,
        cost: None,
        statistics: statistics.values.clone(),
    }
}
