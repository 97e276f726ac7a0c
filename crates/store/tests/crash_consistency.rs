//! A write interrupted by the death of the process leaves the database
//! consistent.
//!
//! `crash_interrupted_writes_leave_the_database_consistent` re-launches this
//! test binary as a child running the ignored `crash_writer` test, which
//! writes batches of a known shape in a loop, one transaction per batch:
//!
//! * one order, moved created → sent → accepted → partially filled →
//!   partially filled → filled (6 `order_events` rows),
//! * 3 fills of 2 contracts each,
//! * 6 ledger entries (proceeds and commission of each fill),
//! * 1 audit entry.
//!
//! The parent kills the child with SIGKILL at a random-ish moment once it
//! has committed a few batches, several times over the same file (each new
//! writer resumes the numbering from what is stored), and after every kill
//! checks:
//!
//! 1. `PRAGMA integrity_check` is `ok`;
//! 2. every stored batch is complete and every row belongs to a complete
//!    batch (table counts are exact multiples; each order has exactly its
//!    history, fills and ledger entries; no order is left open);
//! 3. the ledger balance equals the sum of the fills' cash flows, per fill
//!    and in total;
//! 4. a batch the child had started writing but not committed is absent.
//!
//! The writer reports its steps in a progress file (plain `write`s, which
//! survive SIGKILL), so the parent knows when a kill hit a transaction that
//! had already written rows; the test insists that happened at least once.

// Helpers outside #[test] functions panic on failure too: this is a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::at;
use core_domain::*;
use serde_json::json;
use store::Store;

const DB_ENV: &str = "STORE_CRASH_WRITER_DB";
const PROGRESS_ENV: &str = "STORE_CRASH_WRITER_PROGRESS";
const WRITER_TEST: &str = "crash_writer";

const FILLS_PER_BATCH: i64 = 3;
const QTY_PER_FILL: i64 = 2;
const EVENTS_PER_BATCH: i64 = 3 + FILLS_PER_BATCH; // created, sent, accepted, one per fill
const LEDGER_PER_BATCH: i64 = 2 * FILLS_PER_BATCH; // proceeds + commission per fill

fn order_ref(batch: i64) -> String {
    format!("B{batch:06}")
}

fn contract(batch: i64) -> Contract {
    Contract::Option(OptionContract::us(
        Symbol::new("KO").unwrap(),
        Right::Put,
        Price::from_cents(5_000 + 50 * (batch % 10)),
        chrono::NaiveDate::from_ymd_opt(2024, 1, 19).unwrap(),
    ))
}

/// The writer's pause between steps inside a transaction, so that kills
/// land inside transactions as well as between them.
fn pause() {
    sleep(Duration::from_micros(700));
}

/// Appends one progress line with a single `write` of the whole line, so a
/// kill cannot split it (`writeln!` may issue one write per argument).
fn report(progress: &mut File, line: &str) {
    progress.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// Writes batch `n` through the transaction, reporting each step.
fn write_batch(tx: &store::StoreTx<'_>, n: i64, progress: &mut File) -> Result<(), RepoError> {
    let mut step = |what: &str| {
        report(progress, &format!("step {n} {what}"));
        pause();
    };
    let t0 = at(n * 60, 0);
    let mut order = Order::new(OrderIntent {
        order_ref: order_ref(n),
        contract: contract(n),
        side: Side::Sell,
        quantity: FILLS_PER_BATCH * QTY_PER_FILL,
        limit_price: Price::from_cents(40 + n % 7),
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Open,
        trade_id: None,
        created_at: t0,
    });
    tx.insert_order(&order)?;
    step("inserted");
    order
        .transition(OrderStatus::Sent, t0 + chrono::Duration::seconds(1), None)
        .unwrap();
    order.broker_order_id = Some(n + 1);
    tx.update_order(&order)?;
    step("sent");
    order
        .transition(
            OrderStatus::Accepted,
            t0 + chrono::Duration::seconds(2),
            None,
        )
        .unwrap();
    tx.update_order(&order)?;
    step("accepted");
    let mut ledger = Ledger::new();
    for k in 0..FILLS_PER_BATCH {
        let fill = Fill {
            exec_id: format!("{}-E{k}", order_ref(n)),
            order_ref: order_ref(n),
            contract: contract(n),
            side: Side::Sell,
            quantity: QTY_PER_FILL,
            price: Price::from_raw(4_000 + 7 * n + 13 * k),
            commission: Money::from_cents(65 * QTY_PER_FILL),
            time: t0 + chrono::Duration::seconds(3 + k),
        };
        order.apply_fill(&fill).unwrap();
        assert!(
            tx.record_fill(&fill)?,
            "fill {} already known",
            fill.exec_id
        );
        tx.update_order(&order)?;
        let before = ledger.entries().len();
        ledger.post_fill(&fill).unwrap();
        tx.append_ledger(&ledger.entries()[before..])?;
        step("filled");
    }
    tx.append_audit(
        &AuditEntry::new(t0, "crash_writer", "batch.written")
            .context(json!({"batch": n, "order_ref": order_ref(n)}))
            .outcome("filled"),
    )?;
    step("audited");
    Ok(())
}

/// The child process: does nothing unless the parent set `DB_ENV`.
#[test]
#[ignore = "run as a child process by crash_interrupted_writes_leave_the_database_consistent"]
fn crash_writer() {
    let Ok(db) = std::env::var(DB_ENV) else {
        return;
    };
    let progress_path = std::env::var(PROGRESS_ENV).unwrap();
    let mut progress = OpenOptions::new()
        .create(true)
        .append(true)
        .open(progress_path)
        .unwrap();
    let store = Store::open_and_migrate(&db).unwrap();
    let mut n = count(&store, "orders");
    report(&mut progress, &format!("start {n}"));
    // A guard in case the parent dies without killing us.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        report(&mut progress, &format!("begin {n}"));
        store
            .atomically(|tx| write_batch(tx, n, &mut progress))
            .unwrap();
        report(&mut progress, &format!("commit {n}"));
        n += 1;
    }
}

fn count(store: &Store, table: &str) -> i64 {
    store
        .table_counts()
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == table)
        .unwrap()
        .1
}

/// A small xorshift generator seeded from the clock: random-ish kill times
/// without a dependency; the seed is printed to reproduce a failure.
struct Jitter(u64);

impl Jitter {
    fn next_below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn spawn_writer(db: &Path, progress: &Path, stderr: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            WRITER_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, db)
        .env(PROGRESS_ENV, progress)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// The last line the writer reported before it died.
/// The last complete (newline-terminated) progress line. A line the kill
/// cut short is ignored: the line before it still bounds the stored state.
fn last_line(progress: &Path) -> String {
    let text = fs::read_to_string(progress).unwrap();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete.lines().last().unwrap_or_default().to_string()
}

/// Checks that the database holds exactly `n` complete batches, numbered
/// 0..n, and nothing else; returns `n`.
fn check_consistent(db: &Path) -> i64 {
    let store = Store::open(db.to_str().unwrap()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert!(store.migrate().unwrap().is_empty());
    let n = count(&store, "orders");
    assert_eq!(count(&store, "order_events"), n * EVENTS_PER_BATCH);
    assert_eq!(count(&store, "fills"), n * FILLS_PER_BATCH);
    assert_eq!(count(&store, "ledger_entries"), n * LEDGER_PER_BATCH);
    assert_eq!(count(&store, "audit_log"), n);
    assert!(
        store.open_orders().unwrap().is_empty(),
        "an order was left open"
    );

    use OrderStatus::*;
    let history = [
        Created,
        Sent,
        Accepted,
        PartiallyFilled,
        PartiallyFilled,
        Filled,
    ];
    let mut total = Money::ZERO;
    for b in 0..n {
        let r = order_ref(b);
        let order = store
            .order(&r)
            .unwrap()
            .unwrap_or_else(|| panic!("batch {b} of {n} is missing"));
        assert_eq!(order.status, Filled, "{r}");
        assert_eq!(order.filled_quantity, FILLS_PER_BATCH * QTY_PER_FILL, "{r}");
        let statuses: Vec<OrderStatus> = store
            .order_events(&r)
            .unwrap()
            .into_iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(statuses, history, "history of {r}");
        let fills = store.fills(&r).unwrap();
        assert_eq!(fills.len() as i64, FILLS_PER_BATCH, "fills of {r}");
        for f in &fills {
            let booked: Money = store
                .ledger_entries(Some(&f.exec_id))
                .unwrap()
                .iter()
                .map(|e| e.amount)
                .sum();
            assert_eq!(booked, f.cash_flow(), "ledger of {}", f.exec_id);
            total += f.cash_flow();
        }
        assert_eq!(
            order.commission,
            fills.iter().map(|f| f.commission).sum::<Money>(),
            "{r}"
        );
    }
    assert_eq!(store.ledger_balance().unwrap(), total);
    assert_eq!(store.order(&order_ref(n)).unwrap(), None);
    let audited: Vec<i64> = store
        .recent_audit(n + 1)
        .unwrap()
        .iter()
        .map(|a| a.context["batch"].as_i64().unwrap())
        .rev()
        .collect();
    assert_eq!(audited, (0..n).collect::<Vec<_>>());
    n
}

#[test]
fn crash_interrupted_writes_leave_the_database_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let progress = dir.path().join("progress.log");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ (u64::from(std::process::id()) << 32)
        | 1;
    println!("jitter seed {seed}");
    let mut jitter = Jitter(seed);
    let started = Instant::now();
    let (mut cycles, mut mid_transaction_kills) = (0, 0);
    while cycles < 10 || (mid_transaction_kills == 0 && cycles < 25) {
        let stderr = dir.path().join(format!("writer-{cycles}.stderr"));
        let stored_before = if db.exists() {
            count(&Store::open(db.to_str().unwrap()).unwrap(), "orders")
        } else {
            0
        };
        let wanted = stored_before + 1 + jitter.next_below(4) as i64;
        let mut child = spawn_writer(&db, &progress, &stderr);
        // Wait until the writer has committed a few batches.
        let mut poll: Option<Store> = None;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the writer exited by itself ({status}):\n{}",
                    fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            if poll.is_none() && db.exists() {
                poll = Some(Store::open(db.to_str().unwrap()).unwrap());
            }
            // Before the writer has migrated there is no table to count.
            if let Some(Ok(counts)) = poll.as_ref().map(Store::table_counts)
                && counts.iter().any(|(t, n)| t == "orders" && *n >= wanted)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the writer made no progress"
            );
            sleep(Duration::from_millis(3));
        }
        drop(poll);
        sleep(Duration::from_micros(jitter.next_below(15_000)));
        child.kill().unwrap();
        child.wait().unwrap();

        let last = last_line(&progress);
        let stored = check_consistent(&db);
        // The batch being written when the writer died is either whole
        // (the kill came after COMMIT) or absent.
        let mut words = last.split_whitespace();
        let (kind, batch) = (
            words.next().unwrap_or_default(),
            words.next().and_then(|b| b.parse::<i64>().ok()),
        );
        match (kind, batch) {
            ("step", Some(b)) | ("begin", Some(b)) => {
                assert!(
                    stored == b || stored == b + 1,
                    "after {last:?}: {stored} batches"
                );
                if kind == "step" && stored == b {
                    mid_transaction_kills += 1;
                }
            }
            ("commit", Some(b)) => assert_eq!(stored, b + 1, "after {last:?}"),
            _ => panic!("unexpected progress line {last:?}"),
        }
        println!("cycle {cycles}: killed after {last:?}, {stored} batches stored");
        cycles += 1;
    }
    assert!(
        mid_transaction_kills > 0,
        "no kill landed inside a transaction in {cycles} cycles"
    );
    println!(
        "{cycles} kills, {mid_transaction_kills} inside a transaction, {:?}",
        started.elapsed()
    );
}
