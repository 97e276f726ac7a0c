//! The life of one short-put trade, with every field of the `trades` table.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::macros::string_enum;
use crate::{DomainError, Money, Price, Symbol};

string_enum! {
    /// Why a position was closed.
    ExitReason {
        /// Cost to close fell to the profit target (50% of the entry premium).
        ProfitTarget => "profit_target",
        /// Cost to close rose to the stop (3× the entry premium, a −200% loss).
        StopLoss => "stop_loss",
        /// Days to expiry reached the time exit (3).
        TimeExit => "time_exit",
        /// The per-position loss limit (−$500) was reached.
        PositionLossLimit => "position_loss_limit",
        /// Closed by the emergency stop.
        Emergency => "emergency",
        /// Expired out of the money, worthless.
        ExpiredWorthless => "expired_worthless",
        /// Assigned: the put was exercised and stock received.
        Assigned => "assigned",
        /// Closed by a person.
        Manual => "manual",
    }
}

string_enum! {
    /// The market's state at entry, recorded for learning.
    MarketRegime {
        /// Index above its 200-day average, volatility normal.
        BullQuiet => "bull_quiet",
        /// Index above its 200-day average, volatility elevated.
        BullVolatile => "bull_volatile",
        /// Index below its 200-day average, volatility normal.
        BearQuiet => "bear_quiet",
        /// Index below its 200-day average, volatility elevated.
        BearVolatile => "bear_volatile",
        Unknown => "unknown",
    }
}

/// Whether a trade is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeStatus {
    Open,
    Closed,
}

/// One short put from entry to exit.
///
/// Per-share prices (`strike`, `entry_premium`, `exit_premium`) are
/// [`Price`]s; amounts (`profit_loss`, `commissions`, `margin_at_entry`) are
/// [`Money`] in cents. Ratios are plain fractions (0.5 = 50%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Unique, stable identifier (e.g. `T-20240109-AAPL-150P-1`).
    pub trade_id: String,
    pub symbol: Symbol,
    pub sector: Option<String>,
    pub strike: Price,
    pub expiration: NaiveDate,
    pub entry_date: NaiveDate,
    pub entry_time: DateTime<Utc>,
    /// Premium received per share at entry.
    pub entry_premium: Price,
    /// Contracts sold (positive).
    pub contracts: i64,
    pub entry_underlying_price: Price,
    /// Margin required at entry (what-if or Reg-T), for ROI.
    pub margin_at_entry: Money,
    pub exit_date: Option<NaiveDate>,
    pub exit_time: Option<DateTime<Utc>>,
    /// Price paid per share to close (0 if it expired worthless).
    pub exit_premium: Option<Price>,
    pub exit_reason: Option<ExitReason>,
    /// Net of all commissions, once closed.
    pub profit_loss: Option<Money>,
    /// Profit as a fraction of the maximum profit (the premium received).
    pub profit_pct: Option<f64>,
    /// Profit as a fraction of the margin at entry.
    pub roi: Option<f64>,
    pub days_held: Option<i64>,
    /// (underlying − strike) / underlying at entry; 0.17 = 17% out of the money.
    pub otm_pct: f64,
    /// Calendar days to expiry at entry.
    pub dte: i64,
    pub vix_at_entry: Option<f64>,
    pub market_regime: MarketRegime,
    pub is_experiment: bool,
    pub experiment_id: Option<String>,
    /// Experiment arm, when `is_experiment` ("control" or "test").
    pub experiment_arm: Option<String>,
    pub commissions: Money,
    pub status: TradeStatus,
}

/// What a close needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeExit {
    pub time: DateTime<Utc>,
    pub date: NaiveDate,
    pub exit_premium: Price,
    pub reason: ExitReason,
    /// Commission of the closing order (zero for expiry).
    pub commission: Money,
}

impl Trade {
    /// An open trade with what every trade has at entry; the context
    /// fields (sector, underlying price, margin, OTM %, VIX, regime,
    /// experiment) start unknown, commissions at zero, and DTE is counted
    /// from `entry_date`.
    #[allow(clippy::too_many_arguments)]
    pub fn opened(
        trade_id: impl Into<String>,
        symbol: Symbol,
        strike: Price,
        expiration: NaiveDate,
        entry_time: DateTime<Utc>,
        entry_date: NaiveDate,
        entry_premium: Price,
        contracts: i64,
    ) -> Trade {
        Trade {
            trade_id: trade_id.into(),
            symbol,
            sector: None,
            strike,
            expiration,
            entry_date,
            entry_time,
            entry_premium,
            contracts,
            entry_underlying_price: Price::ZERO,
            margin_at_entry: Money::ZERO,
            exit_date: None,
            exit_time: None,
            exit_premium: None,
            exit_reason: None,
            profit_loss: None,
            profit_pct: None,
            roi: None,
            days_held: None,
            otm_pct: 0.0,
            dte: (expiration - entry_date).num_days(),
            vix_at_entry: None,
            market_regime: MarketRegime::Unknown,
            is_experiment: false,
            experiment_id: None,
            experiment_arm: None,
            commissions: Money::ZERO,
            status: TradeStatus::Open,
        }
    }

    /// Premium received, before commissions: the maximum profit.
    pub fn max_profit(&self) -> Money {
        self.entry_premium.notional(self.contracts, 100)
    }

    /// Closes the trade and computes its outcome. Refused if already closed.
    pub fn close(&mut self, exit: TradeExit) -> Result<(), DomainError> {
        if self.status == TradeStatus::Closed {
            return Err(DomainError::Invalid(format!(
                "trade {} is already closed",
                self.trade_id
            )));
        }
        self.commissions += exit.commission;
        let cost_to_close = exit.exit_premium.notional(self.contracts, 100);
        let pl = self.max_profit() - cost_to_close - self.commissions;
        let max = self.max_profit();
        self.profit_loss = Some(pl);
        self.profit_pct = (max.cents() != 0).then(|| pl.cents() as f64 / max.cents() as f64);
        self.roi = (self.margin_at_entry.cents() > 0)
            .then(|| pl.cents() as f64 / self.margin_at_entry.cents() as f64);
        self.days_held = Some((exit.date - self.entry_date).num_days());
        self.exit_date = Some(exit.date);
        self.exit_time = Some(exit.time);
        self.exit_premium = Some(exit.exit_premium);
        self.exit_reason = Some(exit.reason);
        self.status = TradeStatus::Closed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_close_at_profit_target_computes_outcome_net_of_commissions() {
        let mut t = crate::stubs::open_trade();
        t.close(TradeExit {
            time: DateTime::<Utc>::UNIX_EPOCH,
            date: NaiveDate::from_ymd_opt(2024, 1, 12).unwrap(),
            exit_premium: Price::from_cents(20),
            reason: ExitReason::ProfitTarget,
            commission: Money::from_cents(325),
        })
        .unwrap();
        // 5 × 100 × (0.40 − 0.20) = $100, less $6.50 commissions
        assert_eq!(t.profit_loss, Some(Money::from_cents(9_350)));
        assert_eq!(t.days_held, Some(3));
        assert!((t.profit_pct.unwrap() - 0.4675).abs() < 1e-12);
        assert!((t.roi.unwrap() - 93.5 / 7500.0).abs() < 1e-12);
        assert!(
            t.close(TradeExit {
                time: DateTime::<Utc>::UNIX_EPOCH,
                date: NaiveDate::from_ymd_opt(2024, 1, 12).unwrap(),
                exit_premium: Price::ZERO,
                reason: ExitReason::Manual,
                commission: Money::ZERO,
            })
            .is_err()
        );
    }
}
