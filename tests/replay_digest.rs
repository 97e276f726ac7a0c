//! No behaviour change: a short, busy replay (puts sold, stopped out and
//! taken at their profit target, an experiment running, the learning step
//! run after closes, the exploration band on) must leave the same
//! database as the one recorded in `tests/golden/replay_digest_2020-02-10_2020-03-20.txt`:
//! the same orders, fills, trades, positions, decision records and ledger.
//!
//! Regenerate the golden file only for a change meant to change what the
//! trader does, and give the reason in the commit:
//! `UPDATE_GOLDEN=1 cargo test -p e2e --test replay_digest` (after
//! `cargo build -p traderd`). See `e2e::digest`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::{Path, PathBuf};

use core_domain::{Experiment, ExperimentStatus, LearningRepository};
use e2e::digest::{Replay, check_replay};

/// A strategy that trades often, and learning that acts on few trades
/// (the same as `tests/resume.rs`).
const CONFIG: &str = r#"
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

/// An experiment running from the start: new opportunities are split
/// between its arms, the test arm with a wider OTM range.
fn with_experiment(dir: &Path) {
    let store =
        store::Store::open_and_migrate(dir.join("data/trader.db").to_str().unwrap()).unwrap();
    store
        .insert_experiment(&Experiment {
            experiment_id: "EXP-DIGEST-otm_min".into(),
            name: "otm_min 0.10 -> 0.08".into(),
            hypothesis: "a wider OTM range earns more per trade".into(),
            parameter_name: "otm_min".into(),
            control_value: "0.10".into(),
            test_value: "0.08".into(),
            allocation: 0.5,
            min_samples: 30,
            status: ExperimentStatus::Active,
            start_date: chrono::NaiveDate::from_ymd_opt(2020, 2, 7).unwrap(),
            end_date: None,
            control_trades: 0,
            test_trades: 0,
            p_value: None,
            effect_size: None,
            decision: None,
        })
        .unwrap();
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

#[test]
fn test_a_busy_replay_leaves_the_golden_database() {
    check_replay(
        &Replay {
            from: "2020-02-10",
            to: "2020-03-20",
            config: CONFIG,
            prepare: &with_experiment,
        },
        &golden("replay_digest_2020-02-10_2020-03-20.txt"),
    );
}
