//! What a check needs, supplied by the caller (the governor reads no clock,
//! broker or database).

use std::collections::BTreeMap;

use core_domain::{AccountSnapshot, Money, OptionContract, Price, Symbol};
use serde::{Deserialize, Serialize};

/// One open short put as the governor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortPutExposure {
    pub contract: OptionContract,
    pub sector: Option<String>,
    /// Contracts short, positive.
    pub contracts: i64,
    /// Current price of the option, per share.
    pub mark: Price,
    /// Current price of the underlying.
    pub underlying_price: Price,
    /// Implied volatility used for full revaluation (annual fraction).
    pub implied_vol: f64,
}

/// Market facts about the underlying of an opening order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderMarket {
    pub sector: Option<String>,
    pub underlying_price: Price,
    /// Implied volatility of the option being sold (annual fraction).
    pub implied_vol: f64,
}

/// Everything [`RiskGovernor::check`](crate::RiskGovernor::check) and
/// [`RiskGovernor::on_cycle`](crate::RiskGovernor::on_cycle) look at.
///
/// Working (unfilled) opening orders should be included in `positions` and
/// `opened_today`, so that two orders in flight cannot both use the last
/// slot of a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskContext {
    /// The account at the start of the session (daily loss base).
    pub session_start: AccountSnapshot,
    /// The account now.
    pub account: AccountSnapshot,
    /// Open short puts.
    pub positions: Vec<ShortPutExposure>,
    /// Positions opened in this session so far.
    pub opened_today: i64,
    /// The broker's what-if initial margin of the whole account after the
    /// order; without it the governor adds the order's Reg-T margin to the
    /// account's current initial margin.
    pub what_if_initial_margin_after: Option<Money>,
    /// Daily log returns per underlying, oldest first, ending at the last
    /// completed session; all series end on the same session.
    pub returns: BTreeMap<Symbol, Vec<f64>>,
    /// Market facts of the opening order's underlying (needed to open).
    pub order_market: Option<OrderMarket>,
    /// API errors in the hour before the check.
    pub api_errors_last_hour: u32,
    /// Risk-free rate for full revaluation (continuously compounded).
    pub risk_free_rate: f64,
}

impl RiskContext {
    /// A context with the two account snapshots and nothing else: enough
    /// for closing orders and circuit breakers.
    pub fn new(session_start: AccountSnapshot, account: AccountSnapshot) -> Self {
        RiskContext {
            session_start,
            account,
            positions: Vec::new(),
            opened_today: 0,
            what_if_initial_margin_after: None,
            returns: BTreeMap::new(),
            order_market: None,
            api_errors_last_hour: 0,
            risk_free_rate: 0.0,
        }
    }
}
