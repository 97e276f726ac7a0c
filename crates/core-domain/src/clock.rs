//! Time. Backtest and live differ only in the clock and the broker.

use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// The source of "now". Implementations must be monotonic: `now()` never
/// goes backwards.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Returns once `now() >= until`. A simulated clock jumps there at once.
    fn sleep_until(&self, until: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// A clock that moves only when told to: for backtests and tests.
#[derive(Debug)]
pub struct SimulatedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        SimulatedClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t`; a `t` in the past is ignored (monotonic).
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> impl Future<Output = ()> + Send {
        self.advance_to(until);
        std::future::ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn simulated_clock_is_monotonic() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let c = SimulatedClock::new(t0 + Duration::hours(2));
        c.advance_to(t0);
        assert_eq!(c.now(), t0 + Duration::hours(2));
        c.advance_to(t0 + Duration::hours(3));
        assert_eq!(c.now(), t0 + Duration::hours(3));
    }
}
