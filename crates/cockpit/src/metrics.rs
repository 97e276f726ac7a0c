//! Prometheus metrics (`/metrics`, OpenMetrics text): what the loop feeds
//! (cycles, their duration, fills, open positions, net liquidation,
//! margin use, API errors), what the cockpit sees (broker reconnects,
//! notification deliveries and failures) and, at each scrape, what the
//! database holds (orders by status, the trading state and the breakers).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use orchestrator::{CycleReport, EngineEvent};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub cycles: Counter,
    pub cycle_duration: Histogram,
    pub fills: Counter,
    pub open_positions: Gauge,
    pub net_liquidation: Gauge<f64, AtomicU64>,
    pub margin_utilization: Gauge<f64, AtomicU64>,
    pub api_errors: Counter,
    pub broker_connected: Gauge,
    pub broker_reconnects: Gauge,
    pub orders: Family<Labels, Gauge>,
    pub trading_state: Family<Labels, Gauge>,
    pub breaker_tripped: Family<Labels, Gauge>,
    pub breaker_headroom: Family<Labels, Gauge<f64, AtomicU64>>,
    pub notifications_sent: Family<Labels, Counter>,
    pub notification_failures: Family<Labels, Counter>,
    pub auth_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("trader");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            cycles: Counter::default(),
            cycle_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            fills: Counter::default(),
            open_positions: Gauge::default(),
            net_liquidation: Gauge::default(),
            margin_utilization: Gauge::default(),
            api_errors: Counter::default(),
            broker_connected: Gauge::default(),
            broker_reconnects: Gauge::default(),
            orders: Family::default(),
            trading_state: Family::default(),
            breaker_tripped: Family::default(),
            breaker_headroom: Family::default(),
            notifications_sent: Family::default(),
            notification_failures: Family::default(),
            auth_failures: Counter::default(),
        };
        r.register(
            "cycles",
            "Engine cycles run by this process",
            m.cycles.clone(),
        );
        r.register(
            "cycle_duration_seconds",
            "Wall-clock duration of one engine cycle",
            m.cycle_duration.clone(),
        );
        r.register("fills", "Fills recorded by this process", m.fills.clone());
        r.register(
            "open_positions",
            "Open trades after the last cycle",
            m.open_positions.clone(),
        );
        r.register(
            "net_liquidation_usd",
            "Net liquidation value at the last cycle, dollars",
            m.net_liquidation.clone(),
        );
        r.register(
            "margin_utilization_ratio",
            "Initial margin over net liquidation at the last cycle",
            m.margin_utilization.clone(),
        );
        r.register(
            "api_errors",
            "Broker and system errors seen by the engine",
            m.api_errors.clone(),
        );
        r.register(
            "broker_connected",
            "1 while the broker session is up",
            m.broker_connected.clone(),
        );
        r.register(
            "broker_reconnects",
            "Broker reconnections seen by this process",
            m.broker_reconnects.clone(),
        );
        r.register(
            "orders",
            "Orders in the database by status",
            m.orders.clone(),
        );
        r.register(
            "trading_state",
            "1 for the current trading state (active, reduce_only, halted)",
            m.trading_state.clone(),
        );
        r.register(
            "breaker_tripped",
            "1 while a circuit breaker is at or beyond its threshold",
            m.breaker_tripped.clone(),
        );
        r.register(
            "breaker_headroom_ratio",
            "Distance of a circuit breaker from tripping (1 far, 0 tripped)",
            m.breaker_headroom.clone(),
        );
        r.register(
            "notifications_sent",
            "Notifications delivered, by channel",
            m.notifications_sent.clone(),
        );
        r.register(
            "notification_failures",
            "Notification delivery attempts that failed, by channel",
            m.notification_failures.clone(),
        );
        r.register(
            "dashboard_auth_failures",
            "Dashboard requests refused for a missing or wrong token",
            m.auth_failures.clone(),
        );
        if let Ok(mut g) = m.registry.lock() {
            *g = r;
        }
        m
    }

    /// A cycle's report and its duration.
    pub fn observe_cycle(&self, report: &CycleReport, took: std::time::Duration) {
        self.cycles.inc();
        self.cycle_duration.observe(took.as_secs_f64());
        self.fills.inc_by(report.fills as u64);
        self.open_positions.set(report.open_trades as i64);
        self.net_liquidation
            .set(report.net_liquidation_cents as f64 / 100.0);
        if let Some(a) = &report.account {
            self.margin_utilization.set(a.margin_utilization());
        }
        let errors = report
            .events
            .iter()
            .filter(|e| matches!(e, EngineEvent::SystemError { .. }))
            .count();
        self.api_errors.inc_by(errors as u64);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        let r = match self.registry.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        encode(&mut out, &r)?;
        Ok(out)
    }
}

/// A label set of one pair.
pub fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}
