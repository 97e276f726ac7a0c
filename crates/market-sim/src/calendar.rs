//! The New York Stock Exchange trading calendar, in America/New_York.
//!
//! Rules-based: the regular holidays with their weekend observance rules,
//! the special closures and the scheduled early closes as NYSE published
//! them. Verified day by day for 1990-01-01 … 2030-12-31
//! ([`VERIFIED_FIRST`] … [`VERIFIED_LAST`]) against a reference generated
//! from `exchange_calendars` and cross-checked with
//! `pandas_market_calendars` (`tools/calendar/make_nyse_reference.py`,
//! `tests/reference/nyse_1990_2030.json`).
//!
//! Outside that range every function still answers, from the same rules:
//! - after 2030 the rules are extrapolated; closures NYSE has not announced
//!   (days of mourning, storms) are unknown, as they are to anyone;
//! - before 1990 the answers are **not** historical: the pre-1971 holiday
//!   rules, holidays NYSE no longer observes and earlier special closures
//!   (e.g. 1985-09-27, Hurricane Gloria) are not modelled.
//!
//! Holidays (closed weekdays):
//! - New Year's Day, January 1; on a Sunday the Monday after; on a Saturday
//!   no weekday is closed (NYSE Rule 7.2: the Friday before ends an
//!   accounting period);
//! - Martin Luther King Jr. Day, third Monday of January, from 1998;
//! - Washington's Birthday (Presidents' Day), third Monday of February;
//! - Good Friday, two days before Western (Gregorian) Easter;
//! - Memorial Day, last Monday of May;
//! - Juneteenth, June 19, from 2022;
//! - Independence Day, July 4;
//! - Labor Day, first Monday of September;
//! - Thanksgiving Day, fourth Thursday of November;
//! - Christmas Day, December 25;
//!
//! where June 19, July 4 and December 25 on a Saturday close the Friday
//! before and on a Sunday the Monday after. Special closures:
//! [`SPECIAL_CLOSURES`].
//!
//! Scheduled early closes (the session ends at 13:00, at 14:00 before 1993):
//! - Christmas Eve when it is a session;
//! - the day after Thanksgiving, from 1992;
//! - July 3 on a Monday, Tuesday or Thursday from 1995, and on a Wednesday
//!   from 2013; July 5 when it is a Friday, 1995–2012 (then the Wednesday
//!   before took its place);
//! - once only: 1997-12-26, 1999-12-31 (Y2K), 2003-12-26.
//!
//! Unscheduled interruptions (late opens after snow or system problems,
//! circuit-breaker halts such as 1997-10-27) are not modelled: every
//! session opens at 09:30.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;

/// First day of the range checked against the published lists.
pub const VERIFIED_FIRST: NaiveDate = date(1990, 1, 1);
/// Last day of the range checked against the published lists.
pub const VERIFIED_LAST: NaiveDate = date(2030, 12, 31);

/// The regular session opens at 09:30 New York time.
pub const OPEN_TIME: NaiveTime = time(9, 30);
/// The regular session closes at 16:00 New York time.
pub const CLOSE_TIME: NaiveTime = time(16, 0);
/// Scheduled early close from 1993 on.
pub const EARLY_CLOSE_TIME: NaiveTime = time(13, 0);
/// Scheduled early close before 1993.
pub const EARLY_CLOSE_TIME_BEFORE_1993: NaiveTime = time(14, 0);

/// Weekdays on which NYSE closed for other reasons than a regular holiday,
/// 1990 onward.
pub const SPECIAL_CLOSURES: &[(NaiveDate, &str)] = &[
    (
        date(1994, 4, 27),
        "National Day of Mourning for President Richard Nixon",
    ),
    (date(2001, 9, 11), "September 11 attacks"),
    (date(2001, 9, 12), "September 11 attacks"),
    (date(2001, 9, 13), "September 11 attacks"),
    (date(2001, 9, 14), "September 11 attacks"),
    (
        date(2004, 6, 11),
        "National Day of Mourning for President Ronald Reagan",
    ),
    (
        date(2007, 1, 2),
        "National Day of Mourning for President Gerald Ford",
    ),
    (date(2012, 10, 29), "Hurricane Sandy"),
    (date(2012, 10, 30), "Hurricane Sandy"),
    (
        date(2018, 12, 5),
        "National Day of Mourning for President George H. W. Bush",
    ),
    (
        date(2025, 1, 9),
        "National Day of Mourning for President Jimmy Carter",
    ),
];

/// Early closes at 13:00 that no recurring rule explains.
const ADHOC_EARLY_CLOSES: &[NaiveDate] =
    &[date(1997, 12, 26), date(1999, 12, 31), date(2003, 12, 26)];

const NEW_YEARS_DAY: &str = "New Year's Day";
const MLK_DAY: &str = "Martin Luther King Jr. Day";
const WASHINGTONS_BIRTHDAY: &str = "Washington's Birthday";
const GOOD_FRIDAY: &str = "Good Friday";
const MEMORIAL_DAY: &str = "Memorial Day";
const JUNETEENTH: &str = "Juneteenth National Independence Day";
const INDEPENDENCE_DAY: &str = "Independence Day";
const LABOR_DAY: &str = "Labor Day";
const THANKSGIVING: &str = "Thanksgiving Day";
const CHRISTMAS: &str = "Christmas Day";

/// The NYSE calendar. Stateless and free to copy; every method is a pure
/// function of its arguments (see the module docs for the rules and the
/// verified range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NyseCalendar;

impl NyseCalendar {
    pub const fn new() -> Self {
        NyseCalendar
    }

    /// Whether NYSE holds a regular trading session on `date` (a weekday
    /// that is neither a holiday nor a special closure).
    pub fn is_session(&self, date: NaiveDate) -> bool {
        !is_weekend(date) && closure(date).is_none()
    }

    /// The reason NYSE is closed on the weekday `date`, e.g. `"Good Friday"`
    /// or `"Hurricane Sandy"`; None on sessions and on weekends (also when
    /// a holiday itself falls on a weekend: the observed weekday carries
    /// the name).
    pub fn holiday_name(&self, date: NaiveDate) -> Option<&'static str> {
        if is_weekend(date) {
            None
        } else {
            closure(date)
        }
    }

    /// The New York closing time of a scheduled early close on `date`
    /// (13:00, or 14:00 before 1993); None on full sessions and on days
    /// without a session.
    pub fn early_close(&self, date: NaiveDate) -> Option<NaiveTime> {
        if !self.is_session(date) {
            return None;
        }
        let year = date.year();
        let half_day = if year < 1993 {
            EARLY_CLOSE_TIME_BEFORE_1993
        } else {
            EARLY_CLOSE_TIME
        };
        if ADHOC_EARLY_CLOSES.contains(&date) {
            return Some(EARLY_CLOSE_TIME);
        }
        let (month, day, weekday) = (date.month(), date.day(), date.weekday());
        let early = match (month, day) {
            // A Friday Dec 24 is the observed Christmas, so any session
            // on Dec 24 is a Monday to Thursday.
            (12, 24) => true,
            (11, _) => {
                year >= 1992
                    && date
                        .pred_opt()
                        .is_some_and(|d| Some(d) == thanksgiving(year))
            }
            (7, 3) => match weekday {
                Weekday::Mon | Weekday::Tue | Weekday::Thu => year >= 1995,
                Weekday::Wed => year >= 2013,
                _ => false,
            },
            (7, 5) => weekday == Weekday::Fri && (1995..=2012).contains(&year),
            _ => false,
        };
        early.then_some(half_day)
    }

    /// The New York closing time of the session on `date` (16:00 or the
    /// early close); None when there is no session.
    pub fn close_time(&self, date: NaiveDate) -> Option<NaiveTime> {
        if !self.is_session(date) {
            return None;
        }
        Some(self.early_close(date).unwrap_or(CLOSE_TIME))
    }

    /// The instant the session on `date` opens (09:30 New York); None when
    /// there is no session.
    pub fn session_open(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        if !self.is_session(date) {
            return None;
        }
        new_york_to_utc(date, OPEN_TIME)
    }

    /// The instant the session on `date` closes (16:00 New York, or the
    /// early close); None when there is no session.
    pub fn session_close(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        new_york_to_utc(date, self.close_time(date)?)
    }

    /// The first session strictly after `date`; None only at the end of
    /// chrono's date range.
    pub fn next_session(&self, date: NaiveDate) -> Option<NaiveDate> {
        self.session_on_or_after(date.succ_opt()?)
    }

    /// The last session strictly before `date`; None only at the start of
    /// chrono's date range.
    pub fn previous_session(&self, date: NaiveDate) -> Option<NaiveDate> {
        self.session_on_or_before(date.pred_opt()?)
    }

    /// `date` if it is a session, else the next one.
    pub fn session_on_or_after(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut d = date;
        while !self.is_session(d) {
            d = d.succ_opt()?;
        }
        Some(d)
    }

    /// `date` if it is a session, else the previous one.
    pub fn session_on_or_before(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut d = date;
        while !self.is_session(d) {
            d = d.pred_opt()?;
        }
        Some(d)
    }

    /// The sessions from `from` to `to`, both inclusive, ascending; empty
    /// when `from > to`.
    pub fn sessions(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| self.is_session(*d))
            .collect()
    }

    /// The last trading day of the standard monthly options of `year` and
    /// `month`: the third Friday, or the session before it when that Friday
    /// is a holiday (e.g. Good Friday 2022-04-15 → Thursday 2022-04-14).
    /// (Before 2015 the contracts formally expired on the Saturday after;
    /// trading still ended on this day.)
    ///
    /// `month` counts from January of `year` = 1 and rolls over, so callers
    /// can step months without carrying the year: 13 is January of
    /// `year + 1`, 0 is December of `year - 1`. Years beyond chrono's range
    /// (about ±262,000) saturate to `NaiveDate::MIN` / `NaiveDate::MAX`.
    pub fn monthly_expiration(&self, year: i32, month: u32) -> NaiveDate {
        let months = i64::from(year) * 12 + i64::from(month) - 1;
        let third_friday = i32::try_from(months.div_euclid(12)).ok().and_then(|y| {
            let m = u32::try_from(months.rem_euclid(12) + 1).ok()?;
            NaiveDate::from_weekday_of_month_opt(y, m, Weekday::Fri, 3)
        });
        match third_friday {
            Some(friday) => self.weekly_expiration(friday),
            None if year < 0 => NaiveDate::MIN,
            None => NaiveDate::MAX,
        }
    }

    /// The last trading day of options nominally expiring on `friday`:
    /// `friday` itself when it is a session, else the session before it
    /// (the Thursday, unless that is closed too). Any other weekday is
    /// treated the same way. Returns `friday` unchanged only at chrono's
    /// first representable date.
    pub fn weekly_expiration(&self, friday: NaiveDate) -> NaiveDate {
        self.session_on_or_before(friday).unwrap_or(friday)
    }

    /// Whether `date` lies in the range verified against the published
    /// lists ([`VERIFIED_FIRST`] … [`VERIFIED_LAST`]).
    pub fn is_verified(&self, date: NaiveDate) -> bool {
        (VERIFIED_FIRST..=VERIFIED_LAST).contains(&date)
    }
}

/// Western Easter Sunday of `year` (Gregorian; the anonymous
/// Meeus/Jones/Butcher algorithm). None only outside chrono's range.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Why the weekday `date` is closed, if it is.
fn closure(date: NaiveDate) -> Option<&'static str> {
    if let Some((_, name)) = SPECIAL_CLOSURES.iter().find(|(d, _)| *d == date) {
        return Some(name);
    }
    let year = date.year();
    let nth = |month, weekday, n| NaiveDate::from_weekday_of_month_opt(year, month, weekday, n);
    let is = |candidate: Option<NaiveDate>| candidate == Some(date);
    let observed = |month, day| NaiveDate::from_ymd_opt(year, month, day).map(observed_weekday);
    match date.month() {
        1 => {
            let jan1 = NaiveDate::from_ymd_opt(year, 1, 1);
            if is(jan1) || (is(jan1.and_then(|d| d.succ_opt())) && date.weekday() == Weekday::Mon) {
                Some(NEW_YEARS_DAY)
            } else if year >= 1998 && is(nth(1, Weekday::Mon, 3)) {
                Some(MLK_DAY)
            } else {
                None
            }
        }
        2 => is(nth(2, Weekday::Mon, 3)).then_some(WASHINGTONS_BIRTHDAY),
        3 | 4 => is(easter_sunday(year).and_then(|e| e.checked_sub_days(Days::new(2))))
            .then_some(GOOD_FRIDAY),
        5 => is(last_weekday_of_may(year, Weekday::Mon)).then_some(MEMORIAL_DAY),
        6 => (year >= 2022 && is(observed(6, 19))).then_some(JUNETEENTH),
        7 => is(observed(7, 4)).then_some(INDEPENDENCE_DAY),
        9 => is(nth(9, Weekday::Mon, 1)).then_some(LABOR_DAY),
        11 => is(thanksgiving(year)).then_some(THANKSGIVING),
        12 => is(observed(12, 25)).then_some(CHRISTMAS),
        _ => None,
    }
}

/// Fourth Thursday of November.
fn thanksgiving(year: i32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4)
}

fn last_weekday_of_may(year: i32, weekday: Weekday) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, 5, weekday, 5)
        .or_else(|| NaiveDate::from_weekday_of_month_opt(year, 5, weekday, 4))
}

/// Saturday → the Friday before, Sunday → the Monday after.
fn observed_weekday(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d.pred_opt().unwrap_or(d),
        Weekday::Sun => d.succ_opt().unwrap_or(d),
        _ => d,
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn new_york_to_utc(date: NaiveDate, t: NaiveTime) -> Option<DateTime<Utc>> {
    // 09:30-16:00 never falls in a DST transition (those happen at 02:00),
    // so the local time is always unambiguous.
    New_York
        .from_local_datetime(&date.and_time(t))
        .single()
        .map(|dt| dt.with_timezone(&Utc))
}

/// Compile-time date constructor for the tables above.
const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("invalid date constant"),
    }
}

/// Compile-time time constructor for the constants above.
const fn time(h: u32, m: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, m, 0) {
        Some(t) => t,
        None => panic!("invalid time constant"),
    }
}
