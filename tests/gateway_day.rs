//! The IBKR path end to end: `traderd` with `broker.kind = "ibkr"` against
//! the simulated TWS gateway (the real `ibapi` client over loopback TCP,
//! the gateway's clock in lockstep) trades the same days as `traderd` on
//! the in-process simulated exchange, with the same decisions, orders and
//! trades.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use core_domain::{AuditRepository, TradeFilter, TradeRepository};

const FROM: &str = "2021-03-01";
const TO: &str = "2021-03-05";

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

fn run_traderd(dir: &Path, config: &str) -> String {
    std::fs::write(dir.join("trader.toml"), config).unwrap();
    let out = Command::new(traderd())
        .args(["--from", FROM, "--to", TO, "--quiet"])
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

/// Every order: ref, side, quantity, limit, final status.
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
                o.status,
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

#[test]
fn test_traderd_over_the_simulated_gateway_decides_as_in_process() {
    // In process: the simulated exchange.
    let sim = tempfile::tempdir().unwrap();
    run_traderd(sim.path(), &format!("[broker]\nkind = \"sim\"\n{LOOSE}"));

    // Over the TWS protocol: the same exchange behind the gateway.
    let settings = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.toml"), LOOSE).unwrap();
        let opts = settings::LoadOptions::for_config_arg(Some(&dir.path().join("t.toml")));
        settings::load(&opts).unwrap().settings
    };
    let from = FROM.parse().unwrap();
    let history = traderd::wiring::history().unwrap();
    let exchange = traderd::wiring::sim_exchange(
        &settings,
        Arc::clone(&history),
        settings.broker.sim.chain.clone(),
        from,
        None,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt
        .block_on(sim_gateway::SimGateway::start(
            sim_gateway::GatewayConfig {
                port: 0,
                control_port: Some(0),
                from: Some(from),
                to: Some(TO.parse().unwrap()),
                ..sim_gateway::GatewayConfig::default()
            },
            exchange,
        ))
        .unwrap();
    let ibkr = tempfile::tempdir().unwrap();
    let config = format!(
        "[broker]\nkind = \"ibkr\"\n[broker.ibkr]\nport = {}\nsim_control = \"{}\"\nconnect_attempts = 3\nmessages_per_second = 5000\n{LOOSE}",
        handle.addr().port(),
        handle.control_addr().unwrap()
    );
    let out = run_traderd(ibkr.path(), &config);
    assert!(out.contains("simulated gateway"), "{out}");
    assert!(out.contains("reached the close"), "{out}");

    let (a, b) = (trades(sim.path()), trades(ibkr.path()));
    assert!(a.len() >= 3, "the loose strategy should trade: {a:#?}");
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
