//! The real `NakedPutStrategy` through the exit manager: its profit
//! target, stop and time exit pass through with their records, and the
//! −$500 limit closes a position the strategy holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use core_domain::stubs::{date, open_trade, symbol};
use core_domain::{
    Contract, DecisionKind, ExitReason, MarketSnapshot, OptionContract, OptionQuote, OrderPurpose,
    Price, Quote, Right, Side, StockContract, Trade, UnderlyingSnapshot,
};
use execution::{ExitManager, ExitParams};
use strategy_naked_put::{NakedPutParams, NakedPutStrategy};

fn quote(contract: Contract, bid: Option<Price>, ask: Option<Price>) -> Quote {
    Quote {
        contract,
        bid,
        ask,
        last: None,
        bid_size: None,
        ask_size: None,
        time: Utc.with_ymd_and_hms(2024, 1, 10, 15, 0, 0).unwrap(),
        implied_vol: None,
        greeks: None,
        underlying_price: None,
        open_interest: None,
        volume: None,
    }
}

fn trade(id: &str, sym: &str, entry_cents: i64, contracts: i64, expiry_day: u32) -> Trade {
    Trade {
        trade_id: id.into(),
        symbol: symbol(sym),
        entry_premium: Price::from_cents(entry_cents),
        contracts,
        expiration: date(2024, 1, expiry_day),
        ..open_trade()
    }
}

fn put(t: &Trade) -> OptionContract {
    OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration)
}

fn at_ask(t: &Trade, ask_cents: i64) -> OptionQuote {
    OptionQuote {
        contract: put(t),
        quote: quote(
            Contract::Option(put(t)),
            Some(Price::from_cents(ask_cents - 5)),
            Some(Price::from_cents(ask_cents)),
        ),
    }
}

#[test]
fn test_naked_put_strategy_exits_and_the_loss_limit_through_the_exit_manager() {
    let strategy = NakedPutStrategy::new(NakedPutParams::default()).unwrap();
    // 2024-01-10, 10:00 New York: the 19th is 9 DTE, the 12th is 2 DTE.
    let target = trade("T-1", "AAPL", 40, 5, 19); // ask 0.20 <= 50% of 0.40
    let stop = trade("T-2", "MSFT", 40, 5, 19); // ask 1.20 >= 3x 0.40
    let held = trade("T-3", "KO", 40, 5, 19); // ask 0.30: nothing fires
    let loss = trade("T-4", "PEP", 100, 5, 19); // ask 2.00: 2x, loss $500
    let expiring = trade("T-5", "XOM", 40, 5, 12); // 2 DTE, no quote
    let snapshot = MarketSnapshot {
        time: Utc.with_ymd_and_hms(2024, 1, 10, 15, 0, 0).unwrap(),
        underlyings: vec![UnderlyingSnapshot {
            symbol: symbol("XOM"),
            sector: None,
            quote: quote(
                Contract::Stock(StockContract::us(symbol("XOM"))),
                Some(Price::from_cents(14_990)),
                Some(Price::from_cents(15_010)),
            ),
            closes: Vec::new(),
        }],
        option_quotes: vec![
            at_ask(&target, 20),
            at_ask(&stop, 120),
            at_ask(&held, 30),
            at_ask(&loss, 200),
        ],
        vix: None,
    };
    let trades = [target, stop, held, loss, expiring];
    let manager = ExitManager::new(ExitParams::default()).unwrap();
    let plan = manager.evaluate(&strategy, &snapshot, &trades, &[], &[], &[]);

    let got: Vec<(&str, ExitReason, Price)> = plan
        .exits
        .iter()
        .map(|x| {
            (
                x.intent.trade_id.as_deref().unwrap(),
                x.reason,
                x.intent.limit_price,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("T-1", ExitReason::ProfitTarget, Price::from_cents(20)),
            ("T-2", ExitReason::StopLoss, Price::from_cents(120)),
            ("T-4", ExitReason::PositionLossLimit, Price::from_cents(200)),
            // Intrinsic 0 (spot 150.00 at the strike) + $0.05.
            ("T-5", ExitReason::TimeExit, Price::from_cents(5)),
        ]
    );
    for x in &plan.exits {
        assert_eq!(x.intent.side, Side::Buy);
        assert_eq!(x.intent.purpose, OrderPurpose::Close);
        assert_eq!(x.intent.quantity, 5);
        assert_eq!(x.decision.kind, DecisionKind::Exit);
        let names: Vec<&str> = x
            .decision
            .criteria
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(names.contains(&"position_loss_limit"), "{names:?}");
        assert!(x.intent.validate().is_ok());
    }
    // The strategy's own criteria and context stay on its records.
    let t1 = &plan.exits[0].decision;
    assert!(
        t1.criteria
            .iter()
            .any(|c| c.name == "profit_target" && c.passed)
    );
    assert_eq!(t1.context["strategy"], "Naked Put - Weekly");
    // The loss-limit exit keeps the strategy's hold criteria: its stop had
    // not fired (2.00 < 3 × 1.00).
    let t4 = &plan.exits[2].decision;
    assert!(
        t4.criteria
            .iter()
            .any(|c| c.name == "stop_loss" && !c.passed)
    );
    assert!(
        t4.criteria
            .iter()
            .any(|c| c.name == "position_loss_limit" && c.passed && c.value == "500.00")
    );
    assert_eq!(plan.holds.len(), 1);
    assert_eq!(plan.holds[0].subject, "T-3");
    assert_eq!(plan.holds[0].kind, DecisionKind::Hold);
}
