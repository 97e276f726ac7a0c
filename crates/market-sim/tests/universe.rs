#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure
//! The 421-stock universe, loaded from the crate's data directory.

use chrono::NaiveDate;
use core_domain::Symbol;
use market_sim::universe::{self, UNIVERSE_SP20, UNIVERSE_US421};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn test_us421_when_loaded_then_421_stocks_with_volume_sectors_and_the_market_series() {
    let h = universe::history_of(UNIVERSE_US421).unwrap();
    assert_eq!(h.symbols.len(), 421);
    assert_eq!(h.dates.first(), Some(&d("2005-01-03")));
    assert_eq!(h.dates.last(), Some(&d("2017-11-10")));
    let sectors: std::collections::BTreeSet<_> = h.symbols.iter().map(|s| &s.sector).collect();
    assert_eq!(sectors.len(), 11);
    let at = |date: &str| h.date_index(d(date)).unwrap();
    let sym = |t: &str| h.symbol_index(&Symbol::new(t).unwrap()).unwrap();
    // The 2008 crisis is in it, with the index, the VIX and rates.
    let lehman = at("2008-10-10");
    assert!(h.index[lehman] > 800.0 && h.index[lehman] < 1000.0);
    assert!(h.vix[lehman] > 60.0);
    assert!(h.rates.iter().all(|r| r.is_finite()));
    // Volumes where a close exists.
    let aapl = sym("AAPL");
    assert!(h.volume(aapl, lehman).unwrap() > 1e6);
    assert!(h.close(aapl, lehman).is_some());
    // The real IV of the 20 reaches the stocks they share, from 2010.
    assert!(h.implied_vol(aapl, at("2012-06-01")).is_some());
    assert!(h.implied_vol(aapl, at("2009-06-01")).is_none());
    // A flagged decimal-shift typo (EIX 2009-09-01 close 2.7272) is dropped.
    let eix = sym("EIX");
    assert!(h.close(eix, at("2009-09-01")).is_none());
    assert!(h.close(eix, at("2009-09-02")).unwrap() > 20.0);
    // No one-day move left beyond 60% (the typos were up to 10x).
    for (s, series) in h.closes.iter().enumerate() {
        let known: Vec<f64> = series.iter().copied().filter(|v| v.is_finite()).collect();
        for w in known.windows(2) {
            let r = (w[1] / w[0]).ln().abs();
            assert!(r < 1.2, "{}: {} -> {}", h.symbols[s].symbol, w[0], w[1]);
        }
    }
}

#[test]
fn test_universe_names_and_caveats() {
    assert_eq!(
        universe::history_of(UNIVERSE_SP20).unwrap().symbols.len(),
        20
    );
    assert!(universe::history_of("nope").is_err());
    assert!(universe::caveats_of(UNIVERSE_SP20).is_empty());
    let c = universe::caveats_of(UNIVERSE_US421);
    assert!(c.iter().any(|c| c.contains("survivorship")));
    assert!(c.iter().any(|c| c.contains("dividend")));
}
