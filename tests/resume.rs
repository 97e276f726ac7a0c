//! Exact resume: `traderd` killed at any moment — during start-up, during a
//! scan, between an order's intent and the broker's acknowledgement, during
//! the learn step, at a cycle's end, or at a random instant — and started
//! again until the replay ends, leaves a database equal to an uninterrupted
//! run's: orders, fills, trades, positions, the ledger and the decision
//! records (as a multiset), not only "nothing lost".
//!
//! The named moments are crash points (`TRADER_CRASH_AT`, see
//! `store::crash_point`): the process aborts there, as a `kill -9` would.
//! The window is short but busy: a wider strategy than the default so that
//! puts are sold, stopped out and taken at their profit target in a few
//! months, with the exploration band on and an experiment running.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use core_domain::{
    AccountRepository, AuditRepository, LearningRepository, OrderRepository, TradeFilter,
    TradeRepository,
};

const FROM: &str = "2020-02-10";
const TO: &str = "2020-03-20";

fn traderd() -> std::path::PathBuf {
    e2e::binary("traderd").expect("traderd is not built; run `cargo test --workspace`")
}

/// Runs traderd in `dir` to its end or its death; `crash` arms crash
/// points. Returns whether it finished the replay.
fn run(dir: &Path, crash: Option<&str>, kill_after: Option<Duration>) -> bool {
    // No core files from the deliberate aborts.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -c 0; exec '{}' --config trader.toml --from {FROM} --to {TO} --quiet",
            traderd().display()
        ))
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match crash {
        Some(spec) => cmd.env(store::CRASH_ENV, spec),
        None => cmd.env_remove(store::CRASH_ENV),
    };
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            if !status.success() {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(
                    crash.is_some() || kill_after.is_some(),
                    "traderd failed without a crash point: {err}"
                );
                assert!(
                    err.contains("crash point") || crash.is_none(),
                    "traderd ended with {status} but not at a crash point: {err}"
                );
            }
            return status.success();
        }
        if let Some(after) = kill_after
            && started.elapsed() >= after
        {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return false;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "traderd ran for 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn prepare(dir: &Path) {
    std::fs::write(dir.join("trader.toml"), e2e::digest::BUSY_CONFIG).unwrap();
    // An experiment running from the start (the learning engine would
    // start one only after months of trades): new opportunities are split
    // between its arms, the test arm with a wider OTM range.
    std::fs::create_dir_all(dir.join("data")).unwrap();
    e2e::digest::insert_experiment(
        dir,
        "EXP-RESUME-otm_min",
        chrono::NaiveDate::from_ymd_opt(2020, 2, 7).unwrap(),
    );
}

/// Everything the comparison covers, as sorted text rows per table.
fn snapshot(dir: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let store = store::Store::open(dir.join("data/trader.db").to_str().unwrap()).unwrap();
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let orders = store.all_orders().unwrap();
    let mut o = Vec::new();
    let mut f = Vec::new();
    for order in &orders {
        o.push(format!(
            "{} {} {}",
            order.intent.order_ref, order.status, order.filled_quantity
        ));
        for fill in store.fills(&order.intent.order_ref).unwrap() {
            f.push(format!(
                "{} {} {} {}",
                fill.exec_id, fill.quantity, fill.price, fill.commission
            ));
        }
    }
    out.insert("orders", o);
    out.insert("fills", f);
    out.insert(
        "trades",
        store
            .trades(&TradeFilter::default())
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{} {} {:?} {} {:?} {:?} {:?} {:?}",
                    t.trade_id,
                    t.entry_date,
                    t.exit_date,
                    t.entry_premium,
                    t.exit_premium,
                    t.exit_reason,
                    t.experiment_arm,
                    t.profit_loss
                )
            })
            .collect(),
    );
    out.insert(
        "positions",
        store
            .positions()
            .unwrap()
            .iter()
            .map(|p| format!("{} {} {}", p.contract.key(), p.quantity, p.avg_cost))
            .collect(),
    );
    out.insert(
        "ledger",
        store
            .ledger_entries(None)
            .unwrap()
            .iter()
            .map(|e| format!("{e:?}"))
            .collect(),
    );
    out.insert(
        "decision records",
        store
            .recent_decisions(i64::MAX)
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} {} {}",
                    d.time, d.kind, d.subject, d.decision, d.reason
                )
            })
            .collect(),
    );
    out.insert(
        "experiments",
        store
            .experiments()
            .unwrap()
            .iter()
            .map(|e| format!("{} {:?} {:?}", e.experiment_id, e.status, e.decision))
            .collect(),
    );
    let _ = store.recent_audit(1).unwrap();
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

#[test]
fn test_a_replay_killed_at_any_moment_resumes_to_the_same_database() {
    let reference = tempfile::tempdir().unwrap();
    prepare(reference.path());
    assert!(
        run(reference.path(), None, None),
        "the reference run failed"
    );
    let expected = snapshot(reference.path());
    let trades = &expected["trades"];
    let exits: Vec<&String> = trades.iter().filter(|t| t.contains("Some(")).collect();
    assert!(
        trades.len() >= 6 && exits.len() >= 4,
        "the window is not busy enough to prove anything: {trades:#?}"
    );
    assert!(
        trades.iter().any(|t| t.contains("\"test\"")),
        "no trade of the experiment's test arm: {trades:#?}"
    );

    let drill = tempfile::tempdir().unwrap();
    prepare(drill.path());
    // Named moments first, each counted from the process's start, then
    // random instants.
    let crashes = [
        "start:1",
        "scan:1",
        "intent:1",
        "cycle:40",
        "sent:1",
        "scan:3",
        "learn:1",
        "intent:2",
        "cycle:200",
        "learn:2",
        "sent:3",
        "scan:6",
        "start:1",
        "intent:4",
        "cycle:150",
        "learn:1",
    ];
    let mut finished = false;
    let mut crashed = 0;
    for spec in crashes {
        if run(drill.path(), Some(spec), None) {
            finished = true;
            break;
        }
        crashed += 1;
    }
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..8 {
        if finished {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let after = Duration::from_millis(100 + rng % 900);
        if run(drill.path(), None, Some(after)) {
            finished = true;
        } else {
            crashed += 1;
        }
    }
    if !finished {
        assert!(run(drill.path(), None, None), "the final run failed");
    }
    assert!(
        crashed >= 10,
        "only {crashed} crashes: the window ended too soon"
    );
    let got = snapshot(drill.path());
    for (table, rows) in &expected {
        let other = &got[table];
        if rows != other {
            let first = rows
                .iter()
                .zip(other.iter())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("reference {a}\n     drill {b}"));
            panic!(
                "after {crashed} crashes, {table} differ: reference {} rows, drill {} rows; first difference:\n{}",
                rows.len(),
                other.len(),
                first.unwrap_or_else(|| "(one is a prefix of the other)".into())
            );
        }
    }
}
