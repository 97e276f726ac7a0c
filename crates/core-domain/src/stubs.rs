//! Fixtures for tests of this crate and of the crates above it (feature
//! `stubs`). Hand-written values, not mocks. Never used by production code.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Contract, DailyBar, ExitReason, Fill,
    MarginImpact, MarketData, MarketRegime, Money, OptionChain, OptionContract, OptionQuote, Order,
    OrderIntent, OrderPurpose, OrderUpdate, Position, Price, Quote, Right, Side, Symbol,
    TimeInForce, Trade, TradeStatus,
};

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn symbol(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// An AAPL $150 put expiring 2024-01-19.
pub fn aapl_put() -> OptionContract {
    OptionContract::us(
        symbol("AAPL"),
        Right::Put,
        Price::from_cents(15_000),
        date(2024, 1, 19),
    )
}

/// An open short put: 5 AAPL $150 puts sold at $0.40 on 2024-01-09.
pub fn open_trade() -> Trade {
    Trade {
        trade_id: "T-1".into(),
        symbol: symbol("AAPL"),
        sector: Some("Information Technology".into()),
        strike: Price::from_cents(15_000),
        expiration: date(2024, 1, 19),
        entry_date: date(2024, 1, 9),
        entry_time: DateTime::<Utc>::UNIX_EPOCH,
        entry_premium: Price::from_cents(40),
        contracts: 5,
        entry_underlying_price: Price::from_cents(18_000),
        margin_at_entry: Money::from_dollars(7_500),
        exit_date: None,
        exit_time: None,
        exit_premium: None,
        exit_reason: None,
        profit_loss: None,
        profit_pct: None,
        roi: None,
        days_held: None,
        otm_pct: 1.0 / 6.0,
        dte: 10,
        vix_at_entry: Some(13.5),
        market_regime: MarketRegime::BullQuiet,
        is_experiment: false,
        experiment_id: None,
        experiment_arm: None,
        commissions: Money::from_cents(325),
        status: TradeStatus::Open,
    }
}

/// A new sell-to-open order for 5 AAPL puts at $0.40.
pub fn sell_to_open(order_ref: &str) -> Order {
    Order::new(OrderIntent {
        order_ref: order_ref.into(),
        contract: Contract::Option(aapl_put()),
        side: Side::Sell,
        quantity: 5,
        limit_price: Price::from_cents(40),
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Open,
        trade_id: Some("T-1".into()),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    })
}

/// A fill of `quantity` on `order_ref` at $0.40 with IBKR's $0.65 a contract.
pub fn fill(order_ref: &str, exec_id: &str, quantity: i64) -> Fill {
    Fill {
        exec_id: exec_id.into(),
        order_ref: order_ref.into(),
        contract: Contract::Option(aapl_put()),
        side: Side::Sell,
        quantity,
        price: Price::from_cents(40),
        commission: Money::from_cents(65 * quantity),
        time: DateTime::<Utc>::UNIX_EPOCH,
    }
}

/// A [`Trade`] for a test, from [`open_trade`]'s values with the fields
/// the test cares about changed: `TradeBuilder::new("T-2").symbol("MSFT")
/// .contracts(1).build()`. Replaces the 29-field literal.
#[derive(Debug, Clone)]
pub struct TradeBuilder(Trade);

impl TradeBuilder {
    /// [`open_trade`] under the id `trade_id`.
    pub fn new(trade_id: &str) -> Self {
        let mut t = open_trade();
        t.trade_id = trade_id.into();
        TradeBuilder(t)
    }

    pub fn symbol(mut self, s: &str) -> Self {
        self.0.symbol = symbol(s);
        self
    }

    pub fn sector(mut self, sector: Option<&str>) -> Self {
        self.0.sector = sector.map(str::to_string);
        self
    }

    /// The put: strike and expiry.
    pub fn put(mut self, strike: Price, expiration: NaiveDate) -> Self {
        self.0.strike = strike;
        self.0.expiration = expiration;
        self
    }

    /// Entered at `time` (the entry date is its UTC date).
    pub fn entered(mut self, time: DateTime<Utc>) -> Self {
        self.0.entry_time = time;
        self.0.entry_date = time.date_naive();
        self
    }

    pub fn entry_date(mut self, date: NaiveDate) -> Self {
        self.0.entry_date = date;
        self
    }

    pub fn premium(mut self, premium: Price) -> Self {
        self.0.entry_premium = premium;
        self
    }

    pub fn contracts(mut self, contracts: i64) -> Self {
        self.0.contracts = contracts;
        self
    }

    pub fn underlying(mut self, price: Price) -> Self {
        self.0.entry_underlying_price = price;
        self
    }

    pub fn margin(mut self, margin: Money) -> Self {
        self.0.margin_at_entry = margin;
        self
    }

    pub fn otm_pct(mut self, otm: f64) -> Self {
        self.0.otm_pct = otm;
        self
    }

    pub fn dte(mut self, dte: i64) -> Self {
        self.0.dte = dte;
        self
    }

    pub fn vix(mut self, vix: Option<f64>) -> Self {
        self.0.vix_at_entry = vix;
        self
    }

    pub fn regime(mut self, regime: MarketRegime) -> Self {
        self.0.market_regime = regime;
        self
    }

    pub fn commissions(mut self, commissions: Money) -> Self {
        self.0.commissions = commissions;
        self
    }

    /// In arm `arm` of experiment `id`.
    pub fn experiment(mut self, id: &str, arm: &str) -> Self {
        self.0.is_experiment = true;
        self.0.experiment_id = Some(id.into());
        self.0.experiment_arm = Some(arm.into());
        self
    }

    /// Closed at `time` for `exit_premium` by `reason` with `profit_loss`
    /// (the ratios follow from the premium and the margin).
    pub fn closed(
        mut self,
        time: DateTime<Utc>,
        exit_premium: Price,
        reason: ExitReason,
        profit_loss: Money,
    ) -> Self {
        let t = &mut self.0;
        t.exit_time = Some(time);
        t.exit_date = Some(time.date_naive());
        t.exit_premium = Some(exit_premium);
        t.exit_reason = Some(reason);
        t.profit_loss = Some(profit_loss);
        let max = t.entry_premium.notional(t.contracts, 100);
        t.profit_pct = (max.cents() != 0).then(|| profit_loss.to_f64() / max.to_f64());
        t.roi = (t.margin_at_entry.cents() != 0)
            .then(|| profit_loss.to_f64() / t.margin_at_entry.to_f64());
        t.days_held = Some((time.date_naive() - t.entry_date).num_days());
        t.status = TradeStatus::Closed;
        self
    }

    pub fn build(self) -> Trade {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_the_builder_starts_from_the_open_trade_and_closes_consistently() {
        assert_eq!(TradeBuilder::new("T-1").build(), open_trade());
        let exit = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(3);
        let t = TradeBuilder::new("T-2")
            .entered(DateTime::<Utc>::UNIX_EPOCH)
            .closed(
                exit,
                Price::from_cents(20),
                ExitReason::ProfitTarget,
                Money::from_cents(10_000),
            )
            .build();
        assert_eq!(t.status, TradeStatus::Closed);
        assert_eq!(t.days_held, Some(3));
        // $0.40 × 5 × 100 = $200 of premium; $100 is half of it.
        assert_eq!(t.profit_pct, Some(0.5));
        assert_eq!(t.exit_date, Some(exit.date_naive()));
    }
}

/// A broker call, for [`StubBroker`]'s faults and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    StockQuote,
    DailyBars,
    OptionChain,
    OptionQuotes,
    ContractDetails,
    WhatIf,
    PlaceOrder,
    CancelOrder,
    OpenOrders,
    ExecutionsSince,
    PollEvents,
    Positions,
    AccountSummary,
}

/// A planted failure: `error` for every call (or only those about
/// `symbol`), for ever or the next `times` calls.
#[derive(Debug, Clone)]
struct Fault {
    error: BrokerError,
    times: Option<usize>,
    symbol: Option<Symbol>,
}

type PlaceHook = Box<dyn Fn(&OrderIntent) + Send + Sync>;

/// A broker (and market data source) in front of another — a simulated
/// exchange — that forwards every call, except the faults a test plants
/// ([`fail`](Self::fail), [`fail_times`](Self::fail_times),
/// [`fail_for`](Self::fail_for)), and counts the calls that reached the
/// broker behind it ([`calls`](Self::calls)). Replaces the hand-written
/// forwarders of each test file.
pub struct StubBroker<B> {
    inner: B,
    faults: Mutex<HashMap<Call, Fault>>,
    reached: Mutex<HashMap<Call, usize>>,
    hide_open_orders: AtomicBool,
    on_place: Option<PlaceHook>,
}

impl<B> StubBroker<B> {
    pub fn new(inner: B) -> Self {
        StubBroker {
            inner,
            faults: Mutex::new(HashMap::new()),
            reached: Mutex::new(HashMap::new()),
            hide_open_orders: AtomicBool::new(false),
            on_place: None,
        }
    }

    /// The broker behind.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// `f` sees every order placed, before the fault check (what the store
    /// held at that moment, say).
    pub fn on_place(mut self, f: impl Fn(&OrderIntent) + Send + Sync + 'static) -> Self {
        self.on_place = Some(Box::new(f));
        self
    }

    /// Every `call` fails with `error` until [`heal`](Self::heal).
    pub fn fail(&self, call: Call, error: BrokerError) {
        self.plant(call, error, None, None);
    }

    /// The next `times` calls of `call` fail with `error`.
    pub fn fail_times(&self, call: Call, times: usize, error: BrokerError) {
        self.plant(call, error, Some(times), None);
    }

    /// Every `call` about `symbol` fails with `error` (market data calls
    /// name a symbol; the others never match).
    pub fn fail_for(&self, call: Call, symbol: Symbol, error: BrokerError) {
        self.plant(call, error, None, Some(symbol));
    }

    /// `call` works again.
    pub fn heal(&self, call: Call) {
        self.faults.lock().unwrap().remove(&call);
    }

    /// While `hide`, the open orders are an empty list (orders that
    /// vanished from the broker's list in a disconnect).
    pub fn hide_open_orders(&self, hide: bool) {
        self.hide_open_orders.store(hide, Ordering::SeqCst);
    }

    /// How many calls of `call` reached the broker behind (failed ones
    /// did not).
    pub fn calls(&self, call: Call) -> usize {
        self.reached
            .lock()
            .unwrap()
            .get(&call)
            .copied()
            .unwrap_or(0)
    }

    fn plant(&self, call: Call, error: BrokerError, times: Option<usize>, symbol: Option<Symbol>) {
        self.faults.lock().unwrap().insert(
            call,
            Fault {
                error,
                times,
                symbol,
            },
        );
    }

    /// The planted fault of `call` (about `symbol`), or the call counted
    /// as reaching the broker behind.
    fn check(&self, call: Call, symbol: Option<&Symbol>) -> Result<(), BrokerError> {
        let mut faults = self.faults.lock().unwrap();
        if let Some(f) = faults.get_mut(&call)
            && f.symbol.as_ref().is_none_or(|s| Some(s) == symbol)
        {
            match &mut f.times {
                Some(0) => {}
                Some(n) => {
                    *n -= 1;
                    return Err(f.error.clone());
                }
                None => return Err(f.error.clone()),
            }
        }
        *self.reached.lock().unwrap().entry(call).or_default() += 1;
        Ok(())
    }
}

impl<B: MarketData> MarketData for StubBroker<B> {
    async fn stock_quote(&self, symbol: &Symbol) -> Result<Quote, BrokerError> {
        self.check(Call::StockQuote, Some(symbol))?;
        self.inner.stock_quote(symbol).await
    }
    async fn daily_bars(
        &self,
        symbol: &Symbol,
        end: NaiveDate,
        count: usize,
    ) -> Result<Vec<DailyBar>, BrokerError> {
        self.check(Call::DailyBars, Some(symbol))?;
        self.inner.daily_bars(symbol, end, count).await
    }
    async fn option_chain(&self, symbol: &Symbol) -> Result<OptionChain, BrokerError> {
        self.check(Call::OptionChain, Some(symbol))?;
        self.inner.option_chain(symbol).await
    }
    async fn option_quotes(
        &self,
        contracts: &[OptionContract],
    ) -> Result<Vec<OptionQuote>, BrokerError> {
        self.check(Call::OptionQuotes, contracts.first().map(|c| &c.underlying))?;
        self.inner.option_quotes(contracts).await
    }
}

impl<B: Broker> Broker for StubBroker<B> {
    async fn contract_details(&self, contract: &Contract) -> Result<Contract, BrokerError> {
        self.check(Call::ContractDetails, None)?;
        self.inner.contract_details(contract).await
    }
    async fn what_if(&self, intent: &OrderIntent) -> Result<MarginImpact, BrokerError> {
        self.check(Call::WhatIf, None)?;
        self.inner.what_if(intent).await
    }
    async fn place_order(&self, intent: &OrderIntent) -> Result<i64, BrokerError> {
        if let Some(f) = &self.on_place {
            f(intent);
        }
        self.check(Call::PlaceOrder, None)?;
        self.inner.place_order(intent).await
    }
    async fn cancel_order(&self, order_ref: &str) -> Result<(), BrokerError> {
        self.check(Call::CancelOrder, None)?;
        self.inner.cancel_order(order_ref).await
    }
    async fn open_orders(&self) -> Result<Vec<OrderUpdate>, BrokerError> {
        self.check(Call::OpenOrders, None)?;
        if self.hide_open_orders.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        self.inner.open_orders().await
    }
    async fn executions_since(&self, since: DateTime<Utc>) -> Result<Vec<Fill>, BrokerError> {
        self.check(Call::ExecutionsSince, None)?;
        self.inner.executions_since(since).await
    }
    async fn poll_events(&self) -> Result<Vec<BrokerEvent>, BrokerError> {
        self.check(Call::PollEvents, None)?;
        self.inner.poll_events().await
    }
    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.check(Call::Positions, None)?;
        self.inner.positions().await
    }
    async fn account_summary(&self) -> Result<AccountSnapshot, BrokerError> {
        self.check(Call::AccountSummary, None)?;
        self.inner.account_summary().await
    }
}
