//! The simulated exchange through the Broker and MarketData traits, on the
//! real history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use core_domain::{
    Broker, BrokerError, BrokerEvent, Contract, MarketData, Money, OptionContract, OrderIntent,
    OrderPurpose, OrderStatus, Price, Right, Side, Symbol, TimeInForce,
};
use market_sim::data::real_history;
use market_sim::{ChainModel, ChainModelParams, ExchangeParams, SimExchange};

fn exchange(start: (i32, u32, u32), seed: u64) -> SimExchange {
    let h = Arc::new(real_history().unwrap().clone());
    let params = ExchangeParams {
        seed,
        ..ExchangeParams::default()
    };
    SimExchange::new(
        h,
        ChainModel::new(ChainModelParams::default()),
        params,
        NaiveDate::from_ymd_opt(start.0, start.1, start.2).unwrap(),
    )
    .unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn intent(
    order_ref: &str,
    contract: OptionContract,
    side: Side,
    qty: i64,
    limit: Price,
) -> OrderIntent {
    OrderIntent {
        order_ref: order_ref.into(),
        contract: Contract::Option(contract),
        side,
        quantity: qty,
        limit_price: limit,
        time_in_force: TimeInForce::Day,
        purpose: if side == Side::Sell {
            OrderPurpose::Open
        } else {
            OrderPurpose::Close
        },
        trade_id: None,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

/// A put about `otm` below spot on the first expiry at least `min_days` out.
async fn put_near(ex: &SimExchange, symbol: &str, otm: f64, min_days: i64) -> OptionContract {
    let s = sym(symbol);
    let chain = ex.option_chain(&s).await.unwrap();
    let spot = ex.stock_quote(&s).await.unwrap().last.unwrap().to_f64();
    let today = ex.session_date();
    let expiry = *chain
        .expirations
        .iter()
        .find(|e| (**e - today).num_days() >= min_days)
        .unwrap();
    let target = spot * (1.0 - otm);
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

/// The exchange's current quote of `put`.
async fn quote_of(ex: &SimExchange, put: &OptionContract) -> core_domain::Quote {
    ex.option_quotes(std::slice::from_ref(put))
        .await
        .unwrap()
        .remove(0)
        .quote
}

fn balance_check(ex: &SimExchange, account: &core_domain::AccountSnapshot) {
    // P&L equals the equity change to the cent.
    let start = Money::from_f64_dollars(ex.params().starting_cash).unwrap();
    assert_eq!(
        account.realized_pnl + account.unrealized_pnl,
        account.net_liquidation - start
    );
}

#[tokio::test]
async fn test_marketable_sell_fills_at_the_bid_with_ibkr_commission() {
    let ex = exchange((2016, 3, 1), 1);
    ex.advance_to(ex.now() + Duration::minutes(30));
    let put = put_near(&ex, "MSFT", 0.03, 7).await;
    let quote = quote_of(&ex, &put).await;
    let bid = quote.bid.unwrap();
    // Limit a few cents under the bid: still fills at the bid, not the limit.
    let limit = Price::from_raw((bid.raw() - 200).max(100));
    ex.place_order(&intent("o-1", put.clone(), Side::Sell, 3, limit))
        .await
        .unwrap();
    let fills = ex
        .executions_since(DateTime::<Utc>::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].price, bid);
    assert_eq!(fills[0].quantity, 3);
    let per_contract = if bid >= Price::from_cents(10) {
        65
    } else if bid >= Price::from_cents(5) {
        50
    } else {
        25
    };
    assert_eq!(
        fills[0].commission,
        Money::from_cents((per_contract * 3).max(100))
    );
    let positions = ex.positions().await.unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].quantity, -3);
    let account = ex.account_summary().await.unwrap();
    assert!(account.initial_margin > Money::ZERO);
    balance_check(&ex, &account);
}

#[tokio::test]
async fn test_limit_away_from_the_market_rests_and_can_be_cancelled() {
    let ex = exchange((2016, 3, 1), 1);
    let put = put_near(&ex, "JPM", 0.1, 7).await;
    let quote = quote_of(&ex, &put).await;
    let limit = quote.ask.unwrap() + Price::from_cents(5);
    ex.place_order(&intent("rest", put, Side::Sell, 1, limit))
        .await
        .unwrap();
    assert!(
        ex.executions_since(DateTime::<Utc>::UNIX_EPOCH)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(ex.open_orders().await.unwrap().len(), 1);
    ex.cancel_order("rest").await.unwrap();
    assert!(ex.open_orders().await.unwrap().is_empty());
    let events = ex.poll_events().await.unwrap();
    assert!(
        events.iter().any(
            |e| matches!(e, BrokerEvent::OrderStatus(u) if u.status == OrderStatus::Cancelled)
        )
    );
    assert!(
        ex.cancel_order("rest").await.is_err(),
        "a cancelled order cannot be cancelled again"
    );
}

#[tokio::test]
async fn test_same_order_ref_twice_places_one_order() {
    let ex = exchange((2016, 3, 1), 1);
    let put = put_near(&ex, "KO", 0.1, 7).await;
    let quote = quote_of(&ex, &put).await;
    let i = intent("dup", put, Side::Sell, 1, quote.ask.unwrap());
    let a = ex.place_order(&i).await.unwrap();
    let b = ex.place_order(&i).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(ex.open_orders().await.unwrap().len(), 1);
}

#[tokio::test]
async fn test_rejects_say_why() {
    let ex = exchange((2016, 3, 1), 1);
    let put = put_near(&ex, "XOM", 0.03, 7).await;
    let quote = quote_of(&ex, &put).await;
    // Price far outside the band.
    let far = intent(
        "band",
        put.clone(),
        Side::Sell,
        1,
        quote.ask.unwrap() + Price::from_cents(5_000),
    );
    let err = ex.place_order(&far).await.unwrap_err();
    assert!(
        matches!(&err, BrokerError::Rejected { reason, .. } if reason.contains("band")),
        "{err}"
    );
    // A strike that is not on the grid.
    let mut odd = put.clone();
    odd.strike = Price::from_raw(odd.strike.raw() + 1_234);
    let err = ex
        .place_order(&intent("odd", odd, Side::Sell, 1, quote.ask.unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::UnknownContract(_)), "{err}");
    // Far more than the account can margin.
    let err = ex
        .place_order(&intent(
            "big",
            put.clone(),
            Side::Sell,
            9_000,
            quote.ask.unwrap(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::InsufficientMargin { .. }),
        "{err}"
    );
    // After the close.
    let close = ex
        .checkpoint_times(ex.session_date())
        .last()
        .copied()
        .unwrap();
    ex.advance_to(close + Duration::minutes(5));
    let err = ex
        .place_order(&intent("late", put, Side::Sell, 1, quote.ask.unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::MarketClosed(_)), "{err}");
}

#[tokio::test]
async fn test_daily_bars_never_show_a_close_before_it_happens() {
    let ex = exchange((2016, 3, 1), 1);
    let s = sym("AAPL");
    let today = ex.session_date();
    let bars = ex.daily_bars(&s, today, 5).await.unwrap();
    assert!(bars.iter().all(|b| b.date < today), "{bars:?}");
    let close = ex.checkpoint_times(today).last().copied().unwrap();
    ex.advance_to(close);
    let bars = ex.daily_bars(&s, today, 5).await.unwrap();
    assert_eq!(bars.last().unwrap().date, today);
    let h = real_history().unwrap();
    let d = h.date_index(today).unwrap();
    let si = h.symbol_index(&s).unwrap();
    assert_eq!(
        bars.last().unwrap().close,
        Price::from_f64(h.close(si, d).unwrap()).unwrap()
    );
}

#[tokio::test]
async fn test_out_of_the_money_put_expires_worthless_and_premium_is_kept() {
    let ex = exchange((2016, 3, 7), 1);
    let put = put_near(&ex, "PG", 0.04, 10).await;
    let quote = quote_of(&ex, &put).await;
    ex.place_order(&intent(
        "otm",
        put.clone(),
        Side::Sell,
        2,
        quote.bid.unwrap(),
    ))
    .await
    .unwrap();
    let fill = ex
        .executions_since(DateTime::<Utc>::UNIX_EPOCH)
        .await
        .unwrap()
        .remove(0);
    let expiry_close = ex.checkpoint_times(put.expiry).last().copied().unwrap();
    ex.advance_to(expiry_close + Duration::hours(1));
    let events = ex.poll_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Expiration { contract, .. } if *contract == put)),
        "{events:?}"
    );
    assert!(ex.positions().await.unwrap().is_empty());
    let account = ex.account_summary().await.unwrap();
    assert_eq!(account.realized_pnl, fill.cash_flow());
    balance_check(&ex, &account);
}

#[tokio::test]
async fn test_in_the_money_short_put_is_assigned_into_stock_at_the_strike() {
    let ex = exchange((2016, 3, 7), 1);
    // A put 15% in the money: assigned at expiry, or early within 4 days.
    let put = put_near(&ex, "WMT", -0.15, 3).await;
    let quote = quote_of(&ex, &put).await;
    ex.place_order(&intent(
        "itm",
        put.clone(),
        Side::Sell,
        1,
        quote.bid.unwrap(),
    ))
    .await
    .unwrap();
    let expiry_close = ex.checkpoint_times(put.expiry).last().copied().unwrap();
    ex.advance_to(expiry_close + Duration::hours(1));
    let events = ex.poll_events().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, BrokerEvent::Assignment { contract, quantity: -1, .. } if *contract == put)), "{events:?}");
    let positions = ex.positions().await.unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].quantity, 100);
    assert!(matches!(&positions[0].contract, Contract::Stock(s) if s.symbol == put.underlying));
    let stock_fill = ex
        .settlements()
        .into_iter()
        .find(|f| matches!(f.contract, Contract::Stock(_)))
        .unwrap();
    // Settlements are not executions of any order.
    assert!(
        ex.executions_since(DateTime::<Utc>::UNIX_EPOCH)
            .await
            .unwrap()
            .iter()
            .all(|f| f.order_ref == "itm")
    );
    assert_eq!(stock_fill.price, put.strike);
    balance_check(&ex, &ex.account_summary().await.unwrap());
}

/// A scripted month: at every 11:00 checkpoint sell one put per symbol of
/// a rotating set, buy back positions that doubled; everything the
/// exchange reports is serialized.
async fn scripted_run(seed: u64) -> String {
    let ex = exchange((2017, 5, 1), seed);
    let end = NaiveDate::from_ymd_opt(2017, 6, 30).unwrap();
    let symbols = ["AAPL", "MSFT", "JPM", "XOM", "AMD", "KO"];
    let mut n = 0;
    let mut log = Vec::new();
    loop {
        let date = ex.session_date();
        if date > end {
            break;
        }
        let times = ex.checkpoint_times(date);
        if let Some(t) = times.get(6) {
            ex.advance_to(*t);
            let s = symbols[n % symbols.len()];
            let put = put_near(&ex, s, 0.05, 7).await;
            if let Some(q) = ex
                .option_quotes(std::slice::from_ref(&put))
                .await
                .unwrap()
                .pop()
            {
                let limit = q.quote.bid.unwrap().max(Price::from_cents(1));
                let _ = ex
                    .place_order(&intent(&format!("s{n}"), put, Side::Sell, 2, limit))
                    .await;
            }
            n += 1;
            for p in ex.positions().await.unwrap() {
                if let (Contract::Option(o), Some(mark)) = (&p.contract, p.market_price)
                    && mark.raw() > 2 * p.avg_cost.raw()
                    && p.quantity < 0
                {
                    let q = ex
                        .option_quotes(std::slice::from_ref(o))
                        .await
                        .unwrap()
                        .pop();
                    if let Some(q) = q {
                        let _ = ex
                            .place_order(&intent(
                                &format!("b{n}"),
                                o.clone(),
                                Side::Buy,
                                -p.quantity,
                                q.quote.ask.unwrap(),
                            ))
                            .await;
                    }
                }
            }
        }
        if let Some(close) = times.last() {
            ex.advance_to(*close);
        }
        log.push(serde_json::to_string(&ex.poll_events().await.unwrap()).unwrap());
        match ex.next_checkpoint() {
            Some(next) => {
                ex.advance_to(next);
            }
            None => break,
        }
    }
    let account = ex.account_summary().await.unwrap();
    balance_check(&ex, &account);
    let fills = ex
        .executions_since(DateTime::<Utc>::UNIX_EPOCH)
        .await
        .unwrap();
    assert!(
        fills.len() > 20,
        "the script should trade: {} fills",
        fills.len()
    );
    let by_kind: BTreeMap<String, usize> = fills.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(f.exec_id.split('-').next().unwrap().to_string())
            .or_default() += 1;
        m
    });
    format!(
        "{}\n{}\n{:?}",
        serde_json::to_string(&fills).unwrap(),
        log.join("\n"),
        by_kind
    )
}

#[tokio::test]
async fn test_same_dates_and_seed_give_byte_identical_fills() {
    let a = scripted_run(42).await;
    let b = scripted_run(42).await;
    assert_eq!(a, b);
    let c = scripted_run(43).await;
    assert_ne!(a, c, "another seed draws other intraday paths");
}

#[tokio::test]
async fn test_unfilled_ioc_remainder_is_cancelled_at_once() {
    let ex = exchange((2016, 3, 1), 1);
    let put = put_near(&ex, "JPM", 0.03, 7).await;
    let quote = quote_of(&ex, &put).await;
    let mut i = intent("ioc", put, Side::Sell, 1, quote.ask.unwrap());
    i.time_in_force = TimeInForce::Ioc;
    ex.place_order(&i).await.unwrap();
    assert!(ex.open_orders().await.unwrap().is_empty());
    let events = ex.poll_events().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, BrokerEvent::OrderStatus(u) if u.status == OrderStatus::Cancelled && u.reason.as_deref().unwrap_or("").contains("IOC"))), "{events:?}");
}

#[tokio::test]
async fn test_gtc_order_on_an_option_expires_with_it() {
    let ex = exchange((2016, 3, 7), 1);
    let put = put_near(&ex, "KO", 0.10, 3).await;
    // On expiry day, just before the close: a far out-of-the-money put has
    // no bid, so a sell at two cents rests until the option is gone.
    let times = ex.checkpoint_times(put.expiry);
    ex.advance_to(times[times.len() - 2]);
    let mut i = intent("gtc", put.clone(), Side::Sell, 1, Price::from_cents(2));
    i.time_in_force = TimeInForce::Gtc;
    ex.place_order(&i).await.unwrap();
    assert_eq!(ex.open_orders().await.unwrap().len(), 1);
    ex.advance_to(*times.last().unwrap() + Duration::days(3));
    assert!(ex.open_orders().await.unwrap().is_empty());
    let events = ex.poll_events().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, BrokerEvent::OrderStatus(u) if u.order_ref == "gtc" && u.status == OrderStatus::Expired)), "{events:?}");
}

#[tokio::test]
async fn test_resting_orders_count_against_margin() {
    let h = Arc::new(real_history().unwrap().clone());
    let params = ExchangeParams {
        starting_cash: 20_000.0,
        ..ExchangeParams::default()
    };
    let ex = SimExchange::new(
        h,
        ChainModel::new(ChainModelParams::default()),
        params,
        NaiveDate::from_ymd_opt(2016, 3, 1).unwrap(),
    )
    .unwrap();
    let put = put_near(&ex, "JPM", 0.05, 7).await;
    let quote = quote_of(&ex, &put).await;
    let limit = quote.ask.unwrap() + Price::from_cents(5);
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..40 {
        match ex
            .place_order(&intent(&format!("r{n}"), put.clone(), Side::Sell, 1, limit))
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a $20k account cannot margin 40 resting short puts");
    assert!(
        matches!(refused, BrokerError::InsufficientMargin { .. }),
        "{refused}"
    );
    assert!((1..40).contains(&accepted));
}

#[tokio::test]
async fn test_commission_minimum_applies_to_the_order_not_each_fill() {
    let ex = exchange((2016, 3, 1), 1);
    let put = put_near(&ex, "MSFT", 0.02, 7).await;
    let quote = quote_of(&ex, &put).await;
    let size = quote.bid_size.unwrap();
    // Twice the displayed size: fills in pieces over the checkpoints.
    let qty = size + 1;
    let limit = quote.bid.unwrap();
    ex.place_order(&intent("big", put, Side::Sell, qty, limit))
        .await
        .unwrap();
    let fills = ex
        .executions_since(DateTime::<Utc>::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(fills[0].quantity, size);
    let total: Money = fills.iter().map(|f| f.commission).sum();
    let per = if limit >= Price::from_cents(10) {
        65
    } else if limit >= Price::from_cents(5) {
        50
    } else {
        25
    };
    let filled: i64 = fills.iter().map(|f| f.quantity).sum();
    assert_eq!(total, Money::from_cents((per * filled).max(100)));
}

#[tokio::test]
async fn test_each_close_is_marked_and_strikes_off_the_grid_are_refused() {
    let ex = exchange((2016, 3, 1), 1);
    let s = sym("MSFT");
    let spot = ex.stock_quote(&s).await.unwrap().last.unwrap().to_f64();
    let chain = ex.option_chain(&s).await.unwrap();
    // A whole-dollar strike that is not on MSFT's $2.50/$5 grid.
    let odd = Price::from_f64((spot * 0.86).floor()).unwrap();
    let odd = if odd.raw() % 25_000 == 0 {
        odd + Price::from_cents(100)
    } else {
        odd
    };
    let c = OptionContract::us(s.clone(), Right::Put, odd, chain.expirations[1]);
    assert!(
        ex.option_quotes(std::slice::from_ref(&c))
            .await
            .unwrap()
            .is_empty(),
        "{odd} should not be listed around {spot}"
    );
    let end = ex
        .checkpoint_times(NaiveDate::from_ymd_opt(2016, 3, 4).unwrap())
        .last()
        .copied()
        .unwrap();
    ex.advance_to(end);
    let daily = ex.daily_snapshots();
    assert_eq!(daily.len(), 4);
    assert!(
        daily
            .iter()
            .all(|a| a.net_liquidation == Money::from_dollars(100_000))
    );
}
