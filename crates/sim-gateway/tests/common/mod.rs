//! Shared set-up: a gateway over the shipped history from 2021-03-01, and
//! helpers around the real `ibapi` client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use chrono::NaiveDate;
use ibapi::prelude::*;
use sim_gateway::{ControlClient, GatewayConfig, GatewayHandle, SimGateway, build_exchange};

pub const START: (i32, u32, u32) = (2021, 3, 1);
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn config() -> GatewayConfig {
    GatewayConfig {
        from: NaiveDate::from_ymd_opt(START.0, START.1, START.2),
        ..GatewayConfig::default()
    }
}

pub struct Rig {
    pub gw: GatewayHandle,
    pub control: ControlClient,
}

impl Rig {
    pub fn addr(&self) -> String {
        self.gw.addr().to_string()
    }

    pub async fn client(&self, id: i32) -> Client {
        within(Client::connect(&self.addr(), id))
            .await
            .expect("connect")
    }
}

pub async fn rig_with(cfg: GatewayConfig) -> Rig {
    let exchange = build_exchange(&cfg).expect("exchange");
    let gw = SimGateway::start(cfg, exchange).await.expect("gateway");
    let control = ControlClient::connect(gw.control_addr().expect("control"))
        .await
        .expect("control client");
    Rig { gw, control }
}

pub async fn rig() -> Rig {
    rig_with(config()).await
}

/// Awaits `f` with the suite's timeout: a hang is a test failure.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("timed out: the client hung")
}

/// AAPL's contract id from contract details.
pub async fn con_id(client: &Client, symbol: &str) -> i32 {
    let details = within(client.contract_details(&Contract::stock(symbol).build()))
        .await
        .expect("contract details");
    details[0].contract.contract_id
}

/// A listed put about 10% out of the money, 3 to 8 weeks out.
pub async fn otm_put(client: &Client, symbol: &str) -> (Contract, f64) {
    let id = con_id(client, symbol).await;
    let mut sub = within(
        client
            .option_chain(symbol, SecurityType::Stock, id)
            .subscribe(),
    )
    .await
    .expect("option chain");
    let chain = within(sub.next())
        .await
        .expect("a chain")
        .expect("chain ok");
    let ibapi::subscriptions::SubscriptionItem::Data(chain) = chain else {
        panic!("expected chain data, got {chain:?}");
    };
    let ticks = within(
        client
            .market_data(&Contract::stock(symbol).build())
            .snapshot_once(TIMEOUT),
    )
    .await
    .expect("stock snapshot");
    let spot = Quote::from_ticks(&ticks).last.expect("last price");
    let expiry = chain
        .expirations
        .iter()
        .find(|e| e.as_str() >= "20210326")
        .expect("an expiration")
        .clone();
    let strike = chain
        .strikes
        .iter()
        .copied()
        .min_by(|a, b| {
            (a - spot * 0.9)
                .abs()
                .partial_cmp(&(b - spot * 0.9).abs())
                .expect("finite")
        })
        .expect("a strike");
    let (y, m, d) = (
        expiry[0..4].parse().expect("year"),
        expiry[4..6].parse().expect("month"),
        expiry[6..8].parse().expect("day"),
    );
    (
        Contract::put(symbol)
            .strike(strike)
            .expires_on(y, m, d)
            .build(),
        spot,
    )
}

/// Bid and ask of a contract (real-time snapshot).
pub async fn bid_ask(client: &Client, c: &Contract) -> (f64, f64) {
    let ticks = within(client.market_data(c).snapshot_once(TIMEOUT))
        .await
        .expect("snapshot");
    let q = Quote::from_ticks(&ticks);
    (q.bid.expect("bid"), q.ask.expect("ask"))
}
