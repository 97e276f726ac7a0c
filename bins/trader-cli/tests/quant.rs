//! `trader-cli price`, `iv` and `margin` against the golden files and the
//! larger held-out sets (QuantLib / scipy / mpmath), through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn golden(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/pricing/tests/golden")
        .join(name);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn cli(args: &[String]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn num(v: &Value) -> String {
    format!("{}", v.as_f64().unwrap())
}

fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got - want).abs() <= abs.max(rel * want.abs())
}

fn price_args(c: &Value, right: &str) -> Vec<String> {
    vec![
        "price".into(),
        "--right".into(),
        right.into(),
        "--spot".into(),
        num(&c["spot"]),
        "--strike".into(),
        num(&c["strike"]),
        "--rate".into(),
        num(&c["rate"]),
        "--div".into(),
        num(&c["dividend_yield"]),
        "--vol".into(),
        num(&c["vol"]),
        "--days".into(),
        num(&c["days"]),
    ]
}

#[test]
fn test_price_matches_every_golden_and_held_out_european_case() {
    let mut n = 0;
    for file in ["bsm_european.json", "holdout_bsm_european.json"] {
        for c in golden(file) {
            let right = if c["right"] == "P" { "put" } else { "call" };
            let got = cli(&price_args(&c, right));
            for field in ["price", "delta", "gamma", "vega", "theta", "rho"] {
                let (g, w) = (got[field].as_f64().unwrap(), c[field].as_f64().unwrap());
                assert!(
                    close(g, w, 1e-8, 1e-10),
                    "{file} {field}: {g} vs {w} for {c}"
                );
            }
            n += 1;
        }
    }
    assert!(n > 500, "{n} cases");
}

#[test]
fn test_iv_recovers_the_volatility_of_every_golden_and_held_out_price() {
    let cases: Vec<Value> = golden("bsm_european.json")
        .into_iter()
        .chain(golden("holdout_bsm_european.json"))
        .collect();
    for c in cases {
        let right = if c["right"] == "P" { "put" } else { "call" };
        // Prices whose last bit moves the vol by more than 1e-11 (deep in the
        // money, where the time value drowns in the rounding of the
        // intrinsic value) carry too little information: the pricing crate's
        // own tests check that those reprice instead.
        let (price, vega, vol) = (
            c["price"].as_f64().unwrap(),
            c["vega"].as_f64().unwrap(),
            c["vol"].as_f64().unwrap(),
        );
        // QuantLib's own prices below ~1e-9 of spot are not accurate enough
        // to invert (see the pricing crate's held-out notes).
        let spot = c["spot"].as_f64().unwrap();
        if price <= 1e-9 * spot || price * f64::EPSILON / vega.max(f64::MIN_POSITIVE) > 1e-11 * vol
        {
            continue;
        }
        let mut args = price_args(&c, right);
        args[0] = "iv".into();
        let vol_at = args.iter().position(|a| a == "--vol").unwrap();
        args.drain(vol_at..vol_at + 2);
        args.extend(["--price".to_string(), num(&c["price"])]);
        let got = cli(&args);
        let (g, w) = (got["vol"].as_f64().unwrap(), c["vol"].as_f64().unwrap());
        assert!(close(g, w, 1e-8, 1e-10), "iv {g} vs {w} for {c}");
        assert!(got["price_evaluations"].as_u64().unwrap() <= 3);
    }
}

#[test]
fn test_american_price_matches_the_golden_and_held_out_puts_to_1e_3() {
    for (file, field) in [
        ("american_put.json", "price"),
        ("holdout_american_put.json", "price_high_precision"),
    ] {
        for c in golden(file) {
            let mut args = price_args(&c, "put");
            args.push("--american".into());
            let got = cli(&args);
            let (g, w) = (
                got["american_price"].as_f64().unwrap(),
                c[field].as_f64().unwrap(),
            );
            assert!((g - w).abs() <= 1e-3, "{file}: {g} vs {w} for {c}");
        }
    }
}

#[test]
fn test_margin_matches_every_case_to_the_cent() {
    for file in ["short_put_margin.json", "holdout_short_put_margin.json"] {
        for c in golden(file) {
            let got = cli(&[
                "margin".into(),
                "--underlying".into(),
                num(&c["underlying"]),
                "--strike".into(),
                num(&c["strike"]),
                "--premium".into(),
                num(&c["premium"]),
                "--contracts".into(),
                num(&c["contracts"]),
            ]);
            let want = (c["requirement"].as_f64().unwrap() * 100.0).round() as i64;
            assert_eq!(
                got["requirement_cents"].as_i64().unwrap(),
                want,
                "{file}: {c}"
            );
        }
    }
}

#[test]
fn test_bad_input_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args([
            "iv", "--price", "0.001", "--right", "put", "--spot", "50", "--strike", "60", "--days",
            "10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("below the intrinsic value"), "{err}");
}
