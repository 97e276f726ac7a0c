//! The position monitor: each engine cycle, a view of every open short put
//! (mark, unrealized P&L, aging, moneyness, position greeks) and the alerts
//! an operator or the exit manager acts on.
//!
//! Pure: no I/O, no clock, no broker. The caller hands in a
//! [`MonitorInput`] (the time, the trades, the option quotes and the
//! underlyings' prices) and gets a [`MonitorReport`] back.
//!
//! Every definition and threshold is on [`PositionMonitor`].

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;
use core_domain::{
    Greeks, Money, OptionContract, OptionQuote, Price, Right, Symbol, Trade, TradeStatus,
};
use risk::RATIO_TOLERANCE;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Shares per contract of the options a [`Trade`] records (US equity options).
const MULTIPLIER: i64 = 100;

/// The monitor's thresholds. Defaults are the strategy's (3× stop, $500 per
/// position, time exit at 3 DTE) with warnings at 75% of the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorParams {
    /// The stop: cost to close ≥ this multiple of the entry premium (3.0 is
    /// a −200% loss). Above 1.
    pub stop_multiple: f64,
    /// Dollars, positive: the per-position loss limit (unrealized P&L net
    /// of entry commissions at or below −this).
    pub max_position_loss: f64,
    /// Warn when the loss per share reaches this fraction of the loss at
    /// the stop. In (0, 1].
    pub stop_warn_fraction: f64,
    /// Warn when the unrealized loss reaches this fraction of
    /// `max_position_loss`. In (0, 1].
    pub loss_limit_warn_fraction: f64,
    /// In the money with at most this many days to expiry is an assignment
    /// risk. At least 0.
    pub assignment_dte: i64,
    /// Dollars per share: in the money with extrinsic value below this is
    /// an assignment risk. At least 0.
    pub assignment_extrinsic: f64,
    /// Warn when days to expiry ≤ this (the strategy's time exit). At least 0.
    pub time_exit_dte: i64,
}

impl Default for MonitorParams {
    fn default() -> Self {
        MonitorParams {
            stop_multiple: 3.0,
            max_position_loss: 500.0,
            stop_warn_fraction: 0.75,
            loss_limit_warn_fraction: 0.75,
            assignment_dte: 2,
            assignment_extrinsic: 0.05,
            time_exit_dte: 3,
        }
    }
}

impl MonitorParams {
    /// Every problem with the parameters, empty when they are usable.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(self.stop_multiple.is_finite() && self.stop_multiple > 1.0) {
            out.push(format!(
                "stop_multiple must be above 1, got {}",
                self.stop_multiple
            ));
        }
        if !(self.max_position_loss.is_finite() && self.max_position_loss > 0.0)
            || Money::from_f64_dollars(self.max_position_loss).is_err()
        {
            out.push(format!(
                "max_position_loss must be positive dollars, got {}",
                self.max_position_loss
            ));
        }
        for (name, v) in [
            ("stop_warn_fraction", self.stop_warn_fraction),
            ("loss_limit_warn_fraction", self.loss_limit_warn_fraction),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                out.push(format!("{name} must be in (0, 1], got {v}"));
            }
        }
        if self.assignment_dte < 0 {
            out.push(format!(
                "assignment_dte must be at least 0, got {}",
                self.assignment_dte
            ));
        }
        if !(self.assignment_extrinsic.is_finite() && self.assignment_extrinsic >= 0.0)
            || Price::from_f64(self.assignment_extrinsic).is_err()
        {
            out.push(format!(
                "assignment_extrinsic must be non-negative dollars, got {}",
                self.assignment_extrinsic
            ));
        }
        if self.time_exit_dte < 0 {
            out.push(format!(
                "time_exit_dte must be at least 0, got {}",
                self.time_exit_dte
            ));
        }
        out
    }
}

/// Parameters the monitor refused, with every problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid monitor parameters: {}", problems.join("; "))]
pub struct MonitorParamsError {
    /// One sentence per problem, naming the field and its value.
    pub problems: Vec<String>,
}

/// Where a position's mark came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkSource {
    /// The quote's ask (what closing at the touch costs).
    Ask,
    /// The last trade price (no ask quoted).
    Last,
}

/// Something about a position that needs attention. Every variant names
/// its trade and carries the numbers it was decided on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
pub enum Alert {
    /// The loss per share reached the warning fraction of the loss at the stop.
    ApproachingStop {
        /// The trade.
        trade_id: String,
        /// Cost to close per share now.
        mark: Price,
        /// Premium received per share.
        entry_premium: Price,
        /// The mark at which this warning fires.
        warn_at: Price,
        /// The stop price (stop multiple × entry premium).
        stop: Price,
        /// Mark / entry premium.
        cost_multiple: f64,
    },
    /// The cost to close reached the stop.
    AtStop {
        /// The trade.
        trade_id: String,
        /// Cost to close per share now.
        mark: Price,
        /// Premium received per share.
        entry_premium: Price,
        /// The stop price (stop multiple × entry premium).
        stop: Price,
        /// Mark / entry premium.
        cost_multiple: f64,
    },
    /// The unrealized loss reached the warning fraction of the loss limit.
    ApproachingLossLimit {
        /// The trade.
        trade_id: String,
        /// Unrealized P&L now (negative).
        unrealized_pnl: Money,
        /// The P&L at or below which this warning fires (negative).
        warn_at: Money,
        /// The loss limit as a P&L (negative, −$500 by default).
        limit: Money,
    },
    /// The unrealized loss reached the per-position loss limit.
    AtLossLimit {
        /// The trade.
        trade_id: String,
        /// Unrealized P&L now (negative).
        unrealized_pnl: Money,
        /// The loss limit as a P&L (negative, −$500 by default).
        limit: Money,
    },
    /// The underlying is below the strike.
    InTheMoney {
        /// The trade.
        trade_id: String,
        /// The underlying's price now.
        underlying_price: Price,
        /// The put's strike.
        strike: Price,
        /// Strike − underlying, per share.
        intrinsic: Price,
    },
    /// In the money close to expiry or with little time value left: the
    /// put may be exercised against the account.
    AssignmentRisk {
        /// The trade.
        trade_id: String,
        /// Days to expiry.
        dte: i64,
        /// The underlying's price now.
        underlying_price: Price,
        /// The put's strike.
        strike: Price,
        /// Strike − underlying, per share.
        intrinsic: Price,
        /// Option value − intrinsic, when the option has a price.
        extrinsic: Option<Price>,
    },
    /// Days to expiry reached the time exit.
    NearTimeExit {
        /// The trade.
        trade_id: String,
        /// Days to expiry.
        dte: i64,
        /// The time exit threshold.
        time_exit_dte: i64,
    },
    /// No quote, or one without an ask or last price.
    NoQuote {
        /// The trade.
        trade_id: String,
        /// The contract key, e.g. `AAPL 2024-01-19 150.00 P`.
        contract: String,
    },
    /// The option expires at today's close.
    ExpiringToday {
        /// The trade.
        trade_id: String,
        /// The contract key.
        contract: String,
    },
    /// The option's expiry has passed and the trade is still open.
    Expired {
        /// The trade.
        trade_id: String,
        /// The contract key.
        contract: String,
        /// Days since expiry (positive).
        days_ago: i64,
    },
}

impl Alert {
    /// The trade the alert is about.
    pub fn trade_id(&self) -> &str {
        match self {
            Alert::ApproachingStop { trade_id, .. }
            | Alert::AtStop { trade_id, .. }
            | Alert::ApproachingLossLimit { trade_id, .. }
            | Alert::AtLossLimit { trade_id, .. }
            | Alert::InTheMoney { trade_id, .. }
            | Alert::AssignmentRisk { trade_id, .. }
            | Alert::NearTimeExit { trade_id, .. }
            | Alert::NoQuote { trade_id, .. }
            | Alert::ExpiringToday { trade_id, .. }
            | Alert::Expired { trade_id, .. } => trade_id,
        }
    }

    /// A sentence for a person, naming the trade and the numbers.
    pub fn message(&self) -> String {
        match self {
            Alert::ApproachingStop {
                trade_id,
                mark,
                entry_premium,
                warn_at,
                stop,
                cost_multiple,
            } => format!(
                "{trade_id}: approaching the stop: cost to close {mark} is {cost_multiple:.2}x \
                 the entry premium {entry_premium} (warning at {warn_at}, stop at {stop})"
            ),
            Alert::AtStop {
                trade_id,
                mark,
                entry_premium,
                stop,
                cost_multiple,
            } => format!(
                "{trade_id}: at the stop: cost to close {mark} is {cost_multiple:.2}x \
                 the entry premium {entry_premium} (stop at {stop})"
            ),
            Alert::ApproachingLossLimit {
                trade_id,
                unrealized_pnl,
                warn_at,
                limit,
            } => format!(
                "{trade_id}: approaching the loss limit: unrealized P&L ${unrealized_pnl} \
                 (warning at ${warn_at}, limit ${limit})"
            ),
            Alert::AtLossLimit {
                trade_id,
                unrealized_pnl,
                limit,
            } => format!(
                "{trade_id}: at the loss limit: unrealized P&L ${unrealized_pnl} \
                 (limit ${limit})"
            ),
            Alert::InTheMoney {
                trade_id,
                underlying_price,
                strike,
                intrinsic,
            } => format!(
                "{trade_id}: in the money: underlying {underlying_price} below the strike \
                 {strike} (intrinsic {intrinsic} a share)"
            ),
            Alert::AssignmentRisk {
                trade_id,
                dte,
                underlying_price,
                strike,
                intrinsic,
                extrinsic,
            } => {
                let ext = extrinsic.map_or_else(|| "unknown".to_string(), |e| e.to_string());
                format!(
                    "{trade_id}: assignment risk: in the money (underlying {underlying_price}, \
                     strike {strike}, intrinsic {intrinsic}), {dte} DTE, extrinsic {ext}"
                )
            }
            Alert::NearTimeExit {
                trade_id,
                dte,
                time_exit_dte,
            } => format!("{trade_id}: time exit: {dte} DTE (exit at <= {time_exit_dte})"),
            Alert::NoQuote { trade_id, contract } => {
                format!("{trade_id}: no usable quote for {contract}: no mark, no P&L")
            }
            Alert::ExpiringToday { trade_id, contract } => {
                format!("{trade_id}: {contract} expires today")
            }
            Alert::Expired {
                trade_id,
                contract,
                days_ago,
            } => format!(
                "{trade_id}: {contract} expired {days_ago} day(s) ago and the trade is still open"
            ),
        }
    }
}

/// One open short put as the monitor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    /// The trade.
    pub trade_id: String,
    /// The underlying.
    pub symbol: Symbol,
    /// The contract key, e.g. `AAPL 2024-01-19 150.00 P`.
    pub contract: String,
    /// The put's strike.
    pub strike: Price,
    /// The put's expiry.
    pub expiration: NaiveDate,
    /// Contracts sold (positive for a short put).
    pub contracts: i64,
    /// Calendar days to expiry from the exchange date (negative once expired).
    pub dte: i64,
    /// Calendar days since entry (aging).
    pub days_held: i64,
    /// Premium received per share.
    pub entry_premium: Price,
    /// Premium received in total, before commissions: the maximum profit.
    pub max_profit: Money,
    /// Cost to close per share; `None` without a usable quote.
    pub mark: Option<Price>,
    /// Where the mark came from.
    pub mark_source: Option<MarkSource>,
    /// Max profit − cost to close at the mark − commissions paid so far.
    pub unrealized_pnl: Option<Money>,
    /// Unrealized P&L / max profit (1.0 would be the whole premium kept).
    pub profit_pct: Option<f64>,
    /// Mark / entry premium (the stop's measure).
    pub cost_multiple: Option<f64>,
    /// Cost multiple − 1: the loss as a multiple of the premium (negative
    /// while in profit).
    pub loss_multiple: Option<f64>,
    /// The underlying's price now.
    pub underlying_price: Option<Price>,
    /// (underlying − strike) / underlying now; negative in the money.
    pub otm_pct: Option<f64>,
    /// max(strike − underlying, 0), per share.
    pub intrinsic: Option<Price>,
    /// Option value (mid, else mark) − intrinsic, per share.
    pub extrinsic: Option<Price>,
    /// The quote's implied volatility.
    pub implied_vol: Option<f64>,
    /// Position greeks: per-share greeks × 100 × (−contracts).
    pub greeks: Option<Greeks>,
    /// What needs attention, in a fixed order (stop, loss limit, moneyness,
    /// time, quote).
    pub alerts: Vec<Alert>,
}

/// The whole book at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    /// The time of the input.
    pub time: DateTime<Utc>,
    /// The exchange (America/New_York) date DTE and aging are counted from.
    pub exchange_date: NaiveDate,
    /// One view per open trade, in input order.
    pub positions: Vec<PositionView>,
    /// Number of positions.
    pub position_count: usize,
    /// Positions without a usable quote (no mark, no P&L).
    pub no_quote_count: usize,
    /// Sum of the positions' unrealized P&L (those with a mark).
    pub unrealized_pnl: Money,
    /// Sum of `profit_loss` of the closed trades handed in.
    pub realized_pnl: Money,
    /// Closed trades whose P&L was summed.
    pub realized_trades: usize,
    /// Sum of the position greeks (those that have greeks).
    pub greeks: Greeks,
    /// Positions without (finite) greeks, left out of `greeks`.
    pub missing_greeks: usize,
    /// Trade ids handed in but left out: open trades whose status is not
    /// open, closed trades not closed or without a P&L.
    pub ignored: Vec<String>,
}

impl MonitorReport {
    /// Every alert of every position, in position order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.positions.iter().flat_map(|p| p.alerts.iter())
    }
}

/// What the monitor reads each cycle.
#[derive(Debug, Clone, Copy)]
pub struct MonitorInput<'a> {
    /// Now; its America/New_York date is the exchange date.
    pub time: DateTime<Utc>,
    /// The open trades (status open; others are listed in `ignored`).
    pub open_trades: &'a [Trade],
    /// The option quotes available this cycle.
    pub quotes: &'a [OptionQuote],
    /// The underlyings' current prices.
    pub underlying_prices: &'a BTreeMap<Symbol, Price>,
    /// Closed trades whose P&L counts as realized (the caller picks the
    /// window); may be empty.
    pub closed_trades: &'a [Trade],
}

/// The position monitor with its (checked) parameters.
///
/// # Definitions
/// * **Exchange date**: the America/New_York date of the input time. DTE is
///   `expiration − exchange date`, days held `exchange date − entry_date`
///   (calendar days).
/// * **Quote of a trade**: an [`OptionQuote`] on the trade's symbol, a put,
///   same strike and expiry. When several match, the one with the latest
///   `quote.time` (the first of equals).
/// * **Mark** (cost to close, per share): the ask when present and not
///   negative, otherwise the last trade price when present and not
///   negative, otherwise none (a [`Alert::NoQuote`]). The mid needs an ask,
///   so "ask, else mid" never reaches the mid; it is not a separate step.
/// * **Underlying price**: from [`MonitorInput::underlying_prices`], else
///   the quote's `underlying_price` (the price its greeks were computed at).
/// * **Unrealized P&L** (exact, in cents): premium received − cost to close
///   at the mark, both through [`Price::notional`] (× 100 × contracts),
///   **minus the commissions already paid** (`Trade::commissions` of the
///   open trade, i.e. the entry's). The closing commission is not
///   estimated. This is the `profit_loss` the trade would record if it were
///   closed at the mark for free, so `profit_pct` is the same ratio as
///   [`Trade::profit_pct`](core_domain::Trade): P&L / max profit.
/// * **Cost multiple**: mark / entry premium (3.0 at the default stop);
///   **loss multiple** = cost multiple − 1 (2.0 = a −200% loss).
/// * **Position greeks**: per-share greeks × 100 × (−contracts): a short
///   put has positive delta and theta, negative gamma and vega. Units are
///   those of [`Greeks`] (theta per year, vega per 1.00 of volatility).
///   Non-finite greeks count as missing.
/// * **Realized P&L**: the sum of `profit_loss` of
///   [`MonitorInput::closed_trades`] (the caller picks the window: today,
///   this week, all).
///
/// # Alerts and thresholds
/// Prices and money are compared exactly in integers; a threshold derived
/// from a float (a multiple of the premium, a fraction of a loss) is
/// rounded **up** to the next $0.0001 or cent after subtracting
/// [`risk::RATIO_TOLERANCE`], so a value exactly at the threshold fires
/// and one unit below does not.
/// * [`Alert::AtStop`]: mark ≥ stop = `stop_multiple` × entry premium.
/// * [`Alert::ApproachingStop`]: the loss per share (mark − entry) ≥
///   `stop_warn_fraction` × the loss at the stop (stop − entry). Also fires
///   at the stop.
/// * [`Alert::AtLossLimit`]: unrealized P&L ≤ −`max_position_loss`.
/// * [`Alert::ApproachingLossLimit`]: unrealized loss ≥
///   `loss_limit_warn_fraction` × `max_position_loss`. Also fires at the
///   limit.
/// * [`Alert::InTheMoney`]: underlying price < strike (at the money is not
///   in the money).
/// * [`Alert::AssignmentRisk`]: in the money and either DTE ≤
///   `assignment_dte` or extrinsic value < `assignment_extrinsic`.
///   Extrinsic = option value − intrinsic (strike − underlying), the value
///   being the mid when the quote is two-sided, else the mark: the ask
///   would overstate the time value the holder gives up by exercising.
/// * [`Alert::NearTimeExit`]: DTE ≤ `time_exit_dte`.
/// * [`Alert::ExpiringToday`]: DTE = 0; [`Alert::Expired`]: DTE < 0 and the
///   trade is still open (settlement or assignment not yet booked).
/// * [`Alert::NoQuote`]: no quote, or one without a usable price; the
///   position keeps its DTE, aging, moneyness and greeks (if quoted), but
///   has no P&L and no stop or loss alerts.
///
/// A zero entry premium has no stop to measure against (as in the
/// strategy's exit rule): no stop alerts and no multiples for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionMonitor {
    params: MonitorParams,
}

/// The New York calendar date of `time`.
fn exchange_date(time: DateTime<Utc>) -> NaiveDate {
    time.with_timezone(&New_York).date_naive()
}

/// The smallest integer ≥ `x − tolerance`, saturated to the i64 range.
fn ceil_tol(x: f64) -> i64 {
    // `as` saturates on overflow and maps NaN to 0; inputs are finite here.
    (x - RATIO_TOLERANCE).ceil() as i64
}

impl PositionMonitor {
    /// A monitor with `params`; refused with every problem when they are
    /// not usable (see [`MonitorParams::problems`]).
    pub fn new(params: MonitorParams) -> Result<Self, MonitorParamsError> {
        let problems = params.problems();
        if problems.is_empty() {
            Ok(PositionMonitor { params })
        } else {
            Err(MonitorParamsError { problems })
        }
    }

    /// The parameters.
    pub fn params(&self) -> &MonitorParams {
        &self.params
    }

    /// The report for one cycle.
    pub fn evaluate(&self, input: &MonitorInput<'_>) -> MonitorReport {
        let today = exchange_date(input.time);
        let mut ignored = Vec::new();
        let mut positions = Vec::new();
        for t in input.open_trades {
            if t.status == TradeStatus::Open {
                positions.push(self.view(t, input, today));
            } else {
                ignored.push(t.trade_id.clone());
            }
        }
        let mut realized_pnl = Money::ZERO;
        let mut realized_trades = 0;
        for t in input.closed_trades {
            match (t.status, t.profit_loss) {
                (TradeStatus::Closed, Some(pl)) => {
                    realized_pnl += pl;
                    realized_trades += 1;
                }
                _ => ignored.push(t.trade_id.clone()),
            }
        }
        let mut greeks = Greeks::default();
        let mut missing_greeks = 0;
        for g in positions.iter().map(|p| p.greeks) {
            match g {
                Some(g) => {
                    greeks.delta += g.delta;
                    greeks.gamma += g.gamma;
                    greeks.vega += g.vega;
                    greeks.theta += g.theta;
                    greeks.rho += g.rho;
                }
                None => missing_greeks += 1,
            }
        }
        MonitorReport {
            time: input.time,
            exchange_date: today,
            position_count: positions.len(),
            no_quote_count: positions.iter().filter(|p| p.mark.is_none()).count(),
            unrealized_pnl: positions.iter().filter_map(|p| p.unrealized_pnl).sum(),
            realized_pnl,
            realized_trades,
            greeks,
            missing_greeks,
            ignored,
            positions,
        }
    }

    fn view(&self, t: &Trade, input: &MonitorInput<'_>, today: NaiveDate) -> PositionView {
        let p = &self.params;
        let contract = OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration);
        let key = contract.key();
        let dte = contract.days_to_expiry(today);
        let days_held = (today - t.entry_date).num_days();
        let quote = quote_of(input.quotes, t);
        let marked = quote.and_then(mark_of);
        let mark = marked.map(|(m, _)| m);
        let underlying_price = input
            .underlying_prices
            .get(&t.symbol)
            .copied()
            .or_else(|| quote.and_then(|q| q.quote.underlying_price))
            .filter(|s| s.is_positive());

        let max_profit = t.max_profit();
        let unrealized_pnl =
            mark.map(|m| max_profit - m.notional(t.contracts, MULTIPLIER) - t.commissions);
        let profit_pct = unrealized_pnl
            .filter(|_| max_profit.cents() != 0)
            .map(|pl| pl.cents() as f64 / max_profit.cents() as f64);
        let judged = t.entry_premium.is_positive();
        let cost_multiple = mark
            .filter(|_| judged)
            .map(|m| m.raw() as f64 / t.entry_premium.raw() as f64);

        let otm_pct = underlying_price.map(|s| (s.raw() - t.strike.raw()) as f64 / s.raw() as f64);
        let intrinsic =
            underlying_price.map(|s| Price::from_raw((t.strike.raw() - s.raw()).max(0)));
        let value = quote.and_then(|q| q.quote.mid()).or(mark);
        let extrinsic = match (value, intrinsic) {
            (Some(v), Some(i)) => Some(v - i),
            _ => None,
        };
        let greeks = quote
            .and_then(|q| q.quote.greeks)
            .filter(|g| {
                [g.delta, g.gamma, g.vega, g.theta, g.rho]
                    .iter()
                    .all(|x| x.is_finite())
            })
            .map(|g| {
                let k = -(t.contracts as f64) * MULTIPLIER as f64;
                Greeks {
                    delta: k * g.delta,
                    gamma: k * g.gamma,
                    vega: k * g.vega,
                    theta: k * g.theta,
                    rho: k * g.rho,
                }
            });

        let mut alerts = Vec::new();
        let id = || t.trade_id.clone();
        // Stop.
        if let (Some(m), Some(cm)) = (mark, cost_multiple) {
            let entry = t.entry_premium.raw();
            let stop = ceil_tol(p.stop_multiple * entry as f64);
            let warn = (entry + ceil_tol(p.stop_warn_fraction * (stop - entry) as f64)).min(stop);
            if m.raw() >= warn {
                alerts.push(Alert::ApproachingStop {
                    trade_id: id(),
                    mark: m,
                    entry_premium: t.entry_premium,
                    warn_at: Price::from_raw(warn),
                    stop: Price::from_raw(stop),
                    cost_multiple: cm,
                });
            }
            if m.raw() >= stop {
                alerts.push(Alert::AtStop {
                    trade_id: id(),
                    mark: m,
                    entry_premium: t.entry_premium,
                    stop: Price::from_raw(stop),
                    cost_multiple: cm,
                });
            }
        }
        // Loss limit.
        if let Some(pl) = unrealized_pnl {
            let limit = Money::from_f64_dollars(p.max_position_loss)
                .unwrap_or(Money::ZERO)
                .cents();
            let warn = ceil_tol(p.loss_limit_warn_fraction * limit as f64).min(limit);
            let loss = -pl.cents();
            if loss >= warn {
                alerts.push(Alert::ApproachingLossLimit {
                    trade_id: id(),
                    unrealized_pnl: pl,
                    warn_at: Money::from_cents(-warn),
                    limit: Money::from_cents(-limit),
                });
            }
            if loss >= limit {
                alerts.push(Alert::AtLossLimit {
                    trade_id: id(),
                    unrealized_pnl: pl,
                    limit: Money::from_cents(-limit),
                });
            }
        }
        // Moneyness and assignment.
        if let Some(s) = underlying_price
            && s < t.strike
        {
            let intrinsic = t.strike - s;
            alerts.push(Alert::InTheMoney {
                trade_id: id(),
                underlying_price: s,
                strike: t.strike,
                intrinsic,
            });
            let min_extrinsic = Price::from_f64(p.assignment_extrinsic).unwrap_or(Price::ZERO);
            let thin = extrinsic.is_some_and(|e| e < min_extrinsic);
            if dte <= p.assignment_dte || thin {
                alerts.push(Alert::AssignmentRisk {
                    trade_id: id(),
                    dte,
                    underlying_price: s,
                    strike: t.strike,
                    intrinsic,
                    extrinsic,
                });
            }
        }
        // Time.
        if dte <= p.time_exit_dte {
            alerts.push(Alert::NearTimeExit {
                trade_id: id(),
                dte,
                time_exit_dte: p.time_exit_dte,
            });
        }
        match dte {
            0 => alerts.push(Alert::ExpiringToday {
                trade_id: id(),
                contract: key.clone(),
            }),
            d if d < 0 => alerts.push(Alert::Expired {
                trade_id: id(),
                contract: key.clone(),
                days_ago: -d,
            }),
            _ => {}
        }
        // Quote.
        if mark.is_none() {
            alerts.push(Alert::NoQuote {
                trade_id: id(),
                contract: key.clone(),
            });
        }

        PositionView {
            trade_id: t.trade_id.clone(),
            symbol: t.symbol.clone(),
            contract: key,
            strike: t.strike,
            expiration: t.expiration,
            contracts: t.contracts,
            dte,
            days_held,
            entry_premium: t.entry_premium,
            max_profit,
            mark,
            mark_source: marked.map(|(_, s)| s),
            unrealized_pnl,
            profit_pct,
            cost_multiple,
            loss_multiple: cost_multiple.map(|c| c - 1.0),
            underlying_price,
            otm_pct,
            intrinsic,
            extrinsic,
            implied_vol: quote.and_then(|q| q.quote.implied_vol),
            greeks,
            alerts,
        }
    }
}

/// The latest quote of the trade's put (first of equal times).
fn quote_of<'a>(quotes: &'a [OptionQuote], t: &Trade) -> Option<&'a OptionQuote> {
    quotes
        .iter()
        .filter(|q| {
            q.contract.underlying == t.symbol
                && q.contract.right == Right::Put
                && q.contract.strike == t.strike
                && q.contract.expiry == t.expiration
        })
        .fold(None, |best: Option<&OptionQuote>, q| match best {
            Some(b) if b.quote.time >= q.quote.time => Some(b),
            _ => Some(q),
        })
}

/// Cost to close per share: the ask, else the last price.
fn mark_of(q: &OptionQuote) -> Option<(Price, MarkSource)> {
    let usable = |p: Option<Price>| p.filter(|p| p.raw() >= 0);
    usable(q.quote.ask)
        .map(|a| (a, MarkSource::Ask))
        .or_else(|| usable(q.quote.last).map(|l| (l, MarkSource::Last)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use core_domain::{MarketRegime, Quote};
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    /// 2024-01-09 15:00 in New York (20:00 UTC): exchange date 2024-01-09.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 9, 20, 0, 0).unwrap()
    }

    /// An open short put on `symbol`, strike $150, expiring `expiry`,
    /// entered 2024-01-05.
    fn trade(id: &str, symbol: &str, expiry: NaiveDate, entry_raw: i64, contracts: i64) -> Trade {
        core_domain::stubs::TradeBuilder::new(id)
            .symbol(symbol)
            .sector(None)
            .put(Price::from_cents(15_000), expiry)
            .entry_date(date(2024, 1, 5))
            .premium(Price::from_raw(entry_raw))
            .contracts(contracts)
            .dte(14)
            .vix(None)
            .regime(MarketRegime::Unknown)
            .commissions(Money::ZERO)
            .build()
    }

    fn quote_for(t: &Trade, bid: Option<i64>, ask: Option<i64>, last: Option<i64>) -> OptionQuote {
        let contract = OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration);
        OptionQuote {
            quote: Quote {
                contract: core_domain::Contract::Option(contract.clone()),
                bid: bid.map(Price::from_raw),
                ask: ask.map(Price::from_raw),
                last: last.map(Price::from_raw),
                bid_size: None,
                ask_size: None,
                time: now(),
                implied_vol: Some(0.3),
                greeks: None,
                underlying_price: None,
                open_interest: None,
                volume: None,
            },
            contract,
        }
    }

    fn monitor() -> PositionMonitor {
        PositionMonitor::new(MonitorParams::default()).unwrap()
    }

    fn run_at(
        m: &PositionMonitor,
        time: DateTime<Utc>,
        trades: &[Trade],
        quotes: &[OptionQuote],
        prices: &BTreeMap<Symbol, Price>,
    ) -> MonitorReport {
        m.evaluate(&MonitorInput {
            time,
            open_trades: trades,
            quotes,
            underlying_prices: prices,
            closed_trades: &[],
        })
    }

    /// One trade, its ask, the underlying at `s_cents`; the only view.
    fn one(t: &Trade, ask_raw: Option<i64>, s_cents: i64) -> PositionView {
        let q = quote_for(t, None, ask_raw, None);
        let prices = BTreeMap::from([(t.symbol.clone(), Price::from_cents(s_cents))]);
        let r = run_at(&monitor(), now(), std::slice::from_ref(t), &[q], &prices);
        r.positions.into_iter().next().unwrap()
    }

    fn has(v: &PositionView, pred: impl Fn(&Alert) -> bool) -> bool {
        v.alerts.iter().any(pred)
    }

    fn far() -> NaiveDate {
        date(2024, 1, 19)
    }

    #[test]
    fn test_unrealized_pnl_is_exact_to_the_cent_net_of_entry_commissions() {
        // 5 × $0.40 = $200.00 received; closing at the $0.25 ask costs
        // $125.00; $3.25 paid at entry: $71.75.
        let mut t = trade("T-1", "AAPL", far(), 4_000, 5);
        t.commissions = Money::from_cents(325);
        let v = one(&t, Some(2_500), 18_000);
        assert_eq!(v.mark, Some(Price::from_cents(25)));
        assert_eq!(v.mark_source, Some(MarkSource::Ask));
        assert_eq!(v.max_profit, Money::from_cents(20_000));
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(7_175)));
        assert!((v.profit_pct.unwrap() - 7_175.0 / 20_000.0).abs() < 1e-12);
        assert!((v.cost_multiple.unwrap() - 0.625).abs() < 1e-12);
        assert!((v.loss_multiple.unwrap() + 0.375).abs() < 1e-12);

        // Sub-cent prices: 3 × 100 × $0.4237 = $127.11; 3 × 100 × $0.1113 =
        // $33.39; $1.95 commissions: $91.77.
        let mut t = trade("T-2", "AAPL", far(), 4_237, 3);
        t.commissions = Money::from_cents(195);
        let v = one(&t, Some(1_113), 18_000);
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(9_177)));

        // A loss: 2 × $0.50 received, $1.30 to close, $1.30 commissions:
        // $100 − $260 − $1.30 = −$161.30.
        let mut t = trade("T-3", "AAPL", far(), 5_000, 2);
        t.commissions = Money::from_cents(130);
        let v = one(&t, Some(13_000), 18_000);
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(-16_130)));
    }

    #[test]
    fn test_mark_is_the_ask_else_the_last_else_none() {
        let t = trade("T-1", "AAPL", far(), 4_000, 1);
        let prices = BTreeMap::new();
        let mark = |q: OptionQuote| {
            let r = run_at(&monitor(), now(), std::slice::from_ref(&t), &[q], &prices);
            (r.positions[0].mark, r.positions[0].mark_source)
        };
        assert_eq!(
            mark(quote_for(&t, Some(2_000), Some(2_200), Some(2_100))),
            (Some(Price::from_raw(2_200)), Some(MarkSource::Ask))
        );
        assert_eq!(
            mark(quote_for(&t, Some(2_000), None, Some(2_100))),
            (Some(Price::from_raw(2_100)), Some(MarkSource::Last))
        );
        assert_eq!(mark(quote_for(&t, Some(2_000), None, None)), (None, None));
    }

    #[test]
    fn test_latest_matching_quote_wins_and_other_contracts_are_not_used() {
        let t = trade("T-1", "AAPL", far(), 4_000, 1);
        let mut old = quote_for(&t, None, Some(1_000), None);
        old.quote.time = now() - chrono::Duration::minutes(15);
        let new = quote_for(&t, None, Some(3_000), None);
        let mut other_strike = quote_for(&t, None, Some(9_000), None);
        other_strike.contract.strike = Price::from_cents(14_500);
        let mut a_call = quote_for(&t, None, Some(9_000), None);
        a_call.contract.right = Right::Call;
        a_call.quote.time = now() + chrono::Duration::minutes(1);
        let r = run_at(
            &monitor(),
            now(),
            std::slice::from_ref(&t),
            &[other_strike, old, new, a_call],
            &BTreeMap::new(),
        );
        assert_eq!(r.positions[0].mark, Some(Price::from_raw(3_000)));
    }

    #[test]
    fn test_position_greeks_are_short_signed_and_scaled_by_100_per_contract() {
        let t = trade("T-1", "AAPL", far(), 4_000, 5);
        let mut q = quote_for(&t, None, Some(4_000), None);
        q.quote.greeks = Some(Greeks {
            delta: -0.20,
            gamma: 0.05,
            vega: 0.15,
            theta: -0.10,
            rho: -0.02,
        });
        let r = run_at(
            &monitor(),
            now(),
            std::slice::from_ref(&t),
            &[q],
            &BTreeMap::new(),
        );
        let g = r.positions[0].greeks.unwrap();
        // −5 × 100 × greek
        assert!((g.delta - 100.0).abs() < 1e-9, "short put: long delta");
        assert!((g.gamma + 25.0).abs() < 1e-9, "short gamma");
        assert!((g.vega + 75.0).abs() < 1e-9, "short vega");
        assert!((g.theta - 50.0).abs() < 1e-9, "earns theta");
        assert!((g.rho - 10.0).abs() < 1e-9);
        assert_eq!(r.greeks, g);
        assert_eq!(r.missing_greeks, 0);
    }

    #[test]
    fn test_non_finite_or_absent_greeks_count_as_missing() {
        let a = trade("T-1", "AAPL", far(), 4_000, 1);
        let b = trade("T-2", "MSFT", far(), 4_000, 1);
        let mut qa = quote_for(&a, None, Some(4_000), None);
        qa.quote.greeks = Some(Greeks {
            delta: f64::NAN,
            ..Greeks::default()
        });
        let qb = quote_for(&b, None, Some(4_000), None);
        let r = run_at(&monitor(), now(), &[a, b], &[qa, qb], &BTreeMap::new());
        assert_eq!(r.missing_greeks, 2);
        assert_eq!(r.greeks, Greeks::default());
        assert!(r.positions.iter().all(|p| p.greeks.is_none()));
    }

    #[test]
    fn test_stop_alerts_fire_exactly_at_their_thresholds() {
        // Entry $0.40, 1 contract: stop $1.20 (3×); warning when the loss
        // per share reaches 75% of $0.80, i.e. at a mark of $1.00.
        let t = trade("T-1", "AAPL", far(), 4_000, 1);
        let approaching = |v: &PositionView| has(v, |a| matches!(a, Alert::ApproachingStop { .. }));
        let at = |v: &PositionView| has(v, |a| matches!(a, Alert::AtStop { .. }));
        let v = one(&t, Some(9_999), 18_000);
        assert!(!approaching(&v) && !at(&v));
        let v = one(&t, Some(10_000), 18_000);
        assert!(approaching(&v) && !at(&v));
        let v = one(&t, Some(11_999), 18_000);
        assert!(approaching(&v) && !at(&v));
        let v = one(&t, Some(12_000), 18_000);
        assert!(approaching(&v) && at(&v));
        let Some(Alert::AtStop {
            stop,
            cost_multiple,
            ..
        }) = v.alerts.iter().find(|a| matches!(a, Alert::AtStop { .. }))
        else {
            panic!("no stop alert");
        };
        assert_eq!(*stop, Price::from_cents(120));
        assert!((cost_multiple - 3.0).abs() < 1e-12);

        // A premium that does not divide evenly: $0.3333 → stop $0.9999,
        // warning at 0.3333 + ceil(0.75 × 0.6666) = $0.8333.
        let t = trade("T-2", "AAPL", far(), 3_333, 1);
        assert!(!approaching(&one(&t, Some(8_332), 18_000)));
        assert!(approaching(&one(&t, Some(8_333), 18_000)));
        assert!(!at(&one(&t, Some(9_998), 18_000)));
        assert!(at(&one(&t, Some(9_999), 18_000)));
    }

    #[test]
    fn test_loss_limit_alerts_fire_exactly_at_their_thresholds() {
        // 10 contracts at $0.50 ($500 received), $6.50 paid: P&L =
        // 50 000 − 10·mark − 650 cents. The stop ($1.50, warning $1.25) is
        // out of the way.
        let mut t = trade("T-1", "AAPL", far(), 5_000, 10);
        t.commissions = Money::from_cents(650);
        let approaching =
            |v: &PositionView| has(v, |a| matches!(a, Alert::ApproachingLossLimit { .. }));
        let at = |v: &PositionView| has(v, |a| matches!(a, Alert::AtLossLimit { .. }));

        let v = one(&t, Some(8_684), 18_000);
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(-37_490)));
        assert!(!approaching(&v) && !at(&v));
        let v = one(&t, Some(8_685), 18_000);
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(-37_500)));
        assert!(approaching(&v) && !at(&v));
        let v = one(&t, Some(9_934), 18_000);
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(-49_990)));
        assert!(approaching(&v) && !at(&v));
        let v = one(&t, Some(9_935), 18_000);
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(-50_000)));
        assert!(approaching(&v) && at(&v));
        assert!(!has(&v, |a| matches!(
            a,
            Alert::ApproachingStop { .. } | Alert::AtStop { .. }
        )));
        assert!(v.alerts.contains(&Alert::AtLossLimit {
            trade_id: "T-1".into(),
            unrealized_pnl: Money::from_cents(-50_000),
            limit: Money::from_cents(-50_000),
        }));
    }

    #[test]
    fn test_in_the_money_fires_below_the_strike_not_at_it() {
        let t = trade("T-1", "AAPL", far(), 4_000, 1);
        let itm = |v: &PositionView| has(v, |a| matches!(a, Alert::InTheMoney { .. }));
        let prices = |raw: i64| BTreeMap::from([(sym("AAPL"), Price::from_raw(raw))]);
        let q = quote_for(&t, None, Some(4_000), None);
        let view = |raw: i64| {
            run_at(
                &monitor(),
                now(),
                std::slice::from_ref(&t),
                std::slice::from_ref(&q),
                &prices(raw),
            )
            .positions
            .remove(0)
        };
        let at_strike = view(1_500_000);
        assert!(!itm(&at_strike));
        assert_eq!(at_strike.otm_pct, Some(0.0));
        assert_eq!(at_strike.intrinsic, Some(Price::ZERO));
        let below = view(1_499_999);
        assert!(itm(&below));
        assert!(below.otm_pct.unwrap() < 0.0);
        assert_eq!(below.intrinsic, Some(Price::from_raw(1)));
        let otm = view(1_800_000);
        assert!((otm.otm_pct.unwrap() - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn test_assignment_risk_fires_at_the_dte_and_extrinsic_thresholds() {
        let risk = |v: &PositionView| has(v, |a| matches!(a, Alert::AssignmentRisk { .. }));
        // In the money by $1 (underlying $149), big time value: only DTE counts.
        let d3 = trade("T-1", "AAPL", date(2024, 1, 12), 4_000, 1);
        let d2 = trade("T-2", "AAPL", date(2024, 1, 11), 4_000, 1);
        assert!(!risk(&one(&d3, Some(20_000), 14_900)));
        let v = one(&d2, Some(20_000), 14_900);
        assert_eq!(v.dte, 2);
        assert!(risk(&v));
        // Out of the money at 0 DTE: no assignment risk.
        let d0 = trade("T-3", "AAPL", date(2024, 1, 9), 4_000, 1);
        assert!(!risk(&one(&d0, Some(100), 15_100)));

        // Far from expiry: extrinsic (mid − intrinsic) $0.05 is not below
        // $0.05; $0.0499 is.
        let t = trade("T-4", "AAPL", far(), 4_000, 1);
        let prices = BTreeMap::from([(sym("AAPL"), Price::from_cents(14_900))]);
        let view = |bid: i64, ask: i64| {
            let q = quote_for(&t, Some(bid), Some(ask), None);
            run_at(&monitor(), now(), std::slice::from_ref(&t), &[q], &prices)
                .positions
                .remove(0)
        };
        let v = view(10_200, 10_800); // mid 1.05
        assert_eq!(v.extrinsic, Some(Price::from_cents(5)));
        assert!(!risk(&v));
        let v = view(10_498, 10_500); // mid 1.0499
        assert_eq!(v.extrinsic, Some(Price::from_raw(499)));
        assert!(risk(&v));
        // Without a bid the extrinsic is measured at the mark (the ask).
        let v = one(&t, Some(10_499), 14_900);
        assert_eq!(v.extrinsic, Some(Price::from_raw(499)));
        assert!(risk(&v));
    }

    #[test]
    fn test_time_alerts_fire_at_dte_3_and_0_not_before() {
        let near = |v: &PositionView| has(v, |a| matches!(a, Alert::NearTimeExit { .. }));
        let today = |v: &PositionView| has(v, |a| matches!(a, Alert::ExpiringToday { .. }));
        let expired = |v: &PositionView| has(v, |a| matches!(a, Alert::Expired { .. }));
        let at = |d: u32| {
            one(
                &trade("T-1", "AAPL", date(2024, 1, d), 4_000, 1),
                Some(100),
                18_000,
            )
        };
        let v = at(13);
        assert_eq!(v.dte, 4);
        assert!(!near(&v) && !today(&v));
        let v = at(12);
        assert_eq!(v.dte, 3);
        assert!(near(&v) && !today(&v));
        let v = at(10);
        assert!(near(&v) && !today(&v));
        let v = at(9);
        assert_eq!(v.dte, 0);
        assert!(near(&v) && today(&v) && !expired(&v));
        let v = at(8);
        assert_eq!(v.dte, -1);
        assert!(near(&v) && !today(&v) && expired(&v));
    }

    #[test]
    fn test_dte_and_aging_count_from_the_new_york_date() {
        // 2024-01-10 03:00 UTC is still 2024-01-09 in New York.
        let t = trade("T-1", "AAPL", far(), 4_000, 1);
        let time = Utc.with_ymd_and_hms(2024, 1, 10, 3, 0, 0).unwrap();
        let r = run_at(
            &monitor(),
            time,
            std::slice::from_ref(&t),
            &[],
            &BTreeMap::new(),
        );
        assert_eq!(r.exchange_date, date(2024, 1, 9));
        assert_eq!(r.positions[0].dte, 10);
        assert_eq!(r.positions[0].days_held, 4);
    }

    #[test]
    fn test_no_quote_gives_no_pnl_but_keeps_aging_dte_and_moneyness() {
        let quoted = trade("T-1", "AAPL", far(), 4_000, 5);
        let bare = trade("T-2", "MSFT", date(2024, 1, 12), 4_000, 5);
        let q = quote_for(&quoted, None, Some(2_000), None);
        let prices = BTreeMap::from([
            (sym("AAPL"), Price::from_cents(18_000)),
            (sym("MSFT"), Price::from_cents(14_000)),
        ]);
        let r = run_at(&monitor(), now(), &[quoted, bare], &[q], &prices);
        let v = &r.positions[1];
        assert_eq!(v.mark, None);
        assert_eq!(v.unrealized_pnl, None);
        assert_eq!(v.profit_pct, None);
        assert_eq!(v.dte, 3);
        assert_eq!(v.days_held, 4);
        assert!(v.alerts.contains(&Alert::NoQuote {
            trade_id: "T-2".into(),
            contract: "MSFT 2024-01-12 150.00 P".into(),
        }));
        // Moneyness and time still judged; no stop or loss alerts.
        assert!(has(v, |a| matches!(a, Alert::InTheMoney { .. })));
        assert!(has(v, |a| matches!(a, Alert::NearTimeExit { .. })));
        assert!(!has(v, |a| matches!(
            a,
            Alert::ApproachingStop { .. }
                | Alert::AtStop { .. }
                | Alert::ApproachingLossLimit { .. }
                | Alert::AtLossLimit { .. }
        )));
        assert_eq!(r.no_quote_count, 1);
        assert_eq!(r.missing_greeks, 2);
        // Only the quoted position counts: 5 × (0.40 − 0.20) × 100 = $100.
        assert_eq!(r.unrealized_pnl, Money::from_cents(10_000));
        assert!(!has(&r.positions[0], |a| matches!(
            a,
            Alert::NoQuote { .. }
        )));
    }

    #[test]
    fn test_portfolio_sums_equal_the_sums_of_positions() {
        let mut trades = Vec::new();
        let mut quotes = Vec::new();
        for (i, (s, entry, n, ask, delta)) in [
            ("AAPL", 4_000, 5, 2_000, -0.20),
            ("MSFT", 3_500, 3, 9_000, -0.35),
            ("NVDA", 4_500, 2, 4_400, -0.15),
        ]
        .into_iter()
        .enumerate()
        {
            let mut t = trade(&format!("T-{i}"), s, far(), entry, n);
            t.commissions = Money::from_cents(65 * n);
            let mut q = quote_for(&t, None, Some(ask), None);
            q.quote.greeks = Some(Greeks {
                delta,
                gamma: 0.04,
                vega: 0.1,
                theta: -0.2,
                rho: -0.01,
            });
            trades.push(t);
            quotes.push(q);
        }
        let closed = {
            let mut a = trade("C-1", "AAPL", far(), 4_000, 5);
            a.status = TradeStatus::Closed;
            a.profit_loss = Some(Money::from_cents(9_350));
            let mut b = a.clone();
            b.trade_id = "C-2".into();
            b.profit_loss = Some(Money::from_cents(-12_345));
            let still_open = trade("C-3", "AAPL", far(), 4_000, 5);
            vec![a, b, still_open]
        };
        let r = monitor().evaluate(&MonitorInput {
            time: now(),
            open_trades: &trades,
            quotes: &quotes,
            underlying_prices: &BTreeMap::new(),
            closed_trades: &closed,
        });
        assert_eq!(r.position_count, 3);
        let pnl: Money = r.positions.iter().filter_map(|p| p.unrealized_pnl).sum();
        assert_eq!(r.unrealized_pnl, pnl);
        // 200 − 100 − 3.25; 105 − 270 − 1.95; 90 − 88 − 1.30
        assert_eq!(r.unrealized_pnl, Money::from_cents(9_675 - 16_695 + 70));
        let sum = |f: fn(&Greeks) -> f64| {
            r.positions
                .iter()
                .map(|p| f(&p.greeks.unwrap()))
                .sum::<f64>()
        };
        assert_eq!(r.greeks.delta, sum(|g| g.delta));
        assert_eq!(r.greeks.gamma, sum(|g| g.gamma));
        assert_eq!(r.greeks.theta, sum(|g| g.theta));
        assert_eq!(r.greeks.vega, sum(|g| g.vega));
        assert!((r.greeks.delta - 100.0 * (5.0 * 0.20 + 3.0 * 0.35 + 2.0 * 0.15)).abs() < 1e-9);
        assert_eq!(r.realized_pnl, Money::from_cents(9_350 - 12_345));
        assert_eq!(r.realized_trades, 2);
        assert_eq!(r.ignored, vec!["C-3".to_string()]);
    }

    #[test]
    fn test_closed_trades_among_the_open_ones_are_ignored() {
        let mut t = trade("T-1", "AAPL", far(), 4_000, 1);
        t.status = TradeStatus::Closed;
        let r = run_at(
            &monitor(),
            now(),
            std::slice::from_ref(&t),
            &[],
            &BTreeMap::new(),
        );
        assert_eq!(r.position_count, 0);
        assert_eq!(r.ignored, vec!["T-1".to_string()]);
    }

    #[test]
    fn test_zero_premium_has_no_stop_alerts_or_multiples() {
        let t = trade("T-1", "AAPL", far(), 0, 1);
        let v = one(&t, Some(5_000), 18_000);
        assert_eq!(v.cost_multiple, None);
        assert_eq!(v.profit_pct, None);
        assert!(!has(&v, |a| matches!(
            a,
            Alert::ApproachingStop { .. } | Alert::AtStop { .. }
        )));
        assert_eq!(v.unrealized_pnl, Some(Money::from_cents(-5_000)));
    }

    #[test]
    fn test_underlying_price_falls_back_to_the_quote() {
        let t = trade("T-1", "AAPL", far(), 4_000, 1);
        let mut q = quote_for(&t, None, Some(4_000), None);
        q.quote.underlying_price = Some(Price::from_cents(16_000));
        let r = run_at(
            &monitor(),
            now(),
            std::slice::from_ref(&t),
            std::slice::from_ref(&q),
            &BTreeMap::new(),
        );
        assert_eq!(
            r.positions[0].underlying_price,
            Some(Price::from_cents(16_000))
        );
        let prices = BTreeMap::from([(sym("AAPL"), Price::from_cents(17_000))]);
        let r = run_at(&monitor(), now(), std::slice::from_ref(&t), &[q], &prices);
        assert_eq!(
            r.positions[0].underlying_price,
            Some(Price::from_cents(17_000))
        );
    }

    #[test]
    fn test_bad_params_are_refused_with_every_problem() {
        let bad = MonitorParams {
            stop_multiple: 1.0,
            max_position_loss: -500.0,
            stop_warn_fraction: 1.5,
            loss_limit_warn_fraction: f64::NAN,
            assignment_dte: -1,
            assignment_extrinsic: -0.01,
            time_exit_dte: -1,
        };
        let err = PositionMonitor::new(bad).unwrap_err();
        assert_eq!(err.problems.len(), 7, "{err}");
        assert!(MonitorParams::default().problems().is_empty());
        let p: MonitorParams = serde_json::from_str(r#"{"stop_multiple": 2.5}"#).unwrap();
        assert_eq!(p.stop_multiple, 2.5);
        assert_eq!(p.time_exit_dte, 3);
        assert!(serde_json::from_str::<MonitorParams>(r#"{"stop": 2.5}"#).is_err());
    }

    #[test]
    fn test_report_round_trips_through_json_and_alerts_are_snake_case() {
        let t = trade("T-1", "AAPL", date(2024, 1, 9), 4_000, 1);
        let mut q = quote_for(&t, None, Some(12_000), None);
        q.quote.greeks = Some(Greeks::default());
        let prices = BTreeMap::from([(sym("AAPL"), Price::from_cents(14_000))]);
        let r = run_at(&monitor(), now(), std::slice::from_ref(&t), &[q], &prices);
        let json = serde_json::to_value(&r).unwrap();
        let kinds: Vec<&str> = json["positions"][0]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "approaching_stop",
                "at_stop",
                "in_the_money",
                "assignment_risk",
                "near_time_exit",
                "expiring_today"
            ]
        );
        let back: MonitorReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn test_messages_name_the_trade_and_the_numbers() {
        let t = trade("T-7", "AAPL", date(2024, 1, 9), 4_000, 1);
        let v = one(&t, Some(12_000), 14_000);
        let msgs: Vec<String> = v.alerts.iter().map(Alert::message).collect();
        assert!(msgs.iter().all(|m| m.starts_with("T-7")), "{msgs:?}");
        let stop = v
            .alerts
            .iter()
            .find(|a| matches!(a, Alert::AtStop { .. }))
            .unwrap();
        assert_eq!(
            stop.message(),
            "T-7: at the stop: cost to close 1.20 is 3.00x the entry premium 0.40 (stop at 1.20)"
        );
        assert_eq!(stop.trade_id(), "T-7");
        let nq = Alert::NoQuote {
            trade_id: "T-7".into(),
            contract: "AAPL 2024-01-09 150.00 P".into(),
        };
        assert!(nq.message().contains("AAPL 2024-01-09 150.00 P"));
        assert_eq!(v.alerts.len(), msgs.len());
    }

    /// One generated position: entry premium, contracts, commissions, an
    /// optional ask, the underlying, days to expiry.
    fn position() -> impl Strategy<Value = (i64, i64, i64, Option<i64>, i64, u32)> {
        (
            0i64..20_000,
            1i64..20,
            0i64..2_000,
            proptest::option::of(0i64..100_000),
            10_000i64..3_000_000,
            0u32..20,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The book's P&L and greeks are the sums of its positions', and a
        /// position at a limit is also past its warning.
        #[test]
        fn totals_are_sums_and_limits_imply_warnings(
            book in proptest::collection::vec(position(), 0..8),
            stop_multiple in 1.01f64..10.0,
            stop_warn in 0.01f64..=1.0,
            loss_warn in 0.01f64..=1.0,
            max_loss in 1.0f64..5_000.0,
        ) {
            let m = PositionMonitor::new(MonitorParams {
                stop_multiple,
                max_position_loss: max_loss,
                stop_warn_fraction: stop_warn,
                loss_limit_warn_fraction: loss_warn,
                ..MonitorParams::default()
            }).unwrap();
            let mut trades = Vec::new();
            let mut quotes = Vec::new();
            let mut prices = BTreeMap::new();
            for (i, (entry, n, comm, ask, s, d)) in book.into_iter().enumerate() {
                let name = format!("S{i}");
                let mut t = trade(&format!("T-{i}"), &name, date(2024, 1, 9) + chrono::Days::new(u64::from(d)), entry, n);
                t.commissions = Money::from_cents(comm);
                let mut q = quote_for(&t, None, ask, None);
                if i % 3 != 0 {
                    q.quote.greeks = Some(Greeks { delta: -0.3, gamma: 0.02, vega: 0.1, theta: -0.4, rho: 0.0 });
                }
                quotes.push(q);
                prices.insert(sym(&name), Price::from_raw(s));
                trades.push(t);
            }
            let r = run_at(&m, now(), &trades, &quotes, &prices);
            let pnl: Money = r.positions.iter().filter_map(|p| p.unrealized_pnl).sum();
            prop_assert_eq!(r.unrealized_pnl, pnl);
            prop_assert_eq!(r.position_count, trades.len());
            prop_assert_eq!(r.no_quote_count, r.positions.iter().filter(|p| p.mark.is_none()).count());
            prop_assert_eq!(r.missing_greeks, r.positions.iter().filter(|p| p.greeks.is_none()).count());
            let delta: f64 = r.positions.iter().filter_map(|p| p.greeks).map(|g| g.delta).sum();
            prop_assert!((r.greeks.delta - delta).abs() < 1e-9);
            for p in &r.positions {
                let any = |f: fn(&Alert) -> bool| p.alerts.iter().any(f);
                if any(|a| matches!(a, Alert::AtStop { .. })) {
                    prop_assert!(any(|a| matches!(a, Alert::ApproachingStop { .. })), "at the stop but not approaching it");
                }
                if any(|a| matches!(a, Alert::AtLossLimit { .. })) {
                    prop_assert!(any(|a| matches!(a, Alert::ApproachingLossLimit { .. })), "at the loss limit but not approaching it");
                }
                if let (Some(mark), true) = (p.mark, p.entry_premium.is_positive()) {
                    let stop = (stop_multiple * p.entry_premium.raw() as f64 - RATIO_TOLERANCE).ceil() as i64;
                    prop_assert_eq!(any(|a| matches!(a, Alert::AtStop { .. })), mark.raw() >= stop);
                }
                prop_assert_eq!(any(|a| matches!(a, Alert::NoQuote { .. })), p.mark.is_none());
            }
        }
    }
}
