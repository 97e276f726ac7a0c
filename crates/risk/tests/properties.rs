//! Property test of the governor over random sessions.
//!
//! Each case is a random sequence of market moves (net liquidation and
//! marks), fills and broker rejections of approved orders, API errors,
//! cycles, operator actions and order requests (opening and closing).
//! Invariants:
//! 1. an approved opening order leaves a book that satisfies every limit
//!    (positions, new today, sizing, margin utilization, correlation, sector
//!    concentration, VaR, no breaker condition, state Active);
//! 2. a closing order is always approved, in every state;
//! 3. when the state is Halted or ReduceOnly no opening order is approved;
//! 4. a cycle that sees a breaker condition leaves the state Halted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use core_domain::{Contract, Money, Price};
use proptest::prelude::*;
use risk::measures::{VarPosition, correlation, historical_var_95, sizing_loss};
use risk::{
    OrderMarket, RATIO_TOLERANCE, RiskGovernor, RiskLimits, ShortPutExposure, TradingState,
};

const SYMBOLS: usize = 8;

#[derive(Debug, Clone)]
enum Step {
    /// Net liquidation moves by this many basis points; marks scale.
    Market {
        bps: i64,
        mark_pct: i64,
    },
    Open {
        sym: usize,
        contracts: i64,
        premium_cents: i64,
        price_dollars: i64,
        fills: bool,
    },
    Close {
        index: usize,
    },
    ApiErrors(u32),
    HourPasses,
    Cycle,
    Resume,
    EmergencyHalt,
    NewSession,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (-300i64..300, 50i64..200).prop_map(|(bps, mark_pct)| Step::Market { bps, mark_pct }),
        6 => (0..SYMBOLS, 1i64..6, 10i64..150, 30i64..400, any::<bool>()).prop_map(
            |(sym, contracts, premium_cents, price_dollars, fills)| Step::Open {
                sym, contracts, premium_cents, price_dollars, fills
            }
        ),
        2 => (0usize..12).prop_map(|index| Step::Close { index }),
        1 => (1u32..4).prop_map(Step::ApiErrors),
        1 => Just(Step::HourPasses),
        2 => Just(Step::Cycle),
        1 => Just(Step::Resume),
        1 => Just(Step::EmergencyHalt),
        1 => Just(Step::NewSession),
    ]
}

/// Returns with a factor structure: S0-S3 load on one factor (highly
/// correlated), S4-S7 are independent; two sectors each.
fn universe() -> std::collections::BTreeMap<core_domain::Symbol, Vec<f64>> {
    let factor = noise(1_000, 250);
    (0..SYMBOLS)
        .map(|i| {
            let own = noise(i as u64 + 7, 250);
            let series = if i < 4 {
                factor.iter().zip(&own).map(|(f, e)| f + 0.3 * e).collect()
            } else {
                own
            };
            (sym(i), series)
        })
        .collect()
}

fn sector(i: usize) -> &'static str {
    ["Tech", "Energy", "Health", "Utilities"][i % 4]
}

fn reg_t(p: &ShortPutExposure) -> Money {
    pricing::short_put_margin(p.underlying_price, p.contract.strike, p.mark, p.contracts).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn governor_never_approves_a_limit_breach_and_never_blocks_a_close(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        // A shorter VaR window keeps thousands of cases fast in debug builds.
        let limits = RiskLimits { var_lookback_days: 60, ..RiskLimits::default() };
        let mut gov = RiskGovernor::new(limits.clone());
        let mut ctx = context();
        ctx.returns = universe();
        let time = now();
        for (n, step) in steps.into_iter().enumerate() {
            let order_ref = format!("o{n}");
            ctx.account.initial_margin = ctx.positions.iter().map(reg_t).sum();
            match step {
                Step::Market { bps, mark_pct } => {
                    let nl = ctx.account.net_liquidation.cents();
                    ctx.account.net_liquidation = Money::from_cents(nl + nl * bps / 10_000);
                    for p in &mut ctx.positions {
                        p.mark = Price::from_raw((p.mark.raw() * mark_pct / 100).max(1));
                    }
                }
                Step::Open { sym: i, contracts, premium_cents, price_dollars, fills } => {
                    let underlying = Price::from_cents(price_dollars * 100);
                    let mut intent = open(i, contracts, Price::from_cents(premium_cents));
                    intent.order_ref = order_ref;
                    if let Contract::Option(o) = &mut intent.contract {
                        o.strike = Price::from_cents(price_dollars * 90);
                    }
                    ctx.order_market = Some(OrderMarket {
                        sector: Some(sector(i).into()),
                        underlying_price: underlying,
                        implied_vol: 0.35,
                    });
                    let state_before = gov.state();
                    let result = gov.check(intent.clone(), &ctx, time);
                    if state_before != TradingState::Active {
                        prop_assert!(result.is_err(), "opening approved while {state_before}");
                    }
                    if let Ok(approved) = result {
                        let Contract::Option(option) = &approved.intent().contract else {
                            unreachable!("only puts are approved to open")
                        };
                        let new = ShortPutExposure {
                            contract: option.clone(),
                            sector: Some(sector(i).into()),
                            contracts,
                            mark: intent.limit_price,
                            underlying_price: underlying,
                            implied_vol: 0.35,
                        };
                        assert_book_within_limits(&limits, &ctx, &new, gov.state())?;
                        if fills {
                            ctx.positions.push(new);
                            ctx.opened_today += 1;
                        }
                    }
                }
                Step::Close { index } => {
                    if let Some(p) = ctx.positions.get(index).cloned() {
                        let i: usize = p.contract.underlying.as_str()[1..].parse().unwrap();
                        let intent = close(i, p.contracts);
                        prop_assert!(gov.check(intent, &ctx, time).is_ok(), "close blocked");
                        ctx.positions.remove(index);
                    }
                }
                Step::ApiErrors(k) => ctx.api_errors_last_hour += k,
                Step::HourPasses => ctx.api_errors_last_hour = 0,
                Step::Cycle => {
                    gov.on_cycle(&ctx, time);
                    let change = risk::measures::daily_change(
                        ctx.session_start.net_liquidation,
                        ctx.account.net_liquidation,
                    );
                    if change <= limits.max_daily_loss
                        || ctx.api_errors_last_hour >= limits.max_api_errors_per_hour
                    {
                        prop_assert_eq!(gov.state(), TradingState::Halted);
                    }
                }
                Step::Resume => { gov.resume(time, "operator:test", "resume"); }
                Step::EmergencyHalt => { gov.emergency_halt(time, "operator:test", "stop"); }
                Step::NewSession => {
                    ctx.session_start = ctx.account.clone();
                    ctx.opened_today = 0;
                }
            }
        }
    }
}

/// Invariant 1, recomputed from the context and the new position.
fn assert_book_within_limits(
    l: &RiskLimits,
    ctx: &risk::RiskContext,
    new: &ShortPutExposure,
    state: TradingState,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(state, TradingState::Active);
    let nl = ctx.account.net_liquidation.cents() as f64;
    let change = risk::measures::daily_change(
        ctx.session_start.net_liquidation,
        ctx.account.net_liquidation,
    );
    prop_assert!(change > l.max_daily_loss);
    prop_assert!(ctx.api_errors_last_hour < l.max_api_errors_per_hour);
    prop_assert!((ctx.positions.len() as i64) < l.max_open_positions);
    prop_assert!(ctx.opened_today < l.max_positions_per_day);
    let loss = sizing_loss(new.mark, new.contracts, 100, l.stop_loss_multiple);
    prop_assert!(loss.to_f64() <= -l.max_position_loss);
    let total: Money = ctx.positions.iter().map(reg_t).sum::<Money>() + reg_t(new);
    prop_assert!(total.cents() as f64 / nl <= l.max_margin_utilization + RATIO_TOLERANCE);
    let in_sector: Money = ctx
        .positions
        .iter()
        .chain([new])
        .filter(|p| p.sector == new.sector)
        .map(reg_t)
        .sum();
    let base = (total.cents() as f64).max(nl * l.max_margin_utilization);
    prop_assert!(in_sector.cents() as f64 / base <= l.max_sector_concentration + RATIO_TOLERANCE);
    for p in &ctx.positions {
        prop_assert!(p.contract.underlying != new.contract.underlying);
        let rho = correlation(
            &p.contract.underlying,
            &ctx.returns[&new.contract.underlying],
            &ctx.returns[&p.contract.underlying],
            l.correlation_lookback_days,
            l.min_history_days,
        )
        .unwrap();
        prop_assert!(rho <= l.max_correlation + RATIO_TOLERANCE);
    }
    let book: Vec<VarPosition> = ctx
        .positions
        .iter()
        .chain([new])
        .map(|p| VarPosition {
            contract: p.contract.clone(),
            contracts: p.contracts,
            underlying_price: p.underlying_price,
            implied_vol: p.implied_vol,
        })
        .collect();
    let var = historical_var_95(
        &book,
        &ctx.returns,
        now().date_naive(),
        ctx.risk_free_rate,
        l.var_lookback_days,
        l.min_history_days,
    )
    .unwrap();
    prop_assert!(var.cents() as f64 / nl <= l.max_portfolio_var_95 + RATIO_TOLERANCE);
    Ok(())
}
