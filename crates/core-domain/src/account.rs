//! Positions and account snapshots, as the broker reports them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Contract, Money, Price};

/// A holding at the broker. Short positions have negative quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub contract: Contract,
    /// Contracts or shares; negative for short.
    pub quantity: i64,
    /// Average cost per share (per share of underlying for options).
    pub avg_cost: Price,
    pub market_price: Option<Price>,
    pub updated_at: DateTime<Utc>,
}

impl Position {
    /// Market value at `market_price` (negative for a short option).
    pub fn market_value(&self) -> Option<Money> {
        self.market_price
            .map(|p| p.notional(self.quantity, self.contract.multiplier()))
    }
}

/// The account at one moment (IBKR account summary tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub time: DateTime<Utc>,
    pub account: String,
    /// Cash plus the market value of all positions.
    pub net_liquidation: Money,
    pub cash: Money,
    /// Equity with loan value minus maintenance margin.
    pub excess_liquidity: Money,
    pub initial_margin: Money,
    pub maintenance_margin: Money,
    pub realized_pnl: Money,
    pub unrealized_pnl: Money,
}

impl AccountSnapshot {
    /// Initial margin as a share of net liquidation (0 when net liq ≤ 0 is
    /// reported as 1.0, i.e. fully used).
    pub fn margin_utilization(&self) -> f64 {
        if self.net_liquidation.cents() <= 0 {
            return 1.0;
        }
        self.initial_margin.cents() as f64 / self.net_liquidation.cents() as f64
    }
}

/// What an order would do to margin (IBKR what-if / `analyze()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginImpact {
    pub initial_margin_before: Money,
    pub initial_margin_change: Money,
    pub initial_margin_after: Money,
    pub maintenance_margin_before: Money,
    pub maintenance_margin_change: Money,
    pub maintenance_margin_after: Money,
    /// Estimated commission, when the broker says.
    pub commission: Option<Money>,
}
