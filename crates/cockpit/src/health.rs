//! Liveness and readiness: the loop's freshness (fed by the cycle
//! observer), the broker's connection and the database's writability.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Whether the broker's session is up (the IBKR adapter's
/// `is_connected`; an in-process exchange is always up).
pub type BrokerLink = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// The least a wait counts as when the readiness deadline is set: a fast
/// replay waits milliseconds between cycles, a slow disk or a busy machine
/// must not make it unready.
pub const MIN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct LoopState {
    /// The next cycle must have finished by then.
    deadline: Option<Instant>,
    /// Wall clock and engine time of the last finished cycle.
    last_cycle_wall: Option<DateTime<Utc>>,
    last_cycle_time: Option<DateTime<Utc>>,
    /// The interval the loop announced before the last cycle.
    interval: Option<Duration>,
    next_cycle: Option<DateTime<Utc>>,
}

/// What the loop and the broker look like from outside.
pub struct Health {
    started: DateTime<Utc>,
    state: Mutex<LoopState>,
    broker: BrokerLink,
    broker_up: AtomicBool,
    reconnects: AtomicU64,
    /// The loop has ended (a replay reached its end, or a stop request).
    finished: AtomicBool,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// `/readyz`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

impl Health {
    pub fn new(broker: BrokerLink) -> Self {
        let up = broker();
        Health {
            started: Utc::now(),
            state: Mutex::new(LoopState::default()),
            broker,
            broker_up: AtomicBool::new(up),
            reconnects: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoopState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The loop waits `wall_wait` for the cycle at `next`: that cycle must
    /// be done within twice the wait (at least [`MIN_WAIT`]).
    pub fn waiting(&self, next: DateTime<Utc>, wall_wait: Duration) {
        let mut s = self.lock();
        let wait = wall_wait.max(MIN_WAIT);
        s.deadline = Some(Instant::now() + wait * 2);
        s.interval = Some(wall_wait);
        s.next_cycle = Some(next);
    }

    /// A cycle finished.
    pub fn cycle_done(&self, time: Option<DateTime<Utc>>) {
        let mut s = self.lock();
        s.last_cycle_wall = Some(Utc::now());
        s.last_cycle_time = time;
    }

    /// The loop ended; the process is about to stop.
    pub fn finished(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// Whether the loop keeps its schedule: the cycle it waits for (or
    /// runs) is not overdue.
    pub fn loop_fresh(&self) -> (bool, String) {
        if self.finished.load(Ordering::SeqCst) {
            return (false, "the engine loop has ended".into());
        }
        let s = self.lock();
        match s.deadline {
            None => (false, "the engine loop has not started yet".into()),
            Some(d) if Instant::now() <= d => (
                true,
                format!(
                    "last cycle {} (engine time {}), next due {}",
                    fmt_opt(s.last_cycle_wall),
                    fmt_opt(s.last_cycle_time),
                    fmt_opt(s.next_cycle)
                ),
            ),
            Some(_) => (
                false,
                format!(
                    "the cycle due at {} is overdue: the last finished at {} and the interval is {:.1} s",
                    fmt_opt(s.next_cycle),
                    fmt_opt(s.last_cycle_wall),
                    s.interval.unwrap_or_default().as_secs_f64()
                ),
            ),
        }
    }

    /// Polls the broker link; counts a reconnect on each down → up.
    /// Returns whether it is up now.
    pub fn poll_broker(&self) -> bool {
        let up = (self.broker)();
        let was = self.broker_up.swap(up, Ordering::SeqCst);
        if up && !was {
            self.reconnects.fetch_add(1, Ordering::SeqCst);
        }
        up
    }

    /// The broker's state as last polled.
    pub fn broker_connected(&self) -> bool {
        self.broker_up.load(Ordering::SeqCst)
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::SeqCst)
    }

    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    pub fn last_cycle_wall(&self) -> Option<DateTime<Utc>> {
        self.lock().last_cycle_wall
    }

    /// `/readyz`: broker connected, database writable, loop on time.
    pub fn readiness(&self, store: &store::Store) -> Readiness {
        let broker = self.poll_broker();
        let db = store.probe_writable();
        let (fresh, loop_detail) = self.loop_fresh();
        let checks = vec![
            Check {
                name: "broker",
                ok: broker,
                detail: if broker {
                    "connected".into()
                } else {
                    "disconnected (the adapter reconnects by itself)".into()
                },
            },
            Check {
                name: "database",
                ok: db.is_ok(),
                detail: match db {
                    Ok(()) => "writable".into(),
                    Err(e) => format!("not writable: {e}"),
                },
            },
            Check {
                name: "engine_loop",
                ok: fresh,
                detail: loop_detail,
            },
        ];
        Readiness {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

fn fmt_opt(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[test]
    fn test_loop_is_not_fresh_before_it_waits_and_fresh_after() {
        let h = Health::new(Arc::new(|| true));
        assert!(!h.loop_fresh().0);
        h.waiting(Utc::now(), Duration::from_secs(60));
        assert!(h.loop_fresh().0);
        h.finished();
        assert!(!h.loop_fresh().0);
    }

    #[test]
    fn test_reconnects_are_counted_on_down_to_up() {
        let up = Arc::new(AtomicBool::new(true));
        let link = Arc::clone(&up);
        let h = Health::new(Arc::new(move || link.load(Ordering::SeqCst)));
        assert!(h.poll_broker());
        up.store(false, Ordering::SeqCst);
        assert!(!h.poll_broker());
        up.store(true, Ordering::SeqCst);
        assert!(h.poll_broker());
        assert_eq!(h.reconnects(), 1);
    }
}
