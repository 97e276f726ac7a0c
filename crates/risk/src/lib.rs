//! # risk
//!
//! **Owns:** the [`RiskGovernor`] (position and loss limits, VaR, sector
//! concentration, correlation, margin utilization), the circuit breakers and
//! the [`TradingState`] (active, reduce-only, halted) with every transition
//! recorded as a [`StateChange`]. It issues [`RiskApproved<T>`], the only
//! approval type the executor accepts: its field is private and only this
//! crate constructs it, so an order that did not pass the governor cannot be
//! built for sending. A refusal is a [`RiskRefused`] naming every limit it
//! broke ([`RiskRefusal`]) with the numbers; approvals and refusals both
//! carry a `DecisionRecord` with each limit's value and threshold.
//!
//! **Must not:** send orders, read a clock, a broker or a database (times
//! and facts come as arguments, in a [`RiskContext`]), or block a closing,
//! risk-reducing order with an entry limit: orders with purpose `Close` or
//! `Liquidate`, or buying back at most the contracts held short, are
//! approved in every state.
//!
//! ## Limits of an opening order (all evaluated, all recorded)
//! | limit | measure | passes when |
//! |---|---|---|
//! | trading state | [`TradingState`] | `Active` |
//! | daily loss breaker | net liq now / at session start − 1 | > `max_daily_loss` (−2%) |
//! | API error breaker | errors in the last hour | < `max_api_errors_per_hour` (5) |
//! | open positions | held short puts + 1 | ≤ `max_open_positions` (10) |
//! | new today | opened this session + 1 | ≤ `max_positions_per_day` (10) |
//! | sizing | loss at the stop, see below | ≤ \|`max_position_loss`\| ($500) |
//! | margin utilization | initial margin after / net liq | ≤ 80% |
//! | correlation | Pearson, each held underlying | ≤ 0.70 |
//! | sector concentration | see below | ≤ 30% |
//! | VaR | one-day 95% historical, full revaluation | ≤ 10% of net liq |
//!
//! Missing or unusable data (no returns, too short a history, no market
//! facts for the order) refuses the order: the governor fails closed.
//! Ratios are compared with [`RATIO_TOLERANCE`] (1e-9).
//!
//! ## Methods
//! * **VaR** ([`measures::historical_var_95`]): historical simulation over
//!   the last `var_lookback_days` (250) daily log returns of the
//!   underlyings, every short put (held and new) repriced by full
//!   Black-Scholes revaluation at `S·e^r` with its implied vol, one day
//!   closer to expiry; VaR95 is the 95th percentile of the scenario losses.
//! * **Sector concentration**: the Reg-T margin
//!   ([`pricing::short_put_margin`]) of the new position's sector after the
//!   trade, divided by the larger of the total Reg-T margin after the trade
//!   and the margin budget (`max_margin_utilization` × net liq). Once the
//!   account is fully deployed this is the sector's share of margin; before,
//!   it is its share of the margin the account may use, so the first
//!   positions are not refused for being 100% of a small total. Positions
//!   with no sector share the bucket [`UNKNOWN_SECTOR`].
//! * **Correlation** ([`measures::correlation`]): Pearson correlation of the
//!   last `correlation_lookback_days` (60) daily log returns of the new
//!   underlying and each held one. Another contract on an underlying
//!   already held counts as correlation 1 and is refused (the strategy
//!   keeps one position per underlying).
//! * **Sizing** ([`measures::sizing_loss`]): the strategy's stop closes at
//!   `stop_loss_multiple` (3) × the premium, so a new position is sized for
//!   a loss of 2 × premium × 100 × contracts; above $500 it is refused. The
//!   exit manager enforces the $500 stop on the live position.
//! * **Margin utilization**: the broker's what-if initial margin after the
//!   trade when given, else the account's initial margin plus the order's
//!   Reg-T margin, over net liquidation now.
//!
//! ## Circuit breakers
//! [`RiskGovernor::on_cycle`] (every engine cycle) and every opening check
//! run them: the daily loss breaker trips at a change of `max_daily_loss`
//! or worse (−2.00% trips, −1.99% does not), the API error breaker at
//! `max_api_errors_per_hour` errors (5 trips, 4 does not); each moves the
//! state to its configured action (halt or reduce-only). Breakers only
//! escalate; [`RiskGovernor::resume`] returns to `Active` (the next cycle
//! trips again if the condition still holds), and
//! [`RiskGovernor::emergency_halt`] halts at once.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod approval;
mod context;
mod error;
mod governor;
mod limits;
pub mod measures;
mod state;

pub use approval::{RiskApproved, RiskRefusal, RiskRefused};
pub use context::{OrderMarket, RiskContext, ShortPutExposure};
pub use error::RiskError;
pub use governor::{RISK_ACTOR, RiskGovernor, UNKNOWN_SECTOR};
pub use limits::{BreakerAction, RiskLimits};
pub use measures::RATIO_TOLERANCE;
pub use state::{StateChange, TradingState};
