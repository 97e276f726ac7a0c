//! Crash points: named places where a test can make the process die at
//! once, as a SIGKILL or a power cut would, to prove that a restart loses
//! and duplicates nothing.
//!
//! Off unless the environment variable `TRADER_CRASH_AT` is set when the
//! process starts, to `NAME:N` (die the `N`th time the point `NAME` is
//! reached; `N` counts from 1) or several such items separated by commas
//! (the first one reached fires). The process then ends with
//! [`std::process::abort`]: no destructor runs, no buffer is flushed, and
//! an open transaction is rolled back by SQLite when the database is next
//! opened — what a `kill -9` does. Unset, a crash point costs one atomic
//! load.
//!
//! The points (documented in docs/ENGINE.md, "Restarts"): `start` (the
//! engine's start-up reconcile done), `cycle` (a cycle's work done, before
//! its commit), `scan` (an entry scan's skip records written, before its
//! orders), `intent` (an order's intent written, before the broker has it),
//! `sent` (the broker has the order, before its acknowledgement is
//! written), `learn` (the learning step done, before the cycle ends).

use std::sync::Mutex;
use std::sync::OnceLock;

/// The environment variable that arms crash points.
pub const CRASH_ENV: &str = "TRADER_CRASH_AT";

struct Armed {
    points: Vec<(String, u64)>,
    seen: Mutex<Vec<(String, u64)>>,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(CRASH_ENV).ok()?;
            let points: Vec<(String, u64)> = spec
                .split(',')
                .filter_map(|item| {
                    let (name, n) = item.trim().split_once(':')?;
                    Some((name.to_string(), n.trim().parse().ok()?))
                })
                .collect();
            if points.is_empty() {
                tracing::warn!(value = %spec, "{CRASH_ENV} is set but names no NAME:N point; ignored");
                return None;
            }
            tracing::warn!(value = %spec, "crash points armed ({CRASH_ENV}): this process will abort on purpose");
            Some(Armed {
                points,
                seen: Mutex::new(Vec::new()),
            })
        })
        .as_ref()
}

/// Passes the crash point `name`: aborts the process when it is armed for
/// this passage (see the module docs); otherwise returns at once.
pub fn crash_point(name: &str) {
    let Some(armed) = armed() else {
        return;
    };
    if !armed.points.iter().any(|(n, _)| n == name) {
        return;
    }
    let count = {
        let mut seen = match armed.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match seen.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                seen.push((name.to_string(), 1));
                1
            }
        }
    };
    if armed.points.iter().any(|(n, k)| n == name && *k == count) {
        eprintln!("crash point {name}:{count} reached ({CRASH_ENV}): aborting");
        std::process::abort();
    }
}
