//! From a pattern (or another source's proposal) to an [`Experiment`].

use chrono::NaiveDate;
use core_domain::{Experiment, ExperimentStatus, Pattern, PatternStatus};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::parameters::{ParameterSet, VALUE_TOLERANCE, format_value, parameter_spec};
use super::params::ExperimentParams;

/// A parameter change someone wants tested: from a pattern
/// ([`propose_from_pattern`]), the optimizer or the analyst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The experiment's name (for a pattern: the pattern's name).
    pub name: String,
    /// The parameter to change (one of [`super::PARAMETERS`]).
    pub parameter: String,
    /// The value the source would like; clamped to the shift limit
    /// (±∞: as far as the limit allows).
    pub target: f64,
    /// Why, with the evidence (goes into the hypothesis).
    pub rationale: String,
}

/// Why a pattern or proposal gives no experiment.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NoProposal {
    /// Retired patterns are not tested.
    #[error("pattern {pattern:?} is retired: only active patterns are turned into experiments")]
    Retired {
        /// The pattern's name.
        pattern: String,
    },
    /// The pattern's dimension is not governed by any parameter.
    #[error(
        "pattern {pattern:?} is about `{pattern_type}`, which no strategy parameter controls \
         (parameters map from otm_bucket, premium_bucket and dte_bucket patterns); \
         a filter on it needs a change to the strategy, not an experiment"
    )]
    Unmapped {
        /// The pattern's name.
        pattern: String,
        /// Its dimension.
        pattern_type: String,
    },
    /// The pattern's context has no bucket bounds.
    #[error(
        "pattern {pattern:?} has no bucket bounds in its context: expected numbers `min` \
         and/or `max` (or `lower`/`upper`, at the top level or under `bucket`)"
    )]
    NoBucket {
        /// The pattern's name.
        pattern: String,
    },
    /// Whether the bucket does better or worse is not stated.
    #[error(
        "pattern {pattern:?} does not say whether its bucket does better or worse: put \
         `direction` (\"outperforms\" / \"underperforms\"), a signed `difference`, or \
         `baseline_roi` in its context"
    )]
    NoDirection {
        /// The pattern's name.
        pattern: String,
    },
    /// No single bound of the range can move toward the pattern.
    #[error("pattern {pattern:?} gives nothing to test: {why}")]
    NothingToChange {
        /// The pattern's (or proposal's) name.
        pattern: String,
        /// Why, with the numbers.
        why: String,
    },
    /// The parameter is not one experiments may change.
    #[error("`{parameter}` is not a parameter experiments may change")]
    UnknownParameter {
        /// The parameter.
        parameter: String,
    },
    /// The current parameters lack the value to change.
    #[error("the current parameters have no `{parameter}`: pass the strategy's full set")]
    MissingParameter {
        /// The parameter.
        parameter: String,
    },
    /// A relative shift of zero is undefined.
    #[error(
        "`{parameter}` is 0, so a relative shift limit allows no change: change it by hand \
         through the configuration"
    )]
    ZeroValue {
        /// The parameter.
        parameter: String,
    },
    /// The shift limit allows no step of a whole-number parameter.
    #[error(
        "`{parameter}` = {current} days: a {max_shift_pct}% shift is less than one day, \
         so no change is possible within the governance limit"
    )]
    StepTooSmall {
        /// The parameter.
        parameter: String,
        /// Its value.
        current: f64,
        /// The shift limit in percent.
        max_shift_pct: f64,
    },
    /// The test value would give parameters the strategy refuses.
    #[error("testing {parameter} = {value} is impossible: {why}")]
    Invalid {
        /// The parameter.
        parameter: String,
        /// The proposed test value.
        value: String,
        /// The problem.
        why: String,
    },
}

/// Which bound of a range a pattern moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Min,
    Max,
}

/// The strategy range a pattern dimension falls in: (min parameter, max
/// parameter, whole numbers?).
fn dimension(pattern_type: &str) -> Option<(&'static str, &'static str, bool)> {
    match pattern_type.to_ascii_lowercase().as_str() {
        "otm_bucket" | "otm" | "otm_pct" => Some(("otm_min", "otm_max", false)),
        "premium_bucket" | "premium" => Some(("premium_min", "premium_max", false)),
        "dte_bucket" | "dte" => Some(("dte_min", "dte_max", true)),
        _ => None,
    }
}

fn number(context: &serde_json::Value, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|k| context.get(*k).and_then(serde_json::Value::as_f64))
}

/// The bucket's bounds from the context: `min`/`max` or `lower`/`upper`
/// (either may be absent for an open-ended bucket), at the top level or
/// under `bucket` (an object, or a two-element array).
fn bucket_bounds(context: &serde_json::Value) -> Option<(Option<f64>, Option<f64>)> {
    let read = |c: &serde_json::Value| {
        let lo = number(c, &["min", "lower", "bucket_min"]);
        let hi = number(c, &["max", "upper", "bucket_max"]);
        (lo.is_some() || hi.is_some()).then_some((lo, hi))
    };
    if let Some(inner) = context.get("bucket") {
        if let Some([lo, hi]) = inner.as_array().map(Vec::as_slice) {
            let (lo, hi) = (lo.as_f64(), hi.as_f64());
            if lo.is_some() || hi.is_some() {
                return Some((lo, hi));
            }
        }
        if let Some(bounds) = read(inner) {
            return Some(bounds);
        }
    }
    read(context)
}

/// +1 when the bucket does better than the rest, −1 when worse.
fn direction(pattern: &Pattern) -> Option<f64> {
    let c = &pattern.context;
    if let Some(word) = c.get("direction").and_then(serde_json::Value::as_str) {
        let word = word.to_ascii_lowercase();
        if word.starts_with("out") || word == "better" || word == "higher" {
            return Some(1.0);
        }
        if word.starts_with("under") || word == "worse" || word == "lower" {
            return Some(-1.0);
        }
    }
    if let Some(d) = number(c, &["difference", "effect", "roi_difference"])
        && d != 0.0
    {
        return Some(d.signum());
    }
    if let Some(base) = number(c, &["baseline_roi", "comparison_roi", "rest_avg_roi"])
        && pattern.avg_roi != base
    {
        return Some((pattern.avg_roi - base).signum());
    }
    let name = pattern.pattern_name.to_ascii_lowercase();
    if name.contains("underperform") {
        Some(-1.0)
    } else if name.contains("outperform") {
        Some(1.0)
    } else {
        None
    }
}

/// The bound to move and its target, working on half-open intervals
/// `[lo, hi)` (whole-number ranges `a..=b` enter as `[a, b + 1)`).
fn move_toward(
    range: (f64, f64),
    bucket: (f64, f64),
    better: bool,
) -> Result<(Bound, f64), String> {
    let ((lo, hi), (b_lo, b_hi)) = (range, bucket);
    let covers = b_lo <= lo && b_hi >= hi;
    if better {
        if covers {
            return Err("the bucket already covers the whole range".into());
        }
        if b_lo >= hi {
            return Ok((Bound::Max, b_hi));
        }
        if b_hi <= lo {
            return Ok((Bound::Min, b_lo));
        }
        // overlapping: narrow the range to the bucket on the side that
        // excludes more of what is outside it
        let cut_below = if b_lo > lo { b_lo - lo } else { 0.0 };
        let cut_above = if b_hi < hi { hi - b_hi } else { 0.0 };
        if cut_below >= cut_above {
            Ok((Bound::Min, b_lo))
        } else {
            Ok((Bound::Max, b_hi))
        }
    } else {
        if b_hi <= lo || b_lo >= hi {
            return Err("the bucket already lies outside the range".into());
        }
        if covers {
            return Err("the bucket covers the whole range; no single bound can exclude it".into());
        }
        if b_lo <= lo {
            Ok((Bound::Min, b_hi))
        } else if b_hi >= hi {
            Ok((Bound::Max, b_lo))
        } else {
            Err(
                "the bucket lies strictly inside the range; moving one bound cannot \
                 exclude it without excluding more"
                    .into(),
            )
        }
    }
}

/// Maps a pattern to an experiment on one strategy parameter.
///
/// Patterns about the OTM %, the premium or the days to expiry
/// (`pattern_type` `otm_bucket`, `premium_bucket`, `dte_bucket`) map to a
/// bound of the strategy's range; the bucket comes from the pattern's
/// `context` (`min`/`max`: a half-open `[min, max)` for fractions and
/// dollars, inclusive whole days for DTE; either may be missing for an
/// open-ended bucket), and whether it does better or worse from
/// `context.direction`, a signed `context.difference`,
/// `context.baseline_roi` against `avg_roi`, or the name ("outperforms",
/// "underperforms"). The rule:
///
/// * a bucket that **outperforms** and overlaps the range: narrow the
///   range to it, moving the bound that excludes more (OTM 18–20% within
///   15–20%: `otm_min` → 0.18); outside the range: widen the nearer bound
///   to take it in;
/// * a bucket that **underperforms** at one end of the range: move that
///   end past it (DTE 12–14 within 7–14: `dte_max` → 11); strictly inside,
///   covering everything, or already outside: no experiment.
///
/// The target is then clamped to the shift limit by [`propose`]. Every
/// "no" comes with its reason.
///
/// # Errors
/// A [`NoProposal`] saying why the pattern gives no experiment.
pub fn propose_from_pattern(
    pattern: &Pattern,
    current: &ParameterSet,
    params: &ExperimentParams,
    today: NaiveDate,
) -> Result<Experiment, NoProposal> {
    let name = pattern.pattern_name.clone();
    if pattern.status == PatternStatus::Retired {
        return Err(NoProposal::Retired { pattern: name });
    }
    let (min_name, max_name, integer) =
        dimension(&pattern.pattern_type).ok_or_else(|| NoProposal::Unmapped {
            pattern: name.clone(),
            pattern_type: pattern.pattern_type.clone(),
        })?;
    let (b_lo, b_hi) = bucket_bounds(&pattern.context).ok_or_else(|| NoProposal::NoBucket {
        pattern: name.clone(),
    })?;
    let sign = direction(pattern).ok_or_else(|| NoProposal::NoDirection {
        pattern: name.clone(),
    })?;
    let value = |p: &str| {
        current.get(p).ok_or_else(|| NoProposal::MissingParameter {
            parameter: p.to_owned(),
        })
    };
    let (lo, hi) = (value(min_name)?, value(max_name)?);
    // half-open working intervals
    let step = if integer { 1.0 } else { 0.0 };
    let range = (lo, hi + step);
    let bucket = (
        b_lo.unwrap_or(f64::NEG_INFINITY),
        b_hi.map_or(f64::INFINITY, |h| h + step),
    );
    let (bound, target) =
        move_toward(range, bucket, sign > 0.0).map_err(|why| NoProposal::NothingToChange {
            pattern: name.clone(),
            why: format!(
                "{why} (range {}..={}, bucket {}..{})",
                format_value(lo, integer),
                format_value(hi, integer),
                b_lo.map_or("".into(), |v| format_value(v, integer)),
                b_hi.map_or("".into(), |v| format_value(v, integer)),
            ),
        })?;
    let (parameter, target) = match bound {
        Bound::Min => (min_name, target),
        // back from half-open to the inclusive maximum
        Bound::Max => (max_name, target - step),
    };
    let bucket_text = format!(
        "{}..{}",
        b_lo.map_or("".into(), |v| format_value(v, integer)),
        b_hi.map_or("".into(), |v| format_value(v, integer)),
    );
    let rationale = format!(
        "pattern {:?} ({} {bucket_text} {}, {} trades, mean ROI {:.2}%, p = {:.3}, \
         confidence {:.2})",
        pattern.pattern_name,
        pattern.pattern_type,
        if sign > 0.0 {
            "does better"
        } else {
            "does worse"
        },
        pattern.sample_size,
        100.0 * pattern.avg_roi,
        pattern.p_value,
        pattern.confidence,
    );
    propose(
        &Proposal {
            name,
            parameter: parameter.to_owned(),
            target,
            rationale,
        },
        current,
        params,
        today,
    )
}

/// The deterministic id of an experiment: start date, parameter and both
/// values, e.g. `EXP-20240109-otm_min-0.15-0.18`.
#[must_use]
pub fn experiment_id(today: NaiveDate, parameter: &str, control: &str, test: &str) -> String {
    format!(
        "EXP-{}-{parameter}-{control}-{test}",
        today.format("%Y%m%d")
    )
}

/// The largest step toward `target` from `current` within `max_shift`
/// (relative): whole days rounded toward `current`, fractions and dollars
/// to 1e-4 toward `current`. Returns (test value, whether it was clamped).
fn clamp_step(current: f64, target: f64, max_shift: f64, integer: bool) -> (f64, bool) {
    let limit = current.abs() * max_shift;
    let wanted = target - current;
    let clamped = wanted.abs() > limit + VALUE_TOLERANCE;
    let step = wanted.clamp(-limit, limit);
    let unit = if integer { 1.0 } else { 1e-4 };
    let units = step / unit;
    let whole = if (units - units.round()).abs() < 1e-6 {
        units.round()
    } else {
        units.trunc()
    };
    let value = current + whole * unit;
    // clean representation (0.18, not 0.18000000000000002)
    let value = format_value(value, integer).parse().unwrap_or(value);
    (value, clamped)
}

/// Turns a proposal into an experiment on the current parameters: the
/// control value is the current one, the test value the target moved at
/// most `max_shift` (relative) from it — a 50% wish becomes a 20% step —
/// and rounded toward the current value (whole days; 1e-4 otherwise). The
/// experiment starts `Active` with the design of `params` (allocation,
/// `min_samples`) and a deterministic id ([`experiment_id`]).
///
/// # Errors
/// [`NoProposal`] when the parameter is unknown or missing, is 0, cannot
/// move within the limit, would not change, or the test value would give
/// parameters the strategy refuses.
pub fn propose(
    proposal: &Proposal,
    current: &ParameterSet,
    params: &ExperimentParams,
    today: NaiveDate,
) -> Result<Experiment, NoProposal> {
    let parameter = proposal.parameter.clone();
    let spec = parameter_spec(&parameter).map_err(|_| NoProposal::UnknownParameter {
        parameter: parameter.clone(),
    })?;
    let control = current
        .get(&parameter)
        .ok_or_else(|| NoProposal::MissingParameter {
            parameter: parameter.clone(),
        })?;
    if control == 0.0 {
        return Err(NoProposal::ZeroValue { parameter });
    }
    if proposal.target.is_nan() {
        return Err(NoProposal::Invalid {
            parameter,
            value: proposal.target.to_string(),
            why: "the target is not a number".into(),
        });
    }
    let (test, clamped) = clamp_step(control, proposal.target, params.max_shift, spec.integer);
    if (test - control).abs() <= VALUE_TOLERANCE {
        return Err(
            if spec.integer && (proposal.target - control).abs() >= 1.0 {
                NoProposal::StepTooSmall {
                    parameter,
                    current: control,
                    max_shift_pct: 100.0 * params.max_shift,
                }
            } else {
                NoProposal::NothingToChange {
                    pattern: proposal.name.clone(),
                    why: format!(
                        "{parameter} is already {} (target {})",
                        spec.format(control),
                        spec.format(proposal.target)
                    ),
                }
            },
        );
    }
    let with_test = current.clone().with(parameter.clone(), test);
    if let Err(e) = with_test.check() {
        return Err(NoProposal::Invalid {
            parameter,
            value: spec.format(test),
            why: e.to_string(),
        });
    }
    let (control_text, test_text) = (spec.format(control), spec.format(test));
    let clamp_note = if clamped {
        let wish = if proposal.target.is_finite() {
            spec.format(proposal.target)
        } else {
            "open-ended".into()
        };
        format!(
            " (the wish was {wish}; clamped to a {}% shift by the governance limit)",
            100.0 * params.max_shift
        )
    } else {
        String::new()
    };
    let verb = if test > control {
        "raising"
    } else {
        "lowering"
    };
    let hypothesis = format!(
        "{}: {verb} {parameter} ({}) from {control_text} to {test_text}{clamp_note} raises \
         the mean ROI per closed trade by more than {:.2} percentage points",
        proposal.rationale,
        spec.meaning,
        100.0 * params.min_effect_roi,
    );
    Ok(Experiment {
        experiment_id: experiment_id(today, &parameter, &control_text, &test_text),
        name: proposal.name.clone(),
        hypothesis,
        parameter_name: parameter,
        control_value: control_text,
        test_value: test_text,
        allocation: params.allocation,
        min_samples: params.min_samples,
        status: ExperimentStatus::Active,
        start_date: today,
        end_date: None,
        control_trades: 0,
        test_trades: 0,
        p_value: None,
        effect_size: None,
        decision: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 9).unwrap()
    }

    fn pattern(kind: &str, name: &str, context: serde_json::Value) -> Pattern {
        Pattern {
            pattern_type: kind.into(),
            pattern_name: name.into(),
            sample_size: 45,
            win_rate: 0.9,
            avg_roi: 0.021,
            confidence: 0.99,
            p_value: 0.003,
            status: PatternStatus::Active,
            date_detected: day(),
            context,
        }
    }

    fn propose_default(p: &Pattern) -> Result<Experiment, NoProposal> {
        propose_from_pattern(
            p,
            &ParameterSet::naked_put_defaults(),
            &ExperimentParams::default(),
            day(),
        )
    }

    #[test]
    fn an_outperforming_top_otm_bucket_raises_otm_min() {
        let p = pattern(
            "otm_bucket",
            "18-20% OTM outperforms",
            serde_json::json!({"min": 0.18, "max": 0.20}),
        );
        let e = propose_default(&p).unwrap();
        assert_eq!(e.parameter_name, "otm_min");
        assert_eq!(
            (e.control_value.as_str(), e.test_value.as_str()),
            ("0.15", "0.18")
        );
        assert_eq!(e.experiment_id, "EXP-20240109-otm_min-0.15-0.18");
        assert!(
            e.hypothesis.contains("18-20% OTM outperforms"),
            "{}",
            e.hypothesis
        );
        assert_eq!(e.allocation, 0.20);
        assert_eq!(e.min_samples, 30);
    }

    #[test]
    fn an_underperforming_long_dte_bucket_lowers_dte_max_in_whole_days() {
        let p = pattern(
            "dte_bucket",
            "11-14 DTE underperforms",
            serde_json::json!({"bucket": {"min": 12, "max": 14}, "direction": "underperforms"}),
        );
        let e = propose_default(&p).unwrap();
        assert_eq!(e.parameter_name, "dte_max");
        // 14 → 11 is a 21% shift: clamped to 20% (11.2) and rounded toward 14
        assert_eq!(e.test_value, "12");
        assert!(e.hypothesis.contains("clamped"), "{}", e.hypothesis);
    }

    #[test]
    fn a_bucket_beyond_the_range_widens_it_within_the_limit() {
        let p = pattern(
            "otm_bucket",
            "≥20% OTM outperforms",
            serde_json::json!({"min": 0.20}),
        );
        let e = propose_default(&p).unwrap();
        assert_eq!(e.parameter_name, "otm_max");
        assert_eq!(e.test_value, "0.24");
    }

    #[test]
    fn unmapped_and_unusable_patterns_say_why() {
        let p = pattern(
            "sector",
            "Tech outperforms",
            serde_json::json!({"sector": "Tech"}),
        );
        let err = propose_default(&p).unwrap_err();
        assert!(matches!(err, NoProposal::Unmapped { .. }), "{err}");
        assert!(err.to_string().contains("sector"));

        let p = pattern(
            "otm_bucket",
            "16-17% OTM",
            serde_json::json!({"min": 0.16, "max": 0.17}),
        );
        assert!(matches!(
            propose_default(&p).unwrap_err(),
            NoProposal::NoDirection { .. }
        ));

        let p = pattern(
            "otm_bucket",
            "16-17% OTM underperforms",
            serde_json::json!({"min": 0.16, "max": 0.17}),
        );
        let err = propose_default(&p).unwrap_err();
        assert!(err.to_string().contains("strictly inside"), "{err}");

        let p = pattern(
            "otm_bucket",
            "OTM outperforms",
            serde_json::json!({"note": 1}),
        );
        assert!(matches!(
            propose_default(&p).unwrap_err(),
            NoProposal::NoBucket { .. }
        ));

        let mut p = pattern(
            "otm_bucket",
            "18-20% OTM outperforms",
            serde_json::json!({"min": 0.18, "max": 0.20}),
        );
        p.status = PatternStatus::Retired;
        assert!(matches!(
            propose_default(&p).unwrap_err(),
            NoProposal::Retired { .. }
        ));
    }

    #[test]
    fn a_fifty_percent_wish_is_clamped_to_twenty_percent() {
        let proposal = Proposal {
            name: "optimizer".into(),
            parameter: "profit_target".into(),
            target: 0.75,
            rationale: "the optimizer's best in-sample value".into(),
        };
        let e = propose(
            &proposal,
            &ParameterSet::naked_put_defaults(),
            &ExperimentParams::default(),
            day(),
        )
        .unwrap();
        assert_eq!(e.test_value, "0.6");
        assert!(
            e.hypothesis.contains("clamped to a 20% shift"),
            "{}",
            e.hypothesis
        );
    }

    #[test]
    fn a_day_count_too_small_to_move_is_refused() {
        let proposal = Proposal {
            name: "x".into(),
            parameter: "time_exit_dte".into(),
            target: 1.0,
            rationale: "r".into(),
        };
        let err = propose(
            &proposal,
            &ParameterSet::naked_put_defaults(),
            &ExperimentParams::default(),
            day(),
        )
        .unwrap_err();
        assert!(matches!(err, NoProposal::StepTooSmall { .. }), "{err}");
    }

    #[test]
    fn a_test_value_that_breaks_a_range_is_refused() {
        let current = ParameterSet::naked_put_defaults().with("otm_max", 0.16);
        let proposal = Proposal {
            name: "x".into(),
            parameter: "otm_min".into(),
            target: 0.18,
            rationale: "r".into(),
        };
        let err = propose(&proposal, &current, &ExperimentParams::default(), day()).unwrap_err();
        assert!(matches!(err, NoProposal::Invalid { .. }), "{err}");
    }
}
