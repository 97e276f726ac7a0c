//! The operator's operations, shared by `trader-cli` and the dashboard
//! (one set: neither can do what the other cannot): the emergency stop and
//! the resume, queued for the engine and recorded at once; and the reads
//! both show — the engine's working memory, the account and the breakers.
//! Everything comes from the database.

use chrono::{DateTime, Utc};
use core_domain::{
    AccountRepository, AccountSnapshot, AuditEntry, AuditRepository, DecisionKind, DecisionRecord,
    Money, TradingState, WorkingMemory,
};
use execution::{Alert, MonitorReport};
use orchestrator::engine::keys;
use orchestrator::{EngineEvent, Memory};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{ControlAction, ControlRequest, Store};
use thiserror::Error;

/// Working-memory key of the account as the engine last saw it (written
/// by the daemon's cycle observer, at most every few seconds).
pub const LIVE_ACCOUNT_KEY: &str = "cockpit.account";

/// What an operation could not do, and what to do about it.
#[derive(Debug, Error)]
pub enum OpsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: store::StoreError,
    },
    #[error("{what}: {source}")]
    Repo {
        what: String,
        #[source]
        source: core_domain::RepoError,
    },
}

impl From<store::StoreError> for OpsError {
    fn from(source: store::StoreError) -> Self {
        OpsError::Store {
            what: "the database".into(),
            source,
        }
    }
}

fn st(what: impl Into<String>) -> impl FnOnce(store::StoreError) -> OpsError {
    let what = what.into();
    move |source| OpsError::Store { what, source }
}

fn repo(what: impl Into<String>) -> impl FnOnce(core_domain::RepoError) -> OpsError {
    let what = what.into();
    move |source| OpsError::Repo { what, source }
}

/// The engine's working memory as stored.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EngineView {
    /// The engine's memory (`engine`); `None` if the engine never ran on
    /// this database.
    pub memory: Option<Memory>,
    /// The goals (`goals`, else those in the memory).
    pub goals: Vec<String>,
    /// The position monitor's last report (`last_monitor`).
    pub monitor: Option<MonitorReport>,
    /// Keys that could not be read, each with the reason and what to do.
    pub problems: Vec<String>,
}

/// Reads one key and decodes it; a value that does not decode is a
/// problem to show, not a failure.
fn recall_as<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
    problems: &mut Vec<String>,
) -> Result<Option<T>, OpsError> {
    let Some(value) = store
        .recall(key)
        .map_err(repo(format!("reading working memory key `{key}`")))?
    else {
        return Ok(None);
    };
    match serde_json::from_value(value) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            problems.push(format!(
                "working memory key `{key}` is unreadable ({e}); it was written by another \
                 version of the engine: run this version's `traderd` to rewrite it"
            ));
            Ok(None)
        }
    }
}

/// Reads the engine's working memory from `store`.
pub fn engine_view(store: &Store) -> Result<EngineView, OpsError> {
    let mut problems = Vec::new();
    let memory: Option<Memory> = recall_as(store, keys::ENGINE, &mut problems)?;
    let goals: Option<Vec<String>> = recall_as(store, keys::GOALS, &mut problems)?;
    let monitor: Option<MonitorReport> = recall_as(store, keys::LAST_MONITOR, &mut problems)?;
    let goals = goals
        .or_else(|| memory.as_ref().map(|m| m.goals.clone()))
        .unwrap_or_default();
    Ok(EngineView {
        memory,
        goals,
        monitor,
        problems,
    })
}

/// When an engine event happened.
pub fn event_time(e: &EngineEvent) -> DateTime<Utc> {
    match e {
        EngineEvent::VixSpike { time, .. }
        | EngineEvent::RegimeShift { time, .. }
        | EngineEvent::TradeClosed { time, .. }
        | EngineEvent::SystemError { time, .. } => *time,
    }
}

/// An alert's short name (`in_the_money`, `at_stop`, ...).
pub fn alert_kind(a: &Alert) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.get("alert").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "alert".to_string())
}

/// A pending control request as one line.
pub fn describe_request(r: &ControlRequest) -> String {
    let what = match (r.action, r.flatten) {
        (ControlAction::EmergencyStop, true) => "emergency stop + flatten",
        (ControlAction::EmergencyStop, false) => "emergency stop",
        (ControlAction::Resume, _) => "resume",
    };
    format!(
        "#{} {what} by {} at {}: {}",
        r.id.map_or_else(|| "?".to_string(), |i| i.to_string()),
        r.actor,
        r.time.format("%Y-%m-%d %H:%M:%S UTC"),
        r.reason
    )
}

/// The `engine` part of `status --json` and `/api/status`: `null` if the
/// engine never ran.
pub fn engine_status_json(view: &EngineView, pending: &[ControlRequest]) -> Value {
    let engine = view.memory.as_ref().map(|m| {
        json!({
            "cycles": m.cycles,
            "last_cycle": m.last_cycle,
            "session": m.session,
            "regime": m.regime,
            "vix": m.vix,
            "last_actions": m.last_actions,
            "recent_actions": m.recent_actions,
            "recent_events": m.recent_events,
            "position_mismatches": m.position_mismatches,
            "cancels_pending": m.cancels_pending,
        })
    });
    json!({
        "engine": engine,
        "goals": view.goals,
        "monitor": view.monitor,
        "pending_control_requests": pending,
        "working_memory_problems": view.problems,
    })
}

/// What an emergency stop or a resume did.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorOutcome {
    /// The trading state recorded: `halted` or `active`.
    pub state: TradingState,
    /// The state before.
    pub previous_state: Option<TradingState>,
    pub flatten: bool,
    pub reason: String,
    pub actor: String,
    /// The queued request the engine carries out at its next cycle.
    pub request_id: Option<i64>,
    pub control_request: ControlRequest,
}

/// The halt (and a flatten request): queued for the engine, which halts,
/// cancels every working order and, with `flatten`, closes every position
/// at its next cycle; and recorded at once in the trading-state history,
/// the audit log (action `emergency_stop`, actor `actor`) and the decision
/// records. Works with or without a running daemon.
pub fn emergency_stop(
    store: &Store,
    actor: &str,
    reason: &str,
    flatten: bool,
) -> Result<OperatorOutcome, OpsError> {
    if reason.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the reason must say why trading is halted".into(),
        ));
    }
    let before = current_state(store)?;
    // The request first: it is what makes the engine act, and the engine
    // records the halt itself when it carries the request out.
    let request = queue_control(store, actor, ControlAction::EmergencyStop, flatten, reason)?;
    let cause = format!(
        "emergency stop by {actor}: {reason}{}",
        if flatten { "; flatten requested" } else { "" }
    );
    record_operator_state(
        store,
        actor,
        TradingState::Halted,
        "emergency_stop",
        if flatten { "halt+flatten" } else { "halt" },
        &cause,
        json!({"reason": reason, "flatten": flatten, "control_request": request.id}),
    )
    .map_err(|e| {
        OpsError::Invalid(format!(
            "the engine's request is queued, but recording the halt failed ({e}); check the status"
        ))
    })?;
    Ok(OperatorOutcome {
        state: TradingState::Halted,
        previous_state: before,
        flatten,
        reason: reason.to_string(),
        actor: actor.to_string(),
        request_id: request.id,
        control_request: request,
    })
}

/// Back to active trading: queued for the engine and recorded like the
/// halt (audit action `resume`).
pub fn resume(store: &Store, actor: &str, reason: &str) -> Result<OperatorOutcome, OpsError> {
    if reason.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the reason must say why it is safe to trade again".into(),
        ));
    }
    let before = current_state(store)?;
    let request = queue_control(store, actor, ControlAction::Resume, false, reason)?;
    record_operator_state(
        store,
        actor,
        TradingState::Active,
        "resume",
        "resume",
        &format!("resumed by {actor}: {reason}"),
        json!({"reason": reason, "previous_state": before, "control_request": request.id}),
    )
    .map_err(|e| {
        OpsError::Invalid(format!(
            "the engine's request is queued, but recording the resume failed ({e}); check the status"
        ))
    })?;
    Ok(OperatorOutcome {
        state: TradingState::Active,
        previous_state: before,
        flatten: false,
        reason: reason.to_string(),
        actor: actor.to_string(),
        request_id: request.id,
        control_request: request,
    })
}

fn current_state(store: &Store) -> Result<Option<TradingState>, OpsError> {
    Ok(store
        .trading_state()
        .map_err(st("reading the trading state"))?
        .map(|r| r.state))
}

/// Records a trading-state change by an operator: the state history, an
/// audit entry and a decision record, in one transaction.
fn record_operator_state(
    store: &Store,
    who: &str,
    state: TradingState,
    action: &str,
    decision: &str,
    cause: &str,
    context: Value,
) -> Result<(), OpsError> {
    let now = Utc::now();
    store.atomically(|tx| -> Result<(), OpsError> {
        tx.set_trading_state(state, cause, who)
            .map_err(st(format!("recording the {action}")))?;
        tx.append_audit(
            &AuditEntry::new(now, who, action)
                .context(context.clone())
                .decision(decision)
                .outcome("recorded"),
        )
        .map_err(repo("appending the audit entry"))?;
        tx.append_decision(
            &DecisionRecord::new(now, DecisionKind::TradingState, "account", decision, cause)
                .with_context(json!({"actor": who, "details": context})),
        )
        .map_err(repo("appending the decision record"))?;
        Ok(())
    })
}

/// Queues `action` for the engine (`control_requests`): a running daemon
/// carries it out at its next cycle, a stopped one when it starts.
fn queue_control(
    store: &Store,
    actor: &str,
    action: ControlAction,
    flatten: bool,
    reason: &str,
) -> Result<ControlRequest, OpsError> {
    let mut request = ControlRequest {
        id: None,
        time: Utc::now(),
        actor: actor.to_string(),
        action,
        flatten,
        reason: reason.to_string(),
    };
    let id = store.request_control(&request).map_err(st(format!(
        "queueing the {} request for the engine (nothing was recorded; try again)",
        action.as_str()
    )))?;
    request.id = Some(id);
    Ok(request)
}

/// Dollars from money, for JSON fields named `..._usd` (display only: the
/// database and every computation keep integer cents).
pub fn usd(m: Money) -> f64 {
    m.cents() as f64 / 100.0
}

/// The account as the engine last saw it: the cycle observer's record when
/// there is one, else the newest session-close snapshot.
pub fn live_account(store: &Store) -> Result<Option<AccountSnapshot>, OpsError> {
    let mut problems = Vec::new();
    let live: Option<AccountSnapshot> = recall_as(store, LIVE_ACCOUNT_KEY, &mut problems)?;
    let closing = store
        .latest_snapshot()
        .map_err(repo("reading the newest account snapshot"))?;
    Ok(match (live, closing) {
        (Some(l), Some(c)) => Some(if c.time > l.time { c } else { l }),
        (l, c) => l.or(c),
    })
}

/// One circuit breaker: where it stands against its threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BreakerView {
    /// `daily_loss` or `api_errors`.
    pub name: String,
    /// The value now (daily change as a fraction; errors in the last hour).
    pub value: f64,
    /// The threshold it trips at.
    pub threshold: f64,
    /// How far from tripping, in the value's unit (≤ 0: tripped).
    pub distance: f64,
    /// Distance as a share of the threshold's span (1 = far, 0 = tripped).
    pub headroom: f64,
    pub tripped: bool,
    /// What it does when it trips (`halt_trading`, `reduce_only`).
    pub action: String,
    pub explanation: String,
}

/// The breakers against the engine's memory and the live account.
pub fn breakers(
    limits: &risk::RiskLimits,
    memory: Option<&Memory>,
    account: Option<&AccountSnapshot>,
    now: DateTime<Utc>,
) -> Vec<BreakerView> {
    let mut out = Vec::new();
    let start = memory.and_then(|m| m.session_start.as_ref());
    let change = match (start, account) {
        (Some(s), Some(a)) if s.net_liquidation.cents() > 0 => {
            (a.net_liquidation.cents() - s.net_liquidation.cents()) as f64
                / s.net_liquidation.cents() as f64
        }
        _ => 0.0,
    };
    let threshold = limits.max_daily_loss;
    let distance = change - threshold;
    out.push(BreakerView {
        name: "daily_loss".into(),
        value: change,
        threshold,
        distance,
        headroom: if threshold < 0.0 {
            (distance / -threshold).clamp(0.0, 1.0)
        } else {
            0.0
        },
        tripped: distance <= 1e-9,
        action: snake(limits.daily_loss_action),
        explanation: format!(
            "net liquidation {:+.3}% since the session's start; trips at {:.2}%",
            change * 100.0,
            threshold * 100.0
        ),
    });
    let errors = memory.map_or(0, |m| {
        m.api_errors
            .iter()
            .filter(|t| now - **t < chrono::Duration::hours(1))
            .count()
    });
    let max = f64::from(limits.max_api_errors_per_hour);
    out.push(BreakerView {
        name: "api_errors".into(),
        value: errors as f64,
        threshold: max,
        distance: max - errors as f64,
        headroom: if max > 0.0 {
            ((max - errors as f64) / max).clamp(0.0, 1.0)
        } else {
            0.0
        },
        tripped: errors as f64 >= max,
        action: snake(limits.api_errors_action),
        explanation: format!(
            "{errors} broker errors in the last hour; trips at {}",
            limits.max_api_errors_per_hour
        ),
    });
    out
}

fn snake(a: risk::BreakerAction) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
