//! Fixtures shared by the integration tests: a store on a real SQLite file
//! in a temporary directory, and instants.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use store::Store;
use tempfile::TempDir;

/// A migrated store on a fresh file; keep the `TempDir` alive as long as
/// the store.
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trader.db");
    let store = Store::open_and_migrate(path.to_str().unwrap()).unwrap();
    (dir, store)
}

/// An instant `secs` after 2024-01-09 14:30 UTC, with sub-second `nanos`.
pub fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_704_810_600 + secs, nanos).unwrap()
}
