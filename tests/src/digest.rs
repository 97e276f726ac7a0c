//! A digest of what a replay did, compared with a committed golden file:
//! the "no behaviour change" guard for refactors of the engine and the
//! crates below it.
//!
//! [`check_replay`] runs `traderd` over a window in a fresh directory and
//! renders the database's orders, fills, trades, positions, decision
//! records and ledger as sorted text rows per table ([`digest`]); the
//! result must equal the golden file byte for byte.
//!
//! **Regenerating a golden file** (`UPDATE_GOLDEN=1 cargo test -p e2e
//! --test replay_digest`) rewrites it from the current code. Do it only for
//! a change that is *meant* to change what the trader does (a new rule, a
//! fixed bug, a model change), and say why in the commit message: a
//! refactor, a speed-up or a split must pass with the golden file as it is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helper: a panic is a failure

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use core_domain::{
    AccountRepository, AuditRepository, OrderRepository, TradeFilter, TradeRepository,
};

/// The environment variable that makes [`check_replay`] rewrite its golden
/// file instead of comparing with it.
pub const UPDATE_ENV: &str = "UPDATE_GOLDEN";

/// A strategy that trades often, and learning that acts on few trades:
/// puts sold, stopped out and taken at their profit target within weeks.
pub const BUSY_CONFIG: &str = r#"
[strategy]
otm_range = { min = 0.10, max = 0.20 }
premium_range = { min = 0.20, max = 1.00 }
dte_range = { min = 7, max = 14 }
trend_filter = "none"
[learning]
min_trades_before_analysis = 6
[database]
url = "sqlite://data/trader.db"
"#;

/// Puts an experiment running since `start` into `dir`'s database (new
/// opportunities are split between its arms, the test arm with a wider OTM
/// range: otm_min 0.10 → 0.08).
pub fn insert_experiment(dir: &Path, id: &str, start: chrono::NaiveDate) {
    use core_domain::{Experiment, ExperimentStatus, LearningRepository};
    let store =
        store::Store::open_and_migrate(dir.join("data/trader.db").to_str().unwrap()).unwrap();
    store
        .insert_experiment(&Experiment {
            experiment_id: id.into(),
            name: "otm_min 0.10 -> 0.08".into(),
            hypothesis: "a wider OTM range earns more per trade".into(),
            parameter_name: "otm_min".into(),
            control_value: "0.10".into(),
            test_value: "0.08".into(),
            allocation: 0.5,
            min_samples: 30,
            status: ExperimentStatus::Active,
            start_date: start,
            end_date: None,
            control_trades: 0,
            test_trades: 0,
            p_value: None,
            effect_size: None,
            decision: None,
        })
        .unwrap();
}

/// A replay to digest: the window, the configuration file's text (its
/// `[database] url` must be `sqlite://data/trader.db`), and what to put in
/// the database before the run (an experiment, say).
pub struct Replay<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub config: &'a str,
    pub prepare: &'a dyn Fn(&Path),
}

/// Runs `replay` with `traderd` in a fresh directory, then compares the
/// database's [`digest`] with `golden` (or rewrites `golden` when
/// `UPDATE_GOLDEN` is set). Panics with the first differing rows.
pub fn check_replay(replay: &Replay<'_>, golden: &Path) {
    let dir = tempfile::tempdir().unwrap();
    run(replay, dir.path());
    let got = digest(&dir.path().join("data/trader.db"));
    compare(&got, golden);
}

/// Runs `traderd --from .. --to ..` in `dir` to its end; panics if it fails.
pub fn run(replay: &Replay<'_>, dir: &Path) {
    std::fs::write(dir.join("trader.toml"), replay.config).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    (replay.prepare)(dir);
    let traderd =
        crate::binary("traderd").expect("traderd is not built; run `cargo build -p traderd` first");
    let out = Command::new(traderd)
        .args([
            "--config",
            "trader.toml",
            "--from",
            replay.from,
            "--to",
            replay.to,
            "--quiet",
        ])
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "traderd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compares `got` with the golden file, or writes it under `UPDATE_GOLDEN`.
pub fn compare(got: &str, golden: &Path) {
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(golden, got).unwrap();
        eprintln!("rewrote {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_else(|e| {
        panic!(
            "cannot read the golden file {}: {e}; create it with {UPDATE_ENV}=1",
            golden.display()
        )
    });
    if expected == got {
        return;
    }
    let (exp, gotl): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let first = exp
        .iter()
        .zip(gotl.iter())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("line {}:\n  golden {a}\n  now    {b}", i + 1))
        .unwrap_or_else(|| "(one is a prefix of the other)".into());
    panic!(
        "the replay's database differs from {} ({} lines golden, {} now); first difference at {first}\n\
         A refactor must not change what the trader does. If the change is meant \
         (a new rule, a fixed bug), rerun with {UPDATE_ENV}=1 and give the reason in the commit.",
        golden.display(),
        exp.len(),
        gotl.len()
    );
}

/// The digest of a trader database: per table, one text row per record,
/// sorted (so rows written in another order within a cycle still match).
pub fn digest(db: &Path) -> String {
    let store = store::Store::open(db.to_str().unwrap()).unwrap();
    let mut tables: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut orders = Vec::new();
    let mut fills = Vec::new();
    for order in store.all_orders().unwrap() {
        orders.push(format!(
            "{} {} filled={} limit={}",
            order.intent.order_ref, order.status, order.filled_quantity, order.intent.limit_price
        ));
        for fill in store.fills(&order.intent.order_ref).unwrap() {
            fills.push(format!(
                "{} qty={} price={} commission={}",
                fill.exec_id, fill.quantity, fill.price, fill.commission
            ));
        }
    }
    tables.insert("orders", orders);
    tables.insert("fills", fills);
    tables.insert(
        "trades",
        store
            .trades(&TradeFilter::default())
            .unwrap()
            .iter()
            .map(|t| format!("{t:?}"))
            .collect(),
    );
    tables.insert(
        "positions",
        store
            .positions()
            .unwrap()
            .iter()
            .map(|p| format!("{} {} {}", p.contract.key(), p.quantity, p.avg_cost))
            .collect(),
    );
    tables.insert(
        "decision_records",
        store
            .recent_decisions(i64::MAX)
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} | {} | {}",
                    d.time, d.kind, d.subject, d.decision, d.reason
                )
            })
            .collect(),
    );
    let ledger = store.ledger_entries(None).unwrap();
    let mut by_kind: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for e in &ledger {
        let k = by_kind.entry(format!("{:?}", e.kind)).or_default();
        k.0 += 1;
        k.1 += e.amount.cents();
    }
    let mut rows: Vec<String> = by_kind
        .iter()
        .map(|(kind, (n, cents))| format!("{kind} count={n} sum_cents={cents}"))
        .collect();
    rows.push(format!(
        "total count={} sum_cents={}",
        ledger.len(),
        ledger.iter().map(|e| e.amount.cents()).sum::<i64>()
    ));
    tables.insert("ledger", rows);

    let mut out = String::new();
    for (table, mut rows) in tables {
        rows.sort();
        writeln!(out, "## {table} ({} rows)", rows.len()).unwrap();
        for row in rows {
            writeln!(out, "{row}").unwrap();
        }
    }
    out
}
