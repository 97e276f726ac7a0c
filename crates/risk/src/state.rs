//! The trading state and its recorded transitions.

use chrono::{DateTime, Utc};
use core_domain::{AuditEntry, DecisionKind, DecisionRecord};
use serde::{Deserialize, Serialize};

pub use core_domain::TradingState;

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
