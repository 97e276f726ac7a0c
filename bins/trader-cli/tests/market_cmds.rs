//! `trader-cli chain` and `trader-cli calibrate` through the binary, in a
//! fresh directory (default settings).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::{Command, Output};

use serde_json::Value;

fn cli(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("TRADER_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run trader-cli")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn test_chain_json_lists_the_puts_of_an_expiry_in_dollars() {
    let v = json_of(&cli(&[
        "chain",
        "lly",
        "--date",
        "2020-04-20",
        "--expiry",
        "2020-05-01",
        "--json",
    ]));
    assert_eq!(v["symbol"], "LLY");
    assert_eq!(v["days_to_expiry"], 11);
    let spot = v["spot_usd"].as_f64().unwrap();
    assert!(spot > 100.0 && spot < 200.0, "{spot}");
    let real = v["real_iv_3m_previous_close"].as_f64().unwrap();
    assert!((real - 0.307).abs() < 0.001, "{real}");
    let quotes = v["quotes"].as_array().unwrap();
    assert!(quotes.len() > 10);
    for q in quotes {
        assert_eq!(q["right"], "P");
        let (bid, ask) = (
            q["bid_usd"].as_f64().unwrap(),
            q["ask_usd"].as_f64().unwrap(),
        );
        assert!(bid >= 0.0 && ask > bid, "{q}");
        assert!(q["implied_vol"].as_f64().unwrap() > 0.0);
        assert!(q["open_interest"].as_i64().unwrap() >= 0);
        assert!(q["delta"].as_f64().unwrap() <= 0.0);
    }
    // The LLY 125 put (16.7% OTM, 11 days), quoted at 71% IV by
    // the legacy surface: now within 20 points of the real 3-month level.
    let k125 = quotes
        .iter()
        .find(|q| q["strike_usd"].as_f64() == Some(125.0))
        .unwrap();
    let iv = k125["implied_vol"].as_f64().unwrap();
    assert!(iv < real + 0.20, "{iv}");
}

#[test]
fn test_chain_refuses_an_unknown_symbol_and_an_unlisted_expiry() {
    let out = cli(&["chain", "ZZZZ", "--date", "2020-04-20"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the simulated market"));
    let out = cli(&[
        "chain",
        "LLY",
        "--date",
        "2020-04-20",
        "--expiry",
        "2020-04-21",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not listed"));
}

#[test]
fn test_calibrate_json_reports_the_fit_from_the_data() {
    let v = json_of(&cli(&["calibrate", "--json"]));
    let atm = &v["atm_91d"];
    assert!(atm["anchored"]["mae_points"].as_f64().unwrap() <= 1.5);
    assert!(atm["anchored"]["bias_points"].as_f64().unwrap().abs() <= 0.5);
    assert!(atm["model_held_out"]["n"].as_u64().unwrap() > 10_000);
    assert_eq!(atm["by_symbol"].as_array().unwrap().len(), 20);
    let held = v["index_skew"]["held_out_45_dte"].as_array().unwrap();
    assert_eq!(held.len(), 5);
    for b in held {
        assert!(b["error"]["mae_points"].as_f64().unwrap() <= 2.0, "{b}");
    }
}
