#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Parameters by name: what experiments and the optimizer change.

use core_domain::Strategy;
use strategy_naked_put::{NakedPutParams, NakedPutStrategy};

#[test]
fn test_parameters_by_name_round_trip_and_are_checked() {
    let s = NakedPutStrategy::new(NakedPutParams::default()).unwrap();
    let p = s.parameters();
    assert_eq!(p["otm_min"], 0.15);
    assert_eq!(p["dte_max"], 14.0);
    let t = s.with_parameter("otm_min", 0.17).unwrap();
    assert_eq!(t.parameters()["otm_min"], 0.17);
    assert_eq!(t.parameters()["otm_max"], 0.20);
    // Whole days.
    assert_eq!(
        s.with_parameter("dte_min", 6.6).unwrap().parameters()["dte_min"],
        7.0
    );
    // Unknown names and impossible searches are refused with the reason.
    let e = s.with_parameter("gamma", 1.0).err().unwrap();
    assert!(e.contains("otm_min"), "{e}");
    assert!(s.with_parameter("otm_min", 0.5).is_err(), "min above max");
}

#[test]
fn test_exploration_contracts_widen_the_search_range_by_the_band() {
    use chrono::{NaiveDate, TimeZone, Utc};
    use core_domain::{OptionChain, OptionContract, Price, Symbol};
    let s = NakedPutStrategy::new(NakedPutParams::default()).unwrap();
    let day = |d: u32| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
    // Price 100 on 2024-01-09 (16:00 New York): strikes 70..100, expiries
    // 3 to 21 days out.
    let chain = OptionChain {
        underlying: Symbol::new("XYZ").unwrap(),
        underlying_con_id: None,
        expirations: vec![
            day(12),
            day(14),
            day(16),
            day(19),
            day(23),
            day(26),
            day(30),
        ],
        strikes: (70..=100).map(|k| Price::from_cents(k * 100)).collect(),
        multiplier: 100,
    };
    let time = Utc.with_ymd_and_hms(2024, 1, 9, 21, 0, 0).unwrap();
    let price = Price::from_cents(10_000);
    let sym = Symbol::new("XYZ").unwrap();
    let keys = |v: Vec<OptionContract>| -> Vec<(i64, i64)> {
        v.iter()
            .map(|c| {
                (
                    (c.expiry - day(9)).num_days(),
                    c.strike.to_f64().round() as i64,
                )
            })
            .collect()
    };
    let range = keys(s.contracts_of_interest(&sym, price, &chain, time));
    let band = keys(s.exploration_contracts(&sym, price, &chain, time, 0.20));
    // OTM 15–20% (strikes 80..=85), DTE 7–14: the range.
    assert!(!range.is_empty());
    assert!(
        range
            .iter()
            .all(|(d, k)| (7..=14).contains(d) && (80..=85).contains(k))
    );
    // Widened by 20%: OTM 12–24% (strikes 76..=88), DTE 5–17 (⌊5.6⌋, ⌈16.8⌉).
    assert!(
        band.iter()
            .all(|(d, k)| (5..=17).contains(d) && (76..=88).contains(k))
    );
    assert!(
        band.contains(&(5, 76)) && band.contains(&(17, 88)),
        "{band:?}"
    );
    assert!(range.iter().all(|c| band.contains(c)));
    // No band: the range itself.
    assert_eq!(
        keys(s.exploration_contracts(&sym, price, &chain, time, 0.0)),
        range
    );
}
