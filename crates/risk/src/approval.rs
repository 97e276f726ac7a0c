//! The approval type the executor accepts, and the refusal.

use core_domain::{DecisionRecord, Money, OrderIntent, Symbol};
use serde::Serialize;

use crate::StateChange;

/// An item that passed the [`RiskGovernor`](crate::RiskGovernor).
///
/// Its fields are private and it has no public constructor, no `Clone` and
/// no `Deserialize`: outside this crate the only way to get one is
/// [`RiskGovernor::check`](crate::RiskGovernor::check), so an executor that
/// takes `RiskApproved<OrderIntent>` cannot be handed an unchecked order.
#[derive(Debug, PartialEq, Serialize)]
pub struct RiskApproved<T> {
    item: T,
    decision: DecisionRecord,
}

impl<T> RiskApproved<T> {
    pub(crate) fn new(item: T, decision: DecisionRecord) -> Self {
        RiskApproved { item, decision }
    }

    pub fn inner(&self) -> &T {
        &self.item
    }

    pub fn into_inner(self) -> T {
        self.item
    }

    /// The approval with every limit compared, for the audit log.
    pub fn decision(&self) -> &DecisionRecord {
        &self.decision
    }

    pub fn into_parts(self) -> (T, DecisionRecord) {
        (self.item, self.decision)
    }
}

impl RiskApproved<OrderIntent> {
    pub fn intent(&self) -> &OrderIntent {
        &self.item
    }
}

/// An order the governor refused, with every limit it broke.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskRefused {
    pub intent: OrderIntent,
    /// Never empty.
    pub reasons: Vec<RiskRefusal>,
    /// The refusal with every limit compared (kind `risk_refusal`); boxed to
    /// keep the `Err` variant small.
    pub decision: Box<DecisionRecord>,
    /// Circuit breakers this check tripped (also in the governor's history).
    pub state_changes: Vec<StateChange>,
}

/// One limit an opening order broke, with the numbers compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum RiskRefusal {
    TradingHalted,
    ReduceOnly,
    /// Only sell-to-open orders of puts open positions; anything else is
    /// refused unless it reduces risk.
    UnsupportedOrder {
        why: String,
    },
    /// Something a limit needs is missing or unusable (fail closed).
    MissingData {
        limit: String,
        what: String,
    },
    MaxPositions {
        after: i64,
        max: i64,
    },
    MaxNewPerDay {
        after: i64,
        max: i64,
    },
    PositionLossSizing {
        max_loss: Money,
        limit: Money,
    },
    DailyLossBreaker {
        change: f64,
        threshold: f64,
    },
    ApiErrorBreaker {
        errors: u32,
        max: u32,
    },
    VarLimit {
        var_95: Money,
        limit: Money,
    },
    SectorConcentration {
        sector: String,
        share: f64,
        max: f64,
    },
    Correlation {
        with: Symbol,
        correlation: f64,
        max: f64,
    },
    MarginUtilization {
        utilization: f64,
        max: f64,
    },
}
