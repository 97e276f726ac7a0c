#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Cancelling, stale orders and cancel/replace pricing against the
//! simulated exchange and a real store.

mod common;

use chrono::Duration;
use common::*;
use core_domain::{
    AuditRepository, Broker, ExitReason, OrderRepository, OrderStatus, Price, Side,
    TradeRepository, TradeStatus,
};
use execution::{ExecutionError, RepricePolicy, exit_limit};

fn history(store: &store::Store, order_ref: &str) -> Vec<OrderStatus> {
    store
        .order_events(order_ref)
        .unwrap()
        .into_iter()
        .map(|e| e.status)
        .collect()
}

#[tokio::test]
async fn a_resting_entry_is_cancelled_only_once_stale_and_the_broker_confirms_the_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let policy = RepricePolicy::default();
    let (put, quote) = put(&ex, "MSFT", 45.0, date(2016, 3, 18)).await;
    // 30 cents above the bid: inside the price band, far from marketable.
    let limit = quote.bid.unwrap() + Price::from_cents(30);
    let sent_at = ex.now();
    sell_to_open(&exec, &ex, "rest-1", "T-R", &put, 1, limit, None)
        .await
        .unwrap();
    let _ = pump(&exec, &ex).await;
    assert_eq!(
        store.order("rest-1").unwrap().unwrap().status,
        OrderStatus::Accepted
    );
    assert_eq!(
        ex.open_orders().await.unwrap().len(),
        1,
        "resting at the exchange"
    );

    // Not yet stale: nothing is cancelled, even a second short.
    for t in [
        sent_at,
        sent_at + Duration::minutes(14),
        sent_at + Duration::minutes(15) - Duration::seconds(1),
    ] {
        assert!(
            exec.cancel_stale(t, &policy).await.unwrap().is_empty(),
            "at {t}"
        );
    }
    assert_eq!(
        store.order("rest-1").unwrap().unwrap().status,
        OrderStatus::Accepted
    );
    assert_eq!(ex.open_orders().await.unwrap().len(), 1);

    // Fifteen minutes on (one checkpoint later) it is still unfilled, and
    // stale: cancelled at the broker, pending until the broker confirms.
    ex.advance_to(sent_at + Duration::minutes(15));
    let _ = pump(&exec, &ex).await;
    assert!(store.fills("rest-1").unwrap().is_empty());
    let cancelled = exec.cancel_stale(ex.now(), &policy).await.unwrap();
    assert_eq!(cancelled, vec!["rest-1".to_string()]);
    let order = store.order("rest-1").unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::PendingCancel);
    assert!(
        order
            .reason
            .as_deref()
            .unwrap()
            .contains("reprice: unfilled after 15 minutes")
    );
    assert!(ex.open_orders().await.unwrap().is_empty());
    // Pending: a second sweep does not ask again.
    assert!(
        exec.cancel_stale(ex.now(), &policy)
            .await
            .unwrap()
            .is_empty()
    );

    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(report.statuses_applied, 1);
    assert_eq!(
        store.order("rest-1").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(
        history(&store, "rest-1"),
        vec![
            OrderStatus::Created,
            OrderStatus::Sent,
            OrderStatus::Accepted,
            OrderStatus::PendingCancel,
            OrderStatus::Cancelled
        ]
    );
    assert!(
        store.trade("T-R").unwrap().is_none(),
        "never filled, no trade"
    );
    // A cancelled order cannot be cancelled again.
    assert!(!exec.cancel("rest-1", ex.now(), "again").await.unwrap());
}

#[tokio::test]
async fn an_order_never_sent_is_cancelled_locally_and_never_reaches_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, quote) = put(&ex, "MSFT", 45.0, date(2016, 3, 18)).await;

    set_down(exec.broker(), true);
    let err = sell_to_open(
        &exec,
        &ex,
        "unsent-1",
        "T-U",
        &put,
        1,
        quote.bid.unwrap(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ExecutionError::NotSent { .. }), "{err}");
    assert_eq!(
        store.order("unsent-1").unwrap().unwrap().status,
        OrderStatus::Created
    );

    // Not working at a broker: a stale sweep leaves it to `cancel`.
    let policy = RepricePolicy::default();
    let later = ex.now() + Duration::minutes(30);
    assert!(exec.cancel_stale(later, &policy).await.unwrap().is_empty());

    assert!(
        exec.cancel("unsent-1", ex.now(), "operator withdrew it")
            .await
            .unwrap()
    );
    let order = store.order("unsent-1").unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.reason.as_deref(), Some("operator withdrew it"));
    assert_eq!(
        history(&store, "unsent-1"),
        vec![OrderStatus::Created, OrderStatus::Cancelled]
    );
    let audit = store.recent_audit(5).unwrap();
    assert!(audit.iter().any(|a| a.action == "order.cancel_requested"));

    // With the connection back, reconcile has nothing to send.
    set_down(exec.broker(), false);
    let report = exec.reconcile(ex.now()).await.unwrap();
    assert!(report.resent.is_empty());
    assert!(ex.open_orders().await.unwrap().is_empty());
    assert!(ex.all_executions().is_empty());
    assert!(store.trade("T-U").unwrap().is_none());
}

/// A profit-target exit priced between the mid and the ask is re-priced
/// every 15 minutes a step closer to the ask until it fills; the trade
/// closes with the filled attempt's price, and slippage is measured from
/// the mid when the first attempt was sent.
#[tokio::test]
async fn a_patient_exit_steps_toward_the_ask_through_cancel_replace_and_closes_the_trade() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let policy = RepricePolicy::default();
    let (put, quote) = put(&ex, "MSFT", 45.0, date(2016, 3, 18)).await;
    sell_to_open(
        &exec,
        &ex,
        "open-P",
        "T-P",
        &put,
        1,
        quote.bid.unwrap(),
        None,
    )
    .await
    .unwrap();
    let _ = pump(&exec, &ex).await;
    let sold = fills_of(&ex, "open-P").remove(0);

    let mut first_mid = None;
    let mut replaces: Option<String> = None;
    let mut filled_ref = None;
    for attempt in 0..4u32 {
        let quote = option_quote(&ex, &put).await;
        let limit = exit_limit(
            Side::Buy,
            ExitReason::ProfitTarget,
            &quote,
            attempt,
            &policy,
        )
        .unwrap();
        assert!(limit <= quote.ask.unwrap());
        let order_ref = format!("close-P{attempt}");
        let (intent, mut context) = closing(
            &ex,
            &order_ref,
            "T-P",
            &put,
            1,
            limit,
            ExitReason::ProfitTarget,
        )
        .await;
        first_mid = first_mid.or(context.mid);
        context.mid = first_mid;
        context.replaces = replaces.take();
        context.attempt = attempt;
        exec.submit_with_context(approve_close(&ex, intent).await, context, ex.now())
            .await
            .unwrap();
        let _ = pump(&exec, &ex).await;
        if store.order(&order_ref).unwrap().unwrap().status == OrderStatus::Filled {
            filled_ref = Some(order_ref);
            break;
        }
        // Stale after a checkpoint: cancelled, then replaced.
        ex.advance_to(ex.now() + Duration::minutes(policy.reprice_after_minutes));
        let _ = pump(&exec, &ex).await;
        if store.order(&order_ref).unwrap().unwrap().status == OrderStatus::Filled {
            filled_ref = Some(order_ref);
            break;
        }
        let cancelled = exec.cancel_stale(ex.now(), &policy).await.unwrap();
        assert_eq!(cancelled, vec![order_ref.clone()]);
        let (_, report) = pump(&exec, &ex).await;
        assert!(report.trades.is_empty(), "a cancel changes no trade");
        assert_eq!(
            store.order(&order_ref).unwrap().unwrap().status,
            OrderStatus::Cancelled
        );
        replaces = Some(order_ref);
    }
    let filled_ref = filled_ref.expect("an attempt at the ask fills");
    let order = store.order(&filled_ref).unwrap().unwrap();
    let context = execution::OrderContext::of(&order);
    assert!(
        context.attempt >= 1,
        "the first attempt, inside the spread, did not fill"
    );
    assert_eq!(
        context.replaces,
        Some(format!("close-P{}", context.attempt - 1))
    );

    let bought = fills_of(&ex, &filled_ref).remove(0);
    let trade = store.trade("T-P").unwrap().unwrap();
    assert_eq!(trade.status, TradeStatus::Closed);
    assert_eq!(trade.exit_reason, Some(ExitReason::ProfitTarget));
    assert_eq!(trade.exit_premium, Some(bought.price));
    assert_eq!(
        trade.profit_loss,
        Some(cents(sold.price, 1) - cents(bought.price, 1) - sold.commission - bought.commission)
    );
    let slip = store.slippage(&filled_ref).unwrap();
    assert_eq!(slip.len(), 1);
    assert_eq!(slip[0].mid_at_send, first_mid);
    assert_eq!(slip[0].vs_mid, Some(bought.price - first_mid.unwrap()));
    // Only the filled attempt has fills; the others are cancelled.
    for k in 0..context.attempt {
        let r = format!("close-P{k}");
        assert!(store.fills(&r).unwrap().is_empty());
        assert_eq!(
            store.order(&r).unwrap().unwrap().status,
            OrderStatus::Cancelled
        );
    }
    assert!(matches!(
        store.trades(&Default::default()).unwrap()[..],
        [ref t] if t.trade_id == "T-P"
    ));
}

/// The exchange filled the order before the cancel arrived (its events
/// not yet read): the broker refuses the cancel, the refusal is audited,
/// the order is left as it was and the fill still applies.
#[tokio::test]
async fn a_cancel_that_loses_the_race_with_a_fill_is_refused_and_the_fill_still_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, quote) = put(&ex, "MSFT", 45.0, date(2016, 3, 18)).await;
    sell_to_open(
        &exec,
        &ex,
        "race-1",
        "T-X",
        &put,
        1,
        quote.bid.unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(fills_of(&ex, "race-1").len(), 1, "filled at the exchange");

    assert!(!exec.cancel("race-1", ex.now(), "stale").await.unwrap());
    assert_eq!(
        store.order("race-1").unwrap().unwrap().status,
        OrderStatus::Sent
    );
    let audit = store.recent_audit(5).unwrap();
    let failed = audit
        .iter()
        .find(|a| a.action == "order.cancel_failed")
        .expect("audited");
    assert!(failed.outcome.as_deref().unwrap().contains("race-1"));
    let (done, failed) = exec.cancel_all(ex.now(), "emergency").await.unwrap();
    assert!(done.is_empty());
    assert_eq!(failed, vec!["race-1".to_string()]);

    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 1);
    assert_eq!(
        store.order("race-1").unwrap().unwrap().status,
        OrderStatus::Filled
    );
    assert_eq!(
        store.trade("T-X").unwrap().unwrap().status,
        TradeStatus::Open
    );
}
