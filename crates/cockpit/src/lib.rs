//! # cockpit
//!
//! **Owns:** what the operator watches and steers `traderd` with: the web
//! dashboard and its JSON API ([`web`]), the shared operator operations
//! and reads that `trader-cli` uses too ([`ops`], [`views`]), liveness and
//! readiness ([`health`]), Prometheus metrics ([`metrics`]), outbound
//! notifications and the inbound SMS webhook ([`notify`],
//! [`web::inbound`]), the systemd notify protocol ([`systemd`]), and the
//! [`LoopObserver`] the daemon's loop feeds.
//!
//! **Must not:** trade, or change state except through the same queued
//! operator requests `trader-cli emergency-stop` / `resume` write (the
//! engine carries them out); hold a secret in the configuration, a page or
//! a log (tokens come from the environment); block the engine loop (the
//! observer only stores numbers; every read, write and delivery runs on
//! other tasks).
//!
//! No feature flags.
#![deny(unsafe_code)]

pub mod health;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod systemd;
pub mod views;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use core_domain::{AccountSnapshot, WorkingMemory};
use orchestrator::{CycleObserver, CycleReport};
use settings::Settings;
use store::Store;
use thiserror::Error;
use tokio::sync::watch;

use crate::health::{BrokerLink, Health};
use crate::metrics::Metrics;
use crate::notify::{Channel, ChannelSecrets, Notifier, RetryPolicy};

/// What can keep the cockpit from starting.
#[derive(Debug, Error)]
pub enum CockpitError {
    #[error(
        "dashboard.bind = {bind:?} is not a loopback address and {env} is not set: refusing to serve the dashboard without a token (set it, or bind 127.0.0.1 and use an SSH tunnel or a TLS reverse proxy)"
    )]
    OffLoopbackWithoutToken { bind: String, env: &'static str },
    #[error(
        "dashboard.bind = {bind:?}: {source} (is another traderd running? choose another port)"
    )]
    Bind {
        bind: String,
        #[source]
        source: std::io::Error,
    },
}

/// The secrets, read from the environment once at start.
#[derive(Clone, Default)]
pub struct Secrets {
    pub dashboard_token: Option<String>,
    pub channels: ChannelSecrets,
    pub inbound_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "dashboard_token",
                &self.dashboard_token.as_ref().map(|_| "set"),
            )
            .field("channels", &self.channels)
            .field(
                "inbound_secret",
                &self.inbound_secret.as_ref().map(|_| "set"),
            )
            .finish()
    }
}

impl Secrets {
    /// From the process environment (empty values count as unset).
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Secrets {
            dashboard_token: get(settings::DASHBOARD_TOKEN_ENV),
            channels: ChannelSecrets {
                smtp_username: get(settings::SMTP_USERNAME_ENV),
                smtp_password: get(settings::SMTP_PASSWORD_ENV),
                sms_account: get(settings::SMS_ACCOUNT_ENV),
                sms_token: get(settings::SMS_TOKEN_ENV),
            },
            inbound_secret: get(settings::SMS_INBOUND_SECRET_ENV),
        }
    }
}

/// The running cockpit: the dashboard's address (when enabled) and the
/// observer to hand the loop.
pub struct Cockpit {
    /// Where the dashboard listens (`None`: disabled).
    pub addr: Option<SocketAddr>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub notifier: Option<Arc<Notifier>>,
    account_tx: watch::Sender<Option<AccountSnapshot>>,
    store: Arc<Store>,
}

/// Starts the cockpit on the current tokio runtime: the dashboard (when
/// `[dashboard] enabled`), the notifier (when a channel is enabled), the
/// broker watch and the systemd watchdog. `store` should be a connection
/// of its own (not the engine's), so reads never wait for a cycle.
pub async fn start(
    settings: &Settings,
    store: Arc<Store>,
    broker: BrokerLink,
    secrets: Secrets,
) -> Result<Cockpit, CockpitError> {
    let d = &settings.dashboard;
    if d.enabled && !d.binds_loopback() && secrets.dashboard_token.is_none() {
        return Err(CockpitError::OffLoopbackWithoutToken {
            bind: d.bind.clone(),
            env: settings::DASHBOARD_TOKEN_ENV,
        });
    }
    let health = Arc::new(Health::new(broker));
    let metrics = Arc::new(Metrics::new());
    let n = &settings.notifications;
    let channels = Channel::from_settings(n);
    let notifier = if channels.is_empty() {
        None
    } else {
        Some(Notifier::new(
            channels,
            secrets.channels.clone(),
            RetryPolicy::from_settings(n),
            Arc::clone(&store),
            Arc::clone(&metrics),
        ))
    };
    if let Some(nt) = &notifier {
        let s = Arc::clone(&store);
        let start = tokio::task::spawn_blocking(move || notify::starting_point(&s))
            .await
            .unwrap_or((0, None));
        tokio::spawn(notify::follow(
            Arc::clone(&store),
            Arc::clone(nt),
            n.daily_summary,
            start,
        ));
    }
    tokio::spawn(notify::watch_broker(
        Arc::clone(&health),
        Arc::clone(&metrics),
        notifier.clone(),
        Duration::from_secs(u64::try_from(n.disconnect_alert_secs.max(1)).unwrap_or(300)),
    ));
    systemd::spawn_watchdog(Arc::clone(&health));

    let refresh = Duration::from_secs(u64::try_from(d.refresh_secs.max(1)).unwrap_or(2));
    let (account_tx, account_rx) = watch::channel(None);
    tokio::spawn(persist_account(Arc::clone(&store), account_rx, refresh));

    let addr = if d.enabled {
        let listener = tokio::net::TcpListener::bind(&d.bind)
            .await
            .map_err(|source| CockpitError::Bind {
                bind: d.bind.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| CockpitError::Bind {
            bind: d.bind.clone(),
            source,
        })?;
        let state = Arc::new(web::AppState {
            store: Arc::clone(&store),
            limits: settings.risk_limits(),
            refresh,
            token: secrets.dashboard_token.clone(),
            reads_need_token: !addr.ip().is_loopback(),
            health: Arc::clone(&health),
            metrics: Arc::clone(&metrics),
            notifier: notifier.clone(),
            limiter: web::auth::AuthLimiter::new(
                u32::try_from(d.max_auth_failures_per_minute).unwrap_or(5),
            ),
            inbound: web::inbound::InboundConfig {
                enabled: n.inbound.enabled,
                allowed_numbers: settings::split_list(&n.inbound.allowed_numbers),
                public_url: n.inbound.public_url.clone(),
                auth_token: secrets.channels.sms_token.clone(),
                shared_secret: secrets.inbound_secret.clone(),
            },
        });
        let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the dashboard's server stopped: {e}");
            }
        });
        tracing::info!(%addr, "dashboard listening");
        Some(addr)
    } else {
        None
    };
    Ok(Cockpit {
        addr,
        health,
        metrics,
        notifier,
        account_tx,
        store,
    })
}

impl Cockpit {
    /// The observer the loop feeds (`orchestrator::run_observed`); `extra`
    /// sees each report too (progress lines).
    pub fn observer<'a>(&'a self, extra: impl FnMut(&CycleReport) + 'a) -> LoopObserver<'a> {
        LoopObserver {
            cockpit: self,
            extra: Box::new(extra),
            ready_sent: false,
        }
    }

    /// The loop ended: readiness turns false, and the last account is
    /// written now.
    pub fn finish(&self) {
        self.health.finished();
        systemd::stopping();
        if let Some(a) = self.account_tx.borrow().clone() {
            write_account(&self.store, &a);
        }
    }
}

impl Cockpit {
    /// Before exit: lets the notifier read the audit log to its end and
    /// finish the deliveries under way (at most `timeout`).
    pub async fn drain_notifications(&self, timeout: Duration) {
        let Some(n) = &self.notifier else { return };
        let store = Arc::clone(&self.store);
        let last = tokio::task::spawn_blocking(move || store.max_audit_id().unwrap_or(0))
            .await
            .unwrap_or(0);
        n.drain(last, timeout).await;
    }
}

/// Feeds the health, the metrics, the live account and the watchdog from
/// the loop; returns at once (the account is written by another task).
pub struct LoopObserver<'a> {
    cockpit: &'a Cockpit,
    extra: Box<dyn FnMut(&CycleReport) + 'a>,
    ready_sent: bool,
}

impl CycleObserver for LoopObserver<'_> {
    fn waiting(&mut self, next: chrono::DateTime<chrono::Utc>, wall_wait: Duration) {
        self.cockpit.health.waiting(next, wall_wait);
        if !self.ready_sent {
            self.ready_sent = true;
            systemd::ready();
        }
    }

    fn cycle_done(&mut self, report: &CycleReport, took: Duration) {
        self.cockpit.health.cycle_done(report.time);
        self.cockpit.metrics.observe_cycle(report, took);
        if let Some(a) = &report.account {
            self.cockpit.account_tx.send_replace(Some(a.clone()));
        }
        (self.extra)(report);
    }
}

fn write_account(store: &Store, a: &AccountSnapshot) {
    match serde_json::to_value(a) {
        Ok(v) => {
            if let Err(e) = store.remember(ops::LIVE_ACCOUNT_KEY, &v) {
                tracing::warn!("recording the live account: {e}");
            }
        }
        Err(e) => tracing::warn!("encoding the live account: {e}"),
    }
}

/// Writes the newest account to working memory, at most once per `every`.
async fn persist_account(
    store: Arc<Store>,
    mut rx: watch::Receiver<Option<AccountSnapshot>>,
    every: Duration,
) {
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let started = Instant::now();
        let account = rx.borrow_and_update().clone();
        if let Some(a) = account {
            let s = Arc::clone(&store);
            let _ = tokio::task::spawn_blocking(move || write_account(&s, &a)).await;
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}
