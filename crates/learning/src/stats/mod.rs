//! The statistical validator: the tests the learning engine uses to decide
//! whether a difference between trades is real before it changes anything.
//!
//! Every function validates its inputs and returns a [`StatsError`] that
//! names the input and says what to do; none returns NaN. Results are
//! plain serde structs. Two-sample functions compare `a` against `b`
//! (for example a candidate parameter set against the current one), and
//! every p-value is two-sided. The fixed-sample tests match scipy 1.17 /
//! statsmodels 0.15 to 1e-6 on the golden files in `tests/golden`.
//!
//! # Which test when
//!
//! | question | function | assumes |
//! |---|---|---|
//! | do mean ROIs differ (one look, sample size fixed in advance)? | [`welch_t_test`] | independent trades; sample means roughly normal (a few dozen trades unless returns are very skewed); variances may differ |
//! | does one group tend to do better, whatever the shape? | [`mann_whitney_u`] | independent trades; tests P(X > Y) ≠ ½, **not** the means — rare large losses barely move it |
//! | is the win rate different from a baseline? | [`binomial_test`] | independent trades, one common win probability |
//! | how big is the difference? | [`effect_size`], [`cohens_d`], [`mean_difference_ci`] | Cohen's d uses the pooled SD (equal variances) |
//! | an interval without normality? | [`bootstrap_mean_ci`], [`bootstrap_mean_difference_ci`], [`bootstrap_ci`] | i.i.d. trades; at least ~20 per group, else intervals are too narrow |
//! | how many trades will an experiment need? | [`required_sample_size`], [`t_test_power`] | exact for normal data, equal variances and groups (noncentral t) |
//! | many hypotheses at once? | [`holm`] (no false adoption at all, FWER) or [`benjamini_hochberg`] (a bounded share of false leads, FDR) | Holm: any dependence; BH: independent or positively dependent tests |
//! | checking the same experiment every cycle? | [`sequential_test`], [`SequentialMonitor`] | approximately normal means, an arrival order that does not depend on outcomes |
//!
//! **Repeated looks.** The learning loop runs every 15 minutes. Running
//! [`welch_t_test`] at each cycle and acting on the first p < α inflates
//! the false-positive rate far beyond α (37% of null experiments with 200
//! looks at α = 0.05 in the `sequential` test's simulation). Use [`sequential_test`] for anything that is checked more
//! than once; keep the fixed-sample tests for a single analysis at a
//! sample size fixed in advance (for example by [`required_sample_size`]),
//! and correct families of those with [`holm`] or [`benjamini_hochberg`].
//! The always-valid p-values of [`sequential_test`] may themselves be fed
//! to [`holm`] when several experiments run at once.
//!
//! **Trades are not always independent.** Puts sold on the same day in
//! correlated underlyings win or lose together; every test here then
//! overstates the evidence. Group such trades (for example by day) before
//! testing when it matters.
//!
//! # Numerics
//!
//! Tail probabilities are computed directly from statrs' special functions
//! (regularized incomplete beta for Student's t, erfc for the normal, ln
//! binomial coefficients for the binomial), never as `1 − cdf`, so small
//! p-values keep their relative accuracy.

mod binomial;
mod bootstrap;
mod dist;
mod effect;
mod error;
mod multiple;
mod power;
mod sample;
mod sequential;
mod two_sample;

pub use binomial::{BinomialTest, binomial_ci, binomial_test};
pub use bootstrap::{
    BootstrapConfig, MIN_RESAMPLES, bootstrap_ci, bootstrap_mean_ci, bootstrap_mean_difference_ci,
};
pub use effect::{ConfidenceInterval, EffectSize, cohens_d, effect_size, mean_difference_ci};
pub use error::{StatsError, StatsResult};
pub use multiple::{Correction, MultipleTesting, benjamini_hochberg, holm};
pub use power::{MAX_SAMPLE_SIZE, SampleSize, required_sample_size, t_test_power};
pub use sequential::{
    SequentialConfig, SequentialDecision, SequentialMonitor, SequentialTest, sequential_test,
};
pub use two_sample::{MannWhitneyU, WelchTTest, mann_whitney_u, welch_t_test};
