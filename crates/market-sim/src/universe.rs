//! The selectable universes of the simulated market (`[broker.sim]
//! universe`):
//!
//! - [`UNIVERSE_SP20`] (default): the 20 large caps with closes only,
//!   1990–2022 ([`crate::data::real_history`]);
//! - [`UNIVERSE_US421`]: 421 US stocks (today's S&P 500 members that traded
//!   at least $5M a day, median, 2005–2017) with daily open/high/low/close
//!   and volume, 2005-01-03 – 2017-11-10, GICS sectors
//!   ([`us421_history`]).
//!
//! The 421-stock file is large (21 MB gzipped), so it is not embedded in
//! the binaries: it is read at run time from the crate's `data/` directory
//! (the path is fixed at build time, [`US421_OHLCV_PATH`]).
//!
//! Caveats of the 421 stocks, printed with every backtest report that uses
//! them ([`US421_CAVEATS`]): survivorship bias (only companies still listed
//! in 2017 and later in the index: no Lehman, no delisted busts, so a
//! put-selling backtest looks better than reality) and dividend-adjusted
//! prices (early prices sit below what traded). The 105 rows the source
//! flags (`ohlc`: open/close outside the day's range; `spike`: one-day
//! decimal-shift typos that reverse the next day) are dropped: the symbol
//! has no bar that session.

use std::io::Read;
use std::sync::OnceLock;

use chrono::NaiveDate;
use core_domain::Symbol;
use flate2::read::GzDecoder;

use crate::data::{
    self, DataError, SKEW_FILE, TREASURY_FILE, TREASURY_RATE_COLUMN, VIX_FILE, align, column_index,
    malformed, parse_date, parse_dated_csv, us_dates_to_iso,
};
use crate::history::{History, SymbolInfo};

/// The 20 large caps, 1990–2022 (the default).
pub const UNIVERSE_SP20: &str = "sp20";
/// The 421 US stocks with OHLCV, 2005–2017.
pub const UNIVERSE_US421: &str = "us421";
/// Every universe name `[broker.sim] universe` accepts.
pub const UNIVERSES: [&str; 2] = [UNIVERSE_SP20, UNIVERSE_US421];

/// The 421 stocks' OHLCV file (Kaggle "Huge Stock Market Dataset", stooq
/// prices), read at run time.
pub const US421_OHLCV_FILE: &str = "us_stocks_ohlcv_2005_2017.csv.gz";
/// Where [`US421_OHLCV_FILE`] is read from.
pub const US421_OHLCV_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/us_stocks_ohlcv_2005_2017.csv.gz"
);
/// GICS sector of each of the 421 (datasets/s-and-p-500-companies, PDDL).
pub const US421_SECTORS_FILE: &str = "us_stocks_sectors.csv";
static US421_SECTORS_GZ: &[u8] = include_bytes!("../data/us_stocks_sectors.csv.gz");

/// What every backtest report over the 421 stocks must say.
pub const US421_CAVEATS: [&str; 2] = [
    "survivorship bias: the 421 stocks are companies still listed in 2017 and later in the S&P 500 \
     (no Lehman, no delisted busts), so a put-selling backtest on them looks better than reality",
    "prices are split- and dividend-adjusted (back-adjusted as of Nov 2017): early prices sit below \
     what traded (a few % for low yielders, 30-50% for high yielders), so dollar thresholds see \
     smaller numbers in early years",
];

/// The history of `universe` (one of [`UNIVERSES`]).
pub fn history_of(universe: &str) -> Result<&'static History, DataError> {
    match universe {
        UNIVERSE_SP20 => data::real_history(),
        UNIVERSE_US421 => us421_history(),
        other => Err(DataError::Inconsistent {
            file: "broker.sim.universe".into(),
            message: format!(
                "unknown universe {other:?}; one of {}",
                UNIVERSES.join(", ")
            ),
        }),
    }
}

/// The caveats to print with a report over `universe` (none for the 20).
pub fn caveats_of(universe: &str) -> &'static [&'static str] {
    if universe == UNIVERSE_US421 {
        &US421_CAVEATS
    } else {
        &[]
    }
}

/// [`load_us421_history`], loaded once per process and cached.
pub fn us421_history() -> Result<&'static History, DataError> {
    static H: OnceLock<Result<History, DataError>> = OnceLock::new();
    H.get_or_init(|| {
        let gz = std::fs::read(US421_OHLCV_PATH).map_err(|e| DataError::Inconsistent {
            file: US421_OHLCV_FILE.into(),
            message: format!("cannot read {US421_OHLCV_PATH}: {e}"),
        })?;
        let mut raw = Vec::with_capacity(gz.len() * 4);
        GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .map_err(|e| DataError::Decompress {
                file: US421_OHLCV_FILE.into(),
                message: e.to_string(),
            })?;
        let sectors = data::gunzip(US421_SECTORS_FILE, US421_SECTORS_GZ)?;
        load_us421_history(&raw, &sectors)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Builds the 421-stock history from the decompressed OHLCV CSV
/// (`ticker,date,open,high,low,close,volume,flag`, rows grouped by ticker)
/// and the sectors CSV (`ticker,gics_sector`): sessions are the S&P 500
/// file's between the first and last date of the OHLCV file; closes and
/// volumes aligned on them (NaN where a stock has no row or a flagged
/// row); the S&P 500, VIX, SKEW, rates and, for the tickers of the 20, the
/// real implied volatility as in the shipped history.
pub fn load_us421_history(ohlcv: &[u8], sectors_csv: &[u8]) -> Result<History, DataError> {
    let file = US421_OHLCV_FILE;
    let text = data::utf8(file, ohlcv)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| DataError::MissingColumn {
                file: file.into(),
                column: name.into(),
            })
    };
    let (ct, cd, cc, cv, cf) = (
        col("ticker")?,
        col("date")?,
        col("close")?,
        col("volume")?,
        col("flag")?,
    );
    // (ticker, date, close, volume) of every unflagged row.
    let mut rows: Vec<(usize, NaiveDate, f64, f64)> = Vec::with_capacity(1_300_000);
    let mut tickers: Vec<String> = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != header.len() {
            return Err(malformed(
                file,
                line_no,
                1,
                "ticker",
                format!("expected {} fields, got {}", header.len(), f.len()),
            ));
        }
        if !f[cf].is_empty() {
            continue; // flagged: dropped (see the module docs)
        }
        let date = parse_date(f[cd]).ok_or_else(|| {
            malformed(
                file,
                line_no,
                cd + 1,
                "date",
                format!("{:?} is not a date", f[cd]),
            )
        })?;
        let num = |c: usize, name: &str| -> Result<f64, DataError> {
            f[c].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    malformed(
                        file,
                        line_no,
                        c + 1,
                        name,
                        format!("{:?} is not a number", f[c]),
                    )
                })
        };
        let close = num(cc, "close")?;
        let volume = num(cv, "volume")?;
        if close <= 0.0 {
            continue;
        }
        let t = match tickers.last() {
            Some(last) if last == f[ct] => tickers.len() - 1,
            _ => match tickers.iter().position(|t| t == f[ct]) {
                Some(p) => p,
                None => {
                    tickers.push(f[ct].to_owned());
                    tickers.len() - 1
                }
            },
        };
        rows.push((t, date, close, volume));
    }
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.1).min(),
        rows.iter().map(|r| r.1).max(),
    ) else {
        return Err(DataError::Inconsistent {
            file: file.into(),
            message: "no usable rows".into(),
        });
    };
    let sp = data::sp500_ohlc()?;
    let dates: Vec<NaiveDate> = sp
        .dates
        .iter()
        .copied()
        .filter(|d| *d >= first && *d <= last)
        .collect();
    let n = dates.len();
    let mut closes = vec![vec![f64::NAN; n]; tickers.len()];
    let mut volumes = vec![vec![f64::NAN; n]; tickers.len()];
    for (t, date, close, volume) in rows {
        if let Ok(d) = dates.binary_search(&date) {
            closes[t][d] = close;
            volumes[t][d] = volume;
        }
    }
    let sector_rows = parse_sector_rows(sectors_csv)?;
    let mut symbols = Vec::with_capacity(tickers.len());
    for t in &tickers {
        let sector = sector_rows
            .iter()
            .find(|(s, _)| s == t)
            .map(|(_, g)| g.clone())
            .ok_or_else(|| DataError::Inconsistent {
                file: US421_SECTORS_FILE.into(),
                message: format!("no sector for {t} of {file}"),
            })?;
        symbols.push(SymbolInfo {
            symbol: Symbol::new(t).map_err(|e| DataError::Inconsistent {
                file: file.into(),
                message: e.to_string(),
            })?,
            sector,
            name: t.clone(),
        });
    }
    let index = align(&dates, &sp.dates, &sp.close);
    let vix_csv = embedded(VIX_FILE)?;
    let vix_table = parse_dated_csv(VIX_FILE, &us_dates_to_iso(VIX_FILE, &vix_csv)?)?;
    let vc = column_index(VIX_FILE, &vix_table, "CLOSE")?;
    let mut vix = align(&dates, &vix_table.dates, &vix_table.values[vc]);
    data::carry_forward(&mut vix);
    let tsy = parse_dated_csv(TREASURY_FILE, &embedded(TREASURY_FILE)?)?;
    let rc = column_index(TREASURY_FILE, &tsy, TREASURY_RATE_COLUMN)?;
    let rates = data::fill_rates(&dates, &tsy.dates, &tsy.values[rc])?;
    let mut history = History {
        dates,
        symbols,
        closes,
        index,
        vix,
        rates,
        implied_vol: Vec::new(),
        skew_index: Vec::new(),
        volumes,
    };
    data::attach_implied_vol(&mut history, &embedded(data::IMPLIED_VOL_FILE)?)?;
    data::attach_skew_index(&mut history, &embedded(SKEW_FILE)?)?;
    data::carry_forward(&mut history.skew_index);
    history.validate().map_err(DataError::Invalid)?;
    Ok(history)
}

fn embedded(name: &str) -> Result<Vec<u8>, DataError> {
    data::embedded_csv(name).unwrap_or_else(|| {
        Err(DataError::Inconsistent {
            file: name.into(),
            message: "not a shipped file".into(),
        })
    })
}

/// `ticker,gics_sector` rows.
fn parse_sector_rows(bytes: &[u8]) -> Result<Vec<(String, String)>, DataError> {
    let text = data::utf8(US421_SECTORS_FILE, bytes)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.is_empty() {
            continue;
        }
        let Some((t, s)) = line.split_once(',') else {
            return Err(malformed(
                US421_SECTORS_FILE,
                i + 1,
                1,
                "ticker",
                "expected ticker,gics_sector",
            ));
        };
        out.push((t.trim().to_owned(), s.trim().to_owned()));
    }
    Ok(out)
}
