//! The Claude analyst wired from the settings: its configuration, the
//! analysis input from the database, and the engine's agent hooks (the
//! weekly analysis and the optional AI reasoner).

use std::sync::Arc;
use std::time::Duration;

use agents_claude::analysis::AnalysisInput;
use agents_claude::{AgentConfig, Analyst, ApiKey, ClientConfig, Pricing, RetryPolicy};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use core_domain::{Broker, LearningRepository, MarketData, Strategy, TradeFilter, TradeRepository};
use learning::experiments::{Governor, ParameterSet};
use orchestrator::{AgentHooks, Engine, LearningHook};
use settings::{Loaded, Settings};
use store::Store;

use crate::wiring;

/// `[agent]` as the analyst's configuration (`ANTHROPIC_BASE_URL`
/// overrides `base_url`).
pub fn agent_config(settings: &Settings) -> AgentConfig {
    let a = &settings.agent;
    let secs = |s: i64| Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1));
    let millis = |s: i64| Duration::from_millis(u64::try_from(s.max(1)).unwrap_or(1));
    AgentConfig {
        enabled: a.enabled,
        model: a.model.clone(),
        max_tokens: u32::try_from(a.max_tokens.max(1)).unwrap_or(4096),
        base_url: ClientConfig::base_url_from_env_or(&a.base_url),
        timeout: secs(a.timeout_seconds),
        retry: RetryPolicy {
            max_retries: u32::try_from(a.max_retries.max(0)).unwrap_or(0),
            base_delay: millis(a.retry_base_ms),
            max_delay: millis(a.retry_max_ms),
            deadline: secs(a.deadline_seconds),
        },
        monthly_budget_usd: a.monthly_budget_usd,
        pricing: Pricing {
            input_per_mtok: a.input_price_per_mtok,
            output_per_mtok: a.output_price_per_mtok,
        },
    }
}

/// The analyst with the key of `loaded` (environment or `.env`).
pub fn analyst(loaded: &Loaded) -> Result<Analyst> {
    Analyst::new(
        agent_config(&loaded.settings),
        loaded.api_key().and_then(ApiKey::new),
    )
    .context("the analyst ([agent] base_url, ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY)")
}

/// The configured strategy parameters with every adopted (not rolled
/// back) change applied: the parameters in force.
pub fn parameters_in_force(settings: &Settings, store: &Store) -> Result<ParameterSet> {
    let mut set = wiring::experiment_parameters(settings);
    for c in learning::learn::LearningEngine::adopted_changes(store)
        .map_err(|e| anyhow::anyhow!("reading the adopted changes: {e}"))?
    {
        set.set(c.parameter, c.to);
    }
    Ok(set)
}

/// What the analysis reads at `now` over the last `window_days` (0 or
/// `None`: every closed trade).
pub fn analysis_input(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
    window_days: Option<i64>,
    parameters: ParameterSet,
) -> Result<AnalysisInput> {
    let learn = wiring::learn_params(settings);
    Ok(AnalysisInput {
        now,
        window_days: window_days.filter(|d| *d > 0),
        trades: store.trades(&TradeFilter {
            open: Some(false),
            ..TradeFilter::default()
        })?,
        parameters,
        governor: Governor::new(&learn.experiments),
        history: store.learning_history(i64::MAX)?,
        experiments: store.experiments()?,
        pattern_params: learn.patterns,
    })
}

/// Installs the weekly analysis and (with `[agent] decide`) the reasoner
/// on `engine`. In a simulated replay (`replay`) nothing is installed
/// without an API key, so a replay stays as it was; elsewhere the weekly
/// run stores the statistical report when there is no key.
pub fn install<B, S, L>(engine: &mut Engine<B, S, L>, loaded: &Loaded, replay: bool) -> Result<()>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    let settings = &loaded.settings;
    let a = &settings.agent;
    let analyst = Arc::new(analyst(loaded)?);
    if replay && !analyst.has_model() {
        tracing::info!(
            "agent: no ANTHROPIC_API_KEY in a simulated replay: the weekly analysis and the reasoner are off"
        );
        return Ok(());
    }
    let mut hooks = AgentHooks::off();
    if a.weekly {
        let day = settings::parse_weekday(&a.weekly_day)
            .context("[agent] weekly_day (check with `trader-cli config check`)")?;
        let time = settings::parse_hh_mm(&a.weekly_time)
            .context("[agent] weekly_time (check with `trader-cli config check`)")?;
        let owned = settings.clone();
        let window = Some(a.window_days);
        hooks = hooks.with_weekly(
            Arc::clone(&analyst),
            day,
            time,
            Box::new(move |store: &Store, now, parameters| {
                analysis_input(&owned, store, now, window, parameters).map_err(|e| format!("{e:#}"))
            }),
        );
    }
    if a.decide {
        if analyst.has_model() {
            hooks = hooks.with_reasoner(
                Arc::clone(&analyst),
                Duration::from_secs(u64::try_from(a.decide_timeout_seconds.max(1)).unwrap_or(30)),
            );
        } else {
            tracing::warn!(
                "agent: [agent] decide = true but ANTHROPIC_API_KEY is not set: the rules decide"
            );
        }
    }
    engine.set_agent(hooks);
    Ok(())
}
