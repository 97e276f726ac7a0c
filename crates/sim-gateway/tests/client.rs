//! The gateway driven by the real `ibapi` client over loopback: connect,
//! contracts, option chains, market data, bars, margin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use ibapi::contracts::tick_types::TickType;
use ibapi::prelude::*;
use ibapi::subscriptions::SubscriptionItem;

#[tokio::test]
async fn connect_reports_accounts_order_ids_and_simulated_time() {
    let rig = rig().await;
    let client = rig.client(7).await;
    let accounts = within(client.managed_accounts()).await.expect("accounts");
    assert_eq!(accounts, vec!["DU0000001".to_string()]);
    let id = within(client.next_valid_order_id()).await.expect("ids");
    assert_eq!(id, 1);
    let t = within(client.server_time()).await.expect("time");
    let expected = Utc.with_ymd_and_hms(2021, 3, 1, 14, 30, 0).unwrap();
    assert_eq!(t.unix_timestamp(), expected.timestamp());
    assert_eq!(rig.gw.now(), expected);

    // a second connection with the same client id is refused (326)
    let second = within(Client::connect(&rig.addr(), 7)).await;
    match second {
        Err(Error::ClientIdInUse { client_id: 7 }) => {}
        Err(e) => panic!("expected ClientIdInUse, got {e}"),
        Ok(_) => panic!("a second connection with client id 7 was accepted"),
    }
    // another id connects
    let other = rig.client(8).await;
    assert_eq!(within(other.next_valid_order_id()).await.expect("ids"), 1);
    let mut clients = rig.gw.connected_clients();
    clients.sort();
    assert_eq!(clients, vec![7, 8]);
}

#[tokio::test]
async fn stock_contract_details_carry_a_stable_con_id() {
    let rig = rig().await;
    let client = rig.client(1).await;
    let details = within(client.contract_details(&Contract::stock("AAPL").build()))
        .await
        .expect("details");
    assert_eq!(details.len(), 1);
    let d = &details[0];
    assert_eq!(d.contract.symbol.to_string(), "AAPL");
    assert_eq!(d.contract.security_type, SecurityType::Stock);
    assert!(d.contract.contract_id > 0);
    assert_eq!(d.long_name, "Apple Inc.");
    assert_eq!(con_id(&client, "AAPL").await, d.contract.contract_id);

    // every put of one expiration month, found by contract month
    let by_month = Contract {
        symbol: Symbol::new("AAPL"),
        security_type: SecurityType::Option,
        right: Some(OptionRight::Put),
        last_trade_date_or_contract_month: "202104".into(),
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..Contract::default()
    };
    let puts = within(client.contract_details(&by_month))
        .await
        .expect("month");
    assert!(puts.len() > 10, "{}", puts.len());
    assert!(puts.iter().all(|d| {
        d.contract
            .last_trade_date_or_contract_month
            .starts_with("202104")
            && d.contract.security_type == SecurityType::Option
            && d.under_contract_id == details[0].contract.contract_id
    }));

    let unknown = within(client.contract_details(&Contract::stock("NOPE").build())).await;
    assert!(
        matches!(&unknown, Err(Error::Notice(n)) if n.code == 200),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn option_chain_needs_the_underlying_con_id() {
    let rig = rig().await;
    let client = rig.client(1).await;
    let id = con_id(&client, "AAPL").await;
    let mut sub = within(
        client
            .option_chain("AAPL", SecurityType::Stock, id)
            .subscribe(),
    )
    .await
    .expect("chain");
    let first = within(sub.next()).await.expect("item").expect("ok");
    let SubscriptionItem::Data(chain) = first else {
        panic!("{first:?}")
    };
    assert_eq!(chain.underlying_contract_id, id);
    assert_eq!(chain.multiplier, "100");
    assert!(!chain.expirations.is_empty());
    assert!(chain.strikes.len() > 10);
    assert!(chain.expirations.iter().all(|e| e.len() == 8));

    let mut bad = within(
        client
            .option_chain("AAPL", SecurityType::Stock, 0)
            .subscribe(),
    )
    .await
    .expect("request sent");
    let err = within(bad.next()).await.expect("an answer");
    assert!(
        matches!(&err, Err(Error::Notice(n)) if n.code == 321),
        "{err:?}"
    );
}

#[tokio::test]
async fn stock_and_option_snapshots_in_real_time() {
    let rig = rig().await;
    let client = rig.client(1).await;
    let ticks = within(
        client
            .market_data(&Contract::stock("AAPL").build())
            .snapshot_once(TIMEOUT),
    )
    .await
    .expect("stock");
    let q = Quote::from_ticks(&ticks);
    let (bid, ask, last) = (q.bid.unwrap(), q.ask.unwrap(), q.last.unwrap());
    assert!(bid > 0.0 && bid < ask, "{q:?}");
    assert!(last >= bid && last <= ask, "{q:?}");
    assert!(q.bid_size.unwrap() > 0.0);

    let (put, spot) = otm_put(&client, "AAPL").await;
    let ticks = within(client.market_data(&put).snapshot_once(TIMEOUT))
        .await
        .expect("option");
    let q = Quote::from_ticks(&ticks);
    assert!(
        q.bid.unwrap() > 0.0 && q.bid.unwrap() < q.ask.unwrap(),
        "{q:?}"
    );
    let greeks: Vec<_> = ticks
        .iter()
        .filter_map(|t| match t {
            TickTypes::OptionComputation(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(greeks.iter().any(|g| g.field == TickType::BidOption));
    let model = greeks
        .iter()
        .find(|g| g.field == TickType::ModelOption)
        .expect("model greeks");
    let iv = model.implied_volatility.unwrap();
    assert!(iv > 0.05 && iv < 2.0, "iv {iv}");
    let delta = model.delta.unwrap();
    assert!(delta < 0.0 && delta > -0.5, "delta {delta}");
    assert!(model.gamma.unwrap() > 0.0);
    assert!(model.vega.unwrap() > 0.0);
    assert!(model.theta.unwrap() < 0.0);
    assert!((model.underlying_price.unwrap() - spot).abs() < 0.5);
}

#[tokio::test]
async fn without_real_time_data_the_client_must_fall_back_to_delayed() {
    let rig = rig_with(sim_gateway::GatewayConfig {
        realtime_data_available: false,
        ..config()
    })
    .await;
    let client = rig.client(1).await;
    let stock = Contract::stock("AAPL").build();

    // real-time (the default): advisory 10089 and no prices
    let mut sub = within(client.market_data(&stock).snapshot().subscribe())
        .await
        .expect("sent");
    let mut notices = Vec::new();
    let mut prices = 0;
    while let Some(item) = within(sub.next()).await {
        match item {
            Ok(SubscriptionItem::Notice(n)) => notices.push(n.code),
            Ok(SubscriptionItem::Data(TickTypes::SnapshotEnd)) => break,
            Ok(SubscriptionItem::Data(TickTypes::Price(_) | TickTypes::PriceSize(_))) => {
                prices += 1
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(notices, vec![10089]);
    assert_eq!(prices, 0);

    // delayed: delayed tick types, with the 10167 advisory
    within(client.switch_market_data_type(MarketDataType::Delayed))
        .await
        .expect("switch");
    let ticks = within(client.market_data(&stock).snapshot_once(TIMEOUT))
        .await
        .expect("delayed");
    assert!(ticks.iter().any(|t| matches!(t,
        TickTypes::PriceSize(p) if p.price_tick_type == TickType::DelayedBid)));
    assert!(
        ticks
            .iter()
            .any(|t| matches!(t, TickTypes::MarketDataType(MarketDataType::Delayed)))
    );
    let q = Quote::from_ticks(&ticks);
    assert!(q.bid.is_some() && q.ask.is_some(), "{q:?}");

    let (put, _) = otm_put(&client, "AAPL").await;
    let ticks = within(client.market_data(&put).snapshot_once(TIMEOUT))
        .await
        .expect("delayed option");
    assert!(ticks.iter().any(|t| matches!(t,
        TickTypes::OptionComputation(c) if c.field == TickType::DelayedModelOption && c.delta.is_some())));
}

#[tokio::test]
async fn daily_bars_end_with_the_last_complete_session() {
    let rig = rig().await;
    let client = rig.client(1).await;
    let data = within(
        client
            .historical_data(&Contract::stock("MSFT").build(), HistoricalBarSize::Day)
            .duration(10.days())
            .fetch(),
    )
    .await
    .expect("bars");
    assert_eq!(data.bars.len(), 10);
    let last = data.bars.last().unwrap();
    let ibapi::market_data::historical::BarTimestamp::Date(d) = last.date else {
        panic!("a daily bar is dated by day: {:?}", last.date)
    };
    assert_eq!((d.year(), u8::from(d.month()), d.day()), (2021, 2, 26));
    assert!(last.close > 100.0);
}

#[tokio::test]
async fn index_bars_for_spx() {
    let rig = rig_with(sim_gateway::GatewayConfig {
        from: chrono::NaiveDate::from_ymd_opt(2017, 6, 1),
        ..config()
    })
    .await;
    let client = rig.client(1).await;
    let spx = Contract::index("SPX");
    let details = within(client.contract_details(&spx))
        .await
        .expect("details");
    assert_eq!(details[0].contract.security_type, SecurityType::Index);
    let data = within(
        client
            .historical_data(&spx, HistoricalBarSize::Day)
            .duration(5.days())
            .fetch(),
    )
    .await
    .expect("bars");
    assert_eq!(data.bars.len(), 5);
    assert!(data.bars.iter().all(|b| b.close > 2_000.0));
}

#[tokio::test]
async fn what_if_returns_the_margin_of_a_short_put_without_placing_it() {
    let rig = rig().await;
    let client = rig.client(1).await;
    let (put, _) = otm_put(&client, "AAPL").await;
    let (bid, _) = bid_ask(&client, &put).await;
    let state = within(client.order(&put).sell(2).limit(bid).analyze())
        .await
        .expect("what-if");
    let change = state.initial_margin_change.expect("initial margin change");
    assert!(change > 1_000.0, "{state:?}");
    assert!(state.maintenance_margin_after.unwrap() >= state.maintenance_margin_before.unwrap());
    assert!(state.commission.unwrap() > 0.0);
    // nothing was placed
    let orders = within(client.all_open_orders())
        .await
        .expect("open orders")
        .collect_to_end_within(TIMEOUT)
        .await
        .expect("orders");
    assert!(orders.is_empty(), "{orders:?}");
    assert!(rig.gw.exchange().all_executions().is_empty());
}

#[tokio::test]
async fn streaming_market_data_ticks_again_as_time_advances() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    let mut sub = within(
        client
            .market_data(&Contract::stock("AAPL").build())
            .subscribe(),
    )
    .await
    .expect("stream");
    let mut bids = Vec::new();
    while bids.is_empty() {
        if let Ok(SubscriptionItem::Data(TickTypes::PriceSize(p))) =
            within(sub.next()).await.expect("open")
            && p.price_tick_type == TickType::Bid
        {
            bids.push(p.price);
        }
    }
    for _ in 0..3 {
        rig.control.step().await.expect("step");
        loop {
            if let Ok(SubscriptionItem::Data(TickTypes::PriceSize(p))) =
                within(sub.next()).await.expect("open")
                && p.price_tick_type == TickType::Bid
            {
                bids.push(p.price);
                break;
            }
        }
    }
    assert_eq!(bids.len(), 4);
    assert!(bids.windows(2).any(|w| w[0] != w[1]), "{bids:?}");
    sub.cancel().await;
}

#[tokio::test]
async fn paced_mode_moves_time_by_itself_and_skips_the_night() {
    let rig = rig_with(sim_gateway::GatewayConfig {
        mode: sim_gateway::TimeMode::Paced {
            sim_minutes_per_second: 600.0,
        },
        ..config()
    })
    .await;
    let start = rig.gw.now();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let now = rig.gw.now();
    // 390 minutes of session at 10 simulated hours a second, then the
    // night is skipped: the next session (2021-03-02) has begun
    assert!(
        now >= Utc.with_ymd_and_hms(2021, 3, 2, 14, 30, 0).unwrap(),
        "{start} → {now}"
    );
    let client = rig.client(1).await;
    let t = within(client.server_time()).await.expect("time");
    assert!(t.unix_timestamp() >= now.timestamp());
}
