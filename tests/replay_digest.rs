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

use e2e::digest::{BUSY_CONFIG, Replay, check_replay, insert_experiment};

/// An experiment running from the start.
fn with_experiment(dir: &Path) {
    insert_experiment(
        dir,
        "EXP-DIGEST-otm_min",
        chrono::NaiveDate::from_ymd_opt(2020, 2, 7).unwrap(),
    );
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
            config: BUSY_CONFIG,
            prepare: &with_experiment,
        },
        &golden("replay_digest_2020-02-10_2020-03-20.txt"),
    );
}
