//! [`detect`]: every comparison of a run, the corrected decisions and the
//! patterns that come out of them.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;
use core_domain::{Pattern, PatternStatus, Trade, TradeStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PatternParams;
use super::buckets::{Bucket, Bucketer, Dimension, FeatureMap, QuantileEdges};
use super::permutation::welch_permutation_p;
use super::proportion::{fisher_exact_test, two_proportion_z_test};
use crate::error::LearningError;
use crate::stats::{
    Correction, EffectSize, MannWhitneyU, StatsError, benjamini_hochberg, effect_size, holm,
    mann_whitney_u, welch_t_test,
};

/// Count, wins, win rate and mean ROI of a group of trades.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Trades in the group.
    pub n: usize,
    /// Trades with a positive ROI.
    pub wins: usize,
    /// wins / n.
    pub win_rate: f64,
    /// Mean ROI (profit / margin at entry).
    pub avg_roi: f64,
}

impl GroupStats {
    /// `None` for an empty group.
    fn of<'a>(obs: impl IntoIterator<Item = &'a Obs<'a>>) -> Option<GroupStats> {
        let (mut n, mut wins, mut sum) = (0_usize, 0_usize, 0.0);
        for o in obs {
            n += 1;
            wins += usize::from(o.win);
            sum += o.roi;
        }
        (n > 0).then(|| GroupStats {
            n,
            wins,
            win_rate: wins as f64 / n as f64,
            avg_roi: sum / n as f64,
        })
    }
}

/// Which test produced a [`HypothesisTest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Welch's t-test on the ROIs.
    WelchT,
    /// The pooled two-proportion z-test on the win indicators.
    TwoProportionZ,
    /// Fisher's exact test on the 2×2 table of wins and losses.
    FisherExact,
}

impl TestKind {
    /// The name stored in a pattern's context.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TestKind::WelchT => "welch_t",
            TestKind::TwoProportionZ => "two_proportion_z",
            TestKind::FisherExact => "fisher_exact",
        }
    }

    /// What it tests, in words.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            TestKind::WelchT => "Welch's t-test on mean ROI",
            TestKind::TwoProportionZ => "two-proportion z-test on win rate",
            TestKind::FisherExact => "Fisher's exact test on win rate",
        }
    }
}

/// One hypothesis of the run's family, before and after correction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HypothesisTest {
    /// The test.
    pub test: TestKind,
    /// t or z (none for Fisher's exact test).
    pub statistic: Option<f64>,
    /// The test's own p-value.
    pub p_test: f64,
    /// The exact confirmation, computed when `p_test` ≤ α: the
    /// permutation p-value of Welch's t for the ROI test, Fisher's exact
    /// p-value for the z-test.
    pub p_confirmation: Option<f64>,
    /// The p-value entered in the family: the larger of `p_test` and
    /// `p_confirmation`.
    pub p_raw: f64,
    /// After the correction across every hypothesis of the run.
    pub p_adjusted: f64,
    /// Rejected by the correction at α.
    pub rejected: bool,
}

/// Why a comparison was not tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Too few trades in the bucket.
    BucketTooSmall {
        /// Trades in the bucket.
        n: usize,
        /// [`PatternParams::min_bucket`].
        min: usize,
    },
    /// Too few trades in the rest of the dimension.
    RestTooSmall {
        /// Trades in the rest.
        n: usize,
        /// [`PatternParams::min_bucket`].
        min: usize,
    },
    /// The dimension has two buckets; this one is the mirror image of the
    /// comparison of the other.
    MirrorOf {
        /// The bucket whose comparison covers this one.
        bucket: String,
    },
    /// Neither test could be computed (for example every ROI equal and
    /// every trade a win).
    NoTestPossible {
        /// What the tests said.
        why: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::BucketTooSmall { n, min } => {
                write!(f, "the bucket has {n} trades, fewer than min_bucket {min}")
            }
            SkipReason::RestTooSmall { n, min } => write!(
                f,
                "the rest of the dimension has {n} trades, fewer than min_bucket {min}"
            ),
            SkipReason::MirrorOf { bucket } => write!(
                f,
                "the dimension has two buckets; the comparison of \"{bucket}\" covers this one"
            ),
            SkipReason::NoTestPossible { why } => write!(f, "no test possible: {why}"),
        }
    }
}

/// Why a tested comparison did not become a pattern (all that apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RejectReason {
    /// No hypothesis of the comparison survived the correction.
    NotSignificant {
        /// The smallest adjusted p-value of its tests.
        best_adjusted_p: f64,
        /// The level.
        alpha: f64,
    },
    /// Only the win-rate test is significant, and the win rate moves
    /// against the mean ROI.
    ConflictingDirections {
        /// Bucket − rest win rate.
        win_rate_difference: f64,
        /// Bucket − rest mean ROI.
        roi_difference: f64,
    },
    /// The mean ROI difference is smaller than
    /// [`PatternParams::min_effect_roi`].
    EffectTooSmall {
        /// Bucket − rest mean ROI.
        roi_difference: f64,
        /// The minimum.
        min: f64,
    },
    /// The effect does not hold in every chronological window.
    NotPersistent {
        /// The first window that fails and why.
        why: String,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NotSignificant {
                best_adjusted_p,
                alpha,
            } => write!(
                f,
                "not significant after correction (best adjusted p {best_adjusted_p:.4} > α {alpha})"
            ),
            RejectReason::ConflictingDirections {
                win_rate_difference,
                roi_difference,
            } => write!(
                f,
                "the win rate differs significantly ({}) but the mean ROI moves the other way ({})",
                pp(*win_rate_difference),
                pp(*roi_difference)
            ),
            RejectReason::EffectTooSmall {
                roi_difference,
                min,
            } => write!(
                f,
                "|mean ROI difference| {} is below min_effect_roi {:.2} pp",
                pp(*roi_difference),
                min * 100.0
            ),
            RejectReason::NotPersistent { why } => write!(f, "not persistent: {why}"),
        }
    }
}

/// What became of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// It is a pattern.
    Detected {
        /// The pattern's name.
        pattern_name: String,
    },
    /// It was not tested (it made no hypothesis of the family).
    NotTested {
        /// Why.
        reason: SkipReason,
    },
    /// It was tested and failed at least one requirement.
    Rejected {
        /// Every requirement it failed.
        reasons: Vec<RejectReason>,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Detected { pattern_name } => write!(f, "detected: {pattern_name}"),
            Verdict::NotTested { reason } => write!(f, "not tested: {reason}"),
            Verdict::Rejected { reasons } => {
                f.write_str("rejected: ")?;
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// Shadow outcomes of a comparison, reported apart from the real ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowSummary {
    /// Shadow trades in the bucket.
    pub bucket: Option<GroupStats>,
    /// Shadow trades in the rest of the dimension.
    pub rest: Option<GroupStats>,
    /// Bucket − rest mean ROI among shadow trades.
    pub roi_difference: Option<f64>,
    /// Whether the shadow difference has the sign of the tested one.
    pub agrees: Option<bool>,
}

/// One bucket against the rest of its dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The dimension.
    pub dimension: Dimension,
    /// The bucket's label ("18-20% OTM").
    pub bucket: String,
    /// The bucket's tested trades.
    pub bucket_stats: GroupStats,
    /// The rest's tested trades (none when the dimension has one bucket).
    pub rest_stats: Option<GroupStats>,
    /// Bucket − rest mean ROI.
    pub roi_difference: Option<f64>,
    /// Bucket − rest win rate.
    pub win_rate_difference: Option<f64>,
    /// The mean-ROI hypothesis (Welch).
    pub roi_test: Option<HypothesisTest>,
    /// The win-rate hypothesis (z or Fisher).
    pub win_rate_test: Option<HypothesisTest>,
    /// Mann-Whitney U on the ROIs (robustness, not in the family).
    pub mann_whitney: Option<MannWhitneyU>,
    /// Difference in mean ROI and Cohen's d.
    pub effect: Option<EffectSize>,
    /// Bucket − rest mean ROI in each chronological window (none when a
    /// side has fewer than [`PatternParams::min_window_side`] trades
    /// there).
    pub window_differences: Vec<Option<f64>>,
    /// Whether the effect holds in every window.
    pub persistent: bool,
    /// Shadow trades, when any were given.
    pub shadow: Option<ShadowSummary>,
    /// Tests that could not be computed, and why.
    pub notes: Vec<String>,
    /// What became of it.
    pub verdict: Verdict,
}

impl Comparison {
    /// The adjusted p-value and test that decide the comparison: the
    /// significant test with the smaller adjusted p (the ROI test on a
    /// tie), else the smallest adjusted p of any test.
    fn deciding_test(&self) -> Option<HypothesisTest> {
        let roi = self.roi_test.filter(|t| t.rejected);
        let win = self
            .win_rate_test
            .filter(|t| t.rejected && self.win_agrees_with_roi());
        let smaller = |a: Option<HypothesisTest>, b: Option<HypothesisTest>| match (a, b) {
            (Some(a), Some(b)) => Some(if b.p_adjusted < a.p_adjusted { b } else { a }),
            (a, b) => a.or(b),
        };
        smaller(roi, win).or_else(|| smaller(self.roi_test, self.win_rate_test))
    }

    fn win_agrees_with_roi(&self) -> bool {
        match (self.win_rate_difference, self.roi_difference) {
            (Some(w), Some(r)) => w != 0.0 && r != 0.0 && (w > 0.0) == (r > 0.0),
            _ => false,
        }
    }

    /// "outperforms" or "underperforms" by the sign of the ROI difference.
    fn direction(&self) -> &'static str {
        if self.roi_difference.unwrap_or(0.0) >= 0.0 {
            "outperforms"
        } else {
            "underperforms"
        }
    }

    /// One paragraph on the evidence (used as a learning event's
    /// reasoning).
    #[must_use]
    pub fn explanation(&self, report: &DetectionReport) -> String {
        let mut s = format!(
            "{} ({}): mean ROI {} over {} trades vs {} over the other {}",
            self.bucket,
            self.dimension,
            pct(self.bucket_stats.avg_roi),
            self.bucket_stats.n,
            self.rest_stats
                .map_or_else(|| "-".into(), |r| pct(r.avg_roi)),
            self.rest_stats.map_or(0, |r| r.n),
        );
        if let Some(d) = self.roi_difference {
            s += &format!(" (difference {}", pp(d));
            if let Some(e) = self.effect {
                s += &format!(", Cohen's d {:.2}", e.cohens_d);
            }
            s += ")";
        }
        s += &format!(
            "; win rate {} vs {}",
            pct(self.bucket_stats.win_rate),
            self.rest_stats
                .map_or_else(|| "-".into(), |r| pct(r.win_rate))
        );
        for t in [self.roi_test, self.win_rate_test].into_iter().flatten() {
            s += &format!(
                "; {}: p = {:.2e}{} raw, {:.2e} after {} over {} hypotheses",
                t.test.describe(),
                t.p_test,
                t.p_confirmation
                    .map_or_else(String::new, |p| format!(" (exact confirmation {p:.2e})")),
                t.p_adjusted,
                correction_name(report.params.correction),
                report.hypotheses
            );
        }
        if let Some(mw) = self.mann_whitney {
            s += &format!(
                "; Mann-Whitney p = {:.2e} raw (P(bucket > rest) = {:.2})",
                mw.p_value, mw.probability_of_superiority
            );
        }
        let windows: Vec<String> = self
            .window_differences
            .iter()
            .map(|d| d.map_or_else(|| "too few trades".into(), pp))
            .collect();
        s += &format!(
            "; by chronological window: {} ({})",
            windows.join(", "),
            if self.persistent {
                "persistent"
            } else {
                "not persistent"
            }
        );
        if let Some(sh) = self.shadow {
            s += &format!(
                "; shadow trades (reported apart{}): {} in the bucket, difference {}",
                if report.shadow_pooled {
                    ", also pooled in the tests"
                } else {
                    ", not in the tests"
                },
                sh.bucket.map_or(0, |b| b.n),
                sh.roi_difference.map_or_else(|| "-".into(), pp)
            );
        }
        s
    }
}

/// Whether the detector ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DetectionOutcome {
    /// Every comparison was considered.
    Ran,
    /// Too few closed trades: nothing was tested.
    TooFewTrades {
        /// Closed real trades with an ROI.
        closed: usize,
        /// [`PatternParams::min_trades`].
        needed: usize,
    },
}

/// First and last entry of one chronological window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSpan {
    /// Entry time of its first trade.
    pub from: DateTime<Utc>,
    /// Entry time of its last trade.
    pub to: DateTime<Utc>,
    /// Trades in it.
    pub trades: usize,
}

/// Everything one run of [`detect`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    /// Whether it ran.
    pub outcome: DetectionOutcome,
    /// One line for people.
    pub summary: String,
    /// Closed real trades with a finite ROI.
    pub closed_trades: usize,
    /// Real trades left out: open, or closed without a finite ROI.
    pub excluded_trades: usize,
    /// Closed shadow trades with a finite ROI.
    pub shadow_trades: usize,
    /// Whether shadow trades were pooled into the tests.
    pub shadow_pooled: bool,
    /// Trades the tests ran on (real, plus shadow when pooled).
    pub tested_trades: usize,
    /// New York date of the latest exit (or entry) among the real trades;
    /// the `date_detected` of the patterns.
    pub as_of: Option<NaiveDate>,
    /// The parameters of the run.
    pub params: PatternParams,
    /// Hypotheses in the corrected family.
    pub hypotheses: usize,
    /// Edges of the quantile dimensions.
    pub edges: QuantileEdges,
    /// The persistence windows.
    pub windows: Vec<WindowSpan>,
    /// Every comparison, by dimension then bucket.
    pub comparisons: Vec<Comparison>,
    /// The patterns found, in the order of their comparisons.
    pub patterns: Vec<Pattern>,
}

impl DetectionReport {
    /// The comparison behind a pattern of this run, or a stored pattern's
    /// bucket (matched by dimension and bucket label).
    #[must_use]
    pub fn comparison_for(&self, pattern_type: &str, pattern_name: &str) -> Option<&Comparison> {
        self.comparisons.iter().find(|c| {
            c.dimension.as_str() == pattern_type
                && ["outperforms", "underperforms"]
                    .iter()
                    .any(|d| pattern_name == format!("{} {d}", c.bucket))
        })
    }
}

/// A trade's outcome as the tests see it.
#[derive(Debug, Clone, Copy)]
struct Obs<'a> {
    trade: &'a Trade,
    roi: f64,
    win: bool,
}

/// Closed trades with a finite ROI, oldest entry first, and the number
/// left out.
fn outcomes(trades: &[Trade]) -> (Vec<Obs<'_>>, usize) {
    let mut obs: Vec<Obs<'_>> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed)
        .filter_map(|t| {
            let roi = t.roi.filter(|r| r.is_finite())?;
            Some(Obs {
                trade: t,
                roi,
                win: roi > 0.0,
            })
        })
        .collect();
    sort_chronologically(&mut obs);
    let excluded = trades.len() - obs.len();
    (obs, excluded)
}

fn sort_chronologically(obs: &mut [Obs<'_>]) {
    obs.sort_by(|a, b| {
        (a.trade.entry_time, &a.trade.trade_id).cmp(&(b.trade.entry_time, &b.trade.trade_id))
    });
}

/// Runs the detector on real trades alone. Pure: same inputs, same report.
///
/// # Errors
/// [`LearningError::InvalidParameter`] when `params` fail
/// [`PatternParams::validate`].
///
/// # Example
/// ```
/// use learning::patterns::{DetectionOutcome, FeatureMap, PatternParams, detect};
/// let report = detect(&[], &FeatureMap::new(), &PatternParams::default())?;
/// assert_eq!(report.outcome, DetectionOutcome::TooFewTrades { closed: 0, needed: 30 });
/// assert!(report.patterns.is_empty());
/// # Ok::<(), learning::LearningError>(())
/// ```
pub fn detect(
    trades: &[Trade],
    features: &FeatureMap,
    params: &PatternParams,
) -> Result<DetectionReport, LearningError> {
    detect_with_shadow(trades, &[], features, params)
}

/// Runs the detector on real trades, with shadow trades reported apart
/// (or pooled into the tests when [`PatternParams::pool_shadow`] is set).
/// See the [module documentation](super) for every rule.
///
/// # Errors
/// [`LearningError::InvalidParameter`] when `params` fail
/// [`PatternParams::validate`].
pub fn detect_with_shadow(
    trades: &[Trade],
    shadow_trades: &[Trade],
    features: &FeatureMap,
    params: &PatternParams,
) -> Result<DetectionReport, LearningError> {
    params.validate()?;
    let (real, excluded_trades) = outcomes(trades);
    let (shadow, _) = outcomes(shadow_trades);
    let as_of = real
        .iter()
        .map(|o| o.trade.exit_time.unwrap_or(o.trade.entry_time))
        .max()
        .map(|t| t.with_timezone(&New_York).date_naive());
    let mut report = DetectionReport {
        outcome: DetectionOutcome::Ran,
        summary: String::new(),
        closed_trades: real.len(),
        excluded_trades,
        shadow_trades: shadow.len(),
        shadow_pooled: params.pool_shadow && !shadow.is_empty(),
        tested_trades: 0,
        as_of,
        params: params.clone(),
        hypotheses: 0,
        edges: QuantileEdges::default(),
        windows: Vec::new(),
        comparisons: Vec::new(),
        patterns: Vec::new(),
    };
    if real.len() < params.min_trades {
        report.outcome = DetectionOutcome::TooFewTrades {
            closed: real.len(),
            needed: params.min_trades,
        };
        report.summary = format!(
            "{} closed trades with an ROI; pattern detection needs at least {} (min_trades): \
             nothing tested, wait for more closed trades",
            real.len(),
            params.min_trades
        );
        return Ok(report);
    }

    let real_trades: Vec<&Trade> = real.iter().map(|o| o.trade).collect();
    report.edges = QuantileEdges::of(&real_trades, features);
    let mut tested = real.clone();
    if report.shadow_pooled {
        tested.extend(shadow.iter().copied());
        sort_chronologically(&mut tested);
    }
    report.tested_trades = tested.len();
    let k = params.persistence_windows;
    let window_of: Vec<usize> = (0..tested.len()).map(|i| i * k / tested.len()).collect();
    report.windows = (0..k)
        .filter_map(|w| {
            let members: Vec<&Obs<'_>> = tested
                .iter()
                .zip(&window_of)
                .filter(|(_, ww)| **ww == w)
                .map(|(o, _)| o)
                .collect();
            Some(WindowSpan {
                from: members.first()?.trade.entry_time,
                to: members.last()?.trade.entry_time,
                trades: members.len(),
            })
        })
        .collect();

    let bucketer = Bucketer {
        params,
        edges: &report.edges,
        features,
    };
    let setup = Setup {
        params,
        tested: &tested,
        window_of: &window_of,
        shadow: &shadow,
        bucketer: &bucketer,
    };
    let mut comparisons = Vec::new();
    for dimension in Dimension::ALL {
        setup.compare_dimension(dimension, &mut comparisons);
    }

    // One family: both hypotheses of every tested comparison.
    let mut family: Vec<(usize, bool, f64)> = Vec::new();
    for (i, c) in comparisons.iter().enumerate() {
        if let Some(t) = c.roi_test {
            family.push((i, true, t.p_raw));
        }
        if let Some(t) = c.win_rate_test {
            family.push((i, false, t.p_raw));
        }
    }
    let p_values: Vec<f64> = family.iter().map(|f| f.2).collect();
    let corrected = match params.correction {
        Correction::Holm => holm(&p_values, params.alpha)?,
        Correction::BenjaminiHochberg => benjamini_hochberg(&p_values, params.alpha)?,
    };
    report.hypotheses = family.len();
    for (j, &(i, is_roi, _)) in family.iter().enumerate() {
        let c = &mut comparisons[i];
        let slot = if is_roi {
            &mut c.roi_test
        } else {
            &mut c.win_rate_test
        };
        if let Some(t) = slot {
            t.p_adjusted = corrected.adjusted[j];
            t.rejected = corrected.reject[j];
        }
    }

    for c in &mut comparisons {
        if matches!(c.verdict, Verdict::NotTested { .. }) {
            continue;
        }
        c.verdict = judge(c, params);
    }
    report.comparisons = comparisons;
    let date = report.as_of.unwrap_or_default();
    report.patterns = report
        .comparisons
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Detected { .. }))
        .filter_map(|c| to_pattern(c, &report, date))
        .collect();
    let tested_count = report
        .comparisons
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::NotTested { .. }))
        .count();
    report.summary = format!(
        "{} closed trades{}: {} comparisons made of {} considered, {} hypotheses corrected with {} \
         at α = {}; {} pattern(s)",
        report.closed_trades,
        if report.shadow_pooled {
            format!(" and {} shadow trades pooled", report.shadow_trades)
        } else if report.shadow_trades > 0 {
            format!(" ({} shadow trades reported apart)", report.shadow_trades)
        } else {
            String::new()
        },
        tested_count,
        report.comparisons.len(),
        report.hypotheses,
        correction_name(params.correction),
        params.alpha,
        report.patterns.len()
    );
    Ok(report)
}

/// What every comparison of a run shares.
struct Setup<'s, 'a> {
    params: &'s PatternParams,
    tested: &'s [Obs<'a>],
    window_of: &'s [usize],
    shadow: &'s [Obs<'a>],
    bucketer: &'s Bucketer<'s>,
}

impl Setup<'_, '_> {
    fn compare_dimension(&self, dimension: Dimension, out: &mut Vec<Comparison>) {
        let labels: Vec<Option<Bucket>> = self
            .tested
            .iter()
            .map(|o| self.bucketer.bucket(dimension, o.trade))
            .collect();
        let shadow_labels: Vec<Option<Bucket>> = self
            .shadow
            .iter()
            .map(|o| self.bucketer.bucket(dimension, o.trade))
            .collect();
        let buckets: BTreeSet<&Bucket> = labels.iter().flatten().collect();
        // With two buckets, the second comparison is the first mirrored.
        let mirror_of = (buckets.len() == 2)
            .then(|| buckets.first().map(|b| b.label.as_str()))
            .flatten();
        for (rank, bucket) in buckets.iter().enumerate() {
            let mirror = mirror_of.filter(|_| rank == 1);
            out.push(self.compare(dimension, bucket, &labels, &shadow_labels, mirror));
        }
    }

    fn compare(
        &self,
        dimension: Dimension,
        bucket: &Bucket,
        labels: &[Option<Bucket>],
        shadow_labels: &[Option<Bucket>],
        mirror_of: Option<&str>,
    ) -> Comparison {
        let params = self.params;
        let side = |labels: &[Option<Bucket>], in_bucket: bool| -> Vec<usize> {
            labels
                .iter()
                .enumerate()
                .filter(|(_, l)| l.as_ref().is_some_and(|l| (l == bucket) == in_bucket))
                .map(|(i, _)| i)
                .collect()
        };
        let inside = side(labels, true);
        let rest = side(labels, false);
        let pick =
            |idx: &[usize]| -> Vec<&Obs<'_>> { idx.iter().map(|&i| &self.tested[i]).collect() };
        let (b_obs, r_obs) = (pick(&inside), pick(&rest));
        let bucket_stats = GroupStats::of(b_obs.iter().copied()).unwrap_or(GroupStats {
            n: 0,
            wins: 0,
            win_rate: 0.0,
            avg_roi: 0.0,
        });
        let rest_stats = GroupStats::of(r_obs.iter().copied());
        let roi_difference = rest_stats.map(|r| bucket_stats.avg_roi - r.avg_roi);

        let shadow = (!self.shadow.is_empty()).then(|| {
            let sb = GroupStats::of(side(shadow_labels, true).iter().map(|&i| &self.shadow[i]));
            let sr = GroupStats::of(side(shadow_labels, false).iter().map(|&i| &self.shadow[i]));
            let diff = sb.zip(sr).map(|(b, r)| b.avg_roi - r.avg_roi);
            ShadowSummary {
                bucket: sb,
                rest: sr,
                roi_difference: diff,
                agrees: diff
                    .zip(roi_difference)
                    .filter(|(_, real)| *real != 0.0)
                    .map(|(s, real)| s != 0.0 && (s > 0.0) == (real > 0.0)),
            }
        });

        let mut c = Comparison {
            dimension,
            bucket: bucket.label.clone(),
            bucket_stats,
            rest_stats,
            roi_difference,
            win_rate_difference: rest_stats.map(|r| bucket_stats.win_rate - r.win_rate),
            roi_test: None,
            win_rate_test: None,
            mann_whitney: None,
            effect: None,
            window_differences: Vec::new(),
            persistent: false,
            shadow,
            notes: Vec::new(),
            verdict: Verdict::Rejected {
                reasons: Vec::new(),
            },
        };
        if b_obs.len() < params.min_bucket {
            c.verdict = Verdict::NotTested {
                reason: SkipReason::BucketTooSmall {
                    n: b_obs.len(),
                    min: params.min_bucket,
                },
            };
            return c;
        }
        if r_obs.len() < params.min_bucket {
            c.verdict = Verdict::NotTested {
                reason: SkipReason::RestTooSmall {
                    n: r_obs.len(),
                    min: params.min_bucket,
                },
            };
            return c;
        }
        if let Some(first) = mirror_of {
            c.verdict = Verdict::NotTested {
                reason: SkipReason::MirrorOf {
                    bucket: first.to_string(),
                },
            };
            return c;
        }

        let b_roi: Vec<f64> = b_obs.iter().map(|o| o.roi).collect();
        let r_roi: Vec<f64> = r_obs.iter().map(|o| o.roi).collect();
        match welch_t_test(&b_roi, &r_roi) {
            Ok(t) => {
                let mut test = HypothesisTest::new(TestKind::WelchT, Some(t.statistic), t.p_value);
                if t.p_value <= params.alpha {
                    let seed = params.permutation_seed ^ comparison_seed(dimension, &bucket.label);
                    match welch_permutation_p(&b_roi, &r_roi, params.permutations, seed) {
                        Ok(p) => test.confirm(p),
                        Err(e) => c.notes.push(format!("permutation test not run: {e}")),
                    }
                }
                c.roi_test = Some(test);
            }
            Err(e) => c.notes.push(format!("mean-ROI test not run: {e}")),
        }
        match mann_whitney_u(&b_roi, &r_roi) {
            Ok(mw) => c.mann_whitney = Some(mw),
            Err(e) => c.notes.push(format!("Mann-Whitney not run: {e}")),
        }
        match effect_size(&b_roi, &r_roi) {
            Ok(e) => c.effect = Some(e),
            Err(e) => c.notes.push(format!("effect size not computed: {e}")),
        }
        match win_rate_test(&c.bucket_stats, rest_stats.as_ref(), params.alpha) {
            Ok(t) => c.win_rate_test = Some(t),
            Err(e) => c.notes.push(format!("win-rate test not run: {e}")),
        }
        if c.roi_test.is_none() && c.win_rate_test.is_none() {
            c.verdict = Verdict::NotTested {
                reason: SkipReason::NoTestPossible {
                    why: c.notes.join("; "),
                },
            };
            return c;
        }

        // Persistence: the difference in each chronological window.
        let k = params.persistence_windows;
        c.window_differences = (0..k)
            .map(|w| {
                let mean_in = |idx: &[usize]| -> Option<f64> {
                    let v: Vec<f64> = idx
                        .iter()
                        .filter(|&&i| self.window_of[i] == w)
                        .map(|&i| self.tested[i].roi)
                        .collect();
                    (v.len() >= params.min_window_side)
                        .then(|| v.iter().sum::<f64>() / v.len() as f64)
                };
                Some(mean_in(&inside)? - mean_in(&rest)?)
            })
            .collect();
        c
    }
}

/// The win-rate hypothesis: z when every expected count is ≥ 5 (confirmed
/// by Fisher's exact test when its p ≤ α), else Fisher's exact test.
fn win_rate_test(
    bucket: &GroupStats,
    rest: Option<&GroupStats>,
    alpha: f64,
) -> Result<HypothesisTest, StatsError> {
    let (wa, na) = (bucket.wins as u64, bucket.n as u64);
    let (wb, nb) = rest.map_or((0, 0), |r| (r.wins as u64, r.n as u64));
    if wa + wb == 0 || wa + wb == na + nb {
        // Every trade won (or lost): the win rates cannot differ, and a
        // hypothesis that cannot be rejected only dilutes the family.
        return Err(StatsError::ZeroSpread {
            method: "the win-rate comparison",
            why: "every trade of both groups has the same outcome, so the win rates cannot differ",
        });
    }
    let pooled = (wa + wb) as f64 / (na + nb).max(1) as f64;
    let min_expected = [na as f64, nb as f64]
        .iter()
        .flat_map(|n| [n * pooled, n * (1.0 - pooled)])
        .fold(f64::INFINITY, f64::min);
    if min_expected >= 5.0 {
        let z = two_proportion_z_test(wa, na, wb, nb)?;
        let mut test = HypothesisTest::new(TestKind::TwoProportionZ, Some(z.statistic), z.p_value);
        if z.p_value <= alpha {
            test.confirm(fisher_exact_test(wa, na, wb, nb)?);
        }
        Ok(test)
    } else {
        let p = fisher_exact_test(wa, na, wb, nb)?;
        Ok(HypothesisTest::new(TestKind::FisherExact, None, p))
    }
}

impl HypothesisTest {
    fn new(test: TestKind, statistic: Option<f64>, p: f64) -> HypothesisTest {
        HypothesisTest {
            test,
            statistic,
            p_test: p,
            p_confirmation: None,
            p_raw: p,
            p_adjusted: p,
            rejected: false,
        }
    }

    /// Records the exact confirmation; the family gets the larger p.
    fn confirm(&mut self, p: f64) {
        self.p_confirmation = Some(p);
        self.p_raw = self.p_test.max(p);
        self.p_adjusted = self.p_raw;
    }
}

/// A seed per comparison (FNV-1a of its dimension and bucket), so that
/// each permutation test has its own stream and the run is reproducible.
fn comparison_seed(dimension: Dimension, label: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dimension.as_str().bytes().chain([0]).chain(label.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The verdict of a tested comparison after the correction.
fn judge(c: &mut Comparison, params: &PatternParams) -> Verdict {
    let mut reasons = Vec::new();
    let roi_significant = c.roi_test.is_some_and(|t| t.rejected);
    let win_significant = c.win_rate_test.is_some_and(|t| t.rejected);
    if !(roi_significant || (win_significant && c.win_agrees_with_roi())) {
        if win_significant {
            reasons.push(RejectReason::ConflictingDirections {
                win_rate_difference: c.win_rate_difference.unwrap_or(0.0),
                roi_difference: c.roi_difference.unwrap_or(0.0),
            });
        } else {
            reasons.push(RejectReason::NotSignificant {
                best_adjusted_p: c.deciding_test().map_or(1.0, |t| t.p_adjusted),
                alpha: params.alpha,
            });
        }
    }
    let diff = c.roi_difference.unwrap_or(0.0);
    if diff.abs() < params.min_effect_roi || diff == 0.0 {
        reasons.push(RejectReason::EffectTooSmall {
            roi_difference: diff,
            min: params.min_effect_roi,
        });
    }
    match persistence_failure(&c.window_differences, diff, params) {
        None => c.persistent = true,
        Some(why) => {
            c.persistent = false;
            reasons.push(RejectReason::NotPersistent { why });
        }
    }
    if reasons.is_empty() {
        Verdict::Detected {
            pattern_name: format!("{} {}", c.bucket, c.direction()),
        }
    } else {
        Verdict::Rejected { reasons }
    }
}

/// Why the effect `overall` does not hold in every window, if it does not.
fn persistence_failure(
    windows: &[Option<f64>],
    overall: f64,
    params: &PatternParams,
) -> Option<String> {
    let k = windows.len();
    if overall == 0.0 {
        return Some("there is no overall effect".into());
    }
    for (w, d) in windows.iter().enumerate() {
        let Some(d) = *d else {
            return Some(format!(
                "window {} of {k} has fewer than {} trades in the bucket or the rest",
                w + 1,
                params.min_window_side
            ));
        };
        let same_sign = d != 0.0 && (d > 0.0) == (overall > 0.0);
        if !same_sign || d.abs() < params.persistence_min_ratio * overall.abs() {
            return Some(format!(
                "in window {} of {k} the difference is {} against {} over all trades \
                 (needs the same sign and at least {:.0}% of it)",
                w + 1,
                pp(d),
                pp(overall),
                params.persistence_min_ratio * 100.0
            ));
        }
    }
    None
}

/// The stored form of a detected comparison.
fn to_pattern(c: &Comparison, report: &DetectionReport, date: NaiveDate) -> Option<Pattern> {
    let Verdict::Detected { pattern_name } = &c.verdict else {
        return None;
    };
    let deciding = c.deciding_test()?;
    let test_json = |t: Option<HypothesisTest>| {
        t.map(|t| {
            json!({
                "test": t.test.as_str(),
                "statistic": t.statistic,
                "p_test": t.p_test,
                "p_confirmation": t.p_confirmation,
                "p_raw": t.p_raw,
                "p_adjusted": t.p_adjusted,
                "rejected": t.rejected,
            })
        })
    };
    let group_json = |g: Option<GroupStats>| {
        g.map(|g| json!({"n": g.n, "wins": g.wins, "win_rate": g.win_rate, "avg_roi": g.avg_roi}))
    };
    let edges = match c.dimension {
        Dimension::TrendStrength => report.edges.trend_strength.clone(),
        Dimension::IvRank => report.edges.iv_rank.clone(),
        _ => None,
    };
    let windows: Vec<serde_json::Value> = report
        .windows
        .iter()
        .zip(&c.window_differences)
        .map(|(w, d)| {
            json!({
                "from": w.from,
                "to": w.to,
                "trades": w.trades,
                "roi_difference": d,
            })
        })
        .collect();
    let (bucket_min, bucket_max) = numeric_bounds(c.dimension, &c.bucket);
    let context = json!({
        "dimension": c.dimension.as_str(),
        "bucket": c.bucket,
        "min": bucket_min,
        "max": bucket_max,
        "direction": c.direction(),
        "bucket_edges": edges,
        "test": deciding.test.as_str(),
        "test_description": deciding.test.describe(),
        "p_raw": deciding.p_raw,
        "p_adjusted": deciding.p_adjusted,
        "roi_test": test_json(c.roi_test),
        "win_rate_test": test_json(c.win_rate_test),
        "correction": correction_key(report.params.correction),
        "hypotheses": report.hypotheses,
        "alpha": report.params.alpha,
        "n_bucket": c.bucket_stats.n,
        "n_rest": c.rest_stats.map_or(0, |r| r.n),
        "bucket_stats": group_json(Some(c.bucket_stats)),
        "rest_stats": group_json(c.rest_stats),
        "effect": {
            "mean_roi_difference": c.roi_difference,
            "win_rate_difference": c.win_rate_difference,
            "cohens_d": c.effect.map(|e| e.cohens_d),
            "pooled_sd": c.effect.map(|e| e.pooled_sd),
        },
        "mann_whitney": c.mann_whitney.map(|m| json!({
            "p_raw": m.p_value,
            "probability_of_superiority": m.probability_of_superiority,
        })),
        "persistence": {
            "windows": windows,
            "min_ratio": report.params.persistence_min_ratio,
            "min_window_side": report.params.min_window_side,
        },
        "shadow": c.shadow.map(|s| json!({
            "bucket": group_json(s.bucket),
            "rest": group_json(s.rest),
            "roi_difference": s.roi_difference,
            "agrees": s.agrees,
        })),
        "shadow_pooled": report.shadow_pooled,
        "closed_trades": report.closed_trades,
        "tested_trades": report.tested_trades,
        "as_of": report.as_of,
    });
    Some(Pattern {
        pattern_type: c.dimension.as_str().to_string(),
        pattern_name: pattern_name.clone(),
        sample_size: i64::try_from(c.bucket_stats.n).unwrap_or(i64::MAX),
        win_rate: c.bucket_stats.win_rate,
        avg_roi: c.bucket_stats.avg_roi,
        confidence: 1.0 - deciding.p_adjusted,
        p_value: deciding.p_adjusted,
        status: PatternStatus::Active,
        date_detected: date,
        context,
    })
}

/// Display name of a correction.
pub(crate) fn correction_name(c: Correction) -> &'static str {
    match c {
        Correction::Holm => "Holm",
        Correction::BenjaminiHochberg => "Benjamini-Hochberg",
    }
}

fn correction_key(c: Correction) -> &'static str {
    match c {
        Correction::Holm => "holm",
        Correction::BenjaminiHochberg => "benjamini_hochberg",
    }
}

/// A fraction as a percentage ("3.10%").
fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// A difference of fractions in percentage points ("+2.10 pp").
fn pp(x: f64) -> String {
    format!("{:+.2} pp", x * 100.0)
}

/// The numeric bounds of an OTM or DTE bucket from its label, in the
/// strategy's units (OTM as a fraction: "18-20% OTM" → 0.18..0.20; DTE in
/// days: "12-14 DTE" → 12..14, "7 DTE" → 7..7), for the experiment engine
/// to turn a pattern into a parameter change; `None` for other dimensions.
fn numeric_bounds(dimension: Dimension, label: &str) -> (Option<f64>, Option<f64>) {
    let head = label.split_whitespace().next().unwrap_or("");
    let parts: Vec<f64> = head
        .trim_end_matches('%')
        .split('-')
        .filter_map(|x| x.parse::<f64>().ok())
        .collect();
    match (dimension, parts.as_slice()) {
        (Dimension::OtmBucket, [lo, hi]) => (Some(lo / 100.0), Some(hi / 100.0)),
        (Dimension::DteBucket, [lo, hi]) => (Some(*lo), Some(*hi)),
        (Dimension::DteBucket, [d]) => (Some(*d), Some(*d)),
        _ => (None, None),
    }
}
