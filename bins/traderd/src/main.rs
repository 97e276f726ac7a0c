//! `traderd`: the trading daemon.
//!
//! With the default configuration and no arguments it paper-trades the
//! simulated exchange, replaying the shipped real history (2010–2022) as
//! fast as the machine allows, with the same engine loop that trades live:
//! perceive → reason → act → learn, every 15 minutes of market time.
//! Everything goes to the database (`database.url`), which `trader-cli
//! status`, `positions`, `trades` and `decisions` read while it runs. When
//! the replay ends it prints a summary and writes a report.
//!
//! SIGINT or SIGTERM stops it after the cycle in progress (nothing is left
//! half-written; the wait for the next cycle wakes within a second);
//! running it again resumes from the database. A second `traderd` on the
//! same database is refused (`<database>.lock`). A SIGKILL
//! loses nothing either: every write is a transaction, and the simulated
//! exchange is rebuilt from the order journal on restart.
//!
//! With `broker.kind = "ibkr"` the same engine trades Interactive Brokers
//! (TWS / IB Gateway, paper unless live trading is opted into in the
//! configuration and the environment) on the wall clock until stopped, or
//! the simulated gateway of `trader-cli sim-gateway` in lockstep
//! (`broker.ibkr.sim_control`); see docs/IBKR_SETUP.md.
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, Utc};
use clap::Parser;
use core_domain::{AuditEntry, AuditRepository, Money};
use orchestrator::backtest::{check_rules, results};
use orchestrator::metrics::MetricsParams;
use orchestrator::report::{ReportMeta, fmt_money, summary_lines, write_report};
use orchestrator::{Pace, Stopped, run_observed};
use serde_json::json;
use traderd::wiring::{ReplayIdentity, Start, resume_or_start};

#[derive(Debug, Parser)]
#[command(
    name = "traderd",
    version,
    about = "The self-learning naked-put trading daemon"
)]
struct Args {
    /// Configuration file (TOML) [default: trader.toml, and the defaults
    /// apply while it does not exist]. A file named here or in TRADER_CONFIG
    /// must exist.
    #[arg(long, env = "TRADER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// First day of the replay (overrides broker.sim.replay.from; the
    /// simulated exchange only).
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<NaiveDate>,
    /// Last day of the replay (overrides broker.sim.replay.to); with
    /// broker.kind = "ibkr", stop at this session's close.
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<NaiveDate>,
    /// Simulated minutes per second; 0 = as fast as possible (overrides
    /// broker.sim.replay.minutes_per_second).
    #[arg(long, value_name = "N")]
    speed: Option<f64>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run_daemon(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("traderd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_daemon(args: &Args) -> Result<ExitCode> {
    let opts = settings::LoadOptions::for_config_arg(args.config.as_deref());
    let loaded = settings::load(&opts)
        .context("loading the configuration (check it with `trader-cli config check`)")?;
    let settings = &loaded.settings;
    let _log = settings::logging::init(&settings.logging, "traderd", None);
    tracing::info!(
        config = %loaded.path.display(),
        broker = %settings.broker.kind,
        mode = %settings.broker.trading_mode,
        "traderd starting"
    );
    let store = Arc::new(
        store::Store::open(&settings.database.url)
            .with_context(|| format!("opening the database {}", settings.database.url))?,
    );
    // One daemon per database (released however this process ends).
    let _lock = match store.path() {
        Some(path) => Some(traderd::lock::DaemonLock::acquire(path)?),
        None => None,
    };
    let applied = store.migrate().context("applying database migrations")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "database migrations applied");
    }
    if settings.broker.kind == "ibkr" {
        return run_ibkr(args, &loaded, store);
    }
    // The simulated exchange is a replay: its database is a research
    // record, kept crash-consistent (WAL) without a sync per commit.
    store.relax_durability_for_research()?;

    let replay = &settings.broker.sim.replay;
    let (cfg_from, cfg_to) = replay
        .window()
        .context("broker.sim.replay.from/to are not dates (run `trader-cli config check`)")?;
    let identity = ReplayIdentity {
        from: args.from.unwrap_or(cfg_from),
        to: args.to.unwrap_or(cfg_to),
        seed: settings.broker.sim.exchange.seed,
        starting_cash: settings.broker.sim.exchange.starting_cash,
    };
    if identity.from > identity.to {
        bail!(
            "the replay starts {} after it ends {}",
            identity.from,
            identity.to
        );
    }
    let speed = args.speed.unwrap_or(replay.minutes_per_second);
    if !speed.is_finite() || speed < 0.0 {
        bail!(
            "--speed must be 0 (as fast as possible) or a positive number of simulated minutes per second; got {speed}"
        );
    }
    let pace = if speed > 0.0 {
        Pace::SimMinutesPerSecond(speed)
    } else {
        Pace::AsFastAsPossible
    };
    let (mut sim, start) = resume_or_start(settings, Arc::clone(&store), &identity)?;
    traderd::agent::install(&mut sim.engine, &loaded, true)?;
    let db = settings::redact_url(&settings.database.url);
    match &start {
        Start::Fresh => println!(
            "traderd: paper-trading the simulated exchange, replaying {identity}; database {db}"
        ),
        Start::Resumed {
            last_cycle,
            orders_replayed,
            cancels_replayed,
        } => println!(
            "traderd: resuming the replay {identity} after {last_cycle} ({orders_replayed} orders and {cancels_replayed} cancels replayed into the exchange); database {db}"
        ),
    }
    store.append_audit(
        &AuditEntry::new(sim.exchange.now(), "traderd", "daemon.start")
            .context(json!({
                "config": loaded.path.display().to_string(),
                "replay": identity.to_string(),
                "resumed": !matches!(start, Start::Fresh),
                "speed_minutes_per_second": speed,
            }))
            .outcome("running"),
    )?;

    let (runtime, stop) = runtime_and_stop_flag()?;
    let cockpit = runtime.block_on(start_cockpit(settings, &store, always_connected()))?;
    let wall = Instant::now();
    let first_time = sim.exchange.now();
    let mut month = first_time.format("%Y-%m").to_string();
    let mut closed = 0usize;
    let quiet = args.quiet;
    let until = sim.until;
    let mut observer = cockpit.observer(|r: &orchestrator::CycleReport| {
        closed += r.trades_closed;
        if let Some(t) = r.time {
            let m = t.format("%Y-%m").to_string();
            if m != month && !quiet {
                month = m;
                eprintln!(
                    "  {} · {closed} trades closed · net liq {} · {} open",
                    t.format("%Y-%m-%d"),
                    fmt_money(Money::from_cents(r.net_liquidation_cents)),
                    r.open_trades
                );
            }
        }
    });
    let stopped = runtime
        .block_on(run_observed(
            &mut sim.engine,
            &sim.clock,
            until,
            pace,
            &stop,
            &mut observer,
        ))
        .context("running the engine");
    drop(observer);
    let elapsed = wall.elapsed();
    cockpit.finish();
    runtime.block_on(cockpit.drain_notifications(NOTIFY_DRAIN));
    let stopped = stopped?;
    let now = sim.exchange.now();
    store.append_audit(
        &AuditEntry::new(now, "traderd", "daemon.stop")
            .context(
                json!({ "stopped": format!("{stopped:?}"), "wall_seconds": elapsed.as_secs_f64() }),
            )
            .outcome("stopped cleanly"),
    )?;
    if stopped == Stopped::Requested {
        println!(
            "traderd: stopped at {now} after the cycle in progress; run traderd again to resume."
        );
        return Ok(ExitCode::SUCCESS);
    }

    // The summary and the report, from the database alone.
    let starting = Money::from_f64_dollars(identity.starting_cash)
        .context("broker.sim.exchange.starting_cash")?;
    let open_time = sim
        .engine
        .schedule()
        .calendar()
        .session_open(sim.first_session)
        .unwrap_or(first_time);
    let res = results(
        &store,
        open_time,
        until,
        starting,
        &MetricsParams::default(),
    )
    .context("reading the run back from the database")?;
    let limits = traderd::wiring::rule_limits(settings);
    let rules = check_rules(&res.trades, &limits);
    let dir = PathBuf::from(&replay.report_dir);
    let title = format!(
        "Paper replay {} to {} (seed {})",
        sim.first_session, identity.to, identity.seed
    );
    let paths = write_report(
        &dir,
        &title,
        &res.summary,
        &res.equity,
        &res.trades,
        &ReportMeta {
            period_from: sim.first_session,
            period_to: identity.to,
            seed: Some(identity.seed),
            config_path: Some(loaded.path.clone()),
            config_hash: None,
            generated_at: Utc::now(),
            caveats: traderd::wiring::caveats(&loaded.settings),
        },
    )
    .with_context(|| format!("writing the report into {}", dir.display()))?;
    println!("{title}: done in {:.1} s", elapsed.as_secs_f64());
    for line in summary_lines(&res.summary, &rules, &limits) {
        println!("{line}");
    }
    for caveat in traderd::wiring::caveats(&loaded.settings) {
        println!("  caveat            {caveat}");
    }
    println!("  database          {db}");
    println!("  report            {}", paths.html.display());
    Ok(ExitCode::SUCCESS)
}

/// `broker.kind = "ibkr"`: the same engine over Interactive Brokers (TWS /
/// IB Gateway, or `trader-cli sim-gateway`), on the wall clock — or, with
/// `broker.ibkr.sim_control`, on the simulated gateway's clock in
/// lockstep. Runs until SIGINT/SIGTERM, or until the close of `--to`.
fn run_ibkr(args: &Args, loaded: &settings::Loaded, store: Arc<store::Store>) -> Result<ExitCode> {
    let settings = &loaded.settings;
    let b = &settings.broker.ibkr;
    let (runtime, stop) = runtime_and_stop_flag()?;
    let quiet = args.quiet;
    let to = args.to;
    let db = settings::redact_url(&settings.database.url);
    let started = Utc::now();
    let outcome = runtime.block_on(async {
        let (mut engine, broker) = traderd::ibkr::ibkr_engine(settings, Arc::clone(&store)).await?;
        traderd::agent::install(&mut engine, loaded, false)?;
        let link = {
            let broker = Arc::clone(&broker);
            Arc::new(move || broker.is_connected()) as cockpit::health::BrokerLink
        };
        let cockpit = start_cockpit(settings, &store, link).await?;
        let until = match to {
            Some(day) => engine
                .schedule()
                .calendar()
                .session_close(day)
                .with_context(|| format!("--to {day} is not an exchange session"))?,
            None => chrono::DateTime::<Utc>::MAX_UTC,
        };
        let mode = if settings.broker.trading_mode == "live" { "LIVE" } else { "paper" };
        let mut closed = 0usize;
        let on_cycle = |r: &orchestrator::CycleReport| {
            closed += r.trades_closed;
            if !quiet && (r.trades_opened > 0 || r.trades_closed > 0) {
                eprintln!(
                    "  {} · {closed} trades closed · net liq {} · {} open",
                    r.time.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
                    fmt_money(Money::from_cents(r.net_liquidation_cents)),
                    r.open_trades
                );
            }
        };
        let mut observer = cockpit.observer(on_cycle);
        let address = format!("{}:{}", b.host, b.port);
        let stopped = if b.sim_control.trim().is_empty() {
            println!(
                "traderd: {mode}-trading Interactive Brokers at {address}, account {}; database {db}",
                broker.account()
            );
            run_observed(&mut engine, &traderd::clocks::WallClock, until, Pace::AsFastAsPossible, &stop, &mut observer).await
        } else {
            let control: std::net::SocketAddr = b
                .sim_control
                .trim()
                .parse()
                .with_context(|| format!("broker.ibkr.sim_control = {:?}", b.sim_control))?;
            let clock = traderd::clocks::GatewayClock::connect(control).await?;
            println!(
                "traderd: paper-trading the simulated gateway at {address} (clock {control}), account {}; database {db}",
                broker.account()
            );
            run_observed(&mut engine, &clock, until, Pace::AsFastAsPossible, &stop, &mut observer).await
        }
        .context("running the engine");
        drop(observer);
        cockpit.finish();
        cockpit.drain_notifications(NOTIFY_DRAIN).await;
        let stopped = stopped?;
        broker.disconnect().await;
        Ok::<_, anyhow::Error>((stopped, closed))
    });
    let (stopped, closed) = match outcome {
        Ok(v) => v,
        Err(e) => {
            store.append_audit(
                &AuditEntry::new(Utc::now(), "traderd", "daemon.stop")
                    .context(json!({ "broker": "ibkr", "error": format!("{e:#}") }))
                    .outcome("failed"),
            )?;
            return Err(e);
        }
    };
    store.append_audit(
        &AuditEntry::new(Utc::now(), "traderd", "daemon.stop")
            .context(json!({
                "broker": "ibkr",
                "stopped": format!("{stopped:?}"),
                "started": started.to_rfc3339(),
                "trades_closed": closed,
            }))
            .outcome("stopped cleanly"),
    )?;
    match stopped {
        Stopped::Requested => println!(
            "traderd: stopped after the cycle in progress ({closed} trades closed this run); run traderd again to continue."
        ),
        Stopped::Reached => println!(
            "traderd: reached the close of {} ({closed} trades closed this run); database {db}",
            to.map(|d| d.to_string()).unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// How long traderd waits at exit for notifications under way.
const NOTIFY_DRAIN: std::time::Duration = std::time::Duration::from_secs(15);

/// An in-process exchange's link is always up.
fn always_connected() -> cockpit::health::BrokerLink {
    Arc::new(|| true)
}

/// Starts the cockpit (dashboard, notifications, health, metrics) on its
/// own database connection, and prints the dashboard's address. A port
/// that cannot be bound is reported and the daemon trades on without the
/// dashboard (trader-cli still works); an unsafe bind (off loopback
/// without a token) stops it.
async fn start_cockpit(
    settings: &settings::Settings,
    store: &Arc<store::Store>,
    link: cockpit::health::BrokerLink,
) -> Result<cockpit::Cockpit> {
    let own = if settings.database.url.trim() == ":memory:" {
        Arc::clone(store)
    } else {
        Arc::new(store::Store::open(&settings.database.url).with_context(|| {
            format!(
                "opening the database {} for the dashboard",
                settings.database.url
            )
        })?)
    };
    let secrets = cockpit::Secrets::from_env();
    let result = cockpit::start(
        settings,
        Arc::clone(&own),
        Arc::clone(&link),
        secrets.clone(),
    )
    .await;
    let cockpit = match result {
        Ok(c) => c,
        Err(e @ cockpit::CockpitError::Bind { .. }) => {
            eprintln!("traderd: warning: {e}; trading continues without the dashboard");
            tracing::error!("{e}");
            let mut off = settings.clone();
            off.dashboard.enabled = false;
            cockpit::start(&off, own, link, secrets).await?
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(addr) = cockpit.addr {
        println!("traderd: dashboard at http://{addr}/");
    }
    Ok(cockpit)
}

/// The daemon's runtime, and the flag SIGINT/SIGTERM raise (the loop
/// stops after the cycle in progress).
fn runtime_and_stop_flag() -> Result<(tokio::runtime::Runtime, Arc<AtomicBool>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        runtime.spawn(async move {
            wait_for_signal().await;
            stop.store(true, Ordering::SeqCst);
        });
    }
    Ok((runtime, stop))
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
