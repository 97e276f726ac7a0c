//! The validator: replays the strategy's selection day by day over history
//! and reports what it would have listed, and, given a trader's own list of
//! trades, how often the strategy picked the same ones.
//!
//! # The replay
//!
//! [`validate`] runs [`scan`] once per session of the
//! window at a fixed checkpoint (10:00 New York by default), with
//! `open_positions = 0`: selection only, nothing is ordered, no position
//! limits interfere. The caller owns the market (the simulated exchange in
//! practice): it hands over the `MarketData` / `Broker` it scans and an
//! `advance` callback that moves that market's clock forward to each
//! session's checkpoint. This crate reads no clock and depends on no
//! market implementation; [`checkpoint_time`] turns a session's open and
//! close into the checkpoint instant without a time-zone database.
//!
//! # The report
//!
//! [`ValidationReport`]: opportunities per day, the distribution of the
//! daily count (mean, median, maximum, the share of days in the 5–10 band
//! the trader aims for), histograms of OTM %, premium, DTE and sectors, the
//! symbols listed most, and every opportunity. [`ValidationReport::to_markdown`]
//! renders it for people.
//!
//! # Matching a trader's trades
//!
//! [`parse_manual_trades`] reads a CSV of trades taken by hand (`date,
//! symbol, strike, expiry`; extra columns ignored). For each trade inside
//! the window, [`ManualMatch`] records whether the strategy listed exactly
//! that put that day (same date, symbol, strike and expiry) and whether it
//! listed that symbol that day at all; every trade not matched exactly gets
//! a reason read from that day's scan (the screen's or the finder's skip
//! record) or, when the scan never looked at that contract (outside its
//! search range, say), from quoting it at the checkpoint and putting it
//! through the same entry rule ([`should_enter`]).
//!
//! # Speed
//!
//! Measured on the shipped history with the simulated exchange (2 cores,
//! one used): a year (252 sessions, 20 symbols) replays in about 0.08 s in
//! a release build, 1990-01-02 to 2022-12-28 (8,313 sessions) in about
//! 1.3 s; the four-year held-out window of the tests takes under a second
//! in a debug build.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use core_domain::{
    Broker, Criterion, DecisionRecord, MarketData, OptionContract, Price, Right, Symbol,
};
use serde::{Deserialize, Serialize};

use crate::error::StrategyError;
use crate::indicators::sma;
use crate::params::NakedPutParams;
use crate::rules::{EntryCandidate, should_enter};
use crate::scan::{BARS, ScanReport, current_price, scan};

/// The regular session opens at 09:30 New York time.
pub const SESSION_OPEN_NEW_YORK: NaiveTime = match NaiveTime::from_hms_opt(9, 30, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The default checkpoint of the replay: 10:00 New York time.
pub const DEFAULT_CHECKPOINT: NaiveTime = match NaiveTime::from_hms_opt(10, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The daily count of opportunities the trader aims for, both ends included.
pub const TARGET_BAND: (usize, usize) = (5, 10);

/// How many symbols [`Summary::top_symbols`] lists.
pub const TOP_SYMBOLS: usize = 10;

/// One session of a replay: its date and the instant the scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaySession {
    /// The session.
    pub date: NaiveDate,
    /// The instant the scan runs (UTC).
    pub time: DateTime<Utc>,
}

/// The checkpoint instant of a session, `checkpoint` being New York wall
/// time: the session's `open` (09:30 New York, as a UTC instant) plus
/// `checkpoint − 09:30`. A checkpoint before the open is the open; one at
/// or after the `close` (13:00 on early-close days) is one minute before
/// the close, so the scan always runs while the market is open.
pub fn checkpoint_time(
    open: DateTime<Utc>,
    close: DateTime<Utc>,
    checkpoint: NaiveTime,
) -> DateTime<Utc> {
    let offset = (checkpoint - SESSION_OPEN_NEW_YORK).max(Duration::zero());
    let t = open + offset;
    if t >= close {
        (close - Duration::minutes(1)).max(open)
    } else {
        t
    }
}

/// What a replay needs besides the market.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationConfig {
    /// The window, both ends included.
    pub from: NaiveDate,
    /// Last day of the window, included.
    pub to: NaiveDate,
    /// New York wall time of the daily checkpoint (reported; the instants
    /// are the sessions' [`ReplaySession::time`]).
    pub checkpoint: NaiveTime,
    /// The strategy's parameters.
    pub params: NakedPutParams,
    /// The symbols scanned, with their sectors.
    pub universe: Vec<(Symbol, Option<String>)>,
}

/// Where a replay is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Sessions scanned so far, this one included.
    pub done: usize,
    /// Sessions in the replay.
    pub total: usize,
    /// The session just scanned.
    pub date: NaiveDate,
    /// Opportunities listed that session.
    pub opportunities: usize,
}

/// Why a validation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    /// `from` is after `to`.
    #[error("the window is empty: {from} is after {to}")]
    EmptyWindow { from: NaiveDate, to: NaiveDate },
    /// No session of the replay lies in the window.
    #[error("no session between {from} and {to}")]
    NoSessions { from: NaiveDate, to: NaiveDate },
    /// The sessions are not strictly ascending, or one lies outside the window.
    #[error("bad replay sessions: {0}")]
    BadSessions(String),
    /// The scan failed (only unusable parameters make it fail).
    #[error("scanning {date}: {source}")]
    Scan {
        date: NaiveDate,
        #[source]
        source: StrategyError,
    },
}

/// One trade a trader took by hand: the put sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualTrade {
    /// 1-based line of the CSV file it came from (0 when not from a file).
    pub line: usize,
    /// The session the put was sold.
    pub date: NaiveDate,
    /// The underlying.
    pub symbol: Symbol,
    /// The put's strike.
    pub strike: Price,
    /// The put's expiry (last trading day).
    pub expiry: NaiveDate,
}

impl ManualTrade {
    /// The put as a contract (standard US equity option).
    pub fn contract(&self) -> OptionContract {
        OptionContract::us(self.symbol.clone(), Right::Put, self.strike, self.expiry)
    }
}

/// Why a file of manual trades could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualTradesError {
    /// The file could not be read.
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    /// The header lacks a required column.
    #[error(
        "{file}, line 1: the header has no column {column:?} (needed: date,symbol,strike,expiry)"
    )]
    MissingColumn { file: String, column: String },
    /// A malformed field; `line` and `column` are 1-based (line 1 is the header).
    #[error("{file}, line {line}, column {column} ({column_name}): {message}")]
    Malformed {
        file: String,
        line: usize,
        column: usize,
        column_name: String,
        message: String,
    },
}

/// Reads a CSV file of manual trades (see [`parse_manual_trades`]).
pub fn read_manual_trades(path: &Path) -> Result<Vec<ManualTrade>, ManualTradesError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ManualTradesError::Io {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| ManualTradesError::Io {
        file: file.clone(),
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse_manual_trades(&file, &text)
}

/// Parses a CSV of manual trades; `file` only names the input in errors.
///
/// The header (line 1) must name the columns `date`, `symbol`, `strike` and
/// `expiry`, in any order and any case (`ticker`/`underlying` are read as
/// `symbol`, `expiration` as `expiry`, `trade_date` as `date`); every other
/// column (premium, notes...) is ignored, except an optional `right` column
/// that must say `P`/`put` (or be empty): the strategy sells puts only.
/// Fields may be double-quoted (`""` is a quote inside quotes). Dates are
/// `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD` or `MM/DD/YYYY`; strikes are
/// positive decimals with at most four decimals, an optional leading `$`.
/// Blank lines and lines starting with `#` are skipped; a UTF-8 byte order
/// mark is allowed.
///
/// Errors name the file, the 1-based line and column and the column's
/// name: a missing field, an unparsable date, symbol or strike, an expiry
/// before the trade date, a call.
pub fn parse_manual_trades(file: &str, text: &str) -> Result<Vec<ManualTrade>, ManualTradesError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let header_fields = loop {
        match lines.next() {
            Some((i, raw)) => {
                let line = raw.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                break split_fields(raw).map_err(|(column, message)| {
                    malformed(file, i + 1, column, "header", message)
                })?;
            }
            None => {
                return Err(ManualTradesError::MissingColumn {
                    file: file.into(),
                    column: "date".into(),
                });
            }
        }
    };
    let names: Vec<String> = header_fields
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let find = |aliases: &[&str]| names.iter().position(|n| aliases.contains(&n.as_str()));
    let need = |canonical: &str, aliases: &[&str]| {
        find(aliases).ok_or_else(|| ManualTradesError::MissingColumn {
            file: file.into(),
            column: canonical.into(),
        })
    };
    let c_date = need("date", &["date", "trade_date", "trade date"])?;
    let c_symbol = need("symbol", &["symbol", "ticker", "underlying"])?;
    let c_strike = need("strike", &["strike"])?;
    let c_expiry = need(
        "expiry",
        &["expiry", "expiration", "expiration_date", "exp"],
    )?;
    let c_right = find(&["right", "type", "put_call", "putcall"]);
    let name_of = |c: usize| header_fields.get(c).map_or("", |s| s.trim()).to_string();

    let mut out = Vec::new();
    for (i, raw) in lines {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = split_fields(raw).map_err(|(column, message)| {
            let name = name_of(column - 1);
            malformed(file, line_no, column, &name, message)
        })?;
        let field = |c: usize| -> Result<&str, ManualTradesError> {
            match fields.get(c).map(|s| s.trim()) {
                Some(v) if !v.is_empty() => Ok(v),
                Some(_) => Err(malformed(file, line_no, c + 1, &name_of(c), "empty field")),
                None => Err(malformed(
                    file,
                    line_no,
                    c + 1,
                    &name_of(c),
                    format!(
                        "missing field: the line has {} fields, the header {}",
                        fields.len(),
                        header_fields.len()
                    ),
                )),
            }
        };
        let date_text = field(c_date)?;
        let date = parse_date(date_text).ok_or_else(|| {
            malformed(
                file,
                line_no,
                c_date + 1,
                &name_of(c_date),
                format!("{date_text:?} is not a date (YYYY-MM-DD)"),
            )
        })?;
        let symbol_text = field(c_symbol)?;
        let symbol = Symbol::new(symbol_text).map_err(|e| {
            malformed(
                file,
                line_no,
                c_symbol + 1,
                &name_of(c_symbol),
                e.to_string(),
            )
        })?;
        let strike_text = field(c_strike)?;
        let strike = parse_strike(strike_text)
            .map_err(|m| malformed(file, line_no, c_strike + 1, &name_of(c_strike), m))?;
        let expiry_text = field(c_expiry)?;
        let expiry = parse_date(expiry_text).ok_or_else(|| {
            malformed(
                file,
                line_no,
                c_expiry + 1,
                &name_of(c_expiry),
                format!("{expiry_text:?} is not a date (YYYY-MM-DD)"),
            )
        })?;
        if expiry < date {
            return Err(malformed(
                file,
                line_no,
                c_expiry + 1,
                &name_of(c_expiry),
                format!("expiry {expiry} is before the trade date {date}"),
            ));
        }
        if let Some(c) = c_right {
            let right = fields.get(c).map_or("", |s| s.trim()).to_ascii_lowercase();
            if !matches!(right.as_str(), "" | "p" | "put") {
                return Err(malformed(
                    file,
                    line_no,
                    c + 1,
                    &name_of(c),
                    format!("{right:?}: only puts (P) can be validated"),
                ));
            }
        }
        out.push(ManualTrade {
            line: line_no,
            date,
            symbol,
            strike,
            expiry,
        });
    }
    Ok(out)
}

fn malformed(
    file: &str,
    line: usize,
    column: usize,
    column_name: &str,
    message: impl Into<String>,
) -> ManualTradesError {
    ManualTradesError::Malformed {
        file: file.into(),
        line,
        column,
        column_name: column_name.into(),
        message: message.into(),
    }
}

/// Splits one CSV line into fields; an error is (1-based column, message).
fn split_fields(line: &str) -> Result<Vec<String>, (usize, String)> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let column = fields.len() + 1;
        let mut field = String::new();
        // Leading spaces before an opening quote are allowed.
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err((column, "unterminated quoted field".into())),
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err((column, format!("unexpected {c:?} after a quoted field")));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err((column, "a quote inside an unquoted field".into()));
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD` or `MM/DD/YYYY`.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        .or_else(|| {
            (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
                .flatten()
        })
}

fn parse_strike(s: &str) -> Result<Price, String> {
    let body = s.trim().strip_prefix('$').unwrap_or(s.trim());
    let price: Price = body
        .parse()
        .map_err(|_| format!("{s:?} is not a strike (a decimal such as 150 or 152.50)"))?;
    if price.is_positive() {
        Ok(price)
    } else {
        Err(format!("strike {s:?} must be positive"))
    }
}

/// One opportunity the replay listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedOpportunity {
    /// The session it was listed.
    pub date: NaiveDate,
    /// 1-based rank that day (by margin efficiency).
    pub rank: usize,
    /// The underlying.
    pub symbol: Symbol,
    /// Its GICS sector, when known.
    pub sector: Option<String>,
    /// The put's strike.
    pub strike: Price,
    /// The put's expiry.
    pub expiry: NaiveDate,
    /// Calendar days from the session to expiry.
    pub dte: i64,
    /// (underlying − strike) / underlying, as a fraction.
    pub otm_pct: f64,
    /// Premium per share: the bid.
    pub premium: Price,
    /// The underlying's price at the checkpoint.
    pub underlying_price: Price,
    /// The modelled implied volatility.
    pub iv: Option<f64>,
    /// Annualized return on margin (the finder's ranking key).
    pub margin_efficiency: f64,
}

/// The replay's count of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// The session.
    pub date: NaiveDate,
    /// Opportunities listed.
    pub count: usize,
    /// Symbols that passed the screen.
    pub passed_screen: usize,
}

/// One bucket of a histogram: `lo <= value < hi` (the last bucket of a
/// range includes its upper end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// E.g. `15–16%`, `0.30–0.35`, `7`.
    pub label: String,
    /// Lower edge (included).
    pub lo: f64,
    /// Upper edge (excluded, except for the last bucket).
    pub hi: f64,
    /// Values in the bucket.
    pub count: usize,
}

/// Counts in fixed buckets, plus what fell below the first and above the
/// last (non-zero only when the parameters' range differs from the
/// buckets').
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Buckets, ascending.
    pub buckets: Vec<Bucket>,
    /// Values below the first bucket.
    pub below: usize,
    /// Values above the last bucket.
    pub above: usize,
}

impl Histogram {
    /// Buckets of width `step` covering `lo..=hi`, labelled by `label(lo, hi)`.
    fn new(lo: f64, hi: f64, step: f64, label: impl Fn(f64, f64) -> String) -> Self {
        let n = if step > 0.0 && hi > lo {
            (((hi - lo) / step) - 1e-9).ceil().max(1.0) as usize
        } else {
            1
        };
        let buckets = (0..n)
            .map(|i| {
                let a = lo + step * i as f64;
                let b = if i + 1 == n {
                    hi
                } else {
                    lo + step * (i + 1) as f64
                };
                Bucket {
                    label: label(a, b),
                    lo: a,
                    hi: b,
                    count: 0,
                }
            })
            .collect();
        Histogram {
            buckets,
            below: 0,
            above: 0,
        }
    }

    /// Adds one value (with a 1e-9 tolerance at the bucket edges).
    fn add(&mut self, v: f64) {
        const TOL: f64 = 1e-9;
        let n = self.buckets.len();
        let (Some(first), Some(last)) = (self.buckets.first(), self.buckets.last()) else {
            return;
        };
        if v < first.lo - TOL {
            self.below += 1;
            return;
        }
        if v > last.hi + TOL {
            self.above += 1;
            return;
        }
        let i = self
            .buckets
            .iter()
            .position(|b| v < b.hi - TOL)
            .unwrap_or(n - 1);
        self.buckets[i].count += 1;
    }

    /// Values counted, in buckets and outside.
    pub fn total(&self) -> usize {
        self.buckets.iter().map(|b| b.count).sum::<usize>() + self.below + self.above
    }
}

/// A symbol and how often the replay listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolCount {
    /// The underlying.
    pub symbol: Symbol,
    /// Opportunities listed (a day can list several puts of one symbol).
    pub opportunities: usize,
    /// Sessions with at least one.
    pub days: usize,
}

/// The distribution of the replay's selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Opportunities listed over the window.
    pub total_opportunities: usize,
    /// Sessions with at least one opportunity.
    pub days_with_opportunity: usize,
    /// Opportunities per session, over every session of the window.
    pub mean_per_day: f64,
    /// Median opportunities per session.
    pub median_per_day: f64,
    /// Most opportunities in one session.
    pub max_per_day: usize,
    /// Sessions whose count lies in [`TARGET_BAND`] (5..=10), and their
    /// share of all sessions.
    pub days_in_target_band: usize,
    /// `days_in_target_band` / sessions.
    pub share_in_target_band: f64,
    /// Sessions with more than 10.
    pub days_above_target_band: usize,
    /// OTM % in 1-point buckets over the OTM range (15–20%).
    pub otm_pct: Histogram,
    /// Premium at the bid in $0.05 buckets over the premium range (0.30–0.50).
    pub premium: Histogram,
    /// Days to expiry, one bucket a day over the DTE range (7..=14).
    pub dte: Histogram,
    /// Opportunities per sector (no sector: "(none)").
    pub sectors: BTreeMap<String, usize>,
    /// The [`TOP_SYMBOLS`] symbols listed most, most first.
    pub top_symbols: Vec<SymbolCount>,
}

/// A manual trade the strategy did not select exactly, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedTrade {
    /// The trade as read from the file.
    pub trade: ManualTrade,
    /// Whether the strategy listed that symbol that day (another put).
    pub symbol_day_matched: bool,
    /// Why the strategy did not select this put, in words, e.g. "not an
    /// opportunity: bid 0.25 below 0.30" or "symbol screened out: uptrend
    /// failed (close 101.20 sma20 103.50 sma50 99.10)".
    pub reason: String,
    /// The criterion that failed first (`uptrend`, `premium_bid`,
    /// `otm_pct`, `dte`, `open_interest`, `spread_pct`,
    /// `underlying_price`, `not_listed`, `not_a_session`, `broker`,
    /// `not_in_universe`, `quote`, `other`).
    pub criterion: String,
}

/// How a trader's hand-picked trades compare with the strategy's selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualMatch {
    /// Trades dated inside the window (the denominators of the rates).
    pub trades: usize,
    /// Trades dated outside the window, left out of everything else.
    pub outside_window: usize,
    /// Same date, symbol, strike and expiry among that day's opportunities.
    pub matched_exact: usize,
    /// The strategy listed that symbol that day.
    pub matched_symbol_day: usize,
    /// `matched_exact / trades` (0 without trades).
    pub match_rate_exact: f64,
    /// `matched_symbol_day / trades` (0 without trades).
    pub match_rate_symbol_day: f64,
    /// Unmatched trades per failing criterion.
    pub by_criterion: BTreeMap<String, usize>,
    /// Every trade not matched exactly, in file order.
    pub unmatched: Vec<UnmatchedTrade>,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The window asked for, both ends included.
    pub from: NaiveDate,
    /// Last day of the window.
    pub to: NaiveDate,
    /// New York wall time of the daily scan.
    pub checkpoint: String,
    /// Sessions replayed.
    pub sessions: usize,
    /// The first session replayed.
    pub first_session: NaiveDate,
    /// The last session replayed.
    pub last_session: NaiveDate,
    /// The strategy's parameters used.
    pub params: NakedPutParams,
    /// Symbols scanned.
    pub universe: Vec<Symbol>,
    /// Every session's count.
    pub per_day: Vec<DayCount>,
    /// The distribution of the selection.
    pub summary: Summary,
    /// The manual-trade comparison, when a list was given.
    pub manual: Option<ManualMatch>,
    /// Every opportunity listed, by date then rank.
    pub opportunities: Vec<ListedOpportunity>,
}

/// Replays the selection: for each session (ascending, inside
/// `config.from..=config.to`) calls `advance(session.time)` to move the
/// market there, runs [`scan`] with no open positions, and collects what
/// it lists. With `manual`, each trade is compared with its day's scan (see
/// [`ManualMatch`]). `progress` is called after every session.
///
/// Fails on an empty window or sessions, and when the scan refuses the
/// parameters; a symbol the market cannot serve on some day is a skip in
/// that day's scan, not a failure.
pub async fn validate<M, B, A, P>(
    market: &M,
    broker: &B,
    sessions: &[ReplaySession],
    config: &ValidationConfig,
    manual: Option<&[ManualTrade]>,
    mut advance: A,
    mut progress: P,
) -> Result<ValidationReport, ValidationError>
where
    M: MarketData,
    B: Broker,
    A: FnMut(DateTime<Utc>),
    P: FnMut(&Progress),
{
    let (from, to) = (config.from, config.to);
    if from > to {
        return Err(ValidationError::EmptyWindow { from, to });
    }
    let (Some(first), Some(last)) = (sessions.first(), sessions.last()) else {
        return Err(ValidationError::NoSessions { from, to });
    };
    if let Some(w) = sessions
        .windows(2)
        .find(|w| w[0].date >= w[1].date || w[0].time >= w[1].time)
    {
        return Err(ValidationError::BadSessions(format!(
            "{} is not before {}",
            w[0].date, w[1].date
        )));
    }
    if first.date < from || last.date > to {
        return Err(ValidationError::BadSessions(format!(
            "sessions {}..{} reach outside the window {from}..{to}",
            first.date, last.date
        )));
    }
    let params = &config.params;

    // Manual trades by date (indices into `manual`).
    let trades = manual.unwrap_or(&[]);
    let mut by_date: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
    for (i, t) in trades.iter().enumerate() {
        if (from..=to).contains(&t.date) {
            by_date.entry(t.date).or_default().push(i);
        }
    }
    // Per trade, once its day is scanned.
    let mut outcomes: Vec<Option<TradeOutcome>> = vec![None; trades.len()];

    let mut per_day = Vec::with_capacity(sessions.len());
    let mut listed = Vec::new();
    for (k, s) in sessions.iter().enumerate() {
        advance(s.time);
        let report = scan(market, broker, params, &config.universe, 0, s.date, s.time)
            .await
            .map_err(|source| ValidationError::Scan {
                date: s.date,
                source,
            })?;
        per_day.push(DayCount {
            date: s.date,
            count: report.opportunities.len(),
            passed_screen: report.passed_screen,
        });
        for o in &report.opportunities {
            listed.push(ListedOpportunity {
                date: s.date,
                rank: o.rank,
                symbol: o.symbol.clone(),
                sector: o.sector.clone(),
                strike: o.strike,
                expiry: o.expiry,
                dte: o.dte,
                otm_pct: o.otm_pct,
                premium: o.premium,
                underlying_price: o.underlying_price,
                iv: o.iv,
                margin_efficiency: o.margin_efficiency,
            });
        }
        if let Some(indices) = by_date.get(&s.date) {
            for &i in indices {
                let t = &trades[i];
                let exact = report
                    .opportunities
                    .iter()
                    .any(|o| o.symbol == t.symbol && o.strike == t.strike && o.expiry == t.expiry);
                let symbol_day = report.opportunities.iter().any(|o| o.symbol == t.symbol);
                let reason = if exact {
                    None
                } else {
                    Some(explain(market, params, &report, t, s).await)
                };
                outcomes[i] = Some(TradeOutcome {
                    exact,
                    symbol_day,
                    reason,
                });
            }
        }
        progress(&Progress {
            done: k + 1,
            total: sessions.len(),
            date: s.date,
            opportunities: report.opportunities.len(),
        });
    }

    let manual = manual.map(|trades| {
        let mut m = ManualMatch {
            trades: 0,
            outside_window: 0,
            matched_exact: 0,
            matched_symbol_day: 0,
            match_rate_exact: 0.0,
            match_rate_symbol_day: 0.0,
            by_criterion: BTreeMap::new(),
            unmatched: Vec::new(),
        };
        for (t, outcome) in trades.iter().zip(&outcomes) {
            if !(from..=to).contains(&t.date) {
                m.outside_window += 1;
                continue;
            }
            m.trades += 1;
            let (exact, symbol_day, reason) = match outcome {
                Some(o) => (o.exact, o.symbol_day, o.reason.clone()),
                None => (
                    false,
                    false,
                    Some((
                        format!(
                            "{} is not a session of the replay (weekend, holiday or a day without data)",
                            t.date
                        ),
                        "not_a_session".to_string(),
                    )),
                ),
            };
            m.matched_exact += usize::from(exact);
            m.matched_symbol_day += usize::from(symbol_day);
            if let Some((reason, criterion)) = reason {
                *m.by_criterion.entry(criterion.clone()).or_default() += 1;
                m.unmatched.push(UnmatchedTrade {
                    trade: t.clone(),
                    symbol_day_matched: symbol_day,
                    reason,
                    criterion,
                });
            }
        }
        if m.trades > 0 {
            m.match_rate_exact = m.matched_exact as f64 / m.trades as f64;
            m.match_rate_symbol_day = m.matched_symbol_day as f64 / m.trades as f64;
        }
        m
    });

    let summary = summarize(&per_day, &listed, params);
    Ok(ValidationReport {
        from,
        to,
        checkpoint: config.checkpoint.format("%H:%M").to_string(),
        sessions: per_day.len(),
        first_session: first.date,
        last_session: last.date,
        params: params.clone(),
        universe: config.universe.iter().map(|(s, _)| s.clone()).collect(),
        per_day,
        summary,
        manual,
        opportunities: listed,
    })
}

/// How one manual trade fared against its day's scan.
#[derive(Debug, Clone)]
struct TradeOutcome {
    exact: bool,
    symbol_day: bool,
    /// (reason, criterion) when not matched exactly.
    reason: Option<(String, String)>,
}

/// The statistics of a replay's counts and listed opportunities.
pub fn summarize(
    per_day: &[DayCount],
    listed: &[ListedOpportunity],
    params: &NakedPutParams,
) -> Summary {
    let counts: Vec<usize> = per_day.iter().map(|d| d.count).collect();
    let total: usize = counts.iter().sum();
    let days = counts.len();
    let mean = if days == 0 {
        0.0
    } else {
        total as f64 / days as f64
    };
    let median = median(&counts);
    let (band_lo, band_hi) = TARGET_BAND;
    let in_band = counts
        .iter()
        .filter(|c| (band_lo..=band_hi).contains(*c))
        .count();

    // OTM in whole percentage points around the parameters' range.
    let otm_lo = (params.otm_min * 100.0 + 1e-6).floor();
    let otm_hi = (params.otm_max * 100.0 - 1e-6).ceil().max(otm_lo + 1.0);
    let mut otm = Histogram::new(otm_lo, otm_hi, 1.0, |a, b| format!("{a:.0}–{b:.0}%"));
    // Premium in $0.05 steps from the range's lower end.
    let prem_lo = (params.premium_min * 20.0 + 1e-6).floor() / 20.0;
    let prem_hi = ((params.premium_max * 20.0 - 1e-6).ceil() / 20.0).max(prem_lo + 0.05);
    let mut premium = Histogram::new(prem_lo, prem_hi, 0.05, |a, b| format!("{a:.2}–{b:.2}"));
    let mut dte = Histogram::new(
        params.dte_min as f64,
        (params.dte_max + 1) as f64,
        1.0,
        |a, _| format!("{a:.0}"),
    );
    // DTE buckets are [d, d+1): the last one must not take dte_max + 1.
    if let Some(b) = dte.buckets.last_mut() {
        b.hi -= 0.5;
    }
    let mut sectors: BTreeMap<String, usize> = BTreeMap::new();
    let mut symbols: BTreeMap<Symbol, (usize, Vec<NaiveDate>)> = BTreeMap::new();
    for o in listed {
        otm.add(o.otm_pct * 100.0);
        premium.add(o.premium.to_f64());
        dte.add(o.dte as f64);
        *sectors
            .entry(o.sector.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
        let e = symbols.entry(o.symbol.clone()).or_default();
        e.0 += 1;
        if e.1.last() != Some(&o.date) {
            e.1.push(o.date);
        }
    }
    let mut top: Vec<SymbolCount> = symbols
        .into_iter()
        .map(|(symbol, (n, d))| SymbolCount {
            symbol,
            opportunities: n,
            days: d.len(),
        })
        .collect();
    top.sort_by(|a, b| {
        b.opportunities
            .cmp(&a.opportunities)
            .then(b.days.cmp(&a.days))
            .then(a.symbol.cmp(&b.symbol))
    });
    top.truncate(TOP_SYMBOLS);
    Summary {
        total_opportunities: total,
        days_with_opportunity: counts.iter().filter(|c| **c > 0).count(),
        mean_per_day: mean,
        median_per_day: median,
        max_per_day: counts.iter().copied().max().unwrap_or(0),
        days_in_target_band: in_band,
        share_in_target_band: if days == 0 {
            0.0
        } else {
            in_band as f64 / days as f64
        },
        days_above_target_band: counts.iter().filter(|c| **c > band_hi).count(),
        otm_pct: otm,
        premium,
        dte,
        sectors,
        top_symbols: top,
    }
}

fn median(values: &[usize]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

/// Why the day's scan did not list `trade`: (reason, criterion).
async fn explain<M: MarketData>(
    market: &M,
    params: &NakedPutParams,
    report: &ScanReport,
    trade: &ManualTrade,
    session: &ReplaySession,
) -> (String, String) {
    let symbol = trade.symbol.as_str();
    let contract = trade.contract();
    let key = contract.key();
    let also = |text: String| {
        if report
            .opportunities
            .iter()
            .any(|o| o.symbol == trade.symbol)
        {
            format!("{text} (the strategy listed other {symbol} puts that day)")
        } else {
            text
        }
    };

    if !report.underlyings.iter().any(|u| u.symbol == trade.symbol) {
        return (
            format!("{symbol} is not in the scanned universe"),
            "not_in_universe".into(),
        );
    }
    // 1. The screen (or a data failure) left the symbol out.
    let symbol_records = report.rejected.iter().filter(|r| r.subject == symbol);
    for r in symbol_records {
        let stage = r
            .context
            .get("stage")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if let Some(c) = r.criteria.iter().find(|c| !c.passed) {
            if stage == "screen" {
                return (
                    format!("symbol screened out: {}", describe(c, params)),
                    c.name.clone(),
                );
            }
            if c.name == "broker" {
                return (format!("no market data: {}", r.reason), "broker".into());
            }
        }
    }
    // 2. The finder looked at this very put and refused it.
    if let Some(r) = report.rejected.iter().find(|r| r.subject == key) {
        return match r.criteria.iter().find(|c| !c.passed) {
            Some(c) => (
                also(format!("not an opportunity: {}", describe(c, params))),
                c.name.clone(),
            ),
            None => (
                also(format!("not an opportunity: {}", r.reason)),
                "finder".into(),
            ),
        };
    }
    // 3. The scan never looked at it: quote it now and apply the entry rule.
    let quotes = match market.option_quotes(std::slice::from_ref(&contract)).await {
        Ok(q) => q,
        Err(e) => return (format!("cannot quote {key}: {e}"), "broker".into()),
    };
    let Some(q) = quotes.first() else {
        let listed = market
            .option_chain(&trade.symbol)
            .await
            .map(|c| c.expirations.contains(&trade.expiry))
            .unwrap_or(false);
        let why = if listed {
            format!("strike {} is not on the listed grid", trade.strike)
        } else {
            format!(
                "{} is not a listed expiration that day ({})",
                trade.expiry,
                weekday_note(trade.expiry)
            )
        };
        return (
            format!("contract not listed on {}: {why}", trade.date),
            "not_listed".into(),
        );
    };
    let (Some(bid), Some(ask)) = (q.quote.bid, q.quote.ask) else {
        return (
            also(format!("not an opportunity: {key} has a one-sided quote")),
            "quote".into(),
        );
    };
    let underlying_price = match market.stock_quote(&trade.symbol).await {
        Ok(sq) => current_price(&sq),
        Err(_) => None,
    };
    let Some(underlying_price) = underlying_price else {
        return (
            format!("no price for {symbol} at the checkpoint"),
            "broker".into(),
        );
    };
    let closes: Vec<f64> = match market.daily_bars(&trade.symbol, session.date, BARS).await {
        Ok(bars) => bars.iter().map(|b| b.close.to_f64()).collect(),
        Err(_) => Vec::new(),
    };
    let candidate = EntryCandidate {
        subject: key.clone(),
        underlying_price: underlying_price.to_f64(),
        sma20: sma(&closes, 20),
        sma50: sma(&closes, 50),
        strike: trade.strike.to_f64(),
        bid,
        ask,
        dte: contract.days_to_expiry(session.date),
        open_interest: q.quote.open_interest,
        open_positions: 0,
    };
    let record: DecisionRecord = should_enter(&candidate, params, session.time);
    match record.criteria.iter().find(|c| !c.passed) {
        Some(c) => (
            also(format!("not an opportunity: {}", describe(c, params))),
            c.name.clone(),
        ),
        None => {
            let other = report
                .rejected
                .iter()
                .find(|r| {
                    r.subject == symbol
                        || r.subject
                            .strip_prefix(symbol)
                            .is_some_and(|rest| rest.starts_with(' '))
                })
                .map(|r| format!("; the scan's note on {}: {}", r.subject, r.reason))
                .unwrap_or_default();
            (
                also(format!(
                    "passes every entry rule when quoted at the checkpoint (bid {bid}, {} DTE) but was not among the day's opportunities{other}",
                    candidate.dte
                )),
                "other".into(),
            )
        }
    }
}

fn weekday_note(d: NaiveDate) -> String {
    format!("a {}", d.weekday())
}

/// A failed criterion in words: "bid 0.25 below 0.30", "uptrend failed
/// (close 101.20 sma20 103.50 sma50 99.10)".
pub fn describe(c: &Criterion, p: &NakedPutParams) -> String {
    let v = c.numeric_value;
    let side = |x: f64, lo: f64, hi: f64| {
        if x < lo {
            "below"
        } else if x > hi {
            "above"
        } else {
            "at"
        }
    };
    match (c.name.as_str(), v) {
        ("premium_bid", Some(x)) => format!(
            "bid {x:.2} {} {:.2}",
            side(x, p.premium_min, p.premium_max),
            if x < p.premium_min {
                p.premium_min
            } else {
                p.premium_max
            }
        ),
        ("otm_pct", Some(x)) => format!(
            "{:.1}% out of the money, {} {:.0}%",
            x * 100.0,
            side(x, p.otm_min, p.otm_max),
            if x < p.otm_min {
                p.otm_min * 100.0
            } else {
                p.otm_max * 100.0
            }
        ),
        ("dte", Some(x)) => format!(
            "{x:.0} days to expiry, {} {}",
            side(x, p.dte_min as f64, p.dte_max as f64),
            if x < p.dte_min as f64 {
                p.dte_min
            } else {
                p.dte_max
            }
        ),
        ("underlying_price", Some(x)) => format!(
            "underlying ${x:.2} {} ${:.2}",
            side(x, p.price_min, p.price_max),
            if x < p.price_min {
                p.price_min
            } else {
                p.price_max
            }
        ),
        ("open_interest", Some(x)) => {
            format!("open interest {x:.0} below {}", p.min_open_interest)
        }
        ("spread_pct", Some(x)) => format!(
            "spread {:.0}% of the mid above {:.0}%",
            x * 100.0,
            p.max_spread_pct * 100.0
        ),
        ("uptrend", _) => format!("uptrend failed ({})", c.value),
        _ => format!("{} {} outside {}", c.name, c.value, c.threshold),
    }
}

impl ValidationReport {
    /// The report for people: window, parameters, the daily-count
    /// distribution, histograms, sectors, top symbols, a month-by-month
    /// table and the manual-trade comparison with every unmatched trade.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.summary;
        let p = &self.params;
        let line = |md: &mut String, text: String| {
            md.push_str(&text);
            md.push('\n');
        };
        line(
            &mut md,
            format!(
                "# Validation of \"{}\": {} to {}",
                p.name, self.from, self.to
            ),
        );
        line(&mut md, String::new());
        line(
            &mut md,
            format!(
                "{} sessions ({} to {}), scanned at {} New York each session with no open positions; universe of {} symbols.",
                self.sessions,
                self.first_session,
                self.last_session,
                self.checkpoint,
                self.universe.len()
            ),
        );
        line(
            &mut md,
            format!(
                "Rules: {:.0}–{:.0}% OTM, premium at the bid ${:.2}–${:.2}, {}–{} DTE, trend filter {:?}, underlying ${:.0}–${:.0}, open interest ≥ {}, spread ≤ {:.0}% of the mid.",
                p.otm_min * 100.0,
                p.otm_max * 100.0,
                p.premium_min,
                p.premium_max,
                p.dte_min,
                p.dte_max,
                p.trend_filter,
                p.price_min,
                p.price_max,
                p.min_open_interest,
                p.max_spread_pct * 100.0
            ),
        );
        line(&mut md, String::new());
        line(&mut md, "## Opportunities per day".into());
        line(&mut md, String::new());
        line(&mut md, "| measure | value |".into());
        line(&mut md, "|---|---|".into());
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let share = |n: usize| {
            if self.sessions == 0 {
                "-".to_string()
            } else {
                pct(n as f64 / self.sessions as f64)
            }
        };
        for (k, v) in [
            (
                "opportunities listed".to_string(),
                s.total_opportunities.to_string(),
            ),
            (
                "days with at least one".into(),
                format!(
                    "{} ({})",
                    s.days_with_opportunity,
                    share(s.days_with_opportunity)
                ),
            ),
            ("mean per day".into(), format!("{:.2}", s.mean_per_day)),
            ("median per day".into(), format!("{:.1}", s.median_per_day)),
            ("most in a day".into(), s.max_per_day.to_string()),
            (
                format!("days with {}–{} (the target)", TARGET_BAND.0, TARGET_BAND.1),
                format!(
                    "{} ({})",
                    s.days_in_target_band,
                    pct(s.share_in_target_band)
                ),
            ),
            (
                format!("days with more than {}", TARGET_BAND.1),
                s.days_above_target_band.to_string(),
            ),
        ] {
            line(&mut md, format!("| {k} | {v} |"));
        }
        line(&mut md, String::new());

        // Distribution of the daily count.
        let mut dist: BTreeMap<usize, usize> = BTreeMap::new();
        for d in &self.per_day {
            *dist.entry(d.count).or_default() += 1;
        }
        line(&mut md, "| opportunities in a day | sessions |".into());
        line(&mut md, "|---|---|".into());
        for (count, days) in &dist {
            line(&mut md, format!("| {count} | {days} |"));
        }
        line(&mut md, String::new());

        for (title, h) in [
            ("OTM %", &s.otm_pct),
            ("Premium at the bid ($)", &s.premium),
            ("Days to expiry", &s.dte),
        ] {
            histogram_markdown(&mut md, title, h);
        }

        line(&mut md, "## Sectors".into());
        line(&mut md, String::new());
        if s.sectors.is_empty() {
            line(&mut md, "(no opportunity)".into());
        } else {
            line(&mut md, "| sector | opportunities |".into());
            line(&mut md, "|---|---|".into());
            let mut sectors: Vec<(&String, &usize)> = s.sectors.iter().collect();
            sectors.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (name, n) in sectors {
                line(&mut md, format!("| {name} | {n} |"));
            }
        }
        line(&mut md, String::new());

        line(&mut md, "## Top symbols".into());
        line(&mut md, String::new());
        if s.top_symbols.is_empty() {
            line(&mut md, "(no opportunity)".into());
        } else {
            line(&mut md, "| symbol | opportunities | days |".into());
            line(&mut md, "|---|---|---|".into());
            for t in &s.top_symbols {
                line(
                    &mut md,
                    format!("| {} | {} | {} |", t.symbol, t.opportunities, t.days),
                );
            }
        }
        line(&mut md, String::new());

        line(&mut md, "## Month by month".into());
        line(&mut md, String::new());
        line(
            &mut md,
            "| month | sessions | days with one | opportunities | mean a day |".into(),
        );
        line(&mut md, "|---|---|---|---|---|".into());
        let mut months: BTreeMap<(i32, u32), (usize, usize, usize)> = BTreeMap::new();
        for d in &self.per_day {
            let e = months.entry((d.date.year(), d.date.month())).or_default();
            e.0 += 1;
            e.1 += usize::from(d.count > 0);
            e.2 += d.count;
        }
        for ((y, m), (n, with, total)) in &months {
            line(
                &mut md,
                format!(
                    "| {y}-{m:02} | {n} | {with} | {total} | {:.2} |",
                    *total as f64 / (*n).max(1) as f64
                ),
            );
        }
        line(&mut md, String::new());

        if let Some(m) = &self.manual {
            line(&mut md, "## Against the manual trades".into());
            line(&mut md, String::new());
            line(&mut md, "| measure | value |".into());
            line(&mut md, "|---|---|".into());
            line(&mut md, format!("| trades in the window | {} |", m.trades));
            if m.outside_window > 0 {
                line(
                    &mut md,
                    format!(
                        "| trades outside the window (ignored) | {} |",
                        m.outside_window
                    ),
                );
            }
            line(
                &mut md,
                format!(
                    "| exact match (date, symbol, strike, expiry) | {} ({}) |",
                    m.matched_exact,
                    pct(m.match_rate_exact)
                ),
            );
            line(
                &mut md,
                format!(
                    "| symbol listed that day | {} ({}) |",
                    m.matched_symbol_day,
                    pct(m.match_rate_symbol_day)
                ),
            );
            line(&mut md, String::new());
            if !m.by_criterion.is_empty() {
                line(&mut md, "Why the others were not selected:".into());
                line(&mut md, String::new());
                line(&mut md, "| criterion | trades |".into());
                line(&mut md, "|---|---|".into());
                let mut crit: Vec<(&String, &usize)> = m.by_criterion.iter().collect();
                crit.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (c, n) in crit {
                    line(&mut md, format!("| {c} | {n} |"));
                }
                line(&mut md, String::new());
                line(
                    &mut md,
                    "| line | date | put | symbol listed that day | reason |".into(),
                );
                line(&mut md, "|---|---|---|---|---|".into());
                for u in &m.unmatched {
                    let t = &u.trade;
                    line(
                        &mut md,
                        format!(
                            "| {} | {} | {} {} {} P | {} | {} |",
                            t.line,
                            t.date,
                            t.symbol,
                            t.expiry,
                            t.strike,
                            if u.symbol_day_matched { "yes" } else { "no" },
                            u.reason.replace('|', "/")
                        ),
                    );
                }
                line(&mut md, String::new());
            }
        }
        md
    }
}

fn histogram_markdown(md: &mut String, title: &str, h: &Histogram) {
    let max = h.buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    md.push_str(&format!(
        "## {title}\n\n| bucket | count | |\n|---|---|---|\n"
    ));
    if h.below > 0 {
        md.push_str(&format!("| below | {} | |\n", h.below));
    }
    for b in &h.buckets {
        let bar = "█".repeat((b.count * 30).div_ceil(max));
        md.push_str(&format!("| {} | {} | {bar} |\n", b.label, b.count));
    }
    if h.above > 0 {
        md.push_str(&format!("| above | {} | |\n", h.above));
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn test_csv_reads_required_columns_in_any_order_and_ignores_extras() {
        let text = "\u{feff}Expiry,premium,Symbol,strike,date,right\n\
                    2021-01-22,0.40,lly,150,2021-01-12,P\n\
                    \n# a comment\n\
                    \"2021-01-29\",\"0,35\",AMD,$72.50,01/19/2021,put\n";
        let t = parse_manual_trades("m.csv", text).unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].symbol.as_str(), "LLY");
        assert_eq!(t[0].strike, Price::from_cents(15_000));
        assert_eq!(t[0].date, d("2021-01-12"));
        assert_eq!(t[0].expiry, d("2021-01-22"));
        assert_eq!(t[0].line, 2);
        assert_eq!(t[1].strike, Price::from_cents(7_250));
        assert_eq!(t[1].date, d("2021-01-19"));
        assert_eq!(t[1].line, 5);
    }

    fn err(text: &str) -> String {
        match parse_manual_trades("m.csv", text) {
            Ok(_) => "no error".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn test_csv_errors_name_line_and_column() {
        let h = "date,symbol,strike,expiry\n";
        assert_eq!(
            err(&format!(
                "{h}2021-01-12,LLY,150,2021-01-22\n2021-13-01,LLY,150,2021-01-22\n"
            )),
            "m.csv, line 3, column 1 (date): \"2021-13-01\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            err(&format!("{h}2021-01-12,LLY,abc,2021-01-22\n")),
            "m.csv, line 2, column 3 (strike): \"abc\" is not a strike (a decimal such as 150 or 152.50)"
        );
        assert!(
            err(&format!("{h}2021-01-12,LLY,-5,2021-01-22\n"))
                .contains("line 2, column 3 (strike)")
        );
        assert!(
            err(&format!("{h}2021-01-12,LLY,150\n"))
                .starts_with("m.csv, line 2, column 4 (expiry): missing field")
        );
        assert!(
            err(&format!("{h}2021-01-12,,150,2021-01-22\n"))
                .contains("line 2, column 2 (symbol): empty field")
        );
        assert!(
            err(&format!("{h}2021-01-12,LLY,150,2021-01-08\n")).contains("before the trade date")
        );
        assert!(
            err(&format!("{h}2021-01-12,L!Y,150,2021-01-22\n"))
                .contains("line 2, column 2 (symbol)")
        );
        assert!(
            err("date,symbol,strike,expiry,right\n2021-01-12,LLY,150,2021-01-22,C\n")
                .contains("column 5 (right)")
        );
        assert!(err(&format!("{h}2021-01-12,\"LLY,150,2021-01-22\n")).contains("unterminated"));
        assert_eq!(
            err("date,symbol,strike\n"),
            "m.csv, line 1: the header has no column \"expiry\" (needed: date,symbol,strike,expiry)"
        );
        assert!(err("").contains("no column \"date\""));
    }

    #[test]
    fn test_checkpoint_is_offset_from_the_open_and_kept_before_the_close() {
        let open = d("2021-11-26")
            .and_hms_opt(14, 30, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default();
        let close = open + Duration::minutes(210); // 13:00 early close
        assert_eq!(
            checkpoint_time(open, close, DEFAULT_CHECKPOINT),
            open + Duration::minutes(30)
        );
        let late = NaiveTime::from_hms_opt(15, 0, 0).unwrap_or(NaiveTime::MIN);
        assert_eq!(
            checkpoint_time(open, close, late),
            close - Duration::minutes(1)
        );
        let early = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN);
        assert_eq!(checkpoint_time(open, close, early), open);
    }

    fn opp(date: &str, sym: &str, otm: f64, cents: i64, dte: i64) -> ListedOpportunity {
        ListedOpportunity {
            date: d(date),
            rank: 1,
            symbol: Symbol::new(sym).unwrap_or_else(|_| unreachable!()),
            sector: Some("Tech".into()),
            strike: Price::from_cents(10_000),
            expiry: d(date) + Duration::days(dte),
            dte,
            otm_pct: otm,
            premium: Price::from_cents(cents),
            underlying_price: Price::from_cents(12_000),
            iv: None,
            margin_efficiency: 0.1,
        }
    }

    #[test]
    fn test_summary_statistics_and_histogram_edges() {
        let per_day: Vec<DayCount> = [0, 2, 5, 10, 11, 0]
            .iter()
            .enumerate()
            .map(|(i, c)| DayCount {
                date: d("2021-01-04") + Duration::days(i as i64),
                count: *c,
                passed_screen: 3,
            })
            .collect();
        let listed = vec![
            opp("2021-01-05", "AAA", 0.15, 30, 7),
            opp("2021-01-05", "AAA", 0.1999, 34, 14),
            opp("2021-01-06", "BBB", 0.20, 35, 10),
            opp("2021-01-06", "AAA", 0.165, 50, 8),
        ];
        let s = summarize(&per_day, &listed, &NakedPutParams::default());
        assert_eq!(s.total_opportunities, 28);
        assert_eq!(s.days_with_opportunity, 4);
        assert!((s.mean_per_day - 28.0 / 6.0).abs() < 1e-12);
        assert!((s.median_per_day - 3.5).abs() < 1e-12);
        assert_eq!(s.max_per_day, 11);
        assert_eq!(s.days_in_target_band, 2);
        assert!((s.share_in_target_band - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(s.days_above_target_band, 1);
        let counts = |h: &Histogram| h.buckets.iter().map(|b| b.count).collect::<Vec<_>>();
        assert_eq!(s.otm_pct.buckets.len(), 5);
        assert_eq!(counts(&s.otm_pct), vec![1, 1, 0, 0, 2]);
        assert_eq!(s.otm_pct.buckets[0].label, "15–16%");
        assert_eq!(counts(&s.premium), vec![2, 1, 0, 1]);
        assert_eq!(s.premium.buckets[3].label, "0.45–0.50");
        assert_eq!(s.dte.buckets.len(), 8);
        assert_eq!(counts(&s.dte), vec![1, 1, 0, 1, 0, 0, 0, 1]);
        assert_eq!(s.sectors.get("Tech"), Some(&4));
        assert_eq!(s.top_symbols[0].symbol.as_str(), "AAA");
        assert_eq!(
            (s.top_symbols[0].opportunities, s.top_symbols[0].days),
            (3, 2)
        );
        assert_eq!(s.otm_pct.total(), 4);
    }

    #[test]
    fn test_describe_reads_like_a_reason() {
        let p = NakedPutParams::default();
        let c = Criterion::number("premium_bid", 0.25, "0.3..=0.5", false);
        assert_eq!(describe(&c, &p), "bid 0.25 below 0.30");
        let c = Criterion::number("otm_pct", 0.123, "0.15..=0.2", false);
        assert_eq!(describe(&c, &p), "12.3% out of the money, below 15%");
        let c = Criterion::text(
            "uptrend",
            "close 1 sma20 2 sma50 3",
            "close > sma20 > sma50",
            false,
        );
        assert_eq!(describe(&c, &p), "uptrend failed (close 1 sma20 2 sma50 3)");
    }
}
