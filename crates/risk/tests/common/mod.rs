//! Hand-written fixtures for the risk tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use core_domain::{
    AccountSnapshot, Contract, Money, OptionContract, OrderIntent, OrderPurpose, Price, Right,
    Side, Symbol, TimeInForce,
};
use risk::{OrderMarket, RiskContext, RiskLimits, ShortPutExposure};

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 9, 15, 0, 0).unwrap()
}

pub fn expiry() -> NaiveDate {
    now().date_naive() + Duration::days(10)
}

pub fn sym(i: usize) -> Symbol {
    Symbol::new(format!("S{i}")).unwrap()
}

pub fn account(net_liq_cents: i64, initial_margin_cents: i64) -> AccountSnapshot {
    AccountSnapshot {
        time: now(),
        account: "DU1".into(),
        net_liquidation: Money::from_cents(net_liq_cents),
        cash: Money::from_cents(net_liq_cents),
        excess_liquidity: Money::from_cents(net_liq_cents - initial_margin_cents),
        initial_margin: Money::from_cents(initial_margin_cents),
        maintenance_margin: Money::from_cents(initial_margin_cents),
        realized_pnl: Money::ZERO,
        unrealized_pnl: Money::ZERO,
    }
}

/// A put at 90% of an underlying at $100.
pub fn put(i: usize) -> OptionContract {
    OptionContract::us(sym(i), Right::Put, Price::from_cents(9_000), expiry())
}

pub fn exposure(i: usize, sector: &str, contracts: i64) -> ShortPutExposure {
    ShortPutExposure {
        contract: put(i),
        sector: Some(sector.into()),
        contracts,
        mark: Price::from_cents(50),
        underlying_price: Price::from_cents(10_000),
        implied_vol: 0.3,
    }
}

pub fn open(i: usize, contracts: i64, premium: Price) -> OrderIntent {
    OrderIntent {
        order_ref: format!("open-S{i}"),
        contract: Contract::Option(put(i)),
        side: Side::Sell,
        quantity: contracts,
        limit_price: premium,
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Open,
        trade_id: None,
        created_at: now(),
    }
}

pub fn close(i: usize, contracts: i64) -> OrderIntent {
    OrderIntent {
        order_ref: format!("close-S{i}"),
        side: Side::Buy,
        purpose: OrderPurpose::Close,
        ..open(i, contracts, Price::from_cents(80))
    }
}

/// A deterministic pseudo-random series (xorshift), ~1.5% daily vol.
pub fn noise(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.05
        })
        .collect()
}

/// Independent return histories for S0..S(n-1), 250 days each.
pub fn returns(n: usize) -> BTreeMap<Symbol, Vec<f64>> {
    (0..n).map(|i| (sym(i), noise(i as u64 + 1, 250))).collect()
}

/// Every limit wide open except the structural ones, so a test can tighten
/// one limit and see only it.
pub fn loose() -> RiskLimits {
    RiskLimits {
        max_open_positions: 1_000,
        max_positions_per_day: 1_000,
        max_position_loss: -1_000_000.0,
        max_portfolio_var_95: 1.0,
        max_sector_concentration: 1.0,
        max_correlation: 1.0,
        max_margin_utilization: 1.0,
        ..RiskLimits::default()
    }
}

/// $100,000 account, no positions, returns for 30 symbols, order market
/// facts for an underlying at $100.
pub fn context() -> RiskContext {
    let mut ctx = RiskContext::new(account(10_000_000, 0), account(10_000_000, 0));
    ctx.returns = returns(30);
    ctx.order_market = Some(OrderMarket {
        sector: Some("Energy".into()),
        underlying_price: Price::from_cents(10_000),
        implied_vol: 0.3,
    });
    ctx.risk_free_rate = 0.04;
    ctx
}
