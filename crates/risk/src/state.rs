//! The trading state and its recorded transitions.

use std::fmt;

use chrono::{DateTime, Utc};
use core_domain::{AuditEntry, DecisionKind, DecisionRecord};
use serde::{Deserialize, Serialize};

/// Whether new risk may be taken. Ordered by severity:
/// `Active < ReduceOnly < Halted`; circuit breakers only ever escalate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Opening orders pass if they pass every limit.
    #[default]
    Active,
    /// Only orders that reduce risk pass.
    ReduceOnly,
    /// Only orders that reduce risk pass, until an operator resumes.
    Halted,
}

impl TradingState {
    pub fn as_str(self) -> &'static str {
        match self {
            TradingState::Active => "active",
            TradingState::ReduceOnly => "reduce_only",
            TradingState::Halted => "halted",
        }
    }
}

impl fmt::Display for TradingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One transition of the trading state, with who caused it and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: TradingState,
    pub to: TradingState,
    /// Why, with the numbers ("daily loss -2.00% <= -2.00% of net liquidation").
    pub cause: String,
    /// `risk` for a circuit breaker, `operator:<name>` or a binary otherwise.
    pub actor: String,
    pub time: DateTime<Utc>,
}

impl StateChange {
    /// The decision record to append to the audit log.
    pub fn decision_record(&self) -> DecisionRecord {
        DecisionRecord::new(
            self.time,
            DecisionKind::TradingState,
            "trading_state",
            self.to.as_str(),
            self.cause.clone(),
        )
        .with_context(serde_json::json!({
            "from": self.from.as_str(),
            "to": self.to.as_str(),
            "actor": self.actor,
        }))
    }

    /// The audit line (`risk.state_change`) for this transition.
    pub fn audit_entry(&self) -> AuditEntry {
        AuditEntry::new(self.time, self.actor.clone(), "risk.state_change")
            .context(serde_json::json!({ "from": self.from.as_str(), "cause": self.cause }))
            .decision(self.to.as_str())
    }
}
