//! Builds the engine over the simulated exchange from the settings.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{Broker, MarketData, Symbol};
use execution::{ExitManager, ExitParams, MonitorParams, PositionMonitor};
use market_sim::{ChainModel, ExchangeClock, History, SimExchange};
use orchestrator::{Engine, EngineParams, Learner, Schedule, ScheduleParams};
use risk::RiskGovernor;
use settings::Settings;
use store::Store;
use strategy_naked_put::NakedPutStrategy;

/// The engine as wired for the simulated exchange.
pub type SimEngine = Engine<Arc<SimExchange>, NakedPutStrategy, Learner>;

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

/// The history of the settings' universe (`[broker.sim] universe`): the
/// shipped 20 stocks, or the 421 with OHLCV (read from
/// `crates/market-sim/data` on first use).
pub fn history_for(settings: &Settings) -> Result<Arc<History>> {
    let universe = settings.broker.sim.universe.as_str();
    Ok(Arc::new(
        market_sim::universe::history_of(universe)
            .with_context(|| format!("loading the {universe:?} universe's history"))?
            .clone(),
    ))
}

/// The caveats every report over the settings' universe prints.
pub fn caveats(settings: &Settings) -> Vec<String> {
    market_sim::universe::caveats_of(&settings.broker.sim.universe)
        .iter()
        .map(|c| (*c).to_string())
        .collect()
}

/// The symbols a history covers, with their sectors: the universe traded
/// over it (and, for a broker, the shipped universe).
pub fn universe_of(history: &History) -> Vec<(Symbol, Option<String>)> {
    history
        .symbols
        .iter()
        .map(|s| (s.symbol.clone(), Some(s.sector.clone())))
        .collect()
}

/// Engine parameters from the settings: the whole shipped universe with
/// its sectors.
pub fn engine_params(settings: &Settings, history: &History) -> EngineParams {
    engine_params_for(settings, universe_of(history))
}

/// Engine parameters from the settings over `universe`.
pub fn engine_params_for(
    settings: &Settings,
    universe: Vec<(Symbol, Option<String>)>,
) -> EngineParams {
    EngineParams {
        universe,
        shadow_rules: learning::shadow::ShadowRules {
            profit_target: settings.strategy.exits.profit_target,
            stop_loss: settings.strategy.exits.stop_loss,
            time_exit_dte: settings.strategy.exits.time_exit_dte,
        },
        // Shadow-quote as far beyond the range as one governed change may
        // move a bound, so a change proposal can rest on evidence.
        exploration_band: settings.learning.max_parameter_shift,
        ..EngineParams::default()
    }
}

/// When the engine commits (`database.commit`) for a broker of kind
/// `broker_kind` ("sim" for the simulated exchange, "ibkr").
pub fn commit_mode(settings: &Settings, broker_kind: &str) -> orchestrator::CommitMode {
    if settings.database.commit_per_cycle(broker_kind) {
        orchestrator::CommitMode::PerCycle
    } else {
        orchestrator::CommitMode::PerWrite
    }
}

/// The learn step's parameters from `[learning]`: the pattern detector's
/// minimum trades, significance and minimum ROI effect; the experiments'
/// allocation, significance, minimum effect, maximum shift and the days
/// between changes (30 / `max_parameter_changes_per_month`).
pub fn learn_params(settings: &Settings) -> learning::learn::LearnParams {
    let l = &settings.learning;
    let mut p = learning::learn::LearnParams::default();
    p.patterns.min_trades = usize::try_from(l.min_trades_before_analysis.max(1)).unwrap_or(30);
    p.patterns.alpha = l.significance_level;
    p.patterns.min_effect_roi = l.min_effect_roi;
    // Shadow outcomes are evidence for patterns (which only propose
    // experiments); adoption needs real trades (the experiments' policy).
    p.patterns.pool_shadow = true;
    p.experiments.alpha = l.significance_level;
    p.experiments.min_effect_roi = l.min_effect_roi;
    p.experiments.max_shift = l.max_parameter_shift;
    p.experiments.allocation = l.experiment_allocation;
    p.experiments.min_days_between_changes = 30 / l.max_parameter_changes_per_month.max(1);
    p
}

/// The strategy's parameters as the experiment engine names them.
pub fn experiment_parameters(settings: &Settings) -> learning::experiments::ParameterSet {
    settings.strategy_params().tunable().into_iter().collect()
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
    sim_run_on(
        settings,
        store,
        SimMarket {
            history: history_for(settings)?,
            chain: settings.broker.sim.chain.clone(),
        },
        from,
        to,
        seed,
        limits,
    )
}

/// The simulated exchange of the settings (`[broker.sim.exchange]`, `seed`
/// overriding its seed) over `history` with the chain model `chain`,
/// opening at the first session on or after `from`: the one traderd
/// trades in process and `trader-cli sim-gateway` fronts.
pub fn sim_exchange(
    settings: &Settings,
    history: Arc<History>,
    chain: market_sim::ChainModelParams,
    from: NaiveDate,
    seed: Option<u64>,
) -> Result<Arc<SimExchange>> {
    let mut exchange_params = settings.broker.sim.exchange.clone();
    if let Some(seed) = seed {
        exchange_params.seed = seed;
    }
    Ok(Arc::new(
        SimExchange::new(history, ChainModel::new(chain), exchange_params, from)
            .with_context(|| format!("opening the simulated exchange on {from}"))?,
    ))
}

/// The market a simulated run trades: a history (the shipped one, or a
/// synthetic one from `market_sim::synthetic`) and the chain model's
/// parameters (e.g. `null_chain_params`, with planted edges).
#[derive(Debug, Clone)]
pub struct SimMarket {
    pub history: Arc<History>,
    pub chain: market_sim::ChainModelParams,
}

/// [`sim_run_with_limits`] over any market: the engine, the learner and
/// the simulated exchange wired as for the shipped history, over
/// `market` (research: the synthetic market of `trader-cli learning-proof`).
pub fn sim_run_on(
    settings: &Settings,
    store: Arc<Store>,
    market: SimMarket,
    from: NaiveDate,
    to: NaiveDate,
    seed: Option<u64>,
    limits: risk::RiskLimits,
) -> Result<SimRun> {
    let SimMarket { history, chain } = market;
    let (Some(first), Some(last)) = (history.dates.first(), history.dates.last()) else {
        bail!("the history is empty");
    };
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    if from > *last || to < *first {
        bail!("the history covers {first} to {last}; choose dates inside it (got {from} to {to})");
    }
    let exchange = sim_exchange(settings, Arc::clone(&history), chain, from, seed)?;
    let first_session = exchange.session_date();
    let schedule = schedule(settings)?;
    let to_session = schedule
        .calendar()
        .session_on_or_before(to.min(*last))
        .unwrap_or(*last);
    let until = schedule
        .calendar()
        .session_close(to_session)
        .context("no close for the last session")?;
    let engine = build_engine(
        settings,
        Arc::clone(&store),
        Arc::clone(&exchange),
        schedule,
        EngineParams {
            commit: commit_mode(settings, "sim"),
            ..engine_params(settings, &history)
        },
        limits,
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

/// The engine over any broker, wired from the settings: the naked-put
/// strategy, the risk governor with `limits`, the position monitor and
/// exit manager, the learner — the same for the simulated exchange and
/// for Interactive Brokers.
pub fn build_engine<B: Broker + MarketData>(
    settings: &Settings,
    store: Arc<Store>,
    broker: B,
    schedule: Schedule,
    params: EngineParams,
    limits: risk::RiskLimits,
) -> Result<Engine<B, NakedPutStrategy, Learner>> {
    let strategy = NakedPutStrategy::new(settings.strategy_params())
        .context("the strategy parameters (check [strategy] with `trader-cli config check`)")?;
    limits
        .validate()
        .context("the risk limits (check [risk] with `trader-cli config check`)")?;
    let (exit_params, monitor_params) = exit_params(settings);
    let exits = ExitManager::new(exit_params).context("the exit parameters")?;
    let monitor = PositionMonitor::new(monitor_params).context("the monitor parameters")?;
    Ok(Engine::new(
        Arc::clone(&store),
        broker,
        strategy,
        RiskGovernor::new(limits),
        monitor,
        exits,
        Learner::new(
            &store,
            learn_params(settings),
            experiment_parameters(settings),
        )
        .map_err(|e| anyhow::anyhow!("starting the learning engine: {e}"))?,
        schedule,
        params,
    )?)
}

/// The schedule from `[schedule]`.
pub fn schedule(settings: &Settings) -> Result<Schedule> {
    Ok(Schedule::new(ScheduleParams {
        cycle_minutes_market: settings.schedule.cycle_minutes_market,
        cycle_minutes_off_hours: settings.schedule.cycle_minutes_off_hours,
        no_entries_last_minutes: settings.schedule.no_entries_last_minutes,
    })?)
}

/// The limits a run is checked against from its database: the risk
/// limits, the strategy's exits, and the exchange's slippage (ticks of
/// $0.01 on a marketable fill) as the price tolerance.
pub fn rule_limits(settings: &Settings) -> orchestrator::backtest::RuleLimits {
    let limits = settings.risk_limits();
    orchestrator::backtest::RuleLimits {
        max_open: usize::try_from(limits.max_open_positions).unwrap_or(0),
        max_new_per_day: usize::try_from(limits.max_positions_per_day).unwrap_or(0),
        profit_target: settings.strategy.exits.profit_target,
        stop_loss: settings.strategy.exits.stop_loss,
        time_exit_dte: settings.strategy.exits.time_exit_dte,
        slippage_tolerance: settings.broker.sim.exchange.slippage_ticks as f64 * 0.01,
    }
}

/// Working-memory key of the replay a database holds.
pub const REPLAY_KEY: &str = "replay";

/// What identifies a replay: a database holds one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplayIdentity {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub seed: u64,
    pub starting_cash: f64,
}

impl std::fmt::Display for ReplayIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to {}, seed {}, starting cash ${}",
            self.from, self.to, self.seed, self.starting_cash
        )
    }
}

/// How a replay began.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// A new database: the replay starts at its first session.
    Fresh,
    /// The database holds this replay: the exchange was rebuilt from the
    /// order journal up to the last cycle, and the engine continues.
    Resumed {
        last_cycle: DateTime<Utc>,
        orders_replayed: usize,
        cancels_replayed: usize,
    },
}

/// Starts the replay described by `identity`, or resumes it when `store`
/// holds it already. A database holding another run is refused (its
/// trades would mix with this one's).
///
/// Resuming rebuilds the simulated exchange, which lives in memory, from
/// the database: every order that was sent is placed again at its
/// creation time and every cancel requested again at its time, in order,
/// on a new exchange with the same history, parameters and seed. The
/// exchange is deterministic, so it reaches the state it had: the same
/// order ids, fills, positions and cash. Orders written but never sent
/// are left to the engine's reconcile, which sends them.
pub fn resume_or_start(
    settings: &Settings,
    store: Arc<Store>,
    identity: &ReplayIdentity,
) -> Result<(SimRun, Start)> {
    use core_domain::{Broker, OrderStatus, WorkingMemory};
    let stored = store.recall(REPLAY_KEY)?;
    let recorded: Option<ReplayIdentity> = match stored {
        Some(v) => Some(serde_json::from_value(v).context(
            "the database's replay record is unreadable; use another database.url or remove the database file",
        )?),
        None => None,
    };
    match &recorded {
        None => {
            if !store.all_orders()?.is_empty() {
                bail!(
                    "the database holds orders from another run (no replay record); set database.url to a new file or remove {}",
                    store
                        .path()
                        .map_or("it".into(), |p| p.display().to_string())
                );
            }
        }
        Some(r) if r != identity => bail!(
            "the database holds the replay {r}, but the configuration asks for {identity}; set database.url to a new file (or remove {}) to start another",
            store
                .path()
                .map_or("it".into(), |p| p.display().to_string())
        ),
        Some(_) => {}
    }
    let run = sim_run(
        settings,
        Arc::clone(&store),
        identity.from,
        identity.to,
        Some(identity.seed),
    )?;
    if recorded.is_none() {
        let value = serde_json::to_value(identity).context("serializing the replay record")?;
        store.remember(REPLAY_KEY, &value)?;
        return Ok((run, Start::Fresh));
    }
    let Some(last_cycle) = run.engine.memory().last_cycle else {
        return Ok((run, Start::Fresh));
    };

    // The journal: placements and cancel requests, in time order.
    enum Act {
        Place(core_domain::OrderIntent),
        Cancel(String),
    }
    let mut acts: Vec<(DateTime<Utc>, i64, Act)> = Vec::new();
    for order in store.all_orders()? {
        let events = store.order_events(&order.intent.order_ref)?;
        // The order reached the exchange when its first event after
        // `created` was written.
        let Some(sent) = events.iter().find(|e| e.status != OrderStatus::Created) else {
            continue;
        };
        for e in events
            .iter()
            .filter(|e| e.status == OrderStatus::PendingCancel)
        {
            acts.push((e.time, e.id, Act::Cancel(order.intent.order_ref.clone())));
        }
        acts.push((order.intent.created_at, sent.id, Act::Place(order.intent)));
    }
    // In the order the engine did them: by time, and at one instant in
    // the order their events were written (a cancel, then the order that
    // replaces it).
    acts.sort_by_key(|(t, id, _)| (*t, *id));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (mut placed, mut cancels) = (0, 0);
    let horizon = acts
        .iter()
        .map(|(t, _, _)| *t)
        .fold(last_cycle, DateTime::max);
    // The last cycle on record saw (and recorded) every event up to its
    // own start; what its orders and cancels caused after that (an order
    // filled as it was placed) it left for the next cycle to see, and so
    // does the rebuilt exchange: the events before the horizon are
    // drained, then the last cycle's acts are replayed.
    let (earlier, last): (Vec<_>, Vec<_>) = acts.into_iter().partition(|(t, _, _)| *t < horizon);
    let mut replay = |t: DateTime<Utc>, act: Act| {
        run.exchange.advance_to(t);
        match act {
            Act::Place(intent) => {
                // A rejection now is the rejection then: nothing to redo.
                let _ = rt.block_on(run.exchange.place_order(&intent));
                placed += 1;
            }
            Act::Cancel(order_ref) => {
                let _ = rt.block_on(run.exchange.cancel_order(&order_ref));
                cancels += 1;
            }
        }
    };
    for (t, _, act) in earlier {
        replay(t, act);
    }
    run.exchange.advance_to(horizon);
    let _ = rt.block_on(run.exchange.poll_events());
    for (t, _, act) in last {
        replay(t, act);
    }
    // Anything the last cycle's writes missed (a per-write run killed
    // between sending an order and recording its fill) the engine's
    // reconcile pulls with executions_since; fills are unique by execution
    // id, so what the next cycle then sees again is not recorded twice.
    Ok((
        run,
        Start::Resumed {
            last_cycle,
            orders_replayed: placed,
            cancels_replayed: cancels,
        },
    ))
}
