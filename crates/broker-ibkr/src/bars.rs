//! Daily bars from IBKR historical data, and IBKR's timestamps.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use core_domain::{DailyBar, Symbol};

use crate::contracts::{price, quantity};

/// One bar as IBKR sends it, reduced to plain values (the day is the
/// session date IBKR reports for a daily bar).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawBar {
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Converts IBKR's daily bars: drops bars after `end` and after `today`
/// (never a bar from the future, whatever the server sends), drops bars
/// without a usable close, sorts oldest first, removes duplicate days
/// (the last one wins: a partial bar for today is replaced by a later
/// one) and keeps the last `count`. Open, high and low fall back to the
/// close when IBKR leaves them unset.
pub fn convert_bars(
    symbol: &Symbol,
    raw: &[RawBar],
    end: NaiveDate,
    today: NaiveDate,
    count: usize,
) -> Vec<DailyBar> {
    let last_day = end.min(today);
    let mut by_day = std::collections::BTreeMap::new();
    for b in raw {
        if b.date > last_day {
            continue;
        }
        let Some(close) = price(b.close).filter(|p| p.is_positive()) else {
            continue;
        };
        let or_close = |v: f64| price(v).filter(|p| p.is_positive()).unwrap_or(close);
        by_day.insert(
            b.date,
            DailyBar {
                symbol: symbol.clone(),
                date: b.date,
                open: or_close(b.open),
                high: or_close(b.high).max(close),
                low: or_close(b.low).min(close),
                close,
                volume: quantity(b.volume).filter(|v| *v >= 0),
            },
        );
    }
    let bars: Vec<DailyBar> = by_day.into_values().collect();
    let skip = bars.len().saturating_sub(count);
    bars.into_iter().skip(skip).collect()
}

/// The IBKR duration that covers `count` sessions ending at `end`, as
/// (value, unit): days up to a year, then whole years (a year has about
/// 252 sessions, so calendar days ≈ sessions × 7/5 plus holidays).
pub fn duration_for(count: usize) -> (i32, char) {
    let calendar_days = count.saturating_mul(7) / 5 + 10;
    if calendar_days <= 365 {
        (i32::try_from(calendar_days).unwrap_or(365), 'D')
    } else {
        let years = calendar_days.div_ceil(365);
        (i32::try_from(years).unwrap_or(30), 'Y')
    }
}

/// Parses the times TWS puts on executions and other messages:
/// `20240119 15:30:00 US/Eastern` (zone named), `20240119-15:30:00` (UTC),
/// `20240119 15:30:00` or with two spaces (the gateway's zone,
/// `fallback_zone`), or seconds since the epoch.
pub fn parse_ib_time(text: &str, fallback_zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().all(|c| c.is_ascii_digit()) && text.len() >= 9 {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single());
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y%m%d-%H:%M:%S") {
        return Some(Utc.from_utc_datetime(&naive));
    }
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let clock = parts.next()?;
    let zone = parts.next();
    let naive =
        NaiveDateTime::parse_from_str(&format!("{date} {clock}"), "%Y%m%d %H:%M:%S").ok()?;
    let tz: Tz = match zone {
        Some(name) => name.parse().ok().or_else(|| alias_zone(name))?,
        None => fallback_zone,
    };
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn alias_zone(name: &str) -> Option<Tz> {
    match name {
        "EST" | "EDT" | "EST5EDT" => Some(chrono_tz::America::New_York),
        "CST" | "CDT" => Some(chrono_tz::America::Chicago),
        "GMT" | "UTC" => Some(chrono_tz::UTC),
        _ => None,
    }
}

/// An IBKR execution-filter time (`yyyymmdd-hh:mm:ss`, UTC).
pub fn filter_time(since: DateTime<Utc>) -> String {
    since.format("%Y%m%d-%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    fn raw(date: NaiveDate, close: f64) -> RawBar {
        RawBar {
            date,
            open: close - 1.0,
            high: close + 1.0,
            low: close - 2.0,
            close,
            volume: 1000.0,
        }
    }

    #[test]
    fn bars_are_sorted_trimmed_and_never_from_the_future() -> Result<(), core_domain::DomainError> {
        let sym = Symbol::new("SPY")?;
        let input = vec![
            raw(d(2024, 1, 5), 105.0),
            raw(d(2024, 1, 2), 102.0),
            raw(d(2024, 1, 3), 103.0),
            raw(d(2024, 1, 4), 104.0),
            raw(d(2024, 1, 8), 108.0), // after today
        ];
        let bars = convert_bars(&sym, &input, d(2024, 1, 31), d(2024, 1, 5), 3);
        let dates: Vec<_> = bars.iter().map(|b| b.date).collect();
        assert_eq!(dates, vec![d(2024, 1, 3), d(2024, 1, 4), d(2024, 1, 5)]);
        assert_eq!(bars[0].close, core_domain::Price::from_cents(10_300));
        assert_eq!(bars[0].open, core_domain::Price::from_cents(10_200));
        assert_eq!(bars[0].volume, Some(1000));
        // bars after `end` are dropped too
        let bars = convert_bars(&sym, &input, d(2024, 1, 3), d(2024, 1, 31), 10);
        assert_eq!(bars.last().map(|b| b.date), Some(d(2024, 1, 3)));
        Ok(())
    }

    #[test]
    fn unset_fields_fall_back_to_the_close_and_bad_bars_are_dropped()
    -> Result<(), core_domain::DomainError> {
        let sym = Symbol::new("SPY")?;
        let input = vec![
            RawBar {
                date: d(2024, 1, 2),
                open: -1.0,
                high: f64::MAX,
                low: 0.0,
                close: 10.0,
                volume: -1.0,
            },
            RawBar {
                date: d(2024, 1, 3),
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: f64::NAN,
                volume: 0.0,
            },
        ];
        let bars = convert_bars(&sym, &input, d(2024, 1, 3), d(2024, 1, 3), 10);
        assert_eq!(bars.len(), 1);
        let ten = core_domain::Price::from_cents(1000);
        assert_eq!((bars[0].open, bars[0].high, bars[0].low), (ten, ten, ten));
        assert_eq!(bars[0].volume, None);
        Ok(())
    }

    #[test]
    fn duplicate_days_keep_the_last() -> Result<(), core_domain::DomainError> {
        let sym = Symbol::new("SPY")?;
        let input = vec![raw(d(2024, 1, 2), 10.0), raw(d(2024, 1, 2), 11.0)];
        let bars = convert_bars(&sym, &input, d(2024, 1, 2), d(2024, 1, 2), 10);
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].close, core_domain::Price::from_cents(1100));
        Ok(())
    }

    #[test]
    fn durations_cover_the_sessions() {
        assert_eq!(duration_for(60), (94, 'D'));
        assert_eq!(duration_for(250), (360, 'D'));
        assert_eq!(duration_for(500), (2, 'Y'));
    }

    #[test]
    fn ib_times() {
        let ny = chrono_tz::America::New_York;
        let expect = Utc.with_ymd_and_hms(2024, 1, 19, 20, 30, 0).single();
        assert_eq!(
            parse_ib_time("20240119 15:30:00 US/Eastern", chrono_tz::UTC),
            expect
        );
        assert_eq!(
            parse_ib_time("20240119 15:30:00 America/New_York", chrono_tz::UTC),
            expect
        );
        assert_eq!(parse_ib_time("20240119  15:30:00", ny), expect);
        assert_eq!(parse_ib_time("20240119-20:30:00", ny), expect);
        assert_eq!(parse_ib_time("1705696200", ny), expect);
        assert_eq!(
            parse_ib_time("20240119 15:30:00 EST", chrono_tz::UTC),
            expect
        );
        assert_eq!(parse_ib_time("garbage", ny), None);
        assert_eq!(parse_ib_time("", ny), None);
    }

    #[test]
    fn filter_times_are_utc() {
        let t = Utc.with_ymd_and_hms(2024, 1, 19, 20, 30, 5).single();
        assert_eq!(t.map(filter_time).as_deref(), Some("20240119-20:30:05"));
    }
}
