//! The NYSE calendar against the exchange's published lists: every day of
//! 1990-01-01 … 2030-12-31 is compared with `reference/nyse_1990_2030.json`
//! (made by `tools/calendar/make_nyse_reference.py` from
//! `exchange_calendars`, cross-checked with `pandas_market_calendars`), and
//! the shipped price data is checked to lie exactly on its sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use market_sim::calendar::{self, NyseCalendar};
use market_sim::data;

const REFERENCE: &str = include_str!("reference/nyse_1990_2030.json");
const CAL: NyseCalendar = NyseCalendar::new();

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

struct Reference {
    first: NaiveDate,
    last: NaiveDate,
    session_count: usize,
    holidays: BTreeMap<NaiveDate, String>,
    early_closes: BTreeMap<NaiveDate, NaiveTime>,
}

fn reference() -> Reference {
    let v: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    let meta = &v["meta"];
    let range = meta["range"].as_array().unwrap();
    let date_of = |x: &serde_json::Value| d(x.as_str().unwrap());
    let holidays = v["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (date_of(&h["date"]), h["name"].as_str().unwrap().to_owned()))
        .collect();
    let early_closes = v["early_closes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let t = NaiveTime::parse_from_str(e["close"].as_str().unwrap(), "%H:%M").unwrap();
            (date_of(&e["date"]), t)
        })
        .collect();
    Reference {
        first: date_of(&range[0]),
        last: date_of(&range[1]),
        session_count: usize::try_from(meta["session_count"].as_u64().unwrap()).unwrap(),
        holidays,
        early_closes,
    }
}

#[test]
fn test_calendar_when_compared_day_by_day_with_reference_then_no_mismatch() {
    let r = reference();
    assert_eq!(
        (r.first, r.last),
        (calendar::VERIFIED_FIRST, calendar::VERIFIED_LAST)
    );
    let mut mismatches = Vec::new();
    let (mut days, mut sessions) = (0usize, 0usize);
    for day in r.first.iter_days().take_while(|x| *x <= r.last) {
        days += 1;
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let want_holiday = r.holidays.get(&day).map(String::as_str);
        let want_session = !weekend && want_holiday.is_none();
        let want_early = r.early_closes.get(&day).copied();
        sessions += usize::from(want_session);
        if CAL.is_session(day) != want_session {
            mismatches.push(format!("{day}: is_session {}", CAL.is_session(day)));
        }
        if CAL.holiday_name(day) != want_holiday {
            mismatches.push(format!(
                "{day}: holiday_name {:?}, reference {want_holiday:?}",
                CAL.holiday_name(day)
            ));
        }
        if CAL.early_close(day) != want_early {
            mismatches.push(format!(
                "{day}: early_close {:?}, reference {want_early:?}",
                CAL.early_close(day)
            ));
        }
        assert!(CAL.is_verified(day));
    }
    assert_eq!(days, 14975);
    assert_eq!(sessions, r.session_count);
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(CAL.sessions(r.first, r.last).len(), r.session_count);
    eprintln!(
        "compared {days} days: {sessions} sessions, {} closed weekdays, {} early closes",
        r.holidays.len(),
        r.early_closes.len()
    );
}

#[test]
fn test_calendar_when_known_dates_then_named_as_published() {
    let cases = [
        (
            "1994-04-27",
            Some("National Day of Mourning for President Richard Nixon"),
        ),
        ("2001-09-11", Some("September 11 attacks")),
        ("2001-09-17", None),
        ("2012-10-30", Some("Hurricane Sandy")),
        (
            "2018-12-05",
            Some("National Day of Mourning for President George H. W. Bush"),
        ),
        (
            "2025-01-09",
            Some("National Day of Mourning for President Jimmy Carter"),
        ),
        ("2022-06-20", Some("Juneteenth National Independence Day")),
        ("2021-06-18", None), // Juneteenth observed from 2022
        ("1997-01-20", None), // MLK Day observed from 1998
        ("1998-01-19", Some("Martin Luther King Jr. Day")),
        ("2024-03-29", Some("Good Friday")),
        ("2015-07-03", Some("Independence Day")), // July 4 on a Saturday
        ("2021-12-24", Some("Christmas Day")),    // Dec 25 on a Saturday
        ("2022-12-26", Some("Christmas Day")),    // Dec 25 on a Sunday
        ("2023-01-02", Some("New Year's Day")),   // Jan 1 on a Sunday
        ("2021-12-31", None),                     // Jan 1 2022 on a Saturday
        ("2022-01-01", None),                     // weekend: not a holiday
        ("2027-06-18", Some("Juneteenth National Independence Day")),
    ];
    for (date, name) in cases {
        assert_eq!(CAL.holiday_name(d(date)), name, "{date}");
    }
}

#[test]
fn test_early_close_when_rules_changed_over_the_years_then_follows_them() {
    let one = NaiveTime::from_hms_opt(13, 0, 0);
    let two = NaiveTime::from_hms_opt(14, 0, 0);
    let cases = [
        ("1990-12-24", two),
        ("1991-11-29", None), // no day-after-Thanksgiving early close before 1992
        ("1992-11-27", two),
        ("1993-11-26", one),
        ("1991-07-03", None), // no July 3 early close before 1995
        ("1995-07-03", one),
        ("1996-07-03", None), // Wednesday before 2013: the Friday after instead
        ("1996-07-05", one),
        ("2013-07-03", one),
        ("2013-07-05", None),
        ("2019-07-03", one),
        ("1999-12-31", one),
        ("1997-12-26", one),
        ("2008-12-26", None),
        ("2025-12-24", one),
        ("2025-12-26", None),
        ("2020-07-03", None), // a holiday, not a session
    ];
    for (date, want) in cases {
        assert_eq!(CAL.early_close(d(date)), want, "{date}");
    }
}

#[test]
fn test_session_times_when_dst_changes_then_utc_instants_follow() {
    // EST (UTC-5) before the 2024-03-10 change, EDT (UTC-4) after.
    assert_eq!(
        CAL.session_open(d("2024-03-08")),
        Some(utc("2024-03-08T14:30:00Z"))
    );
    assert_eq!(
        CAL.session_close(d("2024-03-08")),
        Some(utc("2024-03-08T21:00:00Z"))
    );
    assert_eq!(
        CAL.session_open(d("2024-03-11")),
        Some(utc("2024-03-11T13:30:00Z"))
    );
    assert_eq!(
        CAL.session_close(d("2024-03-11")),
        Some(utc("2024-03-11T20:00:00Z"))
    );
    // Early closes: 13:00 EDT and 13:00 EST; 14:00 EST in 1990.
    assert_eq!(
        CAL.session_close(d("2024-07-03")),
        Some(utc("2024-07-03T17:00:00Z"))
    );
    assert_eq!(
        CAL.session_close(d("2024-11-29")),
        Some(utc("2024-11-29T18:00:00Z"))
    );
    assert_eq!(
        CAL.session_close(d("1990-12-24")),
        Some(utc("1990-12-24T19:00:00Z"))
    );
    // The pre-2007 DST rules: 1990-04-02 was still EST (change on 04-01),
    // 2006-10-30 was EST (change on 10-29), 2006-10-27 EDT.
    assert_eq!(
        CAL.session_open(d("1990-04-02")),
        Some(utc("1990-04-02T13:30:00Z"))
    );
    assert_eq!(
        CAL.session_open(d("1990-03-30")),
        Some(utc("1990-03-30T14:30:00Z"))
    );
    assert_eq!(
        CAL.session_open(d("2006-10-27")),
        Some(utc("2006-10-27T13:30:00Z"))
    );
    assert_eq!(
        CAL.session_open(d("2006-10-30")),
        Some(utc("2006-10-30T14:30:00Z"))
    );
    // No session, no times.
    for date in ["2024-12-25", "2024-03-09"] {
        assert_eq!(CAL.session_open(d(date)), None);
        assert_eq!(CAL.session_close(d(date)), None);
        assert_eq!(CAL.close_time(d(date)), None);
    }
}

#[test]
fn test_session_times_when_every_session_then_length_and_offset_are_sane() {
    for day in CAL.sessions(calendar::VERIFIED_FIRST, calendar::VERIFIED_LAST) {
        let open = CAL.session_open(day).unwrap();
        let close = CAL.session_close(day).unwrap();
        let minutes = (close - open).num_minutes();
        let want = match CAL.early_close(day) {
            None => 390,
            Some(t) if t == calendar::EARLY_CLOSE_TIME => 210,
            Some(_) => 270,
        };
        assert_eq!(minutes, want, "{day}");
        let offset_hours = (open.naive_utc() - day.and_time(calendar::OPEN_TIME)).num_hours();
        assert!(
            offset_hours == 4 || offset_hours == 5,
            "{day}: {offset_hours}"
        );
        assert_eq!(open.date_naive(), day);
    }
}

#[test]
fn test_next_and_previous_session_when_walked_then_agree_with_sessions_list() {
    let all = CAL.sessions(calendar::VERIFIED_FIRST, calendar::VERIFIED_LAST);
    for w in all.windows(2) {
        assert_eq!(CAL.next_session(w[0]), Some(w[1]));
        assert_eq!(CAL.previous_session(w[1]), Some(w[0]));
    }
    assert_eq!(CAL.next_session(d("2001-09-10")), Some(d("2001-09-17")));
    assert_eq!(CAL.previous_session(d("2001-09-17")), Some(d("2001-09-10")));
    assert_eq!(CAL.next_session(d("2024-03-28")), Some(d("2024-04-01")));
    assert_eq!(CAL.next_session(d("2024-03-30")), Some(d("2024-04-01")));
    assert_eq!(
        CAL.session_on_or_after(d("2024-04-01")),
        Some(d("2024-04-01"))
    );
    assert_eq!(
        CAL.session_on_or_before(d("2024-03-31")),
        Some(d("2024-03-28"))
    );
}

#[test]
fn test_sessions_when_range_given_then_inclusive_and_empty_when_reversed() {
    let s = CAL.sessions(d("2024-12-23"), d("2025-01-03"));
    let want = [
        "2024-12-23",
        "2024-12-24",
        "2024-12-26",
        "2024-12-27",
        "2024-12-30",
        "2024-12-31",
        "2025-01-02",
        "2025-01-03",
    ];
    assert_eq!(s, want.map(d));
    assert!(CAL.sessions(d("2025-01-03"), d("2024-12-23")).is_empty());
    assert!(CAL.sessions(d("2025-01-04"), d("2025-01-05")).is_empty());
}

#[test]
fn test_monthly_expiration_when_third_friday_is_a_holiday_then_thursday() {
    assert_eq!(CAL.monthly_expiration(2022, 4), d("2022-04-14")); // Good Friday
    assert_eq!(CAL.monthly_expiration(2014, 4), d("2014-04-17")); // Good Friday
    assert_eq!(CAL.monthly_expiration(2025, 1), d("2025-01-17"));
    assert_eq!(CAL.monthly_expiration(2026, 6), d("2026-06-18")); // Juneteenth
    for year in 1990..=2030 {
        for month in 1..=12 {
            let e = CAL.monthly_expiration(year, month);
            assert!(CAL.is_session(e), "{e}");
            assert!((14..=21).contains(&e.day()), "{e}");
            assert!(matches!(e.weekday(), Weekday::Thu | Weekday::Fri), "{e}");
            assert_eq!((e.year(), e.month()), (year, month));
        }
    }
}

#[test]
fn test_monthly_expiration_when_month_out_of_1_to_12_then_rolls_over_years() {
    assert_eq!(
        CAL.monthly_expiration(2024, 13),
        CAL.monthly_expiration(2025, 1)
    );
    assert_eq!(
        CAL.monthly_expiration(2024, 26),
        CAL.monthly_expiration(2026, 2)
    );
    assert_eq!(
        CAL.monthly_expiration(2025, 0),
        CAL.monthly_expiration(2024, 12)
    );
    assert_eq!(CAL.monthly_expiration(i32::MAX, 1), NaiveDate::MAX);
    assert_eq!(CAL.monthly_expiration(i32::MIN, 1), NaiveDate::MIN);
}

#[test]
fn test_weekly_expiration_when_friday_closed_then_previous_session() {
    assert_eq!(CAL.weekly_expiration(d("2024-03-29")), d("2024-03-28"));
    assert_eq!(CAL.weekly_expiration(d("2020-07-03")), d("2020-07-02"));
    assert_eq!(CAL.weekly_expiration(d("2001-09-14")), d("2001-09-10"));
    assert_eq!(CAL.weekly_expiration(d("2024-03-22")), d("2024-03-22"));
    assert_eq!(CAL.weekly_expiration(d("2024-03-30")), d("2024-03-28")); // any weekday
}

#[test]
fn test_easter_when_known_years_then_matches_published_dates() {
    for (year, easter) in [
        (1990, "1990-04-15"),
        (2000, "2000-04-23"),
        (2008, "2008-03-23"),
        (2011, "2011-04-24"),
        (2019, "2019-04-21"),
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2038, "2038-04-25"),
        (2285, "2285-03-22"),
    ] {
        assert_eq!(calendar::easter_sunday(year), Some(d(easter)), "{year}");
    }
}

/// Every date of the shipped equity file is a session, and every session
/// between its first and last date is in it. No exceptions were found.
#[test]
fn test_shipped_equity_dates_when_checked_then_exactly_the_sessions_of_their_span() {
    let h = data::real_history().unwrap();
    let not_sessions: Vec<_> = h.dates.iter().filter(|x| !CAL.is_session(**x)).collect();
    assert!(not_sessions.is_empty(), "not sessions: {not_sessions:?}");
    let (first, last) = (h.dates[0], h.dates[h.dates.len() - 1]);
    let sessions = CAL.sessions(first, last);
    let missing: Vec<_> = sessions
        .iter()
        .filter(|x| h.date_index(**x).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "sessions missing from the data: {missing:?}"
    );
    assert_eq!(sessions, h.dates);
}

/// The same for the S&P 500 OHLC file.
#[test]
fn test_shipped_sp500_dates_when_checked_then_exactly_the_sessions_of_their_span() {
    let o = data::sp500_ohlc().unwrap();
    let sessions = CAL.sessions(o.dates[0], o.dates[o.dates.len() - 1]);
    assert_eq!(sessions, o.dates);
}
