#!/usr/bin/env python3
"""Write the NYSE reference calendar that crates/market-sim/tests/calendar.rs
checks the Rust calendar against, day by day.

Output: crates/market-sim/tests/reference/nyse_1990_2030.json with
  - every weekday of 1990-01-01..2030-12-31 on which the exchange is closed
    (regular holidays and special closures), with a name;
  - every scheduled early close with its closing time (America/New_York);
  - the number of sessions, as a checksum.

Source of truth: `exchange_calendars` (XNYS), whose rules and ad-hoc lists
cite NYSE's own historical closings list (nyse.com/pdfs/closings.pdf) and
NYSE's published holiday calendars. When `pandas_market_calendars` is
installed too, its NYSE calendar is compared and every difference is
printed and recorded in the file's `meta.cross_check`.

Corrections to the library, if any, go into OVERRIDES below with the reason
and the source; they are applied to the output and listed in
`meta.overrides`. None is needed at exchange_calendars 4.13.2 for 1990-2030
(see meta.disputes for the one date the two libraries disagree on).

Usage (from the repository root):
    python -m venv /tmp/calvenv
    /tmp/calvenv/bin/pip install exchange_calendars pandas_market_calendars
    /tmp/calvenv/bin/python tools/calendar/make_nyse_reference.py
The output is deterministic for a given library version.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys

import exchange_calendars as xcals
import pandas as pd

START = "1990-01-01"
END = "2030-12-31"
NY = "America/New_York"
OUT = (
    pathlib.Path(__file__).resolve().parents[2]
    / "crates/market-sim/tests/reference/nyse_1990_2030.json"
)

# exchange_calendars' rule names -> the names the Rust calendar returns.
REGULAR_NAMES = {
    "New Year's Day": "New Year's Day",
    "Dr. Martin Luther King Jr. Day": "Martin Luther King Jr. Day",
    "President's Day": "Washington's Birthday",
    "Good Friday": "Good Friday",
    "Memorial Day": "Memorial Day",
    "Juneteenth National Independence Day": "Juneteenth National Independence Day",
    "July 4th": "Independence Day",
    "Labor Day": "Labor Day",
    "Thanksgiving": "Thanksgiving Day",
    "Christmas": "Christmas Day",
}

# exchange_calendars lists these ad-hoc closures without names.
SPECIAL_CLOSURE_NAMES = {
    "1994-04-27": "National Day of Mourning for President Richard Nixon",
    "2001-09-11": "September 11 attacks",
    "2001-09-12": "September 11 attacks",
    "2001-09-13": "September 11 attacks",
    "2001-09-14": "September 11 attacks",
    "2004-06-11": "National Day of Mourning for President Ronald Reagan",
    "2007-01-02": "National Day of Mourning for President Gerald Ford",
    "2012-10-29": "Hurricane Sandy",
    "2012-10-30": "Hurricane Sandy",
    "2018-12-05": "National Day of Mourning for President George H. W. Bush",
    "2025-01-09": "National Day of Mourning for President Jimmy Carter",
}

# Corrections of the library against NYSE's published lists:
#   "YYYY-MM-DD": {"kind": "holiday", "name": ..., "reason": ...}
#   "YYYY-MM-DD": {"kind": "early_close", "close": "HH:MM", "reason": ...}
#   "YYYY-MM-DD": {"kind": "regular", "reason": ...}   (normal 09:30-16:00)
# None needed for 1990-2030 at exchange_calendars 4.13.2.
OVERRIDES: dict[str, dict] = {}

# Where the libraries disagree and the reference keeps exchange_calendars'.
DISPUTES = {
    "1999-12-31": (
        "Early close at 13:00 (kept). exchange_calendars lists it; "
        "pandas_market_calendars comments it out as 'disputed, not in "
        "reference source'. The NYSE board approved a 1:00 pm close on "
        "New Year's Eve 1999 ahead of the Y2K changeover (NYSE announcement "
        "of 1999-04-06, reported by Mondo Visione and The Independent)."
    ),
}


def main() -> int:
    cal = xcals.get_calendar("XNYS", start=START, end=END)
    sessions = {ts.date() for ts in cal.sessions}

    names = cal.regular_holidays.holidays(
        pd.Timestamp(START), pd.Timestamp(END), return_name=True
    )
    regular = {ts.date().isoformat(): REGULAR_NAMES[n] for ts, n in names.items()}

    holidays: dict[str, str] = {}
    day = dt.date.fromisoformat(START)
    last = dt.date.fromisoformat(END)
    weekdays = 0
    while day <= last:
        if day.weekday() < 5:
            weekdays += 1
            if day not in sessions:
                key = day.isoformat()
                name = regular.get(key) or SPECIAL_CLOSURE_NAMES.get(key)
                if name is None:
                    raise SystemExit(f"closed weekday {key} has no name")
                holidays[key] = name
        elif day in sessions:
            raise SystemExit(f"weekend session {day}")
        day += dt.timedelta(days=1)

    early: dict[str, str] = {}
    for ts in cal.sessions:
        open_ny = cal.session_open(ts).tz_convert(NY)
        close_ny = cal.session_close(ts).tz_convert(NY)
        if open_ny.time() != dt.time(9, 30):
            raise SystemExit(f"unexpected open {open_ny} on {ts.date()}")
        if close_ny.time() != dt.time(16, 0):
            early[ts.date().isoformat()] = close_ny.strftime("%H:%M")

    for key, fix in OVERRIDES.items():
        holidays.pop(key, None)
        early.pop(key, None)
        if fix["kind"] == "holiday":
            holidays[key] = fix["name"]
        elif fix["kind"] == "early_close":
            early[key] = fix["close"]

    cross = cross_check(sessions, early)

    doc = {
        "meta": {
            "what": "NYSE (XNYS) closed weekdays and scheduled early closes, "
            "America/New_York local times; every weekday not listed under "
            "holidays is a session opening 09:30 and closing 16:00 unless "
            "listed under early_closes.",
            "range": [START, END],
            "generator": "tools/calendar/make_nyse_reference.py",
            "source": f"exchange_calendars {xcals.__version__} (XNYS)",
            "overrides": OVERRIDES,
            "disputes": DISPUTES,
            "cross_check": cross,
            "session_count": weekdays - len(holidays),
        },
        "holidays": [{"date": d, "name": holidays[d]} for d in sorted(holidays)],
        "early_closes": [{"date": d, "close": early[d]} for d in sorted(early)],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        f.write(dump(doc))
    print(
        f"wrote {OUT}: {len(holidays)} closed weekdays, {len(early)} early "
        f"closes, {doc['meta']['session_count']} sessions"
    )
    return 0


def cross_check(sessions: set, early: dict[str, str]) -> dict:
    """Compare with pandas_market_calendars' NYSE, when it is installed."""
    try:
        import pandas_market_calendars as pmc
    except ImportError:
        print("pandas_market_calendars not installed: no cross-check")
        return {"library": None}
    sched = pmc.get_calendar("NYSE").schedule(start_date=START, end_date=END)
    other_sessions = {ts.date() for ts in sched.index}
    other_early: dict[str, str] = {}
    late_open: dict[str, str] = {}
    for ts, row in sched.iterrows():
        o = row["market_open"].tz_convert(NY)
        c = row["market_close"].tz_convert(NY)
        if c.time() != dt.time(16, 0):
            other_early[ts.date().isoformat()] = c.strftime("%H:%M")
        if o.time() != dt.time(9, 30):
            late_open[ts.date().isoformat()] = o.strftime("%H:%M")
    diff = {
        "library": f"pandas_market_calendars {pmc.__version__} (NYSE)",
        "sessions_only_in_reference": sorted(
            d.isoformat() for d in sessions - other_sessions
        ),
        "sessions_only_in_other": sorted(
            d.isoformat() for d in other_sessions - sessions
        ),
        "early_closes_only_in_reference": {
            d: t for d, t in sorted(early.items()) if other_early.get(d) != t
        },
        "early_closes_only_in_other": {
            d: t for d, t in sorted(other_early.items()) if early.get(d) != t
        },
        "late_opens_in_other": late_open,
        "note": "pandas_market_calendars also records unscheduled "
        "interruptions (snow, circuit breakers, system problems) as late "
        "opens and early closes; the reference lists scheduled early "
        "closes only.",
    }
    for k, v in diff.items():
        if v and k != "note":
            print(f"cross-check {k}: {v}")
    return diff


def dump(doc: dict) -> str:
    """JSON with one list entry per line, so diffs stay readable."""
    lines = [
        "{",
        '  "meta": ' + json.dumps(doc["meta"], indent=2).replace("\n", "\n  ") + ",",
    ]
    for key in ("holidays", "early_closes"):
        items = doc[key]
        lines.append(f'  "{key}": [')
        for i, item in enumerate(items):
            comma = "," if i + 1 < len(items) else ""
            lines.append("    " + json.dumps(item) + comma)
        lines.append("  ]" + ("," if key == "holidays" else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
