//! Cancel/replace: how a working order is re-priced when it has not
//! filled.
//!
//! The engine cancels an order that has worked for
//! [`RepricePolicy::reprice_after_minutes`] without filling
//! ([`crate::OrderExecutor::cancel_stale`]); the strategy or the exit
//! manager proposes it again on a later cycle, and the price of the new
//! attempt comes from [`exit_limit`] (closes) or stays the strategy's
//! (entries). The chain of attempts is on record: each replacement's
//! [`crate::OrderContext`] names the order it replaces and its attempt
//! number, and keeps the first order's mid for slippage.
//!
//! ## The bound
//! * **Entries** (sell to open): at the strategy's limit (the bid that
//!   passed the premium rule). A stale entry is cancelled and not chased:
//!   a lower price would be a premium the rules did not approve.
//! * **Patient exits** (profit target, time exit, manual): the first
//!   attempt at `mid + start_fraction × (ask − mid)`, each replacement
//!   `step_fraction` further toward the ask, never above the ask.
//! * **Urgent exits** (stop loss, position loss limit, emergency, assigned
//!   stock): at the touch from the first attempt; each replacement chases
//!   one more `chase_step` beyond it, never more than
//!   `max_chase_fraction × touch` (at least one `chase_step`) beyond it.
//!
//! Prices are rounded to the cent: buys up, sells down (toward
//! marketable), and are never below one cent.

use core_domain::{ExitReason, Price, Quote, Side};
use serde::{Deserialize, Serialize};

/// The cancel/replace policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepricePolicy {
    /// Minutes an unfilled order works before it is cancelled to be
    /// re-priced (15: one cycle in market hours).
    pub reprice_after_minutes: i64,
    /// Where a patient exit starts between the mid (0) and the touch (1).
    pub start_fraction: f64,
    /// How much further toward the touch each replacement moves.
    pub step_fraction: f64,
    /// How far beyond the touch each replacement of an urgent exit goes,
    /// dollars per share.
    pub chase_step: f64,
    /// The farthest an urgent exit goes beyond the touch, as a fraction
    /// of the touch.
    pub max_chase_fraction: f64,
}

impl Default for RepricePolicy {
    fn default() -> Self {
        RepricePolicy {
            reprice_after_minutes: 15,
            start_fraction: 0.5,
            step_fraction: 0.25,
            chase_step: 0.05,
            max_chase_fraction: 0.10,
        }
    }
}

/// Whether an exit must happen now (priced at the touch and chased) or
/// may wait for a better price.
pub fn is_urgent(reason: ExitReason) -> bool {
    matches!(
        reason,
        ExitReason::StopLoss
            | ExitReason::PositionLossLimit
            | ExitReason::Emergency
            | ExitReason::Assigned
    )
}

/// The limit of attempt `attempt` (0 = first) of an exit for `reason`
/// buying (`Side::Buy`, a short put) or selling (`Side::Sell`, stock)
/// against `quote`. `None` when the quote has no touch on the side that
/// matters (no ask for a buy, no bid for a sell).
pub fn exit_limit(
    side: Side,
    reason: ExitReason,
    quote: &Quote,
    attempt: u32,
    policy: &RepricePolicy,
) -> Option<Price> {
    let touch = match side {
        Side::Buy => quote.ask?,
        Side::Sell => quote.bid?,
    }
    .to_f64();
    let dir = match side {
        Side::Buy => 1.0,
        Side::Sell => -1.0,
    };
    let raw = if is_urgent(reason) {
        let cap = (policy.max_chase_fraction * touch).max(policy.chase_step);
        let chase = (f64::from(attempt) * policy.chase_step).min(cap);
        touch + dir * chase
    } else {
        let mid = quote.mid().map_or(touch, Price::to_f64);
        let f = (policy.start_fraction + f64::from(attempt) * policy.step_fraction).clamp(0.0, 1.0);
        mid + f * (touch - mid)
    };
    let cents = match side {
        Side::Buy => (raw * 100.0 - 1e-9).ceil(),
        Side::Sell => (raw * 100.0 + 1e-9).floor(),
    }
    .max(1.0);
    Price::from_f64(cents / 100.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(bid: Option<f64>, ask: Option<f64>) -> Quote {
        Quote {
            contract: core_domain::Contract::Stock(core_domain::StockContract::us(
                core_domain::Symbol::new("XYZ").unwrap(),
            )),
            bid: bid.map(|b| Price::from_f64(b).unwrap()),
            ask: ask.map(|a| Price::from_f64(a).unwrap()),
            last: None,
            bid_size: None,
            ask_size: None,
            time: chrono::DateTime::UNIX_EPOCH,
            implied_vol: None,
            greeks: None,
            underlying_price: None,
            open_interest: None,
            volume: None,
        }
    }

    fn quote(bid: f64, ask: f64) -> Quote {
        bare(Some(bid), Some(ask))
    }

    fn f(p: Option<Price>) -> f64 {
        p.unwrap().to_f64()
    }

    #[test]
    fn patient_exit_steps_from_mid_to_the_ask_and_stops_there() {
        let q = quote(0.20, 0.30);
        let p = RepricePolicy::default();
        let steps: Vec<f64> = (0..5)
            .map(|k| f(exit_limit(Side::Buy, ExitReason::ProfitTarget, &q, k, &p)))
            .collect();
        assert_eq!(steps, vec![0.28, 0.29, 0.30, 0.30, 0.30]);
    }

    #[test]
    fn urgent_exit_starts_at_the_touch_and_chases_within_the_bound() {
        let q = quote(1.00, 1.20);
        let p = RepricePolicy::default();
        let steps: Vec<f64> = (0..5)
            .map(|k| f(exit_limit(Side::Buy, ExitReason::StopLoss, &q, k, &p)))
            .collect();
        // Cap: max(10% of 1.20, 0.05) = 0.12 beyond the ask.
        assert_eq!(steps, vec![1.20, 1.25, 1.30, 1.32, 1.32]);
    }

    #[test]
    fn selling_stock_goes_down_from_the_bid() {
        let q = quote(50.00, 50.10);
        let p = RepricePolicy::default();
        assert_eq!(
            f(exit_limit(Side::Sell, ExitReason::Assigned, &q, 0, &p)),
            50.00
        );
        assert_eq!(
            f(exit_limit(Side::Sell, ExitReason::Assigned, &q, 2, &p)),
            49.90
        );
    }

    #[test]
    fn no_touch_no_price_and_never_below_a_cent() {
        let p = RepricePolicy::default();
        let no_ask = bare(Some(0.05), None);
        assert!(exit_limit(Side::Buy, ExitReason::StopLoss, &no_ask, 0, &p).is_none());
        let tiny = quote(0.0, 0.01);
        assert!(f(exit_limit(Side::Buy, ExitReason::TimeExit, &tiny, 0, &p)) >= 0.01);
    }
}
