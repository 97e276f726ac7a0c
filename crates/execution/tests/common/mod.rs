//! Shared fixtures of the execution integration tests: the simulated
//! exchange on the real history, a store in a temporary directory, a
//! broker link that can be cut, and risk-approved opening and closing
//! orders.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use core_domain::{
    Broker, BrokerError, BrokerEvent, Contract, ExitReason, Fill, MarketData, MarketRegime, Money,
    OptionContract, OrderIntent, OrderPurpose, Price, Quote, Right, Side, Symbol, TimeInForce,
    Trade,
};
use execution::{EventReport, OrderContext, OrderExecutor};
use market_sim::data::real_history;
use market_sim::{ChainModel, ChainModelParams, ExchangeParams, SimExchange};
use risk::{OrderMarket, RiskApproved, RiskContext, RiskGovernor, RiskLimits};
use store::Store;

pub use core_domain::stubs::{Call, StubBroker};

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// The exchange at 2016-03-01 15:00 UTC (10:00 New York), half an hour
/// into the session.
pub fn exchange() -> Arc<SimExchange> {
    let h = Arc::new(real_history().unwrap().clone());
    let ex = SimExchange::new(
        h,
        ChainModel::new(ChainModelParams::default()),
        ExchangeParams::default(),
        date(2016, 3, 1),
    )
    .unwrap();
    ex.advance_to(ex.now() + Duration::minutes(30));
    Arc::new(ex)
}

pub fn open_store(dir: &tempfile::TempDir) -> Arc<Store> {
    let path = dir.path().join("trader.db");
    Arc::new(Store::open_and_migrate(path.to_str().unwrap()).unwrap())
}

/// The exchange behind a connection that can be cut
/// ([`core_domain::stubs::StubBroker`]): [`set_down`] makes placing an
/// order fail as if the gateway were unreachable, `hide_open_orders` lists
/// no open order (an order that vanished from TWS's list in a disconnect),
/// `calls(Call::PlaceOrder)` counts the orders that reached the exchange.
pub type Link = StubBroker<Arc<SimExchange>>;

/// While `down`, placing an order fails with `NotConnected`.
pub fn set_down(link: &Link, down: bool) {
    if down {
        link.fail(
            Call::PlaceOrder,
            BrokerError::NotConnected("gateway unreachable".into()),
        );
    } else {
        link.heal(Call::PlaceOrder);
    }
}

pub type Exec = OrderExecutor<Link>;

pub fn executor(ex: &Arc<SimExchange>, store: &Arc<Store>) -> Exec {
    OrderExecutor::new(Arc::clone(store), Link::new(Arc::clone(ex)))
}

/// A put of `symbol` and its quote now.
pub async fn put(
    ex: &SimExchange,
    symbol: &str,
    strike: f64,
    expiry: NaiveDate,
) -> (OptionContract, Quote) {
    let contract = OptionContract::us(
        sym(symbol),
        Right::Put,
        Price::from_f64(strike).unwrap(),
        expiry,
    );
    let quote = ex
        .option_quotes(std::slice::from_ref(&contract))
        .await
        .unwrap()
        .remove(0)
        .quote;
    (contract, quote)
}

pub async fn option_quote(ex: &SimExchange, contract: &OptionContract) -> Quote {
    ex.option_quotes(std::slice::from_ref(contract))
        .await
        .unwrap()
        .remove(0)
        .quote
}

pub async fn spot(ex: &SimExchange, symbol: &str) -> Price {
    ex.stock_quote(&sym(symbol)).await.unwrap().last.unwrap()
}

pub fn sector(ex: &SimExchange, symbol: &str) -> String {
    let h = ex.history();
    h.symbols[h.symbol_index(&sym(symbol)).unwrap()]
        .sector
        .clone()
}

/// Up to 250 daily log returns of `symbol`, ending at the last completed
/// session before the exchange's.
pub fn returns(ex: &SimExchange, symbol: &str) -> Vec<f64> {
    let h = ex.history();
    let s = h.symbol_index(&sym(symbol)).unwrap();
    let d = h.date_index(ex.session_date()).unwrap();
    let closes = h.trailing_closes(s, d - 1, 251);
    closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// What a real governor needs to approve a sell-to-open of `contract`
/// with no position held.
pub async fn opening_ctx(
    ex: &SimExchange,
    contract: &OptionContract,
    quote: &Quote,
) -> RiskContext {
    let account = ex.account_summary().await.unwrap();
    let symbol = contract.underlying.as_str();
    let mut ctx = RiskContext::new(account.clone(), account);
    ctx.order_market = Some(OrderMarket {
        sector: Some(sector(ex, symbol)),
        underlying_price: spot(ex, symbol).await,
        implied_vol: quote.implied_vol.unwrap(),
    });
    ctx.returns = BTreeMap::from([(contract.underlying.clone(), returns(ex, symbol))]);
    ctx
}

/// A context for closing orders (the account only).
pub async fn closing_ctx(ex: &SimExchange) -> RiskContext {
    let account = ex.account_summary().await.unwrap();
    RiskContext::new(account.clone(), account)
}

#[allow(clippy::too_many_arguments)]
pub fn intent(
    order_ref: &str,
    contract: &OptionContract,
    side: Side,
    quantity: i64,
    limit: Price,
    purpose: OrderPurpose,
    trade_id: &str,
    created_at: DateTime<Utc>,
) -> OrderIntent {
    OrderIntent {
        order_ref: order_ref.into(),
        contract: Contract::Option(contract.clone()),
        side,
        quantity,
        limit_price: limit,
        time_in_force: TimeInForce::Day,
        purpose,
        trade_id: Some(trade_id.into()),
        created_at,
    }
}

/// The trade the strategy means to open, as it would put it in the
/// opening order's context.
pub fn template(
    contract: &OptionContract,
    sector: &str,
    underlying: Price,
    now: DateTime<Utc>,
) -> Trade {
    let dte = (contract.expiry - now.date_naive()).num_days();
    core_domain::stubs::TradeBuilder::new("template")
        .symbol(contract.underlying.as_str())
        .sector(Some(sector))
        .put(contract.strike, contract.expiry)
        .entered(now)
        .premium(Price::ZERO)
        .contracts(0)
        .underlying(underlying)
        .margin(Money::from_cents(95_000))
        .otm_pct(1.0 - contract.strike.to_f64() / underlying.to_f64())
        .dte(dte)
        .vix(None)
        .regime(MarketRegime::Unknown)
        .commissions(Money::ZERO)
        .build()
}

/// Sells `quantity` of `contract` to open trade `trade_id` at `limit`,
/// approved by a real governor, with the quote and `entry` in the context.
#[allow(clippy::too_many_arguments)]
pub async fn sell_to_open(
    exec: &Exec,
    ex: &SimExchange,
    order_ref: &str,
    trade_id: &str,
    contract: &OptionContract,
    quantity: i64,
    limit: Price,
    entry: Option<Trade>,
) -> Result<core_domain::Order, execution::ExecutionError> {
    let quote = option_quote(ex, contract).await;
    let ctx = opening_ctx(ex, contract, &quote).await;
    let i = intent(
        order_ref,
        contract,
        Side::Sell,
        quantity,
        limit,
        OrderPurpose::Open,
        trade_id,
        ex.now(),
    );
    let approved = RiskGovernor::new(RiskLimits::default())
        .check(i, &ctx, ex.now())
        .unwrap();
    let mut context = OrderContext::with_quote(&quote);
    context.underlying_price = Some(spot(ex, contract.underlying.as_str()).await);
    context.entry = entry;
    exec.submit_with_context(approved, context, ex.now()).await
}

/// A buy-to-close of `trade_id` and its context (quote, exit reason).
pub async fn closing(
    ex: &SimExchange,
    order_ref: &str,
    trade_id: &str,
    contract: &OptionContract,
    quantity: i64,
    limit: Price,
    reason: ExitReason,
) -> (OrderIntent, OrderContext) {
    let quote = option_quote(ex, contract).await;
    let i = intent(
        order_ref,
        contract,
        Side::Buy,
        quantity,
        limit,
        OrderPurpose::Close,
        trade_id,
        ex.now(),
    );
    let mut context = OrderContext::with_quote(&quote);
    context.exit_reason = Some(reason);
    (i, context)
}

pub async fn approve_close(ex: &SimExchange, intent: OrderIntent) -> RiskApproved<OrderIntent> {
    let ctx = closing_ctx(ex).await;
    RiskGovernor::new(RiskLimits::default())
        .check(intent, &ctx, ex.now())
        .unwrap()
}

/// Polls the exchange and applies every event; returns the events too.
pub async fn pump(exec: &Exec, ex: &SimExchange) -> (Vec<BrokerEvent>, EventReport) {
    let events = ex.poll_events().await.unwrap();
    let report = exec.process_events(events.clone(), ex.now()).await.unwrap();
    (events, report)
}

/// The New York close of `date` (16:00 EST/EDT).
pub fn close_of(ex: &SimExchange, date: NaiveDate) -> DateTime<Utc> {
    *ex.checkpoint_times(date).last().unwrap()
}

pub fn fills_of(ex: &SimExchange, order_ref: &str) -> Vec<Fill> {
    ex.all_executions()
        .into_iter()
        .filter(|f| f.order_ref == order_ref)
        .collect()
}

pub fn cents(p: Price, quantity: i64) -> Money {
    p.notional(quantity, 100)
}

/// The listed put of `symbol` expiring `expiry` whose strike is nearest
/// `spot × (1 − otm)`, and its quote now.
pub async fn otm_put(
    ex: &SimExchange,
    symbol: &str,
    expiry: NaiveDate,
    otm: f64,
) -> (OptionContract, Quote) {
    let chain = ex.option_chain(&sym(symbol)).await.unwrap();
    assert!(chain.expirations.contains(&expiry), "{symbol} {expiry}");
    let target = spot(ex, symbol).await.to_f64() * (1.0 - otm);
    let strike = *chain
        .strikes
        .iter()
        .min_by(|a, b| {
            (a.to_f64() - target)
                .abs()
                .total_cmp(&(b.to_f64() - target).abs())
        })
        .unwrap();
    put(ex, symbol, strike.to_f64(), expiry).await
}
