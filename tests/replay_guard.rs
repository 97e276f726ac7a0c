//! The determinism guard of the research-speed work (issue #14): the
//! optimized engine must leave the database the slow path left — the same
//! orders, fills, trades, positions, decision records and ledger — for the
//! same settings and seed (rendered by `e2e::digest`).
//!
//! In the suite (seconds in release, a minute or two in debug):
//! * the 20-stock replay with the default settings over 2016-01-04 to
//!   2016-03-31: `tests/golden/replay_digest_2016q1.txt`;
//! * a synthetic market — the null market of `trader-cli learning-proof`,
//!   seed 7, its loose strategy — over 63 sessions, run in process:
//!   per-table row counts and hashes in
//!   `tests/golden/synthetic_summary_seed7_63s.txt`.
//!
//! Ignored (long; run them in release: `cargo build --release -p traderd &&
//! cargo test --release -p e2e --test replay_guard -- --ignored`):
//! * the whole main job, 2010–2022: `tests/golden/replay_summary_2010-2022.txt`
//!   (row counts and hashes: the full digest is ~10 MB);
//! * the synthetic market over a year (252 sessions):
//!   `tests/golden/synthetic_summary_seed7_1y.txt`.
//!
//! The golden files hold what the engine before the speed-ups wrote: the
//! databases of the main job, of 2016 Q1 and of the synthetic year were
//! compared table by table (every column) with those of `main` at 071352e
//! before the files were written; the 63-session synthetic golden was
//! written by the optimized engine once those had passed. Regenerate them
//! (`UPDATE_GOLDEN=1`) only for a change meant to change what the trader
//! does, with the reason in the commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use e2e::digest::{Replay, check_replay, compare, digest, run};
use market_sim::synthetic::{SyntheticConfig, generate, null_chain_params};
use settings::{Range, Settings};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

/// The default settings (the 20 stocks of the main job).
const DEFAULT_CONFIG: &str = r#"
[database]
url = "sqlite://data/trader.db"
"#;

#[test]
fn test_the_20_stock_replay_of_2016_q1_leaves_the_golden_database() {
    check_replay(
        &Replay {
            from: "2016-01-04",
            to: "2016-03-31",
            config: DEFAULT_CONFIG,
            prepare: &|_| {},
        },
        &golden("replay_digest_2016q1.txt"),
    );
}

/// Per table: rows and a 64-bit FNV-1a hash of its digest lines.
fn summary(digest: &str) -> String {
    let mut out = String::new();
    let mut table = String::new();
    let mut rows = 0u64;
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let flush = |out: &mut String, table: &str, rows: u64, hash: u64| {
        if !table.is_empty() {
            writeln!(out, "{table} {rows} rows {hash:016x}").unwrap();
        }
    };
    for line in digest.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            flush(&mut out, &table, rows, hash);
            table = rest.split(' ').next().unwrap_or(rest).to_string();
            rows = 0;
            hash = 0xcbf2_9ce4_8422_2325;
            continue;
        }
        rows += 1;
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    flush(&mut out, &table, rows, hash);
    out
}

#[test]
#[ignore = "the whole main job: run in release (see the module docs)"]
fn test_the_main_job_2010_2022_leaves_the_golden_database() {
    let dir = tempfile::tempdir().unwrap();
    run(
        &Replay {
            from: "2010-01-04",
            to: "2022-12-28",
            config: DEFAULT_CONFIG,
            prepare: &|_| {},
        },
        dir.path(),
    );
    let got = summary(&digest(&dir.path().join("data/trader.db")));
    compare(&got, &golden("replay_summary_2010-2022.txt"));
}

/// Loose strategy settings (those of `trader-cli learning-proof`): the
/// synthetic market's options trade often.
fn loose_settings() -> Settings {
    let mut s = Settings::default();
    let st = &mut s.strategy;
    st.otm_range = Range {
        min: 0.10,
        max: 0.25,
    };
    st.premium_range = Range {
        min: 0.05,
        max: 3.00,
    };
    st.dte_range = Range { min: 5, max: 30 };
    st.max_positions = 10;
    st.position_size = 1;
    st.trend_filter = "none".into();
    st.underlying_price_range = Range {
        min: 1.0,
        max: 10_000.0,
    };
    st.min_avg_volume = 0.0;
    st.min_open_interest = 0;
    st.max_spread_pct = 1.0;
    s
}

/// The engine in process over the null market of seed 7 for `traded`
/// sessions (after 80 of warm-up; 40 after it keep listed expirations in
/// range), as `trader-cli learning-proof --first-seed 7 --seeds 1 --part
/// null` runs it; returns the digest of its database.
fn synthetic_run(traded: usize) -> String {
    const SEED: u64 = 7;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let store = Arc::new(store::Store::open_and_migrate(db.to_str().unwrap()).unwrap());
    store.relax_durability_for_research().unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 2).unwrap();
    let history =
        Arc::new(generate(&SyntheticConfig::null_market(SEED, start, 80 + traded + 40)).unwrap());
    let settings = loose_settings();
    let mut sim = traderd::wiring::sim_run_on(
        &settings,
        Arc::clone(&store),
        traderd::wiring::SimMarket {
            history: Arc::clone(&history),
            chain: null_chain_params(),
        },
        history.dates[80],
        history.dates[80 + traded - 1],
        Some(SEED),
        settings.risk_limits(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = AtomicBool::new(false);
    let until = sim.until;
    runtime
        .block_on(orchestrator::run(
            &mut sim.engine,
            &sim.clock,
            until,
            orchestrator::Pace::AsFastAsPossible,
            &stop,
            |_| {},
        ))
        .unwrap();
    drop(sim);
    drop(store);
    digest(&db)
}

#[test]
fn test_a_synthetic_market_quarter_leaves_the_golden_database() {
    let got = summary(&synthetic_run(63));
    assert!(
        !got.contains("trades 0 rows"),
        "the synthetic run should trade: {got}"
    );
    compare(&got, &golden("synthetic_summary_seed7_63s.txt"));
}

#[test]
#[ignore = "a simulated year: run in release (see the module docs)"]
fn test_a_synthetic_market_year_leaves_the_golden_database() {
    let got = summary(&synthetic_run(252));
    assert!(
        !got.contains("trades 0 rows"),
        "the synthetic run should trade: {got}"
    );
    compare(&got, &golden("synthetic_summary_seed7_1y.txt"));
}
