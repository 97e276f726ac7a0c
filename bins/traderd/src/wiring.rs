//! Builds the engine over the simulated exchange from the settings.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use core_domain::Symbol;
use execution::{ExitManager, ExitParams, MonitorParams, PositionMonitor};
use market_sim::{ChainModel, ExchangeClock, History, SimExchange};
use orchestrator::{Engine, EngineParams, NoLearning, Schedule, ScheduleParams};
use risk::RiskGovernor;
use settings::Settings;
use store::Store;
use strategy_naked_put::NakedPutStrategy;

/// The engine as wired for the simulated exchange.
pub type SimEngine = Engine<Arc<SimExchange>, NakedPutStrategy, NoLearning>;

/// An engine over the simulated exchange, with its clock.
pub struct SimRun {
    pub engine: SimEngine,
    pub exchange: Arc<SimExchange>,
    pub clock: ExchangeClock,
    pub store: Arc<Store>,
    pub history: Arc<History>,
    /// The first session and the instant after the last cycle.
    pub first_session: NaiveDate,
    pub until: DateTime<Utc>,
}

/// The history the simulated exchange replays (shipped with the binary).
pub fn history() -> Result<Arc<History>> {
    Ok(Arc::new(
        market_sim::data::real_history()
            .context("loading the shipped price history")?
            .clone(),
    ))
}

/// Engine parameters from the settings: the whole shipped universe with
/// its sectors.
pub fn engine_params(settings: &Settings, history: &History) -> EngineParams {
    let _ = settings;
    EngineParams {
        universe: history
            .symbols
            .iter()
            .map(|s| (s.symbol.clone(), Some(s.sector.clone())))
            .collect::<Vec<(Symbol, Option<String>)>>(),
        ..EngineParams::default()
    }
}

/// The exit manager's and the monitor's parameters from the settings.
pub fn exit_params(settings: &Settings) -> (ExitParams, MonitorParams) {
    let loss = settings.risk_limits().max_position_loss.abs();
    let exits = ExitParams {
        max_position_loss: loss,
        ..ExitParams::default()
    };
    let monitor = MonitorParams {
        stop_multiple: 1.0 - settings.strategy.exits.stop_loss,
        max_position_loss: loss,
        time_exit_dte: settings.strategy.exits.time_exit_dte,
        ..MonitorParams::default()
    };
    (exits, monitor)
}

/// Builds the engine over a new simulated exchange opening at the first
/// session on or after `from`, replaying to the close of `to`. `seed`
/// overrides `broker.sim.exchange.seed`.
pub fn sim_run(
    settings: &Settings,
    store: Arc<Store>,
    from: NaiveDate,
    to: NaiveDate,
    seed: Option<u64>,
) -> Result<SimRun> {
    sim_run_with_limits(settings, store, from, to, seed, settings.risk_limits())
}

/// [`sim_run`] with risk limits other than the settings' (research: e.g.
/// a governor tighter than the strategy, to see the limits bind).
pub fn sim_run_with_limits(
    settings: &Settings,
    store: Arc<Store>,
    from: NaiveDate,
    to: NaiveDate,
    seed: Option<u64>,
    limits: risk::RiskLimits,
) -> Result<SimRun> {
    let history = history()?;
    let (Some(first), Some(last)) = (history.dates.first(), history.dates.last()) else {
        bail!("the shipped history is empty");
    };
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    if from > *last || to < *first {
        bail!("the history covers {first} to {last}; choose dates inside it (got {from} to {to})");
    }
    let mut exchange_params = settings.broker.sim.exchange.clone();
    if let Some(seed) = seed {
        exchange_params.seed = seed;
    }
    let exchange = Arc::new(
        SimExchange::new(
            Arc::clone(&history),
            ChainModel::new(settings.broker.sim.chain.clone()),
            exchange_params,
            from,
        )
        .with_context(|| format!("opening the simulated exchange on {from}"))?,
    );
    let first_session = exchange.session_date();
    let schedule = Schedule::new(ScheduleParams {
        cycle_minutes_market: settings.schedule.cycle_minutes_market,
        cycle_minutes_off_hours: settings.schedule.cycle_minutes_off_hours,
        no_entries_last_minutes: settings.schedule.no_entries_last_minutes,
    })?;
    let to_session = schedule
        .calendar()
        .session_on_or_before(to.min(*last))
        .unwrap_or(*last);
    let until = schedule
        .calendar()
        .session_close(to_session)
        .context("no close for the last session")?;
    let strategy = NakedPutStrategy::new(settings.strategy_params())
        .context("the strategy parameters (check [strategy] with `trader-cli config check`)")?;
    limits
        .validate()
        .context("the risk limits (check [risk] with `trader-cli config check`)")?;
    let (exit_params, monitor_params) = exit_params(settings);
    let exits = ExitManager::new(exit_params).context("the exit parameters")?;
    let monitor = PositionMonitor::new(monitor_params).context("the monitor parameters")?;
    let engine = Engine::new(
        Arc::clone(&store),
        Arc::clone(&exchange),
        strategy,
        RiskGovernor::new(limits),
        monitor,
        exits,
        NoLearning,
        schedule,
        engine_params(settings, &history),
    )?;
    Ok(SimRun {
        engine,
        clock: ExchangeClock::new(Arc::clone(&exchange)),
        exchange,
        store,
        history,
        first_session,
        until,
    })
}
