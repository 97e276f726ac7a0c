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

/// The numeric parameters by name, as experiments and the optimizer see
/// them (DTE and time exit are whole days).
pub const TUNABLE: [&str; 9] = [
    "otm_min",
    "otm_max",
    "premium_min",
    "premium_max",
    "dte_min",
    "dte_max",
    "profit_target",
    "stop_loss",
    "time_exit_dte",
];

impl NakedPutParams {
    /// The [`TUNABLE`] parameters and their values.
    pub fn tunable(&self) -> std::collections::BTreeMap<String, f64> {
        TUNABLE
            .iter()
            .filter_map(|n| self.get(n).map(|v| (n.to_string(), v)))
            .collect()
    }

    /// The value of a [`TUNABLE`] parameter.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "otm_min" => self.otm_min,
            "otm_max" => self.otm_max,
            "premium_min" => self.premium_min,
            "premium_max" => self.premium_max,
            "dte_min" => self.dte_min as f64,
            "dte_max" => self.dte_max as f64,
            "profit_target" => self.profit_target,
            "stop_loss" => self.stop_loss,
            "time_exit_dte" => self.time_exit_dte as f64,
            _ => return None,
        })
    }

    /// A copy with a [`TUNABLE`] parameter set (day counts rounded to the
    /// nearest day); an unknown name is an error.
    pub fn with(&self, name: &str, value: f64) -> Result<Self, String> {
        if !value.is_finite() {
            return Err(format!("{name} = {value} is not a number"));
        }
        let mut p = self.clone();
        let days = value.round() as i64;
        match name {
            "otm_min" => p.otm_min = value,
            "otm_max" => p.otm_max = value,
            "premium_min" => p.premium_min = value,
            "premium_max" => p.premium_max = value,
            "dte_min" => p.dte_min = days,
            "dte_max" => p.dte_max = days,
            "profit_target" => p.profit_target = value,
            "stop_loss" => p.stop_loss = value,
            "time_exit_dte" => p.time_exit_dte = days,
            other => {
                return Err(format!(
                    "no strategy parameter {other:?}; one of {}",
                    TUNABLE.join(", ")
                ));
            }
        }
        Ok(p)
    }
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
