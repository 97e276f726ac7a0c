#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The validator against the real history on the simulated exchange, and
//! its match rate against the held-out hand-selected trade list
//! `tests/fixtures/manual_trades_2019_2022.csv` (made by
//! `tools/manual_trades/make_manual_trades.py`, independently of this
//! crate: see the script's header for how).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use core_domain::{Price, Symbol};
use market_sim::calendar::NyseCalendar;
use market_sim::{ChainModel, ChainModelParams, ExchangeParams, History, SimExchange};
use strategy_naked_put::validator::{
    DEFAULT_CHECKPOINT, ManualTrade, ReplaySession, ValidationConfig, ValidationError,
    ValidationReport, checkpoint_time, read_manual_trades, validate,
};
use strategy_naked_put::{NakedPutParams, TrendFilter};

/// The held-out window: the last four years of the data.
const HELD_OUT_FROM: &str = "2019-01-02";
const HELD_OUT_TO: &str = "2022-12-28";

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn history() -> &'static History {
    market_sim::data::real_history().unwrap()
}

fn fixture() -> Vec<ManualTrade> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manual_trades_2019_2022.csv");
    read_manual_trades(&path).unwrap()
}

/// The sessions of `from..=to` at 10:00 New York.
fn sessions(from: NaiveDate, to: NaiveDate) -> Vec<ReplaySession> {
    let h = history();
    let cal = NyseCalendar::new();
    h.dates[h.date_range(from, to)]
        .iter()
        .map(|day| ReplaySession {
            date: *day,
            time: checkpoint_time(
                cal.session_open(*day).unwrap(),
                cal.session_close(*day).unwrap(),
                DEFAULT_CHECKPOINT,
            ),
        })
        .collect()
}

fn config(from: NaiveDate, to: NaiveDate, params: NakedPutParams) -> ValidationConfig {
    ValidationConfig {
        from,
        to,
        checkpoint: DEFAULT_CHECKPOINT,
        params,
        universe: history()
            .symbols
            .iter()
            .map(|s| (s.symbol.clone(), Some(s.sector.clone())))
            .collect(),
    }
}

/// Replays `from..=to` on a fresh simulated exchange over the real history
/// (default chain and exchange parameters).
async fn replay(
    from: NaiveDate,
    to: NaiveDate,
    manual: Option<&[ManualTrade]>,
    params: NakedPutParams,
) -> ValidationReport {
    let exchange = SimExchange::new(
        Arc::new(history().clone()),
        ChainModel::new(ChainModelParams::default()),
        ExchangeParams::default(),
        from,
    )
    .unwrap();
    let cfg = config(from, to, params);
    validate(
        &exchange,
        &exchange,
        &sessions(from, to),
        &cfg,
        manual,
        |t| {
            exchange.advance_to(t);
        },
        |_| {},
    )
    .await
    .unwrap()
}

fn same_put(
    t: &ManualTrade,
    date: NaiveDate,
    symbol: &Symbol,
    strike: Price,
    expiry: NaiveDate,
) -> bool {
    t.date == date && &t.symbol == symbol && t.strike == strike && t.expiry == expiry
}

#[test]
fn test_held_out_list_reads_as_26_puts_inside_the_window() {
    let trades = fixture();
    assert_eq!(trades.len(), 26);
    let (from, to) = (d(HELD_OUT_FROM), d(HELD_OUT_TO));
    for t in &trades {
        assert!((from..=to).contains(&t.date), "{t:?}");
        let dte = (t.expiry - t.date).num_days();
        assert!((7..=14).contains(&dte), "{t:?}");
        assert!(
            matches!(t.expiry.weekday(), Weekday::Fri | Weekday::Thu),
            "{t:?}"
        );
    }
}

/// The judged figure: the strategy's selection against the held-out list.
/// Measured (default parameters, 10:00 New York, seed 42): 26 trades, 1
/// exact match (3.8%), 4 symbol-day matches (15.4%), 17 of the misses on
/// the premium. It was 5 and 12 before the surface followed the stocks'
/// real implied volatility: the list's rule-of-thumb prices (see the
/// script) are richer than the real market's, so at real IV levels most of
/// its puts bid under $0.30. The floors below leave room for small model
/// changes, not for a broken selection.
#[tokio::test]
async fn test_match_rate_against_the_held_out_list() {
    let trades = fixture();
    let (from, to) = (d(HELD_OUT_FROM), d(HELD_OUT_TO));
    let started = Instant::now();
    let r = replay(from, to, Some(&trades), NakedPutParams::default()).await;
    let elapsed = started.elapsed();
    let m = r.manual.as_ref().unwrap();
    println!(
        "held-out {from}..{to}: {} sessions in {elapsed:?}; {} trades, exact {} ({:.1}%), symbol-day {} ({:.1}%); unmatched by criterion {:?}",
        r.sessions,
        m.trades,
        m.matched_exact,
        m.match_rate_exact * 100.0,
        m.matched_symbol_day,
        m.match_rate_symbol_day * 100.0,
        m.by_criterion
    );

    // Computed correctly: recount from the listed opportunities.
    assert_eq!(m.trades, trades.len());
    assert_eq!(m.outside_window, 0);
    let exact = trades
        .iter()
        .filter(|t| {
            r.opportunities
                .iter()
                .any(|o| same_put(t, o.date, &o.symbol, o.strike, o.expiry))
        })
        .count();
    let symbol_day = trades
        .iter()
        .filter(|t| {
            r.opportunities
                .iter()
                .any(|o| o.date == t.date && o.symbol == t.symbol)
        })
        .count();
    assert_eq!(m.matched_exact, exact);
    assert_eq!(m.matched_symbol_day, symbol_day);
    assert!((m.match_rate_exact - exact as f64 / trades.len() as f64).abs() < 1e-12);
    assert!((m.match_rate_symbol_day - symbol_day as f64 / trades.len() as f64).abs() < 1e-12);
    assert_eq!(m.unmatched.len(), trades.len() - exact);
    assert_eq!(m.by_criterion.values().sum::<usize>(), m.unmatched.len());
    for u in &m.unmatched {
        assert!(!u.reason.is_empty() && !u.criterion.is_empty(), "{u:?}");
        // Every held-out trade is on a listed weekly, in an uptrend at the
        // previous close and on the strike grid: the reason is a rule.
        assert!(
            [
                "premium_bid",
                "otm_pct",
                "dte",
                "uptrend",
                "open_interest",
                "spread_pct"
            ]
            .contains(&u.criterion.as_str()),
            "{u:?}"
        );
    }

    // Within the measured band.
    assert!(
        m.matched_exact >= 1,
        "exact matches fell to {}",
        m.matched_exact
    );
    assert!(
        m.matched_symbol_day >= 3,
        "symbol-day matches fell to {}",
        m.matched_symbol_day
    );
    assert!(m.matched_exact <= m.matched_symbol_day);
}

/// Every listed opportunity obeys the rules, checked from the raw history:
/// the symbol was in an uptrend at the previous close (a selection that
/// ignored the trend would fail here), 15–20% OTM, bid 0.30–0.50, 7–14 DTE.
#[tokio::test]
async fn test_every_listed_opportunity_follows_the_rules() {
    let (from, to) = (d(HELD_OUT_FROM), d(HELD_OUT_TO));
    let r = replay(from, to, None, NakedPutParams::default()).await;
    let h = history();
    assert_eq!(r.sessions, h.date_range(from, to).len());
    assert_eq!(r.per_day.len(), r.sessions);
    assert_eq!(r.summary.total_opportunities, r.opportunities.len());
    // 22 at real implied-volatility levels (the surface follows the real
    // 3-month IV; it was over 50 with the richer legacy surface).
    assert!(
        r.opportunities.len() >= 15,
        "only {} listed",
        r.opportunities.len()
    );
    for o in &r.opportunities {
        let s = h.symbol_index(&o.symbol).unwrap();
        let day = h.date_index(o.date).unwrap();
        let closes = h.trailing_closes(s, day - 1, 50);
        let last = *closes.last().unwrap();
        let sma20 = closes[30..].iter().sum::<f64>() / 20.0;
        let sma50 = closes.iter().sum::<f64>() / 50.0;
        assert!(last > sma20 && sma20 > sma50, "{o:?} not in an uptrend");
        let otm = (o.underlying_price.to_f64() - o.strike.to_f64()) / o.underlying_price.to_f64();
        assert!((0.15 - 1e-9..=0.20 + 1e-9).contains(&otm), "{o:?}");
        assert!(
            (Price::from_cents(30)..=Price::from_cents(50)).contains(&o.premium),
            "{o:?}"
        );
        assert!((7..=14).contains(&(o.expiry - o.date).num_days()), "{o:?}");
    }
}

/// A hand-made list whose answer is known: three of the strategy's own
/// picks, one of them again a strike lower, a Saturday and a trade outside
/// the window.
#[tokio::test]
async fn test_match_counts_on_a_constructed_list() {
    let (from, to) = (d("2020-04-01"), d("2020-08-31"));
    let first = replay(from, to, None, NakedPutParams::default()).await;
    let mut days: Vec<NaiveDate> = first.opportunities.iter().map(|o| o.date).collect();
    days.dedup();
    assert!(days.len() >= 3, "need three days with an opportunity");
    let picks: Vec<_> = days[..3]
        .iter()
        .map(|day| first.opportunities.iter().find(|o| o.date == *day).unwrap())
        .collect();
    let trade = |line, date, symbol: &Symbol, strike, expiry| ManualTrade {
        line,
        date,
        symbol: symbol.clone(),
        strike,
        expiry,
    };
    let mut list: Vec<ManualTrade> = picks
        .iter()
        .enumerate()
        .map(|(i, o)| trade(i + 2, o.date, &o.symbol, o.strike, o.expiry))
        .collect();
    let o = picks[0];
    // A strike one grid step lower (unless the strategy listed that one too).
    let step = if o.strike.to_f64() < 50.0 { 250 } else { 500 };
    let lower = Price::from_cents(o.strike.raw() / 100 - step);
    let lower_listed = first.opportunities.iter().any(|x| {
        x.date == o.date && x.symbol == o.symbol && x.strike == lower && x.expiry == o.expiry
    });
    list.push(trade(5, o.date, &o.symbol, lower, o.expiry));
    let saturday = d("2020-05-16");
    list.push(trade(
        6,
        saturday,
        &o.symbol,
        o.strike,
        saturday + Duration::days(13),
    ));
    list.push(trade(
        7,
        d("2019-06-03"),
        &o.symbol,
        o.strike,
        d("2019-06-14"),
    ));

    let r = replay(from, to, Some(&list), NakedPutParams::default()).await;
    let m = r.manual.as_ref().unwrap();
    assert_eq!(m.trades, 5);
    assert_eq!(m.outside_window, 1);
    assert_eq!(m.matched_exact, 3 + usize::from(lower_listed));
    assert_eq!(m.matched_symbol_day, 4);
    assert!((m.match_rate_exact - m.matched_exact as f64 / 5.0).abs() < 1e-12);
    assert!((m.match_rate_symbol_day - 0.8).abs() < 1e-12);
    let sat = m.unmatched.iter().find(|u| u.trade.line == 6).unwrap();
    assert_eq!(sat.criterion, "not_a_session");
    assert!(!sat.symbol_day_matched);
    if !lower_listed {
        let low = m.unmatched.iter().find(|u| u.trade.line == 5).unwrap();
        assert!(low.symbol_day_matched);
        assert!(low.reason.contains("not an opportunity"), "{}", low.reason);
    }
    // The replay is deterministic: the same opportunities as the first run.
    assert_eq!(r.opportunities, first.opportunities);
    assert_eq!(r.per_day, first.per_day);
}

/// A symbol in a downtrend the day of the trade: unmatched, and the reason
/// says the uptrend failed. With the trend filter off, the reason changes.
#[tokio::test]
async fn test_a_trade_in_a_downtrend_is_unmatched_because_of_the_uptrend() {
    let h = history();
    let cal = NyseCalendar::new();
    // The first session of 2021 (from the 2nd week of January) on which a
    // symbol priced $20-$200 closed (the session before) below a falling
    // SMA20: close < SMA20 < SMA50.
    let mut found = None;
    'outer: for day in h.date_range(d("2021-01-11"), d("2021-12-31")) {
        for (s, info) in h.symbols.iter().enumerate() {
            let c = h.trailing_closes(s, day - 1, 50);
            let last = *c.last().unwrap();
            let sma20 = c[30..].iter().sum::<f64>() / 20.0;
            let sma50 = c.iter().sum::<f64>() / 50.0;
            if (20.0..200.0).contains(&last) && last < sma20 && sma20 < sma50 {
                found = Some((h.dates[day], info.symbol.clone(), last));
                break 'outer;
            }
        }
    }
    let (date, symbol, spot) = found.unwrap();
    // A 17%-OTM put on the grid, on the Friday 7-13 days out.
    let step = if spot < 50.0 { 2.5 } else { 5.0 };
    let strike = Price::from_f64((spot * 0.83 / step).floor() * step).unwrap();
    let mut expiry = date + Duration::days(7);
    while expiry.weekday() != Weekday::Fri {
        expiry += Duration::days(1);
    }
    if !cal.is_session(expiry) {
        expiry -= Duration::days(1);
    }
    let trade = ManualTrade {
        line: 2,
        date,
        symbol: symbol.clone(),
        strike,
        expiry,
    };

    let r = replay(
        date,
        date,
        Some(std::slice::from_ref(&trade)),
        NakedPutParams::default(),
    )
    .await;
    let m = r.manual.as_ref().unwrap();
    assert_eq!((m.trades, m.matched_exact, m.matched_symbol_day), (1, 0, 0));
    let u = &m.unmatched[0];
    println!("{date} {symbol}: {}", u.reason);
    assert_eq!(u.criterion, "uptrend");
    assert!(
        u.reason.contains("screened out") && u.reason.contains("uptrend"),
        "{}",
        u.reason
    );
    assert!(!r.opportunities.iter().any(|o| o.symbol == symbol));

    let off = NakedPutParams {
        trend_filter: TrendFilter::None,
        ..NakedPutParams::default()
    };
    let r = replay(date, date, Some(std::slice::from_ref(&trade)), off).await;
    let u = r.manual.as_ref().unwrap().unmatched.first().cloned();
    if let Some(u) = u {
        assert!(!u.reason.contains("uptrend"), "{}", u.reason);
        assert_ne!(u.criterion, "uptrend");
    }
}

/// A quarter replays in about 0.1 s even in debug (a year in 0.08 s in
/// release); the markdown and the JSON carry the figures and the match
/// section.
#[tokio::test]
async fn test_a_quarter_replays_quickly_and_renders() {
    let (from, to) = (d("2020-04-01"), d("2020-06-30"));
    let started = Instant::now();
    let r = replay(from, to, Some(&fixture()), NakedPutParams::default()).await;
    let elapsed = started.elapsed();
    println!("{} sessions in {elapsed:?}", r.sessions);
    assert!(elapsed.as_secs_f64() < 20.0, "took {elapsed:?}");
    let m = r.manual.as_ref().unwrap();
    assert!(m.outside_window > 0);
    let md = r.to_markdown();
    for needle in [
        "# Validation of",
        "## Opportunities per day",
        "days with 5–10 (the target)",
        "## OTM %",
        "| 15–16% |",
        "## Premium at the bid ($)",
        "| 0.30–0.35 |",
        "## Days to expiry",
        "## Sectors",
        "## Top symbols",
        "## Against the manual trades",
        "exact match (date, symbol, strike, expiry)",
    ] {
        assert!(md.contains(needle), "markdown lacks {needle:?}:\n{md}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["sessions"], r.sessions);
    assert!(json["summary"]["share_in_target_band"].is_number());
    assert!(json["manual"]["match_rate_exact"].is_number());
}

#[tokio::test]
async fn test_bad_windows_are_refused() {
    let exchange = SimExchange::new(
        Arc::new(history().clone()),
        ChainModel::new(ChainModelParams::default()),
        ExchangeParams::default(),
        d("2021-01-04"),
    )
    .unwrap();
    let (from, to) = (d("2021-02-01"), d("2021-01-04"));
    let cfg = config(from, to, NakedPutParams::default());
    let err = validate(
        &exchange,
        &exchange,
        &sessions(to, from),
        &cfg,
        None,
        |_| {},
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ValidationError::EmptyWindow { .. }), "{err}");
    let cfg = config(d("2021-01-09"), d("2021-01-10"), NakedPutParams::default());
    let err = validate(&exchange, &exchange, &[], &cfg, None, |_| {}, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::NoSessions { .. }), "{err}");
    let bad = NakedPutParams {
        otm_min: 0.3,
        otm_max: 0.1,
        ..NakedPutParams::default()
    };
    let (from, to) = (d("2021-01-04"), d("2021-01-05"));
    let err = validate(
        &exchange,
        &exchange,
        &sessions(from, to),
        &config(from, to, bad),
        None,
        |_| {},
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("otm range"), "{err}");
}
