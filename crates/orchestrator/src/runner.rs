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
/// `on_cycle` sees each cycle's report (progress bars, logs).
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
        clock.sleep_until(next).await;
        let started = Instant::now();
        let report = engine.cycle(next).await?;
        observer.cycle_done(&report, started.elapsed());
        // A simulated broker answers at once; yield so that other tasks
        // (the signal handler, a control API) run between cycles.
        tokio::task::yield_now().await;
    }
}
