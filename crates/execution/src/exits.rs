//! The exit manager: which open positions to close this cycle, and at what
//! limit. Pure — no I/O, no clock: the time comes from the snapshot (or, for
//! the emergency stop, as an argument), and the result is a list of
//! [`ExitOrder`]s (an [`OrderIntent`] with its [`ExitReason`] and
//! [`DecisionRecord`]) plus a hold record for every open trade it leaves
//! open. The engine sends each intent through the risk governor (closing
//! and liquidating orders are approved in every trading state) and the
//! [`OrderExecutor`](crate::OrderExecutor).
//!
//! Every rule is documented on [`ExitManager`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use core_domain::{
    Contract, Criterion, DecisionKind, DecisionRecord, DomainError, ExitProposal, ExitReason,
    MarketSnapshot, Money, OptionContract, OptionQuote, OrderIntent, OrderPurpose, Position, Price,
    Right, Side, Strategy, Symbol, TimeInForce, Trade, TradeStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What to do with stock received by assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationRule {
    /// Sell at the first cycle after assignment with a marketable limit
    /// (the bid minus the bound), purpose `Liquidate`, day order; if it does
    /// not fill, the next cycle re-prices it under a new order ref.
    #[default]
    NextCycle,
    /// Do not sell: report the stock every cycle and let an operator decide.
    Manual,
}

/// The exit manager's parameters. Amounts are dollars, as in the
/// configuration file; [`ExitManager::new`] checks them and turns them into
/// exact cents and prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExitParams {
    /// Dollars, positive: a position whose loss if closed at the ask reaches
    /// this is closed (500.0). Unlike `risk`'s sizing limit, a positive
    /// number.
    pub max_position_loss: f64,
    /// Dollars: the smallest bound added to (buys) or taken from (sells) the
    /// reference price of an emergency or liquidation limit (0.05).
    pub marketable_bound_min: f64,
    /// The bound as a fraction of the reference price (0.10).
    pub marketable_bound_fraction: f64,
    /// Dollars: the largest bound (1.00, 20× the minimum).
    pub marketable_bound_max: f64,
    /// What to do with stock received by assignment.
    pub liquidation: LiquidationRule,
    /// Dollars: the option tick below [`Self::option_tick_break`] (0.01).
    pub option_tick_small: f64,
    /// Dollars: the option tick at and above [`Self::option_tick_break`] (0.05).
    pub option_tick_large: f64,
    /// Dollars: the option price where the tick changes (3.00).
    pub option_tick_break: f64,
    /// Dollars: the stock tick (0.01).
    pub stock_tick: f64,
}

impl Default for ExitParams {
    fn default() -> Self {
        ExitParams {
            max_position_loss: 500.0,
            marketable_bound_min: 0.05,
            marketable_bound_fraction: 0.10,
            marketable_bound_max: 1.00,
            liquidation: LiquidationRule::NextCycle,
            option_tick_small: 0.01,
            option_tick_large: 0.05,
            option_tick_break: 3.00,
            stock_tick: 0.01,
        }
    }
}

/// One order the exit manager wants sent, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitOrder {
    /// Buy to close a short put (purpose `Close`) or sell stock (purpose
    /// `Liquidate`); a day limit order.
    pub intent: OrderIntent,
    /// Why: the strategy's reason, the loss limit, the emergency stop, or
    /// `assigned` for stock received by assignment.
    pub reason: ExitReason,
    /// `DecisionKind::Exit`, with every criterion and the numbers in its
    /// context; the subject is the trade id.
    pub decision: DecisionRecord,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitPlan {
    /// Orders to send, open trades first (in the order given), then stock.
    pub exits: Vec<ExitOrder>,
    /// One hold record (subject: the trade id) for every open trade not in
    /// `exits`: every open trade is either exited or held, exactly once.
    pub holds: Vec<DecisionRecord>,
    /// Positions left alone, each with why (subject: the contract key):
    /// short stock, stock not received by assignment, stock with no price
    /// or with a sale working, and (emergency) short options with no trade.
    pub untouched: Vec<DecisionRecord>,
}

/// Decides exits: the strategy's, the per-position loss limit, the
/// liquidation of assigned stock, and the emergency stop.
///
/// # Rules of [`ExitManager::evaluate`] (one engine cycle)
/// 1. **Strategy exits.** The strategy's `propose_exits` gets the open
///    trades (status `Open`, the first of each `trade_id`); its exits keep
///    their reason (`profit_target`, `stop_loss`, `time_exit`) and its
///    decision record, and its limit (the ask), rounded **up** to the option
///    tick. The stop and target thresholds are the strategy's alone.
/// 2. **Per-position loss limit.** For a trade the strategy holds (or gives
///    no decision for), the loss if closed now is
///    `(ask − entry premium) × 100 × contracts`, in exact cents through
///    [`Price::notional`], commissions left out. At or above
///    [`ExitParams::max_position_loss`] ($500.00 exits, $499.99 does not)
///    the trade is closed with [`ExitReason::PositionLossLimit`] at the ask
///    (rounded up to the tick). Without an ask the limit cannot be judged
///    and the trade is held, the record says so. When the strategy exits a
///    trade and the limit is also reached, the strategy's reason is kept and
///    the record carries both criteria. Every record (exit or hold) carries
///    the `position_loss_limit` criterion with its numbers.
/// 3. **One close at a time.** `working_exits` lists the closes and
///    liquidations the engine knows to be working at the broker — trade ids,
///    symbols, or order refs made by [`close_order_ref`] /
///    [`liquidation_order_ref`]. A trade with a working close gets a hold
///    record (`hold:close_working`), stock with a working sale an
///    [`ExitPlan::untouched`] record (`hold:liquidation_working`), never a
///    second order; a new attempt comes once the working one is filled,
///    cancelled or expired (day orders expire at the close).
/// 4. **Close quantity.** `trade.contracts`, capped at the short quantity
///    the broker shows for that option when `positions` holds it. If
///    `positions` holds the option with no short quantity, nothing is
///    bought (that would open a long put): the trade is held with a record
///    asking for reconciliation.
/// 5. **Assigned stock** ([`LiquidationRule::NextCycle`], the default): a
///    long stock position on a symbol with a trade in `assigned` (closed
///    with [`ExitReason::Assigned`]) is sold at the first cycle that sees
///    it: a day order, purpose `Liquidate`, [`ExitReason::Assigned`], at a
///    marketable limit of the bid minus the bound (below), rounded down to
///    the stock tick and never below one tick. At most the shares received
///    (100 × contracts of those assignments) are sold, never more than
///    held. A day order that does not fill expires at the close; the next
///    cycle, seeing the stock still held and no liquidation working, prices
///    a new order from the new bid under a new order ref. Without a bid,
///    the mid or last of the snapshot's stock quote, then the position's
///    mark, is the reference; with no price at all the stock is reported,
///    not sold. [`LiquidationRule::Manual`] reports assigned stock instead
///    of selling it.
/// 6. **Stock the system does not own.** Short stock, and long stock with
///    no assignment in `assigned`, are never touched: each gets a record in
///    [`ExitPlan::untouched`] so an operator sees it.
///
/// # The emergency stop ([`ExitManager::emergency_exits`])
/// Every open trade is closed with [`ExitReason::Emergency`] at a
/// marketable limit: the ask plus the bound; with no ask, the reference is
/// the larger of the bid and the intrinsic value `max(strike − spot, 0)`
/// (spot: the mid, else last, of the underlying's quote), plus the bound;
/// with neither a quote nor a spot, the strike (a put is never worth more,
/// so that limit always crosses). Every long stock position, whatever its
/// origin, is sold at the bid minus the bound (floor one tick). Short stock
/// is reported, not touched; so is a short option the broker shows with no
/// open trade (the manager closes trades; reconciliation names the rest).
/// The emergency stop is expected to cancel working orders first and pass
/// an empty `working_exits`; a trade still listed there is held with a
/// record rather than closed twice.
///
/// # Prices
/// * **Bound** (emergency and liquidation): `fraction × reference`, at
///   least [`ExitParams::marketable_bound_min`] ($0.05) and at most
///   [`ExitParams::marketable_bound_max`] ($1.00, 20× the minimum):
///   `max(0.05, 10% of the ask)` capped at $1.00.
/// * **Option tick**: $0.01 below $3.00, $0.05 from $3.00 (the penny-pilot
///   rule); buy limits are rounded **up** (they stay marketable). **Stock
///   tick**: $0.01; sell limits are rounded **down**. No limit is ever
///   zero or negative: the floor is one tick.
///
/// # Order refs
/// Deterministic and unique per attempt, times in UTC to the minute:
/// `X-{trade_id}-{reason}-{yyyymmddHHMM}` for closes,
/// `L-{symbol}-{yyyymmddHHMM}` for stock sales. A second attempt in the
/// same minute carries the same ref, which the executor refuses to send
/// again: never a duplicate order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitManager {
    params: ExitParams,
    max_loss: Money,
    bound_min: Price,
    bound_max: Price,
    tick_small: Price,
    tick_large: Price,
    tick_break: Price,
    stock_tick: Price,
}

/// The order ref of a close: `X-{trade_id}-{reason}-{yyyymmddHHMM}` (UTC).
pub fn close_order_ref(trade_id: &str, reason: ExitReason, time: DateTime<Utc>) -> String {
    format!("X-{trade_id}-{reason}-{}", time.format("%Y%m%d%H%M"))
}

/// The order ref of a stock sale: `L-{symbol}-{yyyymmddHHMM}` (UTC).
pub fn liquidation_order_ref(symbol: &Symbol, time: DateTime<Utc>) -> String {
    format!("L-{symbol}-{}", time.format("%Y%m%d%H%M"))
}

fn is_stamp(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The trade id inside a ref made by [`close_order_ref`] (trade ids may
/// hold dashes; reasons and stamps do not).
fn close_ref_trade_id(order_ref: &str) -> Option<&str> {
    let rest = order_ref.strip_prefix("X-")?;
    let (rest, stamp) = rest.rsplit_once('-')?;
    let (trade_id, reason) = rest.rsplit_once('-')?;
    (is_stamp(stamp) && reason.parse::<ExitReason>().is_ok() && !trade_id.is_empty())
        .then_some(trade_id)
}

/// The symbol inside a ref made by [`liquidation_order_ref`].
fn liquidation_ref_symbol(order_ref: &str) -> Option<&str> {
    let rest = order_ref.strip_prefix("L-")?;
    let (symbol, stamp) = rest.rsplit_once('-')?;
    (is_stamp(stamp) && !symbol.is_empty()).then_some(symbol)
}

/// What is already working, by trade id and by symbol.
struct Working<'a> {
    trades: HashSet<&'a str>,
    symbols: HashSet<&'a str>,
}

impl<'a> Working<'a> {
    fn new(working: &'a [String]) -> Self {
        let mut trades = HashSet::new();
        let mut symbols = HashSet::new();
        for w in working {
            let w = w.as_str();
            match (close_ref_trade_id(w), liquidation_ref_symbol(w)) {
                (Some(t), _) => {
                    trades.insert(t);
                }
                (None, Some(s)) => {
                    symbols.insert(s);
                }
                // A bare trade id or symbol.
                (None, None) => {
                    trades.insert(w);
                    symbols.insert(w);
                }
            }
        }
        Working { trades, symbols }
    }

    fn has_trade(&self, trade_id: &str) -> bool {
        self.trades.contains(trade_id)
    }

    fn has_symbol(&self, symbol: &Symbol) -> bool {
        self.symbols.contains(symbol.as_str())
    }
}

/// Open trades, the first of each trade id, in the order given.
fn unique_open(trades: &[Trade]) -> Vec<Trade> {
    let mut seen = HashSet::new();
    trades
        .iter()
        .filter(|t| t.status == TradeStatus::Open && seen.insert(t.trade_id.as_str()))
        .cloned()
        .collect()
}

fn put_of(t: &Trade) -> OptionContract {
    OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration)
}

fn quote_of<'a>(snapshot: &'a MarketSnapshot, t: &Trade) -> Option<&'a OptionQuote> {
    snapshot.option_quotes.iter().find(|q| {
        q.contract.underlying == t.symbol
            && q.contract.right == Right::Put
            && q.contract.strike == t.strike
            && q.contract.expiry == t.expiration
    })
}

/// The underlying's price: the mid of a two-sided quote, else the last.
fn spot_of(snapshot: &MarketSnapshot, symbol: &Symbol) -> Option<Price> {
    let u = snapshot.underlyings.iter().find(|u| &u.symbol == symbol)?;
    u.quote
        .mid()
        .filter(|p| p.is_positive())
        .or_else(|| u.quote.last.filter(|p| p.is_positive()))
}

fn merge_context(record: &mut DecisionRecord, key: &str, extra: Value) {
    match &mut record.context {
        Value::Object(map) => {
            map.insert(key.to_string(), extra);
        }
        other => {
            let mut map = Map::new();
            if !other.is_null() {
                map.insert("strategy_context".into(), other.take());
            }
            map.insert(key.to_string(), extra);
            record.context = Value::Object(map);
        }
    }
}

fn dollars(p: Price) -> f64 {
    p.to_f64()
}

/// A dollar parameter as a positive price (to $0.0001); a problem is
/// recorded otherwise.
fn price_param(name: &str, value: f64, problems: &mut Vec<String>) -> Price {
    match Price::from_f64(value) {
        Ok(p) if p.is_positive() => p,
        Ok(p) => {
            problems.push(format!("{name} must be positive dollars, got {value}"));
            p
        }
        Err(e) => {
            problems.push(format!("{name}: {e}"));
            Price::ZERO
        }
    }
}

impl ExitManager {
    /// A manager with `params`, refused (naming every problem) when an
    /// amount is not a finite positive number, the bound's minimum exceeds
    /// its maximum, or the fraction is negative.
    pub fn new(params: ExitParams) -> Result<Self, DomainError> {
        let mut problems = Vec::new();
        let max_loss = match Money::from_f64_dollars(params.max_position_loss) {
            Ok(m) if m.cents() > 0 => m,
            Ok(_) => {
                problems.push(format!(
                    "max_position_loss must be positive dollars, got {}",
                    params.max_position_loss
                ));
                Money::ZERO
            }
            Err(e) => {
                problems.push(format!("max_position_loss: {e}"));
                Money::ZERO
            }
        };
        let bound_min = price_param(
            "marketable_bound_min",
            params.marketable_bound_min,
            &mut problems,
        );
        let bound_max = price_param(
            "marketable_bound_max",
            params.marketable_bound_max,
            &mut problems,
        );
        if bound_max < bound_min {
            problems.push(format!(
                "marketable_bound_max ({}) must be at least marketable_bound_min ({})",
                params.marketable_bound_max, params.marketable_bound_min
            ));
        }
        let f = params.marketable_bound_fraction;
        if !(f.is_finite() && (0.0..=10.0).contains(&f)) {
            problems.push(format!(
                "marketable_bound_fraction must be in 0..=10, got {f}"
            ));
        }
        let tick_small = price_param("option_tick_small", params.option_tick_small, &mut problems);
        let tick_large = price_param("option_tick_large", params.option_tick_large, &mut problems);
        let tick_break = price_param("option_tick_break", params.option_tick_break, &mut problems);
        let stock_tick = price_param("stock_tick", params.stock_tick, &mut problems);
        if !problems.is_empty() {
            return Err(DomainError::Invalid(format!(
                "exit parameters: {}",
                problems.join("; ")
            )));
        }
        Ok(ExitManager {
            params,
            max_loss,
            bound_min,
            bound_max,
            tick_small,
            tick_large,
            tick_break,
            stock_tick,
        })
    }

    /// The parameters it was made with.
    pub fn params(&self) -> &ExitParams {
        &self.params
    }

    /// The per-position loss limit in cents.
    pub fn max_position_loss(&self) -> Money {
        self.max_loss
    }

    /// The bound of a marketable limit around `reference`:
    /// `fraction × reference` clamped to `[min, max]`.
    pub fn marketable_bound(&self, reference: Price) -> Price {
        let scaled = reference.to_f64().max(0.0) * self.params.marketable_bound_fraction;
        let raw = Price::from_f64(scaled).unwrap_or(self.bound_max);
        raw.max(self.bound_min).min(self.bound_max)
    }

    /// The tick of an option priced at `price`.
    pub fn option_tick(&self, price: Price) -> Price {
        if price < self.tick_break {
            self.tick_small
        } else {
            self.tick_large
        }
    }

    /// A buy limit for an option: `price` rounded up to its tick, at least
    /// one tick.
    pub fn option_buy_limit(&self, price: Price) -> Price {
        if !price.is_positive() {
            return self.tick_small;
        }
        price.ceil_to_tick(self.option_tick(price))
    }

    /// The limit of attempt `attempt` of `order` by the cancel/replace
    /// policy ([`crate::exit_limit`]) against `quote`, on the contract's
    /// tick: an option buy rounded **up** to the option tick (a cent-rounded
    /// 3.38 is not a price of a nickel-tick option; IBKR refuses it with
    /// error 110), a stock sale down to the stock tick. `None` without the
    /// touch the policy needs (the order keeps the manager's own limit).
    pub fn repriced_limit(
        &self,
        order: &ExitOrder,
        quote: &core_domain::Quote,
        attempt: u32,
        policy: &crate::RepricePolicy,
    ) -> Option<Price> {
        let limit = crate::exit_limit(order.intent.side, order.reason, quote, attempt, policy)?;
        Some(match (&order.intent.contract, order.intent.side) {
            (Contract::Option(_), Side::Buy) => self.option_buy_limit(limit),
            (Contract::Stock(_), Side::Sell) => self.stock_sell_limit(limit),
            _ => limit,
        })
    }

    /// A sell limit for stock: `price` rounded down to the stock tick, at
    /// least one tick.
    pub fn stock_sell_limit(&self, price: Price) -> Price {
        price.floor_to_tick(self.stock_tick).max(self.stock_tick)
    }

    /// The loss if `t` were closed at `ask`, commissions left out:
    /// `(ask − entry premium) × 100 × contracts`, exact.
    pub fn loss_at(t: &Trade, ask: Price) -> Money {
        ask.notional(t.contracts, 100) - t.entry_premium.notional(t.contracts, 100)
    }

    fn loss_criterion(&self, loss: Option<Money>) -> Criterion {
        let threshold = format!(
            ">= {} (cost to close at the ask − entry premium) × 100 × contracts",
            self.max_loss
        );
        match loss {
            Some(l) => Criterion {
                name: "position_loss_limit".into(),
                value: l.to_string(),
                threshold,
                passed: l >= self.max_loss,
                numeric_value: Some(l.to_f64()),
            },
            None => Criterion::text(
                "position_loss_limit",
                "no ask: not judged",
                threshold,
                false,
            ),
        }
    }

    /// The contracts to buy back: the trade's, capped at the short quantity
    /// the broker shows when `positions` holds the option; an error when it
    /// holds it with no short quantity.
    fn close_quantity(
        t: &Trade,
        put: &OptionContract,
        positions: &[Position],
    ) -> Result<i64, String> {
        if t.contracts <= 0 {
            return Err(format!("the trade has {} contracts", t.contracts));
        }
        let key = put.key();
        let held: Vec<i64> = positions
            .iter()
            .filter_map(|p| match &p.contract {
                Contract::Option(o) if o.key() == key => Some(p.quantity),
                _ => None,
            })
            .collect();
        if held.is_empty() {
            return Ok(t.contracts);
        }
        let q: i64 = held.iter().sum();
        if q < 0 {
            Ok(t.contracts.min(q.saturating_neg()))
        } else {
            Err(format!(
                "the broker shows {q} of {key}, no short position: buying would open a long put; reconcile"
            ))
        }
    }

    fn close_intent(
        t: &Trade,
        contract: OptionContract,
        quantity: i64,
        limit: Price,
        reason: ExitReason,
        time: DateTime<Utc>,
    ) -> OrderIntent {
        OrderIntent {
            order_ref: close_order_ref(&t.trade_id, reason, time),
            contract: Contract::Option(contract),
            side: Side::Buy,
            quantity,
            limit_price: limit,
            time_in_force: TimeInForce::Day,
            purpose: OrderPurpose::Close,
            trade_id: Some(t.trade_id.clone()),
            created_at: time,
        }
    }

    fn working_hold(t: &Trade, time: DateTime<Utc>, emergency: bool) -> DecisionRecord {
        let why = if emergency {
            "a close order is working: cancel it before the emergency close, not closing twice"
        } else {
            "a close order is already working: not proposing a second"
        };
        DecisionRecord::new(
            time,
            DecisionKind::Hold,
            t.trade_id.clone(),
            "hold:close_working",
            why,
        )
        .with_criteria(vec![Criterion::text(
            "close_working",
            "yes",
            "no close order working",
            false,
        )])
        .with_context(json!({"contract": put_of(t).key(), "contracts": t.contracts}))
    }

    fn quantity_hold(t: &Trade, why: String, time: DateTime<Utc>) -> DecisionRecord {
        DecisionRecord::new(
            time,
            DecisionKind::Hold,
            t.trade_id.clone(),
            "hold:no_short_position",
            why.clone(),
        )
        .with_criteria(vec![Criterion::text(
            "close_quantity",
            why,
            "a short position to buy back",
            false,
        )])
        .with_context(json!({"contract": put_of(t).key(), "contracts": t.contracts}))
    }

    /// One engine cycle's exits: the strategy's, the per-position loss
    /// limit and the sale of assigned stock (rules 1–6 above).
    ///
    /// * `open_trades`: trades with status `Open` are managed (closed ones
    ///   are ignored); the strategy sees only those.
    /// * `positions`: the broker's positions (stock to liquidate; option
    ///   quantities cap the close quantity).
    /// * `assigned`: trades closed by assignment ([`ExitReason::Assigned`])
    ///   whose stock may still be held; only they make long stock ours.
    /// * `working_exits`: trade ids, symbols or order refs of closes and
    ///   liquidations working at the broker; no second order is proposed.
    ///
    /// Time stamps (records, intents, order refs) are `snapshot.time`.
    pub fn evaluate<S: Strategy + ?Sized>(
        &self,
        strategy: &S,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
        positions: &[Position],
        assigned: &[Trade],
        working_exits: &[String],
    ) -> ExitPlan {
        let time = snapshot.time;
        let working = Working::new(working_exits);
        let open = unique_open(open_trades);
        let (proposals, strategy_holds) = strategy.propose_exits(snapshot, &open);
        let mut plan = ExitPlan::default();
        for t in &open {
            if working.has_trade(&t.trade_id) {
                plan.holds.push(Self::working_hold(t, time, false));
                continue;
            }
            let proposal: Option<&ExitProposal> =
                proposals.iter().find(|p| p.trade_id == t.trade_id);
            let strategy_hold = strategy_holds.iter().find(|d| d.subject == t.trade_id);
            let quote = quote_of(snapshot, t);
            let ask = quote.and_then(|q| q.quote.ask).filter(|a| a.is_positive());
            let loss = ask.map(|a| Self::loss_at(t, a));
            let criterion = self.loss_criterion(loss);
            let breached = criterion.passed;
            let numbers = json!({
                "ask": ask.map(dollars),
                "bid": quote.and_then(|q| q.quote.bid).map(dollars),
                "entry_premium": dollars(t.entry_premium),
                "contracts": t.contracts,
                "loss_at_ask_cents": loss.map(|l| l.cents()),
                "max_position_loss_cents": self.max_loss.cents(),
            });
            let (reason, wanted, mut record) = match (proposal, ask) {
                (Some(p), _) => {
                    let mut record = p.decision.clone();
                    if breached {
                        record.reason = format!(
                            "{}; the position loss limit is also reached (loss at the ask {} >= {})",
                            record.reason,
                            loss.unwrap_or(Money::ZERO),
                            self.max_loss
                        );
                    }
                    (p.reason, p.limit_price, record)
                }
                (None, Some(ask)) if breached => {
                    let mut record = strategy_hold.cloned().unwrap_or_else(|| {
                        DecisionRecord::new(time, DecisionKind::Exit, t.trade_id.clone(), "", "")
                    });
                    record.reason = format!(
                        "position_loss_limit: closing {} at the ask {ask} (entry {}) loses {} >= {}",
                        t.contracts,
                        t.entry_premium,
                        loss.unwrap_or(Money::ZERO),
                        self.max_loss
                    );
                    (ExitReason::PositionLossLimit, ask, record)
                }
                (None, _) => {
                    let mut record = strategy_hold.cloned().unwrap_or_else(|| {
                        DecisionRecord::new(
                            time,
                            DecisionKind::Hold,
                            t.trade_id.clone(),
                            "hold",
                            format!(
                                "the strategy {} gave no decision for this trade and the position loss limit is not reached: holding",
                                strategy.name()
                            ),
                        )
                    });
                    record.kind = DecisionKind::Hold;
                    record.subject = t.trade_id.clone();
                    record.criteria.push(criterion);
                    merge_context(&mut record, "exit_manager", numbers);
                    plan.holds.push(record);
                    continue;
                }
            };
            let put = quote.map_or_else(|| put_of(t), |q| q.contract.clone());
            let quantity = match Self::close_quantity(t, &put, positions) {
                Ok(q) => q,
                Err(why) => {
                    let mut hold = Self::quantity_hold(t, why, time);
                    hold.criteria.extend(record.criteria);
                    hold.criteria.push(criterion);
                    let mut numbers = numbers;
                    if let Value::Object(map) = &mut numbers {
                        map.insert("wanted".into(), json!(reason.as_str()));
                    }
                    merge_context(&mut hold, "exit_manager", numbers);
                    plan.holds.push(hold);
                    continue;
                }
            };
            let limit = self.option_buy_limit(wanted);
            let intent = Self::close_intent(t, put, quantity, limit, reason, time);
            record.kind = DecisionKind::Exit;
            record.subject = t.trade_id.clone();
            record.decision = format!("exit:{reason}");
            record.criteria.push(criterion);
            let mut numbers = numbers;
            if let Value::Object(map) = &mut numbers {
                map.insert("order_ref".into(), json!(intent.order_ref));
                map.insert("reason".into(), json!(reason.as_str()));
                map.insert("quantity".into(), json!(quantity));
                map.insert("proposed_limit".into(), json!(dollars(wanted)));
                map.insert("limit".into(), json!(dollars(limit)));
            }
            merge_context(&mut record, "exit_manager", numbers);
            plan.exits.push(ExitOrder {
                intent,
                reason,
                decision: record,
            });
        }
        self.stock(
            snapshot,
            positions,
            Some(assigned),
            &working,
            time,
            &mut plan,
        );
        plan
    }

    /// The emergency stop: every open trade closed with
    /// [`ExitReason::Emergency`] and every long stock position sold, at
    /// marketable limits (see [`ExitManager`]). `working_exits` should be empty
    /// (the stop cancels working orders first); a trade or stock still
    /// listed there is held with a record, not ordered twice.
    pub fn emergency_exits(
        &self,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
        positions: &[Position],
        working_exits: &[String],
        time: DateTime<Utc>,
    ) -> ExitPlan {
        let working = Working::new(working_exits);
        let open = unique_open(open_trades);
        let mut plan = ExitPlan::default();
        let reason = ExitReason::Emergency;
        for t in &open {
            if working.has_trade(&t.trade_id) {
                plan.holds.push(Self::working_hold(t, time, true));
                continue;
            }
            let quote = quote_of(snapshot, t);
            let put = quote.map_or_else(|| put_of(t), |q| q.contract.clone());
            let quantity = match Self::close_quantity(t, &put, positions) {
                Ok(q) => q,
                Err(why) => {
                    plan.holds.push(Self::quantity_hold(t, why, time));
                    continue;
                }
            };
            let ask = quote.and_then(|q| q.quote.ask).filter(|a| a.is_positive());
            let bid = quote.and_then(|q| q.quote.bid).filter(|b| b.is_positive());
            let spot = spot_of(snapshot, &t.symbol);
            let (basis, reference, bound, wanted) = match (ask, spot, bid) {
                (Some(a), _, _) => {
                    let b = self.marketable_bound(a);
                    ("ask", a, b, a + b)
                }
                (None, Some(s), _) => {
                    let intrinsic = (t.strike - s).max(Price::ZERO);
                    let r = bid.map_or(intrinsic, |b| b.max(intrinsic));
                    let b = self.marketable_bound(r);
                    ("max(bid, intrinsic value)", r, b, r + b)
                }
                (None, None, Some(b)) => {
                    let bound = self.marketable_bound(b);
                    ("bid", b, bound, b + bound)
                }
                (None, None, None) => (
                    "strike (no quote, no spot)",
                    t.strike,
                    Price::ZERO,
                    t.strike,
                ),
            };
            let limit = self.option_buy_limit(wanted);
            let intent = Self::close_intent(t, put, quantity, limit, reason, time);
            let record = DecisionRecord::new(
                time,
                DecisionKind::Exit,
                t.trade_id.clone(),
                "exit:emergency",
                format!(
                    "emergency stop: buy to close {quantity} at {limit} ({basis} {reference} + bound {bound})"
                ),
            )
            .with_criteria(vec![
                Criterion::text("emergency_stop", "active", "active", true),
                Criterion::number("reference_price", dollars(reference), basis, true),
                Criterion::number(
                    "limit_price",
                    dollars(limit),
                    "reference + bound, rounded up to the tick, > 0",
                    limit.is_positive(),
                ),
            ])
            .with_context(json!({
                "order_ref": intent.order_ref,
                "contract": put_of(t).key(),
                "quantity": quantity,
                "ask": ask.map(dollars),
                "bid": bid.map(dollars),
                "underlying_price": spot.map(dollars),
                "bound": dollars(bound),
                "limit": dollars(limit),
                "entry_premium": dollars(t.entry_premium),
            }));
            plan.exits.push(ExitOrder {
                intent,
                reason,
                decision: record,
            });
        }
        // Short options the broker shows with no open trade.
        let keys: HashSet<String> = open.iter().map(|t| put_of(t).key()).collect();
        for p in positions {
            if let Contract::Option(o) = &p.contract
                && p.quantity < 0
                && !keys.contains(&o.key())
            {
                plan.untouched.push(Self::untouched(
                    &p.contract,
                    p.quantity,
                    "hold:no_trade",
                    "a short option with no open trade: the emergency stop closes trades; reconcile this position",
                    time,
                ));
            }
        }
        self.stock(snapshot, positions, None, &working, time, &mut plan);
        plan
    }

    fn untouched(
        contract: &Contract,
        quantity: i64,
        decision: &str,
        why: &str,
        time: DateTime<Utc>,
    ) -> DecisionRecord {
        DecisionRecord::new(time, DecisionKind::Hold, contract.key(), decision, why)
            .with_criteria(vec![Criterion::number(
                "quantity",
                quantity as f64,
                "a position the exit manager may act on",
                false,
            )])
            .with_context(json!({"contract": contract.key(), "quantity": quantity}))
    }

    /// Stock positions: sold (assigned stock, or every long stock in an
    /// emergency when `assigned` is `None`) or reported.
    fn stock(
        &self,
        snapshot: &MarketSnapshot,
        positions: &[Position],
        assigned: Option<&[Trade]>,
        working: &Working<'_>,
        time: DateTime<Utc>,
        plan: &mut ExitPlan,
    ) {
        let emergency = assigned.is_none();
        let mut seen: HashSet<&Symbol> = HashSet::new();
        for p in positions {
            let Contract::Stock(s) = &p.contract else {
                continue;
            };
            if !seen.insert(&s.symbol) {
                continue;
            }
            // Every row of the symbol (a broker reports one; be safe).
            let held: i64 = positions
                .iter()
                .filter(|q| matches!(&q.contract, Contract::Stock(x) if x.symbol == s.symbol))
                .map(|q| q.quantity)
                .sum();
            let contract = &p.contract;
            if held < 0 {
                plan.untouched.push(Self::untouched(
                    contract,
                    held,
                    "hold:short_stock",
                    "short stock: the system never sells stock short, so this is not its to cover",
                    time,
                ));
                continue;
            }
            if held == 0 {
                continue;
            }
            let (quantity, source, trade_id) = match assigned {
                None => (held, Vec::new(), None),
                Some(assigned) => {
                    let from: Vec<&Trade> = assigned
                        .iter()
                        .filter(|t| {
                            t.symbol == s.symbol && t.exit_reason == Some(ExitReason::Assigned)
                        })
                        .collect();
                    if from.is_empty() {
                        plan.untouched.push(Self::untouched(
                            contract,
                            held,
                            "hold:not_assigned",
                            "long stock with no assignment on record: not received by the system, left alone",
                            time,
                        ));
                        continue;
                    }
                    if self.params.liquidation == LiquidationRule::Manual {
                        plan.untouched.push(Self::untouched(
                            contract,
                            held,
                            "hold:manual_liquidation",
                            "stock received by assignment; the liquidation rule is manual: an operator decides",
                            time,
                        ));
                        continue;
                    }
                    let received = from
                        .iter()
                        .map(|t| t.contracts.max(0).saturating_mul(100))
                        .fold(0i64, i64::saturating_add);
                    let ids: Vec<String> = from.iter().map(|t| t.trade_id.clone()).collect();
                    let first = ids.first().cloned();
                    (held.min(received), ids, first)
                }
            };
            if quantity <= 0 {
                continue;
            }
            if working.has_symbol(&s.symbol) {
                plan.untouched.push(Self::untouched(
                    contract,
                    held,
                    "hold:liquidation_working",
                    "a sale of this stock is already working: not proposing a second",
                    time,
                ));
                continue;
            }
            let underlying = snapshot.underlyings.iter().find(|u| u.symbol == s.symbol);
            let stock_bid = underlying
                .and_then(|u| u.quote.bid)
                .filter(|b| b.is_positive());
            let reference = stock_bid
                .map(|b| (b, "bid"))
                .or_else(|| spot_of(snapshot, &s.symbol).map(|m| (m, "mid or last")))
                .or_else(|| {
                    p.market_price
                        .filter(|m| m.is_positive())
                        .map(|m| (m, "position mark"))
                });
            let Some((reference, basis)) = reference else {
                plan.untouched.push(Self::untouched(
                    contract,
                    held,
                    "hold:no_price",
                    "no bid, mid, last or mark for this stock: cannot price a limit, retrying next cycle",
                    time,
                ));
                continue;
            };
            let bound = self.marketable_bound(reference);
            let limit = self.stock_sell_limit(reference - bound);
            let reason = if emergency {
                ExitReason::Emergency
            } else {
                ExitReason::Assigned
            };
            let intent = OrderIntent {
                order_ref: liquidation_order_ref(&s.symbol, time),
                contract: Contract::Stock(s.clone()),
                side: Side::Sell,
                quantity,
                limit_price: limit,
                time_in_force: TimeInForce::Day,
                purpose: OrderPurpose::Liquidate,
                trade_id: trade_id.clone(),
                created_at: time,
            };
            let why = if emergency {
                "emergency stop: selling long stock"
            } else {
                "stock received by assignment: sold at the first cycle that sees it"
            };
            let record = DecisionRecord::new(
                time,
                DecisionKind::Exit,
                trade_id.unwrap_or_else(|| s.symbol.to_string()),
                format!("exit:{reason}"),
                format!(
                    "{why}: sell {quantity} of {held} shares of {} at {limit} ({basis} {reference} − bound {bound}), day order",
                    s.symbol
                ),
            )
            .with_criteria(vec![
                Criterion::number(
                    "shares",
                    quantity as f64,
                    format!("<= held ({held})"),
                    quantity <= held,
                ),
                Criterion::number("reference_price", dollars(reference), basis, true),
                Criterion::number(
                    "limit_price",
                    dollars(limit),
                    "reference − bound, rounded down to the tick, >= one tick",
                    limit.is_positive(),
                ),
            ])
            .with_context(json!({
                "order_ref": intent.order_ref,
                "symbol": s.symbol.as_str(),
                "held": held,
                "quantity": quantity,
                "assigned_trades": source,
                "reference": dollars(reference),
                "bound": dollars(bound),
                "limit": dollars(limit),
                "rule": if emergency { "emergency" } else { "next_cycle" },
            }));
            plan.exits.push(ExitOrder {
                intent,
                reason,
                decision: record,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_close_refs_parse_back_to_trade_ids_with_dashes() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let r = close_order_ref("T-20240109-AAPL-150P-1", ExitReason::StopLoss, t);
        assert_eq!(r, "X-T-20240109-AAPL-150P-1-stop_loss-197001010000");
        assert_eq!(close_ref_trade_id(&r), Some("T-20240109-AAPL-150P-1"));
        assert_eq!(close_ref_trade_id("X-T-1-nonsense-197001010000"), None);
        assert_eq!(close_ref_trade_id("T-1"), None);
        let s = Symbol::new("BRK.B").unwrap();
        let l = liquidation_order_ref(&s, t);
        assert_eq!(l, "L-BRK.B-197001010000");
        assert_eq!(liquidation_ref_symbol(&l), Some("BRK.B"));
        assert_eq!(liquidation_ref_symbol("L-AAPL"), None);
    }

    #[test]
    fn test_params_are_checked() {
        assert!(ExitManager::new(ExitParams::default()).is_ok());
        let bad = ExitParams {
            max_position_loss: -500.0,
            marketable_bound_min: 2.0,
            marketable_bound_fraction: f64::NAN,
            option_tick_small: 0.0,
            ..ExitParams::default()
        };
        let err = ExitManager::new(bad).unwrap_err().to_string();
        for k in [
            "max_position_loss",
            "marketable_bound_max",
            "marketable_bound_fraction",
            "option_tick_small",
        ] {
            assert!(err.contains(k), "{k} missing from {err}");
        }
    }

    #[test]
    fn test_bound_and_ticks() {
        let m = ExitManager::new(ExitParams::default()).unwrap();
        assert_eq!(
            m.marketable_bound(Price::from_cents(20)),
            Price::from_cents(5)
        );
        assert_eq!(
            m.marketable_bound(Price::from_cents(120)),
            Price::from_cents(12)
        );
        assert_eq!(
            m.marketable_bound(Price::from_cents(5_000)),
            Price::from_cents(100)
        );
        assert_eq!(
            m.option_buy_limit(Price::from_raw(29_990)),
            Price::from_cents(300)
        );
        assert_eq!(
            m.option_buy_limit(Price::from_cents(301)),
            Price::from_cents(305)
        );
        assert_eq!(
            m.option_buy_limit(Price::from_raw(4_501)),
            Price::from_cents(46)
        );
        assert_eq!(m.option_buy_limit(Price::ZERO), Price::from_cents(1));
        assert_eq!(
            m.stock_sell_limit(Price::from_raw(-3)),
            Price::from_cents(1)
        );
        assert_eq!(
            m.stock_sell_limit(Price::from_raw(1_234_567)),
            Price::from_cents(12_345)
        );
    }

    #[test]
    fn test_context_merges_into_objects_and_wraps_others() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let mut r =
            DecisionRecord::new(t, DecisionKind::Exit, "T", "x", "y").with_context(json!({"a": 1}));
        merge_context(&mut r, "b", json!(2));
        assert_eq!(r.context, json!({"a": 1, "b": 2}));
        let mut r =
            DecisionRecord::new(t, DecisionKind::Exit, "T", "x", "y").with_context(json!(7));
        merge_context(&mut r, "b", json!(2));
        assert_eq!(r.context, json!({"strategy_context": 7, "b": 2}));
    }
}
