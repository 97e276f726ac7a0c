//! The adapter end to end: `IbkrBroker` (not raw ibapi) against the
//! simulated TWS gateway on ephemeral ports. A full trade, a connection
//! dropped mid-order, the delayed-data path, pacing, bad frames,
//! rejections and a client id in use. Every await is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use broker_ibkr::{IbkrBroker, IbkrConfig, MarketDataKind};
use common::*;
use core_domain::{
    Broker, BrokerError, BrokerEvent, Contract, MarketData, OrderStatus, Price, Right, Side,
};
use sim_gateway::{Fault, GatewayConfig, MalformedKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_trade_sell_to_open_fill_and_buy_to_close() {
    let gw = gateway().await;
    let broker = connect(&gw, 11).await;
    assert!(broker.is_connected());
    assert_eq!(broker.account(), "DU0000001");
    assert_eq!(broker.market_data_kind(), MarketDataKind::Realtime);
    let server = within(broker.server_time()).await.expect("server time");
    assert_eq!(server.timestamp(), gw.now().timestamp());

    // bars up to the gateway's day
    let day = today(&gw);
    let bars = within(broker.daily_bars(&sym("AAPL"), day, 20))
        .await
        .expect("daily bars");
    assert_eq!(bars.len(), 20, "{bars:?}");
    assert!(bars.iter().all(|b| b.date <= day && b.close.is_positive()));
    assert!(bars.windows(2).all(|w| w[0].date < w[1].date));

    // puts 15-20% out of the money, 7-14 days out, with IV and greeks
    let (spot, quotes) = otm_puts(&broker, &gw, "AAPL", (0.05, 0.20), (7, 14)).await;
    assert!(!quotes.is_empty(), "no OTM put with a bid");
    for q in &quotes {
        assert!(q.contract.strike.to_f64() < spot);
        assert!(q.quote.implied_vol.is_some_and(|iv| iv > 0.0), "{q:?}");
        let g = q.quote.greeks.as_ref().expect("greeks");
        assert!(g.delta < 0.0 && g.delta > -0.5, "{g:?}");
        // the domain's units: theta per year, vega per 1.00 of vol (an
        // option worth a few dollars at most: a few dollars a year)
        assert!(g.theta < 0.0 && g.theta > -50.0, "{g:?}");
        assert!(g.vega > 0.0 && g.vega < 50.0, "{g:?}");
        assert!(q.quote.ask >= q.quote.bid);
    }
    let put = quotes[0].contract.clone();
    let bid = quotes[0].quote.bid.expect("bid");
    let ask = quotes[0].quote.ask.expect("ask");

    // what-if: margin, nothing placed
    let open = intent("e2e-open-1", &put, Side::Sell, bid, gw.now());
    let impact = within(broker.what_if(&open)).await.expect("what-if");
    assert!(
        impact.initial_margin_change > core_domain::Money::ZERO,
        "{impact:?}"
    );
    assert!(gw.exchange().all_executions().is_empty());

    // sell to open one tick above the bid: it rests, then fills as time moves
    let limit = Price::from_f64(bid.to_f64() + 0.01).expect("limit");
    let open = intent("e2e-open-1", &put, Side::Sell, limit.min(ask), gw.now());
    let id = within(broker.place_order(&open)).await.expect("place");
    // the same order_ref again: the same order, not a second one
    let again = within(broker.place_order(&open))
        .await
        .expect("place again");
    assert_eq!(again, id);
    events_until(&broker, |ev| {
        has_status(ev, "e2e-open-1", OrderStatus::Accepted)
            || has_status(ev, "e2e-open-1", OrderStatus::Filled)
    })
    .await;
    let steps = step_until_filled(&gw, "e2e-open-1", 400);
    let events = events_until(&broker, |ev| {
        has_status(ev, "e2e-open-1", OrderStatus::Filled) && !fills_of(ev, "e2e-open-1").is_empty()
    })
    .await;
    let mut events = events;
    events.extend(events_for(&broker, Duration::from_millis(300)).await);
    let fills = fills_of(&events, "e2e-open-1");
    assert_eq!(
        fills.len(),
        1,
        "exactly one fill after {steps} steps: {events:#?}"
    );
    let fill = fills[0];
    assert_eq!(fill.side, Side::Sell);
    assert_eq!(fill.quantity, 1);
    assert!(fill.commission > core_domain::Money::ZERO, "{fill:?}");
    assert_eq!(fill.contract.key(), Contract::Option(put.clone()).key());
    let exchange_fill = gw
        .exchange()
        .all_executions()
        .into_iter()
        .find(|f| f.order_ref == "e2e-open-1")
        .expect("exchange fill");
    assert_eq!(fill.price, exchange_fill.price);
    assert_eq!(fill.commission, exchange_fill.commission);
    assert_eq!(fill.time, exchange_fill.time);
    assert_eq!(
        gw.exchange()
            .all_executions()
            .iter()
            .filter(|f| f.order_ref == "e2e-open-1")
            .count(),
        1
    );
    // re-placing after the fill: still the same order, nothing sent
    let after = within(broker.place_order(&open))
        .await
        .expect("place after fill");
    assert_eq!(after, id);

    // the short put
    let positions = within(broker.positions()).await.expect("positions");
    let short = positions
        .iter()
        .find(|p| matches!(&p.contract, Contract::Option(o) if o.key() == put.key()))
        .unwrap_or_else(|| panic!("no short put in {positions:?}"));
    assert_eq!(short.quantity, -1);
    assert!(short.avg_cost.is_positive());

    let summary = within(broker.account_summary()).await.expect("summary");
    assert_eq!(summary.account, "DU0000001");
    assert!(summary.net_liquidation > core_domain::Money::ZERO);
    assert!(
        summary.initial_margin > core_domain::Money::ZERO,
        "{summary:?}"
    );
    assert!(summary.excess_liquidity > core_domain::Money::ZERO);
    assert!(within(broker.open_orders()).await.expect("open").is_empty());

    // buy to close at the ask: fills at once
    let q = within(broker.option_quotes(std::slice::from_ref(&put)))
        .await
        .expect("quote");
    // Option quotes come from a streaming request with generic tick 101,
    // so they carry the open interest the strategy screens on.
    assert!(q[0].quote.open_interest.is_some_and(|oi| oi > 0), "{q:?}");
    let close_ask = q[0].quote.ask.expect("ask");
    let close = intent("e2e-close-1", &put, Side::Buy, close_ask, gw.now());
    let close_id = within(broker.place_order(&close)).await.expect("close");
    assert!(close_id > id, "order ids only grow");
    let events = events_until(&broker, |ev| {
        has_status(ev, "e2e-close-1", OrderStatus::Filled)
            && !fills_of(ev, "e2e-close-1").is_empty()
    })
    .await;
    assert_eq!(fills_of(&events, "e2e-close-1").len(), 1);
    assert!(fills_of(&events, "e2e-open-1").is_empty(), "no replay");
    let positions = within(broker.positions()).await.expect("positions");
    assert!(
        positions
            .iter()
            .all(|p| !matches!(&p.contract, Contract::Option(o) if o.key() == put.key())),
        "{positions:?}"
    );
    let fills = within(broker.executions_since(gw.now() - chrono::Duration::days(1)))
        .await
        .expect("executions");
    assert_eq!(fills.len(), 2, "{fills:?}");
    broker.disconnect().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_order_is_repaired_without_duplicates() {
    let gw = gateway().await;
    let broker = connect(&gw, 12).await;
    let (_, quotes) = otm_puts(&broker, &gw, "AAPL", (0.05, 0.20), (7, 21)).await;
    let put = quotes[0].contract.clone();
    let bid = quotes[0].quote.bid.expect("bid");
    let limit = Price::from_f64(bid.to_f64() + 0.01).expect("limit");

    gw.inject(Fault::DropAfterPlaceOrder);
    let order = intent("e2e-drop-1", &put, Side::Sell, limit, gw.now());
    let placed = within(broker.place_order(&order)).await;
    // the order went out before the drop: the adapter reports its id
    let id = placed.expect("place before the drop");
    // (placement is fire and forget: wait for the gateway to take it)
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let at_exchange = loop {
        let orders = gw.exchange().open_orders().await.expect("exchange orders");
        if !orders.is_empty() || tokio::time::Instant::now() > deadline {
            break orders;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        at_exchange
            .iter()
            .filter(|o| o.order_ref == "e2e-drop-1")
            .count(),
        1,
        "the order lives on at the exchange: {at_exchange:?}"
    );
    // it fills while the adapter is away (or just after it is back)
    step_until_filled(&gw, "e2e-drop-1", 400);

    let events = events_until(&broker, |ev| {
        ev.iter()
            .any(|e| matches!(e, BrokerEvent::ConnectionRestored { .. }))
            && !fills_of(ev, "e2e-drop-1").is_empty()
    })
    .await;
    let lost = events
        .iter()
        .position(|e| matches!(e, BrokerEvent::ConnectionLost { .. }))
        .expect("ConnectionLost");
    let restored = events
        .iter()
        .position(|e| matches!(e, BrokerEvent::ConnectionRestored { .. }))
        .expect("ConnectionRestored");
    assert!(lost < restored);
    assert!(broker.is_connected());
    let mut events = events;
    events.extend(events_for(&broker, Duration::from_millis(500)).await);
    let fills = fills_of(&events, "e2e-drop-1");
    assert_eq!(fills.len(), 1, "exactly once: {events:#?}");
    assert!(fills[0].commission > core_domain::Money::ZERO);

    // the same intent again: no second order
    let again = within(broker.place_order(&order)).await.expect("re-place");
    assert_eq!(again, id);
    assert_eq!(
        gw.exchange()
            .all_executions()
            .iter()
            .filter(|f| f.order_ref == "e2e-drop-1")
            .count(),
        1
    );
    // a new order gets a fresh id
    let far =
        Price::from_f64(quotes[0].quote.ask.expect("ask").to_f64() * 3.0 + 1.0).expect("price");
    let next =
        within(broker.place_order(&intent("e2e-drop-2", &put, Side::Sell, far, gw.now()))).await;
    match next {
        Ok(next) => assert!(next > id, "ids never reused: {next} after {id}"),
        Err(e) => assert!(matches!(e, BrokerError::Rejected { .. }), "{e}"),
    }
    // executions_since lists the fill once
    let execs = within(broker.executions_since(gw.now() - chrono::Duration::days(2)))
        .await
        .expect("executions");
    assert_eq!(
        execs.iter().filter(|f| f.order_ref == "e2e-drop-1").count(),
        1
    );
    broker.disconnect().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_dropped_then_filled_after_the_reconnect_is_reported_once() {
    let gw = gateway().await;
    let broker = connect(&gw, 18).await;
    let (_, quotes) = otm_puts(&broker, &gw, "AAPL", (0.05, 0.20), (7, 21)).await;
    let put = quotes[0].contract.clone();
    let bid = quotes[0].quote.bid.expect("bid");
    let limit = Price::from_f64(bid.to_f64() + 0.01).expect("limit");

    gw.inject(Fault::DropAfterPlaceOrder);
    let order = intent("e2e-drop-3", &put, Side::Sell, limit, gw.now());
    let id = within(broker.place_order(&order)).await.expect("place");
    // back first, then the fill arrives on the new session
    events_until(&broker, |ev| {
        ev.iter()
            .any(|e| matches!(e, BrokerEvent::ConnectionRestored { .. }))
    })
    .await;
    // re-placing the intent on the new session finds the order (open
    // orders of this client id): no second order, same id
    let again = within(broker.place_order(&order)).await.expect("re-place");
    assert_eq!(again, id);
    let open = within(broker.open_orders()).await.expect("open orders");
    assert_eq!(
        open.iter().filter(|o| o.order_ref == "e2e-drop-3").count(),
        1,
        "{open:?}"
    );
    step_until_filled(&gw, "e2e-drop-3", 400);
    let mut events = events_until(&broker, |ev| !fills_of(ev, "e2e-drop-3").is_empty()).await;
    events.extend(events_for(&broker, Duration::from_millis(500)).await);
    assert_eq!(fills_of(&events, "e2e-drop-3").len(), 1, "{events:#?}");
    assert!(
        has_status(&events, "e2e-drop-3", OrderStatus::Filled),
        "{events:#?}"
    );
    // one order at the exchange, one execution
    assert_eq!(
        gw.exchange()
            .all_executions()
            .iter()
            .filter(|f| f.order_ref == "e2e-drop-3")
            .count(),
        1
    );
    // a second drop and reconnect: reconciliation does not replay the fill
    gw.inject(Fault::DropNow);
    let events = events_until(&broker, |ev| {
        ev.iter()
            .any(|e| matches!(e, BrokerEvent::ConnectionRestored { .. }))
    })
    .await;
    let mut events = events;
    events.extend(events_for(&broker, Duration::from_millis(300)).await);
    assert!(fills_of(&events, "e2e-drop-3").is_empty(), "{events:#?}");
    broker.disconnect().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_data_when_real_time_is_not_subscribed() {
    let gw = gateway_with(GatewayConfig {
        realtime_data_available: false,
        ..gateway_config()
    })
    .await;
    let broker = connect(&gw, 13).await;
    let q = within(broker.stock_quote(&sym("AAPL")))
        .await
        .expect("delayed stock quote");
    assert!(q.last.or(q.bid).is_some());
    assert_eq!(broker.market_data_kind(), MarketDataKind::Delayed);
    let (_, quotes) = otm_puts(&broker, &gw, "AAPL", (0.05, 0.20), (7, 21)).await;
    assert!(!quotes.is_empty());
    assert!(
        quotes
            .iter()
            .all(|q| q.quote.greeks.is_some() && q.quote.implied_vol.is_some())
    );

    // after a reconnect the type is sent again and quotes still come
    let before = gw.sessions_started();
    gw.inject(Fault::DropNow);
    events_until(&broker, |ev| {
        ev.iter()
            .any(|e| matches!(e, BrokerEvent::ConnectionRestored { .. }))
    })
    .await;
    assert!(gw.sessions_started() > before);
    assert_eq!(broker.market_data_kind(), MarketDataKind::Delayed);
    let q = within(broker.stock_quote(&sym("AAPL")))
        .await
        .expect("delayed quote after the reconnect");
    assert!(q.last.or(q.bid).is_some());
    let again = within(broker.option_quotes(&[quotes[0].contract.clone()]))
        .await
        .expect("option quote");
    assert_eq!(again.len(), 1);
    assert!(again[0].quote.greeks.is_some());
    assert!(
        again[0].quote.open_interest.is_some(),
        "delayed open interest (tick 86)"
    );
    broker.disconnect().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_violations_are_clear_errors() {
    let gw = gateway().await;
    let broker = connect(&gw, 14).await;
    let day = today(&gw);
    gw.inject(Fault::PacingHistorical(1));
    let r = within(broker.daily_bars(&sym("AAPL"), day, 5)).await;
    match r {
        Err(BrokerError::Pacing(m)) => {
            assert!(m.contains("daily bars AAPL"), "{m}");
            assert!(m.contains("162"), "{m}");
        }
        other => panic!("expected a pacing error, got {other:?}"),
    }
    // the next one goes through
    let bars = within(broker.daily_bars(&sym("AAPL"), day, 5))
        .await
        .expect("bars after the violation");
    assert_eq!(bars.len(), 5);

    // a message rate limit above the adapter's pace: requests TWS drops
    // end as pacing errors (not "no data", not a hang); nothing crashes
    gw.inject(Fault::RateLimit(Some(3)));
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(within(broker.stock_quote(&sym("AAPL"))).await);
    }
    gw.inject(Fault::RateLimit(None));
    assert!(outcomes.iter().any(Result::is_ok), "{outcomes:?}");
    for o in &outcomes {
        if let Err(e) = o {
            assert!(
                matches!(e, BrokerError::Pacing(m) if m.contains("quote AAPL")),
                "{e}"
            );
        }
    }
    let events = broker.poll_events().await.expect("poll");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Error { code: 100, .. })),
        "{events:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    within(broker.stock_quote(&sym("AAPL")))
        .await
        .expect("quote after the limit is lifted");
    broker.disconnect().await;

    // an adapter paced below the gateway's limit never trips it (pace with
    // headroom: a fixed one-second window can see one message more)
    let paced = within(IbkrBroker::connect(IbkrConfig {
        messages_per_second: 2,
        snapshots_per_second: 1,
        ..broker_config(&gw, 24)
    }))
    .await
    .expect("connect");
    gw.inject(Fault::RateLimit(Some(3)));
    for _ in 0..3 {
        within(paced.stock_quote(&sym("AAPL")))
            .await
            .expect("a paced quote");
    }
    gw.inject(Fault::RateLimit(None));
    let events = paced.poll_events().await.expect("poll");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Error { code: 100, .. })),
        "{events:?}"
    );
    paced.disconnect().await;
    broker.disconnect().await;
    gw.shutdown().await;
}

async fn wait_usable(broker: &IbkrBroker) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if broker.is_connected()
            && let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(5), broker.server_time()).await
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never usable again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_give_clear_errors_and_the_adapter_recovers() {
    let gw = gateway().await;
    let broker = connect(&gw, 15).await;
    for kind in [
        MalformedKind::UnknownId,
        MalformedKind::Corrupt,
        MalformedKind::Garbage,
    ] {
        wait_usable(&broker).await;
        gw.inject(Fault::Malformed(kind));
        let r = within(broker.account_summary()).await;
        match &r {
            Ok(s) => assert!(matches!(kind, MalformedKind::UnknownId), "{kind:?}: {s:?}"),
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        BrokerError::Protocol(_)
                            | BrokerError::NotConnected(_)
                            | BrokerError::Timeout(_)
                    ),
                    "{kind:?}: {e}"
                );
                assert!(e.to_string().contains("account summary"), "{kind:?}: {e}");
            }
        }
        // a later call works (after a reconnect if the stream broke)
        wait_usable(&broker).await;
        within(broker.positions())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
    broker.disconnect().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_carry_ibs_reason() {
    let gw = gateway().await;
    let broker = connect(&gw, 16).await;
    let (_, quotes) = otm_puts(&broker, &gw, "AAPL", (0.05, 0.20), (7, 21)).await;
    let put = quotes[0].contract.clone();
    let bid = quotes[0].quote.bid.expect("bid");
    gw.inject(Fault::RejectOrders {
        count: 1,
        reason: "e2e test rejection".into(),
    });
    let order = intent("e2e-reject-1", &put, Side::Sell, bid, gw.now());
    let r = within(broker.place_order(&order)).await;
    match r {
        Err(BrokerError::Rejected { order_ref, reason }) => {
            assert_eq!(order_ref, "e2e-reject-1");
            assert!(reason.contains("e2e test rejection"), "{reason}");
        }
        Ok(_) => {
            let events = events_until(&broker, |ev| {
                ev.iter().any(|e| matches!(e, BrokerEvent::Error { order_ref: Some(r), .. } if r == "e2e-reject-1"))
                    || has_status(ev, "e2e-reject-1", OrderStatus::Rejected)
            })
            .await;
            assert!(
                events.iter().any(|e| matches!(e, BrokerEvent::Error { code: 201, message, .. } if message.contains("e2e test rejection"))),
                "{events:#?}"
            );
        }
        Err(e) => panic!("unexpected error {e}"),
    }
    assert!(gw.exchange().all_executions().is_empty());
    broker.disconnect().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_in_use_names_the_setting() {
    let gw = gateway().await;
    let first = connect(&gw, 17).await;
    let second = within(IbkrBroker::connect(broker_config(&gw, 17))).await;
    match second {
        Err(BrokerError::NotConnected(m)) => {
            assert!(m.contains("broker.ibkr.client_id"), "{m}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("two adapters with one client id"),
    }
    assert!(first.is_connected());
    let _ = Right::Put;
    first.disconnect().await;
    gw.shutdown().await;
}

/// TWS reports an expiry or an assignment as a position change, not as
/// one of our executions: a short put held through its expiration comes
/// out of `poll_events` as one settlement (lockstep: in the poll after the
/// step that settled it) — an `Assignment` exactly when 100 shares
/// appeared, an `Expiration` otherwise — and the option position is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_put_held_to_expiry_is_reported_as_a_settlement() {
    let gw = gateway().await;
    let broker = within(IbkrBroker::connect(IbkrConfig {
        lockstep: true,
        ..broker_config(&gw, 21)
    }))
    .await
    .expect("connect");
    // out of the money, the nearest expiry
    let (_, quotes) = otm_puts(&broker, &gw, "AAPL", (0.05, 0.20), (7, 14)).await;
    let q = quotes.first().expect("a put with a bid");
    let put = q.contract.clone();
    let bid = q.quote.bid.expect("bid");
    let open = intent("e2e-expiry-1", &put, Side::Sell, bid, gw.now());
    within(broker.place_order(&open)).await.expect("place");
    // at the bid: it fills at once, or as time moves once the gateway has it
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gw.exchange().all_executions().is_empty() {
        use core_domain::Broker;
        let open = gw.exchange().open_orders().await.expect("open orders");
        if open.iter().any(|o| o.order_ref == "e2e-expiry-1") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    step_until_filled(&gw, "e2e-expiry-1", 400);
    let events = events_until(&broker, |ev| !fills_of(ev, "e2e-expiry-1").is_empty()).await;
    assert_eq!(fills_of(&events, "e2e-expiry-1").len(), 1);
    let key = Contract::Option(put.clone()).key();
    let held = within(broker.positions()).await.expect("positions");
    assert!(
        held.iter()
            .any(|p| p.contract.key() == key && p.quantity == -1),
        "{held:?}"
    );
    // past the expiration's close
    let after = put
        .expiry
        .succ_opt()
        .and_then(|d| d.and_hms_opt(15, 0, 0))
        .expect("a time")
        .and_utc();
    while gw.now() < after {
        let Some(next) = gw.exchange().next_checkpoint() else {
            break;
        };
        gw.advance_to(next).expect("advance");
    }
    let events = within(broker.poll_events()).await.expect("poll");
    let settlements: Vec<&BrokerEvent> = events
        .iter()
        .filter(|e| match e {
            BrokerEvent::Expiration {
                contract, quantity, ..
            }
            | BrokerEvent::Assignment {
                contract, quantity, ..
            } => contract.key() == put.key() && *quantity == -1,
            _ => false,
        })
        .collect();
    assert_eq!(settlements.len(), 1, "{events:#?}");
    let held = within(broker.positions()).await.expect("positions");
    assert!(held.iter().all(|p| p.contract.key() != key), "{held:?}");
    let shares: i64 = held
        .iter()
        .filter(|p| matches!(&p.contract, Contract::Stock(st) if st.symbol == put.underlying))
        .map(|p| p.quantity)
        .sum();
    let assigned = matches!(settlements[0], BrokerEvent::Assignment { .. });
    assert_eq!(assigned, shares == 100, "{events:#?} {held:?}");
    // reported once
    let again = within(broker.poll_events()).await.expect("poll");
    assert!(
        !again.iter().any(|e| matches!(
            e,
            BrokerEvent::Expiration { .. } | BrokerEvent::Assignment { .. }
        )),
        "{again:#?}"
    );
    broker.disconnect().await;
    gw.shutdown().await;
}
