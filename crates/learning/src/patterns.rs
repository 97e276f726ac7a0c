//! The pattern detector: which kinds of trades do better or worse than the
//! rest, with p-values corrected for every comparison made, a minimum
//! effect, and a persistence check; and the lifecycle of the patterns it
//! stores (inserted once, kept while re-detected, retired when not).
//!
//! # What is compared
//!
//! Only **closed trades with a finite ROI** count (open trades and closed
//! trades without a margin are left out and counted in the report). A
//! trade **wins** when its ROI is positive, i.e. its P&L net of commissions
//! is. Below [`PatternParams::min_trades`] such trades nothing is tested
//! and the report says so.
//!
//! Each trade falls in one bucket per [`Dimension`] (OTM %, DTE, sector,
//! entry weekday and hour in New York, VIX regime, market regime, trend
//! strength tercile, IV rank quartile — the last two from an optional
//! [`FeatureMap`]), or in none when the value is unknown. Trades with an
//! unknown value are left out of that dimension entirely (neither bucket
//! nor rest). For each bucket, **the bucket is compared against the rest**
//! of the dimension's known trades, when both hold at least
//! [`PatternParams::min_bucket`] trades. A dimension with exactly two
//! buckets is compared once (the second comparison would be the first one
//! mirrored).
//!
//! # The tests
//!
//! Each comparison makes two hypotheses:
//!
//! * **mean ROI**: [`welch_t_test`] on the ROIs (unequal variances). When
//!   its p-value is ≤ α it is confirmed by [`welch_permutation_p`] (the
//!   same statistic over [`PatternParams::permutations`] seeded random
//!   relabellings) and the larger of the two p-values is used. The t
//!   distribution's tail is not to be trusted at the p ≈ 10⁻⁴ a corrected
//!   family needs when returns are skewed: a small bucket that happened to
//!   miss the rare large losses has a high mean *and* a small variance, so
//!   its t is far too large (one null set gave Welch p = 8·10⁻⁸ where the
//!   permutation test gives 2·10⁻⁴). [`mann_whitney_u`] is reported beside
//!   it as a robustness check (it tests P(bucket > rest) ≠ ½, not the
//!   means, so it is not part of the decision), with [`effect_size`]
//!   (difference and Cohen's d);
//! * **win rate**: the pooled [`two_proportion_z_test`] when every expected
//!   count n·p̂ and n·(1 − p̂) is at least 5 — confirmed, when its p ≤ α,
//!   by [`fisher_exact_test`] (the larger p is used) — else Fisher's exact
//!   test alone (the z approximation is poor at the high win rates of short
//!   puts in small buckets). Comparisons where every trade won (or lost)
//!   make no win-rate hypothesis.
//!
//! All p-values of the run — both hypotheses of every comparison of every
//! dimension — form **one family**, corrected with
//! [`PatternParams::correction`] (Benjamini-Hochberg by default, Holm for
//! family-wise control). A comparison becomes a pattern when:
//!
//! 1. one of its hypotheses is rejected after the correction — the ROI
//!    test, or the win-rate test when the win rate moves the same way as
//!    the mean ROI;
//! 2. |mean ROI difference| ≥ [`PatternParams::min_effect_roi`];
//! 3. it **persists**: the tested trades are split chronologically (by
//!    entry time) into [`PatternParams::persistence_windows`] windows of
//!    equal count (two halves by default); in every window the bucket and
//!    the rest each hold at least [`PatternParams::min_window_side`]
//!    trades, and the mean ROI difference has the same sign as over all
//!    trades and at least [`PatternParams::persistence_min_ratio`] (one
//!    half) of its size. An effect confined to one period is a regime, not
//!    a pattern.
//!
//! The pattern's `pattern_type` is the dimension ([`Dimension::as_str`]),
//! its `pattern_name` the bucket and direction ("18-20% OTM outperforms",
//! "entry on Friday underperforms"), `sample_size`, `win_rate` and
//! `avg_roi` are the bucket's, `p_value` is the **adjusted** p-value of the
//! deciding test and `confidence` is 1 − that p-value. The context holds
//! the rest: raw and adjusted p-values of both tests, the test used, the
//! effect sizes, the counts, each window's effect. [`DetectionReport`]
//! lists every comparison, with why it was not tested or rejected.
//!
//! **Null behaviour.** On 300 trades with no effect and independent
//! dimensions (39 comparisons, 78 hypotheses a run), 50 seeded repetitions
//! gave 1 run with a false pattern (1 pattern in all; see
//! `tests/patterns.rs`), against 4 runs before the exact confirmations
//! were added. Under the global null the correction alone bounds the
//! chance of any false pattern at about α; the effect and persistence
//! requirements lower it further.
//!
//! **Caveats.** The tests assume independent trades. Puts sold on the same
//! day in correlated underlyings win or lose together, which overstates the
//! evidence; the persistence requirement is the main defence. Bucket edges
//! of the trend and IV-rank dimensions are quantiles of the real trades'
//! values at each run, so their names ("IV rank Q4") stay stable while the
//! edges (in the context) move.
//!
//! # Shadow trades
//!
//! Shadow trades (hypothetical outcomes of candidates not taken) may be
//! passed as a second set ([`detect_with_shadow`]). By default they are
//! **reported apart**: each comparison carries the shadow bucket's and
//! rest's counts, win rates and mean ROIs and whether the shadow difference
//! points the same way as the real one, and nothing about them enters a
//! p-value, a count or a pattern's numbers. With
//! [`PatternParams::pool_shadow`] set they are pooled with the real trades
//! in the tests (and the persistence windows, sample sizes and rates);
//! only do so when the shadow fills are believed to be as realistic as
//! real ones. [`PatternParams::min_trades`] always counts real trades.
//!
//! # Lifecycle
//!
//! [`refresh`] runs the detector and reconciles the `patterns` table
//! through [`LearningRepository`](core_domain::LearningRepository): a
//! detected pattern with no active row of the same `pattern_type` and
//! `pattern_name` is inserted; one that has a row is kept (the row is not
//! rewritten — the repository has no update — and the report shows the new
//! numbers); an active row not re-detected in the run is retired at once.
//! Every insertion and retirement is a learning event with its reasoning.
//! With fewer than `min_trades` trades nothing is changed.

mod buckets;
mod detect;
mod permutation;
mod proportion;
mod refresh;

use serde::{Deserialize, Serialize};

use crate::error::LearningError;
use crate::stats::Correction;
#[cfg(doc)]
use crate::stats::{effect_size, mann_whitney_u, welch_t_test};

pub use buckets::{Dimension, FeatureMap, QuantileEdges, TradeFeatures};
pub use detect::{
    Comparison, DetectionOutcome, DetectionReport, GroupStats, HypothesisTest, RejectReason,
    ShadowSummary, SkipReason, TestKind, Verdict, WindowSpan, detect, detect_with_shadow,
};
pub use permutation::welch_permutation_p;
pub use proportion::{TwoProportionZ, fisher_exact_test, two_proportion_z_test};
pub use refresh::{
    RefreshReport, RetiredPattern, StoredPattern, apply_detection, refresh, refresh_with_shadow,
};

/// Settings of the pattern detector. [`Default`] gives the documented
/// values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatternParams {
    /// Closed real trades (with an ROI) needed before anything is tested
    /// (30).
    pub min_trades: usize,
    /// Trades needed in the bucket, and in the rest, for a comparison
    /// (10; at least 2).
    pub min_bucket: usize,
    /// Level of the corrected decisions (0.05).
    pub alpha: f64,
    /// Correction across all hypotheses of a run (Benjamini-Hochberg).
    pub correction: Correction,
    /// Smallest |mean ROI difference| worth a pattern (0.005 = half a
    /// percentage point of ROI).
    pub min_effect_roi: f64,
    /// Chronological windows of equal trade count the effect must hold in
    /// (2: both halves; 1 turns the persistence check off).
    pub persistence_windows: usize,
    /// Share of the overall effect each window must reach, with the same
    /// sign (0.5).
    pub persistence_min_ratio: f64,
    /// Trades needed in the bucket, and in the rest, within each window
    /// (3); fewer and persistence cannot be shown.
    pub min_window_side: usize,
    /// Width of the OTM buckets in percentage points (2: 14-16%, 16-18%,
    /// 18-20%, …).
    pub otm_bucket_width_pct: u32,
    /// Width of the DTE buckets in calendar days (3: 6-8, 9-11, 12-14, …).
    pub dte_bucket_width: u32,
    /// Pool shadow trades with real ones in the tests (false: shadow
    /// outcomes are reported apart and never enter a p-value).
    pub pool_shadow: bool,
    /// Relabellings of the permutation test that confirms a Welch p-value
    /// ≤ α (9,999: the smallest permutation p-value is 10⁻⁴, below the
    /// α / m a family of m ≤ 500 hypotheses needs at α = 0.05).
    pub permutations: usize,
    /// Base seed of the permutation tests (each comparison mixes in its own
    /// dimension and bucket).
    pub permutation_seed: u64,
}

impl Default for PatternParams {
    fn default() -> Self {
        PatternParams {
            min_trades: 30,
            min_bucket: 10,
            alpha: 0.05,
            correction: Correction::BenjaminiHochberg,
            min_effect_roi: 0.005,
            persistence_windows: 2,
            persistence_min_ratio: 0.5,
            min_window_side: 3,
            otm_bucket_width_pct: 2,
            dte_bucket_width: 3,
            pool_shadow: false,
            permutations: 9_999,
            permutation_seed: 0,
        }
    }
}

impl PatternParams {
    /// Checks every parameter's range.
    ///
    /// # Errors
    /// [`LearningError::InvalidParameter`] naming the first parameter out
    /// of range.
    pub fn validate(&self) -> Result<(), LearningError> {
        let bad = |name, value: String, requirement| {
            Err(LearningError::InvalidParameter {
                name,
                value,
                requirement,
            })
        };
        if self.min_trades < 1 {
            return bad("min_trades", self.min_trades.to_string(), "at least 1");
        }
        if self.min_bucket < 2 {
            return bad(
                "min_bucket",
                self.min_bucket.to_string(),
                "at least 2 (Welch's t-test needs two trades a side)",
            );
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("alpha", self.alpha.to_string(), "strictly between 0 and 1");
        }
        if !(self.min_effect_roi.is_finite() && self.min_effect_roi >= 0.0) {
            return bad(
                "min_effect_roi",
                self.min_effect_roi.to_string(),
                "a finite number ≥ 0",
            );
        }
        if self.persistence_windows < 1 {
            return bad(
                "persistence_windows",
                self.persistence_windows.to_string(),
                "at least 1 (1 turns the persistence check off)",
            );
        }
        if !(self.persistence_min_ratio.is_finite()
            && (0.0..=1.0).contains(&self.persistence_min_ratio))
        {
            return bad(
                "persistence_min_ratio",
                self.persistence_min_ratio.to_string(),
                "between 0 and 1",
            );
        }
        if self.permutations < 99 {
            return bad(
                "permutations",
                self.permutations.to_string(),
                "at least 99 (9,999 recommended)",
            );
        }
        if self.min_window_side < 1 {
            return bad(
                "min_window_side",
                self.min_window_side.to_string(),
                "at least 1",
            );
        }
        if self.otm_bucket_width_pct < 1 {
            return bad(
                "otm_bucket_width_pct",
                self.otm_bucket_width_pct.to_string(),
                "at least 1 percentage point",
            );
        }
        if self.dte_bucket_width < 1 {
            return bad(
                "dte_bucket_width",
                self.dte_bucket_width.to_string(),
                "at least 1 day",
            );
        }
        Ok(())
    }
}
