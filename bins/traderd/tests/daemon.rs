//! traderd as an operator starts it, in a fresh directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use core_domain::AuditRepository;

#[test]
fn test_traderd_records_its_start_and_exits_3_until_the_loop_exists() {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_traderd"))
        .current_dir(dir.path())
        .env_remove("TRADER_CONFIG")
        .env("TRADER__LOGGING__FILE", "false")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("nothing was traded"));
    let store =
        store::Store::open(&dir.path().join("data/trader.db").display().to_string()).unwrap();
    let audit = store.recent_audit(10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "daemon.start");
    assert_eq!(audit[0].outcome.as_deref(), Some("not_implemented"));
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
