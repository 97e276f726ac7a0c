//! The analysis of a running experiment: the sequential test on the ROI of
//! closed trades by arm, and the decision it supports.

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{Experiment, Trade, TradeStatus};
use serde::{Deserialize, Serialize};

use super::assign::Arm;
use super::error::{ExperimentError, ExperimentResult};
use super::params::{ExperimentParams, ShadowPolicy};
use crate::stats::{
    SequentialConfig, SequentialDecision, SequentialTest, StatsError, cohens_d, sequential_test,
};

/// The outcome of a shadow trade: an opportunity of an experiment's arm
/// followed to its exit from market data but never traded. Evidence only —
/// never P&L.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowOutcome {
    /// Unique id of the shadow trade (orders shadow outcomes of the same
    /// exit date).
    pub shadow_id: String,
    /// The experiment it belongs to.
    pub experiment_id: String,
    /// The arm whose parameters selected it.
    pub arm: Arm,
    /// The exchange date of its (simulated) exit.
    pub exit_date: NaiveDate,
    /// Profit as a fraction of the margin at entry, as [`Trade::roi`].
    pub roi: f64,
}

/// What an analysis says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not enough evidence either way: keep assigning and look again.
    Continue,
    /// The test value is significantly and sufficiently better: adopt it
    /// (subject to the governance limits, see [`super::adopt`]).
    Adopt,
    /// The test value is significantly worse, or the sample budget ran out
    /// without proof of a gain: keep the control value.
    Reject,
}

impl Decision {
    /// `continue`, `adopt` or `reject`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Continue => "continue",
            Decision::Adopt => "adopt",
            Decision::Reject => "reject",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One arm's evidence at an analysis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Closed real trades with an ROI.
    pub real_trades: usize,
    /// Mean ROI of those trades.
    pub real_mean_roi: Option<f64>,
    /// Shadow outcomes of the arm available up to the analysis.
    pub shadow_available: usize,
    /// Shadow outcomes that entered the test (0 under
    /// [`ShadowPolicy::Ignore`]).
    pub shadow_used: usize,
    /// Mean ROI of the shadow outcomes available, for the reasoning.
    pub shadow_mean_roi: Option<f64>,
    /// Mean ROI of the sample the test saw (real plus shadow used).
    pub tested_mean_roi: Option<f64>,
}

/// One look at an experiment, with its decision and reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The experiment.
    pub experiment_id: String,
    /// When the look was taken; only trades closed by then count.
    pub at: DateTime<Utc>,
    /// The control arm's evidence.
    pub control: ArmSummary,
    /// The test arm's evidence.
    pub test: ArmSummary,
    /// Closed trades of the experiment left out: no ROI (no margin
    /// recorded), a non-finite ROI, or an arm that is neither `control`
    /// nor `test`.
    pub excluded_trades: usize,
    /// Mean ROI of the tested test sample − of the tested control sample.
    pub effect_roi: Option<f64>,
    /// The same on real trades alone.
    pub real_effect_roi: Option<f64>,
    /// Cohen's d of the tested samples (test − control).
    pub cohens_d: Option<f64>,
    /// The sequential test's look (test arm as `a`, control as `b`), once
    /// both arms have `min_samples` real trades.
    pub sequential: Option<SequentialTest>,
    /// The always-valid p-value of this look.
    pub p_value: Option<f64>,
    /// What to do.
    pub decision: Decision,
    /// Why, with the numbers.
    pub reasoning: String,
}

impl Analysis {
    /// Closed real trades in both arms.
    #[must_use]
    pub fn real_trades(&self) -> usize {
        self.control.real_trades + self.test.real_trades
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{:.2}%", 100.0 * v))
}

fn pp(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{:+.2} pp", 100.0 * v))
}

/// The closed real trades of an experiment's arms by the time `at`, in
/// exit order, with the count of those left out.
struct RealSamples {
    control: Vec<f64>,
    test: Vec<f64>,
    excluded: usize,
}

fn real_samples(experiment_id: &str, trades: &[Trade], at: DateTime<Utc>) -> RealSamples {
    let mut closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| {
            t.experiment_id.as_deref() == Some(experiment_id)
                && t.status == TradeStatus::Closed
                && t.exit_time.is_some_and(|x| x <= at)
        })
        .collect();
    // a fixed order: floating-point sums then do not depend on how the
    // caller sorted the trades
    closed.sort_by(|a, b| (a.exit_time, &a.trade_id).cmp(&(b.exit_time, &b.trade_id)));
    let mut out = RealSamples {
        control: Vec::new(),
        test: Vec::new(),
        excluded: 0,
    };
    for t in closed {
        let arm = t.experiment_arm.as_deref().and_then(Arm::parse);
        match (arm, t.roi.filter(|r| r.is_finite())) {
            (Some(Arm::Control), Some(roi)) => out.control.push(roi),
            (Some(Arm::Test), Some(roi)) => out.test.push(roi),
            _ => out.excluded += 1,
        }
    }
    out
}

fn shadow_samples(
    experiment_id: &str,
    shadow: Option<&[ShadowOutcome]>,
    at: DateTime<Utc>,
) -> (Vec<f64>, Vec<f64>) {
    let mut usable: Vec<&ShadowOutcome> = shadow
        .unwrap_or_default()
        .iter()
        .filter(|s| {
            s.experiment_id == experiment_id && s.exit_date <= at.date_naive() && s.roi.is_finite()
        })
        .collect();
    usable.sort_by(|a, b| (a.exit_date, &a.shadow_id).cmp(&(b.exit_date, &b.shadow_id)));
    let pick = |arm| {
        usable
            .iter()
            .filter(|s| s.arm == arm)
            .map(|s| s.roi)
            .collect()
    };
    (pick(Arm::Control), pick(Arm::Test))
}

/// Analyses an experiment as of `at` from its closed real trades (matched
/// by `experiment_id`, split by `experiment_arm`, ROI as [`Trade::roi`],
/// closed at or before `at`) and, as [`ExperimentParams::shadow`] allows,
/// its shadow outcomes. Pure and deterministic; call it as often as
/// wanted — at every cycle, after every trade — since the test is
/// always-valid.
///
/// The decision rule, in order:
///
/// 1. **Continue** while either arm has fewer than the experiment's
///    `min_samples` (its row: the design it started with) closed real
///    trades (no look counts before; shadow evidence cannot make up for
///    missing real trades).
/// 2. The sequential test ([`sequential_test`], test arm against control,
///    at `alpha` and `mixing_sd`) on the tested samples (real trades, plus
///    the shadow outcomes the policy admits). Its guarantee: a null
///    experiment is adopted or rejected as "significantly worse" with
///    probability ≤ α however many looks are taken.
/// 3. **Adopt** when it rejects equal means, the effect (mean ROI test −
///    control) is positive and exceeds `min_effect_roi` both in the tested
///    samples and in the real trades alone.
/// 4. **Reject** when it rejects equal means with the test arm worse.
/// 5. **Reject** when the smaller arm has reached `max_samples_per_arm`
///    real trades without an adoption: the budget is spent and a gain, if
///    any, is too small to prove (this includes a significant gain below
///    `min_effect_roi`).
/// 6. Otherwise **Continue** (including a significant gain that is still
///    below `min_effect_roi`: more trades will tell whether it is big
///    enough).
///
/// Samples whose ROIs are all equal in both arms cannot be tested; the
/// analysis then continues and says so.
///
/// # Errors
/// Invalid `params`, or a failure of the statistical test other than
/// constant samples.
pub fn analyze(
    experiment: &Experiment,
    trades: &[Trade],
    shadow: Option<&[ShadowOutcome]>,
    params: &ExperimentParams,
    at: DateTime<Utc>,
) -> ExperimentResult<Analysis> {
    params.validate()?;
    let id = experiment.experiment_id.as_str();
    let real = real_samples(id, trades, at);
    let (shadow_control, shadow_test) = shadow_samples(id, shadow, at);
    // the experiment's own design (its row), not today's settings
    let min_samples = experiment.min_samples.max(2);
    let min = usize::try_from(min_samples).unwrap_or(usize::MAX);
    let config = SequentialConfig {
        min_per_group: min,
        ..params.sequential_config()
    };
    let max = usize::try_from(params.max_samples_per_arm).unwrap_or(usize::MAX);
    let warm = real.control.len() >= min && real.test.len() >= min;

    let admitted = |available: usize, real_n: usize| match params.shadow {
        ShadowPolicy::Ignore => 0,
        ShadowPolicy::Supplement { max_ratio } if warm => {
            available.min((max_ratio * real_n as f64).floor() as usize)
        }
        ShadowPolicy::Supplement { .. } => 0,
    };
    let used_control = admitted(shadow_control.len(), real.control.len());
    let used_test = admitted(shadow_test.len(), real.test.len());
    let tested_control: Vec<f64> = real
        .control
        .iter()
        .chain(&shadow_control[..used_control])
        .copied()
        .collect();
    let tested_test: Vec<f64> = real
        .test
        .iter()
        .chain(&shadow_test[..used_test])
        .copied()
        .collect();
    let summary = |real: &[f64], shadow: &[f64], used: usize, tested: &[f64]| ArmSummary {
        real_trades: real.len(),
        real_mean_roi: mean(real),
        shadow_available: shadow.len(),
        shadow_used: used,
        shadow_mean_roi: mean(shadow),
        tested_mean_roi: mean(tested),
    };
    let control = summary(
        &real.control,
        &shadow_control,
        used_control,
        &tested_control,
    );
    let test = summary(&real.test, &shadow_test, used_test, &tested_test);
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let effect_roi = diff(test.tested_mean_roi, control.tested_mean_roi);
    let real_effect_roi = diff(test.real_mean_roi, control.real_mean_roi);
    let cohens = if warm {
        cohens_d(&tested_test, &tested_control).ok()
    } else {
        None
    };

    let mut numbers = format!(
        "experiment {id} ({} {} vs {}) at {}: control {} closed trades, mean ROI {}; test {} \
         closed trades, mean ROI {}; effect {}",
        experiment.parameter_name,
        experiment.test_value,
        experiment.control_value,
        at.format("%Y-%m-%d %H:%M UTC"),
        control.real_trades,
        pct(control.real_mean_roi),
        test.real_trades,
        pct(test.real_mean_roi),
        pp(real_effect_roi),
    );
    if control.shadow_available + test.shadow_available > 0 {
        numbers.push_str(&format!(
            "; shadow outcomes control {} (mean {}, {} used), test {} (mean {}, {} used)",
            control.shadow_available,
            pct(control.shadow_mean_roi),
            control.shadow_used,
            test.shadow_available,
            pct(test.shadow_mean_roi),
            test.shadow_used,
        ));
        if used_control + used_test > 0 {
            numbers.push_str(&format!("; tested effect {}", pp(effect_roi)));
        }
    }
    if real.excluded > 0 {
        numbers.push_str(&format!(
            "; {} closed trade(s) without a usable ROI or arm left out",
            real.excluded
        ));
    }

    let finish = |sequential: Option<SequentialTest>, decision: Decision, why: String| Analysis {
        experiment_id: id.to_owned(),
        at,
        control,
        test,
        excluded_trades: real.excluded,
        effect_roi,
        real_effect_roi,
        cohens_d: cohens,
        sequential,
        p_value: sequential.map(|s| s.p_value),
        decision,
        reasoning: format!("{numbers}. {why}"),
    };

    if !warm {
        return Ok(finish(
            None,
            Decision::Continue,
            format!(
                "Continue: no decision before {} closed real trades in each arm",
                min_samples
            ),
        ));
    }
    let look = match sequential_test(&tested_test, &tested_control, &config) {
        Ok(look) => look,
        Err(StatsError::ZeroSpread { .. }) => {
            return Ok(finish(
                None,
                Decision::Continue,
                "Continue: every ROI is the same in both arms, nothing can be tested yet".into(),
            ));
        }
        Err(source) => {
            return Err(ExperimentError::Stats {
                experiment_id: id.to_owned(),
                source,
            });
        }
    };
    let stat = format!(
        "sequential test: z = {:.2}, always-valid p = {:.4} (α = {}){}",
        look.z,
        look.p_value,
        params.alpha,
        cohens.map_or_else(String::new, |d| format!(", Cohen's d = {d:.2}")),
    );
    let significant = look.decision == SequentialDecision::RejectNull;
    let effect = effect_roi.unwrap_or(0.0);
    let real_effect = real_effect_roi.unwrap_or(0.0);
    let smaller_arm = control.real_trades.min(test.real_trades);
    let threshold = format!("{:.2} pp", 100.0 * params.min_effect_roi);
    let (decision, why) = if significant && effect > 0.0 {
        if effect > params.min_effect_roi && real_effect > params.min_effect_roi {
            (
                Decision::Adopt,
                format!(
                    "Adopt: {stat}; the test value is significantly better and the gain \
                     exceeds the minimum of {threshold}"
                ),
            )
        } else if smaller_arm >= max {
            (
                Decision::Reject,
                format!(
                    "Reject: {stat}; significantly better but by no more than the minimum of \
                     {threshold}{}, and the budget of {} trades per arm is spent",
                    if real_effect <= params.min_effect_roi && effect > params.min_effect_roi {
                        " on real trades alone"
                    } else {
                        ""
                    },
                    params.max_samples_per_arm
                ),
            )
        } else {
            (
                Decision::Continue,
                format!(
                    "Continue: {stat}; significantly better but the gain does not yet exceed \
                     the minimum of {threshold}{}",
                    if real_effect <= params.min_effect_roi && effect > params.min_effect_roi {
                        " on real trades alone"
                    } else {
                        ""
                    }
                ),
            )
        }
    } else if significant {
        (
            Decision::Reject,
            format!("Reject: {stat}; the test value is significantly worse"),
        )
    } else if smaller_arm >= max {
        (
            Decision::Reject,
            format!(
                "Reject: {stat}; no significant difference after {smaller_arm} trades in the \
                 smaller arm (budget {})",
                params.max_samples_per_arm
            ),
        )
    } else {
        (
            Decision::Continue,
            format!("Continue: {stat}; not significant yet"),
        )
    };
    Ok(finish(Some(look), decision, why))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decision_words_match_the_serde_names() {
        for d in [Decision::Continue, Decision::Adopt, Decision::Reject] {
            assert_eq!(
                serde_json::to_value(d).unwrap(),
                serde_json::json!(d.as_str())
            );
        }
    }
}
