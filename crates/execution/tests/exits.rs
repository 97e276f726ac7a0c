//! The exit manager with a scripted strategy: the loss limit's boundary,
//! the strategy's exits, the emergency stop, assigned stock, working
//! closes, order refs, and a property test over random books.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use core_domain::stubs::{date, open_trade, symbol};
use core_domain::{
    Contract, Criterion, DecisionKind, DecisionRecord, EntryProposal, ExitProposal, ExitReason,
    MarketSnapshot, OptionContract, OptionQuote, OrderPurpose, Position, Price, Quote, Right, Side,
    StockContract, Strategy, TimeInForce, Trade, TradeStatus, UnderlyingSnapshot,
};
use execution::{
    ExitManager, ExitParams, ExitPlan, LiquidationRule, close_order_ref, liquidation_order_ref,
};
use proptest::prelude::*;
use proptest::strategy::Strategy as _;

fn now() -> DateTime<Utc> {
    // 10:00 in New York on 2024-01-10.
    Utc.with_ymd_and_hms(2024, 1, 10, 15, 0, 0).unwrap()
}

fn quote(contract: Contract, bid: Option<i64>, ask: Option<i64>) -> Quote {
    Quote {
        contract,
        bid: bid.map(Price::from_raw),
        ask: ask.map(Price::from_raw),
        last: None,
        bid_size: None,
        ask_size: None,
        time: now(),
        implied_vol: None,
        greeks: None,
        underlying_price: None,
        open_interest: None,
        volume: None,
    }
}

fn cents(c: i64) -> i64 {
    c * 100
}

/// A short put on `sym`: strike $150, expiry 2024-01-19, entry premium and
/// contracts as given.
fn trade(id: &str, sym: &str, entry_cents: i64, contracts: i64) -> Trade {
    Trade {
        trade_id: id.into(),
        symbol: symbol(sym),
        entry_premium: Price::from_cents(entry_cents),
        contracts,
        ..open_trade()
    }
}

fn put_of(t: &Trade) -> OptionContract {
    OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration)
}

fn option_quote(t: &Trade, bid: Option<i64>, ask: Option<i64>) -> OptionQuote {
    OptionQuote {
        contract: put_of(t),
        quote: quote(Contract::Option(put_of(t)), bid, ask),
    }
}

fn stock(sym: &str) -> Contract {
    Contract::Stock(StockContract::us(symbol(sym)))
}

fn underlying(sym: &str, bid: i64, ask: i64) -> UnderlyingSnapshot {
    UnderlyingSnapshot {
        symbol: symbol(sym),
        sector: None,
        quote: quote(stock(sym), Some(bid), Some(ask)),
        closes: Vec::new(),
    }
}

fn snapshot(quotes: Vec<OptionQuote>, underlyings: Vec<UnderlyingSnapshot>) -> MarketSnapshot {
    MarketSnapshot {
        time: now(),
        underlyings,
        option_quotes: quotes,
        vix: None,
    }
}

fn position(contract: Contract, quantity: i64, mark: Option<i64>) -> Position {
    Position {
        contract,
        quantity,
        avg_cost: Price::from_cents(15_000),
        market_price: mark.map(Price::from_raw),
        updated_at: now(),
    }
}

fn assigned(id: &str, sym: &str, contracts: i64) -> Trade {
    Trade {
        status: TradeStatus::Closed,
        exit_reason: Some(ExitReason::Assigned),
        ..trade(id, sym, 40, contracts)
    }
}

fn manager() -> ExitManager {
    ExitManager::new(ExitParams::default()).unwrap()
}

/// What the scripted strategy does with a trade.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    Exit(ExitReason),
    Hold,
    /// Gives no decision at all (a strategy that breaks its contract).
    Omit,
    /// Gives both an exit and a hold.
    Both(ExitReason),
}

/// Exits (at the ask in the snapshot, else $0.05) or holds as scripted.
struct Scripted(HashMap<String, Act>);

impl Scripted {
    fn new(acts: &[(&str, Act)]) -> Self {
        Scripted(acts.iter().map(|(k, a)| (k.to_string(), *a)).collect())
    }
}

fn strategy_exit(t: &Trade, reason: ExitReason, snap: &MarketSnapshot) -> ExitProposal {
    let ask = snap
        .option_quotes
        .iter()
        .find(|q| q.contract == put_of(t))
        .and_then(|q| q.quote.ask)
        .unwrap_or(Price::from_cents(5));
    ExitProposal {
        trade_id: t.trade_id.clone(),
        reason,
        limit_price: ask,
        decision: DecisionRecord::new(
            snap.time,
            DecisionKind::Exit,
            t.trade_id.clone(),
            format!("exit:{reason}"),
            format!("{reason} fired"),
        )
        .with_criteria(vec![Criterion::text(
            reason.as_str(),
            "fired",
            "script",
            true,
        )])
        .with_context(serde_json::json!({"strategy": "scripted"})),
    }
}

fn strategy_hold(t: &Trade, snap: &MarketSnapshot) -> DecisionRecord {
    DecisionRecord::new(
        snap.time,
        DecisionKind::Hold,
        t.trade_id.clone(),
        "hold",
        "no exit fired",
    )
    .with_criteria(vec![Criterion::text("stop_loss", "no", "script", false)])
}

impl Strategy for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn propose_entries(
        &self,
        _snapshot: &MarketSnapshot,
        _open_trades: &[Trade],
    ) -> (Vec<EntryProposal>, Vec<DecisionRecord>) {
        (Vec::new(), Vec::new())
    }
    fn propose_exits(
        &self,
        snap: &MarketSnapshot,
        open_trades: &[Trade],
    ) -> (Vec<ExitProposal>, Vec<DecisionRecord>) {
        let mut exits = Vec::new();
        let mut holds = Vec::new();
        for t in open_trades {
            match self.0.get(&t.trade_id).copied().unwrap_or(Act::Hold) {
                Act::Exit(r) => exits.push(strategy_exit(t, r, snap)),
                Act::Hold => holds.push(strategy_hold(t, snap)),
                Act::Omit => {}
                Act::Both(r) => {
                    exits.push(strategy_exit(t, r, snap));
                    holds.push(strategy_hold(t, snap));
                }
            }
        }
        (exits, holds)
    }
}

fn holds_all() -> Scripted {
    Scripted::new(&[])
}

fn criterion<'a>(d: &'a DecisionRecord, name: &str) -> &'a Criterion {
    d.criteria
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("criterion {name} missing from {d:?}"))
}

fn evaluate(
    s: &dyn Strategy,
    snap: &MarketSnapshot,
    trades: &[Trade],
    positions: &[Position],
    assigned: &[Trade],
    working: &[String],
) -> ExitPlan {
    manager().evaluate(s, snap, trades, positions, assigned, working)
}

#[test]
fn test_loss_limit_exits_at_exactly_500_and_holds_at_499_99() {
    // One contract sold at $0.40: a loss of $500.00 at an ask of $5.40.
    let t = trade("T-1", "AAPL", 40, 1);
    let snap = snapshot(vec![option_quote(&t, Some(53_000), Some(54_000))], vec![]);
    let plan = evaluate(&holds_all(), &snap, std::slice::from_ref(&t), &[], &[], &[]);
    assert_eq!(plan.exits.len(), 1);
    assert!(plan.holds.is_empty());
    let x = &plan.exits[0];
    assert_eq!(x.reason, ExitReason::PositionLossLimit);
    assert_eq!(x.intent.limit_price, Price::from_cents(540));
    assert_eq!(x.intent.side, Side::Buy);
    assert_eq!(x.intent.purpose, OrderPurpose::Close);
    assert_eq!(x.intent.quantity, 1);
    assert_eq!(x.decision.kind, DecisionKind::Exit);
    assert_eq!(x.decision.subject, "T-1");
    assert_eq!(x.decision.decision, "exit:position_loss_limit");
    let c = criterion(&x.decision, "position_loss_limit");
    assert!(c.passed);
    assert_eq!(c.value, "500.00");
    // The strategy's hold criteria are kept alongside.
    criterion(&x.decision, "stop_loss");
    assert_eq!(
        x.decision.context["exit_manager"]["loss_at_ask_cents"],
        50_000
    );

    // $5.3999: a loss of $499.99, one cent short of the limit.
    let snap = snapshot(vec![option_quote(&t, Some(53_000), Some(53_999))], vec![]);
    let plan = evaluate(&holds_all(), &snap, &[t], &[], &[], &[]);
    assert!(plan.exits.is_empty());
    assert_eq!(plan.holds.len(), 1);
    let c = criterion(&plan.holds[0], "position_loss_limit");
    assert!(!c.passed);
    assert_eq!(c.value, "499.99");
    assert_eq!(plan.holds[0].kind, DecisionKind::Hold);
}

#[test]
fn test_loss_limit_counts_every_contract_exactly() {
    // Five contracts at $0.40: $500.00 at $1.40, $499.95 at $1.3999.
    let t = trade("T-1", "AAPL", 40, 5);
    for (ask, exits) in [(14_000, true), (13_999, false), (14_001, true)] {
        let snap = snapshot(vec![option_quote(&t, Some(13_000), Some(ask))], vec![]);
        let plan = evaluate(&holds_all(), &snap, std::slice::from_ref(&t), &[], &[], &[]);
        assert_eq!(plan.exits.len() == 1, exits, "ask {ask}");
    }
    // No ask: the limit cannot be judged, the trade is held and says so.
    let snap = snapshot(vec![option_quote(&t, Some(90_000), None)], vec![]);
    let plan = evaluate(&holds_all(), &snap, &[t], &[], &[], &[]);
    assert!(plan.exits.is_empty());
    assert_eq!(
        criterion(&plan.holds[0], "position_loss_limit").value,
        "no ask: not judged"
    );
}

#[test]
fn test_strategy_exits_pass_through_with_their_reasons_and_records() {
    let t1 = trade("T-1", "AAPL", 40, 5);
    let t2 = trade("T-2", "MSFT", 40, 3);
    let t3 = trade("T-3", "KO", 40, 2);
    let t4 = trade("T-4", "PEP", 40, 2);
    let snap = snapshot(
        vec![
            option_quote(&t1, Some(1_500), Some(2_000)),
            // An ask off the tick is rounded up: $0.2345 -> $0.24.
            option_quote(&t2, Some(1_500), Some(2_345)),
            option_quote(&t3, Some(10_000), Some(12_000)),
            option_quote(&t4, Some(3_000), Some(3_500)),
        ],
        vec![],
    );
    let s = Scripted::new(&[
        ("T-1", Act::Exit(ExitReason::ProfitTarget)),
        ("T-2", Act::Exit(ExitReason::TimeExit)),
        ("T-3", Act::Exit(ExitReason::StopLoss)),
        ("T-4", Act::Hold),
    ]);
    let plan = evaluate(&s, &snap, &[t1, t2, t3, t4], &[], &[], &[]);
    let got: Vec<(&str, ExitReason, Price, i64)> = plan
        .exits
        .iter()
        .map(|x| {
            (
                x.intent.trade_id.as_deref().unwrap(),
                x.reason,
                x.intent.limit_price,
                x.intent.quantity,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("T-1", ExitReason::ProfitTarget, Price::from_cents(20), 5),
            ("T-2", ExitReason::TimeExit, Price::from_cents(24), 3),
            ("T-3", ExitReason::StopLoss, Price::from_cents(120), 2),
        ]
    );
    for x in &plan.exits {
        assert_eq!(x.decision.kind, DecisionKind::Exit);
        assert_eq!(x.decision.decision, format!("exit:{}", x.reason));
        assert_eq!(x.decision.reason, format!("{} fired", x.reason));
        // The strategy's criterion and context are kept; ours is added.
        assert!(criterion(&x.decision, x.reason.as_str()).passed);
        assert!(!criterion(&x.decision, "position_loss_limit").passed);
        assert_eq!(x.decision.context["strategy"], "scripted");
        assert_eq!(
            x.decision.context["exit_manager"]["order_ref"],
            x.intent.order_ref.as_str()
        );
        assert_eq!(x.intent.time_in_force, TimeInForce::Day);
        assert_eq!(x.intent.created_at, now());
        assert_eq!(x.intent.side, Side::Buy);
        assert_eq!(x.intent.purpose, OrderPurpose::Close);
        assert!(matches!(&x.intent.contract, Contract::Option(o) if o.right == Right::Put));
        x.intent.validate().unwrap();
    }
    assert_eq!(plan.holds.len(), 1);
    assert_eq!(plan.holds[0].subject, "T-4");
}

#[test]
fn test_when_both_apply_the_strategy_reason_is_kept_and_both_criteria_recorded() {
    // One contract at $0.40, ask $5.40: the stop (3x) and the $500 limit.
    let t = trade("T-1", "AAPL", 40, 1);
    let snap = snapshot(vec![option_quote(&t, Some(53_000), Some(54_000))], vec![]);
    let s = Scripted::new(&[("T-1", Act::Exit(ExitReason::StopLoss))]);
    let plan = evaluate(&s, &snap, &[t], &[], &[], &[]);
    assert_eq!(plan.exits.len(), 1);
    let x = &plan.exits[0];
    assert_eq!(x.reason, ExitReason::StopLoss);
    assert_eq!(x.decision.decision, "exit:stop_loss");
    assert!(criterion(&x.decision, "stop_loss").passed);
    assert!(criterion(&x.decision, "position_loss_limit").passed);
    assert!(
        x.decision
            .reason
            .contains("position loss limit is also reached")
    );
    assert!(x.intent.order_ref.contains("-stop_loss-"));
}

#[test]
fn test_emergency_closes_every_trade_and_sells_long_stock_at_marketable_limits() {
    let quoted = trade("T-1", "AAPL", 40, 5);
    let itm = trade("T-2", "MSFT", 40, 2); // no quote, spot $140 < strike $150
    let blind = trade("T-3", "KO", 40, 1); // no quote, no spot
    let bid_only = trade("T-4", "PEP", 40, 1); // bid only, spot far above
    let snap = snapshot(
        vec![
            option_quote(&quoted, Some(4_500), Some(5_000)),
            option_quote(&bid_only, Some(1_200), None),
        ],
        vec![
            underlying("MSFT", cents(13_990), cents(14_010)),
            underlying("PEP", cents(19_990), cents(20_010)),
            underlying("XOM", cents(14_950), cents(14_960)),
        ],
    );
    let positions = vec![
        position(stock("XOM"), 300, None),
        position(stock("T"), -100, Some(cents(1_700))),
        position(stock("GE"), 100, Some(cents(2_000))), // no quote: the mark
        position(stock("F"), 50, None),                 // no price at all
    ];
    let trades = [quoted, itm, blind, bid_only];
    let plan = manager().emergency_exits(&snap, &trades, &positions, &[], now());
    assert!(plan.holds.is_empty());
    let closes: Vec<(&str, Price)> = plan
        .exits
        .iter()
        .filter(|x| x.intent.purpose == OrderPurpose::Close)
        .map(|x| (x.intent.trade_id.as_deref().unwrap(), x.intent.limit_price))
        .collect();
    assert_eq!(
        closes,
        vec![
            ("T-1", Price::from_cents(55)),     // ask 0.50 + 0.05
            ("T-2", Price::from_cents(1_100)),  // intrinsic 10.00 + 1.00 (cap)
            ("T-3", Price::from_cents(15_000)), // the strike
            ("T-4", Price::from_cents(17)),     // bid 0.12 + 0.05
        ]
    );
    let sales: Vec<(String, i64, Price)> = plan
        .exits
        .iter()
        .filter(|x| x.intent.purpose == OrderPurpose::Liquidate)
        .map(|x| {
            (
                x.intent.contract.key(),
                x.intent.quantity,
                x.intent.limit_price,
            )
        })
        .collect();
    assert_eq!(
        sales,
        vec![
            ("XOM".to_string(), 300, Price::from_cents(14_850)), // bid 149.50 - 1.00
            ("GE".to_string(), 100, Price::from_cents(1_900)),   // mark 20.00 - 1.00
        ]
    );
    for x in &plan.exits {
        assert_eq!(x.reason, ExitReason::Emergency);
        assert!(x.intent.limit_price.is_positive());
        assert_eq!(x.decision.kind, DecisionKind::Exit);
        assert_eq!(x.intent.time_in_force, TimeInForce::Day);
        x.intent.validate().unwrap();
        match x.intent.purpose {
            OrderPurpose::Close => assert_eq!(x.intent.side, Side::Buy),
            OrderPurpose::Liquidate => assert_eq!(x.intent.side, Side::Sell),
            OrderPurpose::Open => panic!("an emergency never opens"),
        }
    }
    let untouched: Vec<(&str, &str)> = plan
        .untouched
        .iter()
        .map(|d| (d.subject.as_str(), d.decision.as_str()))
        .collect();
    assert_eq!(
        untouched,
        vec![("T", "hold:short_stock"), ("F", "hold:no_price")]
    );
}

#[test]
fn test_emergency_limit_without_a_quote_is_positive_out_of_the_money() {
    // Spot $200 over a $150 strike: intrinsic 0, the limit is the bound.
    let t = trade("T-1", "AAPL", 40, 5);
    let snap = snapshot(
        vec![],
        vec![underlying("AAPL", cents(19_990), cents(20_010))],
    );
    let plan = manager().emergency_exits(&snap, &[t], &[], &[], now());
    assert_eq!(plan.exits[0].intent.limit_price, Price::from_cents(5));
    assert_eq!(
        plan.exits[0].intent.order_ref,
        "X-T-1-emergency-202401101500"
    );
}

#[test]
fn test_emergency_reports_short_options_with_no_trade_and_holds_working_closes() {
    let t1 = trade("T-1", "AAPL", 40, 5);
    let t2 = trade("T-2", "MSFT", 40, 5);
    let orphan = trade("T-9", "KO", 40, 5);
    let positions = vec![position(Contract::Option(put_of(&orphan)), -2, None)];
    let snap = snapshot(vec![option_quote(&t1, Some(40), Some(50))], vec![]);
    let working = vec![close_order_ref("T-2", ExitReason::StopLoss, now())];
    let plan = manager().emergency_exits(&snap, &[t1, t2], &positions, &working, now());
    assert_eq!(plan.exits.len(), 1);
    assert_eq!(plan.holds.len(), 1);
    assert_eq!(plan.holds[0].subject, "T-2");
    assert_eq!(plan.holds[0].decision, "hold:close_working");
    assert_eq!(plan.untouched.len(), 1);
    assert_eq!(plan.untouched[0].decision, "hold:no_trade");
}

#[test]
fn test_assigned_stock_is_sold_at_the_next_cycle_and_repriced_if_unfilled() {
    let a = assigned("T-7", "AAPL", 5);
    let positions = vec![position(stock("AAPL"), 500, Some(cents(14_500)))];
    let snap = snapshot(
        vec![],
        vec![underlying("AAPL", cents(14_500), cents(14_510))],
    );
    let s = holds_all();
    let plan = evaluate(&s, &snap, &[], &positions, std::slice::from_ref(&a), &[]);
    assert_eq!(plan.exits.len(), 1);
    let x = &plan.exits[0];
    assert_eq!(x.reason, ExitReason::Assigned);
    assert_eq!(x.intent.purpose, OrderPurpose::Liquidate);
    assert_eq!(x.intent.side, Side::Sell);
    assert_eq!(x.intent.quantity, 500);
    assert_eq!(x.intent.time_in_force, TimeInForce::Day);
    assert_eq!(x.intent.trade_id.as_deref(), Some("T-7"));
    assert_eq!(x.intent.contract, stock("AAPL"));
    // Bid $145.00 minus the $1.00 cap on the 10% bound.
    assert_eq!(x.intent.limit_price, Price::from_cents(14_400));
    assert_eq!(x.intent.order_ref, "L-AAPL-202401101500");
    assert_eq!(x.decision.kind, DecisionKind::Exit);
    assert_eq!(x.decision.subject, "T-7");
    assert_eq!(x.decision.context["assigned_trades"][0], "T-7");

    // While that order works, no second sale.
    let working = vec![x.intent.order_ref.clone()];
    let plan2 = evaluate(
        &s,
        &snap,
        &[],
        &positions,
        std::slice::from_ref(&a),
        &working,
    );
    assert!(plan2.exits.is_empty());
    assert_eq!(plan2.untouched[0].decision, "hold:liquidation_working");

    // It expired unfilled; the next cycle prices again from the new bid.
    let mut later = snapshot(
        vec![],
        vec![underlying("AAPL", cents(14_000), cents(14_010))],
    );
    later.time = now() + Duration::minutes(5);
    let plan3 = evaluate(&s, &later, &[], &positions, &[a], &[]);
    assert_eq!(plan3.exits[0].intent.limit_price, Price::from_cents(13_900));
    assert_eq!(plan3.exits[0].intent.order_ref, "L-AAPL-202401101505");
}

#[test]
fn test_only_stock_received_by_assignment_is_sold_and_never_more_than_received() {
    let a = assigned("T-7", "AAPL", 5);
    let positions = vec![
        position(stock("AAPL"), 700, None), // 500 received, 200 someone else's
        position(stock("MSFT"), 100, None), // no assignment on record
        position(stock("KO"), -100, None),  // short
    ];
    let snap = snapshot(
        vec![],
        vec![
            underlying("AAPL", cents(14_500), cents(14_510)),
            underlying("MSFT", cents(30_000), cents(30_010)),
        ],
    );
    let plan = evaluate(
        &holds_all(),
        &snap,
        &[],
        &positions,
        std::slice::from_ref(&a),
        &[],
    );
    assert_eq!(plan.exits.len(), 1);
    assert_eq!(plan.exits[0].intent.quantity, 500);
    let untouched: Vec<(&str, &str)> = plan
        .untouched
        .iter()
        .map(|d| (d.subject.as_str(), d.decision.as_str()))
        .collect();
    assert_eq!(
        untouched,
        vec![("MSFT", "hold:not_assigned"), ("KO", "hold:short_stock")]
    );

    // The manual rule reports assigned stock instead of selling it.
    let m = ExitManager::new(ExitParams {
        liquidation: LiquidationRule::Manual,
        ..ExitParams::default()
    })
    .unwrap();
    let plan = m.evaluate(&holds_all(), &snap, &[], &positions, &[a], &[]);
    assert!(plan.exits.is_empty());
    assert_eq!(plan.untouched[0].decision, "hold:manual_liquidation");
}

#[test]
fn test_working_exits_are_not_duplicated() {
    let t1 = trade("T-1", "AAPL", 40, 1); // the strategy exits it
    let t2 = trade("T-2", "MSFT", 40, 1); // the loss limit would close it
    let t3 = trade("T-3", "KO", 40, 1); // the strategy exits it, not working
    let snap = snapshot(
        vec![
            option_quote(&t1, Some(1_000), Some(2_000)),
            option_quote(&t2, Some(60_000), Some(61_000)),
            option_quote(&t3, Some(1_000), Some(2_000)),
        ],
        vec![],
    );
    let s = Scripted::new(&[
        ("T-1", Act::Exit(ExitReason::ProfitTarget)),
        ("T-3", Act::Exit(ExitReason::ProfitTarget)),
    ]);
    let trades = [t1, t2, t3];
    // Working by trade id, and by an order ref of an earlier cycle.
    let earlier = now() - Duration::minutes(15);
    let working = vec![
        "T-1".to_string(),
        close_order_ref("T-2", ExitReason::PositionLossLimit, earlier),
    ];
    let plan = evaluate(&s, &snap, &trades, &[], &[], &working);
    assert_eq!(plan.exits.len(), 1);
    assert_eq!(plan.exits[0].intent.trade_id.as_deref(), Some("T-3"));
    let held: Vec<(&str, &str)> = plan
        .holds
        .iter()
        .map(|d| (d.subject.as_str(), d.decision.as_str()))
        .collect();
    assert_eq!(
        held,
        vec![("T-1", "hold:close_working"), ("T-2", "hold:close_working")]
    );
    // A trade id that merely starts like another is not confused with it.
    let working = vec![close_order_ref("T-3-2", ExitReason::StopLoss, earlier)];
    let plan = evaluate(&s, &snap, &trades, &[], &[], &working);
    assert_eq!(plan.exits.len(), 3);
}

#[test]
fn test_close_quantity_is_capped_by_the_broker_short_and_never_opens_a_long() {
    let t = trade("T-1", "AAPL", 40, 5);
    let snap = snapshot(vec![option_quote(&t, Some(1_000), Some(2_000))], vec![]);
    let s = Scripted::new(&[("T-1", Act::Exit(ExitReason::ProfitTarget))]);
    let partly = vec![position(Contract::Option(put_of(&t)), -2, None)];
    let plan = evaluate(&s, &snap, std::slice::from_ref(&t), &partly, &[], &[]);
    assert_eq!(plan.exits[0].intent.quantity, 2);
    let gone = vec![position(Contract::Option(put_of(&t)), 0, None)];
    let plan = evaluate(&s, &snap, &[t], &gone, &[], &[]);
    assert!(plan.exits.is_empty());
    assert_eq!(plan.holds[0].decision, "hold:no_short_position");
}

#[test]
fn test_order_refs_are_deterministic_and_unique_per_attempt() {
    let trades: Vec<Trade> = ["T-1", "T-2", "T-3"]
        .iter()
        .zip(["AAPL", "MSFT", "KO"])
        .map(|(id, sym)| trade(id, sym, 40, 1))
        .collect();
    let snap = snapshot(
        trades
            .iter()
            .map(|t| option_quote(t, Some(1_000), Some(2_000)))
            .collect(),
        vec![underlying("AAPL", cents(14_500), cents(14_510))],
    );
    let positions = vec![position(stock("AAPL"), 100, None)];
    let a = [assigned("T-0", "AAPL", 1)];
    let s = Scripted::new(&[
        ("T-1", Act::Exit(ExitReason::ProfitTarget)),
        ("T-2", Act::Exit(ExitReason::ProfitTarget)),
        ("T-3", Act::Exit(ExitReason::TimeExit)),
    ]);
    let first = evaluate(&s, &snap, &trades, &positions, &a, &[]);
    let again = evaluate(&s, &snap, &trades, &positions, &a, &[]);
    assert_eq!(first, again);
    let refs: Vec<&str> = first
        .exits
        .iter()
        .map(|x| x.intent.order_ref.as_str())
        .collect();
    assert_eq!(
        refs,
        vec![
            "X-T-1-profit_target-202401101500",
            "X-T-2-profit_target-202401101500",
            "X-T-3-time_exit-202401101500",
            "L-AAPL-202401101500",
        ]
    );
    assert_eq!(refs.iter().collect::<HashSet<_>>().len(), refs.len());
    assert_eq!(
        liquidation_order_ref(&symbol("AAPL"), now()),
        "L-AAPL-202401101500"
    );
    // The next attempt, a cycle later, carries new refs.
    let mut later = snap.clone();
    later.time = now() + Duration::minutes(1);
    let next = evaluate(&s, &later, &trades, &positions, &a, &[]);
    for (x, y) in first.exits.iter().zip(&next.exits) {
        assert_ne!(x.intent.order_ref, y.intent.order_ref);
    }
    // A different reason for the same trade is a different ref.
    assert_ne!(
        close_order_ref("T-1", ExitReason::StopLoss, now()),
        close_order_ref("T-1", ExitReason::Emergency, now())
    );
}

#[test]
fn test_closed_and_repeated_trades_are_managed_once() {
    let t = trade("T-1", "AAPL", 40, 1);
    let closed = Trade {
        status: TradeStatus::Closed,
        ..trade("T-2", "MSFT", 40, 1)
    };
    let s = Scripted::new(&[("T-1", Act::Both(ExitReason::ProfitTarget))]);
    let snap = snapshot(vec![option_quote(&t, Some(1_000), Some(2_000))], vec![]);
    let plan = evaluate(&s, &snap, &[t.clone(), t, closed], &[], &[], &[]);
    assert_eq!(plan.exits.len(), 1);
    assert!(plan.holds.is_empty());
}

#[test]
fn test_the_manager_takes_a_strategy_object() {
    let boxed: Box<dyn Strategy> = Box::new(holds_all());
    let t = trade("T-1", "AAPL", 40, 1);
    let plan = manager().evaluate(
        boxed.as_ref(),
        &snapshot(vec![], vec![]),
        &[t],
        &[],
        &[],
        &[],
    );
    assert_eq!(plan.holds.len(), 1);
    let p: ExitParams = serde_json::from_str(r#"{"max_position_loss": 250.0}"#).unwrap();
    assert_eq!(p.max_position_loss, 250.0);
    assert_eq!(
        p.marketable_bound_min,
        ExitParams::default().marketable_bound_min
    );
    assert_eq!(
        ExitManager::new(p).unwrap().max_position_loss(),
        core_domain::Money::from_dollars(250)
    );
}

/// Checks the invariants of a plan: every open trade exited or held
/// exactly once; every exit a risk-reducing day limit order within what is
/// held, with a positive limit and a unique ref.
fn check_plan(
    plan: &ExitPlan,
    open: &[Trade],
    positions: &[Position],
) -> Result<(), TestCaseError> {
    let ids: HashSet<&str> = open
        .iter()
        .filter(|t| t.status == TradeStatus::Open)
        .map(|t| t.trade_id.as_str())
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for x in plan
        .exits
        .iter()
        .filter(|x| x.intent.purpose == OrderPurpose::Close)
    {
        *count
            .entry(x.intent.trade_id.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    for h in &plan.holds {
        prop_assert_eq!(h.kind, DecisionKind::Hold);
        *count.entry(h.subject.as_str()).or_default() += 1;
    }
    for id in &ids {
        prop_assert_eq!(count.get(id).copied(), Some(1), "trade {}", id);
    }
    prop_assert_eq!(count.len(), ids.len(), "records for unknown trades");
    let mut refs = HashSet::new();
    for x in &plan.exits {
        let i = &x.intent;
        prop_assert!(
            refs.insert(i.order_ref.clone()),
            "ref {} twice",
            i.order_ref
        );
        prop_assert!(i.validate().is_ok());
        prop_assert!(i.purpose.reduces_risk());
        prop_assert_eq!(i.time_in_force, TimeInForce::Day);
        prop_assert_eq!(x.decision.kind, DecisionKind::Exit);
        match (&i.contract, i.purpose) {
            (Contract::Option(o), OrderPurpose::Close) => {
                prop_assert_eq!(i.side, Side::Buy);
                let t = open
                    .iter()
                    .find(|t| Some(&t.trade_id) == i.trade_id.as_ref())
                    .unwrap();
                prop_assert!(i.quantity <= t.contracts);
                prop_assert_eq!(&x.decision.subject, &t.trade_id);
                let short: i64 = positions
                    .iter()
                    .filter(|p| p.contract == Contract::Option(o.clone()))
                    .map(|p| p.quantity)
                    .sum();
                prop_assert!(short == 0 || i.quantity <= -short);
            }
            (Contract::Stock(s), OrderPurpose::Liquidate) => {
                prop_assert_eq!(i.side, Side::Sell);
                let held: i64 = positions
                    .iter()
                    .filter(|p| matches!(&p.contract, Contract::Stock(x) if x.symbol == s.symbol))
                    .map(|p| p.quantity)
                    .sum();
                prop_assert!(i.quantity <= held);
            }
            other => prop_assert!(false, "not a risk-reducing exit: {:?}", other),
        }
    }
    Ok(())
}

const SYMBOLS: [&str; 6] = ["AAPL", "MSFT", "KO", "PEP", "XOM", "GE"];

fn act() -> impl proptest::strategy::Strategy<Value = Act> {
    let reason = proptest::sample::select(vec![
        ExitReason::ProfitTarget,
        ExitReason::StopLoss,
        ExitReason::TimeExit,
    ]);
    prop_oneof![
        reason.clone().prop_map(Act::Exit),
        Just(Act::Hold),
        Just(Act::Omit),
        reason.prop_map(Act::Both),
    ]
}

/// One generated trade: symbol index, entry cents, contracts, option
/// (bid, ask) in ten-thousandths, behaviour, working, open, broker short.
type Gen = (
    usize,
    i64,
    i64,
    (Option<i64>, Option<i64>),
    Act,
    bool,
    bool,
    Option<i64>,
);

fn gen_trade() -> impl proptest::strategy::Strategy<Value = Gen> {
    (
        0..SYMBOLS.len(),
        0i64..200,
        1i64..10,
        (
            proptest::option::of(0i64..60_000),
            proptest::option::of(0i64..80_000),
        ),
        act(),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.9),
        proptest::option::weighted(0.3, -12i64..3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any book, any strategy behaviour: every open trade is exited or held
    /// exactly once, and every exit is a risk-reducing order (Close buys at
    /// most the contracts held, Liquidate sells at most the shares held),
    /// with a positive limit, in the cycle and in the emergency stop.
    #[test]
    fn every_open_trade_is_exited_or_held_once_and_every_exit_reduces_risk(
        gens in proptest::collection::vec(gen_trade(), 0..8),
        stocks in proptest::collection::vec((0..SYMBOLS.len(), -300i64..900, proptest::option::of(1i64..2_000_000)), 0..4),
        assigned_syms in proptest::collection::vec((0..SYMBOLS.len(), 0i64..8), 0..3),
        spots in proptest::collection::vec(proptest::option::of(100_000i64..3_000_000), SYMBOLS.len()),
    ) {
        let mut trades = Vec::new();
        let mut quotes = Vec::new();
        let mut acts = Vec::new();
        let mut working = Vec::new();
        let mut positions = Vec::new();
        for (n, (sym, entry, contracts, (bid, ask), act, work, open, short)) in gens.into_iter().enumerate() {
            let mut t = trade(&format!("T-{n}"), SYMBOLS[sym], entry, contracts);
            // Distinct contracts per trade: the expiry moves with n.
            t.expiration = date(2024, 1, 12) + Duration::days(n as i64);
            if !open {
                t.status = TradeStatus::Closed;
            }
            if bid.is_some() || ask.is_some() {
                quotes.push(option_quote(&t, bid, ask));
            }
            if work {
                working.push(t.trade_id.clone());
            }
            if let Some(q) = short {
                positions.push(position(Contract::Option(put_of(&t)), q, None));
            }
            acts.push((t.trade_id.clone(), act));
            trades.push(t);
        }
        for (sym, qty, mark) in stocks {
            positions.push(position(stock(SYMBOLS[sym]), qty, mark));
        }
        let assigned: Vec<Trade> = assigned_syms
            .iter()
            .enumerate()
            .map(|(n, (sym, c))| assigned(&format!("A-{n}"), SYMBOLS[*sym], *c))
            .collect();
        let underlyings = SYMBOLS
            .iter()
            .zip(&spots)
            .filter_map(|(s, p)| p.map(|p| underlying(s, p, p + 100)))
            .collect();
        let snap = snapshot(quotes, underlyings);
        let s = Scripted(acts.into_iter().collect());
        let m = manager();

        let plan = m.evaluate(&s, &snap, &trades, &positions, &assigned, &working);
        check_plan(&plan, &trades, &positions)?;
        let plan = m.emergency_exits(&snap, &trades, &positions, &working, now());
        check_plan(&plan, &trades, &positions)?;
        for x in plan.exits.iter().filter(|x| x.intent.purpose == OrderPurpose::Close) {
            prop_assert_eq!(x.reason, ExitReason::Emergency);
        }
    }
}
