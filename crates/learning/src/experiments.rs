//! The experiment engine: A/B tests of one strategy parameter, from a
//! pattern (or a proposal of the optimizer or the analyst) to a governed
//! adoption — and back, if the change turns out worse.
//!
//! # The life of an experiment
//!
//! ```text
//! pattern ─► propose_from_pattern ─► start ─► (each opportunity) assign ─► tag the trade
//!                                     │
//!            (each cycle) analyze ─► record_analysis ─► Continue … ─► Adopt ─► adopt ─► check_rollback ─► confirm_adoption
//!                                                            │          │ too soon: deferred (complete)     └► rollback
//!                                                            └► Reject ─► reject
//! ```
//!
//! 1. **Propose.** [`propose_from_pattern`] maps a pattern about the OTM %,
//!    the premium or the days to expiry to one bound of the strategy's
//!    range (an outperforming OTM 18–20% bucket within 15–20%:
//!    `otm_min` 0.15 → 0.18), or says why it cannot ([`NoProposal`]).
//!    [`propose`] turns any [`Proposal`] into an [`Experiment`](core_domain::Experiment): control =
//!    the current value, test = the target clamped to a 20% relative shift,
//!    allocation 0.20, 30 trades per arm, a deterministic id.
//! 2. **Start.** [`start`] refuses a second experiment on the same
//!    parameter, writes the row and `experiment_started` with the design.
//! 3. **Assign.** Each new opportunity goes to control or test by
//!    [`assign`]: a fixed, seeded hash of (seed, experiment id, opportunity
//!    key) — no per-process randomness, the same on every run and platform —
//!    below the allocation means test. [`Assignment`] gives the arm's
//!    parameters and tags the trade (`experiment_id`, `experiment_arm`).
//! 4. **Analyse.** [`analyze`] (pure, call it every cycle) runs the
//!    always-valid sequential test ([`crate::stats::sequential_test`]) on
//!    the ROI of the closed real trades by arm, once each arm has 30;
//!    [`record_analysis`] keeps the numbers on the row and appends
//!    `experiment_analyzed` when the sample grew.
//! 5. **Decide.** Adopt only when the test is significant at α = 0.05
//!    **and** the gain in mean ROI exceeds 0.5 pp (in real trades alone as
//!    well); reject when the test arm is significantly worse, or when the
//!    smaller arm reaches 150 trades without an adoption.
//! 6. **Govern.** [`adopt`] asks the [`Governor`]: at most one parameter
//!    change (adoption or rollback) per 30 days, at most a 20% shift, and
//!    only against the value still in force. Too soon: the experiment is
//!    `complete` and waits; otherwise forbidden: `rejected`. An adoption
//!    returns the [`ParameterChange`] to apply — nothing here changes a
//!    parameter by itself.
//! 7. **Watch.** [`check_rollback`] compares the trades after the adoption
//!    with the control arm's: significantly worse (sequential test while
//!    the 30-trade window fills, a Welch test when it is full) →
//!    [`rollback`] restores the control value; otherwise
//!    [`confirm_adoption`] ends the watch.
//!
//! Every step with a consequence writes `learning_history` with its
//! reasoning and numbers; each event's reasoning starts with
//! `experiment <id>`, its `pattern_name` is the experiment's name (for a
//! pattern's experiment, the pattern's name) and `parameter_changed`,
//! `old_value`, `new_value` name the parameter and the two values.
//!
//! # Decisions
//!
//! * **Parameters are named numbers** ([`ParameterSet`], the fields of
//!   `NakedPutParams` in [`PARAMETERS`]): `learning` does not depend on
//!   the strategy crate. The caller converts through serde
//!   ([`ParameterSet::from_json`], [`ParameterSet::write_json`]).
//! * **Continuous monitoring is safe.** The sequential test keeps the
//!   false-adoption rate ≤ α however often the loop looks; the
//!   `experiments` integration test analyses 200 null experiments after
//!   every trade and counts the adoptions.
//! * **Shadow evidence** ([`ShadowPolicy`]) is by default reported but not
//!   counted: shadow fills are modelled and share days with the real
//!   trades. [`ShadowPolicy::Supplement`] lets it add at most one shadow
//!   outcome per real trade, only after both arms have their 30 real
//!   trades, and adoption still needs the real trades alone to clear
//!   the 0.5 pp gain. Real-trade evidence is always required.
//! * **A budget ends every experiment**: 150 trades in the smaller arm
//!   without proof of a sufficient gain is a rejection, so a parameter is
//!   not tied up forever by an effect too small to matter.
//! * **Rollbacks are not governed**: they restore the value in force
//!   before, at any time, and restart the 30-day clock.
//!
//! # Assumptions and measured error rates
//!
//! Trades of an experiment are independent and their order of arrival
//! does not depend on their outcome (puts sold the same day in correlated
//! names violate the first; the test then overstates the evidence). An
//! opportunity belongs to at most one experiment; with several
//! experiments running, the caller picks one per opportunity.
//!
//! False adoptions of null experiments analysed after every trade until a
//! decision (the defaults; the `experiments` integration test,
//! `EXPERIMENTS_NULL_RUNS=2000`): normal ROIs **0.7%** of 2,000 runs (and
//! 0.9% wrongly "significantly worse"); put-like ROIs (85% small gains,
//! 15% large losses) **4.9%**, all on the adoption side. With a 20%
//! allocation the small test arm more often misses the rare large losses,
//! so its mean looks better and its spread smaller than they are, and the
//! Welch-based statistic overstates the gain: the bound α then holds only
//! just. `min_samples = 60` brought that rate to 2.4% (1,000 runs),
//! `alpha = 0.025` only to 3.2%: for strongly skewed ROIs raise
//! `min_samples`.

mod analysis;
mod assign;
mod error;
mod governance;
mod journal;
mod parameters;
mod params;
mod propose;

pub use analysis::{Analysis, ArmSummary, Decision, ShadowOutcome, analyze};
pub use assign::{Arm, Assignment, arm_value, assign, assignment_hash, assignment_point};
pub use error::{ExperimentError, ExperimentResult};
pub use governance::{
    GovernanceRefusal, Governor, RollbackCheck, RollbackDecision, check_rollback,
};
pub use journal::{
    AdoptionOutcome, CONFIRMED_PREFIX, HISTORY_LOOKBACK, adopt, confirm_adoption, history_of,
    is_confirmed, record_analysis, reject, rollback, start,
};
pub use parameters::{
    PARAMETERS, ParameterChange, ParameterSet, ParameterSpec, VALUE_TOLERANCE, format_value,
    parameter_spec,
};
pub use params::{ExperimentParams, ShadowPolicy};
pub use propose::{NoProposal, Proposal, experiment_id, propose, propose_from_pattern};
