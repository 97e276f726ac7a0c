#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The trade logger and the slippage records against a real store and the
//! simulated exchange on the real history: a short put opened from the
//! strategy's template, closed at a profit target, replayed.

mod common;

use common::*;
use core_domain::{
    AccountRepository, ExitReason, Experiment, ExperimentStatus, LearningRepository, MarketRegime,
    Money, OrderRepository, OrderStatus, Price, Side, TradeFilter, TradeRepository, TradeStatus,
};
use execution::{TradeChange, trade_log::exchange_date};

fn experiment(id: &str) -> Experiment {
    Experiment {
        experiment_id: id.into(),
        name: "deeper OTM".into(),
        hypothesis: "18-20% OTM earns more per unit of margin".into(),
        parameter_name: "otm_pct".into(),
        control_value: "0.15..0.18".into(),
        test_value: "0.18..0.20".into(),
        allocation: 0.2,
        min_samples: 30,
        status: ExperimentStatus::Active,
        start_date: date(2016, 2, 1),
        end_date: None,
        control_trades: 0,
        test_trades: 0,
        p_value: None,
        effect_size: None,
        decision: None,
    }
}

fn ledger_sum(store: &store::Store) -> Money {
    store
        .ledger_entries(None)
        .unwrap()
        .iter()
        .map(|e| e.amount)
        .sum()
}

#[tokio::test]
async fn an_opening_fill_logs_the_template_trade_and_a_profit_target_close_settles_it_to_the_cent()
{
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    store.insert_experiment(&experiment("EXP-OTM")).unwrap();

    // MSFT 45 put of 2016-03-18, sold 1 cent under the bid: it fills at
    // the bid, a cent better than its limit.
    let (put, quote) = put(&ex, "MSFT", 45.0, date(2016, 3, 18)).await;
    let bid = quote.bid.unwrap();
    let mid = quote.mid().unwrap();
    assert!(bid > Price::from_cents(20), "a put with premium: {quote:?}");
    let underlying = spot(&ex, "MSFT").await;
    let mut entry = template(&put, "Information Technology", underlying, ex.now());
    entry.vix_at_entry = Some(17.7);
    entry.market_regime = MarketRegime::BullVolatile;
    entry.is_experiment = true;
    entry.experiment_id = Some("EXP-OTM".into());
    entry.experiment_arm = Some("test".into());
    let limit = bid - Price::from_cents(1);
    sell_to_open(
        &exec,
        &ex,
        "open-1",
        "T-1",
        &put,
        2,
        limit,
        Some(entry.clone()),
    )
    .await
    .unwrap();

    let (open_events, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 1);
    let sold = fills_of(&ex, "open-1");
    assert_eq!(sold.len(), 1);
    let sold = &sold[0];
    assert_eq!((sold.side, sold.quantity, sold.price), (Side::Sell, 2, bid));
    assert!(matches!(&report.trades[..], [TradeChange::Opened(t)] if t.trade_id == "T-1"));

    let trade = store.trade("T-1").unwrap().unwrap();
    // The fill's facts...
    assert_eq!(trade.entry_premium, sold.price);
    assert_eq!(trade.entry_time, sold.time);
    assert_eq!(trade.entry_date, exchange_date(sold.time));
    assert_eq!(trade.contracts, 2);
    assert_eq!(trade.commissions, sold.commission);
    assert_eq!(trade.status, TradeStatus::Open);
    // ...and every field of the strategy's template.
    assert_eq!(trade.symbol, entry.symbol);
    assert_eq!(trade.sector.as_deref(), Some("Information Technology"));
    assert_eq!(trade.strike, put.strike);
    assert_eq!(trade.expiration, put.expiry);
    assert_eq!(trade.entry_underlying_price, underlying);
    assert_eq!(trade.margin_at_entry, entry.margin_at_entry);
    assert_eq!(trade.otm_pct, entry.otm_pct);
    assert_eq!(trade.dte, 17);
    assert_eq!(trade.vix_at_entry, Some(17.7));
    assert_eq!(trade.market_regime, MarketRegime::BullVolatile);
    assert!(trade.is_experiment);
    assert_eq!(trade.experiment_id.as_deref(), Some("EXP-OTM"));
    assert_eq!(trade.experiment_arm.as_deref(), Some("test"));
    assert_eq!(trade.exit_reason, None);
    assert_eq!(trade.profit_loss, None);

    // Slippage of the sale: a cost against the mid, a cent better than
    // the limit.
    let slip = store.slippage("open-1").unwrap();
    assert_eq!(slip.len(), 1);
    assert_eq!(slip[0].exec_id, sold.exec_id);
    assert_eq!(slip[0].mid_at_send, Some(mid));
    assert_eq!(slip[0].vs_mid, Some(mid - bid));
    assert!(slip[0].vs_mid.unwrap().is_positive());
    assert_eq!(slip[0].vs_limit, Price::from_cents(1));

    // A week later, bought back at the ask with a 5-cent cushion.
    ex.advance_to(ex.checkpoint_times(date(2016, 3, 9))[2]);
    let _ = pump(&exec, &ex).await;
    let (intent, context) = closing(
        &ex,
        "close-1",
        "T-1",
        &put,
        2,
        option_quote(&ex, &put).await.ask.unwrap() + Price::from_cents(5),
        ExitReason::ProfitTarget,
    )
    .await;
    let close_mid = context.mid.unwrap();
    let ask = context.ask.unwrap();
    exec.submit_with_context(approve_close(&ex, intent).await, context, ex.now())
        .await
        .unwrap();
    let (close_events, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 1);
    let bought = fills_of(&ex, "close-1");
    assert_eq!(bought.len(), 1);
    let bought = &bought[0];
    assert_eq!(
        (bought.side, bought.quantity, bought.price),
        (Side::Buy, 2, ask)
    );
    assert!(matches!(&report.trades[..], [TradeChange::Closed(t)] if t.trade_id == "T-1"));

    let trade = store.trade("T-1").unwrap().unwrap();
    let expected =
        cents(sold.price, 2) - cents(bought.price, 2) - sold.commission - bought.commission;
    assert_eq!(trade.status, TradeStatus::Closed);
    assert_eq!(trade.exit_reason, Some(ExitReason::ProfitTarget));
    assert_eq!(trade.exit_premium, Some(bought.price));
    assert_eq!(trade.exit_time, Some(bought.time));
    assert_eq!(trade.exit_date, Some(date(2016, 3, 9)));
    assert_eq!(trade.days_held, Some(8));
    assert_eq!(trade.commissions, sold.commission + bought.commission);
    assert_eq!(trade.profit_loss, Some(expected));
    assert!(expected.cents() > 0, "a profit: {expected}");
    let max = cents(sold.price, 2);
    assert_eq!(
        trade.profit_pct,
        Some(expected.cents() as f64 / max.cents() as f64)
    );
    assert_eq!(
        trade.roi,
        Some(expected.cents() as f64 / entry.margin_at_entry.cents() as f64)
    );
    // The template's fields survive the close.
    assert_eq!(trade.experiment_arm.as_deref(), Some("test"));
    assert_eq!(trade.market_regime, MarketRegime::BullVolatile);

    let slip = store.slippage("close-1").unwrap();
    assert_eq!(slip.len(), 1);
    assert_eq!(slip[0].vs_mid, Some(ask - close_mid));
    assert!(!slip[0].vs_mid.unwrap().raw().is_negative());
    assert_eq!(slip[0].vs_limit, Price::from_cents(5));

    // The ledger holds the two fills and nothing else: it sums to the
    // trade's P&L and to the broker's cash movements.
    for f in [sold, bought] {
        let posted: Money = store
            .ledger_entries(Some(&f.exec_id))
            .unwrap()
            .iter()
            .map(|e| e.amount)
            .sum();
        assert_eq!(posted, f.cash_flow());
    }
    assert_eq!(ledger_sum(&store), expected);
    assert_eq!(store.ledger_balance().unwrap(), expected);
    assert_eq!(
        ex.ledger().cash() - Money::from_dollars(100_000),
        expected,
        "the store's ledger agrees with the broker's cash"
    );

    // Replaying every event changes nothing.
    let trade_before = store.trade("T-1").unwrap().unwrap();
    let orders_before = [
        store.order("open-1").unwrap().unwrap(),
        store.order("close-1").unwrap().unwrap(),
    ];
    let ledger_before = store.ledger_entries(None).unwrap();
    let all: Vec<_> = open_events.into_iter().chain(close_events).collect();
    let replay = exec.process_events(all, ex.now()).await.unwrap();
    assert_eq!(replay.fills_recorded, 0);
    assert_eq!(replay.duplicate_fills, 2);
    assert!(replay.trades.is_empty(), "{:?}", replay.trades);
    assert_eq!(store.trade("T-1").unwrap().unwrap(), trade_before);
    assert_eq!(store.trades(&TradeFilter::default()).unwrap().len(), 1);
    for (r, before) in ["open-1", "close-1"].iter().zip(&orders_before) {
        assert_eq!(&store.order(r).unwrap().unwrap(), before);
        assert_eq!(store.fills(r).unwrap().len(), 1);
        assert_eq!(store.slippage(r).unwrap().len(), 1);
    }
    assert_eq!(store.ledger_entries(None).unwrap(), ledger_before);
}

#[tokio::test]
async fn an_opening_order_without_a_template_logs_what_the_order_and_its_fill_say() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, quote) = put(&ex, "MSFT", 45.0, date(2016, 3, 18)).await;
    sell_to_open(
        &exec,
        &ex,
        "open-2",
        "T-2",
        &put,
        1,
        quote.bid.unwrap(),
        None,
    )
    .await
    .unwrap();
    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 1);
    let sold = &fills_of(&ex, "open-2")[0];
    let trade = store.trade("T-2").unwrap().unwrap();
    assert_eq!(trade.symbol, put.underlying);
    assert_eq!((trade.strike, trade.expiration), (put.strike, put.expiry));
    assert_eq!(trade.entry_premium, sold.price);
    assert_eq!(trade.contracts, 1);
    assert_eq!(trade.dte, 17);
    assert_eq!(trade.entry_underlying_price, spot(&ex, "MSFT").await);
    assert_eq!(trade.sector, None);
    assert_eq!(trade.market_regime, MarketRegime::Unknown);
    assert_eq!(trade.status, TradeStatus::Open);
}

/// RRC 16 put of 2016-03-24 shows 5 contracts at the bid at 10:00 on
/// 2016-03-01: an order for 7 fills 5 on arrival and rests with 2.
#[tokio::test]
async fn a_replacement_entry_adds_to_the_trade_its_partially_filled_first_attempt_opened() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let ex = exchange();
    let exec = executor(&ex, &store);
    let (put, quote) = put(&ex, "RRC", 16.0, date(2016, 3, 24)).await;
    let bid = quote.bid.unwrap();
    assert_eq!(quote.bid_size, Some(5), "{quote:?}");
    let entry = template(&put, "Energy", spot(&ex, "RRC").await, ex.now());
    sell_to_open(
        &exec,
        &ex,
        "open-3a",
        "T-3",
        &put,
        7,
        bid,
        Some(entry.clone()),
    )
    .await
    .unwrap();
    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 1);
    let first = store.order("open-3a").unwrap().unwrap();
    assert_eq!(first.status, OrderStatus::PartiallyFilled);
    assert_eq!(first.filled_quantity, 5);
    assert_eq!(store.trade("T-3").unwrap().unwrap().contracts, 5);

    // The rest is cancelled and sent again as a replacement of the same
    // trade; it fills whole.
    assert!(exec.cancel("open-3a", ex.now(), "replace").await.unwrap());
    let _ = pump(&exec, &ex).await;
    assert_eq!(
        store.order("open-3a").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    let quote = option_quote(&ex, &put).await;
    let ctx = opening_ctx(&ex, &put, &quote).await;
    let replacement = intent(
        "open-3b",
        &put,
        Side::Sell,
        2,
        quote.bid.unwrap(),
        core_domain::OrderPurpose::Open,
        "T-3",
        ex.now(),
    );
    let approved = risk::RiskGovernor::new(risk::RiskLimits::default())
        .check(replacement, &ctx, ex.now())
        .unwrap();
    let mut context = execution::OrderContext::with_quote(&quote);
    context.entry = Some(entry);
    context.replaces = Some("open-3a".into());
    context.attempt = 1;
    exec.submit_with_context(approved, context, ex.now())
        .await
        .unwrap();
    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(report.fills_recorded, 1);
    assert!(matches!(&report.trades[..], [TradeChange::Increased(_)]));

    let fills: Vec<_> = ["open-3a", "open-3b"]
        .iter()
        .flat_map(|r| fills_of(&ex, r))
        .collect();
    let contracts: i64 = fills.iter().map(|f| f.quantity).sum();
    let commission: Money = fills.iter().map(|f| f.commission).sum();
    let value: i64 = fills.iter().map(|f| f.price.raw() * f.quantity).sum();
    let trade = store.trade("T-3").unwrap().unwrap();
    assert_eq!(contracts, 7);
    assert_eq!(trade.contracts, 7, "both attempts' contracts");
    assert_eq!(trade.commissions, commission, "both attempts' commissions");
    assert_eq!(trade.entry_premium, Price::from_raw(value / 7));
    assert_eq!(trade.entry_time, fills[0].time, "the first fill's time");

    // The buy-back meets the same 5-lot: 5 of 7 bought leave the trade
    // open; it closes when the last 2 are bought back.
    let (buy, ctx) = closing(
        &ex,
        "close-3",
        "T-3",
        &put,
        7,
        option_quote(&ex, &put).await.ask.unwrap() + Price::from_cents(2),
        ExitReason::Manual,
    )
    .await;
    exec.submit_with_context(approve_close(&ex, buy).await, ctx, ex.now())
        .await
        .unwrap();
    let (_, report) = pump(&exec, &ex).await;
    assert_eq!(fills_of(&ex, "close-3").len(), 1);
    assert_eq!(fills_of(&ex, "close-3")[0].quantity, 5);
    assert!(matches!(&report.trades[..], [TradeChange::None]));
    assert_eq!(
        store.trade("T-3").unwrap().unwrap().status,
        TradeStatus::Open
    );
    for _ in 0..8 {
        if store.order("close-3").unwrap().unwrap().status == OrderStatus::Filled {
            break;
        }
        ex.advance_to(ex.next_checkpoint().unwrap());
        let _ = pump(&exec, &ex).await;
    }
    let closes = fills_of(&ex, "close-3");
    assert_eq!(closes.iter().map(|f| f.quantity).sum::<i64>(), 7);
    let trade = store.trade("T-3").unwrap().unwrap();
    assert_eq!(trade.status, TradeStatus::Closed);
    let close_value: i64 = closes.iter().map(|f| f.price.raw() * f.quantity).sum();
    assert_eq!(
        trade.exit_premium,
        Some(Price::from_raw((2 * close_value + 7) / 14)),
        "the buy-backs' VWAP, rounded to 1/10000 $"
    );
    let all_commissions: Money = fills.iter().chain(&closes).map(|f| f.commission).sum();
    assert_eq!(trade.commissions, all_commissions);
    // The P&L is the cash the fills moved, to the cent, even though the
    // buy-backs came at two prices and their average is rounded.
    let paid: Money = closes.iter().map(|f| f.cash_flow()).sum();
    let received: Money = fills.iter().map(|f| f.cash_flow()).sum();
    assert_eq!(trade.profit_loss, Some(received + paid));
    assert_eq!(store.ledger_balance().unwrap(), received + paid);
}
