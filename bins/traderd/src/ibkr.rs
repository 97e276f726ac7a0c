//! The engine over Interactive Brokers (`broker.kind = "ibkr"`): the
//! adapter's configuration from `[broker.ibkr]`, the connection that
//! continues from what the database knows, and the engine built exactly as
//! for the simulated exchange (`wiring::build_engine`).

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use broker_ibkr::{IbkrBroker, IbkrConfig, MarketDataKind, Resume};
use core_domain::{AccountRepository, OrderRepository};
use orchestrator::Learner;
use settings::Settings;
use store::Store;
use strategy_naked_put::NakedPutStrategy;

use crate::wiring;

/// The engine as wired for Interactive Brokers.
pub type IbkrEngine = orchestrator::Engine<Arc<IbkrBroker>, NakedPutStrategy, Learner>;

/// The adapter's configuration from `[broker.ibkr]` (validated by the
/// settings crate; out-of-range values are still refused here with the
/// key named).
pub fn ibkr_config(settings: &Settings) -> Result<IbkrConfig> {
    let b = &settings.broker.ibkr;
    let mut config = IbkrConfig::from_settings(&b.host, b.port, b.client_id, &b.account)
        .map_err(|e| anyhow!("{e}"))?;
    config.market_data = MarketDataKind::parse(&b.market_data).ok_or_else(|| {
        anyhow!(
            "broker.ibkr.market_data = {:?}: expected \"realtime\", \"frozen\", \"delayed\" or \"delayed_frozen\"",
            b.market_data
        )
    })?;
    let positive = |key: &str, v: i64| -> Result<u32> {
        u32::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| anyhow!("broker.ibkr.{key} = {v}: expected a positive number"))
    };
    config.connect_attempts = positive("connect_attempts", b.connect_attempts)?;
    config.reconnect_max = std::time::Duration::from_secs(u64::from(positive(
        "reconnect_max_secs",
        b.reconnect_max_secs,
    )?));
    config.request_timeout = std::time::Duration::from_secs(u64::from(positive(
        "request_timeout_secs",
        b.request_timeout_secs,
    )?));
    config.messages_per_second = positive("messages_per_second", b.messages_per_second)?;
    config.commission_wait = std::time::Duration::from_secs(u64::from(positive(
        "commission_wait_secs",
        b.commission_wait_secs,
    )?));
    if !b.sim_control.trim().is_empty() {
        // The simulated gateway has no snapshot pacing of its own, and its
        // clock moves in steps: events are collected at each poll.
        config.snapshots_per_second = config.messages_per_second;
        config.lockstep = true;
    }
    config.max_market_data_lines =
        positive("max_market_data_lines", b.max_market_data_lines)? as usize;
    // The account behind the connection must match the mode (paper: a
    // "D…" account), whatever the port says.
    config.live = settings.broker.trading_mode == "live";
    Ok(config)
}

/// What the database knows of the broker: the largest IBKR order id used
/// (never used again) and the execution ids recorded (not reported again).
pub fn broker_memory(store: &Store) -> Result<(Option<i64>, Vec<String>)> {
    let orders = store.all_orders().context("reading the order journal")?;
    let last_id = orders.iter().filter_map(|o| o.broker_order_id).max();
    let mut exec_ids = Vec::new();
    for o in &orders {
        exec_ids.extend(
            store
                .fills(&o.intent.order_ref)
                .with_context(|| format!("reading the fills of {}", o.intent.order_ref))?
                .into_iter()
                .map(|f| f.exec_id),
        );
    }
    Ok((last_id, exec_ids))
}

/// Connects to TWS / IB Gateway (or the simulated gateway) continuing
/// from the database, and builds the engine over it.
pub async fn ibkr_engine(
    settings: &Settings,
    store: Arc<Store>,
) -> Result<(IbkrEngine, Arc<IbkrBroker>)> {
    let config = ibkr_config(settings)?;
    let address = config.address();
    let (last_id, exec_ids) = broker_memory(&store)?;
    // The positions last recorded: what settled while traderd was down is
    // found against them.
    let positions = store
        .positions()
        .context("reading the recorded positions")?;
    let broker = Arc::new(
        IbkrBroker::connect_resuming(
            config,
            Resume {
                last_order_id: last_id,
                known_exec_ids: exec_ids,
                positions: Some(positions),
            },
        )
        .await
        .with_context(|| format!("connecting to TWS / IB Gateway at {address}"))?,
    );
    let history = wiring::history()?;
    let engine = wiring::build_engine(
        settings,
        store,
        Arc::clone(&broker),
        wiring::schedule(settings)?,
        orchestrator::EngineParams {
            commit: wiring::commit_mode(settings, "ibkr"),
            ..wiring::engine_params_for(settings, wiring::universe_of(&history))
        },
        settings.risk_limits(),
    )?;
    Ok((engine, broker))
}
