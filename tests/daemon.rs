//! `traderd`, the main job, as a user runs it: it paper-trades the
//! simulated exchange over real history, writes a report whose numbers
//! match its database, stops cleanly on SIGINT, and after SIGINT or
//! SIGKILL a restart continues without duplicating or losing a trade.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use core_domain::{AccountRepository, TradeFilter, TradeRepository};

const FROM: &str = "2020-05-01";
const TO: &str = "2020-08-31";

fn traderd() -> std::path::PathBuf {
    e2e::binary("traderd").expect("traderd is not built; run `cargo test --workspace`")
}

fn spawn(dir: &Path) -> Child {
    Command::new(traderd())
        .args(["--from", FROM, "--to", TO, "--quiet"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_to_end(dir: &Path) -> String {
    let out = spawn(dir).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn store(dir: &Path) -> store::Store {
    store::Store::open(dir.join("data/trader.db").to_str().unwrap()).unwrap()
}

/// (trade id, entry premium, exit premium, reason, P&L) of every trade.
fn trades(dir: &Path) -> Vec<String> {
    let mut t: Vec<String> = store(dir)
        .trades(&TradeFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| {
            format!(
                "{} {} {:?} {:?} {:?} {}",
                t.trade_id,
                t.entry_premium,
                t.exit_premium,
                t.exit_reason,
                t.profit_loss,
                t.contracts
            )
        })
        .collect();
    t.sort();
    t
}

fn count(dir: &Path, table: &str) -> i64 {
    store(dir)
        .table_counts()
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| n)
        .unwrap()
}

/// Waits until the running daemon has written at least `n` trades.
fn wait_for_trades(dir: &Path, child: &mut Child, n: usize) {
    let start = Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "traderd ended before it was interrupted"
        );
        if dir.join("data/trader.db").exists()
            && let Ok(s) = store::Store::open(dir.join("data/trader.db").to_str().unwrap())
            && s.trades(&TradeFilter::default())
                .map(|t| t.len())
                .unwrap_or(0)
                >= n
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no trades after 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn test_traderd_trades_reports_and_survives_sigint_and_sigkill() {
    // The reference: one uninterrupted run.
    let reference = tempfile::tempdir().unwrap();
    let out = run_to_end(reference.path());
    let expected = trades(reference.path());
    assert!(expected.len() >= 5, "{out}");
    // The report's numbers are the database's.
    let report = std::fs::read_to_string(reference.path().join("reports/report.md")).unwrap();
    let closed = store(reference.path())
        .trades(&TradeFilter {
            open: Some(false),
            ..TradeFilter::default()
        })
        .unwrap();
    let pnl: i64 = closed.iter().map(|t| t.profit_loss.unwrap().cents()).sum();
    let pnl_text = orchestrator::report::fmt_money(core_domain::Money::from_cents(pnl));
    assert!(
        report.contains(&format!("| Total P&L | {pnl_text} |")),
        "report lacks total P&L {pnl_text}:\n{report}"
    );
    assert!(
        report.contains(&format!("| Closed trades | {} |", closed.len())),
        "report lacks the closed-trade count {}:\n{report}",
        closed.len()
    );
    assert!(out.contains("0 violations"), "{out}");

    // SIGINT: the cycle in progress finishes, then it stops; a restart
    // continues to the same end.
    let interrupted = tempfile::tempdir().unwrap();
    let mut child = spawn(interrupted.path());
    wait_for_trades(interrupted.path(), &mut child, 2);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped at"));
    let resumed = run_to_end(interrupted.path());
    assert!(resumed.contains("resuming"), "{resumed}");
    assert_eq!(trades(interrupted.path()), expected);

    // SIGKILL mid-run: nothing duplicated or lost after the restart, and
    // the stored positions are the exchange's.
    let killed = tempfile::tempdir().unwrap();
    let mut child = spawn(killed.path());
    wait_for_trades(killed.path(), &mut child, 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = run_to_end(killed.path());
    assert!(resumed.contains("resuming"), "{resumed}");
    assert_eq!(trades(killed.path()), expected);
    for table in ["orders", "fills", "ledger_entries"] {
        assert_eq!(
            count(killed.path(), table),
            count(reference.path(), table),
            "{table} rows after the SIGKILL and restart"
        );
    }
    assert_eq!(
        store(killed.path()).positions().unwrap(),
        store(reference.path()).positions().unwrap()
    );
}
