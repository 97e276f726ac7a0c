//! The IBKR path end to end: `traderd` with `broker.kind = "ibkr"` against
//! the simulated TWS gateway (the real `ibapi` client over loopback TCP,
//! the gateway's clock in lockstep), with the default configuration,
//! trades the same days as `traderd` on the in-process simulated exchange
//! with the same decisions, orders, fills and trades; and faults injected
//! into such a run leave no duplicate order, no lost fill and the
//! positions reconciled.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::Command;

use core_domain::{AuditRepository, TradeFilter, TradeRepository};

/// The fault test's window (a loose strategy trades a lot in it).
const FROM: &str = "2021-03-01";
const TO: &str = "2021-03-05";
/// The comparison's window: the default strategy opens five trades and
/// closes four at their profit target in it.
const DEFAULT_FROM: &str = "2020-08-17";
const DEFAULT_TO: &str = "2020-08-28";
/// The default configuration (no log files in the test's directory).
const DEFAULTS: &str = "[logging]\nfile = false\n";

/// A strategy loose enough to trade in a week; everything else default.
const LOOSE: &str = r#"
[strategy]
otm_range = { min = 0.05, max = 0.25 }
premium_range = { min = 0.05, max = 5.0 }
dte_range = { min = 5, max = 30 }
position_size = 1
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

fn run_traderd(dir: &Path, config: &str, (from, to): (&str, &str)) -> String {
    std::fs::write(dir.join("trader.toml"), config).unwrap();
    let out = Command::new(traderd())
        .args(["--from", from, "--to", to, "--quiet"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("TRADER_CONFIG")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

fn store(dir: &Path) -> store::Store {
    store::Store::open(dir.join("data/trader.db").to_str().unwrap()).unwrap()
}

/// Every trade: id, contract, premiums, exit, P&L.
fn trades(dir: &Path) -> Vec<String> {
    let mut t: Vec<String> = store(dir)
        .trades(&TradeFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| {
            format!(
                "{} {} {} {} x{} entry {} exit {:?} {:?} pnl {:?}",
                t.trade_id,
                t.symbol,
                t.strike,
                t.expiration,
                t.contracts,
                t.entry_premium,
                t.exit_premium,
                t.exit_reason,
                t.profit_loss,
            )
        })
        .collect();
    t.sort();
    t
}

/// Every order: ref, side, quantity, limit, final status. A DAY order
/// left at the close is `Expired` at the simulated exchange and
/// `Cancelled` over the TWS protocol (TWS has no expired status; it
/// reports the end-of-day cancel), so the two count as one here.
fn orders(dir: &Path) -> Vec<String> {
    let mut o: Vec<String> = store(dir)
        .all_orders()
        .unwrap()
        .into_iter()
        .map(|o| {
            format!(
                "{} {:?} {} @ {} {:?} filled {}",
                o.intent.order_ref,
                o.intent.side,
                o.intent.quantity,
                o.intent.limit_price,
                match o.status {
                    core_domain::OrderStatus::Expired => core_domain::OrderStatus::Cancelled,
                    other => other,
                },
                o.filled_quantity
            )
        })
        .collect();
    o.sort();
    o
}

/// The engine's choices: time, kind, subject and decision of every
/// decision record (entries, skips, exits, actions).
fn decisions(dir: &Path) -> Vec<String> {
    let mut d: Vec<String> = store(dir)
        .recent_decisions(i64::MAX)
        .unwrap()
        .into_iter()
        .map(|d| {
            format!(
                "{} {:?} {} {}: {}",
                d.time, d.kind, d.subject, d.decision, d.reason
            )
        })
        .collect();
    d.sort();
    d
}

/// Every fill: order, price, quantity, commission, time.
fn fills(dir: &Path) -> Vec<String> {
    use core_domain::OrderRepository;
    let s = store(dir);
    let mut f: Vec<String> = s
        .all_orders()
        .unwrap()
        .into_iter()
        .flat_map(|o| s.fills(&o.intent.order_ref).unwrap())
        .map(|f| {
            format!(
                "{} {:?} {} @ {} fee {} at {}",
                f.order_ref, f.side, f.quantity, f.price, f.commission, f.time
            )
        })
        .collect();
    f.sort();
    f
}

/// The settings of `config` as the daemon loads them.
fn settings_of(config: &str) -> settings::Settings {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), config).unwrap();
    let opts = settings::LoadOptions::for_config_arg(Some(&dir.path().join("t.toml")));
    settings::load(&opts).unwrap().settings
}

/// A gateway over the exchange traderd would trade in process, with
/// `faults` from the start.
fn gateway(
    rt: &tokio::runtime::Runtime,
    config: &str,
    (from, to): (&str, &str),
    faults: sim_gateway::FaultConfig,
) -> sim_gateway::GatewayHandle {
    let settings = settings_of(config);
    let from = from.parse().unwrap();
    let exchange = traderd::wiring::sim_exchange(
        &settings,
        traderd::wiring::history().unwrap(),
        settings.broker.sim.chain.clone(),
        from,
        None,
    )
    .unwrap();
    rt.block_on(sim_gateway::SimGateway::start(
        sim_gateway::GatewayConfig {
            port: 0,
            control_port: Some(0),
            from: Some(from),
            to: Some(to.parse().unwrap()),
            faults,
            ..sim_gateway::GatewayConfig::default()
        },
        exchange,
    ))
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// traderd's configuration `rest` for the gateway `handle`.
fn ibkr_config(handle: &sim_gateway::GatewayHandle, rest: &str) -> String {
    format!(
        "[broker]\nkind = \"ibkr\"\n[broker.ibkr]\nport = {}\nsim_control = \"{}\"\nconnect_attempts = 3\nmessages_per_second = 5000\n{rest}",
        handle.addr().port(),
        handle.control_addr().unwrap()
    )
}

#[test]
fn test_traderd_over_the_simulated_gateway_decides_as_in_process() {
    // In process: the simulated exchange.
    let sim = tempfile::tempdir().unwrap();
    let window = (DEFAULT_FROM, DEFAULT_TO);
    run_traderd(
        sim.path(),
        &format!("[broker]\nkind = \"sim\"\n{DEFAULTS}"),
        window,
    );

    // Over the TWS protocol: the same exchange behind the gateway.
    let rt = runtime();
    let handle = gateway(&rt, DEFAULTS, window, sim_gateway::FaultConfig::default());
    let ibkr = tempfile::tempdir().unwrap();
    let config = ibkr_config(&handle, DEFAULTS);
    let out = run_traderd(ibkr.path(), &config, window);
    assert!(out.contains("simulated gateway"), "{out}");
    assert!(out.contains("reached the close"), "{out}");

    let (a, b) = (trades(sim.path()), trades(ibkr.path()));
    // 4 trades at real option prices (2 closed at the target, 2 open).
    assert!(
        a.len() >= 4,
        "the default strategy trades in this window: {a:#?}"
    );
    assert_eq!(
        a, b,
        "trades differ between the in-process and gateway paths"
    );
    assert_eq!(orders(sim.path()), orders(ibkr.path()));
    let f = fills(sim.path());
    assert!(f.len() >= a.len(), "{f:#?}");
    assert_eq!(f, fills(ibkr.path()), "fills differ");
    let (da, db) = (decisions(sim.path()), decisions(ibkr.path()));
    let first_difference = da.iter().zip(&db).position(|(x, y)| x != y);
    assert!(
        first_difference.is_none() && da.len() == db.len(),
        "decisions differ ({} vs {}); first at {first_difference:?}: {:?} vs {:?}",
        da.len(),
        db.len(),
        first_difference.map(|i| &da[i]),
        first_difference.map(|i| &db[i]),
    );
    // No broker error was recorded on the gateway path.
    let errors: Vec<_> = store(ibkr.path())
        .recent_audit(10_000)
        .unwrap()
        .into_iter()
        .filter(|a| {
            a.outcome.as_deref().is_some_and(|o| o.contains("error"))
                || a.action.contains("error")
                || a.action.contains("not_sent")
        })
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    rt.block_on(handle.shutdown());
}

/// Faults injected while traderd trades over the gateway — the connection
/// dropped right after an order was accepted, dropped again at arbitrary
/// moments, corrupt and garbage frames — leave no duplicate order, no lost fill, and the positions in
/// the database equal to the exchange's; the daemon runs to the end.
#[test]
fn test_faults_leave_no_duplicate_order_no_lost_fill_and_positions_reconciled() {
    use core_domain::{AccountRepository, Broker, OrderRepository};
    let rt = runtime();
    let handle = gateway(
        &rt,
        LOOSE,
        (FROM, TO),
        sim_gateway::FaultConfig {
            drop_after_place_order: true,
            ..sim_gateway::FaultConfig::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = ibkr_config(&handle, LOOSE);
    let handle = std::sync::Arc::new(handle);
    let injector = {
        let handle = std::sync::Arc::clone(&handle);
        std::thread::spawn(move || {
            for fault in [
                sim_gateway::Fault::DropNow,
                sim_gateway::Fault::DropAfterPlaceOrder,
                sim_gateway::Fault::Malformed(sim_gateway::MalformedKind::Corrupt),
                sim_gateway::Fault::DropAfterMessages(40),
                sim_gateway::Fault::Malformed(sim_gateway::MalformedKind::Garbage),
                sim_gateway::Fault::DropNow,
            ] {
                std::thread::sleep(std::time::Duration::from_millis(1000));
                handle.inject(fault);
            }
        })
    };
    let out = run_traderd(dir.path(), &config, (FROM, TO));
    injector.join().unwrap();
    assert!(out.contains("reached the close"), "{out}");

    let exchange = handle.exchange();
    let db = store(dir.path());
    // The faults happened, and the daemon saw the connection come back.
    let audit = db.recent_audit(100_000).unwrap();
    let lost = audit
        .iter()
        .filter(|a| a.action == "broker.connection_lost")
        .count();
    let restored = audit
        .iter()
        .filter(|a| a.action == "broker.connection_restored")
        .count();
    assert!(
        lost >= 2 && restored >= lost,
        "lost {lost}, restored {restored}"
    );
    // No duplicate order: one exchange order per order ref, never filled
    // beyond its quantity.
    let journal = db.all_orders().unwrap();
    let mut executed: std::collections::BTreeMap<String, i64> = Default::default();
    for f in exchange.all_executions() {
        *executed.entry(f.order_ref.clone()).or_default() += f.quantity;
    }
    for (order_ref, qty) in &executed {
        let o = journal
            .iter()
            .find(|o| &o.intent.order_ref == order_ref)
            .unwrap_or_else(|| panic!("the exchange filled {order_ref}, unknown to the database"));
        assert!(*qty <= o.intent.quantity, "{order_ref} filled {qty} times");
    }
    // No lost fill: every execution at the exchange is in the database.
    let mut recorded: Vec<String> = journal
        .iter()
        .flat_map(|o| db.fills(&o.intent.order_ref).unwrap())
        .map(|f| format!("{} {} @ {} at {}", f.order_ref, f.quantity, f.price, f.time))
        .collect();
    let mut at_exchange: Vec<String> = exchange
        .all_executions()
        .into_iter()
        .map(|f| format!("{} {} @ {} at {}", f.order_ref, f.quantity, f.price, f.time))
        .collect();
    recorded.sort();
    at_exchange.sort();
    assert!(!at_exchange.is_empty());
    assert_eq!(
        recorded, at_exchange,
        "fills in the database vs at the exchange"
    );
    // Positions reconciled.
    let key = |p: &core_domain::Position| (p.contract.key(), p.quantity);
    let mut ours: Vec<_> = db.positions().unwrap().iter().map(key).collect();
    let mut theirs: Vec<_> = rt
        .block_on(exchange.positions())
        .unwrap()
        .iter()
        .map(key)
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "positions in the database vs at the exchange");
}

/// `trader-cli scan` through the simulated gateway lists the same ranked
/// opportunities, at the same prices, as the scan of the in-process
/// exchange at that moment.
#[test]
fn test_scan_through_the_gateway_matches_the_in_process_scan() {
    let rt = runtime();
    let handle = gateway(
        &rt,
        DEFAULTS,
        (DEFAULT_FROM, DEFAULT_TO),
        sim_gateway::FaultConfig::default(),
    );
    // 11:00 New York.
    handle
        .advance_to("2020-08-17T15:00:00Z".parse().unwrap())
        .unwrap();
    let cli = e2e::binary("trader-cli").expect("trader-cli is not built");
    let scan = |dir: &Path, args: &[&str]| -> serde_json::Value {
        let out = Command::new(&cli)
            .args(args)
            .current_dir(dir)
            .env_remove("TRADER_CONFIG")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let opportunities = |v: &serde_json::Value| -> Vec<String> {
        v["opportunities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{} {} {} bid {} ask {}",
                    o["symbol"], o["strike"], o["expiry"], o["bid"], o["ask"]
                )
            })
            .collect()
    };
    let ibkr = tempfile::tempdir().unwrap();
    std::fs::write(
        ibkr.path().join("trader.toml"),
        ibkr_config(&handle, DEFAULTS),
    )
    .unwrap();
    let through_gateway = scan(ibkr.path(), &["scan", "--json"]);
    let sim = tempfile::tempdir().unwrap();
    std::fs::write(sim.path().join("trader.toml"), DEFAULTS).unwrap();
    let in_process = scan(
        sim.path(),
        &["scan", "--json", "--date", "2020-08-17", "--time", "11:00"],
    );
    let a = opportunities(&in_process);
    assert!(!a.is_empty(), "{in_process:#}");
    assert_eq!(a, opportunities(&through_gateway));
    assert_eq!(
        in_process["passed_screen"],
        through_gateway["passed_screen"]
    );
    rt.block_on(
        std::sync::Arc::try_unwrap(std::sync::Arc::new(handle))
            .ok()
            .unwrap()
            .shutdown(),
    );
}
