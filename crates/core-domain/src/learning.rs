//! What the learning engine records: experiments, patterns, learning events.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::macros::string_enum;
use crate::{ExitReason, Money, Price, Symbol, TradeStatus};

string_enum! {
    /// Where an experiment stands.
    ExperimentStatus {
        Active => "active",
        /// Enough samples and analysed, no decision applied yet.
        Complete => "complete",
        /// The test value became the new parameter value.
        Adopted => "adopted",
        Rejected => "rejected",
        /// Adopted, then undone because performance got significantly worse.
        RolledBack => "rolled_back",
    }
}

string_enum! {
    /// Whether a pattern still holds.
    PatternStatus {
        Active => "active",
        Retired => "retired",
    }
}

string_enum! {
    /// What happened in the learning engine.
    LearningEventType {
        PatternDetected => "pattern_detected",
        PatternRetired => "pattern_retired",
        ExperimentStarted => "experiment_started",
        /// A look at a running experiment whose sample grew (or a check of
        /// an adopted change), with its numbers and why it goes on.
        ExperimentAnalyzed => "experiment_analyzed",
        ExperimentConcluded => "experiment_concluded",
        ParameterAdopted => "parameter_adopted",
        ParameterRolledBack => "parameter_rolled_back",
        ProposalReceived => "proposal_received",
    }
}

/// An A/B test of one strategy parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub hypothesis: String,
    pub parameter_name: String,
    /// Parameter values as text (a number, or a range such as `0.15..0.20`).
    pub control_value: String,
    pub test_value: String,
    /// Share of new opportunities assigned to the test arm (0.20).
    pub allocation: f64,
    /// Closed trades needed per arm before any decision.
    pub min_samples: i64,
    pub status: ExperimentStatus,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub control_trades: i64,
    pub test_trades: i64,
    pub p_value: Option<f64>,
    pub effect_size: Option<f64>,
    pub decision: Option<String>,
}

/// A regularity found in closed trades (or shadow trades).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// The dimension, e.g. `otm_bucket`, `sector`, `weekday`.
    pub pattern_type: String,
    /// e.g. "18-20% OTM outperforms".
    pub pattern_name: String,
    pub sample_size: i64,
    pub win_rate: f64,
    pub avg_roi: f64,
    pub confidence: f64,
    pub p_value: f64,
    pub status: PatternStatus,
    pub date_detected: NaiveDate,
    /// Free-form numbers behind the pattern (bucket bounds, comparison group).
    pub context: serde_json::Value,
}

/// One step of the learning engine, with its reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningEvent {
    pub event_type: LearningEventType,
    pub event_date: DateTime<Utc>,
    pub pattern_name: Option<String>,
    pub confidence: Option<f64>,
    pub sample_size: Option<i64>,
    pub parameter_changed: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reasoning: String,
}

string_enum! {
    /// Why an evaluated opportunity became a shadow trade.
    ShadowOrigin {
        /// Proposed and sent (the real trade runs beside it).
        Taken => "taken",
        /// Left out by a rule of the strategy (the reason is kept).
        Skipped => "skipped",
        /// Proposed, refused by the risk governor.
        Refused => "refused",
        /// Priced under an experiment arm's other parameter value.
        Arm => "arm",
    }
}

/// An opportunity the strategy evaluated, followed to its outcome from
/// market data as if it had been sold at the bid (one contract) and
/// closed by the exit rules at the touch. Evidence for learning, stored and
/// reported apart from real trades and never counted as P&L.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowTrade {
    /// `S-<contract key>`: one per contract, its first evaluation.
    pub shadow_id: String,
    pub created_at: DateTime<Utc>,
    pub symbol: Symbol,
    pub sector: Option<String>,
    pub strike: Price,
    pub expiration: NaiveDate,
    /// The bid when it was evaluated: the premium a sale would have got.
    pub entry_premium: Price,
    pub entry_underlying_price: Price,
    pub otm_pct: f64,
    pub dte: i64,
    /// Reg-T margin of one contract at entry, for ROI.
    pub margin_at_entry: Money,
    pub origin: ShadowOrigin,
    /// The rule or limit that left it out, or the decision that took it.
    pub reason: String,
    pub experiment_id: Option<String>,
    pub experiment_arm: Option<String>,
    pub vix_at_entry: Option<f64>,
    pub status: TradeStatus,
    pub exit_time: Option<DateTime<Utc>>,
    pub exit_premium: Option<Price>,
    pub exit_reason: Option<ExitReason>,
    /// Premium − exit premium, × 100 (one contract, no commissions).
    pub profit_loss: Option<Money>,
    /// Profit over margin at entry.
    pub roi: Option<f64>,
}
