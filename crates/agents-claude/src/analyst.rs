//! The analyst: statistics → (the model, when a key is set) → grounded
//! report, or the statistical report when the model cannot answer; then
//! the report and its proposals into the database.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use store::{AgentCall, NewAnalystReport, Store, StoreError};
use thiserror::Error;

use crate::analysis::{
    AnalysisInput, Answer, CallCost, Report, SYSTEM_PROMPT, answer_schema, grounded_report,
    statistical_report, user_document,
};
use crate::api::{Message, MessagesRequest, OutputConfig, StopReason, SystemBlock, Usage};
use crate::client::{ApiError, ApiKey, ClientConfig, MessagesClient, RetryPolicy};

/// Prices per million tokens, in US dollars (cache writes cost 1.25× and
/// cache reads 0.1× the input price, Anthropic's five-minute cache rates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Pricing {
    /// The estimated cost of `usage`, in millionths of a dollar.
    #[must_use]
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        let write = usage.cache_creation_input_tokens.unwrap_or(0) as f64;
        let read = usage.cache_read_input_tokens.unwrap_or(0) as f64;
        // per MTok in dollars = micro-dollars per token
        let micros = usage.input_tokens as f64 * self.input_per_mtok
            + write * self.input_per_mtok * 1.25
            + read * self.input_per_mtok * 0.1
            + usage.output_tokens as f64 * self.output_per_mtok;
        micros.round() as i64
    }
}

/// The analyst's settings (from `[agent]`).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `false`: never call the model (the statistical report only).
    pub enabled: bool,
    pub model: String,
    pub max_tokens: u32,
    /// Base URL (already resolved against `ANTHROPIC_BASE_URL`).
    pub base_url: String,
    /// One attempt's timeout.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Estimated spend allowed per calendar month (UTC), US dollars; 0
    /// turns the cap off.
    pub monthly_budget_usd: f64,
    pub pricing: Pricing,
}

/// Something only the operator can fix: the command fails (non-zero) and
/// the daemon logs it and keeps the statistical report.
#[derive(Debug, Error)]
pub enum AnalystError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The analyst.
#[derive(Debug, Clone)]
pub struct Analyst {
    config: AgentConfig,
    client: Option<MessagesClient>,
    /// Why there is no client, for the fallback's reason.
    no_client: Option<String>,
}

/// The first instant of `now`'s calendar month (UTC).
#[must_use]
pub fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

impl Analyst {
    /// An analyst with `key` (none: the statistical report only).
    ///
    /// # Errors
    /// [`ApiError::Config`] for a base URL or key the client cannot use.
    pub fn new(config: AgentConfig, key: Option<ApiKey>) -> Result<Self, ApiError> {
        let (client, no_client) = match (config.enabled, key) {
            (false, _) => (
                None,
                Some("the agent is disabled ([agent] enabled = false)".into()),
            ),
            (true, None) => (
                None,
                Some(format!(
                    "no API key ({} is not set)",
                    crate::client::API_KEY_ENV
                )),
            ),
            (true, Some(key)) => (
                Some(MessagesClient::new(ClientConfig {
                    base_url: config.base_url.clone(),
                    api_key: key,
                    timeout: config.timeout,
                    retry: config.retry,
                })?),
                None,
            ),
        };
        Ok(Analyst {
            config,
            client,
            no_client,
        })
    }

    /// Whether the model will be asked.
    #[must_use]
    pub fn has_model(&self) -> bool {
        self.client.is_some()
    }

    /// The client, for the reasoner.
    #[must_use]
    pub fn client(&self) -> Option<&MessagesClient> {
        self.client.as_ref()
    }

    #[must_use]
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Whether this month's spend leaves room for another call.
    ///
    /// # Errors
    /// A store failure.
    pub fn budget_left(&self, store: &Store, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if self.config.monthly_budget_usd <= 0.0 {
            return Ok(true);
        }
        let spent = store.agent_spend_micros_since(month_start(now))?;
        Ok((spent as f64) < self.config.monthly_budget_usd * 1e6)
    }

    /// Records one call's usage; returns its estimated cost (micro-dollars).
    ///
    /// # Errors
    /// A store failure.
    pub fn record_call(
        &self,
        store: &Store,
        time: DateTime<Utc>,
        purpose: &str,
        usage: &Usage,
        stop_reason: Option<StopReason>,
    ) -> Result<i64, StoreError> {
        let cost = self.config.pricing.cost_micros(usage);
        store.record_agent_call(&AgentCall {
            time,
            purpose: purpose.into(),
            model: self.config.model.clone(),
            input_tokens: usage.input_tokens as i64,
            output_tokens: usage.output_tokens as i64,
            cache_creation_input_tokens: usage.cache_creation_input_tokens.unwrap_or(0) as i64,
            cache_read_input_tokens: usage.cache_read_input_tokens.unwrap_or(0) as i64,
            cost_micros: cost,
            stop_reason: stop_reason
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(str::to_owned)),
        })?;
        Ok(cost)
    }

    /// The analysis: the model's grounded report, or the statistical one
    /// (with the reason logged and kept in `fallback_reason`) without a
    /// key, over the budget, after retries run out, on a refusal, on
    /// `max_tokens`, or on an answer that breaks the schema. Usage is
    /// recorded in `agent_calls`. Nothing is stored but the calls: see
    /// [`Analyst::store_report`].
    ///
    /// # Errors
    /// A configuration problem (rejected key, unknown model, forbidden
    /// model, bad request) or a store failure.
    pub async fn analyze(
        &self,
        store: &Store,
        input: &AnalysisInput,
    ) -> Result<Report, AnalystError> {
        let statistics = input.statistics();
        let fallback = |reason: String| {
            tracing::warn!("analyst: statistical report instead of the model's: {reason}");
            statistical_report(input, &statistics, &reason)
        };
        let Some(client) = &self.client else {
            return Ok(fallback(self.no_client.clone().unwrap_or_default()));
        };
        if !self.budget_left(store, input.now)? {
            return Ok(fallback(format!(
                "the monthly spend cap of ${:.2} ([agent] monthly_budget_usd) is reached",
                self.config.monthly_budget_usd
            )));
        }
        let document = user_document(input, &statistics);
        let request = MessagesRequest {
            model: self.config.model.clone(),
            max_tokens: self.config.max_tokens,
            system: vec![SystemBlock::text(SYSTEM_PROMPT).cached()],
            messages: vec![Message::user_text(document.to_string())],
            tools: Vec::new(),
            output_config: Some(OutputConfig::json_schema(answer_schema())),
        };
        let reply = match client.create(&request).await {
            Ok(r) => r,
            Err(e) if matches!(e, ApiError::BadRequest { .. }) || e.is_configuration() => {
                return Err(e.into());
            }
            Err(e) => return Ok(fallback(format!("the Messages API failed: {e}"))),
        };
        let response = reply.response;
        let cost_micros = self.record_call(
            store,
            input.now,
            "analysis",
            &response.usage,
            response.stop_reason,
        )?;
        let cost = CallCost {
            usage: response.usage,
            cost_usd: cost_micros as f64 / 1e6,
            attempts: reply.attempts,
        };
        let with_cost = |mut r: Report| {
            r.cost = Some(cost);
            r.model = Some(self.config.model.clone());
            r
        };
        match response.stop_reason {
            Some(StopReason::EndTurn) | Some(StopReason::StopSequence) => {}
            Some(StopReason::Refusal) => {
                return Ok(with_cost(fallback(
                    "the model refused to answer (stop_reason refusal)".into(),
                )));
            }
            Some(StopReason::MaxTokens) => {
                return Ok(with_cost(fallback(format!(
                    "the answer was cut at max_tokens ({}); raise [agent] max_tokens",
                    self.config.max_tokens
                ))));
            }
            other => {
                return Ok(with_cost(fallback(format!(
                    "unexpected stop_reason {other:?}"
                ))));
            }
        }
        let text = response.text();
        let answer: Answer = match serde_json::from_str(text.trim()) {
            Ok(a) => a,
            Err(e) => {
                return Ok(with_cost(fallback(format!(
                    "the answer does not follow the schema: {e}"
                ))));
            }
        };
        Ok(grounded_report(
            answer,
            input,
            &statistics,
            Some(self.config.model.clone()),
            Some(cost),
        ))
    }

    /// Stores `report` (trigger `cli` or `weekly`) and, in the same
    /// transaction, its accepted recommendations as `proposal_received`
    /// learning events; returns the report's id.
    ///
    /// # Errors
    /// A store failure.
    pub fn store_report(store: &Store, report: &Report, trigger: &str) -> Result<i64, StoreError> {
        let accepted = report.accepted().count() as i64;
        let row = NewAnalystReport {
            created_at: report.created_at,
            source: report.source.as_str().into(),
            trigger: trigger.into(),
            model: report.model.clone(),
            summary: report.summary.clone(),
            accepted,
            rejected: report.recommendations.len() as i64 - accepted,
            cost_micros: report.cost.map_or(0, |c| (c.cost_usd * 1e6).round() as i64),
            fallback_reason: report.fallback_reason.clone(),
            report: serde_json::to_value(report).unwrap_or(serde_json::Value::Null),
        };
        store.record_analyst_report(&row, &report.proposal_events())
    }
}
