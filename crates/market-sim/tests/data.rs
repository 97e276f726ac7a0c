//! The shipped history: it loads, it matches the CSV files it came from,
//! the series are aligned as documented, and malformed input is reported
//! with file, line and column.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use core_domain::Symbol;
use market_sim::History;
use market_sim::data::{
    self, CsvSources, DataError, EQUITIES_FILE, SECTORS_FILE, SP500_FILE, TREASURY_FILE, VIX_FILE,
};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn hist() -> &'static History {
    data::real_history().expect("the shipped data loads")
}

fn at(h: &History, date: &str) -> usize {
    h.date_index(d(date))
        .unwrap_or_else(|| panic!("{date} is not a date of the history"))
}

fn close_of(h: &History, symbol: &str, date: &str) -> f64 {
    let s = h.symbol_index(&Symbol::new(symbol).unwrap()).unwrap();
    h.closes[s][at(h, date)]
}

#[test]
fn test_real_history_when_loaded_then_has_20_symbols_with_sectors_over_1990_to_2022() {
    let h = hist();
    assert_eq!(h.symbols.len(), 20);
    let names: Vec<&str> = h.symbols.iter().map(|s| s.symbol.as_str()).collect();
    assert_eq!(
        names,
        [
            "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK",
            "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM"
        ]
    );
    let aapl = &h.symbols[0];
    assert_eq!(aapl.sector, "Information Technology");
    assert_eq!(aapl.name, "Apple Inc.");
    let xom = &h.symbols[19];
    assert_eq!(
        (xom.sector.as_str(), xom.name.as_str()),
        ("Energy", "Exxon Mobil Corp.")
    );
    assert_eq!(h.dates.len(), 8313);
    assert_eq!(h.dates.first(), Some(&d("1990-01-02")));
    assert_eq!(h.dates.last(), Some(&d("2022-12-28")));
    h.validate().unwrap();
    for (info, c) in h.symbols.iter().zip(&h.closes) {
        assert!(
            c.iter().all(|v| v.is_finite() && *v > 0.0),
            "{}: the equity file has no gaps",
            info.symbol.as_str()
        );
    }
}

#[test]
fn test_real_history_when_called_twice_then_returns_the_same_cached_value() {
    let a = data::real_history().unwrap();
    let b = data::real_history().unwrap();
    assert!(std::ptr::eq(a, b));
    assert!(same(a, &data::load_real_history().unwrap()));
}

/// Equality that treats NaN as equal to NaN (History's `==` does not).
fn same(a: &History, b: &History) -> bool {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    a.dates == b.dates
        && a.symbols == b.symbols
        && a.closes.len() == b.closes.len()
        && a.closes
            .iter()
            .zip(&b.closes)
            .all(|(x, y)| bits(x) == bits(y))
        && bits(&a.index) == bits(&b.index)
        && bits(&a.vix) == bits(&b.vix)
        && bits(&a.rates) == bits(&b.rates)
        && a.implied_vol.len() == b.implied_vol.len()
        && a.implied_vol
            .iter()
            .zip(&b.implied_vol)
            .all(|(x, y)| bits(x) == bits(y))
        && bits(&a.skew_index) == bits(&b.skew_index)
}

#[test]
fn test_closes_when_first_and_last_rows_then_equal_the_csv() {
    let h = hist();
    assert_eq!(close_of(h, "AAPL", "1990-01-02"), 0.264);
    assert_eq!(close_of(h, "AAPL", "2022-12-28"), 125.674);
    assert_eq!(close_of(h, "XOM", "1990-01-02"), 4.068);
    assert_eq!(close_of(h, "XOM", "2022-12-28"), 106.627);
    assert_eq!(close_of(h, "MSFT", "2022-12-27"), 235.852);
}

#[test]
fn test_index_when_aligned_then_equals_csv_inside_1999_to_2018_and_a_proxy_outside() {
    let h = hist();
    assert_eq!(h.index[at(h, "1999-01-04")], 1228.099976);
    assert_eq!(h.index[at(h, "2008-10-10")], 899.219971);
    assert_eq!(h.index[at(h, "2018-12-31")], 2506.850098);
    // Outside the file: the equal-weight proxy of the 20 stocks, chained
    // from the file's first and last closes, so every session has a value.
    assert!(h.index.iter().all(|v| v.is_finite() && *v > 0.0));
    let (a, b) = (at(h, "2018-12-31"), at(h, "2019-01-02"));
    let mean: f64 =
        h.closes.iter().map(|c| (c[b] / c[a]).ln()).sum::<f64>() / h.closes.len() as f64;
    assert!((h.index[b] / h.index[a] - mean.exp()).abs() < 1e-12);
}

#[test]
fn test_vix_when_aligned_then_the_cboe_close_on_every_session() {
    let h = hist();
    assert_eq!(h.vix[at(h, "1990-01-02")], 17.24);
    assert_eq!(h.vix[at(h, "2014-01-03")], 13.76);
    assert_eq!(h.vix[at(h, "2016-06-24")], 25.76);
    assert_eq!(h.vix[at(h, "2018-02-05")], 37.32);
    assert_eq!(h.vix[at(h, "2019-01-03")], 25.45);
    assert_eq!(h.vix[at(h, "2020-03-16")], 82.69);
    assert_eq!(h.vix[at(h, "2022-12-28")], 22.14);
    for (i, date) in h.dates.iter().enumerate() {
        assert!(h.vix[i].is_finite(), "vix on {date}");
    }
}

#[test]
fn test_implied_vol_and_skew_when_aligned_then_inside_their_spans() {
    let h = hist();
    let aapl = h.symbol_index(&Symbol::new("AAPL").unwrap()).unwrap();
    assert_eq!(h.implied_vol.len(), 20);
    assert!((h.implied_vol(aapl, at(h, "2010-01-04")).unwrap() - 0.3643533094223549).abs() < 1e-15);
    assert!(h.implied_vol(aapl, at(h, "2009-12-31")).is_none());
    let covered = (0..20)
        .filter(|s| h.implied_vol(*s, at(h, "2022-12-28")).is_some())
        .count();
    assert_eq!(covered, 20);
    assert_eq!(h.skew_index.len(), h.dates.len());
    assert!(h.skew_index.iter().all(|v| v.is_finite() && *v > 90.0));
}

#[test]
fn test_rates_when_filled_then_never_nan_and_within_0_to_9_percent() {
    let h = hist();
    assert!(
        h.rates
            .iter()
            .all(|r| r.is_finite() && (0.0..0.09).contains(r))
    );
    let r = |date: &str| h.rates[at(h, date)];
    let cc = data::rate_from_yield;
    for y in [0.0, 0.0005, 0.0783, 0.2] {
        assert!((cc(y) - (1.0 + y).ln()).abs() < 1e-15);
    }
    assert_eq!(r("1990-01-02"), cc(0.0783));
    // Columbus Day: the bond market is shut, stocks trade: last value holds.
    assert_eq!(r("1990-10-08"), cc(0.0727));
    assert_eq!(r("1990-10-09"), cc(0.0741));
    assert_eq!(r("2008-12-10"), 0.0);
    assert_eq!(r("2017-03-29"), cc(0.0078));
    // After the Treasury file ends: the documented annual averages.
    assert_eq!(r("2017-03-30"), cc(0.0093));
    assert_eq!(r("2018-06-01"), cc(0.0194));
    assert_eq!(r("2019-06-03"), cc(0.0206));
    assert_eq!(r("2020-06-01"), cc(0.0037));
    assert_eq!(r("2021-06-01"), cc(0.0005));
    assert_eq!(r("2022-12-28"), cc(0.0202));
}

#[test]
fn test_sp500_ohlc_when_loaded_then_equals_the_csv() {
    let o = data::sp500_ohlc().unwrap();
    assert_eq!(o.dates.len(), 5031);
    assert_eq!(o.dates[0], d("1999-01-04"));
    assert_eq!(
        (o.open[0], o.high[0], o.low[0], o.close[0], o.volume[0]),
        (
            1229.22998,
            1248.810059,
            1219.099976,
            1228.099976,
            877_000_000.0
        )
    );
    let last = o.dates.len() - 1;
    assert_eq!(o.dates[last], d("2018-12-31"));
    assert_eq!(o.close[last], 2506.850098);
    assert_eq!(o.volume[last], 3_442_870_000.0);
    for i in 0..o.dates.len() {
        assert!(o.low[i] <= o.open[i].min(o.close[i]) && o.high[i] >= o.open[i].max(o.close[i]));
    }
    assert_eq!(*o, data::load_sp500_ohlc().unwrap());
}

/// The embedded gzip files decompress to exactly the CSVs in
/// `../shared/data`. Reads `../shared` and skips when it is absent.
#[test]
fn test_embedded_files_when_shared_data_present_then_byte_identical() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if !shared.is_dir() {
        eprintln!("skipped: {} is absent (fresh clone)", shared.display());
        return;
    }
    for name in data::SHIPPED_FILES {
        let embedded = data::embedded_csv(name).unwrap().unwrap();
        let original = match std::fs::read(shared.join(name)) {
            Ok(bytes) => bytes,
            // The newer files are kept gzipped in `../shared/data`.
            Err(_) => {
                let gz = std::fs::read(shared.join(format!("{name}.gz"))).unwrap();
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
                    .unwrap();
                out
            }
        };
        assert!(embedded == original, "{name} differs from ../shared/data");
    }
    assert!(data::embedded_csv("nope.csv").is_none());
}

/// Load time of the whole history. Only meaningful in release builds
/// (`cargo test --release -p market-sim --test data`), where it must be well
/// under 100 ms; debug builds only print it.
#[test]
fn test_load_real_history_when_timed_then_well_under_100_ms_in_release() {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let h = data::load_real_history().unwrap();
        best = best.min(t.elapsed());
        assert_eq!(h.dates.len(), 8313);
    }
    eprintln!("load_real_history: {best:?} (best of 3)");
    if !cfg!(debug_assertions) {
        assert!(best < Duration::from_millis(100), "took {best:?}");
    }
}

// --- malformed input -------------------------------------------------------

const EQ: &str = "Date,AAA,BBB\n2020-01-02,1.5,2.5\n2020-01-03,1.6,2.6\n2020-01-06,1.7,2.7\n";
const SECTORS: &str = "symbol,sector,name\nAAA,Energy,Aaa Corp.\nBBB,Financials,Bbb Inc.\n";
const SP: &str = "date,open,high,low,close,adj_close,volume\n2020-01-03,10,11,9,10.5,10.5,100\n";
const VIX: &str = "date,vix\n2020-01-02,.\n2020-01-03,13.5\n";
const TSY: &str = "date,1month,3month\n2020-01-03,,0.015\n";

fn build(eq: &str, sectors: &str, sp: &str, vix: &str, tsy: &str) -> Result<History, DataError> {
    data::build_history(&CsvSources {
        equities: eq.as_bytes(),
        sectors: sectors.as_bytes(),
        sp500: sp.as_bytes(),
        vix: vix.as_bytes(),
        treasury: tsy.as_bytes(),
    })
}

fn assert_malformed(err: DataError, file: &str, line: usize, column: usize) {
    match &err {
        DataError::Malformed {
            file: f,
            line: l,
            column: c,
            ..
        } => assert_eq!((f.as_str(), *l, *c), (file, line, column), "{err}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(file) && text.contains(&format!("line {line}")),
        "{text}"
    );
}

#[test]
fn test_build_history_when_inputs_are_small_and_valid_then_aligns_and_fills() {
    let h = build(EQ, SECTORS, SP, VIX, TSY).unwrap();
    assert_eq!(h.dates, [d("2020-01-02"), d("2020-01-03"), d("2020-01-06")]);
    assert_eq!(h.closes[1], [2.5, 2.6, 2.7]);
    assert!(h.index[0].is_nan() && h.index[1] == 10.5 && h.index[2].is_nan());
    assert!(h.vix[0].is_nan() && h.vix[1] == 13.5 && h.vix[2].is_nan());
    let cc = data::rate_from_yield(0.015);
    // Before the first value: the first value. After the file ends (2020):
    // the annual average.
    assert_eq!(h.rates, [cc, cc, data::rate_from_yield(0.0037)]);
}

#[test]
fn test_parse_when_crlf_line_ends_then_accepted() {
    let t = data::parse_dated_csv("x.csv", b"date,v\r\n2020-01-02,1\r\n2020-01-03,\r\n").unwrap();
    assert_eq!(t.columns, ["v"]);
    assert_eq!(t.values[0][0], 1.0);
    assert!(t.values[0][1].is_nan());
}

#[test]
fn test_parse_when_bad_number_then_error_names_line_and_column() {
    let eq = EQ.replace("2.6", "2.6x");
    let err = build(&eq, SECTORS, SP, VIX, TSY).unwrap_err();
    assert_malformed(err, EQUITIES_FILE, 3, 3);
    let err = data::parse_dated_csv("x.csv", b"date,v\n2020-01-02,inf\n").unwrap_err();
    assert_malformed(err, "x.csv", 2, 2);
}

#[test]
fn test_parse_when_field_missing_then_error_names_line_and_column() {
    let eq = EQ.replace("2020-01-06,1.7,2.7", "2020-01-06,1.7");
    let err = build(&eq, SECTORS, SP, VIX, TSY).unwrap_err();
    assert_malformed(err, EQUITIES_FILE, 4, 3);
}

#[test]
fn test_parse_when_extra_field_then_error_names_line() {
    let vix = VIX.replace("2020-01-03,13.5", "2020-01-03,13.5,1");
    let err = build(EQ, SECTORS, SP, &vix, TSY).unwrap_err();
    assert_malformed(err, VIX_FILE, 3, 3);
}

#[test]
fn test_parse_when_date_not_ascending_then_error_names_line() {
    let eq = EQ.replace("2020-01-06", "2020-01-03");
    let err = build(&eq, SECTORS, SP, VIX, TSY).unwrap_err();
    assert_malformed(err, EQUITIES_FILE, 4, 1);
    let tsy = "date,3month\n2020-01-03,0.01\n2020-01-02,0.01\n";
    assert_malformed(
        build(EQ, SECTORS, SP, VIX, tsy).unwrap_err(),
        TREASURY_FILE,
        3,
        1,
    );
}

#[test]
fn test_parse_when_date_invalid_then_error_names_line() {
    let eq = EQ.replace("2020-01-03", "2020-02-30");
    assert_malformed(
        build(&eq, SECTORS, SP, VIX, TSY).unwrap_err(),
        EQUITIES_FILE,
        3,
        1,
    );
    let eq = EQ.replace("2020-01-03", "01/03/2020");
    assert_malformed(
        build(&eq, SECTORS, SP, VIX, TSY).unwrap_err(),
        EQUITIES_FILE,
        3,
        1,
    );
}

#[test]
fn test_parse_when_empty_line_inside_then_error_names_line() {
    let eq = EQ.replace("2.6\n", "2.6\n\n");
    assert_malformed(
        build(&eq, SECTORS, SP, VIX, TSY).unwrap_err(),
        EQUITIES_FILE,
        4,
        1,
    );
}

#[test]
fn test_build_when_header_lacks_a_needed_column_then_missing_column_error() {
    let err = build(EQ, SECTORS, SP, "date,vx\n2020-01-03,13.5\n", TSY).unwrap_err();
    assert_eq!(
        err,
        DataError::MissingColumn {
            file: VIX_FILE.into(),
            column: "CLOSE".into()
        }
    );
    let err = build(
        EQ,
        SECTORS,
        SP.replace("close,adj", "cls,adj").as_str(),
        VIX,
        TSY,
    );
    assert!(matches!(err, Err(DataError::MissingColumn { file, .. }) if file == SP500_FILE));
}

#[test]
fn test_build_when_symbol_has_no_sector_then_inconsistent() {
    let sectors = "symbol,sector,name\nAAA,Energy,Aaa Corp.\n";
    let err = build(EQ, sectors, SP, VIX, TSY).unwrap_err();
    assert!(
        matches!(&err, DataError::Inconsistent { file, .. } if file == SECTORS_FILE),
        "{err}"
    );
    assert!(err.to_string().contains("BBB"));
}

#[test]
fn test_parse_sectors_when_malformed_then_error_names_line_and_column() {
    let err = data::parse_sectors(SECTORS_FILE, b"symbol,sector,name\nA A!,Energy,X\n");
    assert_malformed(err.unwrap_err(), SECTORS_FILE, 2, 1);
    let err = data::parse_sectors(SECTORS_FILE, b"symbol,sector,name\nAAA,Energy\n");
    assert_malformed(err.unwrap_err(), SECTORS_FILE, 2, 3);
    let err = data::parse_sectors(SECTORS_FILE, b"symbol,sector,name\nAAA,E,X\naaa,E,Y\n");
    assert_malformed(err.unwrap_err(), SECTORS_FILE, 3, 1);
}

#[test]
fn test_build_when_price_not_positive_then_error_names_line() {
    let eq = EQ.replace("1.6", "0");
    assert_malformed(
        build(&eq, SECTORS, SP, VIX, TSY).unwrap_err(),
        EQUITIES_FILE,
        3,
        2,
    );
}

#[test]
fn test_build_when_treasury_column_empty_then_inconsistent() {
    let err = build(EQ, SECTORS, SP, VIX, "date,3month\n2020-01-03,\n").unwrap_err();
    assert!(matches!(err, DataError::Inconsistent { file, .. } if file == TREASURY_FILE));
}

#[test]
fn test_parse_when_invalid_utf8_or_bad_header_then_malformed() {
    let err = data::parse_dated_csv("x.csv", b"date,v\n2020-01-02,\xff\n").unwrap_err();
    assert_malformed(err, "x.csv", 2, 2);
    let err = data::parse_dated_csv("x.csv", b"date\n2020-01-02\n").unwrap_err();
    assert_malformed(err, "x.csv", 1, 1);
    let err = data::parse_dated_csv("x.csv", b"date,v,v\n").unwrap_err();
    assert_malformed(err, "x.csv", 1, 3);
    let err = data::parse_dated_csv("x.csv", b"").unwrap_err();
    assert_malformed(err, "x.csv", 1, 1);
}

#[test]
fn test_parse_ohlc_when_value_missing_then_error_names_line() {
    let csv =
        "date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,,0.5,1.5,10\n";
    let err = data::parse_ohlc_csv(SP500_FILE, csv.as_bytes()).unwrap_err();
    assert_malformed(err, SP500_FILE, 3, 3);
}
