#![allow(clippy::unwrap_used, clippy::expect_used)]
//! IBKR's habits against the executor (issue #12): a status before its
//! execution, execution corrections, rejections by error code only,
//! intents left unsent, orders that vanish from the open-order list, a
//! cancel never confirmed. Each test fails on the executor before the
//! fixes.

mod common;

use chrono::Duration;
use common::*;
use core_domain::{
    AuditRepository, Broker, BrokerEvent, Fill, Money, OrderRepository, OrderStatus, OrderUpdate,
    Price, Side, TradeRepository, TradeStatus,
};
use execution::ResolvePolicy;

/// A resting sell-to-open of 2 MSFT 40 puts (limit 5 cents above the
/// mid: it does not fill), sent to the broker.
async fn resting_entry(
    exec: &Exec,
    ex: &market_sim::SimExchange,
    order_ref: &str,
    trade_id: &str,
) -> (core_domain::OptionContract, Price) {
    let (put, quote) = put(ex, "MSFT", 40.0, date(2016, 3, 18)).await;
    let limit = quote.mid().unwrap() + Price::from_cents(5);
    let underlying = spot(ex, "MSFT").await;
    let entry = template(&put, "Information Technology", underlying, ex.now());
    let order = sell_to_open(exec, ex, order_ref, trade_id, &put, 2, limit, Some(entry))
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::Sent);
    (put, limit)
}

fn status(
    order_ref: &str,
    s: OrderStatus,
    filled: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> BrokerEvent {
    BrokerEvent::OrderStatus(OrderUpdate {
        order_ref: order_ref.into(),
        broker_order_id: None,
        status: s,
        filled_quantity: filled,
        remaining_quantity: 2 - filled,
        avg_fill_price: None,
        reason: None,
        time: at,
    })
}

fn execution(
    exec_id: &str,
    order_ref: &str,
    put: &core_domain::OptionContract,
    quantity: i64,
    price: Price,
    at: chrono::DateTime<chrono::Utc>,
) -> BrokerEvent {
    BrokerEvent::Fill(Fill {
        exec_id: exec_id.into(),
        order_ref: order_ref.into(),
        contract: core_domain::Contract::Option(put.clone()),
        side: Side::Sell,
        quantity,
        price,
        commission: Money::from_cents(65),
        time: at,
    })
}

fn audited(store: &store::Store, action: &str) -> usize {
    store
        .recent_audit(100_000)
        .unwrap()
        .iter()
        .filter(|a| a.action == action)
        .count()
}

#[tokio::test]
async fn a_fill_reported_after_the_cancelled_status_is_recorded_and_sizes_the_trade() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, limit) = resting_entry(&exec, &ex, "open-late", "T-late").await;
    let now = ex.now();

    // IBKR: "Cancelled, 1 filled" first; the execution waits for its
    // commission report and comes after.
    let report = exec
        .process_events(
            vec![status("open-late", OrderStatus::Cancelled, 1, now)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.deferred, vec!["open-late".to_string()]);
    let order = store.order("open-late").unwrap().unwrap();
    assert!(
        order.status.is_working(),
        "the terminal status waits for the execution: {}",
        order.status
    );
    let report = exec
        .process_events(
            vec![execution(
                "0000e0d5.6571c9f1.01.01",
                "open-late",
                &put,
                1,
                limit,
                now,
            )],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.fills_recorded, 1, "{report:?}");
    assert_eq!(store.fills("open-late").unwrap().len(), 1);
    let trade = store.trade("T-late").unwrap().expect("the trade is opened");
    assert_eq!((trade.contracts, trade.status), (1, TradeStatus::Open));

    // The final status again: the order ends with its one contract.
    exec.process_events(
        vec![status("open-late", OrderStatus::Cancelled, 1, now)],
        now,
    )
    .await
    .unwrap();
    let order = store.order("open-late").unwrap().unwrap();
    assert_eq!(
        (order.status, order.filled_quantity),
        (OrderStatus::Cancelled, 1)
    );
}

#[tokio::test]
async fn an_execution_for_an_order_already_cancelled_is_recorded_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, limit) = resting_entry(&exec, &ex, "open-gone", "T-gone").await;
    let now = ex.now();
    // The status said nothing filled; the execution still came.
    exec.process_events(
        vec![status("open-gone", OrderStatus::Cancelled, 0, now)],
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        store.order("open-gone").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    let report = exec
        .process_events(
            vec![execution(
                "0000e0d5.6571c9f2.01.01",
                "open-gone",
                &put,
                2,
                limit,
                now,
            )],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (report.fills_recorded, report.late_fills),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(audited(&store, "fill.refused"), 0);
    let order = store.order("open-gone").unwrap().unwrap();
    assert_eq!(
        (order.status, order.filled_quantity),
        (OrderStatus::Cancelled, 2)
    );
    assert_eq!(store.trade("T-gone").unwrap().unwrap().contracts, 2);
}

#[tokio::test]
async fn an_execution_correction_replaces_never_adds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, limit) = resting_entry(&exec, &ex, "open-corr", "T-corr").await;
    let now = ex.now();
    let report = exec
        .process_events(
            vec![
                execution("0000e0d5.6571c9f3.01.01", "open-corr", &put, 1, limit, now),
                execution("0000e0d5.6571c9f3.01.02", "open-corr", &put, 1, limit, now),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (report.fills_recorded, report.corrections),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(store.fills("open-corr").unwrap().len(), 1);
    assert_eq!(
        store.order("open-corr").unwrap().unwrap().filled_quantity,
        1
    );
    assert_eq!(store.trade("T-corr").unwrap().unwrap().contracts, 1);
    assert_eq!(audited(&store, "fill.correction"), 1);
}

#[tokio::test]
async fn an_order_scoped_error_code_ends_the_order_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    resting_entry(&exec, &ex, "open-201", "T-201").await;
    let now = ex.now();
    let report = exec
        .process_events(
            vec![BrokerEvent::Error {
                code: 201,
                message: "Order rejected - reason: insufficient margin".into(),
                order_ref: Some("open-201".into()),
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.rejected_by_code, vec!["open-201".to_string()]);
    assert_eq!(
        report.broker_errors.len(),
        1,
        "still counted by the breaker"
    );
    let order = store.order("open-201").unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Rejected);
    assert!(
        order.reason.as_deref().unwrap().contains("201"),
        "{order:?}"
    );
    // An informational code names no order and changes nothing.
    exec.process_events(
        vec![BrokerEvent::Error {
            code: 2104,
            message: "Market data farm connection is OK".into(),
            order_ref: None,
        }],
        now,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_pending_cancel_never_confirmed_is_resolved_against_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    resting_entry(&exec, &ex, "open-pc", "T-pc").await;
    let now = ex.now();
    assert!(exec.cancel("open-pc", now, "test").await.unwrap());
    // The confirmation is lost (the events are never polled).
    assert_eq!(
        store.order("open-pc").unwrap().unwrap().status,
        OrderStatus::PendingCancel
    );
    let policy = ResolvePolicy::default();
    let first = exec.resolve_orders(now, &policy).await.unwrap();
    assert_eq!(first.missing, vec!["open-pc".to_string()]);
    assert!(first.resolved.is_empty(), "missing once is not enough");
    let later = now + Duration::minutes(15);
    let second = exec.resolve_orders(later, &policy).await.unwrap();
    assert_eq!(
        second.resolved,
        vec![("open-pc".to_string(), OrderStatus::Cancelled)]
    );
    assert_eq!(
        store.order("open-pc").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
}

#[tokio::test]
async fn a_working_order_that_vanished_is_resolved_and_one_that_filled_gets_its_fills() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    resting_entry(&exec, &ex, "open-vanish", "T-vanish").await;
    let now = ex.now();
    // Still listed: nothing happens, however often it is asked.
    let policy = ResolvePolicy::default();
    for k in 0..3 {
        let r = exec
            .resolve_orders(now + Duration::minutes(k), &policy)
            .await
            .unwrap();
        assert!(r.missing.is_empty() && r.resolved.is_empty(), "{r:?}");
    }
    // TWS's list lost it in a disconnect.
    exec.broker().hide_open_orders(true);
    exec.resolve_orders(now + Duration::minutes(15), &policy)
        .await
        .unwrap();
    let r = exec
        .resolve_orders(now + Duration::minutes(30), &policy)
        .await
        .unwrap();
    assert_eq!(r.resolved.len(), 1, "{r:?}");
    assert!(
        store
            .order("open-vanish")
            .unwrap()
            .unwrap()
            .status
            .is_terminal()
    );
}

#[tokio::test]
async fn an_unsent_intent_is_retried_while_fresh_and_expires_unsent_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, quote) = put(&ex, "MSFT", 40.0, date(2016, 3, 18)).await;
    let limit = quote.mid().unwrap() + Price::from_cents(5);
    set_down(exec.broker(), true);
    let err = sell_to_open(&exec, &ex, "open-unsent", "T-u", &put, 1, limit, None).await;
    assert!(err.is_err());
    assert_eq!(
        store.order("open-unsent").unwrap().unwrap().status,
        OrderStatus::Created
    );
    let policy = ResolvePolicy::default();
    // Still down 10 minutes later: still created.
    let r = exec
        .resolve_orders(ex.now() + Duration::minutes(10), &policy)
        .await
        .unwrap();
    assert_eq!(r.still_unsent, vec!["open-unsent".to_string()]);
    // Back up, but the intent is an hour old: expired, never sent.
    set_down(exec.broker(), false);
    let r = exec
        .resolve_orders(ex.now() + Duration::minutes(60), &policy)
        .await
        .unwrap();
    assert_eq!(r.expired_intents.len(), 1, "{r:?}");
    assert_eq!(exec.broker().calls(Call::PlaceOrder), 0);
    let order = store.order("open-unsent").unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert!(order.reason.unwrap().contains("expired"));
    assert_eq!(audited(&store, "order.intent_expired"), 1);

    // A fresh one is sent by the next resolution.
    set_down(exec.broker(), true);
    let _ = sell_to_open(&exec, &ex, "open-fresh", "T-f", &put, 1, limit, None).await;
    set_down(exec.broker(), false);
    let r = exec
        .resolve_orders(ex.now() + Duration::minutes(15), &policy)
        .await
        .unwrap();
    assert_eq!(r.resent, vec!["open-fresh".to_string()], "{r:?}");
    assert_eq!(exec.broker().calls(Call::PlaceOrder), 1);
}

#[tokio::test]
async fn reconcile_never_sends_an_old_intent_or_an_entry_written_before_a_halt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, quote) = put(&ex, "MSFT", 40.0, date(2016, 3, 18)).await;
    let limit = quote.mid().unwrap() + Price::from_cents(5);
    set_down(exec.broker(), true);
    let _ = sell_to_open(&exec, &ex, "open-old", "T-o", &put, 1, limit, None).await;
    let _ = sell_to_open(&exec, &ex, "open-halt", "T-h", &put, 1, limit, None).await;
    set_down(exec.broker(), false);

    // Days later: the old intent is not sent with its old limit.
    let days_later = ex.now() + Duration::days(2);
    let report = exec.reconcile(days_later).await.unwrap();
    assert!(report.resent.is_empty(), "{report:?}");
    assert_eq!(report.expired.len(), 2);
    assert_eq!(exec.broker().calls(Call::PlaceOrder), 0);

    // Minutes later, but trading was halted after it was written.
    set_down(exec.broker(), true);
    let _ = sell_to_open(&exec, &ex, "open-halted", "T-hh", &put, 1, limit, None).await;
    set_down(exec.broker(), false);
    store
        .set_trading_state_at(
            ex.now() + Duration::minutes(1),
            core_domain::TradingState::Halted,
            "daily loss limit",
            "risk",
        )
        .unwrap();
    let report = exec
        .reconcile(ex.now() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(report.expired, vec!["open-halted".to_string()]);
    assert_eq!(exec.broker().calls(Call::PlaceOrder), 0);
    assert!(ex.open_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_partial_assignment_settles_only_those_contracts_and_the_trade_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, limit) = resting_entry(&exec, &ex, "open-pa", "T-pa").await;
    let now = ex.now();
    exec.process_events(
        vec![execution(
            "0000e0d5.6571c9f4.01.01",
            "open-pa",
            &put,
            2,
            limit,
            now,
        )],
        now,
    )
    .await
    .unwrap();
    assert_eq!(store.trade("T-pa").unwrap().unwrap().contracts, 2);
    let marks =
        std::collections::BTreeMap::from([(put.underlying.clone(), Price::from_cents(3_900))]);
    let report = exec
        .process_events_with_marks(
            vec![BrokerEvent::Assignment {
                contract: put.clone(),
                quantity: -1,
                time: now,
            }],
            &marks,
            now,
        )
        .await
        .unwrap();
    assert!(
        matches!(&report.trades[..], [execution::TradeChange::PartlySettled(t)] if t.contracts == 1),
        "{report:?}"
    );
    let trade = store.trade("T-pa").unwrap().unwrap();
    assert_eq!((trade.status, trade.contracts), (TradeStatus::Open, 1));
}

#[test]
fn a_repriced_exit_limit_stays_on_the_option_tick() {
    let manager = execution::ExitManager::new(execution::ExitParams::default()).unwrap();
    let put = core_domain::OptionContract::us(
        sym("XYZ"),
        core_domain::Right::Put,
        Price::from_cents(5_000),
        date(2016, 3, 18),
    );
    let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let order = execution::ExitOrder {
        intent: intent(
            "X-T-1-profit_target-201603011500",
            &put,
            Side::Buy,
            1,
            Price::from_cents(350),
            core_domain::OrderPurpose::Close,
            "T-1",
            t,
        ),
        reason: core_domain::ExitReason::ProfitTarget,
        decision: core_domain::DecisionRecord::new(
            t,
            core_domain::DecisionKind::Exit,
            "T-1",
            "exit:profit_target",
            "test",
        ),
    };
    let quote = core_domain::Quote {
        contract: core_domain::Contract::Option(put),
        bid: Some(Price::from_cents(300)),
        ask: Some(Price::from_cents(350)),
        last: None,
        bid_size: None,
        ask_size: None,
        time: t,
        implied_vol: None,
        greeks: None,
        underlying_price: None,
        open_interest: None,
        volume: None,
    };
    let policy = execution::RepricePolicy::default();
    // Half-way from the mid (3.25) to the ask: 3.375, 3.38 to the cent —
    // not a price of an option on the nickel tick above $3.
    let cents = execution::exit_limit(Side::Buy, order.reason, &quote, 0, &policy).unwrap();
    assert_eq!(cents, Price::from_cents(338));
    let limit = manager.repriced_limit(&order, &quote, 0, &policy).unwrap();
    assert_eq!(limit, Price::from_cents(340));
    // Below $3 the cent is the tick.
    let cheap = core_domain::Quote {
        bid: Some(Price::from_cents(120)),
        ask: Some(Price::from_cents(131)),
        ..quote
    };
    let limit = manager.repriced_limit(&order, &cheap, 0, &policy).unwrap();
    assert_eq!(limit, Price::from_cents(129));
}

#[allow(clippy::too_many_arguments)] // every field of the fill, named at the call
fn fill_event(
    exec_id: &str,
    order_ref: &str,
    put: &core_domain::OptionContract,
    side: Side,
    quantity: i64,
    price: Price,
    commission: Money,
    at: chrono::DateTime<chrono::Utc>,
) -> BrokerEvent {
    BrokerEvent::Fill(Fill {
        exec_id: exec_id.into(),
        order_ref: order_ref.into(),
        contract: core_domain::Contract::Option(put.clone()),
        side,
        quantity,
        price,
        commission,
        time: at,
    })
}

/// Every fill's cash (premium and commission) equals what the ledger
/// moved since `before`, to the cent.
fn assert_ledger_matches_fills(store: &store::Store, before: Money, order_refs: &[&str]) {
    let cash: Money = order_refs
        .iter()
        .flat_map(|r| store.fills(r).unwrap())
        .map(|f| f.cash_flow())
        .sum();
    use core_domain::AccountRepository;
    assert_eq!(store.ledger_balance().unwrap() - before, cash);
}

#[tokio::test]
async fn a_late_commission_report_restates_the_fill_its_order_the_ledger_and_the_closed_trade() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    use core_domain::AccountRepository;
    let before = store.ledger_balance().unwrap();
    let (put, limit) = resting_entry(&exec, &ex, "open-comm", "T-comm").await;
    let now = ex.now();
    // The entry fills; its commission report is late: reported at zero.
    let (open_id, close_id) = ("0000e0d5.6571c9f4.01.01", "0000e0d5.6571c9f5.01.01");
    exec.process_events(
        vec![fill_event(
            open_id,
            "open-comm",
            &put,
            Side::Sell,
            2,
            limit,
            Money::ZERO,
            now,
        )],
        now,
    )
    .await
    .unwrap();
    // The close (resting below the market) fills, its commission late too.
    // One cent: below the bid, it rests.
    let close_limit = Price::from_cents(1);
    let (intent, context) = closing(
        &ex,
        "close-comm",
        "T-comm",
        &put,
        2,
        close_limit,
        core_domain::ExitReason::ProfitTarget,
    )
    .await;
    exec.submit_with_context(approve_close(&ex, intent).await, context, now)
        .await
        .unwrap();
    exec.process_events(
        vec![fill_event(
            close_id,
            "close-comm",
            &put,
            Side::Buy,
            2,
            close_limit,
            Money::ZERO,
            now,
        )],
        now,
    )
    .await
    .unwrap();
    let closed = store.trade("T-comm").unwrap().unwrap();
    assert_eq!(closed.status, TradeStatus::Closed);
    assert_eq!(closed.commissions, Money::ZERO);
    let pl_before = closed.profit_loss.unwrap();

    // The two commission reports arrive late: one as IBKR's late report
    // (the adapter no longer holds the fill), one re-reported as a fill.
    let report = exec
        .process_events(
            vec![
                BrokerEvent::Commission {
                    exec_id: open_id.into(),
                    commission: Money::from_cents(130),
                    time: now,
                },
                fill_event(
                    close_id,
                    "close-comm",
                    &put,
                    Side::Buy,
                    2,
                    close_limit,
                    Money::from_cents(131),
                    now,
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(report.amended, 2, "{report:?}");
    assert_eq!(
        store.fills("open-comm").unwrap()[0].commission,
        Money::from_cents(130)
    );
    assert_eq!(
        store.fills("close-comm").unwrap()[0].commission,
        Money::from_cents(131)
    );
    assert_eq!(
        store.order("open-comm").unwrap().unwrap().commission,
        Money::from_cents(130)
    );
    let trade = store.trade("T-comm").unwrap().unwrap();
    assert_eq!(trade.commissions, Money::from_cents(261));
    assert_eq!(trade.profit_loss, Some(pl_before - Money::from_cents(261)));
    assert_ledger_matches_fills(&store, before, &["open-comm", "close-comm"]);
    assert_eq!(audited(&store, "fill.amended"), 2);

    // The same reports again, and the execution re-sent without its
    // commission: nothing changes.
    let report = exec
        .process_events(
            vec![
                BrokerEvent::Commission {
                    exec_id: open_id.into(),
                    commission: Money::from_cents(130),
                    time: now,
                },
                fill_event(
                    open_id,
                    "open-comm",
                    &put,
                    Side::Sell,
                    2,
                    limit,
                    Money::ZERO,
                    now,
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (report.amended, report.duplicate_fills),
        (0, 2),
        "{report:?}"
    );
    assert_eq!(store.trade("T-comm").unwrap().unwrap(), trade);
    assert_ledger_matches_fills(&store, before, &["open-comm", "close-comm"]);

    // A commission report for an execution never recorded is audited.
    exec.process_events(
        vec![BrokerEvent::Commission {
            exec_id: "0000e0d5.ffffffff.01.01".into(),
            commission: Money::from_cents(65),
            time: now,
        }],
        now,
    )
    .await
    .unwrap();
    assert_eq!(audited(&store, "fill.commission_unknown"), 1);
}

#[tokio::test]
async fn a_correction_with_other_figures_restates_the_recorded_fill() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    use core_domain::AccountRepository;
    let before = store.ledger_balance().unwrap();
    let (put, limit) = resting_entry(&exec, &ex, "open-fix", "T-fix").await;
    let now = ex.now();
    let corrected = limit - Price::from_cents(3);
    let report = exec
        .process_events(
            vec![
                fill_event(
                    "0000e0d5.6571c9f6.01.01",
                    "open-fix",
                    &put,
                    Side::Sell,
                    2,
                    limit,
                    Money::from_cents(130),
                    now,
                ),
                // IBKR's correction: another price, no commission report yet.
                fill_event(
                    "0000e0d5.6571c9f6.01.02",
                    "open-fix",
                    &put,
                    Side::Sell,
                    2,
                    corrected,
                    Money::ZERO,
                    now,
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (report.fills_recorded, report.amended),
        (1, 1),
        "{report:?}"
    );
    let fills = store.fills("open-fix").unwrap();
    assert_eq!(fills.len(), 1, "a correction never adds a fill");
    assert_eq!(
        (
            fills[0].exec_id.as_str(),
            fills[0].price,
            fills[0].commission
        ),
        ("0000e0d5.6571c9f6.01.01", corrected, Money::from_cents(130)),
        "the recorded id keeps its commission and takes the corrected price"
    );
    let order = store.order("open-fix").unwrap().unwrap();
    assert_eq!(
        (order.filled_quantity, order.avg_fill_price),
        (2, Some(corrected))
    );
    let trade = store.trade("T-fix").unwrap().unwrap();
    assert_eq!((trade.contracts, trade.entry_premium), (2, corrected));
    assert_ledger_matches_fills(&store, before, &["open-fix"]);
}
