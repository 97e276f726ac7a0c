//! Orders through the gateway with the real `ibapi` client: a short put
//! rests, fills as the control channel advances the clock, is reported
//! (status, execution, commission), shows in executions and positions,
//! and is bought back; cancels, open orders, global cancel, the account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ibapi::orders::{Action, CancelOrder, Executions, OrderStatusKind, TimeInForce, order_builder};
use ibapi::prelude::*;
use ibapi::subscriptions::SubscriptionItem;

/// Reads order updates until `done` says so; returns them all.
async fn updates_until(
    sub: &mut Subscription<OrderUpdate>,
    mut done: impl FnMut(&OrderUpdate) -> bool,
) -> Vec<OrderUpdate> {
    let mut seen = Vec::new();
    loop {
        let item = within(sub.next()).await.expect("stream open");
        match item {
            Ok(SubscriptionItem::Data(u)) => {
                let stop = done(&u);
                seen.push(u);
                if stop {
                    return seen;
                }
            }
            Ok(SubscriptionItem::Notice(_)) => {}
            Err(e) => panic!("order updates: {e}"),
        }
    }
}

fn is_status(u: &OrderUpdate, id: i32, kind: OrderStatusKind) -> bool {
    matches!(u, OrderUpdate::OrderStatus(s) if s.order_id == id && s.status == kind)
}

#[tokio::test]
async fn a_short_put_rests_fills_as_time_advances_and_is_bought_back() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    let (put, _) = otm_put(&client, "AAPL").await;
    let (bid, ask) = bid_ask(&client, &put).await;
    let mut updates = within(client.order_update_stream()).await.expect("updates");

    // sell to open a little above the bid: it rests
    let limit = ((bid + 0.02) * 100.0).round() / 100.0;
    assert!(limit < ask, "spread too narrow: {bid} {ask}");
    let id = client.next_order_id();
    let mut order = order_builder::limit_order(Action::Sell, 1.0, limit);
    order.order_ref = "test-open-1".into();
    order.tif = TimeInForce::GoodTillCanceled;
    within(client.submit_order(id, &put, &order))
        .await
        .expect("submit");
    let seen = updates_until(&mut updates, |u| {
        is_status(u, id, OrderStatusKind::Submitted)
    })
    .await;
    let open = seen
        .iter()
        .find_map(|u| match u {
            OrderUpdate::OpenOrder(o) => Some(o),
            _ => None,
        })
        .expect("an OpenOrder");
    assert_eq!(open.order_id, id);
    assert_eq!(open.order.order_ref, "test-open-1");
    assert_eq!(open.order.client_id, 1);
    assert!(rig.gw.exchange().all_executions().is_empty());

    // advance checkpoint by checkpoint until it fills
    let mut steps = 0;
    while rig.gw.exchange().all_executions().is_empty() {
        rig.control.step().await.expect("step");
        steps += 1;
        assert!(steps < 600, "the resting order never filled");
    }
    let seen = updates_until(&mut updates, |u| is_status(u, id, OrderStatusKind::Filled)).await;
    let exec = seen
        .iter()
        .find_map(|u| match u {
            OrderUpdate::ExecutionData(e) => Some(e),
            _ => None,
        })
        .expect("an execution");
    assert_eq!(exec.execution.order_id, id);
    assert_eq!(exec.execution.shares, 1.0);
    assert_eq!(exec.execution.side, ExecutionSide::Sold);
    assert_eq!(exec.execution.order_reference, "test-open-1");
    assert!((exec.execution.price - limit).abs() < 1e-9);
    let commission = seen
        .iter()
        .find_map(|u| match u {
            OrderUpdate::CommissionReport(c) => Some(c),
            _ => None,
        })
        .expect("a commission report");
    assert_eq!(commission.execution_id, exec.execution.execution_id);
    assert!(commission.commission > 0.0);

    // executions, filtered
    let execs = within(client.executions(ExecutionFilter {
        symbol: "AAPL".into(),
        ..ExecutionFilter::default()
    }))
    .await
    .expect("executions")
    .collect_to_end_within(TIMEOUT)
    .await
    .expect("to the end");
    assert_eq!(execs.len(), 2, "{execs:?}");
    let none = within(client.executions(ExecutionFilter {
        symbol: "MSFT".into(),
        ..ExecutionFilter::default()
    }))
    .await
    .expect("executions")
    .collect_to_end_within(TIMEOUT)
    .await
    .expect("to the end");
    assert!(none.is_empty());

    // the position
    let positions = within(client.positions())
        .await
        .expect("positions")
        .collect_until(TIMEOUT, |v| {
            matches!(v.last(), Some(PositionUpdate::PositionEnd))
        })
        .await;
    let short = positions
        .iter()
        .find_map(|p| match p {
            PositionUpdate::Position(p) => Some(p),
            _ => None,
        })
        .expect("a position");
    assert_eq!(short.position, -1.0);
    assert_eq!(short.contract.security_type, SecurityType::Option);
    assert!(short.average_cost > 0.0);

    // buy to close at the ask: fills at once
    let (_, ask) = bid_ask(&client, &put).await;
    let close_id = client.next_order_id();
    let mut close = order_builder::limit_order(Action::Buy, 1.0, ask);
    close.order_ref = "test-close-1".into();
    within(client.submit_order(close_id, &put, &close))
        .await
        .expect("submit");
    updates_until(&mut updates, |u| {
        is_status(u, close_id, OrderStatusKind::Filled)
    })
    .await;
    let positions = within(client.positions())
        .await
        .expect("positions")
        .collect_until(TIMEOUT, |v| {
            matches!(v.last(), Some(PositionUpdate::PositionEnd))
        })
        .await;
    assert!(
        positions
            .iter()
            .all(|p| !matches!(p, PositionUpdate::Position(p) if p.position != 0.0)),
        "{positions:?}"
    );
}

#[tokio::test]
async fn cancel_open_orders_and_global_cancel() {
    let rig = rig().await;
    let client = rig.client(3).await;
    let other = rig.client(4).await;
    let (put, _) = otm_put(&client, "AAPL").await;
    let (_, ask) = bid_ask(&client, &put).await;
    let far = ((ask * 1.3) * 100.0).round() / 100.0;

    // a resting sell far above the ask, cancelled through place_order's subscription
    let id = client.next_order_id();
    let order = order_builder::limit_order(Action::Sell, 1.0, far);
    let mut sub = within(client.place_order(id, &put, &order))
        .await
        .expect("place");
    let first = within(sub.next()).await.expect("reply").expect("ok");
    assert!(
        matches!(first, SubscriptionItem::Data(PlaceOrder::OpenOrder(_))),
        "{first:?}"
    );

    let open = within(client.open_orders())
        .await
        .expect("open orders")
        .collect_to_end_within(TIMEOUT)
        .await
        .expect("to the end");
    assert!(
        open.iter()
            .any(|o| matches!(o, Orders::OrderData(d) if d.order_id == id))
    );
    // another client does not see it in its own open orders, but in all
    let theirs = within(other.open_orders())
        .await
        .expect("open orders")
        .collect_to_end_within(TIMEOUT)
        .await
        .expect("to the end");
    assert!(theirs.is_empty(), "{theirs:?}");
    let all = within(other.all_open_orders())
        .await
        .expect("all open orders")
        .collect_to_end_within(TIMEOUT)
        .await
        .expect("to the end");
    assert!(
        all.iter()
            .any(|o| matches!(o, Orders::OrderData(d) if d.order_id == id))
    );

    let mut cancel = within(client.cancel_order(id, "")).await.expect("cancel");
    loop {
        match within(cancel.next()).await.expect("reply") {
            Ok(SubscriptionItem::Data(CancelOrder::OrderStatus(s))) => {
                assert_eq!(s.order_id, id);
                if s.status == OrderStatusKind::Cancelled {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // cancelling an unknown order: error 10147
    let mut unknown = within(client.cancel_order(999, "")).await.expect("cancel");
    let reply = within(unknown.next()).await.expect("reply");
    assert!(
        matches!(&reply, Err(Error::Notice(n)) if n.code == 10147),
        "{reply:?}"
    );

    // two resting orders, then a global cancel (ibapi may hand an open-orders
    // request OpenOrder frames pushed before it: count distinct ids)
    for _ in 0..2 {
        let id = client.next_order_id();
        let order = order_builder::limit_order(Action::Sell, 1.0, far);
        within(client.submit_order(id, &put, &order))
            .await
            .expect("submit");
    }
    let n_open = || async {
        within(client.all_open_orders())
            .await
            .expect("open")
            .collect_to_end_within(TIMEOUT)
            .await
            .expect("end")
            .iter()
            .filter_map(|o| match o {
                Orders::OrderData(d) => Some(d.order_id),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(n_open().await, 2);
    within(other.global_cancel()).await.expect("global cancel");
    assert_eq!(n_open().await, 0);
}

#[tokio::test]
async fn account_summary_reports_the_margin_account() {
    let rig = rig().await;
    let client = rig.client(1).await;
    let tags = [
        AccountSummaryTags::NET_LIQUIDATION,
        AccountSummaryTags::EXCESS_LIQUIDITY,
        AccountSummaryTags::INIT_MARGIN_REQ,
        AccountSummaryTags::MAINT_MARGIN_REQ,
        AccountSummaryTags::BUYING_POWER,
        AccountSummaryTags::TOTAL_CASH_VALUE,
    ];
    let rows = within(client.account_summary(&AccountGroup("All".into()), &tags))
        .await
        .expect("summary")
        .collect_until(TIMEOUT, |v| {
            matches!(v.last(), Some(AccountSummaryResult::End))
        })
        .await;
    let value = |tag: &str| -> f64 {
        rows.iter()
            .find_map(|r| match r {
                AccountSummaryResult::Summary(s) if s.tag == tag => Some(s.value.parse().unwrap()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {tag} in {rows:?}"))
    };
    let cash = rig.gw.exchange().params().starting_cash;
    assert_eq!(value("NetLiquidation"), cash);
    assert_eq!(value("TotalCashValue"), cash);
    assert_eq!(value("InitMarginReq"), 0.0);
    assert_eq!(value("MaintMarginReq"), 0.0);
    assert_eq!(value("ExcessLiquidity"), cash);
    assert!(value("BuyingPower") >= cash);
    assert!(rows.iter().all(|r| match r {
        AccountSummaryResult::Summary(s) => s.account == "DU0000001" && s.currency == "USD",
        _ => true,
    }));
}

#[tokio::test]
async fn expiry_of_a_short_put_is_reported_as_an_execution() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    let id = con_id(&client, "AAPL").await;
    let mut sub = within(
        client
            .option_chain("AAPL", SecurityType::Stock, id)
            .subscribe(),
    )
    .await
    .expect("chain");
    let Ok(SubscriptionItem::Data(chain)) = within(sub.next()).await.expect("item") else {
        panic!("no chain")
    };
    let expiry = chain
        .expirations
        .iter()
        .find(|e| e.as_str() > "20210301")
        .expect("an expiration")
        .clone();
    let spot = Quote::from_ticks(
        &within(
            client
                .market_data(&Contract::stock("AAPL").build())
                .snapshot_once(TIMEOUT),
        )
        .await
        .expect("spot"),
    )
    .last
    .expect("last");
    let strike = chain
        .strikes
        .iter()
        .copied()
        .filter(|k| *k >= spot * 1.05)
        .fold(f64::INFINITY, f64::min);
    let (y, m, d) = (
        expiry[0..4].parse().unwrap(),
        expiry[4..6].parse().unwrap(),
        expiry[6..8].parse().unwrap(),
    );
    let put = Contract::put("AAPL")
        .strike(strike)
        .expires_on(y, m, d)
        .build();
    let (bid, _) = bid_ask(&client, &put).await;
    let order_id = client.next_order_id();
    within(client.submit_order(
        order_id,
        &put,
        &order_builder::limit_order(Action::Sell, 1.0, bid),
    ))
    .await
    .expect("submit");

    // to the close of the expiration day
    let close = chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
        .unwrap()
        .and_hms_opt(21, 0, 0)
        .unwrap()
        .and_utc();
    rig.control.advance(close).await.expect("advance");
    let execs = within(client.executions(ExecutionFilter::default()))
        .await
        .expect("executions")
        .collect_to_end_within(TIMEOUT)
        .await
        .expect("to the end");
    let settlement = execs
        .iter()
        .find_map(|e| match e {
            Executions::ExecutionData(d)
                if d.execution.order_reference.starts_with("ASSIGN-")
                    || d.execution.order_reference.starts_with("EXPIRE-") =>
            {
                Some(d)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no settlement in {execs:?}"));
    assert_eq!(settlement.execution.order_id, 0);
    assert_eq!(settlement.contract.security_type, SecurityType::Option);
    assert_eq!(settlement.execution.side, ExecutionSide::Bought);
    let positions = within(client.positions())
        .await
        .expect("positions")
        .collect_until(TIMEOUT, |v| {
            matches!(v.last(), Some(PositionUpdate::PositionEnd))
        })
        .await;
    assert!(
        !positions.iter().any(|p| matches!(p,
            PositionUpdate::Position(p) if p.contract.security_type == SecurityType::Option && p.position != 0.0)),
        "{positions:?}"
    );
}
