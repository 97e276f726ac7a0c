//! The strategy's parameters. Every range is inclusive at both ends: an
//! option exactly 15.00% out of the money, bid exactly $0.30, or exactly 7
//! days to expiry qualifies.

use serde::{Deserialize, Serialize};

/// Whether entries require an uptrend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendFilter {
    /// price > SMA20 > SMA50 on daily closes.
    Uptrend,
    None,
}

/// Everything the naked-put rules read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NakedPutParams {
    pub name: String,
    /// Out of the money as a fraction of the underlying: (S − K) / S.
    pub otm_min: f64,
    pub otm_max: f64,
    /// Premium per share at the bid, dollars.
    pub premium_min: f64,
    pub premium_max: f64,
    /// Calendar days to expiry.
    pub dte_min: i64,
    pub dte_max: i64,
    /// Contracts per position.
    pub contracts: i64,
    pub max_positions: i64,
    pub trend_filter: TrendFilter,
    /// Underlying price range, dollars.
    pub price_min: f64,
    pub price_max: f64,
    /// Smallest average daily share volume (20 sessions) of the underlying,
    /// where the bars carry volume.
    pub min_avg_volume: f64,
    /// Liquidity: smallest open interest, widest spread as a fraction of the
    /// mid, per option.
    pub min_open_interest: i64,
    pub max_spread_pct: f64,
    /// Profit target: close when the cost to close ≤ (1 − target) × premium.
    pub profit_target: f64,
    /// Stop: close when the loss reaches this multiple of the premium
    /// (−2.0: cost to close ≥ 3 × premium).
    pub stop_loss: f64,
    /// Close when days to expiry ≤ this.
    pub time_exit_dte: i64,
}

impl Default for NakedPutParams {
    fn default() -> Self {
        NakedPutParams {
            name: "Naked Put - Weekly".into(),
            otm_min: 0.15,
            otm_max: 0.20,
            premium_min: 0.30,
            premium_max: 0.50,
            dte_min: 7,
            dte_max: 14,
            contracts: 5,
            max_positions: 10,
            trend_filter: TrendFilter::Uptrend,
            price_min: 10.0,
            price_max: 1_000.0,
            min_avg_volume: 500_000.0,
            min_open_interest: 100,
            max_spread_pct: 0.30,
            profit_target: 0.50,
            stop_loss: -2.0,
            time_exit_dte: 3,
        }
    }
}

impl NakedPutParams {
    /// The cost-to-close multiple of the entry premium at which the stop
    /// fires: 1 − stop_loss (−2.00 → 3×).
    pub fn stop_multiple(&self) -> f64 {
        1.0 - self.stop_loss
    }

    /// The cost-to-close fraction of the entry premium at which the profit
    /// target fires: 1 − profit_target (0.50 → 50%).
    pub fn target_fraction(&self) -> f64 {
        1.0 - self.profit_target
    }
}
