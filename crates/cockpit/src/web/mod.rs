//! The HTTP server: HTML pages, the JSON API under `/api/` (one route per
//! page), live updates by server-sent events (`/api/events`), the
//! emergency stop and resume, the inbound SMS webhook, `/healthz`,
//! `/readyz` and `/metrics`.

pub mod auth;
pub mod inbound;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use store::Store;

use crate::health::Health;
use crate::metrics::{Metrics, label};
use crate::notify::Notifier;
use crate::ops::{self, OpsError};
use crate::views;
use auth::AuthLimiter;

/// The actor of operations done through the dashboard.
pub const DASHBOARD_ACTOR: &str = "dashboard";

/// What every handler shares.
pub struct AppState {
    pub store: Arc<Store>,
    pub limits: risk::RiskLimits,
    pub refresh: Duration,
    /// `TRADER_DASHBOARD_TOKEN`; `None` disables state-changing requests.
    pub token: Option<String>,
    /// Bound off loopback: reads need the token (or its session cookie).
    pub reads_need_token: bool,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub notifier: Option<Arc<Notifier>>,
    pub limiter: AuthLimiter,
    pub inbound: inbound::InboundConfig,
}

pub type Shared = Arc<AppState>;

/// An error answer: status and a JSON body `{"error": ...}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// Runs a database read or write off the async threads.
pub async fn blocking<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&Store) -> Result<T, OpsError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("worker failed: {e}"),
            )
        })?
        .map_err(ApiError::from)
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

/// Checks the request's credentials for `need`; the refusal is the
/// response to send (401 unauthenticated, 403 writes disabled, 429 too many
/// failures).
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    need: Need,
) -> Result<(), ApiError> {
    if need == Need::Read && !state.reads_need_token {
        return Ok(());
    }
    let ip = peer.ip();
    if state.limiter.blocked(ip) {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed authentications from this address; wait a minute".into(),
        ));
    }
    let Some(token) = state.token.as_deref() else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "state-changing requests are disabled: start traderd with {} set",
                settings::DASHBOARD_TOKEN_ENV
            ),
        ));
    };
    let by_header = auth::bearer(headers)
        .is_some_and(|t| auth::constant_time_eq(t.as_bytes(), token.as_bytes()));
    let by_cookie = need == Need::Read
        && auth::session_cookie(headers).is_some_and(|c| {
            auth::constant_time_eq(c.as_bytes(), auth::session_value(token).as_bytes())
        });
    if by_header || by_cookie {
        return Ok(());
    }
    state.limiter.fail(ip);
    state.metrics.auth_failures.inc();
    tracing::warn!(client = %ip, "dashboard: request refused, missing or wrong token");
    Err(ApiError(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <TRADER_DASHBOARD_TOKEN>)".into(),
    ))
}

/// The router over `state`.
pub fn router(state: Shared) -> Router {
    let mut api = Router::new()
        .route("/api/status", get(api_status))
        .route("/api/positions", get(api_positions))
        .route("/api/orders", get(api_orders))
        .route("/api/fills", get(api_fills))
        .route("/api/trades", get(api_trades))
        .route("/api/equity", get(api_equity))
        .route("/api/decisions", get(api_decisions))
        .route("/api/experiments", get(api_experiments))
        .route("/api/patterns", get(api_patterns))
        .route("/api/learning-history", get(api_learning))
        .route("/api/audit", get(api_audit))
        .route("/api/notifications", get(api_notifications))
        .route("/api/analyst-reports", get(api_analyst_reports))
        .route("/api/health", get(api_health))
        .route("/api/events", get(api_events))
        .route("/api/emergency-stop", post(api_emergency_stop))
        .route("/api/resume", post(api_resume))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/sms/inbound", post(inbound::sms_inbound))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/assets/app.js", get(app_js))
        .route("/assets/style.css", get(style_css))
        .route("/charts/equity.svg", get(pages::equity_svg))
        .route("/charts/drawdown.svg", get(pages::drawdown_svg));
    for page in pages::PAGES {
        api = api.route(page.path, get(pages::page));
    }
    api.layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/app.js"),
    )
}

async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/style.css"),
    )
}

type Peer = ConnectInfo<SocketAddr>;

async fn read_json(
    state: Shared,
    headers: HeaderMap,
    peer: SocketAddr,
    f: impl FnOnce(&Store, &AppState) -> Result<Value, OpsError> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, peer, Need::Read)?;
    let s = Arc::clone(&state);
    let v = blocking(&state, move |store| f(store, &s)).await?;
    Ok(Json(v))
}

async fn api_status(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, status_with_extras).await
}

/// The overview's JSON: the database's status, the broker link and the
/// notification channels.
pub fn status_with_extras(store: &Store, st: &AppState) -> Result<Value, OpsError> {
    let mut v = views::status(store, &st.limits, Utc::now())?;
    if let Some(all) = v.as_object_mut() {
        all.insert(
            "broker_connected".into(),
            json!(st.health.broker_connected()),
        );
        all.insert(
            "notification_channels".into(),
            json!(st.notifier.as_ref().map(|n| n.status()).unwrap_or_default()),
        );
    }
    Ok(v)
}

async fn api_positions(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, |store, _| views::positions(store)).await
}

async fn api_orders(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, |store, _| views::orders(store)).await
}

#[derive(Debug, Deserialize, Default)]
pub struct LimitQuery {
    pub limit: Option<i64>,
    pub kind: Option<String>,
    pub all: Option<bool>,
}

impl LimitQuery {
    pub fn limit_or(&self, default: i64) -> i64 {
        self.limit.unwrap_or(default).clamp(1, 10_000)
    }
}

async fn api_fills(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| {
        views::fills(store, q.limit_or(100))
    })
    .await
}

async fn api_trades(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<views::TradeQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| views::trades(store, &q)).await
}

async fn api_equity(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, |store, _| views::equity(store)).await
}

async fn api_decisions(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| {
        views::decisions(store, q.limit_or(100), q.kind.as_deref())
    })
    .await
}

async fn api_experiments(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, |store, _| views::experiments(store)).await
}

async fn api_patterns(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| {
        views::patterns(store, q.all.unwrap_or(false))
    })
    .await
}

async fn api_learning(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| {
        views::learning_history(store, q.limit_or(200))
    })
    .await
}

async fn api_audit(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| {
        views::audit(store, q.limit_or(200))
    })
    .await
}

async fn api_analyst_reports(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, _| {
        Ok(json!({ "reports": views::analyst_reports(store, q.limit_or(50))? }))
    })
    .await
}

async fn api_notifications(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, move |store, st| {
        Ok(json!({
            "channels": st.notifier.as_ref().map(|n| n.status()).unwrap_or_default(),
            "attempts": views::notifications(store, q.limit_or(200))?,
        }))
    })
    .await
}

async fn api_health(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read_json(s, h, p, |store, st| Ok(health_json(store, st))).await
}

/// The health page's JSON: readiness with each check, the process's
/// start, the broker's reconnects, the notification channels.
pub fn health_json(store: &Store, st: &AppState) -> Value {
    let r = st.health.readiness(store);
    json!({
        "ready": r.ready,
        "checks": r.checks,
        "started": st.health.started(),
        "last_cycle_wall": st.health.last_cycle_wall(),
        "broker_reconnects": st.health.reconnects(),
        "notification_channels": st.notifier.as_ref().map(|n| n.status()).unwrap_or_default(),
    })
}

async fn api_events(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, std::convert::Infallible>>>, ApiError>
{
    authorize(&s, &h, p, Need::Read)?;
    let every = s.refresh;
    let stream = futures::stream::unfold((s, true), move |(s, first)| async move {
        if !first {
            tokio::time::sleep(every).await;
        }
        let st = Arc::clone(&s);
        let event = match blocking(&s, move |store| status_with_extras(store, &st)).await {
            Ok(v) => SseEvent::default().event("status").data(v.to_string()),
            Err(e) => SseEvent::default()
                .event("problem")
                .data(json!({"error": e.1}).to_string()),
        };
        Some((Ok(event), (s, false)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `POST /api/emergency-stop`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    pub reason: String,
    #[serde(default)]
    pub flatten: bool,
}

/// `POST /api/resume`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    pub reason: String,
}

fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json)".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("body: {e}")))
}

async fn api_emergency_stop(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&s, &h, p, Need::Write)?;
    let b: StopBody = json_body(&h, &body)?;
    let outcome = blocking(&s, move |store| {
        ops::emergency_stop(store, DASHBOARD_ACTOR, &b.reason, b.flatten)
    })
    .await?;
    tracing::warn!(flatten = outcome.flatten, reason = %outcome.reason, "emergency stop requested from the dashboard");
    Ok(Json(json!(outcome)))
}

async fn api_resume(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&s, &h, p, Need::Write)?;
    let b: ResumeBody = json_body(&h, &body)?;
    let outcome = blocking(&s, move |store| {
        ops::resume(store, DASHBOARD_ACTOR, &b.reason)
    })
    .await?;
    tracing::warn!(reason = %outcome.reason, "resume requested from the dashboard");
    Ok(Json(json!(outcome)))
}

async fn healthz(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"status": "alive", "started": s.health.started()}))
}

async fn readyz(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &h, p, Need::Read)?;
    let health = Arc::clone(&s.health);
    let r = blocking(&s, move |store| Ok(health.readiness(store))).await?;
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(json!(r))).into_response())
}

async fn metrics(
    State(s): State<Shared>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &h, p, Need::Read)?;
    let st = Arc::clone(&s);
    blocking(&s, move |store| {
        refresh_db_metrics(store, &st);
        Ok(())
    })
    .await?;
    let text = s.metrics.encode().map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the metrics: {e}"),
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The gauges read from the database at each scrape.
fn refresh_db_metrics(store: &Store, st: &AppState) {
    let m = &st.metrics;
    if let Ok(counts) = store.orders_by_status() {
        m.orders.clear();
        for (status, n) in counts {
            m.orders.get_or_create(&label("status", &status)).set(n);
        }
    }
    let state = store
        .trading_state()
        .ok()
        .flatten()
        .map_or(core_domain::TradingState::Active, |r| r.state);
    for s in core_domain::TradingState::ALL {
        m.trading_state
            .get_or_create(&label("state", s.as_str()))
            .set(i64::from(*s == state));
    }
    if let Ok(view) = ops::engine_view(store)
        && let Ok(account) = ops::live_account(store)
    {
        let now = view
            .memory
            .as_ref()
            .and_then(|x| x.last_cycle)
            .unwrap_or_else(Utc::now);
        for b in ops::breakers(&st.limits, view.memory.as_ref(), account.as_ref(), now) {
            m.breaker_tripped
                .get_or_create(&label("breaker", &b.name))
                .set(i64::from(b.tripped));
            m.breaker_headroom
                .get_or_create(&label("breaker", &b.name))
                .set(b.headroom);
        }
    }
    m.broker_connected
        .set(i64::from(st.health.broker_connected()));
}
