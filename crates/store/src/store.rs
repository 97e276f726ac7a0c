//! The [`Store`]: one SQLite connection behind a mutex, its configuration,
//! migrations and maintenance queries, and [`StoreTx`] for several
//! repository calls in one transaction.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDateTime, Utc};
use core_domain::{OrderStatus, TradingState};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::schema::{TABLES, control_requests, trading_state};
use crate::{StoreError, ops};

/// The migrations under `migrations/` at the workspace root, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The trading state in force: the latest recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingStateRecord {
    pub state: TradingState,
    /// Why it changed (a breaker, an operator's reason).
    pub cause: String,
    /// When it changed, in UTC.
    pub time: NaiveDateTime,
}

/// Removes a SQLite database file and its WAL and shared-memory files
/// (`<path>-wal`, `<path>-shm`); files that do not exist are not an
/// error. For research databases a run replaces or throws away.
pub fn remove_database_files(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What an operator asks of the engine through the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Halt, cancel working orders and, with `flatten`, close everything.
    EmergencyStop,
    /// Back to active trading.
    Resume,
}

impl ControlAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::EmergencyStop => "emergency_stop",
            ControlAction::Resume => "resume",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "emergency_stop" => Some(ControlAction::EmergencyStop),
            "resume" => Some(ControlAction::Resume),
            _ => None,
        }
    }
}

/// An operator's request queued for the engine (`control_requests`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ControlRequest {
    /// Set once stored.
    pub id: Option<i64>,
    pub time: DateTime<Utc>,
    /// Who asked (`operator:<user>`, `dashboard`, ...).
    pub actor: String,
    pub action: ControlAction,
    /// With an emergency stop: close every position too.
    pub flatten: bool,
    pub reason: String,
}

/// PRAGMAs set on every connection, in this order.
///
/// * `busy_timeout` first, so that the others wait for a lock held by
///   another process (the CLI and the daemon share the file) instead of
///   failing at once.
/// * `journal_mode = WAL`: readers (the CLI, the dashboard) do not block the
///   writer, and a commit is one append to the log.
/// * `synchronous = FULL`: in WAL mode `NORMAL` may lose the last commits on
///   a power cut or an OS crash; `FULL` syncs the log at every commit, so an
///   order intent that was committed before it was sent is still there
///   after any crash, and the restart cannot send it a second time.
/// * `foreign_keys = ON`: SQLite leaves foreign keys off unless asked, per
///   connection; a fill for an unknown order must be refused.
const PRAGMAS: [(&str, &str); 4] = [
    ("busy_timeout", "PRAGMA busy_timeout = 5000"),
    ("journal_mode", "PRAGMA journal_mode = WAL"),
    ("synchronous", "PRAGMA synchronous = FULL"),
    ("foreign_keys", "PRAGMA foreign_keys = ON"),
];

/// One migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's directory name, e.g. `2026-11-27-000001_initial`. A
    /// migration the database has but this build does not know (a newer
    /// program migrated it) is listed by its version alone.
    pub name: String,
    pub applied: bool,
}

/// The connection settings in effect, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `wal` for a file database (`memory` for `:memory:`).
    pub journal_mode: String,
    pub foreign_keys: bool,
    pub busy_timeout_ms: i64,
    /// `OFF`, `NORMAL`, `FULL` or `EXTRA`.
    pub synchronous: String,
}

/// One status change of an order, as `insert_order` and `update_order`
/// recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    /// The event's row id: events of all orders in the order they were
    /// written.
    pub id: i64,
    pub status: OrderStatus,
    pub reason: Option<String>,
    /// The order's `updated_at` at that change.
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Memory,
    File(PathBuf),
}

impl Location {
    /// Accepts `sqlite://PATH`, `sqlite:PATH`, a plain path and `:memory:`
    /// (also as `sqlite::memory:`). A `?query` after a `sqlite:` URL is
    /// ignored (other tools write `?mode=rwc`).
    fn parse(url: &str) -> Result<Location, StoreError> {
        let trimmed = url.trim();
        let unsupported = || StoreError::UnsupportedUrl {
            url: url.to_string(),
        };
        let rest = if let Some(r) = trimmed.strip_prefix("sqlite://") {
            r.split('?').next().unwrap_or(r)
        } else if let Some(r) = trimmed.strip_prefix("sqlite:") {
            r.split('?').next().unwrap_or(r)
        } else if trimmed.contains("://") {
            return Err(unsupported());
        } else {
            trimmed
        };
        match rest {
            "" => Err(unsupported()),
            ":memory:" => Ok(Location::Memory),
            path => Ok(Location::File(PathBuf::from(path))),
        }
    }

    fn display(&self) -> String {
        match self {
            Location::Memory => ":memory:".into(),
            Location::File(p) => p.display().to_string(),
        }
    }
}

/// Opens a connection and sets the [`PRAGMAS`].
fn connect(location: &Location) -> Result<SqliteConnection, StoreError> {
    let path = location.display();
    if let Location::File(p) = location
        && let Some(parent) = p.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let target = match location {
        Location::Memory => ":memory:".to_string(),
        Location::File(p) => p.to_string_lossy().into_owned(),
    };
    let mut conn = SqliteConnection::establish(&target).map_err(|source| StoreError::Open {
        path: path.clone(),
        source,
    })?;
    for (what, sql) in PRAGMAS {
        conn.batch_execute(sql)
            .map_err(|source| StoreError::Configure {
                path: path.clone(),
                what,
                source,
            })?;
    }
    if let Location::File(_) = location {
        let mode = pragma_text(&mut conn, "journal_mode", "journal_mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network shares) cannot hold a WAL; SQLite
            // then keeps its rollback journal, which is still crash safe.
            tracing::warn!(
                database = %path,
                journal_mode = %mode,
                "SQLite refused WAL mode; readers will block the writer"
            );
        }
    }
    Ok(conn)
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName)]
struct IntValue {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

/// The versions diesel recorded as applied. Read-only, unlike diesel's
/// `applied_migrations` (which first creates its table and so needs the
/// write lock): a status check must not wait behind a busy writer.
fn applied_versions(conn: &mut SqliteConnection) -> Result<BTreeSet<String>, StoreError> {
    match diesel::sql_query("SELECT version AS v FROM __diesel_schema_migrations")
        .load::<TextValue>(conn)
    {
        Ok(rows) => Ok(rows.into_iter().map(|r| r.v).collect()),
        // A database no migration ever ran on has no such table yet.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().starts_with("no such table") =>
        {
            Ok(BTreeSet::new())
        }
        Err(e) => Err(StoreError::Migration {
            detail: format!("cannot read the applied migrations: {e}"),
        }),
    }
}

/// Reads a PRAGMA through its table-valued function (`pragma_NAME`), each
/// row's `column` as text, rows joined by newlines.
fn pragma_text(
    conn: &mut SqliteConnection,
    name: &str,
    column: &str,
) -> Result<String, StoreError> {
    // Names come from this module, never from input.
    let rows: Vec<TextValue> = diesel::sql_query(format!(
        "SELECT CAST({column} AS TEXT) AS v FROM pragma_{name}"
    ))
    .load(conn)
    .map_err(StoreError::query(format!("read PRAGMA {name}")))?;
    Ok(rows.into_iter().map(|r| r.v).collect::<Vec<_>>().join("\n"))
}

/// The persistence of the trader: one SQLite connection (no pool; SQLite
/// has one writer at a time anyway) behind a mutex.
///
/// Every repository call is one transaction (`BEGIN IMMEDIATE` for writes,
/// so that two processes on the same file queue on the busy timeout rather
/// than fail mid-transaction). Calls from several threads are serialised.
/// Use [`Store::atomically`] to make several calls one transaction.
pub struct Store {
    conn: Mutex<SqliteConnection>,
    location: Location,
    /// A unit of work is open ([`Store::begin_unit`]): repository calls
    /// are savepoints inside it, committed together by
    /// [`Store::commit_unit`].
    unit: AtomicBool,
    /// The unit's transaction was begun (at its first write: a unit that
    /// writes nothing costs nothing).
    unit_begun: AtomicBool,
    /// Writing calls made so far (see [`Store::write_count`]).
    writes: AtomicU64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location.display())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if missing) the database at `database_url`:
    /// `sqlite://PATH`, `sqlite:PATH`, a plain file path, or `:memory:` (a
    /// private database that lives as long as the `Store`). Creates the
    /// parent directory of a missing file. Does not migrate: call
    /// [`Store::migrate`] or use [`Store::open_and_migrate`].
    pub fn open(database_url: &str) -> Result<Store, StoreError> {
        let location = Location::parse(database_url)?;
        let conn = connect(&location)?;
        tracing::debug!(database = %location.display(), "database opened");
        Ok(Store {
            conn: Mutex::new(conn),
            location,
            unit: AtomicBool::new(false),
            unit_begun: AtomicBool::new(false),
            writes: AtomicU64::new(0),
        })
    }

    /// Opens a unit of work: every repository call until
    /// [`Store::commit_unit`] is a savepoint of one `BEGIN IMMEDIATE`
    /// transaction, so they are committed together or — when the process
    /// dies first, or [`Store::rollback_unit`] is called — not at all.
    /// A research run commits each engine cycle this way (a cycle's
    /// orders, fills, decision records, audit entries and working memory
    /// land together); a live run does not use units (an order's intent
    /// must be on disk before the order goes to the broker).
    ///
    /// The transaction begins at the unit's first write, so a unit that
    /// writes nothing (an idle cycle) costs nothing; reads before it see
    /// the last commit. Another process writing the database waits (busy
    /// timeout) while a begun unit is open. A unit already open is an
    /// error.
    pub fn begin_unit(&self) -> Result<(), StoreError> {
        let _guard = self.lock()?;
        if self.unit.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Poisoned {
                detail: "a unit of work was begun while another was open".into(),
            });
        }
        self.unit_begun.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Inside a unit of work, makes sure its transaction has begun (the
    /// first write begins it) and returns true: the caller's write is then
    /// a savepoint of it. Outside a unit, false.
    fn enter_unit(&self, conn: &mut SqliteConnection) -> Result<bool, StoreError> {
        if !self.unit.load(Ordering::SeqCst) {
            return Ok(false);
        }
        if !self.unit_begun.load(Ordering::SeqCst) {
            AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE").map_err(
                |source| StoreError::Query {
                    what: "begin a unit of work".into(),
                    source,
                },
            )?;
            self.unit_begun.store(true, Ordering::SeqCst);
        }
        Ok(true)
    }

    /// Commits the open unit of work (nothing to do when none is open, or
    /// when it wrote nothing).
    pub fn commit_unit(&self) -> Result<(), StoreError> {
        self.end_unit(true)
    }

    /// Undoes everything written since [`Store::begin_unit`] (nothing to
    /// do when no unit is open).
    pub fn rollback_unit(&self) -> Result<(), StoreError> {
        self.end_unit(false)
    }

    fn end_unit(&self, commit: bool) -> Result<(), StoreError> {
        let mut guard = self.lock()?;
        if !self.unit.swap(false, Ordering::SeqCst)
            || !self.unit_begun.swap(false, Ordering::SeqCst)
        {
            return Ok(());
        }
        let conn: &mut SqliteConnection = &mut guard;
        let (result, what) = if commit {
            (
                <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(conn),
                "commit a unit of work",
            )
        } else {
            (
                <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(conn),
                "roll back a unit of work",
            )
        };
        result.map_err(|source| StoreError::Query {
            what: what.into(),
            source,
        })
    }

    /// Whether a unit of work is open.
    pub fn in_unit(&self) -> bool {
        self.unit.load(Ordering::SeqCst)
    }

    /// How many writing calls (repository writes and
    /// [`Store::atomically`] groups) this `Store` has made: a caller
    /// compares two readings to learn whether anything was written in
    /// between.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// For research runs (backtests) only: `synchronous = NORMAL`. In WAL
    /// mode a commit then survives the process being killed but may be
    /// lost on a power cut or an OS crash; a backtest can be re-run, and
    /// this makes each commit several times cheaper. Never used for paper
    /// or live trading.
    pub fn relax_durability_for_research(&self) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        conn.batch_execute("PRAGMA synchronous = NORMAL")
            .map_err(|source| StoreError::Configure {
                path: self.location.display(),
                what: "synchronous",
                source,
            })
    }

    /// [`Store::open`] then [`Store::migrate`].
    pub fn open_and_migrate(database_url: &str) -> Result<Store, StoreError> {
        let store = Store::open(database_url)?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file, `None` for `:memory:`.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::Memory => None,
            Location::File(p) => Some(p),
        }
    }

    /// Applies the pending embedded migrations, oldest first, and returns
    /// their names (empty when the database is up to date). All of them run
    /// in one `BEGIN IMMEDIATE` transaction, so two processes starting
    /// together do not both migrate, and a failure leaves the database as it
    /// was. (A future migration that must run outside a transaction, e.g.
    /// one that switches foreign keys off to rebuild a table, needs this
    /// revisited.)
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut guard = self.lock()?;
        let conn: &mut SqliteConnection = &mut guard;
        let applied = conn.immediate_transaction(|c| {
            let pending = c
                .pending_migrations(MIGRATIONS)
                .map_err(|e| StoreError::Migration {
                    detail: format!("cannot list the pending migrations: {e}"),
                })?;
            let mut names = Vec::with_capacity(pending.len());
            for m in pending {
                let name = m.name().to_string();
                c.run_migration(&*m).map_err(|e| StoreError::Migration {
                    detail: format!("{name}: {e}"),
                })?;
                names.push(name);
            }
            Ok::<_, StoreError>(names)
        })?;
        for name in &applied {
            tracing::info!(migration = %name, database = %self.location.display(), "migration applied");
        }
        Ok(applied)
    }

    /// Every migration this build knows, oldest first, and whether the
    /// database has it; then any the database has that this build does not
    /// know.
    pub fn migration_status(&self) -> Result<Vec<MigrationState>, StoreError> {
        let mut guard = self.lock()?;
        let conn: &mut SqliteConnection = &mut guard;
        let mut applied = applied_versions(conn)?;
        let known = MigrationSource::<Sqlite>::migrations(&MIGRATIONS).map_err(|e| {
            StoreError::Migration {
                detail: format!("cannot list the embedded migrations: {e}"),
            }
        })?;
        let mut states: Vec<MigrationState> = known
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_string(),
                applied: applied.remove(&m.name().version().to_string()),
            })
            .collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states.extend(applied.into_iter().map(|name| MigrationState {
            name,
            applied: true,
        }));
        Ok(states)
    }

    /// Row counts of every table of the schema, in schema order.
    pub fn table_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| {
            TABLES
                .iter()
                .map(|t| {
                    // Table names come from the schema constant, not input.
                    let n: IntValue = diesel::sql_query(format!("SELECT COUNT(*) AS v FROM {t}"))
                        .get_result(c)
                        .map_err(StoreError::query(format!("count the rows of {t}")))?;
                    Ok((t.to_string(), n.v))
                })
                .collect()
        })
    }

    /// SQLite's `PRAGMA integrity_check`: `"ok"`, or the problems found, one
    /// a line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut guard = self.lock()?;
        pragma_text(&mut guard, "integrity_check", "integrity_check")
    }

    /// The PRAGMAs in effect on the connection.
    pub fn connection_settings(&self) -> Result<ConnectionSettings, StoreError> {
        let mut guard = self.lock()?;
        let c: &mut SqliteConnection = &mut guard;
        let journal_mode = pragma_text(c, "journal_mode", "journal_mode")?;
        let foreign_keys = pragma_text(c, "foreign_keys", "foreign_keys")? == "1";
        let busy = pragma_text(c, "busy_timeout", "timeout")?;
        let busy_timeout_ms = busy.parse().map_err(|_| StoreError::Corrupt {
            table: "pragma_busy_timeout",
            row: "0".into(),
            column: "timeout",
            detail: format!("not a number: {busy:?}"),
        })?;
        let synchronous = match pragma_text(c, "synchronous", "synchronous")?.as_str() {
            "0" => "OFF".to_string(),
            "1" => "NORMAL".to_string(),
            "2" => "FULL".to_string(),
            "3" => "EXTRA".to_string(),
            other => other.to_string(),
        };
        Ok(ConnectionSettings {
            journal_mode,
            foreign_keys,
            busy_timeout_ms,
            synchronous,
        })
    }

    /// The current trading state (the latest change), or `None` if it was
    /// never set. What no row means is the caller's decision; a row whose
    /// state is not one of [`TradingState`]'s texts is an error
    /// ([`StoreError::InvalidTradingState`]), never read as a state.
    pub fn trading_state(&self) -> Result<Option<TradingStateRecord>, StoreError> {
        let row: Option<(String, String, NaiveDateTime)> = self.read(|c| {
            trading_state::table
                .order(trading_state::id.desc())
                .select((
                    trading_state::state,
                    trading_state::cause,
                    trading_state::time,
                ))
                .first(c)
                .optional()
                .map_err(StoreError::query("read the trading state"))
        })?;
        row.map(|(state, cause, time)| {
            let state = state
                .parse::<TradingState>()
                .map_err(|_| StoreError::InvalidTradingState { state })?;
            Ok(TradingStateRecord { state, cause, time })
        })
        .transpose()
    }

    /// Records a trading state change, stamped with the wall clock.
    pub fn set_trading_state(
        &self,
        state: TradingState,
        cause: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        record_trading_state(self, Utc::now(), state, cause, actor)
    }

    /// [`set_trading_state`](Self::set_trading_state) stamped with `time`
    /// (the engine's clock, simulated in a backtest).
    pub fn set_trading_state_at(
        &self,
        time: DateTime<Utc>,
        state: TradingState,
        cause: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        record_trading_state(self, time, state, cause, actor)
    }

    /// Queues an operator's request for the engine (an emergency stop or a
    /// resume); returns its id. The engine handles pending requests before
    /// it acts, every cycle, and marks them handled with the outcome.
    pub fn request_control(&self, request: &ControlRequest) -> Result<i64, StoreError> {
        self.write(|c| {
            diesel::insert_into(control_requests::table)
                .values((
                    control_requests::time.eq(request.time.naive_utc()),
                    control_requests::actor.eq(&request.actor),
                    control_requests::action.eq(request.action.as_str()),
                    control_requests::flatten.eq(request.flatten),
                    control_requests::reason.eq(&request.reason),
                ))
                .returning(control_requests::id)
                .get_result(c)
                .map_err(StoreError::query("queue the control request"))
        })
    }

    /// Requests not yet handled, oldest first.
    pub fn pending_control_requests(&self) -> Result<Vec<ControlRequest>, StoreError> {
        self.read(|c| {
            let rows: Vec<(i64, NaiveDateTime, String, String, bool, String)> =
                control_requests::table
                    .filter(control_requests::handled_at.is_null())
                    .order(control_requests::id.asc())
                    .select((
                        control_requests::id,
                        control_requests::time,
                        control_requests::actor,
                        control_requests::action,
                        control_requests::flatten,
                        control_requests::reason,
                    ))
                    .load(c)
                    .map_err(StoreError::query("read the pending control requests"))?;
            rows.into_iter()
                .map(|(id, time, actor, action, flatten, reason)| {
                    let action =
                        ControlAction::parse(&action).ok_or_else(|| StoreError::Corrupt {
                            table: "control_requests",
                            row: id.to_string(),
                            column: "action",
                            detail: format!("unknown action {action:?}"),
                        })?;
                    Ok(ControlRequest {
                        id: Some(id),
                        time: DateTime::from_naive_utc_and_offset(time, Utc),
                        actor,
                        action,
                        flatten,
                        reason,
                    })
                })
                .collect()
        })
    }

    /// Marks request `id` handled at `time` with what was done.
    pub fn mark_control_handled(
        &self,
        id: i64,
        time: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            diesel::update(control_requests::table.filter(control_requests::id.eq(id)))
                .set((
                    control_requests::handled_at.eq(Some(time.naive_utc())),
                    control_requests::outcome.eq(Some(outcome)),
                ))
                .execute(c)
                .map_err(StoreError::query("mark the control request handled"))?;
            Ok(())
        })
    }

    /// Every order ever written, oldest first (in the order they were
    /// written): the journal a simulated exchange is rebuilt from.
    pub fn all_orders(&self) -> Result<Vec<core_domain::Order>, StoreError> {
        self.read(ops::all_orders)
    }

    /// The status history of an order, oldest first (empty for an unknown
    /// order).
    pub fn order_events(&self, order_ref: &str) -> Result<Vec<OrderEvent>, StoreError> {
        self.read(|c| ops::order_events(c, order_ref))
    }

    /// Decision records of `kind` at or after `since`, oldest first.
    pub fn decisions_since(
        &self,
        kind: core_domain::DecisionKind,
        since: DateTime<Utc>,
    ) -> Result<Vec<core_domain::DecisionRecord>, StoreError> {
        self.read(|c| ops::decisions_of_kind_since(c, kind.as_str(), since.naive_utc()))
    }

    /// Ledger entries in the order they were appended; only those with the
    /// given reference (an execution id, a trade id) when one is given.
    pub fn ledger_entries(
        &self,
        reference: Option<&str>,
    ) -> Result<Vec<core_domain::LedgerEntry>, StoreError> {
        self.read(|c| ops::ledger_entries(c, reference))
    }

    /// Runs `f` in one transaction: everything it writes through the
    /// [`StoreTx`] is committed together when it returns `Ok`, and nothing
    /// when it returns `Err` (or the process dies first). A repository call
    /// that fails inside `f` undoes only itself, so `f` may carry on (e.g.
    /// after a [`core_domain::RepoError::Duplicate`]).
    ///
    /// `f` must not use this `Store` itself (that would wait forever for the
    /// connection it holds); it uses the `StoreTx` it is given.
    pub fn atomically<T, E>(&self, f: impl FnOnce(&StoreTx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut guard = self.lock().map_err(E::from)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        let conn: &mut SqliteConnection = &mut guard;
        let body = |c: &mut SqliteConnection| {
            let tx = StoreTx {
                conn: RefCell::new(c),
            };
            f(&tx).map_err(TxFail::Caller)
        };
        // Inside a unit of work: a savepoint of the unit's transaction.
        let result = if self.enter_unit(conn).map_err(E::from)? {
            conn.transaction(body)
        } else {
            conn.immediate_transaction(body)
        };
        result.map_err(|e| match e {
            TxFail::Caller(e) => e,
            TxFail::Database(source) => E::from(StoreError::Query {
                what: "begin or commit a transaction".into(),
                source,
            }),
        })
    }

    /// The connection. After a panic in another thread that held it, a
    /// transaction may have been left open on it; a file database is then
    /// reconnected (SQLite rolls the open transaction back when the old
    /// connection closes), an in-memory one is unusable.
    fn lock(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        match self.conn.lock() {
            Ok(guard) => Ok(guard),
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                match &self.location {
                    Location::Memory => Err(StoreError::Poisoned {
                        detail: "a thread panicked while using it, and an in-memory database \
                                 cannot be reopened"
                            .into(),
                    }),
                    Location::File(_) => {
                        *guard = connect(&self.location)?;
                        // The old connection's open unit died with it.
                        self.unit.store(false, Ordering::SeqCst);
                        self.unit_begun.store(false, Ordering::SeqCst);
                        self.conn.clear_poison();
                        tracing::warn!(database = %self.location.display(), "reconnected after a panic");
                        Ok(guard)
                    }
                }
            }
        }
    }
}

/// Either our error or the caller's, inside [`Store::atomically`].
enum TxFail<E> {
    Database(diesel::result::Error),
    Caller(E),
}

impl<E> From<diesel::result::Error> for TxFail<E> {
    fn from(e: diesel::result::Error) -> Self {
        TxFail::Database(e)
    }
}

/// The repositories inside one transaction of [`Store::atomically`]. It
/// implements the same repository traits as [`Store`]; each call is a
/// savepoint, so a failed call undoes only itself.
pub struct StoreTx<'a> {
    conn: RefCell<&'a mut SqliteConnection>,
}

impl fmt::Debug for StoreTx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreTx").finish_non_exhaustive()
    }
}

fn record_trading_state(
    exec: &impl Exec,
    time: DateTime<Utc>,
    state: TradingState,
    cause: &str,
    actor: &str,
) -> Result<(), StoreError> {
    let state = state.as_str();
    exec.write(|c| {
        diesel::insert_into(trading_state::table)
            .values((
                trading_state::time.eq(time.naive_utc()),
                trading_state::state.eq(state),
                trading_state::cause.eq(cause),
                trading_state::actor.eq(actor),
            ))
            .execute(c)
            .map_err(StoreError::query("record the trading state"))?;
        Ok(())
    })?;
    tracing::info!(state, cause, actor, "trading state recorded");
    Ok(())
}

/// How a repository call gets its connection and transaction.
pub(crate) trait Exec {
    /// Runs `f` as one writing transaction (or savepoint).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Runs `f` on a consistent snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
}

impl Exec for Store {
    fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.enter_unit(&mut guard)? {
            // Inside a unit of work: a savepoint of its transaction.
            guard.transaction(f)
        } else {
            guard.immediate_transaction(f)
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock()?;
        // Inside a begun unit of work the connection's transaction is
        // already a consistent snapshot, and a read has nothing to roll
        // back: no savepoint (two statements fewer per read).
        if self.unit_begun.load(Ordering::SeqCst) {
            return f(&mut guard);
        }
        guard.transaction(f)
    }
}

impl StoreTx<'_> {
    /// [`Store::set_trading_state`] inside the transaction.
    pub fn set_trading_state(
        &self,
        state: TradingState,
        cause: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        record_trading_state(self, Utc::now(), state, cause, actor)
    }

    /// [`Store::set_trading_state_at`] inside the transaction.
    pub fn set_trading_state_at(
        &self,
        time: DateTime<Utc>,
        state: TradingState,
        cause: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        record_trading_state(self, time, state, cause, actor)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .try_borrow_mut()
            .map_err(|_| StoreError::Poisoned {
                detail: "a StoreTx was used from inside one of its own calls".into(),
            })?;
        conn.transaction(f)
    }
}

impl Exec for StoreTx<'_> {
    fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(f)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_url_forms_are_parsed() {
        let file = |p: &str| Location::File(PathBuf::from(p));
        assert_eq!(
            Location::parse("sqlite://data/t.db").unwrap(),
            file("data/t.db")
        );
        assert_eq!(
            Location::parse("sqlite:///abs/t.db").unwrap(),
            file("/abs/t.db")
        );
        assert_eq!(
            Location::parse("sqlite:data/t.db").unwrap(),
            file("data/t.db")
        );
        assert_eq!(
            Location::parse("sqlite:data/t.db?mode=rwc").unwrap(),
            file("data/t.db")
        );
        assert_eq!(Location::parse(" data/t.db ").unwrap(), file("data/t.db"));
        assert_eq!(Location::parse(":memory:").unwrap(), Location::Memory);
        assert_eq!(
            Location::parse("sqlite::memory:").unwrap(),
            Location::Memory
        );
        assert!(Location::parse("postgres://u@h/db").is_err());
        assert!(Location::parse("").is_err());
        assert!(Location::parse("sqlite://").is_err());
    }

    #[test]
    fn test_store_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Store>();
    }

    #[test]
    fn test_in_memory_store_migrates_and_has_no_path() {
        let s = Store::open_and_migrate(":memory:").unwrap();
        assert!(s.path().is_none());
        assert_eq!(s.integrity_check().unwrap(), "ok");
        assert!(s.table_counts().unwrap().iter().all(|(_, n)| *n == 0));
    }
}
