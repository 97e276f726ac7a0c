//! Fixtures for tests of this crate and of the crates above it (feature
//! `stubs`). Hand-written values, not mocks. Never used by production code.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    Contract, Fill, MarketRegime, Money, OptionContract, Order, OrderIntent, OrderPurpose, Price,
    Right, Side, Symbol, TimeInForce, Trade, TradeStatus,
};

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn symbol(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// An AAPL $150 put expiring 2024-01-19.
pub fn aapl_put() -> OptionContract {
    OptionContract::us(
        symbol("AAPL"),
        Right::Put,
        Price::from_cents(15_000),
        date(2024, 1, 19),
    )
}

/// An open short put: 5 AAPL $150 puts sold at $0.40 on 2024-01-09.
pub fn open_trade() -> Trade {
    Trade {
        trade_id: "T-1".into(),
        symbol: symbol("AAPL"),
        sector: Some("Information Technology".into()),
        strike: Price::from_cents(15_000),
        expiration: date(2024, 1, 19),
        entry_date: date(2024, 1, 9),
        entry_time: DateTime::<Utc>::UNIX_EPOCH,
        entry_premium: Price::from_cents(40),
        contracts: 5,
        entry_underlying_price: Price::from_cents(18_000),
        margin_at_entry: Money::from_dollars(7_500),
        exit_date: None,
        exit_time: None,
        exit_premium: None,
        exit_reason: None,
        profit_loss: None,
        profit_pct: None,
        roi: None,
        days_held: None,
        otm_pct: 1.0 / 6.0,
        dte: 10,
        vix_at_entry: Some(13.5),
        market_regime: MarketRegime::BullQuiet,
        is_experiment: false,
        experiment_id: None,
        experiment_arm: None,
        commissions: Money::from_cents(325),
        status: TradeStatus::Open,
    }
}

/// A new sell-to-open order for 5 AAPL puts at $0.40.
pub fn sell_to_open(order_ref: &str) -> Order {
    Order::new(OrderIntent {
        order_ref: order_ref.into(),
        contract: Contract::Option(aapl_put()),
        side: Side::Sell,
        quantity: 5,
        limit_price: Price::from_cents(40),
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Open,
        trade_id: Some("T-1".into()),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    })
}

/// A fill of `quantity` on `order_ref` at $0.40 with IBKR's $0.65 a contract.
pub fn fill(order_ref: &str, exec_id: &str, quantity: i64) -> Fill {
    Fill {
        exec_id: exec_id.into(),
        order_ref: order_ref.into(),
        contract: Contract::Option(aapl_put()),
        side: Side::Sell,
        quantity,
        price: Price::from_cents(40),
        commission: Money::from_cents(65 * quantity),
        time: DateTime::<Utc>::UNIX_EPOCH,
    }
}
