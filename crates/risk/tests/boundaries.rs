//! Each limit and breaker at its boundary: a value exactly at a "≤" limit
//! passes and one unit beyond is refused; each circuit breaker trips exactly
//! at its threshold, not before, and within the cycle (or check) that sees it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use core_domain::{DecisionKind, Money, Price};
use risk::measures::{VarPosition, historical_var_95};
use risk::{BreakerAction, RiskGovernor, RiskLimits, RiskRefusal, ShortPutExposure, TradingState};

fn refusals(
    gov: &mut RiskGovernor,
    ctx: &risk::RiskContext,
    i: usize,
    qty: i64,
) -> Vec<RiskRefusal> {
    match gov.check(open(i, qty, Price::from_cents(50)), ctx, now()) {
        Ok(_) => Vec::new(),
        Err(r) => r.reasons,
    }
}

#[test]
fn test_daily_loss_breaker_trips_at_minus_two_percent_not_at_minus_one_point_nine_nine() {
    let mut gov = RiskGovernor::new(RiskLimits::default());
    let mut ctx = context();
    ctx.account = account(9_801_000, 0); // -1.99%
    assert!(gov.on_cycle(&ctx, now()).is_empty());
    ctx.account = account(9_800_001, 0); // -1.99999%
    assert!(gov.on_cycle(&ctx, now()).is_empty());
    assert_eq!(gov.state(), TradingState::Active);
    ctx.account = account(9_800_000, 0); // exactly -2.00%
    let changes = gov.on_cycle(&ctx, now());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].from, TradingState::Active);
    assert_eq!(changes[0].to, TradingState::Halted);
    assert!(
        changes[0].cause.contains("daily loss"),
        "{}",
        changes[0].cause
    );
    assert_eq!(gov.state(), TradingState::Halted);
    assert_eq!(gov.history(), &changes[..]);
    // Already halted: nothing more to record.
    assert!(gov.on_cycle(&ctx, now()).is_empty());
}

#[test]
fn test_daily_loss_breaker_with_reduce_only_action_moves_to_reduce_only() {
    let limits = RiskLimits {
        daily_loss_action: BreakerAction::ReduceOnly,
        ..RiskLimits::default()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    ctx.account = account(9_700_000, 0);
    let changes = gov.on_cycle(&ctx, now());
    assert_eq!(changes[0].to, TradingState::ReduceOnly);
    // The API error breaker escalates further to Halted.
    ctx.api_errors_last_hour = 5;
    assert_eq!(gov.on_cycle(&ctx, now())[0].to, TradingState::Halted);
}

#[test]
fn test_api_error_breaker_trips_at_five_errors_not_at_four() {
    let mut gov = RiskGovernor::new(RiskLimits::default());
    let mut ctx = context();
    ctx.api_errors_last_hour = 4;
    assert!(gov.on_cycle(&ctx, now()).is_empty());
    ctx.api_errors_last_hour = 5;
    let changes = gov.on_cycle(&ctx, now());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].to, TradingState::Halted);
    assert!(changes[0].cause.contains("API error"));
}

#[test]
fn test_opening_check_trips_the_breaker_in_the_same_call_and_refuses() {
    let mut gov = RiskGovernor::new(loose());
    let mut ctx = context();
    ctx.account = account(9_800_000, 0);
    let refused = gov
        .check(open(0, 1, Price::from_cents(50)), &ctx, now())
        .unwrap_err();
    assert_eq!(gov.state(), TradingState::Halted);
    assert_eq!(refused.state_changes.len(), 1);
    assert!(refused.reasons.contains(&RiskRefusal::TradingHalted));
    assert!(refused.reasons.iter().any(|r| matches!(
        r,
        RiskRefusal::DailyLossBreaker { threshold, .. } if *threshold == -0.02
    )));
    assert_eq!(refused.decision.kind, DecisionKind::RiskRefusal);
}

#[test]
fn test_max_positions_allows_the_tenth_and_refuses_the_eleventh() {
    let limits = RiskLimits {
        max_open_positions: 10,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    ctx.positions = (1..=9).map(|i| exposure(i, "Tech", 1)).collect();
    assert_eq!(refusals(&mut gov, &ctx, 20, 1), vec![]);
    ctx.positions.push(exposure(10, "Tech", 1));
    assert_eq!(
        refusals(&mut gov, &ctx, 20, 1),
        vec![RiskRefusal::MaxPositions { after: 11, max: 10 }]
    );
}

#[test]
fn test_max_new_per_day_allows_the_tenth_and_refuses_the_eleventh() {
    let limits = RiskLimits {
        max_positions_per_day: 10,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    ctx.opened_today = 9;
    assert_eq!(refusals(&mut gov, &ctx, 0, 1), vec![]);
    ctx.opened_today = 10;
    assert_eq!(
        refusals(&mut gov, &ctx, 0, 1),
        vec![RiskRefusal::MaxNewPerDay { after: 11, max: 10 }]
    );
}

#[test]
fn test_position_loss_sizing_allows_exactly_500_and_refuses_a_cent_more() {
    let limits = RiskLimits {
        max_position_loss: -500.0,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let ctx = context();
    // 5 × 100 × $0.50 = $250 premium; at a 3× stop the loss is $500.
    assert!(
        gov.check(open(0, 5, Price::from_cents(50)), &ctx, now())
            .is_ok()
    );
    // $0.5001: loss $500.10.
    let refused = gov
        .check(open(0, 5, Price::from_raw(5_001)), &ctx, now())
        .unwrap_err();
    assert_eq!(
        refused.reasons,
        vec![RiskRefusal::PositionLossSizing {
            max_loss: Money::from_cents(50_010),
            limit: Money::from_dollars(500)
        }]
    );
}

#[test]
fn test_margin_utilization_allows_exactly_80_percent_and_refuses_a_cent_more() {
    let limits = RiskLimits {
        max_margin_utilization: 0.80,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    ctx.what_if_initial_margin_after = Some(Money::from_cents(8_000_000));
    assert_eq!(refusals(&mut gov, &ctx, 0, 1), vec![]);
    ctx.what_if_initial_margin_after = Some(Money::from_cents(8_000_001));
    let r = refusals(&mut gov, &ctx, 0, 1);
    assert!(
        matches!(r.as_slice(), [RiskRefusal::MarginUtilization { utilization, max }] if *utilization > 0.8 && *max == 0.8),
        "{r:?}"
    );
}

#[test]
fn test_margin_without_what_if_adds_the_reg_t_margin_of_the_order() {
    let limits = RiskLimits {
        max_margin_utilization: 0.80,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    // One contract: 100 × (0.50 + max(20 − 10, 9)) = $1,050.
    ctx.account = account(10_000_000, 8_000_000 - 105_000);
    assert_eq!(refusals(&mut gov, &ctx, 0, 1), vec![]);
    ctx.account = account(10_000_000, 8_000_000 - 104_999);
    assert!(matches!(
        refusals(&mut gov, &ctx, 0, 1).as_slice(),
        [RiskRefusal::MarginUtilization { .. }]
    ));
}

/// A series whose Pearson correlation with `a` over all of it is `rho`.
fn with_correlation(a: &[f64], rho: f64) -> Vec<f64> {
    let n = a.len() as f64;
    let centre = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| x - m).collect::<Vec<_>>()
    };
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let a = centre(a);
    let c = centre(&noise(99, a.len()));
    let proj = a.iter().zip(&c).map(|(x, y)| x * y).sum::<f64>() / norm(&a).powi(2);
    let c: Vec<f64> = c.iter().zip(&a).map(|(y, x)| y - proj * x).collect();
    let (na, nc) = (norm(&a), norm(&c));
    a.iter()
        .zip(&c)
        .map(|(x, y)| rho * x / na + (1.0 - rho * rho).sqrt() * y / nc)
        .collect()
}

#[test]
fn test_correlation_allows_exactly_0_70_and_refuses_above() {
    let limits = RiskLimits {
        max_correlation: 0.70,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    ctx.positions = vec![exposure(1, "Tech", 1)];
    let held: Vec<f64> = ctx.returns[&sym(1)][190..].to_vec();
    ctx.returns.insert(sym(0), with_correlation(&held, 0.70));
    assert_eq!(refusals(&mut gov, &ctx, 0, 1), vec![]);
    ctx.returns.insert(sym(0), with_correlation(&held, 0.7001));
    let r = refusals(&mut gov, &ctx, 0, 1);
    assert!(
        matches!(r.as_slice(), [RiskRefusal::Correlation { with, correlation, .. }] if *with == sym(1) && (*correlation - 0.7001).abs() < 1e-9),
        "{r:?}"
    );
}

#[test]
fn test_a_second_contract_on_a_held_underlying_counts_as_correlation_one() {
    let limits = RiskLimits {
        max_correlation: 0.70,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    ctx.positions = vec![exposure(0, "Tech", 1)];
    assert_eq!(
        refusals(&mut gov, &ctx, 0, 1),
        vec![RiskRefusal::Correlation {
            with: sym(0),
            correlation: 1.0,
            max: 0.70
        }]
    );
}

#[test]
fn test_sector_concentration_allows_exactly_30_percent_of_the_margin_budget() {
    let limits = RiskLimits {
        max_sector_concentration: 0.30,
        max_margin_utilization: 0.80,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    // Net liq $35,000: budget 80% = $28,000, 30% of it = $8,400 = 8 × $1,050.
    ctx.session_start = account(3_500_000, 0);
    ctx.account = account(3_500_000, 0);
    ctx.positions = vec![exposure(1, "Energy", 3), exposure(2, "Tech", 4)];
    assert_eq!(refusals(&mut gov, &ctx, 0, 5), vec![]);
    let r = refusals(&mut gov, &ctx, 0, 6);
    assert!(
        matches!(r.as_slice(), [RiskRefusal::SectorConcentration { sector, share, max }] if sector == "Energy" && (*share - 9.0 * 1050.0 / 28_000.0).abs() < 1e-12 && *max == 0.30),
        "{r:?}"
    );
}

#[test]
fn test_sector_concentration_uses_total_margin_once_above_the_budget() {
    let limits = RiskLimits {
        max_sector_concentration: 0.30,
        max_margin_utilization: 0.80,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    let mut ctx = context();
    // Net liq $10,000: budget $8,000 < total margin; share of the total.
    ctx.session_start = account(1_000_000, 0);
    ctx.account = account(1_000_000, 0);
    // Margin utilization is not under test here.
    ctx.what_if_initial_margin_after = Some(Money::ZERO);
    // 7 Tech contracts + 3 new Energy = 10 × $1,050; Energy 30%.
    ctx.positions = vec![exposure(1, "Tech", 7)];
    assert_eq!(refusals(&mut gov, &ctx, 0, 3), vec![]);
    ctx.positions = vec![exposure(1, "Tech", 6)];
    assert!(matches!(
        refusals(&mut gov, &ctx, 0, 3).as_slice(),
        [RiskRefusal::SectorConcentration { .. }]
    ));
}

#[test]
fn test_var_limit_allows_exactly_the_limit_and_refuses_a_cent_less() {
    let mut ctx = context();
    ctx.positions = vec![exposure(1, "Tech", 3), exposure(2, "Tech", 2)];
    let book: Vec<VarPosition> = ctx
        .positions
        .iter()
        .map(|p: &ShortPutExposure| VarPosition {
            contract: p.contract.clone(),
            contracts: p.contracts,
            underlying_price: p.underlying_price,
            implied_vol: p.implied_vol,
        })
        .chain([VarPosition {
            contract: put(0),
            contracts: 2,
            underlying_price: Price::from_cents(10_000),
            implied_vol: 0.3,
        }])
        .collect();
    let var = historical_var_95(&book, &ctx.returns, now().date_naive(), 0.04, 250, 20).unwrap();
    assert!(var > Money::ZERO);
    // Net liq chosen so that VaR is exactly 10% of it.
    ctx.session_start = account(var.cents() * 10, 0);
    ctx.account = account(var.cents() * 10, 0);
    // Margin utilization is not under test here.
    ctx.what_if_initial_margin_after = Some(Money::ZERO);
    let limits = RiskLimits {
        max_portfolio_var_95: 0.10,
        ..loose()
    };
    let mut gov = RiskGovernor::new(limits);
    assert_eq!(refusals(&mut gov, &ctx, 0, 2), vec![]);
    ctx.account = account(var.cents() * 10 - 1, 0);
    ctx.session_start = ctx.account.clone();
    let r = refusals(&mut gov, &ctx, 0, 2);
    assert!(
        matches!(r.as_slice(), [RiskRefusal::VarLimit { var_95, .. }] if *var_95 == var),
        "{r:?}"
    );
}

#[test]
fn test_missing_returns_refuse_the_order_fail_closed() {
    let mut gov = RiskGovernor::new(loose());
    let mut ctx = context();
    ctx.returns.remove(&sym(0));
    let r = refusals(&mut gov, &ctx, 0, 1);
    assert!(
        r.iter()
            .any(|x| matches!(x, RiskRefusal::MissingData { limit, .. } if limit == "var_95")),
        "{r:?}"
    );
    ctx.returns = common::returns(30);
    ctx.order_market = None;
    assert!(refusals(&mut gov, &ctx, 0, 1).len() >= 3);
}

#[test]
fn test_submit_order_when_trading_halted_then_denies_opening_and_approves_closing() {
    let mut gov = RiskGovernor::new(RiskLimits::default());
    let mut ctx = context();
    ctx.positions = vec![exposure(1, "Tech", 1)];
    let halt = gov.emergency_halt(now(), "operator:ann", "test").unwrap();
    assert_eq!(halt.to, TradingState::Halted);
    assert_eq!(halt.actor, "operator:ann");
    assert!(refusals(&mut gov, &ctx, 0, 1).contains(&RiskRefusal::TradingHalted));
    let approved = gov.check(close(1, 1), &ctx, now()).unwrap();
    assert_eq!(approved.intent().order_ref, "close-S1");
    assert_eq!(approved.decision().kind, DecisionKind::Exit);
    // A buy-back labelled Open still reduces risk when it covers a short.
    let mut buy_back = close(1, 1);
    buy_back.purpose = core_domain::OrderPurpose::Open;
    assert!(gov.check(buy_back.clone(), &ctx, now()).is_ok());
    buy_back.quantity = 2; // more than held: it would open a long
    assert!(gov.check(buy_back, &ctx, now()).is_err());
}

#[test]
fn test_reduce_only_refuses_opening_and_resume_returns_to_active() {
    let mut gov = RiskGovernor::new(loose());
    let ctx = context();
    gov.reduce_only(now(), "operator:ann", "earnings week")
        .unwrap();
    assert!(refusals(&mut gov, &ctx, 0, 1).contains(&RiskRefusal::ReduceOnly));
    let back = gov.resume(now(), "operator:ann", "done").unwrap();
    assert_eq!(
        (back.from, back.to),
        (TradingState::ReduceOnly, TradingState::Active)
    );
    assert_eq!(refusals(&mut gov, &ctx, 0, 1), vec![]);
    assert_eq!(gov.history().len(), 2);
    assert!(gov.resume(now(), "operator:ann", "again").is_none());
    let record = back.decision_record();
    assert_eq!(record.kind, DecisionKind::TradingState);
    assert_eq!(record.decision, "active");
}

#[test]
fn test_resume_while_the_loss_persists_trips_again_on_the_next_cycle() {
    let mut gov = RiskGovernor::new(RiskLimits::default());
    let mut ctx = context();
    ctx.account = account(9_700_000, 0);
    gov.on_cycle(&ctx, now());
    gov.resume(now(), "operator:ann", "checked").unwrap();
    assert_eq!(gov.on_cycle(&ctx, now())[0].to, TradingState::Halted);
}

#[test]
fn test_approval_records_every_limit_with_value_and_threshold() {
    let mut gov = RiskGovernor::new(RiskLimits::default());
    let mut ctx = context();
    ctx.positions = vec![exposure(1, "Tech", 1)];
    let approved = gov
        .check(open(0, 1, Price::from_cents(50)), &ctx, now())
        .unwrap();
    let names: Vec<&str> = approved
        .decision()
        .criteria
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for expected in [
        "trading_state",
        "daily_loss",
        "api_errors_last_hour",
        "open_positions_after",
        "new_positions_today_after",
        "position_max_loss",
        "margin_utilization_after",
        "correlation_S1",
        "sector_concentration_after",
        "var_95_after",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(approved.decision().all_passed());
    assert_eq!(approved.decision().kind, DecisionKind::Entry);
    let intent = approved.into_inner();
    assert_eq!(intent.order_ref, "open-S0");
}

#[test]
fn test_orders_that_do_not_sell_a_put_to_open_are_refused() {
    let mut gov = RiskGovernor::new(loose());
    let ctx = context();
    let mut buy = open(0, 1, Price::from_cents(50));
    buy.side = core_domain::Side::Buy;
    let r = gov.check(buy, &ctx, now()).unwrap_err();
    assert!(matches!(
        r.reasons.as_slice(),
        [RiskRefusal::UnsupportedOrder { .. }]
    ));
}
