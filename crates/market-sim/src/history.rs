//! Daily price history, aligned on one calendar of sessions: the shape both
//! the real data (`data.rs`) and the synthetic generator (`synthetic.rs`)
//! produce, and the only thing the chain model and the exchange read.

use chrono::NaiveDate;
use core_domain::Symbol;
use serde::{Deserialize, Serialize};

/// One tradable underlying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolInfo {
    pub symbol: Symbol,
    /// GICS sector, e.g. "Information Technology".
    pub sector: String,
    pub name: String,
}

/// Daily closes of several symbols and the market series, aligned on
/// `dates` (ascending exchange sessions). Missing values are `NaN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub dates: Vec<NaiveDate>,
    pub symbols: Vec<SymbolInfo>,
    /// `closes[s][d]`: close of `symbols[s]` on `dates[d]` (adjusted), or NaN.
    pub closes: Vec<Vec<f64>>,
    /// The S&P 500 index close on each date, or NaN where unknown.
    pub index: Vec<f64>,
    /// The VIX close on each date (in vol points, 13.5 = 13.5%), or NaN.
    pub vix: Vec<f64>,
    /// The risk-free rate on each date as a continuously compounded decimal
    /// (0.05 = 5%); never NaN (gaps are filled, see the loader's docs).
    pub rates: Vec<f64>,
    /// `implied_vol[s][d]`: the real 3-month at-the-money implied
    /// volatility of `symbols[s]` at the close of `dates[d]` (0.25 = 25%),
    /// NaN where unknown. Empty when the history has none (synthetic
    /// markets, or symbols the real file does not cover).
    #[serde(default)]
    pub implied_vol: Vec<Vec<f64>>,
    /// The CBOE SKEW index close on each date, or NaN; empty when unknown.
    #[serde(default)]
    pub skew_index: Vec<f64>,
    /// `volumes[s][d]`: shares traded, NaN where unknown; empty when the
    /// history has closes only (the 20-stock file, synthetic markets).
    #[serde(default)]
    pub volumes: Vec<Vec<f64>>,
}

impl History {
    /// Index of `date` in `dates`, if it is a session of this history.
    pub fn date_index(&self, date: NaiveDate) -> Option<usize> {
        self.dates.binary_search(&date).ok()
    }

    /// Index of the last session on or before `date`.
    pub fn date_index_at_or_before(&self, date: NaiveDate) -> Option<usize> {
        match self.dates.binary_search(&date) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        }
    }

    pub fn symbol_index(&self, symbol: &Symbol) -> Option<usize> {
        self.symbols.iter().position(|s| &s.symbol == symbol)
    }

    /// The close of symbol `s` on date index `d`, if known.
    pub fn close(&self, s: usize, d: usize) -> Option<f64> {
        self.closes
            .get(s)
            .and_then(|c| c.get(d))
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
    }

    /// The real implied volatility of symbol `s` at the close of date
    /// index `d`, if known.
    pub fn implied_vol(&self, s: usize, d: usize) -> Option<f64> {
        self.implied_vol
            .get(s)
            .and_then(|c| c.get(d))
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
    }

    /// Shares traded by symbol `s` on date index `d`, if known.
    pub fn volume(&self, s: usize, d: usize) -> Option<f64> {
        self.volumes
            .get(s)
            .and_then(|c| c.get(d))
            .copied()
            .filter(|v| v.is_finite() && *v >= 0.0)
    }

    /// Up to `n` known closes of symbol `s` ending at date index `d`
    /// (inclusive), oldest first.
    pub fn trailing_closes(&self, s: usize, d: usize, n: usize) -> Vec<f64> {
        let Some(series) = self.closes.get(s) else {
            return Vec::new();
        };
        let end = (d + 1).min(series.len());
        let mut out: Vec<f64> = series[..end]
            .iter()
            .rev()
            .filter(|v| v.is_finite() && **v > 0.0)
            .take(n)
            .copied()
            .collect();
        out.reverse();
        out
    }

    /// The dates from `from` to `to` inclusive.
    pub fn date_range(&self, from: NaiveDate, to: NaiveDate) -> std::ops::Range<usize> {
        let start = self.dates.partition_point(|d| *d < from);
        let end = self.dates.partition_point(|d| *d <= to);
        start..end.max(start)
    }

    /// Checks the shape: every column as long as `dates`, dates ascending
    /// and unique, rates finite. Loaders and generators call it before
    /// handing a history out.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.dates.len();
        if self.dates.windows(2).any(|w| w[0] >= w[1]) {
            return Err("dates are not strictly ascending".into());
        }
        if self.closes.len() != self.symbols.len() {
            return Err(format!(
                "{} close series for {} symbols",
                self.closes.len(),
                self.symbols.len()
            ));
        }
        for (info, c) in self.symbols.iter().zip(&self.closes) {
            if c.len() != n {
                return Err(format!("{}: {} closes for {n} dates", info.symbol, c.len()));
            }
        }
        for (name, col) in [
            ("index", &self.index),
            ("vix", &self.vix),
            ("rates", &self.rates),
        ] {
            if col.len() != n {
                return Err(format!("{name}: {} values for {n} dates", col.len()));
            }
        }
        if !self.implied_vol.is_empty() && self.implied_vol.len() != self.symbols.len() {
            return Err(format!(
                "{} implied-vol series for {} symbols",
                self.implied_vol.len(),
                self.symbols.len()
            ));
        }
        if let Some((i, c)) = self
            .implied_vol
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() != n)
        {
            return Err(format!(
                "implied_vol[{i}]: {} values for {n} dates",
                c.len()
            ));
        }
        if !self.volumes.is_empty()
            && (self.volumes.len() != self.symbols.len()
                || self.volumes.iter().any(|v| v.len() != n))
        {
            return Err("volumes must have one series of every date per symbol".into());
        }
        if !self.skew_index.is_empty() && self.skew_index.len() != n {
            return Err(format!(
                "skew_index: {} values for {n} dates",
                self.skew_index.len()
            ));
        }
        if self.rates.iter().any(|r| !r.is_finite()) {
            return Err("rates has a gap (NaN)".into());
        }
        Ok(())
    }
}
