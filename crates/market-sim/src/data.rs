//! The real daily history shipped inside the crate (`data/*.csv.gz`, see
//! `data/README.md` for sources and licences), parsed into the aligned
//! [`History`] every model reads.
//!
//! The CSV files are embedded with `include_bytes!` as gzip and
//! decompressed at load, so a fresh clone needs nothing outside the
//! repository. [`real_history`] loads once per process and caches the
//! result; [`load_real_history`] parses afresh on every call.
//!
//! What the loader produces (all series aligned on the equity file's dates,
//! which are NYSE sessions 1990-01-02 … 2022-12-28):
//! - `closes`: the 20 adjusted closes, in the equity file's column order,
//!   with sector and name from `sectors.csv`;
//! - `index`: the S&P 500 close 1999-01-04 … 2018-12-31 and, outside it,
//!   the equal-weight proxy of [`fill_index_proxy`];
//! - `vix`: the CBOE VIX close on every session (the 4 sessions the file
//!   misses carry the previous close, [`carry_forward`]);
//! - `implied_vol`: the real 3-month ATM IV of the 20 stocks, 2010-01-04 …
//!   2022-12-28, NaN elsewhere; `skew_index`: the CBOE SKEW, every session;
//! - `rates`: the 3-month Treasury yield as a continuously compounded rate,
//!   never NaN; see [`rate_from_yield`] and [`TBILL_3M_ANNUAL_AVERAGES`] for
//!   how gaps and the years after the Treasury file ends are filled.
//!
//! Known quirks of the data (kept as published, not repaired): RRC repeats
//! the same close for weeks at a time in 1990–1992 (up to 68 sessions) and
//! falls 67% on 1990-04-10; prices are split- and dividend-adjusted, so
//! early years have small prices rounded to 3 decimals.
//!
//! CSV dialect understood by [`parse_dated_csv`]: comma separated, no
//! quoting, `\n` or `\r\n` line ends, a header line, first column an ISO
//! date (`YYYY-MM-DD`) strictly ascending, every other field a finite
//! decimal number or empty / `.` for "missing" (read as NaN).

use std::io::Read;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use core_domain::Symbol;
use flate2::read::GzDecoder;

use crate::history::{History, SymbolInfo};

/// Daily adjusted closes of the 20 stocks (skfolio, BSD-3-Clause).
pub const EQUITIES_FILE: &str = "equities_adjclose_1990_2022.csv";
/// GICS sector and name of each stock.
pub const SECTORS_FILE: &str = "sectors.csv";
/// S&P 500 index daily OHLC and volume (arch package data, NCSA).
pub const SP500_FILE: &str = "sp500_index_ohlcv_1999_2018.csv";
/// CBOE VIX daily open/high/low/close, 1990-01-02 … 2026-03-27 (dates
/// MM/DD/YYYY, read by [`us_dates_to_iso`]).
pub const VIX_FILE: &str = "vix_ohlc_1990_2026.csv";
/// Real 3-month at-the-money implied volatility of the 20 stocks, daily,
/// as a fraction, 2010-01-04 … 2022-12-28 (skfolio-datasets, BSD-3).
pub const IMPLIED_VOL_FILE: &str = "stock_implied_vol_3m_2010_2022.csv";
/// CBOE SKEW index, daily (dates MM/DD/YYYY), 1990 … 2026.
pub const SKEW_FILE: &str = "cboe_skew_1990_2026.csv";
/// US Treasury constant-maturity yields, decimals (zipline-reloaded, Apache-2.0).
pub const TREASURY_FILE: &str = "treasury_yields_1990_2017.csv";

static EQUITIES_GZ: &[u8] = include_bytes!("../data/equities_adjclose_1990_2022.csv.gz");
static SECTORS_GZ: &[u8] = include_bytes!("../data/sectors.csv.gz");
static SP500_GZ: &[u8] = include_bytes!("../data/sp500_index_ohlcv_1999_2018.csv.gz");
static VIX_GZ: &[u8] = include_bytes!("../data/vix_ohlc_1990_2026.csv.gz");
static IMPLIED_VOL_GZ: &[u8] = include_bytes!("../data/stock_implied_vol_3m_2010_2022.csv.gz");
static SKEW_GZ: &[u8] = include_bytes!("../data/cboe_skew_1990_2026.csv.gz");
static TREASURY_GZ: &[u8] = include_bytes!("../data/treasury_yields_1990_2017.csv.gz");

/// The Treasury column the risk-free rate is taken from.
pub const TREASURY_RATE_COLUMN: &str = "3month";

/// Annual averages of the 3-month Treasury bill secondary-market rate
/// (FRED series TB3MS, Board of Governors H.15, discount basis), as
/// decimals, used for sessions after the Treasury file ends (2017-03-29).
///
/// This is an approximation: one flat value a year (2022 rose from 0.15%
/// in January to 4.25% in December), and a discount-basis yield standing
/// in for the file's bond-equivalent constant-maturity yield (they differ
/// by a few basis points). Each value was checked against the mean of the
/// twelve published monthly TB3MS values of its year. Years after the last
/// entry use the last entry.
pub const TBILL_3M_ANNUAL_AVERAGES: &[(i32, f64)] = &[
    (2017, 0.0093),
    (2018, 0.0194),
    (2019, 0.0206),
    (2020, 0.0037),
    (2021, 0.0005),
    (2022, 0.0202),
];

/// What went wrong loading or parsing the shipped data. Every variant names
/// the file; malformed input also names the 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The embedded gzip stream could not be decompressed (a corrupt build).
    #[error("{file}: cannot decompress the embedded gzip data: {message}")]
    Decompress { file: String, message: String },
    /// A field or line does not follow the CSV dialect (see the module docs).
    /// `line` and `column` are 1-based; line 1 is the header.
    #[error("{file}, line {line}, column {column} ({column_name}): {message}")]
    Malformed {
        file: String,
        line: usize,
        column: usize,
        column_name: String,
        message: String,
    },
    /// The header lacks a column the loader needs.
    #[error("{file}: the header has no column {column:?}")]
    MissingColumn { file: String, column: String },
    /// The files parse but do not fit together (e.g. a symbol with no sector).
    #[error("{file}: {message}")]
    Inconsistent { file: String, message: String },
    /// The assembled history failed [`History::validate`].
    #[error("the assembled history is invalid: {0}")]
    Invalid(String),
}

/// A parsed CSV table: an ascending date column and numeric columns.
#[derive(Debug, Clone, PartialEq)]
pub struct DatedTable {
    /// Header names of the numeric columns (the date column excluded), in
    /// file order.
    pub columns: Vec<String>,
    /// Strictly ascending dates, one per data line.
    pub dates: Vec<NaiveDate>,
    /// `values[c][r]`: column `columns[c]` on `dates[r]`; NaN where missing.
    pub values: Vec<Vec<f64>>,
}

impl DatedTable {
    /// The values of the column named `name`, if the header has it.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.values.get(i))
            .map(Vec::as_slice)
    }

    /// The 1-based file line of data row `row` (the header is line 1).
    pub fn line_of_row(row: usize) -> usize {
        row + 2
    }
}

/// Daily OHLC bars with volume, for consumers that need more than closes.
#[derive(Debug, Clone, PartialEq)]
pub struct OhlcSeries {
    /// Strictly ascending sessions.
    pub dates: Vec<NaiveDate>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    /// Shares traded (integral values, held as f64).
    pub volume: Vec<f64>,
}

/// Raw (decompressed) CSV bytes of the five files [`build_history`] joins.
/// Error messages name each input by the real file's name
/// ([`EQUITIES_FILE`] etc.).
#[derive(Debug, Clone, Copy)]
pub struct CsvSources<'a> {
    pub equities: &'a [u8],
    pub sectors: &'a [u8],
    pub sp500: &'a [u8],
    pub vix: &'a [u8],
    pub treasury: &'a [u8],
}

/// The shipped history, loaded on first call and cached for the life of
/// the process; later calls cost nothing. A load error is cached too and
/// returned (cloned) on every call.
pub fn real_history() -> Result<&'static History, DataError> {
    static REAL: OnceLock<Result<History, DataError>> = OnceLock::new();
    REAL.get_or_init(load_real_history)
        .as_ref()
        .map_err(Clone::clone)
}

/// Decompresses and parses the shipped CSV files into a validated
/// [`History`] (see the module docs for what each series holds). Parses
/// afresh on every call; use [`real_history`] for the cached copy.
pub fn load_real_history() -> Result<History, DataError> {
    let equities = gunzip(EQUITIES_FILE, EQUITIES_GZ)?;
    let sectors = gunzip(SECTORS_FILE, SECTORS_GZ)?;
    let sp500 = gunzip(SP500_FILE, SP500_GZ)?;
    let vix = gunzip(VIX_FILE, VIX_GZ)?;
    let treasury = gunzip(TREASURY_FILE, TREASURY_GZ)?;
    let mut history = build_history(&CsvSources {
        equities: &equities,
        sectors: &sectors,
        sp500: &sp500,
        vix: &vix,
        treasury: &treasury,
    })?;
    let implied = gunzip(IMPLIED_VOL_FILE, IMPLIED_VOL_GZ)?;
    attach_implied_vol(&mut history, &implied)?;
    let skew = gunzip(SKEW_FILE, SKEW_GZ)?;
    attach_skew_index(&mut history, &skew)?;
    carry_forward(&mut history.vix);
    carry_forward(&mut history.skew_index);
    fill_index_proxy(&mut history);
    history.validate().map_err(DataError::Invalid)?;
    Ok(history)
}

/// Sets `history.implied_vol` from a dated CSV whose columns are symbols
/// (values as fractions, empty or `.` where unknown). Symbols of the
/// history without a column get NaN throughout; columns for other symbols
/// and dates that are not sessions are ignored.
pub fn attach_implied_vol(history: &mut History, csv: &[u8]) -> Result<(), DataError> {
    let table = parse_dated_csv(IMPLIED_VOL_FILE, csv)?;
    for (c, name) in table.columns.iter().enumerate() {
        if let Some(r) = table.values[c].iter().position(|v| *v <= 0.0 || *v > 5.0) {
            return Err(malformed(
                IMPLIED_VOL_FILE,
                DatedTable::line_of_row(r),
                c + 2,
                name,
                format!(
                    "implied volatility {} is not a fraction in (0, 5]",
                    table.values[c][r]
                ),
            ));
        }
    }
    let n = history.dates.len();
    history.implied_vol = history
        .symbols
        .iter()
        .map(|info| match table.column(info.symbol.as_str()) {
            Some(col) => align(&history.dates, &table.dates, col),
            None => vec![f64::NAN; n],
        })
        .collect();
    Ok(())
}

/// Sets `history.skew_index` from the CBOE SKEW file (`DATE,SKEW`, dates
/// MM/DD/YYYY or ISO).
pub fn attach_skew_index(history: &mut History, csv: &[u8]) -> Result<(), DataError> {
    let iso = us_dates_to_iso(SKEW_FILE, csv)?;
    let table = parse_dated_csv(SKEW_FILE, &iso)?;
    let c = column_index(SKEW_FILE, &table, "SKEW")?;
    require_positive(SKEW_FILE, &table, c, "SKEW")?;
    history.skew_index = align(&history.dates, &table.dates, &table.values[c]);
    Ok(())
}

/// Fills each NaN after the first known value with the last known value
/// (the VIX file misses 4 sessions of 1990–2022, the SKEW file 15).
pub fn carry_forward(series: &mut [f64]) {
    let mut last = f64::NAN;
    for v in series.iter_mut() {
        if v.is_finite() {
            last = *v;
        } else {
            *v = last;
        }
    }
}

/// First session of the real S&P 500 series in the shipped history.
pub const SP500_FIRST: &str = "1999-01-04";
/// Last session of the real S&P 500 series in the shipped history.
pub const SP500_LAST: &str = "2018-12-31";

/// Fills the sessions where the index is unknown (before the S&P 500 file
/// starts and after it ends) with a documented proxy: an equal-weight
/// index of the history's stocks (the mean of their daily log returns,
/// over the stocks with a close on both sessions), chained backward from
/// the first known index close and forward from the last one. Gaps inside
/// the known span are left as they are. Does nothing when the index is
/// unknown throughout or there are no stocks.
pub fn fill_index_proxy(history: &mut History) {
    let n = history.dates.len();
    let known = |i: &f64| i.is_finite() && *i > 0.0;
    let (Some(first), Some(last)) = (
        history.index.iter().position(known),
        history.index.iter().rposition(known),
    ) else {
        return;
    };
    if history.closes.is_empty() {
        return;
    }
    let mean_return = |d: usize| -> f64 {
        let (mut sum, mut count) = (0.0, 0usize);
        for c in &history.closes {
            let (a, b) = (c[d - 1], c[d]);
            if a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0 {
                sum += (b / a).ln();
                count += 1;
            }
        }
        if count == 0 { 0.0 } else { sum / count as f64 }
    };
    for d in (0..first).rev() {
        history.index[d] = history.index[d + 1] / mean_return(d + 1).exp();
    }
    for d in last + 1..n {
        history.index[d] = history.index[d - 1] * mean_return(d).exp();
    }
}

/// Rewrites a CSV whose first column holds US dates (`MM/DD/YYYY`) into the
/// module's ISO dialect (`YYYY-MM-DD`), header unchanged. Lines already in
/// ISO pass through. Errors name the line of a date that is neither.
pub fn us_dates_to_iso(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let text = utf8(file, bytes)?;
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        if i == 0 {
            out.push_str(raw);
            continue;
        }
        let (field, rest) = raw.split_at(raw.find(',').unwrap_or(raw.len()));
        let b = field.as_bytes();
        if b.len() == 10 && b[2] == b'/' && b[5] == b'/' {
            out.push_str(&field[6..10]);
            out.push('-');
            out.push_str(&field[0..2]);
            out.push('-');
            out.push_str(&field[3..5]);
        } else if field.trim_end_matches(['\r', '\n']).is_empty() || parse_date(field).is_some() {
            out.push_str(field);
        } else {
            return Err(malformed(
                file,
                i + 1,
                1,
                "DATE",
                format!("{field:?} is not a date (MM/DD/YYYY or YYYY-MM-DD)"),
            ));
        }
        out.push_str(rest);
    }
    Ok(out.into_bytes())
}

/// The S&P 500 daily OHLC and volume, 1999-01-04 … 2018-12-31, on its own
/// dates (all NYSE sessions of that span). Parses afresh on every call; use
/// [`sp500_ohlc`] for the cached copy.
pub fn load_sp500_ohlc() -> Result<OhlcSeries, DataError> {
    let bytes = gunzip(SP500_FILE, SP500_GZ)?;
    parse_ohlc_csv(SP500_FILE, &bytes)
}

/// [`load_sp500_ohlc`], loaded once per process and cached.
pub fn sp500_ohlc() -> Result<&'static OhlcSeries, DataError> {
    static OHLC: OnceLock<Result<OhlcSeries, DataError>> = OnceLock::new();
    OHLC.get_or_init(load_sp500_ohlc)
        .as_ref()
        .map_err(Clone::clone)
}

/// Joins the five files into a [`History`] on the equity file's dates and
/// checks it with [`History::validate`].
///
/// Contract: every equity column must have a row in the sectors file
/// (extra sector rows are ignored); prices (closes, S&P 500, VIX) must be
/// positive where present; the Treasury file must have a
/// [`TREASURY_RATE_COLUMN`] with at least one value. Rows of the S&P 500,
/// VIX and Treasury files on dates that are not equity dates are ignored.
/// Rates: each session takes the latest Treasury value on or before it
/// (the first value before the file starts); sessions after the file's last
/// value take [`TBILL_3M_ANNUAL_AVERAGES`] for their year (the last known
/// value for years before the table's first); all converted by
/// [`rate_from_yield`].
pub fn build_history(src: &CsvSources<'_>) -> Result<History, DataError> {
    let equities = parse_dated_csv(EQUITIES_FILE, src.equities)?;
    let sectors = parse_sectors(SECTORS_FILE, src.sectors)?;
    let sp500 = parse_dated_csv(SP500_FILE, src.sp500)?;
    let vix = parse_dated_csv(VIX_FILE, &us_dates_to_iso(VIX_FILE, src.vix)?)?;
    let treasury = parse_dated_csv(TREASURY_FILE, src.treasury)?;

    let mut symbols = Vec::with_capacity(equities.columns.len());
    for name in &equities.columns {
        let info = sectors
            .iter()
            .find(|s| s.symbol.as_str() == name)
            .ok_or_else(|| DataError::Inconsistent {
                file: SECTORS_FILE.into(),
                message: format!("no row for symbol {name} of {EQUITIES_FILE}"),
            })?;
        symbols.push(info.clone());
    }
    for (c, name) in equities.columns.iter().enumerate() {
        require_positive(EQUITIES_FILE, &equities, c, name)?;
    }

    let index_col = column_index(SP500_FILE, &sp500, "close")?;
    require_positive(SP500_FILE, &sp500, index_col, "close")?;
    // The CBOE file's close; `vix` for a one-column `date,vix` file.
    let vix_name = if vix.column("vix").is_some() {
        "vix"
    } else {
        "CLOSE"
    };
    let vix_col = column_index(VIX_FILE, &vix, vix_name)?;
    require_positive(VIX_FILE, &vix, vix_col, vix_name)?;
    let rate_col = column_index(TREASURY_FILE, &treasury, TREASURY_RATE_COLUMN)?;

    let sessions = &equities.dates;
    let index = align(sessions, &sp500.dates, &sp500.values[index_col]);
    let vix_aligned = align(sessions, &vix.dates, &vix.values[vix_col]);
    let rates = fill_rates(sessions, &treasury.dates, &treasury.values[rate_col])?;

    let history = History {
        dates: equities.dates,
        symbols,
        closes: equities.values,
        index,
        vix: vix_aligned,
        rates,
        implied_vol: Vec::new(),
        skew_index: Vec::new(),
        volumes: Vec::new(),
    };
    history.validate().map_err(DataError::Invalid)?;
    Ok(history)
}

/// The continuously compounded rate for an annual yield `y` (decimal):
/// `ln(1 + y)`, i.e. `y` read as an annually compounded rate.
///
/// An approximation, chosen for simplicity: the 3-month yield is really a
/// simple-interest rate over about 91 days, whose exact equivalent
/// `(365/91)·ln(1 + y·91/365)` is higher by about `0.375·y²` (1.5 bp at 2%,
/// 9 bp at 5%, 23 bp at the 8% of 1990): immaterial for the option prices
/// this feeds.
pub fn rate_from_yield(y: f64) -> f64 {
    y.ln_1p()
}

/// Parses a CSV file of the module's dialect. `file` only names the input
/// in errors.
///
/// Errors (each naming file, 1-based line and column): invalid UTF-8, an
/// empty file or header, a duplicate header name, a line with too few or
/// too many fields, a quote character, an invalid or non-ascending date, a
/// number that does not parse or is not finite, an empty line before the
/// end.
pub fn parse_dated_csv(file: &str, bytes: &[u8]) -> Result<DatedTable, DataError> {
    let text = utf8(file, bytes)?;
    let mut lines = text.split('\n');
    let header_line = lines.next().map(trim_cr).unwrap_or_default();
    let header: Vec<&str> = header_line.split(',').collect();
    check_header(file, &header)?;
    let ncols = header.len() - 1;
    let columns: Vec<String> = header[1..].iter().map(|s| (*s).to_owned()).collect();

    // At most one data row per remaining line: no regrowth on large files.
    let max_rows = bytes.iter().filter(|b| **b == b'\n').count();
    let mut dates: Vec<NaiveDate> = Vec::with_capacity(max_rows);
    let mut values: Vec<Vec<f64>> = (0..ncols).map(|_| Vec::with_capacity(max_rows)).collect();

    let mut lines = lines.enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let line_no = i + 2;
        let line = trim_cr(raw);
        if line.is_empty() {
            if lines.peek().is_none() {
                break; // the newline at the end of the file
            }
            return Err(malformed(file, line_no, 1, header[0], "empty line"));
        }
        let mut fields = line.split(',');
        let date_field = fields.next().unwrap_or_default();
        let date = parse_date(date_field)
            .ok_or_else(|| malformed(file, line_no, 1, header[0], bad_date_message(date_field)))?;
        if let Some(prev) = dates.last()
            && date <= *prev
        {
            return Err(malformed(
                file,
                line_no,
                1,
                header[0],
                format!("date {date} is not after the previous line's {prev}"),
            ));
        }
        for (c, column) in values.iter_mut().enumerate() {
            let col_no = c + 2;
            let field = fields.next().ok_or_else(|| {
                malformed(
                    file,
                    line_no,
                    col_no,
                    header[col_no - 1],
                    format!("missing field: expected {} fields", header.len()),
                )
            })?;
            let v = parse_value(field)
                .map_err(|m| malformed(file, line_no, col_no, header[col_no - 1], m))?;
            column.push(v);
        }
        if fields.next().is_some() {
            let col_no = header.len() + 1;
            return Err(malformed(
                file,
                line_no,
                col_no,
                "(none)",
                format!("extra field: expected {} fields", header.len()),
            ));
        }
        dates.push(date);
    }
    Ok(DatedTable {
        columns,
        dates,
        values,
    })
}

/// Parses `symbol,sector,name` lines (columns found by header name, any
/// order, extra columns ignored) into [`SymbolInfo`]s in file order.
/// Errors name the line and column of an invalid symbol, a duplicate
/// symbol, an empty field or a wrong field count.
pub fn parse_sectors(file: &str, bytes: &[u8]) -> Result<Vec<SymbolInfo>, DataError> {
    let text = utf8(file, bytes)?;
    let mut lines = text.split('\n');
    let header: Vec<&str> = lines
        .next()
        .map(trim_cr)
        .unwrap_or_default()
        .split(',')
        .collect();
    check_header(file, &header)?;
    let find = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| DataError::MissingColumn {
                file: file.into(),
                column: name.into(),
            })
    };
    let (ci_symbol, ci_sector, ci_name) = (find("symbol")?, find("sector")?, find("name")?);

    let mut out: Vec<SymbolInfo> = Vec::new();
    let mut lines = lines.enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let line_no = i + 2;
        let line = trim_cr(raw);
        if line.is_empty() {
            if lines.peek().is_none() {
                break;
            }
            return Err(malformed(file, line_no, 1, header[0], "empty line"));
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != header.len() {
            let col = fields.len().min(header.len()) + 1;
            let name = header.get(col - 1).copied().unwrap_or("(none)");
            return Err(malformed(
                file,
                line_no,
                col,
                name,
                format!("{} fields, expected {}", fields.len(), header.len()),
            ));
        }
        if let Some(c) = fields.iter().position(|f| f.contains('"')) {
            return Err(malformed(
                file,
                line_no,
                c + 1,
                header[c],
                "quoted fields are not supported",
            ));
        }
        for &c in &[ci_symbol, ci_sector, ci_name] {
            if fields[c].trim().is_empty() {
                return Err(malformed(file, line_no, c + 1, header[c], "empty field"));
            }
        }
        let symbol = Symbol::new(fields[ci_symbol]).map_err(|e| {
            malformed(
                file,
                line_no,
                ci_symbol + 1,
                header[ci_symbol],
                e.to_string(),
            )
        })?;
        if out.iter().any(|s| s.symbol == symbol) {
            return Err(malformed(
                file,
                line_no,
                ci_symbol + 1,
                header[ci_symbol],
                format!("duplicate symbol {}", symbol.as_str()),
            ));
        }
        out.push(SymbolInfo {
            symbol,
            sector: fields[ci_sector].to_owned(),
            name: fields[ci_name].to_owned(),
        });
    }
    Ok(out)
}

/// Parses an OHLCV file (columns `open`, `high`, `low`, `close`, `volume`
/// found by header name after the date column; others such as `adj_close`
/// ignored). Every value must be present and positive (volume may be 0).
pub fn parse_ohlc_csv(file: &str, bytes: &[u8]) -> Result<OhlcSeries, DataError> {
    let mut table = parse_dated_csv(file, bytes)?;
    let mut take = |name: &str, allow_zero: bool| -> Result<Vec<f64>, DataError> {
        let c = column_index(file, &table, name)?;
        for (r, v) in table.values[c].iter().enumerate() {
            let ok = if allow_zero { *v >= 0.0 } else { *v > 0.0 };
            if !ok {
                return Err(malformed(
                    file,
                    DatedTable::line_of_row(r),
                    c + 2,
                    name,
                    format!("value {v} must be present and positive"),
                ));
            }
        }
        Ok(std::mem::take(&mut table.values[c]))
    };
    let open = take("open", false)?;
    let high = take("high", false)?;
    let low = take("low", false)?;
    let close = take("close", false)?;
    let volume = take("volume", true)?;
    Ok(OhlcSeries {
        dates: table.dates,
        open,
        high,
        low,
        close,
        volume,
    })
}

/// The names of the shipped CSV files, in no particular order.
pub const SHIPPED_FILES: [&str; 7] = [
    EQUITIES_FILE,
    SECTORS_FILE,
    SP500_FILE,
    VIX_FILE,
    TREASURY_FILE,
    IMPLIED_VOL_FILE,
    SKEW_FILE,
];

/// The decompressed bytes of the shipped file `name` (one of
/// [`SHIPPED_FILES`]), exactly as in the original CSV; None for any other
/// name.
pub fn embedded_csv(name: &str) -> Option<Result<Vec<u8>, DataError>> {
    let gz = match name {
        EQUITIES_FILE => EQUITIES_GZ,
        SECTORS_FILE => SECTORS_GZ,
        SP500_FILE => SP500_GZ,
        VIX_FILE => VIX_GZ,
        TREASURY_FILE => TREASURY_GZ,
        IMPLIED_VOL_FILE => IMPLIED_VOL_GZ,
        SKEW_FILE => SKEW_GZ,
        _ => return None,
    };
    Some(gunzip(name, gz))
}

pub(crate) fn gunzip(file: &str, gz: &[u8]) -> Result<Vec<u8>, DataError> {
    // The files compress about 3-4x; reserving avoids most regrowth.
    let mut out = Vec::with_capacity(gz.len() * 4);
    GzDecoder::new(gz)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Decompress {
            file: file.into(),
            message: e.to_string(),
        })?;
    Ok(out)
}

pub(crate) fn utf8<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, DataError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let upto = &bytes[..e.valid_up_to()];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = upto.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let column = upto[line_start..].iter().filter(|b| **b == b',').count() + 1;
        malformed(file, line, column, "?", "invalid UTF-8")
    })
}

fn check_header(file: &str, header: &[&str]) -> Result<(), DataError> {
    if header.len() < 2 {
        return Err(malformed(
            file,
            1,
            1,
            header.first().copied().unwrap_or(""),
            "the header needs a date column and at least one more column",
        ));
    }
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(malformed(file, 1, i + 1, "", "empty column name"));
        }
        if name.contains('"') {
            return Err(malformed(
                file,
                1,
                i + 1,
                name,
                "quoted fields are not supported",
            ));
        }
        if header[..i].contains(name) {
            return Err(malformed(file, 1, i + 1, name, "duplicate column name"));
        }
    }
    Ok(())
}

pub(crate) fn column_index(file: &str, table: &DatedTable, name: &str) -> Result<usize, DataError> {
    table
        .columns
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| DataError::MissingColumn {
            file: file.into(),
            column: name.into(),
        })
}

/// Prices must be positive where present (NaN = missing is allowed).
fn require_positive(file: &str, table: &DatedTable, c: usize, name: &str) -> Result<(), DataError> {
    match table.values[c].iter().position(|v| *v <= 0.0) {
        None => Ok(()),
        Some(r) => Err(malformed(
            file,
            DatedTable::line_of_row(r),
            c + 2,
            name,
            format!("price {} is not positive", table.values[c][r]),
        )),
    }
}

pub(crate) fn malformed(
    file: &str,
    line: usize,
    column: usize,
    column_name: &str,
    message: impl Into<String>,
) -> DataError {
    DataError::Malformed {
        file: file.into(),
        line,
        column,
        column_name: column_name.into(),
        message: message.into(),
    }
}

fn trim_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// `YYYY-MM-DD`, hand-parsed (several times faster than chrono's parser).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

fn bad_date_message(field: &str) -> String {
    format!("{field:?} is not a date (YYYY-MM-DD)")
}

/// A finite number, or NaN for the missing markers `""` and `"."`.
fn parse_value(field: &str) -> Result<f64, String> {
    if field.is_empty() || field == "." {
        return Ok(f64::NAN);
    }
    if field.contains('"') {
        return Err("quoted fields are not supported".into());
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{field:?} is not a finite number")),
    }
}

/// `values` (on ascending `dates`) picked out on each of the ascending
/// `sessions`; NaN where `dates` has no such session.
pub(crate) fn align(sessions: &[NaiveDate], dates: &[NaiveDate], values: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(sessions.len());
    let mut j = 0;
    for s in sessions {
        while j < dates.len() && dates[j] < *s {
            j += 1;
        }
        out.push(if j < dates.len() && dates[j] == *s {
            values[j]
        } else {
            f64::NAN
        });
    }
    out
}

/// The rate on each session: see [`build_history`].
pub(crate) fn fill_rates(
    sessions: &[NaiveDate],
    dates: &[NaiveDate],
    yields: &[f64],
) -> Result<Vec<f64>, DataError> {
    let known = || dates.iter().zip(yields).filter(|(_, y)| y.is_finite());
    let (Some((_, first)), Some((last_date, _))) = (known().next(), known().next_back()) else {
        return Err(DataError::Inconsistent {
            file: TREASURY_FILE.into(),
            message: format!("column {TREASURY_RATE_COLUMN:?} has no value"),
        });
    };
    let mut out = Vec::with_capacity(sessions.len());
    let mut j = 0;
    let mut last_known = *first;
    for s in sessions {
        while j < dates.len() && dates[j] <= *s {
            if yields[j].is_finite() {
                last_known = yields[j];
            }
            j += 1;
        }
        let y = if s > last_date {
            annual_average(s.year()).unwrap_or(last_known)
        } else {
            last_known
        };
        out.push(rate_from_yield(y));
    }
    Ok(out)
}

/// The [`TBILL_3M_ANNUAL_AVERAGES`] value for `year`; the last entry for
/// years after the table; None for years before it.
fn annual_average(year: i32) -> Option<f64> {
    let table = TBILL_3M_ANNUAL_AVERAGES;
    if let Some((_, v)) = table.iter().find(|(y, _)| *y == year) {
        return Some(*v);
    }
    match table.last() {
        Some((y, v)) if year > *y => Some(*v),
        _ => None,
    }
}
