//! `NakedPutStrategy` on a hand-built snapshot: entries respect the free
//! position slots and price at the bid; exits fire for the target, the stop
//! and time with the right reasons; a missing quote holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use core_domain::stubs::open_trade;
use core_domain::{
    Contract, DecisionKind, ExitReason, Greeks, MarketSnapshot, OptionContract, OptionQuote, Price,
    Quote, Right, StockContract, Strategy, Symbol, Trade, TradeStatus, UnderlyingSnapshot,
};
use strategy_naked_put::NakedPutParams;
use strategy_naked_put::strategy::NakedPutStrategy;

/// 2024-01-09 10:00 New York.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 9, 15, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn quote(contract: Contract, bid: Price, ask: Price, last: Option<Price>, oi: i64) -> Quote {
    Quote {
        contract,
        bid: Some(bid),
        ask: Some(ask),
        last,
        bid_size: Some(10),
        ask_size: Some(10),
        time: now(),
        implied_vol: Some(0.45),
        greeks: Some(Greeks {
            delta: -0.06,
            ..Greeks::default()
        }),
        underlying_price: None,
        open_interest: Some(oi),
        volume: None,
    }
}

/// An underlying whose 60 closes climb from `start` by `step` a day; its
/// price now is the last close + 0.50.
fn underlying(name: &str, start: f64, step: f64) -> UnderlyingSnapshot {
    let closes: Vec<Price> = (0..60)
        .map(|i| Price::from_f64(start + step * f64::from(i)).unwrap())
        .collect();
    let last = closes.last().copied().unwrap() + Price::from_cents(50);
    UnderlyingSnapshot {
        symbol: sym(name),
        sector: Some("Tech".into()),
        quote: quote(
            Contract::Stock(StockContract::us(sym(name))),
            last - Price::from_cents(1),
            last + Price::from_cents(1),
            Some(last),
            0,
        ),
        closes,
    }
}

fn put(name: &str, strike_cents: i64, expiry: NaiveDate, bid: i64, ask: i64) -> OptionQuote {
    let c = OptionContract::us(
        sym(name),
        Right::Put,
        Price::from_cents(strike_cents),
        expiry,
    );
    OptionQuote {
        contract: c.clone(),
        quote: quote(
            Contract::Option(c),
            Price::from_cents(bid),
            Price::from_cents(ask),
            None,
            800,
        ),
    }
}

/// Three rising names (last price 100.00 + 0.50 = 100.50) each with a put
/// 17.4% OTM 10 days out that passes, one with a bid too small, and a
/// falling name.
fn entry_snapshot() -> MarketSnapshot {
    let e = date(2024, 1, 19);
    MarketSnapshot {
        time: now(),
        underlyings: vec![
            underlying("AAA", 70.5, 0.5),
            underlying("BBB", 41.0, 1.0),
            underlying("CCC", 85.25, 0.25),
            underlying("DDD", 159.0, -1.0),
        ],
        option_quotes: vec![
            put("AAA", 8_300, e, 40, 45),
            put("BBB", 8_300, e, 45, 50),
            put("CCC", 8_300, e, 35, 40),
            put("CCC", 8_500, e, 20, 24),
            put("DDD", 8_300, e, 45, 50),
        ],
        vix: Some(18.0),
    }
}

fn strategy(max_positions: i64) -> NakedPutStrategy {
    NakedPutStrategy::new(NakedPutParams {
        max_positions,
        ..NakedPutParams::default()
    })
    .unwrap()
}

fn trade(id: &str, strike_cents: i64, expiry: NaiveDate, entry_cents: i64) -> Trade {
    Trade {
        trade_id: id.into(),
        strike: Price::from_cents(strike_cents),
        expiration: expiry,
        entry_premium: Price::from_cents(entry_cents),
        ..open_trade()
    }
}

#[test]
fn entries_are_the_best_ranked_puts_up_to_the_free_position_slots() {
    let s = strategy(10);
    let (entries, skips) = s.propose_entries(&entry_snapshot(), &[]);
    let keys: Vec<String> = entries.iter().map(|e| e.contract.key()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    // Same strike, DTE and margin within pennies: the higher bid ranks first.
    assert_eq!(keys[0], "BBB 2024-01-19 83.00 P");
    for e in &entries {
        assert_eq!(e.contracts, 5);
        let q = entry_snapshot()
            .option_quotes
            .into_iter()
            .find(|q| q.contract == e.contract)
            .unwrap();
        assert_eq!(Some(e.limit_price), q.quote.bid, "limit at the bid");
        assert_eq!(e.decision.kind, DecisionKind::Entry);
        assert!(e.decision.all_passed());
    }
    assert!(
        skips
            .iter()
            .any(|d| d.subject == "DDD" && d.reason.contains("uptrend"))
    );
    assert!(
        skips
            .iter()
            .any(|d| d.subject == "CCC 2024-01-19 85.00 P" && d.reason.contains("premium_bid"))
    );
}

#[test]
fn entries_respect_max_positions_minus_the_open_trades() {
    let s = strategy(3);
    let open = vec![trade("T-1", 15_000, date(2024, 1, 19), 40)];
    let (entries, skips) = s.propose_entries(&entry_snapshot(), &open);
    assert_eq!(entries.len(), 2);
    let beyond: Vec<_> = skips
        .iter()
        .filter(|d| d.reason.contains("position slots"))
        .collect();
    assert_eq!(beyond.len(), 1);
    assert_eq!(beyond[0].kind, DecisionKind::Skip);

    // Full: nothing proposed, every passing put skipped with a reason.
    let full: Vec<Trade> = (0..3)
        .map(|i| trade(&format!("T-{i}"), 15_000, date(2024, 1, 19), 40))
        .collect();
    let (entries, skips) = s.propose_entries(&entry_snapshot(), &full);
    assert!(entries.is_empty());
    assert!(skips.iter().any(|d| d.reason.contains("open_positions")));

    // Closed trades do not take a slot.
    let closed: Vec<Trade> = full
        .into_iter()
        .map(|t| Trade {
            status: TradeStatus::Closed,
            ..t
        })
        .collect();
    assert_eq!(s.propose_entries(&entry_snapshot(), &closed).0.len(), 3);
}

#[test]
fn exits_fire_for_target_stop_and_time_with_their_reasons_and_a_missing_quote_holds() {
    let s = strategy(10);
    let near = date(2024, 1, 19); // 10 DTE
    let soon = date(2024, 1, 12); // 3 DTE
    let trades = vec![
        trade("target", 15_000, near, 40),
        trade("stop", 14_500, near, 40),
        trade("time", 14_000, soon, 40),
        trade("hold", 13_500, near, 40),
        trade("missing", 13_000, near, 40),
    ];
    let snapshot = MarketSnapshot {
        time: now(),
        underlyings: vec![],
        option_quotes: vec![
            put("AAPL", 15_000, near, 18, 20),   // cost 0.20 <= 50% of 0.40
            put("AAPL", 14_500, near, 115, 120), // cost 1.20 >= 3x 0.40
            put("AAPL", 14_000, soon, 28, 30),   // 3 DTE
            put("AAPL", 13_500, near, 28, 30),   // nothing fires
        ],
        vix: None,
    };
    let (exits, holds) = s.propose_exits(&snapshot, &trades);
    let by_id = |id: &str| exits.iter().find(|e| e.trade_id == id);
    let target = by_id("target").unwrap();
    assert_eq!(target.reason, ExitReason::ProfitTarget);
    assert_eq!(
        target.limit_price,
        Price::from_cents(20),
        "limit at the ask"
    );
    assert_eq!(target.decision.decision, "exit:profit_target");
    assert_eq!(by_id("stop").unwrap().reason, ExitReason::StopLoss);
    assert_eq!(by_id("time").unwrap().reason, ExitReason::TimeExit);
    assert_eq!(exits.len(), 3);

    assert_eq!(holds.len(), 2);
    let hold = holds.iter().find(|d| d.subject == "hold").unwrap();
    assert_eq!(hold.kind, DecisionKind::Hold);
    let missing = holds.iter().find(|d| d.subject == "missing").unwrap();
    assert_eq!(missing.kind, DecisionKind::Hold);
    assert!(missing.reason.contains("missing"), "{}", missing.reason);
}

#[test]
fn the_strategy_refuses_unusable_parameters_and_is_named_by_them() {
    let bad = NakedPutParams {
        otm_min: 0.25,
        ..NakedPutParams::default()
    };
    assert!(NakedPutStrategy::new(bad).is_err());
    assert_eq!(strategy(10).name(), "Naked Put - Weekly");
}

#[test]
fn an_underlying_already_held_gets_no_new_put_and_one_put_per_underlying_is_proposed() {
    let s = strategy(10);
    let mut snapshot = entry_snapshot();
    // A second qualifying put on AAA, ranked lower (smaller credit).
    snapshot
        .option_quotes
        .push(put("AAA", 8_200, date(2024, 1, 19), 30, 34));
    let (entries, skips) = s.propose_entries(&snapshot, &[]);
    let aaa: Vec<_> = entries
        .iter()
        .filter(|e| e.contract.underlying.as_str() == "AAA")
        .collect();
    assert_eq!(aaa.len(), 1, "one put per underlying");
    assert!(skips.iter().any(|d| {
        d.criteria
            .iter()
            .any(|c| c.name == "one_per_underlying" && !c.passed)
    }));

    let held = Trade {
        symbol: sym("AAA"),
        ..trade("T-AAA", 8_300, date(2024, 1, 19), 40)
    };
    let (entries, skips) = s.propose_entries(&snapshot, &[held]);
    assert!(
        entries
            .iter()
            .all(|e| e.contract.underlying.as_str() != "AAA")
    );
    assert!(skips.iter().any(|d| {
        d.criteria
            .iter()
            .any(|c| c.name == "already_held" && !c.passed)
    }));
}

#[test]
fn a_time_exit_is_proposed_even_without_an_option_quote() {
    let s = strategy(10);
    let expiry = now().date_naive() + chrono::Duration::days(2);
    let t = Trade {
        symbol: sym("AAA"),
        ..trade("T-1", 8_300, expiry, 40)
    };
    let snapshot = MarketSnapshot {
        option_quotes: Vec::new(),
        ..entry_snapshot()
    };
    let (exits, _) = s.propose_exits(&snapshot, &[t]);
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].reason, core_domain::ExitReason::TimeExit);
    assert!(exits[0].limit_price.is_positive());
}
