#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Expiry and assignment of short puts held to expiry on the simulated
//! exchange, through the trade logger and the ledger.
//!
//! MSFT closed at 46.76 on Friday 2016-03-04 (47.26, 47.59, 47.05 the days
//! before): the 45 put of that expiry ends out of the money, the 47.50 put
//! in the money (by less than 5%, so it is not assigned early).

mod common;

use std::collections::BTreeMap;

use common::*;
use core_domain::{
    AccountRepository, AuditRepository, Broker, BrokerEvent, Contract, ExitReason, Money, Price,
    TradeRepository, TradeStatus,
};
use execution::TradeChange;

const STARTING_CASH: Money = Money::from_dollars(100_000);

/// Sells one MSFT put of 2016-03-04 at the bid and records the fill.
async fn short_put(
    exec: &Exec,
    ex: &market_sim::SimExchange,
    strike: f64,
    trade_id: &str,
) -> core_domain::OptionContract {
    let (put, quote) = put(ex, "MSFT", strike, date(2016, 3, 4)).await;
    let entry = template(
        &put,
        "Information Technology",
        spot(ex, "MSFT").await,
        ex.now(),
    );
    let order_ref = format!("open-{trade_id}");
    sell_to_open(
        exec,
        ex,
        &order_ref,
        trade_id,
        &put,
        1,
        quote.bid.unwrap(),
        Some(entry),
    )
    .await
    .unwrap();
    let (_, report) = pump(exec, ex).await;
    assert_eq!(report.fills_recorded, 1);
    assert_eq!(
        exec.store().trade(trade_id).unwrap().unwrap().status,
        TradeStatus::Open
    );
    put
}

fn premium_received(ex: &market_sim::SimExchange, order_ref: &str) -> Money {
    fills_of(ex, order_ref).iter().map(|f| f.cash_flow()).sum()
}

#[tokio::test]
async fn a_put_held_to_expiry_out_of_the_money_closes_expired_worthless_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let put = short_put(&exec, &ex, 45.0, "T-OTM").await;

    let close = close_of(&ex, date(2016, 3, 4));
    ex.advance_to(close);
    let events = ex.poll_events().await.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, BrokerEvent::Expiration { contract, quantity: -1, .. } if *contract == put)),
        "{events:?}"
    );
    let report = exec
        .process_events_with_marks(events.clone(), &BTreeMap::new(), ex.now())
        .await
        .unwrap();
    assert!(matches!(&report.trades[..], [TradeChange::Closed(t)] if t.trade_id == "T-OTM"));

    let trade = store.trade("T-OTM").unwrap().unwrap();
    let net = premium_received(&ex, "open-T-OTM");
    assert_eq!(trade.status, TradeStatus::Closed);
    assert_eq!(trade.exit_reason, Some(ExitReason::ExpiredWorthless));
    assert_eq!(trade.exit_premium, Some(Price::ZERO));
    assert_eq!(trade.exit_time, Some(close));
    assert_eq!(trade.exit_date, Some(date(2016, 3, 4)));
    assert_eq!(trade.days_held, Some(3));
    assert_eq!(
        trade.profit_loss,
        Some(net),
        "the premium less its commission"
    );
    assert_eq!(
        trade.profit_pct,
        Some(net.cents() as f64 / cents(trade.entry_premium, 1).cents() as f64)
    );

    // The option left the book at 0: the ledger agrees with the broker's.
    assert!(ex.positions().await.unwrap().is_empty());
    let key = Contract::Option(put).key();
    let settlement = store
        .ledger_entries(Some(&format!("EXPIRE-20160304-{key}")))
        .unwrap();
    assert_eq!(settlement.len(), 1);
    assert_eq!(settlement[0].amount, Money::ZERO);
    assert_eq!(store.ledger_balance().unwrap(), net);
    assert_eq!(
        store.ledger_balance().unwrap(),
        ex.ledger().cash() - STARTING_CASH
    );

    // Again: nothing changes.
    let ledger = store.ledger_entries(None).unwrap();
    let again = exec
        .process_events_with_marks(events, &BTreeMap::new(), ex.now())
        .await
        .unwrap();
    assert!(matches!(&again.trades[..], [TradeChange::Unmatched(_)]));
    assert_eq!(store.trade("T-OTM").unwrap().unwrap(), trade);
    assert_eq!(store.ledger_entries(None).unwrap(), ledger);
}

#[tokio::test]
async fn an_in_the_money_put_is_assigned_and_its_trade_closes_at_the_intrinsic_value_of_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let put = short_put(&exec, &ex, 47.5, "T-ITM").await;

    let close = close_of(&ex, date(2016, 3, 4));
    ex.advance_to(close);
    let events = ex.poll_events().await.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, BrokerEvent::Assignment { contract, quantity: -1, .. } if *contract == put)),
        "{events:?}"
    );
    let mark = spot(&ex, "MSFT").await;
    assert!(mark < put.strike, "in the money: {mark}");
    let marks = BTreeMap::from([(sym("MSFT"), mark)]);
    let report = exec
        .process_events_with_marks(events.clone(), &marks, ex.now())
        .await
        .unwrap();
    assert!(report.unpriced_assignments.is_empty());
    assert!(matches!(&report.trades[..], [TradeChange::Closed(t)] if t.trade_id == "T-ITM"));

    let trade = store.trade("T-ITM").unwrap().unwrap();
    let intrinsic = put.strike - mark;
    let net = premium_received(&ex, "open-T-ITM");
    assert_eq!(trade.exit_reason, Some(ExitReason::Assigned));
    assert_eq!(trade.exit_premium, Some(intrinsic));
    assert_eq!(trade.exit_time, Some(close));
    assert_eq!(trade.profit_loss, Some(net - cents(intrinsic, 1)));
    assert_eq!(trade.status, TradeStatus::Closed);

    // Settlement in the ledger: the stock bought at the strike. The
    // store's cash agrees with the broker's, and so do the positions.
    let key = Contract::Option(put.clone()).key();
    let stock = store
        .ledger_entries(Some(&format!("ASSIGN-20160304-{key}-STK")))
        .unwrap();
    assert_eq!(stock.len(), 1);
    assert_eq!(stock[0].amount, -put.strike.notional(100, 1));
    assert_eq!(
        store.ledger_balance().unwrap(),
        ex.ledger().cash() - STARTING_CASH
    );
    let held = ex.positions().await.unwrap();
    assert_eq!(held.len(), 1);
    assert!(matches!(&held[0].contract, Contract::Stock(s) if s.symbol == sym("MSFT")));
    assert_eq!(held[0].quantity, 100);

    // Replayed, the assignment finds no open trade: nothing is posted twice.
    let ledger = store.ledger_entries(None).unwrap();
    let again = exec
        .process_events_with_marks(events, &marks, ex.now())
        .await
        .unwrap();
    assert!(matches!(&again.trades[..], [TradeChange::Unmatched(_)]));
    assert_eq!(store.trade("T-ITM").unwrap().unwrap(), trade);
    assert_eq!(store.ledger_entries(None).unwrap(), ledger);
}

#[tokio::test]
async fn an_assignment_without_a_mark_leaves_the_trade_open_and_is_reported_until_priced() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let put = short_put(&exec, &ex, 47.5, "T-UNP").await;
    ex.advance_to(close_of(&ex, date(2016, 3, 4)));
    let events = ex.poll_events().await.unwrap();
    let ledger = store.ledger_entries(None).unwrap();

    // A mark of another symbol does not price it.
    let other = BTreeMap::from([(sym("KO"), Price::from_cents(4_300))]);
    let report = exec
        .process_events_with_marks(events.clone(), &other, ex.now())
        .await
        .unwrap();
    assert_eq!(report.unpriced_assignments, vec![put.clone()]);
    assert!(report.trades.is_empty(), "{:?}", report.trades);
    let trade = store.trade("T-UNP").unwrap().unwrap();
    assert_eq!(trade.status, TradeStatus::Open);
    assert_eq!(trade.exit_reason, None);
    assert_eq!(
        store.ledger_entries(None).unwrap(),
        ledger,
        "nothing posted"
    );
    let audit = store.recent_audit(20).unwrap();
    let unpriced = audit
        .iter()
        .find(|a| a.action == "settlement.no_price")
        .expect("audited");
    assert!(unpriced.outcome.as_deref().unwrap().contains("MSFT"));

    // With the price, the same event closes it.
    let mark = spot(&ex, "MSFT").await;
    let marks = BTreeMap::from([(sym("MSFT"), mark)]);
    let report = exec
        .process_events_with_marks(events, &marks, ex.now())
        .await
        .unwrap();
    assert!(report.unpriced_assignments.is_empty());
    let trade = store.trade("T-UNP").unwrap().unwrap();
    assert_eq!(trade.exit_reason, Some(ExitReason::Assigned));
    assert_eq!(trade.exit_premium, Some(put.strike - mark));
    assert_eq!(
        store.ledger_balance().unwrap(),
        ex.ledger().cash() - STARTING_CASH
    );
}
