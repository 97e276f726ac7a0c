//! The adapter against IB's bad habits, each a fault of the simulated
//! gateway (docs/SIM_GATEWAY.md, "IB's bad habits"): a paper session that
//! is really a live account, `Inactive` holds, rejections by error code
//! only, statuses before executions, late commission reports, execution
//! corrections, early and partial assignment, an expiry while
//! disconnected, settlements while the daemon was down, a cancel that
//! races a fill and the nightly restart. Every await is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use broker_ibkr::{IbkrBroker, IbkrConfig, Resume};
use common::*;
use core_domain::{
    Broker, BrokerError, BrokerEvent, Contract, Money, OptionContract, OrderStatus, Price, Side,
};
use sim_gateway::{Fault, GatewayConfig, GatewayHandle};

/// A put with a bid, 7–14 days out: (contract, bid).
async fn a_put(broker: &IbkrBroker, gw: &GatewayHandle) -> (OptionContract, Price) {
    let (_, quotes) = otm_puts(broker, gw, "AAPL", (0.05, 0.20), (7, 14)).await;
    let q = quotes.first().expect("a put with a bid");
    (q.contract.clone(), q.quote.bid.expect("bid"))
}

fn lockstep(gw: &GatewayHandle, client_id: i32) -> IbkrConfig {
    IbkrConfig {
        lockstep: true,
        ..broker_config(gw, client_id)
    }
}

/// Waits until the exchange has `order_ref` (placing is fire and forget),
/// then steps the gateway until it has an execution of it.
async fn fill_now(gw: &GatewayHandle, order_ref: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let known = gw
            .exchange()
            .open_orders()
            .await
            .expect("open orders")
            .iter()
            .any(|o| o.order_ref == order_ref)
            || gw
                .exchange()
                .all_executions()
                .iter()
                .any(|f| f.order_ref == order_ref);
        if known {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{order_ref} never reached the exchange"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    step_until_filled(gw, order_ref, 400);
}

fn statuses<'a>(events: &'a [BrokerEvent], order_ref: &str) -> Vec<&'a core_domain::OrderUpdate> {
    events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::OrderStatus(u) if u.order_ref == order_ref => Some(u),
            _ => None,
        })
        .collect()
}

/// Defect 4: paper mode on a live account. Before: only the port was
/// checked, so any port reached whatever account was behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_account_is_refused_in_paper_mode_and_a_paper_one_in_live_mode() {
    let gw = gateway_with(GatewayConfig {
        account: "U1234567".into(),
        ..gateway_config()
    })
    .await;
    match within(IbkrBroker::connect(broker_config(&gw, 31))).await {
        Err(BrokerError::NotConnected(m)) => {
            assert!(m.contains("U1234567") && m.contains("paper"), "{m}");
            assert!(m.contains("trading_mode"), "says what to change: {m}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a paper-mode adapter accepted the live account U1234567"),
    }
    // live mode on that account is accepted
    let live = within(IbkrBroker::connect(IbkrConfig {
        live: true,
        ..broker_config(&gw, 32)
    }))
    .await
    .expect("live mode on a live account");
    assert_eq!(live.account(), "U1234567");
    live.disconnect().await;
    gw.shutdown().await;

    let paper = gateway().await;
    match within(IbkrBroker::connect(IbkrConfig {
        live: true,
        ..broker_config(&paper, 33)
    }))
    .await
    {
        Err(BrokerError::NotConnected(m)) => assert!(m.contains("DU0000001"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a live-mode adapter accepted the paper account"),
    }
    paper.shutdown().await;
}

/// Defect 1 (adapter side): IB's `Inactive` was mapped to Rejected; the
/// order is only held and its later fill was then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_hold_is_not_a_rejection() {
    let gw = gateway().await;
    let broker = connect(&gw, 34).await;
    let (put, bid) = a_put(&broker, &gw).await;
    gw.inject(Fault::InactiveHolds(1));
    let order = intent("hab-inactive-1", &put, Side::Sell, bid, gw.now());
    within(broker.place_order(&order)).await.expect("place");
    fill_now(&gw, "hab-inactive-1").await;
    let events = events_until(&broker, |ev| {
        has_status(ev, "hab-inactive-1", OrderStatus::Filled)
    })
    .await;
    let seen = statuses(&events, "hab-inactive-1");
    assert!(
        seen.iter()
            .any(|u| u.reason.as_deref().is_some_and(|r| r.contains("Inactive"))),
        "the hold is reported: {seen:#?}"
    );
    assert!(
        !has_status(&events, "hab-inactive-1", OrderStatus::Rejected),
        "{events:#?}"
    );
    assert_eq!(fills_of(&events, "hab-inactive-1").len(), 1);
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Defect 2 (adapter side): an order refused by an error code alone
/// (201, 110, 103) got no status, so it stayed `Sent` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_refused_by_an_error_code_only_end_rejected_with_the_reason() {
    let gw = gateway().await;
    let broker = connect(&gw, 35).await;
    let (put, bid) = a_put(&broker, &gw).await;
    for code in [201, 110, 103] {
        let order_ref = format!("hab-code-{code}");
        gw.inject(Fault::parse(&format!("reject_code 1 {code}")).expect("spec"));
        let order = intent(&order_ref, &put, Side::Sell, bid, gw.now());
        within(broker.place_order(&order)).await.expect("sent");
        let events = events_until(&broker, |ev| {
            has_status(ev, &order_ref, OrderStatus::Rejected)
        })
        .await;
        let rejected = statuses(&events, &order_ref)
            .into_iter()
            .find(|u| u.status == OrderStatus::Rejected)
            .expect("rejected");
        let reason = rejected.reason.clone().unwrap_or_default();
        assert!(reason.contains(&code.to_string()), "{reason}");
        assert!(rejected.broker_order_id.is_some());
    }
    assert!(gw.exchange().all_executions().is_empty());
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Defect 1 (adapter side): "Filled" before its execution, and the
/// execution waiting for a late commission report: the status passed
/// straight through and overtook its fill. Now the fill comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_never_overtakes_its_fill() {
    let gw = gateway().await;
    let broker = connect(&gw, 36).await;
    let (put, bid) = a_put(&broker, &gw).await;
    gw.inject(Fault::StatusBeforeExecution(true));
    gw.inject(Fault::CommissionDelayMs(700));
    let order = intent("hab-order-1", &put, Side::Sell, bid, gw.now());
    within(broker.place_order(&order)).await.expect("place");
    fill_now(&gw, "hab-order-1").await;
    let events = events_until(&broker, |ev| {
        has_status(ev, "hab-order-1", OrderStatus::Filled)
    })
    .await;
    let fill_at = events
        .iter()
        .position(|e| matches!(e, BrokerEvent::Fill(f) if f.order_ref == "hab-order-1"))
        .expect("the fill is reported");
    let filled_at = events
        .iter()
        .position(|e| matches!(e, BrokerEvent::OrderStatus(u) if u.order_ref == "hab-order-1" && u.status == OrderStatus::Filled))
        .expect("filled");
    assert!(fill_at < filled_at, "{events:#?}");
    let fills = fills_of(&events, "hab-order-1");
    assert!(
        fills[0].commission > Money::ZERO,
        "joined with its commission"
    );
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Defect 7: a commission report after the flush was dropped. Now the
/// fill goes out with zero commission and the report amends it (the same
/// exec id again, with the commission).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commission_report_after_the_wait_amends_the_fill() {
    let gw = gateway().await;
    let broker = within(IbkrBroker::connect(IbkrConfig {
        commission_wait: Duration::from_millis(200),
        ..broker_config(&gw, 37)
    }))
    .await
    .expect("connect");
    let (put, bid) = a_put(&broker, &gw).await;
    gw.inject(Fault::CommissionDelayMs(1200));
    let order = intent("hab-late-1", &put, Side::Sell, bid, gw.now());
    within(broker.place_order(&order)).await.expect("place");
    fill_now(&gw, "hab-late-1").await;
    let events = events_until(&broker, |ev| {
        fills_of(ev, "hab-late-1")
            .iter()
            .any(|f| f.commission > Money::ZERO)
    })
    .await;
    let fills = fills_of(&events, "hab-late-1");
    assert_eq!(fills.len(), 2, "{fills:#?}");
    assert_eq!(
        fills[0].exec_id, fills[1].exec_id,
        "an amendment, not a new fill"
    );
    assert_eq!(fills[0].commission, Money::ZERO);
    let exchange = gw
        .exchange()
        .all_executions()
        .into_iter()
        .find(|f| f.order_ref == "hab-late-1")
        .expect("exchange fill");
    assert_eq!(fills[1].commission, exchange.commission);
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Defect 7: a correction (`….01.02`) counted as a new fill, because the
/// base of `….01.01` was computed wrongly. Now one execution id, one
/// quantity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_execution_is_one_fill() {
    let gw = gateway().await;
    let broker = connect(&gw, 38).await;
    let (put, bid) = a_put(&broker, &gw).await;
    gw.inject(Fault::Corrections(1));
    let order = intent("hab-corr-1", &put, Side::Sell, bid, gw.now());
    within(broker.place_order(&order)).await.expect("place");
    fill_now(&gw, "hab-corr-1").await;
    let mut events = events_until(&broker, |ev| {
        has_status(ev, "hab-corr-1", OrderStatus::Filled)
    })
    .await;
    events.extend(events_for(&broker, Duration::from_millis(300)).await);
    let fills = fills_of(&events, "hab-corr-1");
    let ids: std::collections::BTreeSet<&str> = fills.iter().map(|f| f.exec_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{fills:#?}");
    assert!(
        ids.iter().all(|id| id.ends_with(".01.01")),
        "reported under the first id: {ids:?}"
    );
    // and a fresh reconciliation (executions_since) lists it once
    let listed = within(broker.executions_since(gw.now() - chrono::Duration::days(1)))
        .await
        .expect("executions");
    assert_eq!(
        listed
            .iter()
            .filter(|f| f.order_ref == "hab-corr-1")
            .count(),
        1,
        "{listed:#?}"
    );
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Defect 5: early assignment (before the expiry) was never recorded,
/// and a partial assignment closed the whole position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_and_partial_assignments_are_reported_with_their_quantity() {
    let gw = gateway().await;
    let broker = within(IbkrBroker::connect(lockstep(&gw, 39)))
        .await
        .expect("connect");
    let (put, bid) = a_put(&broker, &gw).await;
    let mut order = intent("hab-assign-1", &put, Side::Sell, bid, gw.now());
    order.quantity = 2;
    within(broker.place_order(&order)).await.expect("place");
    // The order must reach the gateway before time moves on (a DAY order
    // stepped past the close before it arrived never fills).
    fill_now(&gw, "hab-assign-1").await;
    while gw
        .exchange()
        .all_executions()
        .iter()
        .filter(|f| f.order_ref == "hab-assign-1")
        .map(|f| f.quantity)
        .sum::<i64>()
        < 2
    {
        let next = gw.exchange().next_checkpoint().expect("next");
        gw.advance_to(next).expect("advance");
    }
    within(broker.poll_events()).await.expect("poll");
    within(broker.positions()).await.expect("positions");

    gw.inject(Fault::PartialAssignment);
    gw.advance_to(gw.exchange().next_checkpoint().expect("next"))
        .expect("advance");
    let events = within(broker.poll_events()).await.expect("poll");
    let assigned: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Assignment {
                contract, quantity, ..
            } if contract.key() == put.key() => Some(*quantity),
            _ => None,
        })
        .collect();
    assert_eq!(assigned, vec![-1], "one of two contracts: {events:#?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Expiration { .. })),
        "{events:#?}"
    );
    let key = Contract::Option(put.clone()).key();
    let held = within(broker.positions()).await.expect("positions");
    assert!(
        held.iter()
            .any(|p| p.contract.key() == key && p.quantity == -1),
        "{held:?}"
    );

    gw.inject(Fault::EarlyAssignment);
    gw.advance_to(gw.exchange().next_checkpoint().expect("next"))
        .expect("advance");
    let events = within(broker.poll_events()).await.expect("poll");
    assert!(
        events.iter().any(|e| matches!(e, BrokerEvent::Assignment { contract, quantity: -1, .. } if contract.key() == put.key())),
        "the early assignment: {events:#?}"
    );
    assert!(gw.now().date_naive() < put.expiry, "before the expiry");
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Sells one put at its bid and waits (lockstep) until it is filled and
/// reported.
async fn short_one(broker: &IbkrBroker, gw: &GatewayHandle, order_ref: &str) -> OptionContract {
    let (put, bid) = a_put(broker, gw).await;
    let order = intent(order_ref, &put, Side::Sell, bid, gw.now());
    within(broker.place_order(&order)).await.expect("place");
    fill_now(gw, order_ref).await;
    events_until(broker, |ev| !fills_of(ev, order_ref).is_empty()).await;
    within(broker.positions()).await.expect("positions");
    put
}

fn advance_past(gw: &GatewayHandle, day: chrono::NaiveDate) {
    let after = day
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
}

fn settlement_of(events: &[BrokerEvent], put: &OptionContract) -> usize {
    events
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
        .count()
}

/// Defect 5: an expiry while the client is disconnected. Before: the
/// settlement's executions came back from the reconciliation as fills of
/// an unknown order, which also "explained" the position change, so the
/// settlement itself was never reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_while_disconnected_is_found_after_the_reconnect() {
    let gw = gateway().await;
    let broker = within(IbkrBroker::connect(lockstep(&gw, 40)))
        .await
        .expect("connect");
    let put = short_one(&broker, &gw, "hab-exp-1").await;
    gw.inject(Fault::ExpiryDisconnected);
    advance_past(&gw, put.expiry);
    let events = events_until(&broker, |ev| settlement_of(ev, &put) == 1).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Fill(f) if f.order_ref != "hab-exp-1")),
        "settlements are not fills: {events:#?}"
    );
    let again = events_for(&broker, Duration::from_millis(200)).await;
    assert_eq!(settlement_of(&again, &put), 0, "once: {again:#?}");
    broker.disconnect().await;
    gw.shutdown().await;
}

/// Defect 5: what settled while the daemon was down. Before: the first
/// positions fetched after a start were the reference, so it was never
/// seen. Now the database's positions are the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_while_the_daemon_was_down_is_found_at_start() {
    let gw = gateway().await;
    let first = within(IbkrBroker::connect(lockstep(&gw, 41)))
        .await
        .expect("connect");
    let put = short_one(&first, &gw, "hab-down-1").await;
    let recorded = within(first.positions()).await.expect("positions");
    first.disconnect().await;
    drop(first);
    advance_past(&gw, put.expiry);
    let second = within(IbkrBroker::connect_resuming(
        lockstep(&gw, 41),
        Resume {
            positions: Some(recorded),
            ..Resume::default()
        },
    ))
    .await
    .expect("connect again");
    let events = events_until(&second, |ev| settlement_of(ev, &put) == 1).await;
    assert_eq!(settlement_of(&events, &put), 1, "{events:#?}");
    second.disconnect().await;
    gw.shutdown().await;
}

/// A cancel that races a fill: the fill is reported, the order ends
/// Filled, never Cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_loses_the_race_reports_the_fill() {
    let gw = gateway().await;
    let broker = connect(&gw, 42).await;
    let (put, bid) = a_put(&broker, &gw).await;
    // far above the market: it rests
    let limit = Price::from_f64(bid.to_f64() + 0.15).expect("limit");
    let order = intent("hab-race-1", &put, Side::Sell, limit, gw.now());
    within(broker.place_order(&order)).await.expect("place");
    events_until(&broker, |ev| {
        has_status(ev, "hab-race-1", OrderStatus::Accepted)
    })
    .await;
    gw.inject(Fault::CancelRaces(1));
    within(broker.cancel_order("hab-race-1"))
        .await
        .expect("cancel sent");
    let events = events_until(&broker, |ev| {
        has_status(ev, "hab-race-1", OrderStatus::Filled)
    })
    .await;
    assert_eq!(fills_of(&events, "hab-race-1").len(), 1, "{events:#?}");
    assert!(!has_status(&events, "hab-race-1", OrderStatus::Cancelled));
    assert!(!has_status(&events, "hab-race-1", OrderStatus::Rejected));
    broker.disconnect().await;
    gw.shutdown().await;
}

/// The nightly restart: every connection closed and refused for a while;
/// the adapter reconnects and order ids continue (never reused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_restart_is_survived_and_ids_continue() {
    let gw = gateway().await;
    let broker = connect(&gw, 43).await;
    let (put, bid) = a_put(&broker, &gw).await;
    let limit = Price::from_f64(bid.to_f64() + 0.15).expect("limit");
    let first =
        within(broker.place_order(&intent("hab-night-1", &put, Side::Sell, limit, gw.now())))
            .await
            .expect("place");
    gw.inject(Fault::NightlyRestart { refuse_secs: 1 });
    events_until(&broker, |ev| {
        ev.iter()
            .any(|e| matches!(e, BrokerEvent::ConnectionRestored { .. }))
    })
    .await;
    let second =
        within(broker.place_order(&intent("hab-night-2", &put, Side::Sell, limit, gw.now())))
            .await
            .expect("place after the restart");
    assert!(second > first, "{second} after {first}");
    let events = events_until(&broker, |ev| {
        has_status(ev, "hab-night-2", OrderStatus::Accepted)
    })
    .await;
    assert!(
        !events.iter().any(|e| matches!(
            e,
            BrokerEvent::Error {
                code: 10326 | 103,
                ..
            }
        )),
        "{events:#?}"
    );
    // the first order is still known by its ref: no second one
    let again =
        within(broker.place_order(&intent("hab-night-1", &put, Side::Sell, limit, gw.now())))
            .await
            .expect("idempotent");
    assert_eq!(again, first);
    broker.disconnect().await;
    gw.shutdown().await;
}
