//! Outbound notifications: events from the audit log, the account
//! snapshots and the broker link go to every channel whose severity
//! threshold they meet. Each delivery runs in its own task with retries
//! and exponential backoff — the engine loop never waits for one — and
//! every attempt is recorded in `notification_attempts`. A channel that
//! fails every attempt of a delivery is marked dead (shown on the
//! dashboard), audited, and reported on the other channels; it comes back
//! alive with its next successful delivery.

pub mod channels;
pub mod events;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use core_domain::{AuditEntry, AuditRepository, TradeFilter, TradeRepository};
use serde::Serialize;
use serde_json::{Map, Value, json};
use store::{NotificationAttempt, Store};

use crate::health::Health;
use crate::metrics::{Metrics, label};
pub use channels::{Channel, ChannelSecrets};
pub use events::{Event, EventKind, Severity};

/// The actor of the notifier's own audit entries.
pub const NOTIFIER_ACTOR: &str = "notifier";

/// Retries and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
    pub timeout: Duration,
}

impl RetryPolicy {
    pub fn from_settings(n: &settings::NotificationSettings) -> Self {
        let ms = |v: i64| Duration::from_millis(u64::try_from(v.max(1)).unwrap_or(1));
        RetryPolicy {
            max_attempts: u32::try_from(n.max_attempts.max(1)).unwrap_or(1),
            initial: ms(n.retry_initial_ms),
            max: ms(n.retry_max_ms),
            timeout: Duration::from_secs(u64::try_from(n.timeout_secs.max(1)).unwrap_or(10)),
        }
    }

    /// The wait after failed attempt `n` (1-based): initial × 2^(n−1),
    /// at most `max`.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// A channel's health as the dashboard shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelStatus {
    pub channel: String,
    pub min_severity: String,
    pub delivered: u64,
    pub failed_attempts: u64,
    /// Every attempt of its last failed delivery failed, and nothing was
    /// delivered since.
    pub dead: bool,
    pub last_ok: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Sends events to the configured channels.
pub struct Notifier {
    channels: Vec<Channel>,
    secrets: ChannelSecrets,
    policy: RetryPolicy,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    status: Mutex<BTreeMap<&'static str, ChannelStatus>>,
    http: reqwest::Client,
    /// Deliveries under way (retries included).
    in_flight: AtomicUsize,
    /// The audit id the follower has read up to.
    cursor: AtomicI64,
}

impl Notifier {
    pub fn new(
        channels: Vec<Channel>,
        secrets: ChannelSecrets,
        policy: RetryPolicy,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Arc<Notifier> {
        let status = channels
            .iter()
            .map(|c| {
                (
                    c.name(),
                    ChannelStatus {
                        channel: c.name().to_string(),
                        min_severity: c.min_severity().as_str().to_string(),
                        ..ChannelStatus::default()
                    },
                )
            })
            .collect();
        Arc::new(Notifier {
            channels,
            secrets,
            policy,
            store,
            metrics,
            status: Mutex::new(status),
            http: reqwest::Client::new(),
            in_flight: AtomicUsize::new(0),
            cursor: AtomicI64::new(-1),
        })
    }

    /// The channels' health.
    pub fn status(&self) -> Vec<ChannelStatus> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, ChannelStatus>> {
        match self.status.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Sends `event` to every channel whose threshold it meets, each in
    /// its own task; returns at once.
    pub fn dispatch(self: &Arc<Self>, event: Event) {
        self.dispatch_except(event, None);
    }

    fn dispatch_except(self: &Arc<Self>, event: Event, except: Option<&'static str>) {
        for (i, c) in self.channels.iter().enumerate() {
            if event.severity < c.min_severity() || Some(c.name()) == except {
                continue;
            }
            let this = Arc::clone(self);
            let event = event.clone();
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                Arc::clone(&this).deliver(i, event).await;
                this.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Waits (at most `timeout`) until the follower has read the audit log
    /// up to `audit_id` and every delivery under way has ended: the daemon
    /// calls it before it exits, so the last events are not lost.
    pub async fn drain(&self, audit_id: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let caught_up = self.cursor.load(Ordering::SeqCst) >= audit_id;
            if caught_up && self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(
            in_flight = self.in_flight.load(Ordering::SeqCst),
            "notifications still under way at exit"
        );
    }

    async fn deliver(self: Arc<Self>, index: usize, event: Event) {
        let Some(channel) = self.channels.get(index) else {
            return;
        };
        let name = channel.name();
        let mut last_error = String::new();
        for attempt in 1..=self.policy.max_attempts {
            let result = channel
                .deliver(&self.http, &self.secrets, self.policy.timeout, &event)
                .await;
            let ok = result.is_ok();
            let is_final = ok || attempt == self.policy.max_attempts;
            let detail = match &result {
                Ok(s) | Err(s) => s.clone(),
            };
            self.record(name, &event, attempt, ok, is_final, &detail)
                .await;
            if ok {
                self.metrics
                    .notifications_sent
                    .get_or_create(&label("channel", name))
                    .inc();
                let mut st = self.lock();
                if let Some(s) = st.get_mut(name) {
                    s.delivered += 1;
                    s.dead = false;
                    s.last_ok = Some(Utc::now());
                }
                return;
            }
            self.metrics
                .notification_failures
                .get_or_create(&label("channel", name))
                .inc();
            {
                let mut st = self.lock();
                if let Some(s) = st.get_mut(name) {
                    s.failed_attempts += 1;
                    s.last_error = Some(detail.clone());
                }
            }
            tracing::warn!(channel = name, event = event.kind.as_str(), attempt, error = %detail, "notification delivery failed");
            last_error = detail;
            if !is_final {
                tokio::time::sleep(self.policy.backoff(attempt)).await;
            }
        }
        // Every attempt failed: the channel is dead until it delivers again.
        let newly_dead = {
            let mut st = self.lock();
            match st.get_mut(name) {
                Some(s) => !std::mem::replace(&mut s.dead, true),
                None => false,
            }
        };
        let audit = AuditEntry::new(Utc::now(), NOTIFIER_ACTOR, "notification.failed")
            .context(json!({
                "channel": name,
                "event": event.kind.as_str(),
                "event_key": event.key,
                "attempts": self.policy.max_attempts,
                "error": last_error,
            }))
            .outcome(format!(
                "{name}: {} attempts failed; channel marked dead",
                self.policy.max_attempts
            ));
        let store = Arc::clone(&self.store);
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = store.append_audit(&audit) {
                tracing::error!("recording a failed notification in the audit log: {e}");
            }
        })
        .await;
        if newly_dead && event.kind != EventKind::ChannelDead {
            let mut numbers = Map::new();
            numbers.insert("attempts".into(), json!(self.policy.max_attempts));
            self.dispatch_except(
                Event {
                    kind: EventKind::ChannelDead,
                    severity: Severity::Critical,
                    time: Utc::now(),
                    key: format!("channel_dead:{name}:{}", event.key),
                    title: format!("notification channel {name} is not delivering"),
                    reason: format!(
                        "every attempt to send \"{}\" failed; last error: {last_error}",
                        event.title
                    ),
                    numbers,
                },
                Some(name),
            );
        }
    }

    async fn record(
        &self,
        channel: &str,
        event: &Event,
        attempt: u32,
        ok: bool,
        is_final: bool,
        detail: &str,
    ) {
        let row = NotificationAttempt {
            id: None,
            time: Utc::now(),
            channel: channel.to_string(),
            event: event.kind.as_str().to_string(),
            severity: event.severity.as_str().to_string(),
            event_key: event.key.clone(),
            attempt: i64::from(attempt),
            ok,
            is_final,
            detail: detail.to_string(),
            payload: event.payload(),
        };
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.record_notification(&row)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("recording a notification attempt: {e}"),
            Err(e) => tracing::error!("recording a notification attempt: {e}"),
        }
    }
}

/// Numbers a breaker's cause carries ("daily loss breaker: net
/// liquidation A -> B (C%) <= D%"; "API error breaker: N errors in the
/// last hour >= M").
pub fn breaker_numbers(cause: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let num = |s: &str| s.trim().trim_end_matches('%').trim().parse::<f64>().ok();
    if let Some(rest) = cause.split("net liquidation ").nth(1) {
        let mut parts = rest.split(" -> ");
        let from = parts.next().and_then(num);
        let tail = parts.next().unwrap_or_default();
        let to = tail.split(" (").next().and_then(num);
        let pct = tail
            .split('(')
            .nth(1)
            .and_then(|x| x.split(')').next())
            .and_then(num);
        let limit = tail
            .split("<= ")
            .nth(1)
            .and_then(|x| x.split([';', ',']).next())
            .and_then(num);
        for (k, v) in [
            ("session_start_net_liq_usd", from),
            ("net_liq_usd", to),
            ("daily_change_pct", pct),
            ("daily_loss_threshold_pct", limit),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if let (Some(a), Some(b)) = (from, to) {
            m.insert(
                "daily_pnl_usd".into(),
                json!(((b - a) * 100.0).round() / 100.0),
            );
        }
    }
    if let Some(rest) = cause.split("API error breaker: ").nth(1) {
        let n = rest.split(' ').next().and_then(num);
        let max = rest
            .split(">= ")
            .nth(1)
            .and_then(|x| x.split([';', ',']).next())
            .and_then(num);
        if let Some(n) = n {
            m.insert("api_errors_last_hour".into(), json!(n));
        }
        if let Some(max) = max {
            m.insert("api_errors_threshold".into(), json!(max));
        }
    }
    m
}

/// Where the follower starts: the newest audit id and session-close
/// snapshot now (earlier events are history, not news).
pub fn starting_point(store: &Store) -> (i64, Option<DateTime<Utc>>) {
    let id = store.max_audit_id().unwrap_or(0);
    let snap = core_domain::AccountRepository::latest_snapshot(store)
        .ok()
        .flatten()
        .map(|x| x.time);
    (id, snap)
}

/// Follows the audit log and the session-close snapshots from `start`
/// ([`starting_point`]) and dispatches their events; runs until the
/// process ends.
pub async fn follow(
    store: Arc<Store>,
    notifier: Arc<Notifier>,
    daily_summary: bool,
    start: (i64, Option<DateTime<Utc>>),
) {
    let (mut cursor, mut last_snapshot) = start;
    notifier.cursor.store(cursor, Ordering::SeqCst);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = Arc::clone(&store);
        let prev_snapshot = last_snapshot;
        let read = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let entries = s.audit_after(cursor, 500).map_err(|e| e.to_string())?;
            let summary = if daily_summary {
                daily_summary_event(&s, prev_snapshot).map_err(|e| e.to_string())?
            } else {
                None
            };
            Ok((entries, summary))
        })
        .await;
        let (entries, summary) = match read {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!("notifications: reading the audit log: {e}");
                continue;
            }
            Err(_) => continue,
        };
        for (id, entry) in entries {
            cursor = cursor.max(id);
            if let Some(mut event) = events::from_audit(id, &entry) {
                if event.kind == EventKind::BreakerTrip {
                    event.numbers.extend(breaker_numbers(&event.reason));
                }
                notifier.dispatch(event);
            }
        }
        notifier.cursor.store(cursor, Ordering::SeqCst);
        if let Some((time, event)) = summary {
            last_snapshot = Some(time);
            if let Some(event) = event {
                notifier.dispatch(event);
            }
        }
    }
}

/// A new session-close snapshot's time, and its summary (none for the
/// first snapshot seen).
type SummaryStep = (DateTime<Utc>, Option<Event>);

/// A new session-close snapshot since `last`: the day's summary.
fn daily_summary_event(
    store: &Store,
    last: Option<DateTime<Utc>>,
) -> Result<Option<SummaryStep>, core_domain::RepoError> {
    let Some(snap) = core_domain::AccountRepository::latest_snapshot(store)? else {
        return Ok(None);
    };
    if last.is_some_and(|t| t >= snap.time) {
        return Ok(None);
    }
    let Some(last) = last else {
        // The first snapshot seen: the baseline, nothing to report yet.
        return Ok(Some((snap.time, None)));
    };
    let prev = core_domain::AccountRepository::snapshots(store, last, last)?
        .into_iter()
        .next();
    let day = execution::trade_log::exchange_date(snap.time);
    let trades = store.trades(&TradeFilter::default())?;
    let opened = trades.iter().filter(|t| t.entry_date == day).count();
    let closed: Vec<_> = trades.iter().filter(|t| t.exit_date == Some(day)).collect();
    let realized: i64 = closed
        .iter()
        .filter_map(|t| t.profit_loss)
        .map(|m| m.cents())
        .sum();
    let open = trades.iter().filter(|t| t.exit_date.is_none()).count();
    let mut numbers = Map::new();
    numbers.insert(
        "net_liq_usd".into(),
        json!(crate::ops::usd(snap.net_liquidation)),
    );
    if let Some(p) = &prev {
        numbers.insert(
            "day_pnl_usd".into(),
            json!((snap.net_liquidation.cents() - p.net_liquidation.cents()) as f64 / 100.0),
        );
    }
    numbers.insert("realized_pnl_usd".into(), json!(realized as f64 / 100.0));
    numbers.insert("trades_opened".into(), json!(opened));
    numbers.insert("trades_closed".into(), json!(closed.len()));
    numbers.insert("open_trades".into(), json!(open));
    numbers.insert(
        "margin_utilization_pct".into(),
        json!((snap.margin_utilization() * 10_000.0).round() / 100.0),
    );
    let state = store
        .trading_state()
        .ok()
        .flatten()
        .map_or(core_domain::TradingState::Active, |r| r.state)
        .to_string();
    Ok(Some((
        snap.time,
        Some(Event {
            kind: EventKind::DailySummary,
            severity: Severity::Info,
            time: snap.time,
            key: format!("daily_summary:{day}"),
            title: format!("daily summary {day}"),
            reason: format!(
                "session closed; trading {state}; {opened} opened, {} closed, {open} open",
                closed.len()
            ),
            numbers,
        }),
    )))
}

/// Watches the broker link every second: a disconnection longer than
/// `after` is notified once, and so is the reconnection that ends it.
pub async fn watch_broker(
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    notifier: Option<Arc<Notifier>>,
    after: Duration,
) {
    let mut down_since: Option<DateTime<Utc>> = None;
    let mut notified = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let up = health.poll_broker();
        metrics.broker_connected.set(i64::from(up));
        metrics
            .broker_reconnects
            .set(i64::try_from(health.reconnects()).unwrap_or(i64::MAX));
        let now = Utc::now();
        match (up, down_since) {
            (false, None) => down_since = Some(now),
            (false, Some(since)) => {
                let down = (now - since).to_std().unwrap_or_default();
                if !notified && down >= after {
                    notified = true;
                    if let Some(n) = &notifier {
                        let mut numbers = Map::new();
                        numbers.insert("down_secs".into(), json!(down.as_secs()));
                        n.dispatch(Event {
                            kind: EventKind::Disconnected,
                            severity: Severity::Critical,
                            time: now,
                            key: format!("disconnected:{}", since.timestamp()),
                            title: "broker disconnected".into(),
                            reason: format!(
                                "no session to the broker since {} (the adapter keeps reconnecting)",
                                since.format("%Y-%m-%d %H:%M:%S UTC")
                            ),
                            numbers,
                        });
                    }
                }
            }
            (true, Some(since)) => {
                if notified && let Some(n) = &notifier {
                    let mut numbers = Map::new();
                    numbers.insert(
                        "down_secs".into(),
                        json!((now - since).num_seconds().max(0)),
                    );
                    n.dispatch(Event {
                        kind: EventKind::Reconnected,
                        severity: Severity::Warning,
                        time: now,
                        key: format!("reconnected:{}", since.timestamp()),
                        title: "broker reconnected".into(),
                        reason: format!(
                            "the session is back after {} s",
                            (now - since).num_seconds()
                        ),
                        numbers,
                    });
                }
                down_since = None;
                notified = false;
            }
            (true, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn test_backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(30), Duration::from_millis(350));
    }

    #[test]
    fn test_breaker_numbers_are_read_from_the_cause() {
        let m = breaker_numbers(
            "daily loss breaker: net liquidation 100000.00 -> 99980.50 (-0.0195%) <= -0.0100%",
        );
        assert_eq!(m["session_start_net_liq_usd"], json!(100000.0));
        assert_eq!(m["net_liq_usd"], json!(99980.5));
        assert_eq!(m["daily_change_pct"], json!(-0.0195));
        assert_eq!(m["daily_loss_threshold_pct"], json!(-0.01));
        assert_eq!(m["daily_pnl_usd"], json!(-19.5));
        let m = breaker_numbers("API error breaker: 6 errors in the last hour >= 5");
        assert_eq!(m["api_errors_last_hour"], json!(6.0));
        assert_eq!(m["api_errors_threshold"], json!(5.0));
    }
}
