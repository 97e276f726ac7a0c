//! trader-cli as a user runs it: in a fresh directory, through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::{Command, Output};

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args(args)
        .current_dir(dir)
        .env_remove("TRADER_CONFIG")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RUST_LOG")
        .output()
        .expect("run trader-cli")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn test_config_check_with_three_mistakes_lists_all_three_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trader.toml"),
        "[strategy]\nposition_size = \"five\"\n\n[risk]\nmax_daily_loss = 0.02\nmax_drawdown = 0.1\n",
    )
    .unwrap();
    let out = cli(dir.path(), &["config", "check"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains("strategy.position_size: expected a whole number"),
        "{err}"
    );
    assert!(
        err.contains("risk.max_daily_loss: must be between -1 and 0"),
        "{err}"
    );
    assert!(err.contains("risk.max_drawdown: unknown key"), "{err}");

    let out = cli(dir.path(), &["config", "check", "--json"]);
    let (json, _) = text(&out);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 3);
}

#[test]
fn test_init_then_status_then_init_again_keeps_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["init"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(dir.path().join("trader.toml").exists());
    assert!(dir.path().join("data/trader.db").exists());

    let out = cli(dir.path(), &["config", "check"]);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = cli(dir.path(), &["status"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("trading     active"), "{stdout}");
    assert!(stdout.contains("0 open, 0 closed"), "{stdout}");

    let out = cli(dir.path(), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(v["broker"]["trading_mode"], "paper");

    std::fs::write(
        dir.path().join("trader.toml"),
        "[risk]\nmax_positions_per_day = 3\n",
    )
    .unwrap();
    let out = cli(dir.path(), &["init"]);
    assert!(out.status.success());
    let kept = std::fs::read_to_string(dir.path().join("trader.toml")).unwrap();
    assert_eq!(kept, "[risk]\nmax_positions_per_day = 3\n");

    let out = cli(dir.path(), &["audit", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "one audit entry per init");
}

#[test]
fn test_status_before_init_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["status"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("trader-cli init"), "{err}");
}

#[test]
fn test_sim_gateway_refuses_a_bad_fault_and_serves_the_tws_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["sim-gateway", "--fault", "explode now"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--fault \"explode now\""), "{err}");

    // On free ports: it announces its address, answers the TWS handshake
    // ("API\0" + length-prefixed version range) with a server version, and
    // stops on Ctrl-C (SIGINT).
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args([
            "sim-gateway",
            "--port",
            "0",
            "--control-port",
            "0",
            "--from",
            "2021-03-01",
            "--to",
            "2021-03-05",
        ])
        .current_dir(dir.path())
        .env_remove("TRADER_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("TWS API on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let versions = b"v213..226";
    let mut hello = b"API\0".to_vec();
    hello.extend((versions.len() as u32).to_be_bytes());
    hello.extend(versions);
    s.write_all(&hello).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let version: u32 = reply.split('\0').next().unwrap().parse().unwrap();
    assert!((213..=226).contains(&version), "{reply:?}");
    drop(s);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn test_run_says_the_engine_is_the_daemon_and_prints_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["run"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not implemented here"), "{err}");
    assert!(err.contains("\n  traderd\n"), "{err}");
    let out = cli(dir.path(), &["--config", "conf/prod.toml", "run"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("  traderd --config conf/prod.toml\n"), "{err}");
}

#[test]
fn test_config_show_redacts_the_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args(["config", "show"])
        .current_dir(dir.path())
        .env("ANTHROPIC_API_KEY", "sk-very-secret")
        .env("TRADER__RISK__MAX_CORRELATION", "0.6")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("sk-very-secret"));
    assert!(
        stdout.contains("ANTHROPIC_API_KEY: set (redacted)"),
        "{stdout}"
    );
    assert!(stdout.contains("max_correlation = 0.6"), "{stdout}");
    assert!(stdout.contains("TRADER__RISK__MAX_CORRELATION"), "{stdout}");
}

#[test]
fn test_completions_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["completions", "bash"]);
    assert!(out.status.success());
    assert!(text(&out).0.contains("trader-cli"));
}

fn cli_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trader-cli"))
        .args(args)
        .current_dir(dir)
        .env_remove("TRADER_CONFIG")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run trader-cli")
}

#[test]
fn test_a_named_config_file_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere/prod.toml");
    let missing = missing.to_str().unwrap();
    let expected = format!(
        "config file {missing} not found; run `trader-cli init --config {missing}` to write a commented one"
    );
    for args in [
        vec!["--config", missing, "config", "check"],
        vec!["config", "show", "--config", missing],
        vec!["--config", missing, "status"],
    ] {
        let out = cli(dir.path(), &args);
        let (stdout, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{err}");
        assert!(err.contains(&expected), "{args:?}: {err}");
    }
    let out = cli_env(
        dir.path(),
        &["config", "check"],
        &[("TRADER_CONFIG", missing)],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&expected), "{err}");

    let out = cli(
        dir.path(),
        &["config", "check", "--json", "--config", missing],
    );
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(out.status.code(), Some(1));

    // Without a name, a missing trader.toml still means the defaults.
    let out = cli(dir.path(), &["config", "check"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("not found: defaults"));
}

#[test]
fn test_init_writes_the_named_config_file_which_then_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["init", "--config", "conf/prod.toml"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(dir.path().join("conf/prod.toml").exists());
    assert!(!dir.path().join("trader.toml").exists());

    let out = cli(
        dir.path(),
        &["--config", "conf/prod.toml", "config", "check"],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("ok: conf/prod.toml"), "{stdout}");
    let out = cli_env(
        dir.path(),
        &["config", "check"],
        &[("TRADER_CONFIG", "conf/prod.toml")],
    );
    assert!(out.status.success(), "{:?}", text(&out));

    let out = cli_env(
        dir.path(),
        &["init"],
        &[("TRADER_CONFIG", "conf/other.toml")],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(dir.path().join("conf/other.toml").exists());
}

#[test]
fn test_config_check_reports_list_and_unsigned_mistakes_with_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trader.toml"),
        r#"
[risk]
max_daily_loss = 0.5

[broker.sim.exchange]
seed = -1

[[broker.sim.chain.planted_edges]]
scope = { kind = "bogus" }
extra_vol = 0.05

[[broker.sim.chain.planted_edges]]
scope = { kind = "otm_bucket", min = 0.3, max = 0.2 }
extra_vol = 0.05
"#,
    )
    .unwrap();
    let out = cli(dir.path(), &["config", "check"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
    for line in [
        "broker.sim.chain.planted_edges[0].scope.kind: unknown variant `bogus`, expected one of `sector`, `otm_bucket`, `weekday`",
        "broker.sim.exchange.seed: expected a whole number ≥ 0, got the number -1",
        "broker.sim.chain.planted_edges[1].scope.min: must not exceed",
        "risk.max_daily_loss: must be between -1 and 0",
    ] {
        assert!(err.contains(line), "{line} missing from {err}");
    }
    assert!(!err.contains("(configuration)"), "{err}");
}

#[test]
fn test_environment_sets_text_lists_and_keeps_text_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_env(
        dir.path(),
        &["config", "show", "--json"],
        &[
            ("TRADER__BROKER__SIM__CHAIN__PENNY_EVERYWHERE", "AAPL,MSFT"),
            ("TRADER__BROKER__IBKR__ACCOUNT", "0123"),
        ],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let s = &v["settings"]["broker"];
    assert_eq!(
        s["sim"]["chain"]["penny_everywhere"],
        serde_json::json!(["AAPL", "MSFT"])
    );
    assert_eq!(s["ibkr"]["account"], "0123");

    let out = cli_env(
        dir.path(),
        &["config", "check"],
        &[("TRADER__BROKER__SIM__CHAIN__PLANTED_EDGES", "x")],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("set planted_edges in the file"), "{err}");
}

#[test]
fn test_emergency_stop_and_resume_are_recorded_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cli(dir.path(), &["init"]).status.success());
    let out = cli(
        dir.path(),
        &["emergency-stop", "--reason", "VIX spike", "--flatten"],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("queued as control request #1"), "{stdout}");
    assert!(
        stdout.contains("closes every position") && stdout.contains("at its next cycle"),
        "{stdout}"
    );
    let (status, _) = text(&cli(dir.path(), &["status"]));
    assert!(status.contains("trading     halted"), "{status}");
    assert!(status.contains("VIX spike"), "{status}");
    assert!(
        status.contains("engine      has not run on this database; start it with `traderd`"),
        "{status}"
    );
    assert!(status.contains("requests    1 pending"), "{status}");
    assert!(
        status.contains("#1 emergency stop + flatten by trader-cli:"),
        "{status}"
    );

    // The request is queued for the engine, which carries it out.
    let db = dir.path().join("data/trader.db");
    let pending = store::Store::open(db.to_str().unwrap())
        .unwrap()
        .pending_control_requests()
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].action, store::ControlAction::EmergencyStop);
    assert!(pending[0].flatten);
    assert_eq!(pending[0].reason, "VIX spike");
    assert!(pending[0].actor.starts_with("trader-cli:"), "{pending:?}");

    let out = cli(dir.path(), &["resume", "--reason", "calm again", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["previous_state"], "halted");
    assert_eq!(v["request_id"], 2);
    assert_eq!(v["control_request"]["action"], "resume");
    let (status, _) = text(&cli(dir.path(), &["status"]));
    assert!(status.contains("trading     active"), "{status}");
    let v: serde_json::Value =
        serde_json::from_slice(&cli(dir.path(), &["status", "--json"]).stdout).unwrap();
    assert!(v["engine"].is_null(), "{v}");
    let pending = v["pending_control_requests"].as_array().unwrap();
    let actions: Vec<&str> = pending
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["emergency_stop", "resume"]);
    let audit: serde_json::Value =
        serde_json::from_slice(&cli(dir.path(), &["audit", "--json"]).stdout).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"emergency_stop") && actions.contains(&"resume"),
        "{actions:?}"
    );
    let out = cli(dir.path(), &["emergency-stop", "--reason", "  "]);
    assert_eq!(out.status.code(), Some(1));
}

/// A short backtest over real history: it trades, exits, keeps every risk
/// rule (read back from its database), writes the report, and the same
/// seed gives the same trades.
#[test]
fn test_backtest_trades_keeps_the_rules_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str| {
        let o = cli(
            dir.path(),
            &[
                "--json",
                "backtest",
                "--from",
                "2020-06-01",
                "--to",
                "2020-08-31",
                "--seed",
                "7",
                "--out",
                out,
            ],
        );
        let (stdout, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let a = run("a");
    let closed = a["summary"]["closed_trades"].as_u64().unwrap();
    assert!(closed >= 3, "{a}");
    assert_eq!(a["rules"]["violations"].as_array().unwrap().len(), 0);
    assert!(dir.path().join("a/report.html").exists());
    assert!(dir.path().join("a/report.md").exists());
    let b = run("b");
    assert_eq!(
        a["summary"], b["summary"],
        "same config and seed, same results"
    );
    let trades = |sub: &str| {
        let db = dir.path().join(sub).join("backtest.db");
        let store = store::Store::open(db.to_str().unwrap()).unwrap();
        use core_domain::TradeRepository;
        let mut t = store.trades(&core_domain::TradeFilter::default()).unwrap();
        t.sort_by(|x, y| x.trade_id.cmp(&y.trade_id));
        t
    };
    assert_eq!(trades("a"), trades("b"));
}

/// A configuration whose database is `db`.
fn config_for(dir: &Path, db: &Path) -> std::path::PathBuf {
    let path = dir.join("backtest.toml");
    std::fs::write(&path, format!("[database]\nurl = \"{}\"\n", db.display())).unwrap();
    path
}

/// After a short backtest, `status`, `positions` and `report` read what
/// the engine left in its database; `emergency-stop` queues a request
/// there.
#[test]
fn test_status_positions_and_report_read_the_engine_from_a_backtest_database() {
    let dir = tempfile::tempdir().unwrap();
    let o = cli(
        dir.path(),
        &[
            "--json",
            "backtest",
            "--from",
            "2020-06-01",
            "--to",
            "2020-08-31",
            "--seed",
            "7",
            "--out",
            "bt",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let db = dir.path().join("bt/backtest.db");
    let config = config_for(dir.path(), &db);
    let config = config.to_str().unwrap();
    let (all, open) = {
        use core_domain::TradeRepository;
        let store = store::Store::open(db.to_str().unwrap()).unwrap();
        let all = store.trades(&core_domain::TradeFilter::default()).unwrap();
        let open: Vec<_> = all
            .iter()
            .filter(|t| t.status == core_domain::TradeStatus::Open)
            .cloned()
            .collect();
        (all, open)
    };
    let closed = all.len() - open.len();
    assert!(closed >= 3, "{all:?}");

    // shadow: every evaluated put followed to its outcome, apart from P&L.
    let out = cli(dir.path(), &["--config", config, "shadow", "--limit", "5"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("never P&L"), "{stdout}");
    assert!(stdout.contains("skipped"), "{stdout}");
    let out = cli(dir.path(), &["--config", config, "--json", "shadow"]);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert!(!v["summary"].as_array().unwrap().is_empty(), "{v}");

    // status: the engine's last cycle, market, actions, events, book.
    let out = cli(dir.path(), &["--config", config, "status"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout.contains("engine      last cycle 2020-08-31 20:00 UTC (cycle "),
        "{stdout}"
    );
    for line in [
        "  market      regime ",
        "  goals       sell 15-20% OTM puts",
        "  actions     latest 5 of ",
        "  events      latest ",
        "profit_target",
        "  requests    none pending",
    ] {
        assert!(stdout.contains(line), "{line} missing from {stdout}");
    }
    assert!(
        stdout.contains(&format!(
            "  book        {} open, unrealized P&L",
            open.len()
        )),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&cli(dir.path(), &["--config", config, "status", "--json"]).stdout)
            .unwrap();
    assert!(v["engine"]["cycles"].as_u64().unwrap() > 1000, "{v}");
    assert!(
        v["engine"]["last_cycle"]
            .as_str()
            .unwrap()
            .starts_with("2020-08-31"),
        "{v}"
    );
    assert_eq!(v["goals"].as_array().unwrap().len(), 4);
    assert_eq!(v["monitor"]["position_count"], open.len());

    // positions: the monitor's view, one row per open trade.
    let out = cli(dir.path(), &["--config", config, "positions"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout.contains("open position(s) as the engine last saw them at 2020-08-31"),
        "{stdout}"
    );
    // The table (with its DTE and P&L columns) when positions are open.
    assert!(
        open.is_empty() || (stdout.contains("DTE") && stdout.contains("P&L")),
        "{stdout}"
    );
    for t in &open {
        assert!(
            stdout.contains(&t.trade_id),
            "{} missing: {stdout}",
            t.trade_id
        );
    }
    let v: serde_json::Value = serde_json::from_slice(
        &cli(dir.path(), &["--config", config, "positions", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["source"], "engine_monitor");
    assert_eq!(v["positions"].as_array().unwrap().len(), open.len());

    // report: from the database alone; its closed trades are the database's.
    let out = cli(dir.path(), &["--config", config, "report", "--out", "rep"]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        stdout.contains("Performance 2020-06-01 to 2020-08-31"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  trades            {closed} closed, {} open",
            open.len()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("rep/report.html"), "{stdout}");
    assert!(dir.path().join("rep/report.html").exists());
    let md = std::fs::read_to_string(dir.path().join("rep/report.md")).unwrap();
    assert!(
        md.contains(&format!("| Closed trades | {closed} |")),
        "{md}"
    );

    // A window counts the trades entered in it (New York dates).
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2020, 8, 10).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2020, 8, 21).unwrap(),
    );
    let out = cli(
        dir.path(),
        &[
            "--config",
            config,
            "--json",
            "report",
            "--from",
            "2020-08-10",
            "--to",
            "2020-08-21",
            "--out",
            "rep2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = all
        .iter()
        .filter(|t| t.entry_date >= from && t.entry_date <= to)
        .count();
    assert!(expected >= 1);
    assert_eq!(v["trades"], expected, "{v}");
    assert_eq!(v["period"]["from"], "2020-08-10");

    // An emergency stop on this database is queued for the engine.
    let out = cli(
        dir.path(),
        &["--config", config, "emergency-stop", "--reason", "test"],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let (stdout, _) = text(&cli(dir.path(), &["--config", config, "status"]));
    assert!(stdout.contains("requests    1 pending"), "{stdout}");
}

#[test]
fn test_report_of_a_database_without_trades_is_written_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["report"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("trader-cli init"), "{:?}", text(&out));
    assert!(cli(dir.path(), &["init"]).status.success());
    let out = cli(dir.path(), &["report"]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        stdout.contains("the database has no trades yet"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(dir.path().join("reports/report.md")).unwrap();
    assert!(md.contains("| Closed trades | 0 |"), "{md}");
    let out = cli(
        dir.path(),
        &["report", "--from", "2020-02-01", "--to", "2020-01-01"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("swap them"), "{:?}", text(&out));

    // Positions before the engine ran: the broker's, and it says so.
    let out = cli(dir.path(), &["positions"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("the engine has not run"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_slice(&cli(dir.path(), &["positions", "--json"]).stdout).unwrap();
    assert_eq!(v["source"], "broker");
}

/// The learning commands on a fresh database: metrics, and an optimizer
/// run whose backtests are real (a tiny budget) — a proposal or the reasons
/// there is none, never a change of the configuration.
#[test]
fn test_analyze_and_optimize_drive_the_learning_engine() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cli(dir.path(), &["init"]).status.success());
    let out = cli(dir.path(), &["analyze"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("baseline"), "{stdout}");
    assert!(stdout.contains("experiments: 0 run"), "{stdout}");
    let before = std::fs::read_to_string(dir.path().join("trader.toml")).unwrap();
    let out = cli(
        dir.path(),
        &[
            "--json",
            "optimize",
            "--from",
            "2020-01-02",
            "--to",
            "2020-03-31",
            "--folds",
            "1",
            "--budget",
            "10",
            "--starts",
            "1",
            "--threads",
            "2",
        ],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["backtests"].as_u64().unwrap() >= 10, "{v}");
    let report = &v["report"];
    assert!(
        report["proposal"].is_object() || !report["rejections"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let after = std::fs::read_to_string(dir.path().join("trader.toml")).unwrap();
    assert_eq!(
        before, after,
        "the optimizer never changes the configuration"
    );
}
