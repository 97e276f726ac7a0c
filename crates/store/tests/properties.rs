//! Property tests: any representable amount, price and ratio survives the
//! database unchanged, and the stored ledger sums to the cent.
//!
//! Invariants:
//! 1. a trade with arbitrary (finite) money, price and ratio fields reads
//!    back equal to what was written;
//! 2. `ledger_balance` equals the exact integer sum of the appended amounts.

// Helpers outside #[test] functions panic on failure too: this is a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core_domain::stubs;
use core_domain::{AccountRepository, LedgerEntry, LedgerEntryKind, Money, Price, TradeRepository};
use proptest::prelude::*;
use store::Store;

/// Amounts up to ten trillion dollars either way, so sums cannot overflow.
const CENTS: std::ops::Range<i64> = -1_000_000_000_000_000..1_000_000_000_000_000;

fn ratio() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::NORMAL,
        prop::num::f64::SUBNORMAL,
        Just(0.0),
        -10.0f64..10.0,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn trade_numbers_round_trip_exactly(
        strike in 1i64..100_000_000,
        premium in 0i64..10_000_000,
        pl in CENTS,
        margin in CENTS,
        otm in ratio(),
        roi in proptest::option::of(ratio()),
        vix in proptest::option::of(ratio()),
        contracts in 1i64..10_000,
    ) {
        let store = Store::open_and_migrate(":memory:").unwrap();
        let mut t = stubs::open_trade();
        t.strike = Price::from_raw(strike);
        t.entry_premium = Price::from_raw(premium);
        t.exit_premium = Some(Price::from_raw(premium / 2));
        t.profit_loss = Some(Money::from_cents(pl));
        t.margin_at_entry = Money::from_cents(margin);
        t.otm_pct = otm;
        t.roi = roi;
        t.vix_at_entry = vix;
        t.contracts = contracts;
        store.insert_trade(&t).unwrap();
        prop_assert_eq!(store.trade(&t.trade_id).unwrap(), Some(t));
    }

    #[test]
    fn ledger_balance_is_the_exact_sum(amounts in proptest::collection::vec(CENTS, 0..40)) {
        let store = Store::open_and_migrate(":memory:").unwrap();
        let entries: Vec<LedgerEntry> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| LedgerEntry {
                time: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                kind: LedgerEntryKind::Deposit,
                amount: Money::from_cents(*a),
                reference: format!("r{i}"),
            })
            .collect();
        store.append_ledger(&entries).unwrap();
        let expected: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
        prop_assert_eq!(i128::from(store.ledger_balance().unwrap().cents()), expected);
    }
}
