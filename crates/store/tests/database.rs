//! Opening, configuring and migrating the database file, the trading state,
//! and the schema's agreement with the migrations.

// Helpers outside #[test] functions panic on failure too: this is a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{at, temp_store};
use core_domain::stubs;
use core_domain::{AuditEntry, AuditRepository, OrderRepository, RepoError};
use diesel::prelude::*;
use store::{Store, StoreError};

#[test]
fn test_open_accepts_url_forms_and_creates_the_parent_directory() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_str().unwrap();
    for url in [
        format!("sqlite://{base}/a/nested/one.db"),
        format!("sqlite:{base}/b/two.db"),
        format!("{base}/c/three.db"),
    ] {
        let store = Store::open_and_migrate(&url).unwrap();
        let path = store.path().unwrap().to_path_buf();
        assert!(path.exists(), "{url}: no file at {}", path.display());
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }
    let memory = Store::open_and_migrate(":memory:").unwrap();
    assert!(memory.path().is_none());
}

#[test]
fn test_open_refuses_other_databases_with_a_helpful_message() {
    let e = Store::open("postgres://trader@localhost/trader").unwrap_err();
    assert!(matches!(e, StoreError::UnsupportedUrl { .. }));
    assert!(e.to_string().contains("sqlite://PATH"), "{e}");
}

#[test]
fn test_open_on_an_unwritable_location_says_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let url = format!("{}/trader.db", file.display());
    let msg = Store::open(&url).unwrap_err().to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}

#[test]
fn test_open_on_a_file_that_is_not_a_database_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(
        &file,
        "these are not the pages you are looking for ".repeat(100),
    )
    .unwrap();
    let e = Store::open(file.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("notes.txt"), "{e}");
}

#[test]
fn test_pragmas_are_in_effect_on_a_file_database() {
    let (_dir, store) = temp_store();
    let s = store.connection_settings().unwrap();
    assert_eq!(s.journal_mode, "wal");
    assert!(s.foreign_keys);
    assert_eq!(s.busy_timeout_ms, 5000);
    assert_eq!(s.synchronous, "FULL");
}

#[test]
fn test_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("m.db").to_str().unwrap().to_string();
    let store = Store::open(&url).unwrap();
    let before = store.migration_status().unwrap();
    assert!(!before.is_empty() && before.iter().all(|m| !m.applied));
    let first = store.migrate().unwrap();
    assert_eq!(
        first,
        before.iter().map(|m| m.name.clone()).collect::<Vec<_>>()
    );
    assert!(first.contains(&"2026-11-27-000001_initial".to_string()));
    assert!(store.migrate().unwrap().is_empty());
    drop(store);
    let reopened = Store::open_and_migrate(&url).unwrap();
    assert!(reopened.migrate().unwrap().is_empty());
    assert!(
        reopened
            .migration_status()
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
}

#[test]
fn test_table_counts_cover_every_table() {
    let (_dir, store) = temp_store();
    store.insert_order(&stubs::sell_to_open("O-1")).unwrap();
    let counts = store.table_counts().unwrap();
    let names: Vec<&str> = counts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, store::schema::TABLES.to_vec());
    let get = |t: &str| counts.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!(get("orders"), 1);
    assert_eq!(get("order_events"), 1);
    assert_eq!(get("trades"), 0);
}

#[test]
fn test_a_fill_for_an_unknown_order_is_refused_by_the_foreign_key() {
    let (_dir, store) = temp_store();
    let e = store
        .record_fill(&stubs::fill("NO-SUCH-ORDER", "E-1", 1))
        .unwrap_err();
    assert!(
        matches!(&e, RepoError::NotFound(m) if m.contains("NO-SUCH-ORDER")),
        "{e}"
    );
    assert!(store.fills("NO-SUCH-ORDER").unwrap().is_empty());
}

#[test]
fn test_trading_state_latest_change_wins() {
    // A state is a `TradingState` (no text to mistype); the table's CHECK
    // refuses any other text, and one read back anyway is an error
    // (`StoreError::InvalidTradingState`), never a state.
    use core_domain::TradingState;
    let (_dir, store) = temp_store();
    assert_eq!(store.trading_state().unwrap(), None);
    store
        .set_trading_state(TradingState::Active, "startup", "traderd")
        .unwrap();
    store
        .set_trading_state(TradingState::Halted, "emergency stop", "operator:ann")
        .unwrap();
    let now = store.trading_state().unwrap().unwrap();
    assert_eq!(
        (now.state, now.cause.as_str()),
        (TradingState::Halted, "emergency stop")
    );
    store
        .set_trading_state(TradingState::ReduceOnly, "drawdown", "risk")
        .unwrap();
    assert_eq!(
        store.trading_state().unwrap().unwrap().state,
        TradingState::ReduceOnly
    );
}

#[test]
fn test_two_stores_on_one_file_both_write_without_losing_rows() {
    let (dir, first) = temp_store();
    let url = dir.path().join("trader.db").to_str().unwrap().to_string();
    let second = Store::open(&url).unwrap();
    std::thread::scope(|s| {
        for (who, store) in [("a", &first), ("b", &second)] {
            s.spawn(move || {
                for i in 0..40 {
                    store
                        .append_audit(&AuditEntry::new(at(i, 0), who, "tick"))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(first.recent_audit(1000).unwrap().len(), 80);
}

/// Every column diesel's `schema.rs` declares exists in the migrated
/// database, in the same order, with the same nullability, and no column
/// is missing from `schema.rs`.
#[test]
fn test_schema_rs_matches_the_migrated_tables() {
    use diesel::sql_types::{BigInt, Text};
    use store::schema::*;

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Col {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        notnull: i64,
        #[diesel(sql_type = BigInt)]
        pk: i64,
    }

    let (dir, _store) = temp_store();
    let mut conn =
        SqliteConnection::establish(dir.path().join("trader.db").to_str().unwrap()).unwrap();

    macro_rules! declared {
        ($t:ident) => {{
            let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(
                &$t::table.select($t::all_columns),
            )
            .to_string();
            let cols = sql
                .split(" FROM ")
                .next()
                .unwrap()
                .trim_start_matches("SELECT ")
                .split(", ")
                .map(|c| c.rsplit('.').next().unwrap().trim_matches('`').to_string())
                .collect::<Vec<_>>();
            (stringify!($t), cols)
        }};
    }
    let declared = [
        declared!(experiments),
        declared!(trades),
        declared!(learning_history),
        declared!(patterns),
        declared!(orders),
        declared!(order_events),
        declared!(fills),
        declared!(positions),
        declared!(account_snapshots),
        declared!(ledger_entries),
        declared!(audit_log),
        declared!(decision_records),
        declared!(working_memory),
        declared!(trading_state),
        declared!(slippage),
        declared!(control_requests),
        declared!(shadow_trades),
        declared!(analyst_reports),
        declared!(agent_calls),
        declared!(notification_attempts),
    ];
    assert_eq!(
        declared.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        TABLES.to_vec()
    );
    for (table, cols) in declared {
        let actual: Vec<Col> = diesel::sql_query(format!(
            "SELECT name, \"notnull\", pk FROM pragma_table_info('{table}') ORDER BY cid"
        ))
        .load(&mut conn)
        .unwrap();
        let names: Vec<&str> = actual.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, cols, "columns of {table}");
        // Nullable columns in SQL must be Nullable<_> in schema.rs: every
        // column not declared NOT NULL (bar the primary key) is listed here.
        let nullable: Vec<&str> = actual
            .iter()
            .filter(|c| c.notnull == 0 && c.pk == 0)
            .map(|c| c.name.as_str())
            .collect();
        let expected: &[&str] = match table {
            "experiments" => &["end_date", "p_value", "effect_size", "decision"],
            "trades" => &[
                "sector",
                "exit_date",
                "exit_time",
                "exit_premium",
                "exit_reason",
                "profit_loss",
                "profit_pct",
                "roi",
                "days_held",
                "vix_at_entry",
                "experiment_id",
                "experiment_arm",
            ],
            "learning_history" => &[
                "pattern_name",
                "confidence",
                "sample_size",
                "parameter_changed",
                "old_value",
                "new_value",
            ],
            "orders" => &["broker_order_id", "trade_id", "avg_fill_price", "reason"],
            "order_events" => &["reason"],
            "positions" => &["market_price"],
            "audit_log" => &["decision", "outcome"],
            "slippage" => &["mid_at_send", "vs_mid"],
            "control_requests" => &["handled_at", "outcome"],
            "shadow_trades" => &[
                "sector",
                "experiment_id",
                "experiment_arm",
                "vix_at_entry",
                "exit_time",
                "exit_premium",
                "exit_reason",
                "profit_loss",
                "roi",
            ],
            "analyst_reports" => &["model", "fallback_reason"],
            "agent_calls" => &["stop_reason"],
            _ => &[],
        };
        assert_eq!(nullable, expected, "nullable columns of {table}");
    }
}

#[test]
fn test_down_migrations_drop_everything_and_up_restores_it() {
    use diesel_migrations::MigrationHarness;
    let (dir, store) = temp_store();
    drop(store);
    let path = dir.path().join("trader.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.revert_all_migrations(store::MIGRATIONS).unwrap();
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let left: Vec<String> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_\\_diesel%' ESCAPE '\\'",
    )
    .load::<Name>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect();
    assert!(left.is_empty(), "tables left after down.sql: {left:?}");
    drop(conn);
    let store = Store::open_and_migrate(path.to_str().unwrap()).unwrap();
    assert_eq!(
        store.table_counts().unwrap().len(),
        store::schema::TABLES.len()
    );
}

#[test]
fn test_control_requests_queue_and_are_marked_handled() {
    let (_dir, store) = temp_store();
    let request = store::ControlRequest {
        id: None,
        time: at(1, 0),
        actor: "operator:test".into(),
        action: store::ControlAction::EmergencyStop,
        flatten: true,
        reason: "drill".into(),
    };
    let id = store.request_control(&request).unwrap();
    let pending = store.pending_control_requests().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, Some(id));
    assert!(pending[0].flatten);
    assert_eq!(pending[0].action, store::ControlAction::EmergencyStop);
    store.mark_control_handled(id, at(2, 0), "halted").unwrap();
    assert!(store.pending_control_requests().unwrap().is_empty());
}

// ---------------------------------------------------------------- units of work

fn decision(minute: u32, subject: &str) -> core_domain::DecisionRecord {
    core_domain::DecisionRecord::new(
        at(i64::from(minute) * 60, 0),
        core_domain::DecisionKind::Skip,
        subject,
        "skip",
        "test",
    )
}

#[test]
fn test_a_unit_of_work_commits_its_writes_together_or_not_at_all() {
    let (dir, store) = temp_store();
    let url = format!("sqlite://{}", store.path().unwrap().display());
    store.begin_unit().unwrap();
    assert!(store.in_unit());
    assert!(matches!(
        store.begin_unit(),
        Err(StoreError::Poisoned { .. })
    ));
    let before = store.write_count();
    store.append_decision(&decision(1, "A")).unwrap();
    // A group inside a unit is a savepoint of it.
    store
        .atomically(|tx| -> Result<(), StoreError> {
            tx.append_decision(&decision(2, "B")).unwrap();
            Ok(())
        })
        .unwrap();
    assert_eq!(store.write_count(), before + 2);
    // Another connection sees nothing before the commit.
    let other = Store::open(&url).unwrap();
    assert!(other.recent_decisions(10).unwrap().is_empty());
    store.rollback_unit().unwrap();
    assert!(!store.in_unit());
    assert!(store.recent_decisions(10).unwrap().is_empty());

    store.begin_unit().unwrap();
    store.append_decision(&decision(3, "C")).unwrap();
    store.append_decision(&decision(4, "D")).unwrap();
    store.commit_unit().unwrap();
    assert_eq!(other.recent_decisions(10).unwrap().len(), 2);
    // Outside a unit every call commits at once, as before.
    store.append_decision(&decision(5, "E")).unwrap();
    assert_eq!(other.recent_decisions(10).unwrap().len(), 3);
    // Committing or rolling back with no unit open does nothing.
    store.commit_unit().unwrap();
    store.rollback_unit().unwrap();
    drop(dir);
}

#[test]
fn test_a_unit_left_open_by_a_dropped_store_is_rolled_back() {
    let (_dir, store) = temp_store();
    let url = format!("sqlite://{}", store.path().unwrap().display());
    store.begin_unit().unwrap();
    store.append_decision(&decision(1, "A")).unwrap();
    // The process "dies": the connection closes without a commit.
    drop(store);
    let reopened = Store::open(&url).unwrap();
    assert!(reopened.recent_decisions(10).unwrap().is_empty());
    assert_eq!(reopened.integrity_check().unwrap(), "ok");
}

#[test]
fn test_decisions_since_reads_one_kind_from_a_time() {
    let (_dir, store) = temp_store();
    store.append_decision(&decision(1, "A")).unwrap();
    store.append_decision(&decision(5, "B")).unwrap();
    store
        .append_decision(&core_domain::DecisionRecord::new(
            at(6 * 60, 0),
            core_domain::DecisionKind::Action,
            "engine",
            "idle",
            "nothing to do",
        ))
        .unwrap();
    let got = store
        .decisions_since(core_domain::DecisionKind::Skip, at(2 * 60, 0))
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject, "B");
}
