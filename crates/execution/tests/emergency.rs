#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The emergency stop against the simulated exchange, a real store and a
//! real risk governor: halt, cancel, flatten.

mod common;

use chrono::Duration;
use common::*;
use core_domain::{
    AccountRepository, AuditRepository, Broker, Contract, DecisionKind, ExitReason, OptionContract,
    OrderIntent, OrderPurpose, OrderRepository, OrderStatus, Price, Side, TradeRepository,
    TradeStatus,
};
use execution::{EmergencyStop, OrderContext, emergency_stop};
use risk::{RiskGovernor, RiskLimits, RiskRefusal, TradingState};
use store::{ControlAction, ControlRequest};

/// Two short puts of 2016-03-18 about 3% out of the money, MSFT and
/// `other`, held as trades T-MSFT and T-<other>, and a sell-to-open of
/// MSFT resting 10 cents above the bid.
async fn book(
    exec: &Exec,
    ex: &market_sim::SimExchange,
    other: &str,
) -> Vec<(String, OptionContract)> {
    let expiry = date(2016, 3, 18);
    let mut held = Vec::new();
    for symbol in ["MSFT", other] {
        let (put, quote) = otm_put(ex, symbol, expiry, 0.03).await;
        assert!(quote.bid.unwrap() >= Price::from_cents(5), "{quote:?}");
        let trade_id = format!("T-{symbol}");
        let entry = template(&put, &sector(ex, symbol), spot(ex, symbol).await, ex.now());
        sell_to_open(
            exec,
            ex,
            &format!("open-{symbol}"),
            &trade_id,
            &put,
            1,
            quote.bid.unwrap(),
            Some(entry),
        )
        .await
        .unwrap();
        held.push((trade_id, put));
    }
    let (rest, quote) = put(ex, "MSFT", 42.5, expiry).await;
    sell_to_open(
        exec,
        ex,
        "rest-1",
        "T-REST",
        &rest,
        1,
        quote.bid.unwrap() + Price::from_cents(10),
        None,
    )
    .await
    .unwrap();
    let (_, report) = pump(exec, ex).await;
    assert_eq!(report.fills_recorded, 2);
    assert_eq!(
        exec.store().order("rest-1").unwrap().unwrap().status,
        OrderStatus::Accepted
    );
    assert_eq!(ex.positions().await.unwrap().len(), 2);
    held
}

/// Buy-to-close orders of every held put at the ask + 10 cents, as the
/// engine builds them for an emergency flatten.
async fn closing_orders(
    ex: &market_sim::SimExchange,
    held: &[(String, OptionContract)],
) -> Vec<(OrderIntent, OrderContext)> {
    let mut out = Vec::new();
    for (trade_id, put) in held {
        let ask = option_quote(ex, put).await.ask.unwrap();
        out.push(
            closing(
                ex,
                &format!("flat-{trade_id}"),
                trade_id,
                put,
                1,
                ask + Price::from_cents(10),
                ExitReason::Emergency,
            )
            .await,
        );
    }
    out
}

/// A new sell-to-open the governor would approve in the active state.
async fn new_entry(
    ex: &market_sim::SimExchange,
    order_ref: &str,
) -> (OrderIntent, risk::RiskContext) {
    let (put, quote) = otm_put(ex, "JNJ", date(2016, 3, 18), 0.03).await;
    let ctx = opening_ctx(ex, &put, &quote).await;
    let i = intent(
        order_ref,
        &put,
        Side::Sell,
        1,
        quote.bid.unwrap(),
        OrderPurpose::Open,
        "T-NEW",
        ex.now(),
    );
    (i, ctx)
}

#[tokio::test]
async fn an_emergency_stop_without_flatten_halts_records_and_cancels_every_open_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let held = book(&exec, &ex, "KO").await;
    // And an order the broker never got (the link was down).
    set_down(exec.broker(), true);
    let (jnj, q) = otm_put(&ex, "JNJ", date(2016, 3, 18), 0.03).await;
    assert!(
        sell_to_open(
            &exec,
            &ex,
            "unsent-1",
            "T-UNSENT",
            &jnj,
            1,
            q.bid.unwrap(),
            None
        )
        .await
        .is_err()
    );
    set_down(exec.broker(), false);

    // The operator's request, queued through the database.
    let asked_at = ex.now();
    let id = store
        .request_control(&ControlRequest {
            id: None,
            time: asked_at,
            actor: "operator:alice".into(),
            action: ControlAction::EmergencyStop,
            flatten: false,
            reason: "broker outage suspected".into(),
        })
        .unwrap();
    ex.advance_to(ex.now() + Duration::minutes(5));
    let pending = store.pending_control_requests().unwrap();
    assert_eq!(pending.len(), 1);
    let request = &pending[0];
    assert_eq!(request.id, Some(id));
    assert_eq!(
        (request.action, request.flatten),
        (ControlAction::EmergencyStop, false)
    );

    let mut governor = RiskGovernor::new(RiskLimits::default());
    let stop = EmergencyStop {
        actor: request.actor.clone(),
        reason: request.reason.clone(),
        flatten: request.flatten,
    };
    let time = ex.now();
    let closing = closing_orders(&ex, &held).await;
    let ctx = closing_ctx(&ex).await;
    let report = emergency_stop(&exec, &mut governor, &stop, closing, &ctx, time)
        .await
        .unwrap();
    store
        .mark_control_handled(id, time, "halted; 2 orders cancelled")
        .unwrap();
    assert!(store.pending_control_requests().unwrap().is_empty());

    // Halted, persisted with the engine's time.
    assert_eq!(governor.state(), TradingState::Halted);
    let change = report.state_change.clone().unwrap();
    assert_eq!(
        (change.from, change.to),
        (TradingState::Active, TradingState::Halted)
    );
    assert_eq!(change.actor, "operator:alice");
    assert_eq!(change.time, time);
    let store::TradingStateRecord {
        state,
        cause,
        time: at,
    } = store.trading_state().unwrap().unwrap();
    assert_eq!(state, TradingState::Halted);
    assert!(cause.contains("broker outage suspected"), "{cause}");
    assert_eq!(at, time.naive_utc());
    let decision = store
        .recent_decisions(10)
        .unwrap()
        .into_iter()
        .find(|d| d.kind == DecisionKind::TradingState)
        .expect("a trading-state decision");
    assert_eq!(decision.decision, "halted");
    assert_eq!(decision.time, time);
    let audit = store.recent_audit(30).unwrap();
    let entry = audit
        .iter()
        .find(|a| a.action == "emergency_stop")
        .expect("audited");
    assert_eq!(entry.actor, "operator:alice");
    assert_eq!(entry.time, time);
    assert_eq!(entry.decision.as_deref(), Some("halt"));
    assert_eq!(entry.context["flatten"], serde_json::json!(false));
    assert!(audit.iter().any(|a| a.action == "risk.state_change"));

    // Every open order cancelled: the resting one at the broker (pending
    // until confirmed), the unsent one locally. Nothing is flattened.
    let mut cancelled = report.cancelled.clone();
    cancelled.sort();
    assert_eq!(
        cancelled,
        vec!["rest-1".to_string(), "unsent-1".to_string()]
    );
    assert!(report.cancel_failed.is_empty());
    assert!(report.closing_orders.is_empty());
    assert!(report.closing_failed.is_empty());
    assert_eq!(
        store.order("unsent-1").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(
        store.order("rest-1").unwrap().unwrap().status,
        OrderStatus::PendingCancel
    );
    let _ = pump(&exec, &ex).await;
    assert_eq!(
        store.order("rest-1").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert!(store.open_orders().unwrap().is_empty());
    assert!(ex.open_orders().await.unwrap().is_empty());
    for (trade_id, _) in &held {
        assert!(store.order(&format!("flat-{trade_id}")).unwrap().is_none());
        assert_eq!(
            store.trade(trade_id).unwrap().unwrap().status,
            TradeStatus::Open
        );
    }
    assert_eq!(ex.positions().await.unwrap().len(), 2);

    // No new risk while halted.
    let (entry, ctx) = new_entry(&ex, "open-after").await;
    let refused = governor.check(entry, &ctx, ex.now()).unwrap_err();
    assert!(
        refused.reasons.contains(&RiskRefusal::TradingHalted),
        "{:?}",
        refused.reasons
    );

    // A second stop changes no state and finds nothing to cancel.
    let again = emergency_stop(
        &exec,
        &mut governor,
        &stop,
        Vec::new(),
        &closing_ctx(&ex).await,
        ex.now(),
    )
    .await
    .unwrap();
    assert!(again.state_change.is_none());
    assert!(again.cancelled.is_empty());
    assert_eq!(
        store.trading_state().unwrap().unwrap().time,
        time.naive_utc()
    );
}

#[tokio::test]
async fn an_emergency_stop_with_flatten_closes_every_position_and_blocks_new_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    // Premiums large enough for the exchange's price band to take a
    // limit 10 cents over the ask (MSFT 45 and PG 65 puts).
    let held = book(&exec, &ex, "PG").await;
    ex.advance_to(ex.now() + Duration::minutes(15));
    let _ = pump(&exec, &ex).await;

    let mut governor = RiskGovernor::new(RiskLimits::default());
    let stop = EmergencyStop {
        actor: "dashboard".into(),
        reason: "flatten everything".into(),
        flatten: true,
    };
    let time = ex.now();
    let closing = closing_orders(&ex, &held).await;
    let report = emergency_stop(
        &exec,
        &mut governor,
        &stop,
        closing,
        &closing_ctx(&ex).await,
        time,
    )
    .await
    .unwrap();
    assert_eq!(governor.state(), TradingState::Halted);
    assert_eq!(
        store.trading_state().unwrap().unwrap().state,
        TradingState::Halted
    );
    assert_eq!(report.cancelled, vec!["rest-1".to_string()]);
    assert_eq!(
        report.closing_orders,
        vec!["flat-T-MSFT".to_string(), "flat-T-PG".to_string()]
    );
    assert!(
        report.closing_failed.is_empty(),
        "{:?}",
        report.closing_failed
    );
    // Approved after the halt, as risk-reducing orders.
    let approvals: Vec<_> = store
        .recent_decisions(20)
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == DecisionKind::Exit && d.decision == "risk_approved")
        .collect();
    assert_eq!(approvals.len(), 2);
    assert!(
        approvals.iter().all(|d| d.reason.contains("now halted")),
        "{approvals:?}"
    );
    for (trade_id, _) in &held {
        let order = store.order(&format!("flat-{trade_id}")).unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Sent);
        assert_eq!(order.intent.purpose, OrderPurpose::Close);
    }
    let audit = store.recent_audit(30).unwrap();
    let entry = audit.iter().find(|a| a.action == "emergency_stop").unwrap();
    assert_eq!(entry.decision.as_deref(), Some("halt+flatten"));
    assert_eq!(entry.actor, "dashboard");

    // The next cycle: the closes have filled, the trades are closed.
    ex.advance_to(ex.now() + Duration::minutes(15));
    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 2);
    assert_eq!(
        store.order("rest-1").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert!(
        ex.positions().await.unwrap().is_empty(),
        "flat at the broker"
    );
    for (trade_id, put) in &held {
        let trade = store.trade(trade_id).unwrap().unwrap();
        assert_eq!(trade.status, TradeStatus::Closed, "{trade_id}");
        assert_eq!(trade.exit_reason, Some(ExitReason::Emergency));
        let opened = &fills_of(&ex, &format!("open-{}", &trade_id[2..]))[0];
        let closed = &fills_of(&ex, &format!("flat-{trade_id}"))[0];
        assert_eq!(closed.contract, Contract::Option(put.clone()));
        assert!(
            closed.price
                <= store
                    .order(&format!("flat-{trade_id}"))
                    .unwrap()
                    .unwrap()
                    .intent
                    .limit_price
        );
        assert_eq!(trade.exit_premium, Some(closed.price));
        assert_eq!(
            trade.profit_loss,
            Some(opened.cash_flow() + closed.cash_flow())
        );
    }
    assert_eq!(
        store.ledger_balance().unwrap(),
        ex.ledger().cash() - core_domain::Money::from_dollars(100_000)
    );

    // Opening is refused while halted; a close still passes.
    let (entry, ctx) = new_entry(&ex, "open-after").await;
    let refused = governor.check(entry, &ctx, ex.now()).unwrap_err();
    assert!(
        refused.reasons.contains(&RiskRefusal::TradingHalted),
        "{:?}",
        refused.reasons
    );
    assert!(store.order("open-after").unwrap().is_none());
}

/// KO's 3% OTM put is worth 9 cents: a limit 10 cents over its ask is
/// outside the exchange's price band. The rejection is reported and the
/// other position is still closed.
#[tokio::test]
async fn a_closing_order_the_broker_rejects_is_reported_and_the_others_still_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let held = book(&exec, &ex, "KO").await;
    let mut governor = RiskGovernor::new(RiskLimits::default());
    let stop = EmergencyStop {
        actor: "risk".into(),
        reason: "drawdown".into(),
        flatten: true,
    };
    let closing = closing_orders(&ex, &held).await;
    let report = emergency_stop(
        &exec,
        &mut governor,
        &stop,
        closing,
        &closing_ctx(&ex).await,
        ex.now(),
    )
    .await
    .unwrap();
    assert_eq!(governor.state(), TradingState::Halted);
    assert_eq!(report.closing_orders, vec!["flat-T-MSFT".to_string()]);
    assert_eq!(report.closing_failed.len(), 1);
    let (failed, why) = &report.closing_failed[0];
    assert_eq!(failed, "flat-T-KO");
    assert!(why.contains("price band"), "{why}");
    assert_eq!(
        store.order("flat-T-KO").unwrap().unwrap().status,
        OrderStatus::Rejected
    );
    let entry = store
        .recent_audit(30)
        .unwrap()
        .into_iter()
        .find(|a| a.action == "emergency_stop")
        .unwrap();
    assert!(
        entry
            .outcome
            .as_deref()
            .unwrap()
            .contains("1 closing orders sent (1 failed)")
    );

    let _ = pump(&exec, &ex).await;
    assert_eq!(
        store.trade("T-MSFT").unwrap().unwrap().status,
        TradeStatus::Closed
    );
    assert_eq!(
        store.trade("T-KO").unwrap().unwrap().status,
        TradeStatus::Open
    );
}
