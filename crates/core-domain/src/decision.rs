//! Decision records and the audit log: every decision has a reason on record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::macros::string_enum;

string_enum! {
    /// What kind of decision was taken.
    DecisionKind {
        /// A position was opened (or an order to open it sent).
        Entry => "entry",
        /// An opportunity was looked at and not taken.
        Skip => "skip",
        Exit => "exit",
        /// Hold an open position another cycle.
        Hold => "hold",
        /// The risk governor refused an order.
        RiskRefusal => "risk_refusal",
        /// The trading state changed (active, reduce-only, halted).
        TradingState => "trading_state",
        ParameterChange => "parameter_change",
        /// The engine chose what to do this cycle.
        Action => "action",
    }
}

/// One criterion a decision weighed: its value, the threshold and whether it
/// passed. Values are text so that ranges, dates and numbers all fit; the
/// numeric form is kept too when there is one, for analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub name: String,
    pub value: String,
    pub threshold: String,
    pub passed: bool,
    pub numeric_value: Option<f64>,
}

impl Criterion {
    /// A numeric criterion, e.g. `Criterion::number("otm_pct", 0.17, "0.15..=0.20", true)`.
    pub fn number(name: &str, value: f64, threshold: impl Into<String>, passed: bool) -> Self {
        Criterion {
            name: name.into(),
            value: format!("{value}"),
            threshold: threshold.into(),
            passed,
            numeric_value: Some(value),
        }
    }

    pub fn text(
        name: &str,
        value: impl Into<String>,
        threshold: impl Into<String>,
        passed: bool,
    ) -> Self {
        Criterion {
            name: name.into(),
            value: value.into(),
            threshold: threshold.into(),
            passed,
            numeric_value: None,
        }
    }
}

/// What was decided, about what, why, and the numbers compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub time: DateTime<Utc>,
    pub kind: DecisionKind,
    /// What the decision is about: a symbol, a contract key, a trade id.
    pub subject: String,
    /// The outcome in a word or two ("enter", "skip", "exit:profit_target").
    pub decision: String,
    /// One sentence a person can read.
    pub reason: String,
    pub criteria: Vec<Criterion>,
    /// Anything else worth keeping (quotes, parameters, experiment arm).
    pub context: serde_json::Value,
}

impl DecisionRecord {
    pub fn new(
        time: DateTime<Utc>,
        kind: DecisionKind,
        subject: impl Into<String>,
        decision: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        DecisionRecord {
            time,
            kind,
            subject: subject.into(),
            decision: decision.into(),
            reason: reason.into(),
            criteria: Vec::new(),
            context: serde_json::Value::Null,
        }
    }

    pub fn with_criteria(mut self, criteria: Vec<Criterion>) -> Self {
        self.criteria = criteria;
        self
    }

    pub fn with_context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    /// True when every criterion passed.
    pub fn all_passed(&self) -> bool {
        self.criteria.iter().all(|c| c.passed)
    }
}

/// One line of the durable audit log: who did what, in what context, what
/// was decided and how it turned out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: DateTime<Utc>,
    /// Who acted: `traderd`, `trader-cli`, `risk`, `operator:<name>`.
    pub actor: String,
    /// What was done: `order.sent`, `emergency_stop`, `config.loaded`.
    pub action: String,
    pub context: serde_json::Value,
    pub decision: Option<String>,
    pub outcome: Option<String>,
}

impl AuditEntry {
    pub fn new(time: DateTime<Utc>, actor: impl Into<String>, action: impl Into<String>) -> Self {
        AuditEntry {
            time,
            actor: actor.into(),
            action: action.into(),
            context: serde_json::Value::Null,
            decision: None,
            outcome: None,
        }
    }

    pub fn context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    pub fn decision(mut self, decision: impl Into<String>) -> Self {
        self.decision = Some(decision.into());
        self
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }
}
