//! The systemd notify protocol (`Type=notify`): READY=1 when the loop
//! first waits for a cycle, STOPPING=1 when it ends, and WATCHDOG=1 every
//! half `WatchdogSec` while the loop keeps its schedule — a loop that
//! hangs stops feeding the watchdog and systemd restarts the service.
//! Without `NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::health::Health;

/// READY=1.
pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::debug!("sd_notify READY: {e}");
    }
}

/// STOPPING=1.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// Feeds systemd's watchdog while the loop is on time (when the service
/// has `WatchdogSec`).
pub fn spawn_watchdog(health: Arc<Health>) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let (fresh, why) = health.loop_fresh();
            if fresh {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            } else {
                tracing::warn!("not feeding the systemd watchdog: {why}");
            }
        }
    });
}
