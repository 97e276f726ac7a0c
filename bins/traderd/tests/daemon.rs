//! traderd as an operator starts it, in a fresh directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use core_domain::AuditRepository;

fn traderd(dir: &std::path::Path, from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_traderd"))
        .current_dir(dir)
        .env_remove("TRADER_CONFIG")
        .env("TRADER__LOGGING__FILE", "false")
        .env("TRADER__BROKER__SIM__REPLAY__FROM", from)
        .env("TRADER__BROKER__SIM__REPLAY__TO", to)
        .output()
        .unwrap()
}

#[test]
fn test_traderd_replays_and_records_its_start_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let run = traderd(dir.path(), "2020-01-02", "2020-02-28");
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        out.contains("paper-trading the simulated exchange"),
        "{out}"
    );
    assert!(out.contains("report"), "{out}");
    let store =
        store::Store::open(&dir.path().join("data/trader.db").display().to_string()).unwrap();
    let audit = store.recent_audit(100_000).unwrap();
    let start = audit.iter().find(|a| a.action == "daemon.start").unwrap();
    assert_eq!(start.outcome.as_deref(), Some("running"));
    assert!(audit.iter().any(|a| a.action == "daemon.stop"));
    assert!(audit.iter().any(|a| a.action == "engine.start"));
}

#[test]
fn test_a_database_holding_another_replay_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        traderd(dir.path(), "2020-01-02", "2020-01-31")
            .status
            .code(),
        Some(0)
    );
    let run = traderd(dir.path(), "2019-01-02", "2019-01-31");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("holds the replay"), "{err}");
    assert!(err.contains("database.url"), "{err}");
}

#[test]
fn test_the_ibkr_broker_with_nothing_listening_says_what_to_check() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_traderd"))
        .current_dir(dir.path())
        .env_remove("TRADER_CONFIG")
        .env("TRADER__LOGGING__FILE", "false")
        .env("TRADER__BROKER__KIND", "ibkr")
        .env("TRADER__BROKER__IBKR__PORT", port.to_string())
        .env("TRADER__BROKER__IBKR__CONNECT_ATTEMPTS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("TWS / IB Gateway"), "{err}");
}

#[test]
fn test_traderd_refuses_an_invalid_configuration_with_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_traderd"))
        .current_dir(dir.path())
        .env_remove("TRADER_CONFIG")
        .env("TRADER__RISK__MAX_MARGIN_UTILIZATION", "1.5")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("risk.max_margin_utilization"), "{err}");
    assert!(
        err.contains("TRADER__RISK__MAX_MARGIN_UTILIZATION"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created on a bad config"
    );
}

#[test]
fn test_traderd_refuses_a_named_config_file_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let by_flag = Command::new(env!("CARGO_BIN_EXE_traderd"))
        .args(["--config", "missing.toml"])
        .current_dir(dir.path())
        .env_remove("TRADER_CONFIG")
        .output()
        .unwrap();
    let by_env = Command::new(env!("CARGO_BIN_EXE_traderd"))
        .current_dir(dir.path())
        .env("TRADER_CONFIG", "missing.toml")
        .output()
        .unwrap();
    for run in [by_flag, by_env] {
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{err}");
        assert!(
            err.contains(
                "config file missing.toml not found; run `trader-cli init --config missing.toml`"
            ),
            "{err}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created without its config"
    );
}
