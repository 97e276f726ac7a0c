//! `trader-cli sim-gateway`: the simulated TWS / IB Gateway on loopback,
//! fronting the simulated exchange of the configuration (the same market
//! traderd trades in process), so the whole IBKR path can be dry-run
//! offline: point traderd at it with `broker.kind = "ibkr"`,
//! `broker.ibkr.port = <port>` and `broker.ibkr.sim_control =
//! "127.0.0.1:<control-port>"`. See docs/SIM_GATEWAY.md.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use settings::Settings;
use sim_gateway::{Fault, GatewayConfig, SimGateway, TimeMode};

/// Arguments of `trader-cli sim-gateway`.
#[derive(Debug, clap::Args)]
pub struct SimGatewayArgs {
    /// TWS API port on 127.0.0.1 (IB Gateway's paper port is 4002).
    #[arg(long, default_value_t = 4002)]
    pub port: u16,
    /// Control port on 127.0.0.1: traderd's lockstep clock
    /// (broker.ibkr.sim_control) and fault injection. 0: no control channel.
    #[arg(long, default_value_t = 4003)]
    pub control_port: u16,
    /// First session [default: broker.sim.replay.from].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<NaiveDate>,
    /// Time does not advance past this session's close [default:
    /// broker.sim.replay.to].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<NaiveDate>,
    /// Let simulated time run by itself at N simulated minutes per second
    /// (instead of lockstep, where the control channel moves it).
    #[arg(long, value_name = "N")]
    pub speed: Option<f64>,
    /// The account id it reports (paper ids start with "D"; traderd in
    /// paper mode refuses any other, e.g. U1234567).
    #[arg(long, default_value = "DU0000001")]
    pub account: String,
    /// No real-time market data subscription: clients must fall back to
    /// delayed data (as on a fresh paper account).
    #[arg(long)]
    pub no_realtime_data: bool,
    /// A fault active from the start (repeatable), e.g. "delay 50",
    /// "reject 1 no margin", "drop_after_place_order", and IB's habits:
    /// "status_before_execution", "commission_delay 2000", "corrections 5",
    /// "inactive 2", "reject_code 1 110", "cancel_race 1",
    /// "early_assignment", "partial_assignment", "expiry_disconnected",
    /// "nightly_restart 3" (docs/SIM_GATEWAY.md).
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// The exchange's seed [default: broker.sim.exchange.seed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write every order placed, every execution (settlements included)
    /// and, when the gateway stops, the final positions as JSON lines to
    /// this file (appended), to compare traderd's database with.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<std::path::PathBuf>,
}

/// The gateway's configuration from the arguments and the settings.
pub fn gateway_config(args: &SimGatewayArgs, settings: &Settings) -> Result<GatewayConfig> {
    let (cfg_from, cfg_to) = settings
        .broker
        .sim
        .replay
        .window()
        .context("broker.sim.replay.from/to are not dates (run `trader-cli config check`)")?;
    let (from, to) = (args.from.unwrap_or(cfg_from), args.to.unwrap_or(cfg_to));
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    let mode = match args.speed {
        None => TimeMode::Lockstep,
        Some(s) if s.is_finite() && s > 0.0 => TimeMode::Paced {
            sim_minutes_per_second: s,
        },
        Some(s) => {
            bail!("--speed must be a positive number of simulated minutes per second; got {s}")
        }
    };
    Ok(GatewayConfig {
        port: args.port,
        control_port: (args.control_port != 0).then_some(args.control_port),
        account: args.account.clone(),
        from: Some(from),
        to: Some(to),
        mode,
        realtime_data_available: !args.no_realtime_data,
        journal: args.journal.clone(),
        ..GatewayConfig::default()
    })
}

/// Runs the gateway until Ctrl-C or the control channel's `QUIT`.
pub fn run(args: &SimGatewayArgs, settings: &Settings) -> Result<ExitCode> {
    let config = gateway_config(args, settings)?;
    let faults = args
        .faults
        .iter()
        .map(|spec| Fault::parse(spec).with_context(|| format!("--fault {spec:?}")))
        .collect::<Result<Vec<_>>>()?;
    let from = config.from.context("the first session")?;
    let history = traderd::wiring::history()?;
    let exchange = traderd::wiring::sim_exchange(
        settings,
        Arc::clone(&history),
        settings.broker.sim.chain.clone(),
        from,
        args.seed,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let handle = SimGateway::start(config.clone(), exchange)
            .await
            .with_context(|| {
                format!(
                    "starting the simulated gateway on 127.0.0.1:{} (is the port free?)",
                    args.port
                )
            })?;
        for f in faults {
            handle.inject(f);
        }
        println!(
            "sim-gateway: TWS API on {} · account {} · simulated time {} · {}",
            handle.addr(),
            config.account,
            handle.now(),
            match config.mode {
                TimeMode::Lockstep => "lockstep (the control channel moves time)".to_string(),
                TimeMode::Paced {
                    sim_minutes_per_second,
                } => format!("{sim_minutes_per_second} simulated minutes per second"),
            }
        );
        if let Some(control) = handle.control_addr() {
            println!(
                "  control channel {control}: ADVANCE <rfc3339> | STEP | NOW | FAULT <spec> | QUIT"
            );
            println!(
                "  traderd: broker.kind = \"ibkr\", broker.ibkr.port = {}, broker.ibkr.sim_control = \"{control}\"",
                handle.addr().port()
            );
        }
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        #[cfg(unix)]
        let terminated = term.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = handle.stopped() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        handle.shutdown().await;
        println!("sim-gateway: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
