//! The live path's operations, end to end with the built `traderd`: a
//! paper-mode daemon facing a live account refuses to trade (and places
//! nothing), and a second daemon on one database is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn traderd() -> std::path::PathBuf {
    e2e::binary("traderd").expect("traderd is not built; run `cargo test --workspace`")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `trader-cli sim-gateway --account U1234567` (in process) and traderd
/// in paper mode against it: traderd refuses, names the account and what
/// to change, and places nothing. (Issue 12, defect 4: before, only the
/// port was checked.)
#[test]
fn test_traderd_in_paper_mode_refuses_a_live_account_and_places_nothing() {
    let rt = runtime();
    let from = chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap();
    let exchange = traderd::wiring::sim_exchange(
        &settings::Settings::default(),
        traderd::wiring::history().unwrap(),
        settings::Settings::default().broker.sim.chain.clone(),
        from,
        None,
    )
    .unwrap();
    let handle = rt
        .block_on(sim_gateway::SimGateway::start(
            sim_gateway::GatewayConfig {
                account: "U1234567".into(),
                from: Some(from),
                to: chrono::NaiveDate::from_ymd_opt(2021, 3, 5),
                ..sim_gateway::GatewayConfig::default()
            },
            exchange,
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trader.toml"),
        format!(
            "[logging]\nfile = false\n[broker]\nkind = \"ibkr\"\ntrading_mode = \"paper\"\n\
             [broker.ibkr]\nport = {}\nsim_control = \"{}\"\nconnect_attempts = 1\n\
             messages_per_second = 5000\n",
            handle.addr().port(),
            handle.control_addr().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(traderd())
        .args(["--to", "2021-03-05", "--quiet"])
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .env_remove("TRADER_CONFIG")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "traderd traded a live account: {text}"
    );
    assert!(text.contains("U1234567"), "names the account: {text}");
    assert!(text.contains("paper"), "says what to change: {text}");
    let placed = rt
        .block_on(core_domain::Broker::open_orders(handle.exchange().as_ref()))
        .unwrap();
    assert!(placed.is_empty(), "{placed:?}");
    assert!(handle.exchange().all_executions().is_empty());
    rt.block_on(handle.shutdown());
}

/// A second traderd on the same database is refused with a clear message
/// while the first runs. (Issue 12, defect 9: there was no lock.)
#[test]
fn test_a_second_traderd_on_one_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trader.toml"), "[logging]\nfile = false\n").unwrap();
    let spawn = |dir: &Path| {
        Command::new(traderd())
            .args([
                "--from",
                "2020-01-02",
                "--to",
                "2020-12-31",
                "--quiet",
                "--speed",
                "1",
            ])
            .current_dir(dir)
            .env("RUST_LOG", "error")
            .env_remove("TRADER_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn(dir.path());
    let lock = dir.path().join("data/trader.db.lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == first.id().to_string()) {
        assert!(
            Instant::now() < deadline,
            "the first traderd never took the lock"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first traderd ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = spawn(dir.path()).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(!second.status.success(), "two daemons on one database");
    assert!(text.contains("already running"), "{text}");
    assert!(
        text.contains(&first.id().to_string()),
        "names the holder: {text}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // a SIGKILL releases it: a restart is not blocked by a stale lock file
    let mut again = spawn(dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == again.id().to_string()) {
        assert!(Instant::now() < deadline, "the restart never took the lock");
        assert!(again.try_wait().unwrap().is_none(), "the restart ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    again.kill().unwrap();
    again.wait().unwrap();
}
