//! The order executor against a real SQLite store and the simulated
//! exchange on the real history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDate};
use core_domain::stubs::{Call, StubBroker};
use core_domain::{
    AccountRepository, AuditRepository, Broker, BrokerError, BrokerEvent, Contract, Fill,
    MarketData, OptionContract, Order, OrderIntent, OrderPurpose, OrderRepository, OrderStatus,
    OrderUpdate, Price, Right, Side, Symbol, TimeInForce,
};
use execution::{ExecutionError, OrderExecutor};
use market_sim::data::real_history;
use market_sim::{ChainModel, ChainModelParams, ExchangeParams, SimExchange};
use risk::{RiskApproved, RiskContext, RiskGovernor, RiskLimits};
use store::Store;

fn exchange() -> Arc<SimExchange> {
    let h = Arc::new(real_history().unwrap().clone());
    let ex = SimExchange::new(
        h,
        ChainModel::new(ChainModelParams::default()),
        ExchangeParams::default(),
        NaiveDate::from_ymd_opt(2016, 3, 1).unwrap(),
    )
    .unwrap();
    ex.advance_to(ex.now() + Duration::minutes(30));
    Arc::new(ex)
}

fn open_store(dir: &tempfile::TempDir) -> Arc<Store> {
    let path = dir.path().join("trader.db");
    Arc::new(Store::open_and_migrate(path.to_str().unwrap()).unwrap())
}

/// What the store held for each order at the moment it was placed.
type Seen = Arc<Mutex<Vec<Option<OrderStatus>>>>;

/// The exchange behind a [`StubBroker`] that records what the store held
/// for the order at each `place_order` and fails the first `fail_places`
/// calls as if the connection were down.
fn spy(ex: &Arc<SimExchange>, store: &Arc<Store>, fail_places: usize) -> (Spy, Seen) {
    let seen: Seen = Arc::default();
    let (store, record) = (Arc::clone(store), Arc::clone(&seen));
    let broker = StubBroker::new(Arc::clone(ex)).on_place(move |intent| {
        let stored = store.order(&intent.order_ref).unwrap().map(|o| o.status);
        record.lock().unwrap().push(stored);
    });
    broker.fail_times(
        Call::PlaceOrder,
        fail_places,
        BrokerError::NotConnected("gateway restarting".into()),
    );
    (broker, seen)
}

type Spy = StubBroker<Arc<SimExchange>>;

/// A put about 3% below spot on the first expiry at least a week out.
async fn msft_put(ex: &SimExchange) -> OptionContract {
    let s = Symbol::new("MSFT").unwrap();
    let chain = ex.option_chain(&s).await.unwrap();
    let spot = ex.stock_quote(&s).await.unwrap().last.unwrap().to_f64();
    let today = ex.session_date();
    let expiry = *chain
        .expirations
        .iter()
        .find(|e| (**e - today).num_days() >= 7)
        .unwrap();
    let target = spot * 0.97;
    let strike = *chain
        .strikes
        .iter()
        .min_by(|a, b| {
            (a.to_f64() - target)
                .abs()
                .total_cmp(&(b.to_f64() - target).abs())
        })
        .unwrap();
    OptionContract::us(s, Right::Put, strike, expiry)
}

/// A marketable buy-to-close of one MSFT put (limit at the ask).
async fn closing_intent(ex: &SimExchange, order_ref: &str) -> OrderIntent {
    let put = msft_put(ex).await;
    let quote = ex
        .option_quotes(std::slice::from_ref(&put))
        .await
        .unwrap()
        .remove(0)
        .quote;
    OrderIntent {
        order_ref: order_ref.into(),
        contract: Contract::Option(put),
        side: Side::Buy,
        quantity: 1,
        limit_price: quote.ask.unwrap(),
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Close,
        trade_id: Some("trade-1".into()),
        created_at: ex.now(),
    }
}

/// The intent approved by a real risk governor.
async fn approve(ex: &SimExchange, intent: OrderIntent) -> RiskApproved<OrderIntent> {
    let account = ex.account_summary().await.unwrap();
    let ctx = RiskContext::new(account.clone(), account);
    RiskGovernor::new(RiskLimits::default())
        .check(intent, &ctx, ex.now())
        .unwrap()
}

fn stored(store: &Store, order_ref: &str) -> Order {
    store.order(order_ref).unwrap().unwrap()
}

fn fills_at_broker(ex: &SimExchange, order_ref: &str) -> Vec<Fill> {
    ex.all_executions()
        .into_iter()
        .filter(|f| f.order_ref == order_ref)
        .collect()
}

#[tokio::test]
async fn an_approved_closing_order_is_written_before_it_is_sent_then_followed_to_filled() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let (broker, seen) = spy(&ex, &store, 0);
    let exec = OrderExecutor::new(Arc::clone(&store), broker);
    let approved = approve(&ex, closing_intent(&ex, "close-1").await).await;

    let order = exec.submit(approved, ex.now()).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![Some(OrderStatus::Created)]);
    assert_eq!(order.status, OrderStatus::Sent);
    assert!(order.broker_order_id.is_some());
    assert_eq!(stored(&store, "close-1").status, OrderStatus::Sent);
    assert_eq!(
        store.recent_decisions(1).unwrap()[0].decision,
        "risk_approved"
    );

    let events = ex.poll_events().await.unwrap();
    let report = exec.process_events(events, ex.now()).await.unwrap();
    assert_eq!(report.fills_recorded, 1);
    let order = stored(&store, "close-1");
    assert_eq!(order.status, OrderStatus::Filled);
    assert_eq!(order.filled_quantity, 1);
    let fills = store.fills("close-1").unwrap();
    assert_eq!(fills, fills_at_broker(&ex, "close-1"));
    let entries = store.ledger_entries(Some(&fills[0].exec_id)).unwrap();
    assert_eq!(entries.len(), 2, "purchase cost and commission");
    let posted: core_domain::Money = entries.iter().map(|e| e.amount).sum();
    assert_eq!(posted, fills[0].cash_flow());
    assert_eq!(store.ledger_balance().unwrap(), fills[0].cash_flow());
    let history: Vec<OrderStatus> = store
        .order_events("close-1")
        .unwrap()
        .into_iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(history.first(), Some(&OrderStatus::Created));
    assert_eq!(history.last(), Some(&OrderStatus::Filled));
}

#[tokio::test]
async fn a_crash_between_intent_written_and_order_sent_is_sent_once_by_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let ex = exchange();
    {
        let store = open_store(&dir);
        let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 1).0);
        let approved = approve(&ex, closing_intent(&ex, "close-2").await).await;
        let err = exec.submit(approved, ex.now()).await.unwrap_err();
        assert!(matches!(err, ExecutionError::NotSent { .. }), "{err}");
        assert!(err.to_string().contains("close-2"));
        assert!(err.to_string().contains("reconcile"));
        assert_eq!(stored(&store, "close-2").status, OrderStatus::Created);
        assert!(fills_at_broker(&ex, "close-2").is_empty());
    } // the executor and its store are dropped: the "crash"

    let store = open_store(&dir);
    let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 0).0);
    let report = exec.reconcile(ex.now()).await.unwrap();
    assert_eq!(report.resent, vec!["close-2".to_string()]);
    assert_eq!(report.events.fills_recorded, 1);
    assert_eq!(
        fills_at_broker(&ex, "close-2").len(),
        1,
        "one order, one fill"
    );
    assert!(ex.open_orders().await.unwrap().is_empty());
    assert_eq!(stored(&store, "close-2").status, OrderStatus::Filled);
    assert_eq!(store.fills("close-2").unwrap().len(), 1);

    let again = exec.reconcile(ex.now()).await.unwrap();
    assert!(again.resent.is_empty());
    assert_eq!(again.events.fills_recorded, 0);
    assert_eq!(fills_at_broker(&ex, "close-2").len(), 1);
}

#[tokio::test]
async fn an_intent_the_broker_received_before_the_crash_is_not_placed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ex = exchange();
    let intent = closing_intent(&ex, "close-3").await;
    {
        // Written, placed, and the process died before marking it sent.
        let store = open_store(&dir);
        store.insert_order(&Order::new(intent.clone())).unwrap();
        ex.place_order(&intent).await.unwrap();
    }
    let store = open_store(&dir);
    let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 0).0);
    let report = exec.reconcile(ex.now()).await.unwrap();
    assert_eq!(report.resent, vec!["close-3".to_string()]);
    assert_eq!(fills_at_broker(&ex, "close-3").len(), 1);
    assert_eq!(stored(&store, "close-3").status, OrderStatus::Filled);
    assert_eq!(store.fills("close-3").unwrap().len(), 1);
}

#[tokio::test]
async fn reconcile_records_fills_missed_while_disconnected_once_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 0).0);
    for r in ["close-4a", "close-4b"] {
        let approved = approve(&ex, closing_intent(&ex, r).await).await;
        exec.submit(approved, ex.now()).await.unwrap();
    }
    // The events are lost with the connection.
    let _ = ex.poll_events().await.unwrap();
    assert!(store.fills("close-4a").unwrap().is_empty());

    let first = exec.reconcile(ex.now()).await.unwrap();
    assert_eq!(first.events.fills_recorded, 2);
    assert!(first.unresolved.is_empty());
    let orders: Vec<Order> = ["close-4a", "close-4b"]
        .iter()
        .map(|r| stored(&store, r))
        .collect();
    assert!(orders.iter().all(|o| o.status == OrderStatus::Filled));
    let balance = store.ledger_balance().unwrap();
    let expected: core_domain::Money = ex.all_executions().iter().map(Fill::cash_flow).sum();
    assert_eq!(balance, expected);

    let second = exec.reconcile(ex.now()).await.unwrap();
    assert_eq!(second.events.fills_recorded, 0);
    assert_eq!(second.events.duplicate_fills, 2);
    assert_eq!(second.events.statuses_applied, 0);
    assert!(second.resent.is_empty());
    assert_eq!(store.ledger_balance().unwrap(), balance);
    for o in &orders {
        assert_eq!(&stored(&store, &o.intent.order_ref), o);
        assert_eq!(store.fills(&o.intent.order_ref).unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_repeated_fill_is_ignored_and_an_illegal_status_is_audited_without_changing_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 0).0);
    let approved = approve(&ex, closing_intent(&ex, "close-5").await).await;
    exec.submit(approved, ex.now()).await.unwrap();
    let events = ex.poll_events().await.unwrap();
    exec.process_events(events.clone(), ex.now()).await.unwrap();
    let filled = stored(&store, "close-5");
    let balance = store.ledger_balance().unwrap();

    let repeat = exec.process_events(events, ex.now()).await.unwrap();
    assert_eq!(repeat.fills_recorded, 0);
    assert_eq!(repeat.duplicate_fills, 1);
    assert_eq!(stored(&store, "close-5"), filled);
    assert_eq!(store.fills("close-5").unwrap().len(), 1);
    assert_eq!(store.ledger_balance().unwrap(), balance);

    let cancel = BrokerEvent::OrderStatus(OrderUpdate {
        order_ref: "close-5".into(),
        broker_order_id: filled.broker_order_id,
        status: OrderStatus::Cancelled,
        filled_quantity: 0,
        remaining_quantity: 1,
        avg_fill_price: None,
        reason: Some("late cancel".into()),
        time: ex.now(),
    });
    let report = exec.process_events(vec![cancel], ex.now()).await.unwrap();
    assert_eq!(report.audited, 1);
    assert_eq!(stored(&store, "close-5"), filled);
    let audit = &store.recent_audit(1).unwrap()[0];
    assert_eq!(audit.action, "order.illegal_transition");
    assert!(audit.outcome.as_deref().unwrap().contains("filled"));
}

#[tokio::test]
async fn events_for_an_unknown_order_are_audited_and_nothing_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 0).0);
    let intent = closing_intent(&ex, "stranger").await;
    ex.place_order(&intent).await.unwrap();
    let events = ex.poll_events().await.unwrap();
    let n = events.len();
    let report = exec.process_events(events, ex.now()).await.unwrap();
    assert_eq!(report.audited, n);
    assert!(store.order("stranger").unwrap().is_none());
    let actions: Vec<String> = store
        .recent_audit(10)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(actions.contains(&"fill.unknown_order".to_string()));
    assert!(actions.contains(&"order.unknown_ref".to_string()));
}

#[tokio::test]
async fn a_broker_rejection_is_stored_with_its_reason_and_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = OrderExecutor::new(Arc::clone(&store), spy(&ex, &store, 0).0);
    let mut intent = closing_intent(&ex, "close-6").await;
    intent.limit_price = Price::from_raw(intent.limit_price.raw() * 10);
    let approved = approve(&ex, intent).await;
    let err = exec.submit(approved, ex.now()).await.unwrap_err();
    assert!(matches!(err, ExecutionError::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("close-6"));
    let order = stored(&store, "close-6");
    assert_eq!(order.status, OrderStatus::Rejected);
    assert!(order.reason.unwrap().contains("price band"));
}

#[tokio::test]
async fn submitting_a_known_order_ref_again_does_not_send_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let (broker, seen) = spy(&ex, &store, 0);
    let exec = OrderExecutor::new(Arc::clone(&store), broker);
    let intent = closing_intent(&ex, "close-7").await;
    let first = exec
        .submit(approve(&ex, intent.clone()).await, ex.now())
        .await
        .unwrap();
    let second = exec
        .submit(approve(&ex, intent).await, ex.now())
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(seen.lock().unwrap().len(), 1);
}
