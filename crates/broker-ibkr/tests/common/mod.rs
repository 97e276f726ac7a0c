//! Shared set-up for the adapter's end-to-end tests: a simulated gateway
//! over a short window of the shipped history, an `IbkrBroker` with short
//! timeouts, and helpers that never wait forever.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use broker_ibkr::{IbkrBroker, IbkrConfig, MarketDataKind};
use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    Broker, BrokerEvent, Contract, MarketData, OptionContract, OptionQuote, OrderIntent,
    OrderPurpose, Price, Side, Symbol, TimeInForce,
};
use sim_gateway::{GatewayConfig, GatewayHandle, SimGateway, build_exchange};

/// Every await on the adapter is bounded by this: a hang is a failure.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn gateway_config() -> GatewayConfig {
    GatewayConfig {
        from: NaiveDate::from_ymd_opt(2021, 3, 1),
        ..GatewayConfig::default()
    }
}

pub async fn gateway_with(cfg: GatewayConfig) -> GatewayHandle {
    let exchange = build_exchange(&cfg).expect("exchange");
    SimGateway::start(cfg, exchange).await.expect("gateway")
}

pub async fn gateway() -> GatewayHandle {
    gateway_with(gateway_config()).await
}

/// The adapter's settings for the gateway: short timeouts and backoffs.
pub fn broker_config(gw: &GatewayHandle, client_id: i32) -> IbkrConfig {
    IbkrConfig {
        host: "127.0.0.1".into(),
        port: gw.addr().port(),
        client_id,
        account: String::new(),
        connect_attempts: 2,
        connect_timeout: Duration::from_secs(3),
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        request_timeout: Duration::from_secs(4),
        snapshot_timeout: Duration::from_secs(3),
        market_data: MarketDataKind::Realtime,
        ..IbkrConfig::default()
    }
}

pub async fn connect(gw: &GatewayHandle, client_id: i32) -> IbkrBroker {
    within(IbkrBroker::connect(broker_config(gw, client_id)))
        .await
        .expect("connect")
}

/// Awaits `f` within [`TIMEOUT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("timed out: the adapter hung")
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

/// The gateway's trading date.
pub fn today(gw: &GatewayHandle) -> NaiveDate {
    gw.now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive()
}

/// Puts of `symbol` between `otm_lo` and `otm_hi` out of the money
/// (0.15 = 15%), expiring `dte_lo..=dte_hi` days out (the nearest such
/// expiry), quoted; those with a positive bid, best bid first.
pub async fn otm_puts(
    broker: &IbkrBroker,
    gw: &GatewayHandle,
    symbol: &str,
    otm: (f64, f64),
    dte: (i64, i64),
) -> (f64, Vec<OptionQuote>) {
    let s = sym(symbol);
    let spot = within(broker.stock_quote(&s)).await.expect("stock quote");
    let spot = spot.last.or(spot.bid).expect("a stock price").to_f64();
    let chain = within(broker.option_chain(&s)).await.expect("option chain");
    let day = today(gw);
    let expiry = *chain
        .expirations
        .iter()
        .find(|e| (dte.0..=dte.1).contains(&(**e - day).num_days()))
        .expect("an expiry in the DTE window");
    let contracts: Vec<OptionContract> = chain
        .strikes
        .iter()
        .filter(|k| {
            let otm_pct = 1.0 - k.to_f64() / spot;
            otm_pct >= otm.0 && otm_pct <= otm.1
        })
        .map(|k| OptionContract::us(s.clone(), core_domain::Right::Put, *k, expiry))
        .collect();
    assert!(!contracts.is_empty(), "no strike {otm:?} OTM of {spot}");
    let mut quotes = within(broker.option_quotes(&contracts))
        .await
        .expect("option quotes");
    quotes.retain(|q| q.quote.bid.is_some_and(|b| b.is_positive()));
    quotes.sort_by_key(|q| std::cmp::Reverse(q.quote.bid));
    (spot, quotes)
}

pub fn intent(
    order_ref: &str,
    contract: &OptionContract,
    side: Side,
    limit: Price,
    now: DateTime<Utc>,
) -> OrderIntent {
    OrderIntent {
        order_ref: order_ref.into(),
        contract: Contract::Option(contract.clone()),
        side,
        quantity: 1,
        limit_price: limit,
        time_in_force: TimeInForce::Gtc,
        purpose: match side {
            Side::Sell => OrderPurpose::Open,
            Side::Buy => OrderPurpose::Close,
        },
        trade_id: None,
        created_at: now,
    }
}

/// Polls the adapter's events until `done` holds for the events seen so
/// far (all of them are returned), within [`TIMEOUT`].
pub async fn events_until(
    broker: &IbkrBroker,
    mut done: impl FnMut(&[BrokerEvent]) -> bool,
) -> Vec<BrokerEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        seen.extend(broker.poll_events().await.expect("poll"));
        if done(&seen) {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for events; seen: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Events arriving within `wait` (for "nothing more comes" checks).
pub async fn events_for(broker: &IbkrBroker, wait: Duration) -> Vec<BrokerEvent> {
    tokio::time::sleep(wait).await;
    broker.poll_events().await.expect("poll")
}

pub fn fills_of<'a>(events: &'a [BrokerEvent], order_ref: &str) -> Vec<&'a core_domain::Fill> {
    events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Fill(f) if f.order_ref == order_ref => Some(f),
            _ => None,
        })
        .collect()
}

pub fn has_status(
    events: &[BrokerEvent],
    order_ref: &str,
    status: core_domain::OrderStatus,
) -> bool {
    events.iter().any(
        |e| matches!(e, BrokerEvent::OrderStatus(u) if u.order_ref == order_ref && u.status == status),
    )
}

/// Steps the gateway checkpoint by checkpoint until the exchange has an
/// execution for `order_ref` (at most `max_steps`); returns the steps.
pub fn step_until_filled(gw: &GatewayHandle, order_ref: &str, max_steps: usize) -> usize {
    let mut steps = 0;
    while !gw
        .exchange()
        .all_executions()
        .iter()
        .any(|f| f.order_ref == order_ref)
    {
        let next = gw.exchange().next_checkpoint().expect("a next checkpoint");
        gw.advance_to(next).expect("advance");
        steps += 1;
        assert!(steps <= max_steps, "{order_ref} never filled");
    }
    steps
}
