//! The loop around the cycle: wait for the next scheduled cycle on the
//! clock, run it, repeat, until a time or a stop request. The same loop
//! runs live (wall clock) and over history (the simulated exchange's
//! clock), optionally paced for an accelerated replay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use core_domain::{Broker, Clock, MarketData, Strategy};
use serde::{Deserialize, Serialize};

use crate::hook::LearningHook;
use crate::{CycleReport, Engine, EngineError};

/// How fast simulated time runs against the wall clock (replays only; a
/// live clock runs at its own pace).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// No waiting between cycles.
    AsFastAsPossible,
    /// This many simulated minutes per wall-clock second.
    SimMinutesPerSecond(f64),
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// The next cycle would be after `until`.
    Reached,
    /// The stop flag was raised (SIGINT/SIGTERM): the cycle in progress
    /// finished first, so nothing is half-written.
    Requested,
}

/// How often the wait for the next cycle looks at the stop flag.
const STOP_POLL: StdDuration = StdDuration::from_millis(200);
/// How often it looks for operator requests (emergency stop, resume)
/// queued in the database.
const REQUEST_POLL: StdDuration = StdDuration::from_secs(1);
/// The pause after a cycle failed on a transient broker error (e.g. the
/// connection is down) before the cycle is tried again.
const RETRY_PAUSE: StdDuration = StdDuration::from_secs(5);

/// What ended the wait for the next cycle.
enum Wake {
    /// The scheduled time came.
    Due,
    /// The stop flag was raised.
    Stop,
    /// An operator request waits in the database: run a cycle now.
    Request,
}

/// Whether a cycle's error is a transient broker condition (not connected,
/// a timeout, pacing) that a later cycle may not meet: the loop retries
/// instead of ending (the daemon must not crash-loop while TWS restarts).
pub fn is_transient(e: &EngineError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<core_domain::BrokerError>() {
            return b.is_transient();
        }
        source = err.source();
    }
    false
}

/// Waits until `next` on `clock`, waking for the stop flag (every
/// [`STOP_POLL`]) and for operator requests (every [`REQUEST_POLL`]) —
/// in every mode: a wall clock may sleep for hours (a night, a weekend).
/// The clock's own wait is abandoned only when the flag or a request
/// comes, after at least [`STOP_POLL`] (a lockstep clock's advance answers
/// well within it).
async fn wait_for<C, B, S, L>(
    engine: &Engine<B, S, L>,
    clock: &C,
    next: DateTime<Utc>,
    stop: &AtomicBool,
) -> Wake
where
    C: Clock,
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    let watch = async {
        let mut since_requests = StdDuration::ZERO;
        loop {
            tokio::time::sleep(STOP_POLL).await;
            if stop.load(Ordering::SeqCst) {
                return Wake::Stop;
            }
            since_requests += STOP_POLL;
            if since_requests >= REQUEST_POLL {
                since_requests = StdDuration::ZERO;
                match engine.store().pending_control_requests() {
                    Ok(r) if !r.is_empty() => return Wake::Request,
                    Ok(_) => {}
                    Err(e) => tracing::warn!("reading operator requests: {e}"),
                }
            }
        }
    };
    tokio::select! {
        _ = clock.sleep_until(next) => Wake::Due,
        w = watch => w,
    }
}

/// Watches the loop from outside the engine (the dashboard's health,
/// metrics, the systemd watchdog): when the next cycle is due and how
/// long it will be waited for, and each cycle's report with its duration.
/// Called on the loop's task: implementations must return at once.
pub trait CycleObserver {
    /// The loop waits for the cycle at `next` (engine time); on the wall
    /// clock that is about `wall_wait` away.
    fn waiting(&mut self, _next: DateTime<Utc>, _wall_wait: StdDuration) {}
    /// A cycle ran and took `took` (wall clock).
    fn cycle_done(&mut self, _report: &CycleReport, _took: StdDuration) {}
}

/// An observer that only sees reports (progress lines).
struct ReportsOnly<F>(F);

impl<F: FnMut(&CycleReport)> CycleObserver for ReportsOnly<F> {
    fn cycle_done(&mut self, report: &CycleReport, _took: StdDuration) {
        (self.0)(report)
    }
}

/// Runs cycles on `clock` until `until` or until `stop` is raised;
/// `on_cycle` sees each cycle's report (progress bars, logs). The wait
/// between cycles wakes within a second for the stop flag and operator
/// requests (a request runs a cycle at once). A cycle that fails on a
/// transient broker error (see [`is_transient`]) is logged and tried again
/// after a pause; its pending operator requests stay queued and are
/// handled once the broker answers.
pub async fn run<C, B, S, L>(
    engine: &mut Engine<B, S, L>,
    clock: &C,
    until: DateTime<Utc>,
    pace: Pace,
    stop: &AtomicBool,
    on_cycle: impl FnMut(&CycleReport),
) -> Result<Stopped, EngineError>
where
    C: Clock,
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    run_observed(engine, clock, until, pace, stop, &mut ReportsOnly(on_cycle)).await
}

/// [`run`] with an observer that also sees the waits and each cycle's
/// duration.
pub async fn run_observed<C, B, S, L>(
    engine: &mut Engine<B, S, L>,
    clock: &C,
    until: DateTime<Utc>,
    pace: Pace,
    stop: &AtomicBool,
    observer: &mut dyn CycleObserver,
) -> Result<Stopped, EngineError>
where
    C: Clock,
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    engine.start(clock.now()).await?;
    loop {
        if stop.load(Ordering::SeqCst) {
            engine.save_memory()?;
            return Ok(Stopped::Requested);
        }
        let now = clock.now();
        let next = engine.schedule().next_cycle(now);
        if next > until {
            engine.save_memory()?;
            return Ok(Stopped::Reached);
        }
        let ahead = StdDuration::from_secs(u64::try_from((next - now).num_seconds()).unwrap_or(0));
        let wall_wait = match pace {
            Pace::SimMinutesPerSecond(rate) if rate.is_finite() && rate > 0.0 => {
                StdDuration::from_secs_f64((ahead.as_secs_f64() / 60.0 / rate).min(3600.0))
            }
            _ => ahead,
        };
        observer.waiting(next, wall_wait);
        if let Pace::SimMinutesPerSecond(rate) = pace
            && rate.is_finite()
            && rate > 0.0
        {
            let wait = wall_wait;
            let started = Instant::now();
            // Sleep in slices so a stop request is seen promptly.
            while started.elapsed() < wait {
                if stop.load(Ordering::SeqCst) {
                    engine.save_memory()?;
                    return Ok(Stopped::Requested);
                }
                tokio::time::sleep(StdDuration::from_millis(50).min(wait)).await;
            }
        }
        let at = match wait_for(engine, clock, next, stop).await {
            Wake::Due => next,
            Wake::Stop => {
                engine.save_memory()?;
                return Ok(Stopped::Requested);
            }
            Wake::Request => clock.now(),
        };
        let started = Instant::now();
        match engine.cycle(at).await {
            Ok(report) => observer.cycle_done(&report, started.elapsed()),
            Err(e) if is_transient(&e) => {
                tracing::error!(
                    "the cycle at {at} failed on a transient broker error: {e}; retrying in {}s",
                    RETRY_PAUSE.as_secs()
                );
                let started = Instant::now();
                while started.elapsed() < RETRY_PAUSE {
                    if stop.load(Ordering::SeqCst) {
                        engine.save_memory()?;
                        return Ok(Stopped::Requested);
                    }
                    tokio::time::sleep(STOP_POLL).await;
                }
            }
            Err(e) => return Err(e),
        }
        // A simulated broker answers at once; yield so that other tasks
        // (the signal handler, a control API) run between cycles.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_broker_errors_are_retried_others_end_the_run() {
        let down = EngineError::Broker(core_domain::BrokerError::NotConnected("x".into()));
        assert!(is_transient(&down));
        let nested = EngineError::Execution(execution::ExecutionError::Broker {
            what: "account summary".into(),
            source: core_domain::BrokerError::Timeout("x".into()),
        });
        assert!(is_transient(&nested));
        let rejected = EngineError::Broker(core_domain::BrokerError::Rejected {
            order_ref: "o".into(),
            reason: "no".into(),
        });
        assert!(!is_transient(&rejected));
        assert!(!is_transient(&EngineError::Config("bad".into())));
    }
}
