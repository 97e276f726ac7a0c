//! The drill over the gateway (issue 12, "What to build" 8): `traderd`
//! trades the simulated gateway in lockstep over several weeks with IB's
//! bad habits switched on (docs/SIM_GATEWAY.md) and is SIGKILLed at random
//! moments and restarted each time; then its database is compared with the
//! gateway's journal (what the exchange really did):
//!
//! * every execution recorded exactly once (by execution id), and nothing
//!   recorded that the exchange did not execute;
//! * the positions in the database equal the exchange's final positions;
//! * no order the exchange does not know is recorded as working or filled,
//!   and no order was sent twice (one exchange order per order ref, none
//!   filled beyond its quantity, no short turned long).
//!
//! About 75 s on 2 cores (debug build), so it is `#[ignore]`d in the
//! default suite and run by CI as a step of its own (`.ci/run`):
//! `cargo test -p e2e --test gateway_drill -- --ignored`.
//! `DRILL_KILLS` (default 6) and `DRILL_SEED` (default 12) vary it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use core_domain::{AccountRepository, OrderRepository, OrderStatus};

const FROM: &str = "2021-03-01";
const TO: &str = "2021-03-19";

/// A strategy loose enough to trade in these weeks; everything else default.
const LOOSE: &str = r#"
[strategy]
otm_range = { min = 0.05, max = 0.25 }
premium_range = { min = 0.05, max = 5.0 }
dte_range = { min = 5, max = 30 }
position_size = 2
max_positions = 6
min_open_interest = 0
max_spread_pct = 1.0
[risk]
max_sector_concentration = 1.0
max_correlation = 1.0
max_portfolio_var_95 = 1.0
[logging]
file = false
"#;

fn traderd() -> std::path::PathBuf {
    e2e::binary("traderd").expect("traderd is not built; run `cargo test --workspace`")
}

/// xorshift64*: the drill's own randomness (seeded, reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn journal(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
#[ignore = "a drill of about 75 s; run with --ignored"]
fn test_drill_sigkills_over_the_gateway_with_ib_habits() {
    let kills: usize = std::env::var("DRILL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("DRILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("gateway.jsonl");
    let settings = {
        std::fs::write(dir.path().join("t.toml"), LOOSE).unwrap();
        let opts = settings::LoadOptions::for_config_arg(Some(&dir.path().join("t.toml")));
        settings::load(&opts).unwrap().settings
    };
    let from = FROM.parse().unwrap();
    let exchange = traderd::wiring::sim_exchange(
        &settings,
        traderd::wiring::history().unwrap(),
        settings.broker.sim.chain.clone(),
        from,
        None,
    )
    .unwrap();
    let handle = std::sync::Arc::new(
        rt.block_on(sim_gateway::SimGateway::start(
            sim_gateway::GatewayConfig {
                from: Some(from),
                to: Some(TO.parse().unwrap()),
                journal: Some(journal_path.clone()),
                faults: sim_gateway::FaultConfig {
                    status_before_execution: true,
                    commission_delay_ms: 300,
                    corrections: 5,
                    inactive_holds: 3,
                    cancel_races: 2,
                    ..sim_gateway::FaultConfig::default()
                },
                ..sim_gateway::GatewayConfig::default()
            },
            exchange,
        ))
        .unwrap(),
    );
    let config = format!(
        "[broker]\nkind = \"ibkr\"\n[broker.ibkr]\nport = {}\nsim_control = \"{}\"\n\
         connect_attempts = 10\nmessages_per_second = 5000\ncommission_wait_secs = 1\n{LOOSE}",
        handle.addr().port(),
        handle.control_addr().unwrap()
    );
    std::fs::write(dir.path().join("trader.toml"), &config).unwrap();

    // IB's other habits, now and then, from another thread.
    let stop_injecting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let injector = {
        let handle = std::sync::Arc::clone(&handle);
        let stop = std::sync::Arc::clone(&stop_injecting);
        let mut rng = Rng(rng.next() | 1);
        std::thread::spawn(move || {
            let specs = [
                "reject_code 1 110",
                "reject_code 1 201",
                "reject_code 1 103",
                "inactive 1",
                "corrections 2",
                "cancel_race 1",
                "early_assignment",
                "partial_assignment",
                "expiry_disconnected",
                "nightly_restart 1",
                "commission_delay 1500",
                "commission_delay 300",
            ];
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(700 + rng.below(1500)));
                let spec = specs[rng.below(specs.len() as u64) as usize];
                handle.inject(sim_gateway::Fault::parse(spec).unwrap());
            }
        })
    };

    let spawn = || {
        Command::new(traderd())
            .args(["--to", TO, "--quiet"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .env_remove("TRADER_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let started = Instant::now();
    for _ in 0..kills {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(1500 + rng.below(4000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
    }
    // then to the end (restarted if a client id was still held)
    let mut last = String::new();
    for _ in 0..5 {
        let out = spawn().wait_with_output().unwrap();
        last = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop_injecting.store(true, std::sync::atomic::Ordering::SeqCst);
    injector.join().unwrap();
    assert!(last.contains("reached the close"), "{last}");
    let handle = std::sync::Arc::into_inner(handle).expect("the injector is done");
    rt.block_on(handle.shutdown()); // writes the final positions
    eprintln!("drill: {kills} SIGKILLs, {:.0?}", started.elapsed());

    let lines = journal(&journal_path);
    let kind = |k: &'static str| lines.iter().filter(move |l| l["kind"] == k);
    let db = store::Store::open(dir.path().join("data/trader.db").to_str().unwrap()).unwrap();
    let orders = db.all_orders().unwrap();

    // Every execution once, with the exchange's quantity, price and
    // commission (a commission report later than `commission_wait_secs`
    // restates the fill recorded without it).
    let mut recorded: BTreeMap<String, (i64, String, String)> = BTreeMap::new();
    for o in &orders {
        for f in db.fills(&o.intent.order_ref).unwrap() {
            let figures = (f.quantity, f.price.to_string(), f.commission.to_string());
            assert!(
                recorded.insert(f.exec_id.clone(), figures).is_none(),
                "{} recorded twice",
                f.exec_id
            );
        }
    }
    let executed: BTreeMap<String, (i64, String, String)> = kind("execution")
        .map(|l| {
            (
                l["exec_id"].as_str().unwrap().to_string(),
                (
                    l["quantity"].as_i64().unwrap(),
                    l["price"].as_str().unwrap().to_string(),
                    l["commission"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert!(!executed.is_empty(), "the drill traded nothing");
    assert_eq!(
        recorded, executed,
        "database fills vs the gateway's executions"
    );

    // Positions equal.
    let mut ours: Vec<(String, i64)> = db
        .positions()
        .unwrap()
        .iter()
        .map(|p| (p.contract.key(), p.quantity))
        .collect();
    let mut theirs: Vec<(String, i64)> = kind("position")
        .map(|l| {
            (
                l["contract"].as_str().unwrap().to_string(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "positions in the database vs at the exchange");
    assert!(
        theirs
            .iter()
            .all(|(k, q)| !(k.contains(' ') && k.ends_with('P') && *q > 0)),
        "a short turned long: {theirs:?}"
    );

    // No unknown order, none sent twice.
    let mut at_exchange: BTreeSet<String> = BTreeSet::new();
    for l in kind("order") {
        let r = l["order_ref"].as_str().unwrap().to_string();
        assert!(at_exchange.insert(r.clone()), "{r} sent twice");
    }
    for o in &orders {
        let reached = matches!(
            o.status,
            OrderStatus::Accepted | OrderStatus::PartiallyFilled | OrderStatus::Filled
        ) || o.filled_quantity > 0;
        if reached {
            assert!(
                at_exchange.contains(&o.intent.order_ref),
                "{} is {:?} in the database but the exchange never had it",
                o.intent.order_ref,
                o.status
            );
        }
    }
    let mut filled: BTreeMap<String, i64> = BTreeMap::new();
    for l in kind("execution") {
        *filled
            .entry(l["order_ref"].as_str().unwrap().to_string())
            .or_default() += l["quantity"].as_i64().unwrap();
    }
    for (r, q) in filled {
        let o = orders
            .iter()
            .find(|o| o.intent.order_ref == r)
            .unwrap_or_else(|| panic!("the exchange filled {r}, unknown to the database"));
        assert!(
            q <= o.intent.quantity,
            "{r} filled {q} of {}",
            o.intent.quantity
        );
    }
}
