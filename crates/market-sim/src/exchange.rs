//! The simulated exchange: implements `Broker` and `MarketData` over a
//! [`History`], the [`ChainModel`] and the NYSE calendar.
//!
//! Time moves only when [`SimExchange::advance_to`] is called (by the
//! engine's clock). Between two daily closes the exchange steps through
//! intraday checkpoints (every `checkpoint_minutes`, the open and the close
//! always included); prices between checkpoints are those of the last one.
//!
//! Trading rules (see `docs/MARKET_MODEL.md`):
//! * limit orders only; a new order fills at once only when marketable, at
//!   the touch (a sell at the bid, a buy at the ask), plus `slippage_ticks`,
//!   never beyond its limit and never at mid (unless `passive_fills`);
//! * a resting order fills at its limit at the first checkpoint whose quote
//!   crosses it; fills are capped at the displayed size;
//! * IBKR Pro fixed commissions; Reg-T margin;
//! * rejects, with the reason: market closed, unknown contract, price
//!   outside the band, insufficient margin, bad quantity;
//! * day orders expire at the close; options expiring in the money are
//!   assigned (short) or exercised (long) into stock at the strike, the rest
//!   expire worthless; deep in-the-money short puts near expiry are
//!   assigned early (Lean's rule).
//!
//! Deterministic: the same history, parameters and seed and the same calls
//! give byte-identical fills.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use core_domain::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Contract, DailyBar, Fill, Ledger,
    MarginImpact, MarketData, Money, OptionChain, OptionContract, OptionQuote, OrderIntent,
    OrderStatus, OrderUpdate, Position, Price, Quote, Right, Side, StockContract, Symbol,
    TimeInForce,
};

use crate::History;
use crate::calendar::NyseCalendar;
use crate::chain::{ChainModel, ExpiryContext, QuoteContext, VolState, con_id_for};
use crate::params::ExchangeParams;
use crate::path::{bridge, variance_times};

/// The account id the simulated exchange reports.
pub const SIM_ACCOUNT: &str = "SIM-PAPER";

/// The S&P 500 index: daily bars only (the history's index column), as
/// IBKR's `SPX` index contract.
pub const INDEX_SPX: &str = "SPX";
/// The CBOE volatility index: daily bars only (the history's VIX column,
/// 2014-01-03 … 2019-01-03; none outside), as IBKR's `VIX` index contract.
pub const INDEX_VIX: &str = "VIX";

/// The simulator's own error code for an account under margin at a close
/// (not an IBKR code), reported as a [`BrokerEvent::Error`].
pub const MARGIN_DEFICIENCY: i32 = 9_001;

/// One session's intraday checkpoints and the modelled prices at each.
#[derive(Debug, Clone)]
struct Day {
    session: usize,
    date: NaiveDate,
    times: Vec<DateTime<Utc>>,
    /// `prices[s][k]`: price of symbol `s` at checkpoint `k`; NaN if none.
    prices: Vec<Vec<f64>>,
    vols: Vec<Option<VolState>>,
    /// Expirations listed this session.
    expirations: Vec<NaiveDate>,
}

#[derive(Debug, Clone)]
struct SimOrder {
    id: i64,
    intent: OrderIntent,
    status: OrderStatus,
    filled: i64,
    /// Σ price.raw × quantity, for the average fill price.
    fill_value: i128,
    commission: Money,
    /// Σ of the per-contract or per-share charges before the order minimum
    /// and the cap, in dollars.
    raw_commission: f64,
    reason: Option<String>,
    /// Checkpoint sequence number at which it arrived.
    arrived: u64,
}

impl SimOrder {
    /// A new order with nothing filled.
    fn new(id: i64, intent: OrderIntent, status: OrderStatus, arrived: u64) -> Self {
        SimOrder {
            id,
            intent,
            status,
            filled: 0,
            fill_value: 0,
            commission: Money::ZERO,
            raw_commission: 0.0,
            reason: None,
            arrived,
        }
    }

    fn update(&self, time: DateTime<Utc>) -> OrderUpdate {
        OrderUpdate {
            order_ref: self.intent.order_ref.clone(),
            broker_order_id: Some(self.id),
            status: self.status,
            filled_quantity: self.filled,
            remaining_quantity: self.intent.quantity - self.filled,
            avg_fill_price: (self.filled > 0).then(|| {
                Price::from_raw(
                    i64::try_from(self.fill_value / i128::from(self.filled)).unwrap_or(0),
                )
            }),
            reason: self.reason.clone(),
            time,
        }
    }
}

#[derive(Debug)]
struct State {
    now: DateTime<Utc>,
    /// The current (or last) session and checkpoint.
    day: Day,
    checkpoint: usize,
    /// Whether the current session's close has been processed.
    closed: bool,
    /// Increments at every checkpoint processed.
    sequence: u64,
    ledger: Ledger,
    orders: BTreeMap<i64, SimOrder>,
    by_ref: HashMap<String, i64>,
    events: VecDeque<BrokerEvent>,
    /// Fills of orders.
    executions: Vec<Fill>,
    /// Option legs closed by expiry, assignment or exercise, and the stock
    /// moved by them (not executions of any order).
    settlements: Vec<Fill>,
    /// The account marked at each session's close.
    daily: Vec<AccountSnapshot>,
    next_order_id: i64,
    next_exec: u64,
}

/// The in-process simulated exchange.
#[derive(Debug)]
pub struct SimExchange {
    history: Arc<History>,
    calendar: NyseCalendar,
    model: ChainModel,
    params: ExchangeParams,
    state: Mutex<State>,
}

impl SimExchange {
    /// Opens the exchange at the first checkpoint (the open) of the first
    /// session of `history` on or after `start`, with the starting cash of
    /// `params` deposited.
    pub fn new(
        history: Arc<History>,
        model: ChainModel,
        params: ExchangeParams,
        start: NaiveDate,
    ) -> Result<Self, BrokerError> {
        let calendar = NyseCalendar::new();
        let first = history.dates.partition_point(|d| *d < start);
        if first >= history.dates.len() {
            return Err(BrokerError::NoData(format!(
                "no session on or after {start} in the history (it ends {})",
                history
                    .dates
                    .last()
                    .map_or("empty".into(), |d| d.to_string())
            )));
        }
        let day = build_day(&history, &calendar, &model, &params, first);
        let now = day.times.first().copied().unwrap_or_default();
        let mut ledger = Ledger::new();
        let cash = Money::from_f64_dollars(params.starting_cash)
            .map_err(|e| BrokerError::Protocol(e.to_string()))?;
        ledger.deposit(now, cash, "starting cash");
        Ok(SimExchange {
            history,
            calendar,
            model,
            params,
            state: Mutex::new(State {
                now,
                day,
                checkpoint: 0,
                closed: false,
                sequence: 0,
                ledger,
                orders: BTreeMap::new(),
                by_ref: HashMap::new(),
                events: VecDeque::new(),
                executions: Vec::new(),
                settlements: Vec::new(),
                daily: Vec::new(),
                next_order_id: 1,
                next_exec: 1,
            }),
        })
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn calendar(&self) -> &NyseCalendar {
        &self.calendar
    }

    pub fn model(&self) -> &ChainModel {
        &self.model
    }

    pub fn params(&self) -> &ExchangeParams {
        &self.params
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exchange's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    /// The session the exchange is in (or last closed).
    pub fn session_date(&self) -> NaiveDate {
        self.lock().day.date
    }

    /// Whether orders are accepted now (inside a session, before its close).
    pub fn is_open(&self) -> bool {
        let st = self.lock();
        !st.closed && st.now < st.day.times.last().copied().unwrap_or(st.now)
    }

    /// The next checkpoint after now, if the history has one.
    pub fn next_checkpoint(&self) -> Option<DateTime<Utc>> {
        let st = self.lock();
        self.next_checkpoint_of(&st)
    }

    fn next_checkpoint_of(&self, st: &State) -> Option<DateTime<Utc>> {
        if !st.closed && st.checkpoint + 1 < st.day.times.len() {
            return st.day.times.get(st.checkpoint + 1).copied();
        }
        let next = st.day.session + 1;
        (next < self.history.dates.len())
            .then(|| self.calendar.session_open(self.history.dates[next]))
            .flatten()
    }

    /// Moves time forward to `t`, processing every checkpoint on the way:
    /// new prices, fills of resting orders, and at each close the expiry of
    /// day orders, assignments and expirations. Returns how many
    /// checkpoints were processed. Time never moves back.
    pub fn advance_to(&self, t: DateTime<Utc>) -> usize {
        let mut st = self.lock();
        let mut processed = 0;
        while let Some(next) = self.next_checkpoint_of(&st) {
            if next > t {
                break;
            }
            if st.closed || st.checkpoint + 1 >= st.day.times.len() {
                let session = st.day.session + 1;
                st.day = build_day(
                    &self.history,
                    &self.calendar,
                    &self.model,
                    &self.params,
                    session,
                );
                st.checkpoint = 0;
                st.closed = false;
            } else {
                st.checkpoint += 1;
            }
            st.now = next;
            st.sequence += 1;
            self.match_resting(&mut st);
            if st.checkpoint + 1 == st.day.times.len() {
                self.close_session(&mut st);
            }
            processed += 1;
        }
        if t > st.now {
            st.now = t;
        }
        processed
    }

    /// The checkpoints of the session `date`, if it is one.
    pub fn checkpoint_times(&self, date: NaiveDate) -> Vec<DateTime<Utc>> {
        checkpoint_times(&self.calendar, &self.params, date)
    }

    fn symbol_index(&self, symbol: &Symbol) -> Result<usize, BrokerError> {
        self.history.symbol_index(symbol).ok_or_else(|| {
            BrokerError::UnknownContract(format!("{symbol}: not a symbol of the simulated market"))
        })
    }

    fn spot(&self, st: &State, s: usize) -> Option<f64> {
        st.day
            .prices
            .get(s)
            .and_then(|p| p.get(st.checkpoint))
            .copied()
            .filter(|p| p.is_finite() && *p > 0.0)
    }

    /// The quoting context of an underlying now.
    fn quote_context(&self, st: &State, symbol: &Symbol) -> Result<QuoteContext<'_>, BrokerError> {
        let s = self.symbol_index(symbol)?;
        let spot = self
            .spot(st, s)
            .ok_or_else(|| BrokerError::NoData(format!("{symbol}: no price on {}", st.day.date)))?;
        let vol = st.day.vols.get(s).copied().flatten().ok_or_else(|| {
            BrokerError::NoData(format!(
                "{symbol}: not enough history before {} to model options",
                st.day.date
            ))
        })?;
        let sector = self
            .history
            .symbols
            .get(s)
            .map_or("", |i| i.sector.as_str());
        // Prices are those of the last checkpoint, and so is the quote's
        // time (and the session date its noise is keyed by).
        let now = st.day.times.get(st.checkpoint).copied().unwrap_or(st.now);
        Ok(QuoteContext {
            now,
            spot,
            vol,
            sector,
        })
    }

    fn check_listed(&self, st: &State, contract: &OptionContract) -> Result<(), BrokerError> {
        let spot = self
            .history
            .symbol_index(&contract.underlying)
            .and_then(|s| self.spot(st, s))
            .unwrap_or(f64::NAN);
        if self
            .model
            .is_listed_in(contract, st.day.date, spot, &st.day.expirations)
        {
            Ok(())
        } else {
            Err(BrokerError::UnknownContract(format!(
                "{}: not listed on {} (expiry or strike not on the exchange's grid)",
                contract.key(),
                st.day.date
            )))
        }
    }

    fn quote_option(
        &self,
        st: &State,
        contract: &OptionContract,
    ) -> Result<OptionQuote, BrokerError> {
        let ctx = self.quote_context(st, &contract.underlying)?;
        self.check_listed(st, contract)?;
        Ok(self
            .model
            .quote(&self.calendar, &ctx, contract, self.params.seed))
    }

    /// Quotes many contracts, sharing the work per underlying and expiry;
    /// contracts that cannot be quoted are left out.
    fn quote_options(&self, st: &State, contracts: &[OptionContract]) -> Vec<OptionQuote> {
        let mut contexts: Vec<(&Symbol, Option<QuoteContext<'_>>)> = Vec::new();
        let mut expiries: Vec<(&Symbol, ExpiryContext)> = Vec::new();
        let mut out = Vec::with_capacity(contracts.len());
        for c in contracts {
            if self.check_listed(st, c).is_err() {
                continue;
            }
            let ctx = match contexts.iter().find(|(s, _)| **s == c.underlying) {
                Some((_, ctx)) => *ctx,
                None => {
                    let ctx = self.quote_context(st, &c.underlying).ok();
                    contexts.push((&c.underlying, ctx));
                    ctx
                }
            };
            let Some(ctx) = ctx else { continue };
            let e = match expiries
                .iter()
                .find(|(s, e)| **s == c.underlying && e.expiry == c.expiry)
            {
                Some((_, e)) => *e,
                None => {
                    let e = self.model.expiry_context(&self.calendar, &ctx, c.expiry);
                    expiries.push((&c.underlying, e));
                    e
                }
            };
            out.push(self.model.quote_at(&ctx, &e, c, self.params.seed));
        }
        out
    }

    fn stock_quote_at(&self, st: &State, symbol: &Symbol) -> Result<Quote, BrokerError> {
        let s = self.symbol_index(symbol)?;
        let spot = self
            .spot(st, s)
            .ok_or_else(|| BrokerError::NoData(format!("{symbol}: no price on {}", st.day.date)))?;
        let tick = if spot < 1.0 {
            Price::from_raw(1)
        } else {
            Price::from_cents(1)
        };
        let bid = Price::from_f64(spot - tick.to_f64() / 2.0)
            .unwrap_or(Price::ZERO)
            .floor_to_tick(tick);
        let ask = Price::from_f64(spot + tick.to_f64() / 2.0)
            .unwrap_or(tick)
            .ceil_to_tick(tick);
        let ask = if ask <= bid { bid + tick } else { ask };
        Ok(Quote {
            contract: Contract::Stock(StockContract {
                con_id: Some(con_id_for(symbol.as_str())),
                ..StockContract::us(symbol.clone())
            }),
            bid: Some(bid),
            ask: Some(ask),
            last: Price::from_f64(spot).ok(),
            bid_size: Some(100),
            ask_size: Some(100),
            time: st.now,
            implied_vol: None,
            greeks: None,
            underlying_price: None,
            open_interest: None,
            volume: None,
        })
    }

    fn quote_any(&self, st: &State, contract: &Contract) -> Result<Quote, BrokerError> {
        match contract {
            Contract::Stock(s) => self.stock_quote_at(st, &s.symbol),
            Contract::Option(o) => self.quote_option(st, o).map(|q| q.quote),
        }
    }

    fn tick_of(&self, contract: &Contract, price: f64) -> Price {
        match contract {
            Contract::Stock(_) if price < 1.0 => Price::from_raw(1),
            Contract::Stock(_) => Price::from_cents(1),
            Contract::Option(o) => self.model.tick(&o.underlying, price),
        }
    }

    /// The mark of a position's contract: the mid, or for an option that
    /// cannot be quoted any more, its intrinsic value.
    fn mark(&self, st: &State, contract: &Contract) -> Option<Price> {
        if let Ok(q) = self.quote_any(st, contract)
            && let Some(mid) = q.mid()
        {
            return Some(mid);
        }
        match contract {
            Contract::Option(o) => {
                let s = self.history.symbol_index(&o.underlying)?;
                let spot = self.spot(st, s).or_else(|| self.last_close(st, s))?;
                let k = o.strike.to_f64();
                let intrinsic = match o.right {
                    Right::Put => (k - spot).max(0.0),
                    Right::Call => (spot - k).max(0.0),
                };
                Price::from_f64(intrinsic).ok()
            }
            Contract::Stock(s) => {
                let i = self.history.symbol_index(&s.symbol)?;
                self.last_close(st, i).and_then(|p| Price::from_f64(p).ok())
            }
        }
    }

    fn last_close(&self, st: &State, s: usize) -> Option<f64> {
        (0..=st.day.session)
            .rev()
            .find_map(|d| self.history.close(s, d))
    }

    fn marks(&self, st: &State) -> BTreeMap<String, Price> {
        st.ledger
            .positions()
            .filter_map(|p| self.mark(st, &p.contract).map(|m| (p.contract.key(), m)))
            .collect()
    }

    /// Initial and maintenance margin of a set of positions (contract,
    /// signed quantity) at the current marks: Reg-T short option
    /// requirement, 50% / 25% for long stock, 150% / 30% for short stock.
    fn margin_of<'a>(
        &self,
        st: &State,
        positions: impl Iterator<Item = (&'a Contract, i64)>,
    ) -> (Money, Money) {
        let mut initial = Money::ZERO;
        let mut maintenance = Money::ZERO;
        for (contract, qty) in positions {
            if qty == 0 {
                continue;
            }
            let mark = self.mark(st, contract).unwrap_or(Price::ZERO);
            match contract {
                Contract::Option(o) if qty < 0 => {
                    let s = self.history.symbol_index(&o.underlying);
                    let spot = s
                        .and_then(|s| self.spot(st, s).or_else(|| self.last_close(st, s)))
                        .unwrap_or(0.0);
                    let spot_price = Price::from_f64(spot).unwrap_or(Price::ZERO);
                    let m = match o.right {
                        // Without a usable price, the cash-secured amount (conservative).
                        Right::Put => pricing::short_put_margin(spot_price, o.strike, mark, -qty)
                            .unwrap_or_else(|_| o.strike.notional(-qty, o.multiplier)),
                        Right::Call => short_call_margin(spot_price, o.strike, mark, -qty),
                    };
                    initial += m;
                    maintenance += m;
                }
                Contract::Option(_) => {}
                Contract::Stock(_) => {
                    let value = mark.notional(qty.abs(), 1);
                    let (i, m) = if qty > 0 { (50, 25) } else { (150, 30) };
                    initial += Money::from_cents(value.cents() * i / 100);
                    maintenance += Money::from_cents(value.cents() * m / 100);
                }
            }
        }
        (initial, maintenance)
    }

    /// Positions (contract, signed quantity) with `extra` quantities added.
    fn positions_with(&self, st: &State, extra: &[(Contract, i64)]) -> Vec<(Contract, i64)> {
        let mut map: BTreeMap<String, (Contract, i64)> = st
            .ledger
            .positions()
            .map(|p| (p.contract.key(), (p.contract.clone(), p.quantity)))
            .collect();
        for (c, q) in extra {
            map.entry(c.key()).or_insert_with(|| (c.clone(), 0)).1 += q;
        }
        map.into_values().collect()
    }

    /// The unfilled quantities of working orders, signed.
    fn working_quantities(st: &State) -> Vec<(Contract, i64)> {
        st.orders
            .values()
            .filter(|o| o.status.is_working())
            .map(|o| {
                (
                    o.intent.contract.clone(),
                    o.intent.side.sign() * (o.intent.quantity - o.filled),
                )
            })
            .collect()
    }

    fn account(&self, st: &State) -> AccountSnapshot {
        let marks = self.marks(st);
        let net = st.ledger.equity(&marks);
        let positions = self.positions_with(st, &[]);
        let (initial, maintenance) = self.margin_of(st, positions.iter().map(|(c, q)| (c, *q)));
        AccountSnapshot {
            time: st.now,
            account: SIM_ACCOUNT.into(),
            net_liquidation: net,
            cash: st.ledger.cash(),
            excess_liquidity: net - maintenance,
            initial_margin: initial,
            maintenance_margin: maintenance,
            realized_pnl: st.ledger.realized_pnl(),
            unrealized_pnl: st.ledger.unrealized_pnl(&marks),
        }
    }

    /// The commission of a fill of `qty` at `price` on `order`, with the
    /// order's new running raw charge. IBKR Pro fixed: per contract by
    /// premium level, or per share capped at a share of the trade value;
    /// the minimum applies to the whole order, not to each fill.
    fn commission(&self, order: &SimOrder, price: Price, qty: i64) -> (Money, f64) {
        let p = &self.params;
        let (added, is_stock) = match &order.intent.contract {
            Contract::Option(_) => {
                let per = if price >= Price::from_cents(10) {
                    p.option_commission
                } else if price >= Price::from_cents(5) {
                    p.option_commission_cheap
                } else {
                    p.option_commission_penny
                };
                (per * qty as f64, false)
            }
            Contract::Stock(_) => (p.stock_commission * qty as f64, true),
        };
        let raw_total = order.raw_commission + added;
        let mut total = raw_total.max(p.min_commission);
        if is_stock {
            let value = (order.fill_value + i128::from(price.raw()) * i128::from(qty)) as f64
                / core_domain::PRICE_SCALE as f64;
            total = total.min(p.stock_commission_cap * value);
        }
        let total = Money::from_f64_dollars(total).unwrap_or(Money::ZERO);
        ((total - order.commission).max(Money::ZERO), raw_total)
    }

    /// Tries to fill `id` against the current quote. `arriving` orders fill
    /// at the touch; resting ones at their limit.
    fn try_fill(&self, st: &mut State, id: i64, arriving: bool) {
        let Some(order) = st.orders.get(&id).cloned() else {
            return;
        };
        if !order.status.is_working() || order.status == OrderStatus::PendingCancel {
            return;
        }
        let Ok(quote) = self.quote_any(st, &order.intent.contract) else {
            return;
        };
        let (Some(bid), Some(ask)) = (quote.bid, quote.ask) else {
            return;
        };
        let limit = order.intent.limit_price;
        let tick = self.tick_of(&order.intent.contract, limit.to_f64());
        let slip = Price::from_raw(tick.raw() * self.params.slippage_ticks);
        let (marketable, touch_price, size) = match order.intent.side {
            Side::Sell => (
                bid.is_positive() && limit <= bid,
                (bid - slip).max(limit),
                quote.bid_size,
            ),
            Side::Buy => (limit >= ask, (ask + slip).min(limit), quote.ask_size),
        };
        let passive = self.params.passive_fills
            && !arriving
            && order.arrived < st.sequence
            && limit > bid
            && limit < ask;
        let price = if marketable {
            if arriving { touch_price } else { limit }
        } else if passive {
            limit
        } else {
            return;
        };
        let remaining = order.intent.quantity - order.filled;
        let qty = remaining.min(size.unwrap_or(remaining).max(1));
        let (commission, raw_commission) = self.commission(&order, price, qty);
        let exec_id = format!("SIM-{:08}", st.next_exec);
        st.next_exec += 1;
        let fill = Fill {
            exec_id,
            order_ref: order.intent.order_ref.clone(),
            contract: order.intent.contract.clone(),
            side: order.intent.side,
            quantity: qty,
            price,
            commission,
            time: st.now,
        };
        if st.ledger.post_fill(&fill).is_err() {
            return;
        }
        let now = st.now;
        if let Some(o) = st.orders.get_mut(&id) {
            o.filled += qty;
            o.fill_value += i128::from(price.raw()) * i128::from(qty);
            o.commission += commission;
            o.raw_commission = raw_commission;
            o.status = if o.filled == o.intent.quantity {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
            let update = o.update(now);
            st.events.push_back(BrokerEvent::Fill(fill.clone()));
            st.events.push_back(BrokerEvent::OrderStatus(update));
        }
        st.executions.push(fill);
    }

    fn match_resting(&self, st: &mut State) {
        let ids: Vec<i64> = st
            .orders
            .iter()
            .filter(|(_, o)| o.status.is_working())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.try_fill(st, id, false);
        }
    }

    fn set_status(&self, st: &mut State, id: i64, status: OrderStatus, reason: &str) {
        let now = st.now;
        if let Some(o) = st.orders.get_mut(&id) {
            o.status = status;
            o.reason = Some(reason.to_string());
            let update = o.update(now);
            st.events.push_back(BrokerEvent::OrderStatus(update));
        }
    }

    /// End of session: day orders expire, options settle.
    fn close_session(&self, st: &mut State) {
        let today = st.day.date;
        let ending: Vec<(i64, &'static str)> = st
            .orders
            .iter()
            .filter(|(_, o)| o.status.is_working())
            .filter_map(|(id, o)| {
                let option_expires =
                    matches!(&o.intent.contract, Contract::Option(c) if c.expiry <= today);
                if option_expires {
                    Some((*id, "the option expired"))
                } else if o.intent.time_in_force != TimeInForce::Gtc {
                    Some((*id, "day order expired at the close"))
                } else {
                    None
                }
            })
            .collect();
        for (id, why) in ending {
            self.set_status(st, id, OrderStatus::Expired, why);
        }
        let options: Vec<(OptionContract, i64)> = st
            .ledger
            .positions()
            .filter_map(|p| match &p.contract {
                Contract::Option(o) => Some((o.clone(), p.quantity)),
                Contract::Stock(_) => None,
            })
            .collect();
        for (o, qty) in options {
            let Some(s) = self.history.symbol_index(&o.underlying) else {
                continue;
            };
            let Some(spot) = self.spot(st, s).or_else(|| self.last_close(st, s)) else {
                continue;
            };
            let k = o.strike.to_f64();
            let itm = match o.right {
                Right::Put => k - spot,
                Right::Call => spot - k,
            };
            let days_left = (o.expiry - today).num_days();
            if o.expiry <= today {
                if itm >= 0.01 {
                    self.settle_exercise(st, &o, qty);
                } else {
                    self.settle_expiry(st, &o, qty);
                }
            } else if qty < 0
                && o.right == Right::Put
                && days_left <= self.params.early_assignment_days
                && itm / k > self.params.early_assignment_itm
            {
                self.settle_exercise(st, &o, qty);
            }
        }
        // Daily marking, and a warning when the account is under margin.
        let account = self.account(st);
        if account.excess_liquidity.is_negative() {
            st.events.push_back(BrokerEvent::Error {
                code: MARGIN_DEFICIENCY,
                message: format!(
                    "margin deficiency at the close of {today}: excess liquidity ${} (net liquidation ${}, maintenance margin ${}); reduce positions",
                    account.excess_liquidity, account.net_liquidation, account.maintenance_margin
                ),
                order_ref: None,
            });
        }
        st.daily.push(account);
        st.closed = true;
    }

    fn settlement_fill(
        st: &mut State,
        tag: &str,
        contract: Contract,
        side: Side,
        qty: i64,
        price: Price,
    ) -> Fill {
        let fill = Fill {
            exec_id: format!("{tag}-{:08}", st.next_exec),
            order_ref: format!("{tag}-{}", contract.key()),
            contract,
            side,
            quantity: qty,
            price,
            commission: Money::ZERO,
            time: st.now,
        };
        st.next_exec += 1;
        fill
    }

    /// Exercise or assignment: the option leaves at zero, stock moves at
    /// the strike (a short put buys 100 shares a contract).
    fn settle_exercise(&self, st: &mut State, o: &OptionContract, qty: i64) {
        let close_side = if qty < 0 { Side::Buy } else { Side::Sell };
        let option_fill = Self::settlement_fill(
            st,
            "ASSIGN",
            Contract::Option(o.clone()),
            close_side,
            qty.abs(),
            Price::ZERO,
        );
        let shares = qty.abs() * o.multiplier;
        // Short put or long call buys stock; long put or short call sells.
        let stock_side = match (o.right, qty < 0) {
            (Right::Put, true) | (Right::Call, false) => Side::Buy,
            (Right::Put, false) | (Right::Call, true) => Side::Sell,
        };
        let stock = Contract::Stock(StockContract {
            con_id: Some(con_id_for(o.underlying.as_str())),
            ..StockContract::us(o.underlying.clone())
        });
        let stock_fill = Self::settlement_fill(st, "ASSIGN", stock, stock_side, shares, o.strike);
        if st.ledger.post_fill(&option_fill).is_ok() && st.ledger.post_fill(&stock_fill).is_ok() {
            st.events.push_back(BrokerEvent::Assignment {
                contract: o.clone(),
                quantity: qty,
                time: st.now,
            });
            st.settlements.push(option_fill);
            st.settlements.push(stock_fill);
        }
    }

    fn settle_expiry(&self, st: &mut State, o: &OptionContract, qty: i64) {
        let side = if qty < 0 { Side::Buy } else { Side::Sell };
        let fill = Self::settlement_fill(
            st,
            "EXPIRE",
            Contract::Option(o.clone()),
            side,
            qty.abs(),
            Price::ZERO,
        );
        if st.ledger.post_fill(&fill).is_ok() {
            st.events.push_back(BrokerEvent::Expiration {
                contract: o.clone(),
                quantity: qty,
                time: st.now,
            });
            st.settlements.push(fill);
        }
    }

    fn margin_impact(&self, st: &State, intent: &OrderIntent) -> MarginImpact {
        let before = self.positions_with(st, &[]);
        let delta = intent.side.sign() * intent.quantity;
        let after = self.positions_with(st, &[(intent.contract.clone(), delta)]);
        let (ib, mb) = self.margin_of(st, before.iter().map(|(c, q)| (c, *q)));
        let (ia, ma) = self.margin_of(st, after.iter().map(|(c, q)| (c, *q)));
        MarginImpact {
            initial_margin_before: ib,
            initial_margin_change: ia - ib,
            initial_margin_after: ia,
            maintenance_margin_before: mb,
            maintenance_margin_change: ma - mb,
            maintenance_margin_after: ma,
            commission: Some(self.estimated_commission(intent)),
        }
    }

    /// The commission of `intent` if it filled whole at its limit.
    fn estimated_commission(&self, intent: &OrderIntent) -> Money {
        let probe = SimOrder::new(0, intent.clone(), OrderStatus::Created, 0);
        self.commission(&probe, intent.limit_price, intent.quantity)
            .0
    }

    fn check_order(&self, st: &State, intent: &OrderIntent) -> Result<(), BrokerError> {
        let reject = |reason: String| BrokerError::Rejected {
            order_ref: intent.order_ref.clone(),
            reason,
        };
        intent.validate().map_err(|e| reject(e.to_string()))?;
        if intent.quantity > self.params.max_order_quantity {
            return Err(reject(format!(
                "quantity {} exceeds the largest order accepted ({})",
                intent.quantity, self.params.max_order_quantity
            )));
        }
        let close = st.day.times.last().copied().unwrap_or(st.now);
        if st.closed || st.now >= close || st.now < st.day.times.first().copied().unwrap_or(st.now)
        {
            return Err(BrokerError::MarketClosed(format!(
                "order {} at {}: the market is closed (sessions are 09:30-16:00 New York on exchange days)",
                intent.order_ref, st.now
            )));
        }
        let quote = self.quote_any(st, &intent.contract)?;
        let mid = quote.mid().ok_or_else(|| {
            BrokerError::NoData(format!("{}: no two-sided quote", intent.contract))
        })?;
        let tick = self.tick_of(&intent.contract, mid.to_f64());
        let band = mid.to_f64() * self.params.price_band + 5.0 * tick.to_f64();
        if (intent.limit_price.to_f64() - mid.to_f64()).abs() > band {
            return Err(reject(format!(
                "limit {} is outside the price band around the mid {} (±{:.2})",
                intent.limit_price, mid, band
            )));
        }
        // Margin as if every working order and this one filled: resting
        // orders count, so many small orders cannot add up past the account.
        let working = Self::working_quantities(st);
        let without = self.positions_with(st, &working);
        let mut all = working;
        all.push((
            intent.contract.clone(),
            intent.side.sign() * intent.quantity,
        ));
        let with = self.positions_with(st, &all);
        let (initial_without, _) = self.margin_of(st, without.iter().map(|(c, q)| (c, *q)));
        let (initial_with, _) = self.margin_of(st, with.iter().map(|(c, q)| (c, *q)));
        if initial_with > initial_without {
            let account = self.account(st);
            let commission = self.estimated_commission(intent);
            if initial_with > account.net_liquidation - commission {
                return Err(BrokerError::InsufficientMargin {
                    order_ref: intent.order_ref.clone(),
                    detail: format!(
                        "initial margin ${initial_with} with this order and the {} working order(s) filled would exceed net liquidation ${}",
                        st.orders.values().filter(|o| o.status.is_working()).count(),
                        account.net_liquidation
                    ),
                });
            }
        }
        Ok(())
    }

    /// Fault injection (the simulated gateway's `early_assignment` and
    /// `partial_assignment`): assigns `contracts` contracts of the first
    /// short option position (of at least `min_held` contracts) now,
    /// whatever its expiry or moneyness, as an exercise notice can. Returns
    /// the contract and the quantity assigned (negative: short).
    pub fn assign_now(&self, contracts: i64, min_held: i64) -> Option<(OptionContract, i64)> {
        let mut st = self.lock();
        let target = st.ledger.positions().find_map(|p| match &p.contract {
            Contract::Option(o) if p.quantity <= -min_held.max(1) => Some((o.clone(), p.quantity)),
            _ => None,
        })?;
        let qty = -(contracts.max(1).min(-target.1));
        self.settle_exercise(&mut st, &target.0, qty);
        Some((target.0, qty))
    }

    /// Fault injection (the simulated gateway's `cancel_race`): the
    /// working order `order_ref` fills in full at its limit now, whatever
    /// the quote, as if an execution had beaten the cancel. `false` when it
    /// is not working.
    pub fn fill_at_limit(&self, order_ref: &str) -> bool {
        let mut st = self.lock();
        let Some(id) = st.by_ref.get(order_ref).copied() else {
            return false;
        };
        let Some(order) = st.orders.get(&id).cloned() else {
            return false;
        };
        if !order.status.is_working() {
            return false;
        }
        let price = order.intent.limit_price;
        let qty = order.intent.quantity - order.filled;
        let (commission, raw_commission) = self.commission(&order, price, qty);
        let fill = Fill {
            exec_id: format!("SIM-{:08}", st.next_exec),
            order_ref: order.intent.order_ref.clone(),
            contract: order.intent.contract.clone(),
            side: order.intent.side,
            quantity: qty,
            price,
            commission,
            time: st.now,
        };
        st.next_exec += 1;
        if st.ledger.post_fill(&fill).is_err() {
            return false;
        }
        let now = st.now;
        if let Some(o) = st.orders.get_mut(&id) {
            o.filled += qty;
            o.fill_value += i128::from(price.raw()) * i128::from(qty);
            o.commission += commission;
            o.raw_commission = raw_commission;
            o.status = OrderStatus::Filled;
            let update = o.update(now);
            st.events.push_back(BrokerEvent::Fill(fill.clone()));
            st.events.push_back(BrokerEvent::OrderStatus(update));
        }
        st.executions.push(fill);
        true
    }

    /// Every fill so far, oldest first (for tests and reports).
    pub fn all_executions(&self) -> Vec<Fill> {
        self.lock().executions.clone()
    }

    /// Expiries, assignments and exercises so far: the option leg closed at
    /// zero and the stock moved at the strike, oldest first.
    pub fn settlements(&self) -> Vec<Fill> {
        self.lock().settlements.clone()
    }

    /// The account as marked at each session's close, oldest first.
    pub fn daily_snapshots(&self) -> Vec<AccountSnapshot> {
        self.lock().daily.clone()
    }

    /// The exchange's cash ledger (for reconciliation tests).
    pub fn ledger(&self) -> Ledger {
        self.lock().ledger.clone()
    }
}

fn short_call_margin(spot: Price, strike: Price, premium: Price, contracts: i64) -> Money {
    // premium + max(20% × underlying − OTM amount, 10% × underlying)
    let s = spot.to_f64();
    let otm = (strike.to_f64() - s).max(0.0);
    let per_share = premium.to_f64() + (0.2 * s - otm).max(0.1 * s);
    Money::from_f64_dollars(per_share * 100.0 * contracts as f64).unwrap_or(Money::ZERO)
}

fn checkpoint_times(
    calendar: &NyseCalendar,
    params: &ExchangeParams,
    date: NaiveDate,
) -> Vec<DateTime<Utc>> {
    let (Some(open), Some(close)) = (calendar.session_open(date), calendar.session_close(date))
    else {
        return Vec::new();
    };
    let step = Duration::minutes(i64::from(params.checkpoint_minutes.max(1)));
    let mut out = Vec::new();
    let mut t = open;
    while t < close {
        out.push(t);
        t += step;
    }
    out.push(close);
    out
}

fn build_day(
    history: &History,
    calendar: &NyseCalendar,
    model: &ChainModel,
    params: &ExchangeParams,
    session: usize,
) -> Day {
    let date = history.dates[session.min(history.dates.len().saturating_sub(1))];
    let times = checkpoint_times(calendar, params, date);
    let v = variance_times(times.len(), params.overnight_variance_share);
    let mut prices = Vec::with_capacity(history.symbols.len());
    let mut vols = Vec::with_capacity(history.symbols.len());
    for s in 0..history.symbols.len() {
        let vol = model.vol_state(history, s, session);
        let today = history.close(s, session);
        let prev = session
            .checked_sub(1)
            .and_then(|p| history.close(s, p))
            .or(today);
        let path = match (prev, today) {
            (Some(p0), Some(p1)) => {
                let daily = vol.map_or(0.02, |v| v.realized / 252f64.sqrt());
                bridge(p0, p1, daily, &v, params.seed, s, session)
            }
            _ => vec![f64::NAN; times.len()],
        };
        prices.push(path);
        vols.push(vol);
    }
    Day {
        session,
        date,
        times,
        prices,
        vols,
        expirations: model.expirations(calendar, date),
    }
}

impl MarketData for SimExchange {
    async fn stock_quote(&self, symbol: &Symbol) -> Result<Quote, BrokerError> {
        let st = self.lock();
        self.stock_quote_at(&st, symbol)
    }

    async fn daily_bars(
        &self,
        symbol: &Symbol,
        end: NaiveDate,
        count: usize,
    ) -> Result<Vec<DailyBar>, BrokerError> {
        let st = self.lock();
        let index_column = match symbol.as_str() {
            INDEX_SPX => Some(&self.history.index),
            INDEX_VIX => Some(&self.history.vix),
            _ => None,
        };
        let s = match index_column {
            Some(_) => usize::MAX,
            None => self.symbol_index(symbol)?,
        };
        // Only completed sessions: never today's close before the close.
        let last_done = if st.closed {
            Some(st.day.session)
        } else {
            st.day.session.checked_sub(1)
        };
        let Some(last_done) = last_done else {
            return Ok(Vec::new());
        };
        let end_idx = match self.history.date_index_at_or_before(end) {
            Some(i) => i.min(last_done),
            None => return Ok(Vec::new()),
        };
        let mut bars = Vec::new();
        for d in (0..=end_idx).rev() {
            if bars.len() >= count {
                break;
            }
            let close = match index_column {
                Some(column) => column.get(d).copied().filter(|c| c.is_finite() && *c > 0.0),
                None => self.history.close(s, d),
            };
            if let Some(c) = close {
                let p = Price::from_f64(c).map_err(|e| BrokerError::Protocol(e.to_string()))?;
                let volume = match index_column {
                    Some(_) => None,
                    None => self.history.volume(s, d).map(|v| v as i64),
                };
                bars.push(DailyBar {
                    symbol: symbol.clone(),
                    date: self.history.dates[d],
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume,
                });
            }
        }
        bars.reverse();
        Ok(bars)
    }

    async fn option_chain(&self, symbol: &Symbol) -> Result<OptionChain, BrokerError> {
        let st = self.lock();
        let s = self.symbol_index(symbol)?;
        let spot = self
            .spot(&st, s)
            .ok_or_else(|| BrokerError::NoData(format!("{symbol}: no price on {}", st.day.date)))?;
        Ok(self
            .model
            .chain_with(symbol, st.day.expirations.clone(), spot))
    }

    async fn option_quotes(
        &self,
        contracts: &[OptionContract],
    ) -> Result<Vec<OptionQuote>, BrokerError> {
        let st = self.lock();
        Ok(self.quote_options(&st, contracts))
    }
}

impl Broker for SimExchange {
    async fn contract_details(&self, contract: &Contract) -> Result<Contract, BrokerError> {
        let st = self.lock();
        match contract {
            Contract::Stock(s) => {
                self.symbol_index(&s.symbol)?;
                Ok(Contract::Stock(StockContract {
                    con_id: Some(con_id_for(s.symbol.as_str())),
                    ..s.clone()
                }))
            }
            Contract::Option(o) => {
                self.symbol_index(&o.underlying)?;
                if self.check_listed(&st, o).is_err() {
                    return Err(BrokerError::UnknownContract(format!(
                        "{}: not listed on {}",
                        o.key(),
                        st.day.date
                    )));
                }
                Ok(Contract::Option(OptionContract {
                    con_id: Some(con_id_for(&o.key())),
                    ..o.clone()
                }))
            }
        }
    }

    async fn what_if(&self, intent: &OrderIntent) -> Result<MarginImpact, BrokerError> {
        let st = self.lock();
        self.quote_any(&st, &intent.contract)?;
        Ok(self.margin_impact(&st, intent))
    }

    async fn place_order(&self, intent: &OrderIntent) -> Result<i64, BrokerError> {
        let mut st = self.lock();
        if let Some(id) = st.by_ref.get(&intent.order_ref) {
            return Ok(*id);
        }
        self.check_order(&st, intent)?;
        let id = st.next_order_id;
        st.next_order_id += 1;
        let order = SimOrder::new(id, intent.clone(), OrderStatus::Accepted, st.sequence);
        let update = order.update(st.now);
        st.orders.insert(id, order);
        st.by_ref.insert(intent.order_ref.clone(), id);
        st.events.push_back(BrokerEvent::OrderStatus(update));
        self.try_fill(&mut st, id, true);
        let unfilled_ioc = st
            .orders
            .get(&id)
            .is_some_and(|o| o.intent.time_in_force == TimeInForce::Ioc && o.status.is_working());
        if unfilled_ioc {
            self.set_status(
                &mut st,
                id,
                OrderStatus::Cancelled,
                "IOC: the unfilled remainder was cancelled",
            );
        }
        Ok(id)
    }

    async fn cancel_order(&self, order_ref: &str) -> Result<(), BrokerError> {
        let mut st = self.lock();
        let Some(id) = st.by_ref.get(order_ref).copied() else {
            return Err(BrokerError::Rejected {
                order_ref: order_ref.into(),
                reason: "no such order at the exchange".into(),
            });
        };
        let status = st.orders.get(&id).map(|o| o.status);
        match status {
            Some(s) if s.is_working() => {
                self.set_status(&mut st, id, OrderStatus::Cancelled, "cancelled on request");
                Ok(())
            }
            Some(s) => Err(BrokerError::Rejected {
                order_ref: order_ref.into(),
                reason: format!("cannot cancel: the order is already {s}"),
            }),
            None => Err(BrokerError::Rejected {
                order_ref: order_ref.into(),
                reason: "no such order at the exchange".into(),
            }),
        }
    }

    async fn open_orders(&self) -> Result<Vec<OrderUpdate>, BrokerError> {
        let st = self.lock();
        Ok(st
            .orders
            .values()
            .filter(|o| o.status.is_working())
            .map(|o| o.update(st.now))
            .collect())
    }

    async fn executions_since(&self, since: DateTime<Utc>) -> Result<Vec<Fill>, BrokerError> {
        let st = self.lock();
        Ok(st
            .executions
            .iter()
            .filter(|f| f.time >= since)
            .cloned()
            .collect())
    }

    async fn poll_events(&self) -> Result<Vec<BrokerEvent>, BrokerError> {
        let mut st = self.lock();
        Ok(st.events.drain(..).collect())
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        let st = self.lock();
        Ok(st
            .ledger
            .positions()
            .map(|p| {
                let per_unit = p.quantity.abs() * p.contract.multiplier();
                let avg = if per_unit == 0 {
                    Price::ZERO
                } else {
                    Price::from_raw(p.cost_basis.cents().abs() * 100 / per_unit)
                };
                Position {
                    contract: p.contract.clone(),
                    quantity: p.quantity,
                    avg_cost: avg,
                    market_price: self.mark(&st, &p.contract),
                    updated_at: st.now,
                }
            })
            .collect())
    }

    async fn account_summary(&self) -> Result<AccountSnapshot, BrokerError> {
        let st = self.lock();
        Ok(self.account(&st))
    }
}

/// The clock of a simulated exchange: `now` is the exchange's time and
/// `sleep_until` moves the exchange there (processing every checkpoint on
/// the way). With it the engine's loop runs unchanged over history.
#[derive(Debug, Clone)]
pub struct ExchangeClock {
    exchange: Arc<SimExchange>,
}

impl ExchangeClock {
    pub fn new(exchange: Arc<SimExchange>) -> Self {
        ExchangeClock { exchange }
    }
}

impl core_domain::Clock for ExchangeClock {
    fn now(&self) -> DateTime<Utc> {
        self.exchange.now()
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> impl std::future::Future<Output = ()> + Send {
        self.exchange.advance_to(until);
        std::future::ready(())
    }
}
