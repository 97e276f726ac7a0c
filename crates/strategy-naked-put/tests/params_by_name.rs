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
