//! When the engine runs: 15-minute cycles in market hours, hourly outside,
//! trading only inside NYSE sessions (09:30–16:00 New York, early closes
//! and holidays from [`NyseCalendar`]), no new entries in the session's
//! last minutes.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use market_sim::calendar::NyseCalendar;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The schedule's parameters (from `[schedule]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleParams {
    pub cycle_minutes_market: i64,
    pub cycle_minutes_off_hours: i64,
    pub no_entries_last_minutes: i64,
}

impl Default for ScheduleParams {
    fn default() -> Self {
        ScheduleParams {
            cycle_minutes_market: 15,
            cycle_minutes_off_hours: 60,
            no_entries_last_minutes: 15,
        }
    }
}

/// Where a moment falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Inside a session, entries allowed.
    Open,
    /// Inside a session's last `no_entries_last_minutes`: exits only.
    Closing,
    /// Outside a session (nights, weekends, holidays, the close itself).
    Closed,
}

/// The engine's schedule over the NYSE calendar.
#[derive(Debug, Clone)]
pub struct Schedule {
    calendar: NyseCalendar,
    params: ScheduleParams,
}

impl Schedule {
    /// Refuses cycle lengths that are not positive, or a no-entry window
    /// that is negative.
    pub fn new(params: ScheduleParams) -> Result<Self, EngineError> {
        if params.cycle_minutes_market <= 0 || params.cycle_minutes_off_hours <= 0 {
            return Err(EngineError::Config(format!(
                "schedule: cycle lengths must be positive minutes (market {}, off hours {}); set schedule.cycle_minutes_market and schedule.cycle_minutes_off_hours",
                params.cycle_minutes_market, params.cycle_minutes_off_hours
            )));
        }
        if params.no_entries_last_minutes < 0 {
            return Err(EngineError::Config(format!(
                "schedule.no_entries_last_minutes must be >= 0, got {}",
                params.no_entries_last_minutes
            )));
        }
        Ok(Schedule {
            calendar: NyseCalendar::new(),
            params,
        })
    }

    pub fn calendar(&self) -> &NyseCalendar {
        &self.calendar
    }

    pub fn params(&self) -> &ScheduleParams {
        &self.params
    }

    /// The session `t` is in (open ≤ t < close), if any.
    pub fn session_of(
        &self,
        t: DateTime<Utc>,
    ) -> Option<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
        let date = execution::trade_log::exchange_date(t);
        let open = self.calendar.session_open(date)?;
        let close = self.calendar.session_close(date)?;
        (open <= t && t < close).then_some((date, open, close))
    }

    pub fn phase(&self, t: DateTime<Utc>) -> Phase {
        match self.session_of(t) {
            Some((_, _, close)) => {
                if t < close - Duration::minutes(self.params.no_entries_last_minutes) {
                    Phase::Open
                } else {
                    Phase::Closing
                }
            }
            None => Phase::Closed,
        }
    }

    /// The next cycle strictly after `t`: on the session's grid (the open
    /// plus whole cycles) in market hours, with the close itself as the
    /// session's last cycle; outside, `t` plus the off-hours cycle or the
    /// next open, whichever is first.
    pub fn next_cycle(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let step = Duration::minutes(self.params.cycle_minutes_market);
        let date = execution::trade_log::exchange_date(t);
        if let (Some(open), Some(close)) = (
            self.calendar.session_open(date),
            self.calendar.session_close(date),
        ) {
            if t < open {
                return open.min(t + Duration::minutes(self.params.cycle_minutes_off_hours));
            }
            if t < close {
                let done = (t - open).num_seconds() / step.num_seconds();
                let next = open + step * i32::try_from(done + 1).unwrap_or(i32::MAX);
                return next.min(close);
            }
        }
        let next_open = self
            .calendar
            .next_session(date)
            .and_then(|d| self.calendar.session_open(d));
        let off = t + Duration::minutes(self.params.cycle_minutes_off_hours);
        match next_open {
            Some(o) if o < off => o,
            _ => off,
        }
    }
}

/// The executor's market-hours pre-flight check: orders only inside a
/// session (the close itself is outside).
impl execution::TradingHours for Schedule {
    fn is_open(&self, time: DateTime<Utc>) -> bool {
        self.session_of(time).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn market_hours_cycle_every_15_minutes_up_to_the_close() {
        let s = Schedule::new(ScheduleParams::default()).unwrap();
        // 2024-01-09 is a Tuesday; 09:30 New York = 14:30 UTC.
        let open = utc(2024, 1, 9, 14, 30);
        assert_eq!(s.next_cycle(open), utc(2024, 1, 9, 14, 45));
        assert_eq!(
            s.next_cycle(utc(2024, 1, 9, 14, 37)),
            utc(2024, 1, 9, 14, 45)
        );
        // The last cycle is the close (16:00 = 21:00 UTC).
        assert_eq!(
            s.next_cycle(utc(2024, 1, 9, 20, 50)),
            utc(2024, 1, 9, 21, 0)
        );
        assert_eq!(s.phase(utc(2024, 1, 9, 20, 44)), Phase::Open);
        assert_eq!(s.phase(utc(2024, 1, 9, 20, 45)), Phase::Closing);
        assert_eq!(s.phase(utc(2024, 1, 9, 21, 0)), Phase::Closed);
    }

    #[test]
    fn off_hours_cycle_hourly_and_land_on_the_next_open() {
        let s = Schedule::new(ScheduleParams::default()).unwrap();
        assert_eq!(s.next_cycle(utc(2024, 1, 9, 21, 0)), utc(2024, 1, 9, 22, 0));
        // Friday 2024-01-12 evening → hourly through the weekend, and the
        // Monday 2024-01-15 is MLK day: the next open is Tuesday's.
        let mut t = utc(2024, 1, 12, 21, 0);
        let mut n = 0;
        while s.phase(t) == Phase::Closed {
            t = s.next_cycle(t);
            n += 1;
        }
        assert_eq!(t, utc(2024, 1, 16, 14, 30));
        assert!(n > 80 && n < 100, "{n} off-hours cycles");
    }

    #[test]
    fn bad_params_are_refused() {
        let p = ScheduleParams {
            cycle_minutes_market: 0,
            ..ScheduleParams::default()
        };
        assert!(Schedule::new(p).is_err());
    }
}
