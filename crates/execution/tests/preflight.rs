#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The executor's pre-flight checks: market hours, a contract the broker
//! knows, a sane limit against the quote the order was made from. A failed
//! check writes nothing but an audit entry.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::*;
use core_domain::{AuditRepository, ExitReason, OptionContract, OrderRepository, Price, Right};
use execution::{ExecutionError, OrderExecutor, TradingHours};

#[derive(Debug)]
struct Closed;

impl TradingHours for Closed {
    fn is_open(&self, _time: DateTime<Utc>) -> bool {
        false
    }
}

fn preflight_check(e: ExecutionError) -> &'static str {
    match e {
        ExecutionError::PreFlight { check, .. } => check,
        other => panic!("expected a pre-flight failure, got {other}"),
    }
}

#[tokio::test]
async fn test_a_buy_far_above_the_ask_is_refused_and_a_sane_one_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let ex = exchange();
    let store = open_store(&dir);
    let exec = executor(&ex, &store);
    let (contract, quote) = otm_put(&ex, "MSFT", date(2016, 3, 11), 0.10).await;
    let ask = quote.ask.unwrap();
    // Band: max($0.10, 25% of the ask) above the ask.
    let band = (0.25 * ask.to_f64()).max(0.10);
    let too_high = Price::from_f64(ask.to_f64() + band + 0.01).unwrap();
    let (intent, context) = closing(
        &ex,
        "X-far",
        "T-1",
        &contract,
        1,
        too_high,
        ExitReason::StopLoss,
    )
    .await;
    let err = exec
        .submit_with_context(approve_close(&ex, intent).await, context, ex.now())
        .await
        .unwrap_err();
    assert_eq!(preflight_check(err), "limit_price");
    assert!(store.order("X-far").unwrap().is_none(), "nothing written");
    let audit = store.recent_audit(10).unwrap();
    assert!(audit.iter().any(|a| a.action == "order.preflight_failed"));

    let at_band = Price::from_f64(ask.to_f64() + band).unwrap();
    let (intent, context) = closing(
        &ex,
        "X-ok",
        "T-1",
        &contract,
        1,
        at_band,
        ExitReason::StopLoss,
    )
    .await;
    // Exactly at the band passes the check (the broker then decides).
    let _ = exec
        .submit_with_context(approve_close(&ex, intent).await, context, ex.now())
        .await;
    assert!(store.order("X-ok").unwrap().is_some());
}

#[tokio::test]
async fn test_outside_market_hours_and_unknown_contracts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ex = exchange();
    let store = open_store(&dir);
    let (contract, quote) = otm_put(&ex, "MSFT", date(2016, 3, 11), 0.10).await;
    let closed = OrderExecutor::new(Arc::clone(&store), Link::new(Arc::clone(&ex)))
        .with_trading_hours(Arc::new(Closed));
    let (intent, context) = closing(
        &ex,
        "X-night",
        "T-1",
        &contract,
        1,
        quote.ask.unwrap(),
        ExitReason::ProfitTarget,
    )
    .await;
    let err = closed
        .submit_with_context(approve_close(&ex, intent).await, context, ex.now())
        .await
        .unwrap_err();
    assert_eq!(preflight_check(err), "market_open");

    let exec = executor(&ex, &store);
    let bogus = OptionContract::us(
        sym("ZZZZ"),
        Right::Put,
        Price::from_cents(1_000),
        date(2016, 3, 11),
    );
    let (intent, context) = closing(
        &ex,
        "X-bogus",
        "T-2",
        &contract,
        1,
        quote.ask.unwrap(),
        ExitReason::ProfitTarget,
    )
    .await;
    let mut intent = intent;
    intent.contract = core_domain::Contract::Option(bogus);
    let err = exec
        .submit_with_context(approve_close(&ex, intent).await, context, ex.now())
        .await
        .unwrap_err();
    assert_eq!(preflight_check(err), "contract");
    assert!(store.order("X-night").unwrap().is_none());
    assert!(store.order("X-bogus").unwrap().is_none());
}
