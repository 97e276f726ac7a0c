//! Calibration of the modelled surface to real option data, computed from
//! the shipped files at run time (`trader-cli calibrate` prints it):
//!
//! - **ATM level** ([`fit_iv_model`]): the real 3-month at-the-money IV of
//!   the 20 stocks (2010–2022) regressed by ordinary least squares on what
//!   the model knows the session before (realized volatility over three
//!   windows and the VIX), fitted on all 20 stocks (in-sample) and on half
//!   of them (held out: evaluated on the other half); and the error of the
//!   surface that follows the real series (the previous close's value).
//! - **Index skew** ([`fit_index_skew`]): real SPY put IVs by OTM % at
//!   ~45 and ~21 days to expiry (2010–2016, first trading day of each
//!   month), fitted on the even months and checked on the odd ones by
//!   5%-OTM bucket.
//!
//! Every figure is an error in vol points (1 point = 0.01 of volatility).

use chrono::NaiveDate;
use serde::Deserialize;

use crate::History;
use crate::chain::realized_vol;
use crate::data::DataError;
use crate::params::ChainModelParams;

/// The real SPY put quotes (OptionsDX end-of-day), embedded as gzip.
pub const SPY_PUTS_FILE: &str = "spy_put_quotes_monthly_2010_2016.json";
static SPY_PUTS_GZ: &[u8] = include_bytes!("../data/spy_put_quotes_monthly_2010_2016.json.gz");

/// Names of the inputs of the ATM model, in coefficient order after the
/// intercept.
pub const IV_INPUT_NAMES: [&str; 4] = ["rv_short", "rv_long", "rv_long_run", "vix"];

/// What the ATM model reads for one symbol and session `d`: realized
/// volatility over `rv_short_days`, `rv_long_days` and `long_run_days`
/// sessions and the VIX as a fraction, all from data up to session
/// `d − 1`. Where the VIX is unknown, the index's blended realized
/// volatility plus `vrp_points` stands in for it.
pub fn iv_inputs(history: &History, s: usize, d: usize, p: &ChainModelParams) -> Option<[f64; 4]> {
    let series = history.closes.get(s)?;
    let short = realized_vol(series, d, p.rv_short_days)?;
    let long = realized_vol(series, d, p.rv_long_days).unwrap_or(short);
    let long_run = realized_vol(series, d, p.long_run_days).unwrap_or(long);
    let vix = d
        .checked_sub(1)
        .and_then(|prev| history.vix.get(prev).copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v / 100.0)
        .or_else(|| {
            let short_i = realized_vol(&history.index, d, p.rv_short_days)?;
            let long_i = realized_vol(&history.index, d, p.rv_long_days).unwrap_or(short_i);
            Some(p.rv_short_weight * short_i + (1.0 - p.rv_short_weight) * long_i + p.vrp_points)
        })?;
    Some([short, long, long_run, vix])
}

/// The modelled 91-day ATM IV from [`iv_inputs`] and the coefficients
/// `[intercept, rv_short, rv_long, rv_long_run, vix]`.
pub fn iv_model_value(coef: &[f64; 5], x: &[f64; 4]) -> f64 {
    coef[0] + coef[1] * x[0] + coef[2] * x[1] + coef[3] * x[2] + coef[4] * x[3]
}

/// Bias (mean of model − real), RMSE and MAE in vol points, over `n`
/// observations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ErrorStats {
    pub n: usize,
    pub bias: f64,
    pub rmse: f64,
    pub mae: f64,
}

impl ErrorStats {
    /// From (model, real) pairs in fractions; reported in vol points.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let (mut n, mut sum, mut sq, mut abs) = (0usize, 0.0, 0.0, 0.0);
        for (m, r) in pairs {
            let e = (m - r) * 100.0;
            n += 1;
            sum += e;
            sq += e * e;
            abs += e.abs();
        }
        if n == 0 {
            return ErrorStats::default();
        }
        let k = n as f64;
        ErrorStats {
            n,
            bias: sum / k,
            rmse: (sq / k).sqrt(),
            mae: abs / k,
        }
    }
}

/// One row of the ATM calibration sample: symbol, session, inputs, the
/// real IV at the previous close (what the anchor uses) and at this
/// session's close (what a quote during the session is compared with).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvObservation {
    pub symbol: usize,
    pub session: usize,
    pub inputs: [f64; 4],
    pub previous_real: f64,
    pub real: f64,
}

/// Every session where a symbol has the real IV on it and the session
/// before, and the model's inputs.
pub fn iv_observations(history: &History, p: &ChainModelParams) -> Vec<IvObservation> {
    let mut out = Vec::new();
    for s in 0..history.implied_vol.len() {
        for d in 1..history.dates.len() {
            let (Some(real), Some(previous_real)) =
                (history.implied_vol(s, d), history.implied_vol(s, d - 1))
            else {
                continue;
            };
            if let Some(inputs) = iv_inputs(history, s, d, p) {
                out.push(IvObservation {
                    symbol: s,
                    session: d,
                    inputs,
                    previous_real,
                    real,
                });
            }
        }
    }
    out
}

/// The fitted ATM model and its errors against the real series.
#[derive(Debug, Clone, PartialEq)]
pub struct IvFit {
    /// `[intercept, rv_short, rv_long, rv_long_run, vix]` fitted on every
    /// observation.
    pub coefficients: [f64; 5],
    /// The fit on all stocks, evaluated on all of them.
    pub in_sample: ErrorStats,
    /// Coefficients fitted on the stocks at even positions only…
    pub half_coefficients: [f64; 5],
    /// …evaluated on the stocks at odd positions.
    pub held_out: ErrorStats,
    /// The surface that follows the real series (previous close's value)
    /// against the session's real value: what the market shows where the
    /// real IV exists.
    pub anchored: ErrorStats,
    /// The coefficients of `params` (what the market uses), evaluated on
    /// every observation.
    pub configured: ErrorStats,
    /// The legacy formula (realized + VIX-based premium, term structure to
    /// 91 days), for comparison.
    pub legacy: ErrorStats,
    /// Per stock: symbol, held-out-style error of the configured model and
    /// of the anchored surface.
    pub by_symbol: Vec<(String, ErrorStats, ErrorStats)>,
    /// Which stocks were held out (odd positions).
    pub held_out_symbols: Vec<String>,
}

/// Fits the ATM model (see the module docs). Errors when the history has
/// no real implied volatility.
pub fn fit_iv_model(history: &History, p: &ChainModelParams) -> Result<IvFit, DataError> {
    let obs = iv_observations(history, p);
    if obs.len() < 100 {
        return Err(DataError::Inconsistent {
            file: crate::data::IMPLIED_VOL_FILE.into(),
            message: format!("only {} usable observations to calibrate on", obs.len()),
        });
    }
    let fit = |rows: &mut dyn Iterator<Item = &IvObservation>| -> [f64; 5] {
        let mut xtx = [[0.0; 5]; 5];
        let mut xty = [0.0; 5];
        for o in rows {
            let x = [1.0, o.inputs[0], o.inputs[1], o.inputs[2], o.inputs[3]];
            for i in 0..5 {
                xty[i] += x[i] * o.real;
                for j in 0..5 {
                    xtx[i][j] += x[i] * x[j];
                }
            }
        }
        solve5(xtx, xty)
    };
    let coefficients = fit(&mut obs.iter());
    let half_coefficients = fit(&mut obs.iter().filter(|o| o.symbol.is_multiple_of(2)));
    let stats = |coef: &[f64; 5], keep: &dyn Fn(&IvObservation) -> bool| {
        ErrorStats::from_pairs(
            obs.iter()
                .filter(|o| keep(o))
                .map(|o| (clamp_vol(p, iv_model_value(coef, &o.inputs)), o.real)),
        )
    };
    let configured_coef = p.iv_coefficients();
    let model = crate::ChainModel::new(ChainModelParams {
        iv_model: IV_MODEL_LEGACY.into(),
        iv_anchor: false,
        ..p.clone()
    });
    let legacy = ErrorStats::from_pairs(obs.iter().filter_map(|o| {
        let v = model.vol_state(history, o.symbol, o.session)?;
        Some((model.atm_vol(&v, 91.0 / 365.0), o.real))
    }));
    let by_symbol = (0..history.implied_vol.len())
        .map(|s| {
            (
                history.symbols[s].symbol.as_str().to_owned(),
                stats(&configured_coef, &|o| o.symbol == s),
                ErrorStats::from_pairs(
                    obs.iter()
                        .filter(|o| o.symbol == s)
                        .map(|o| (o.previous_real, o.real)),
                ),
            )
        })
        .collect();
    Ok(IvFit {
        coefficients,
        in_sample: stats(&coefficients, &|_| true),
        half_coefficients,
        held_out: stats(&half_coefficients, &|o| o.symbol % 2 == 1),
        anchored: ErrorStats::from_pairs(obs.iter().map(|o| (o.previous_real, o.real))),
        configured: stats(&configured_coef, &|_| true),
        legacy,
        by_symbol,
        held_out_symbols: history
            .symbols
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s.symbol.as_str().to_owned())
            .collect(),
    })
}

/// The legacy name of `iv_model`: realized volatility plus a VIX-based
/// premium.
pub const IV_MODEL_LEGACY: &str = "realized_plus_premium";
/// The calibrated `iv_model` (the default).
pub const IV_MODEL_CALIBRATED: &str = "calibrated";

fn clamp_vol(p: &ChainModelParams, v: f64) -> f64 {
    v.clamp(p.min_vol, p.max_vol)
}

/// Solves the 5×5 system `a·x = b` by Gaussian elimination with partial
/// pivoting; zeros for a singular system.
fn solve5(mut a: [[f64; 5]; 5], mut b: [f64; 5]) -> [f64; 5] {
    solve(&mut a, &mut b)
}

fn solve<const N: usize>(a: &mut [[f64; N]; N], b: &mut [f64; N]) -> [f64; N] {
    for col in 0..N {
        let Some(piv) = (col..N).max_by(|i, j| a[*i][col].abs().total_cmp(&a[*j][col].abs()))
        else {
            return [0.0; N];
        };
        if a[piv][col].abs() < 1e-12 {
            return [0.0; N];
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot_row = a[col];
        for row in col + 1..N {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row.iter()).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let mut s = b[row];
        for k in row + 1..N {
            s -= a[row][k] * x[k];
        }
        x[row] = s / a[row][row];
    }
    x
}

// ---------------------------------------------------------------- skew --

#[derive(Debug, Clone, Deserialize)]
struct SpyFile {
    chain: std::collections::BTreeMap<String, SpyMonth>,
}

#[derive(Debug, Clone, Deserialize)]
struct SpyMonth {
    entry_date: String,
    expiry_date: String,
    mid_date: Option<String>,
    puts: Vec<SpyPut>,
}

#[derive(Debug, Clone, Deserialize)]
struct SpyPut {
    strike: f64,
    entry: Option<SpySnap>,
    mid: Option<SpySnap>,
}

#[derive(Debug, Clone, Deserialize)]
struct SpySnap {
    iv: Option<f64>,
    spot: f64,
}

/// One real put quote: the snapshot's date, days to expiry, strike, spot
/// and implied volatility.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PutQuote {
    pub month: usize,
    pub date: NaiveDate,
    pub dte: i64,
    pub strike: f64,
    pub spot: f64,
    pub iv: f64,
}

impl PutQuote {
    /// Out-of-the-money share of spot (0.05 = 5% OTM).
    pub fn otm(&self) -> f64 {
        1.0 - self.strike / self.spot
    }
}

/// The real SPY put quotes of the shipped file, both snapshots, in month
/// order (`month` counts from 0). Quotes without an IV are skipped.
pub fn spy_put_quotes() -> Result<Vec<PutQuote>, DataError> {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(SPY_PUTS_GZ), &mut raw).map_err(
        |e| DataError::Decompress {
            file: SPY_PUTS_FILE.into(),
            message: e.to_string(),
        },
    )?;
    let file: SpyFile = serde_json::from_slice(&raw).map_err(|e| DataError::Inconsistent {
        file: SPY_PUTS_FILE.into(),
        message: e.to_string(),
    })?;
    let date = |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| DataError::Inconsistent {
            file: SPY_PUTS_FILE.into(),
            message: format!("{s:?}: {e}"),
        })
    };
    let mut out = Vec::new();
    for (month, m) in file.chain.values().enumerate() {
        let expiry = date(&m.expiry_date)?;
        let entry = date(&m.entry_date)?;
        let mid = m.mid_date.as_deref().map(date).transpose()?;
        for p in &m.puts {
            for (snap, when) in [(&p.entry, Some(entry)), (&p.mid, mid)] {
                let (Some(snap), Some(when)) = (snap, when) else {
                    continue;
                };
                let Some(iv) = snap.iv.filter(|v| v.is_finite() && *v > 0.01 && *v < 3.0) else {
                    continue;
                };
                if snap.spot > 0.0 && p.strike > 0.0 {
                    out.push(PutQuote {
                        month,
                        date: when,
                        dte: (expiry - when).num_days(),
                        strike: p.strike,
                        spot: snap.spot,
                        iv,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The index skew model: the 30-day-equivalent ATM level from the previous
/// close's VIX, σ_atm(T) = VIX/100 × (a₀ + a₁·ln(T/30 days)), and the smile
/// σ(K) = σ_atm × (1 + s·x + c·x²) in the chain model's standardized
/// moneyness x (saturated at `max_sd`), with the skew s = s₀ + s₁·v + s₂·k
/// and curvature c = c₀ + c₁·v, where v = VIX/20 − 1 and k = (SKEW − 130)/10
/// (both from the previous close).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexSkew {
    pub atm: [f64; 2],
    pub skew: [f64; 3],
    pub smile: [f64; 2],
    pub max_sd: f64,
}

impl IndexSkew {
    /// ATM IV at `dte` days with the VIX (points).
    pub fn atm_vol(&self, vix: f64, dte: f64) -> f64 {
        vix / 100.0 * (self.atm[0] + self.atm[1] * (dte.max(1.0) / 30.0).ln())
    }

    /// Modelled IV of a put at `strike` with the underlying at `spot`.
    pub fn put_vol(
        &self,
        vix: f64,
        skew_index: f64,
        dte: f64,
        spot: f64,
        strike: f64,
        rate: f64,
    ) -> f64 {
        let atm = self.atm_vol(vix, dte);
        let (v, k) = (vix / 20.0 - 1.0, (skew_index - 130.0) / 10.0);
        let x = self.moneyness(atm, dte, spot, strike, rate);
        let s = self.skew[0] + self.skew[1] * v + self.skew[2] * k;
        let c = self.smile[0] + self.smile[1] * v;
        atm * (1.0 + s * x + c * x * x)
    }

    fn moneyness(&self, atm: f64, dte: f64, spot: f64, strike: f64, rate: f64) -> f64 {
        let t = dte.max(1.0) / 365.0;
        let raw = (spot * (rate * t).exp() / strike).ln() / (atm * t.sqrt());
        self.max_sd * (raw / self.max_sd).tanh()
    }
}

/// Errors of the index skew model in one 5%-OTM bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketError {
    /// Lower edge of the bucket in % OTM (0, 5, 10, 15, 20).
    pub from_pct: u32,
    pub stats: ErrorStats,
}

/// The index skew calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct SkewFit {
    /// Fitted on the even months (0, 2, …).
    pub model: IndexSkew,
    /// Months fitted on and held out.
    pub fit_months: usize,
    pub held_out_months: usize,
    /// Held-out (odd) months, ~45 days to expiry (the entry snapshot), by
    /// bucket.
    pub held_out_45: Vec<BucketError>,
    /// Held-out months, ~21 days to expiry.
    pub held_out_21: Vec<BucketError>,
    /// Fitted months, ~45 days, by bucket (in-sample).
    pub in_sample_45: Vec<BucketError>,
}

/// Fits [`IndexSkew`] to the real SPY puts (see the module docs), with the
/// VIX and SKEW of the session before each snapshot from `history`.
pub fn fit_index_skew(history: &History, max_sd: f64) -> Result<SkewFit, DataError> {
    let quotes = spy_put_quotes()?;
    struct Row {
        q: PutQuote,
        vix: f64,
        skew: f64,
        rate: f64,
    }
    let prev = |d: NaiveDate, series: &[f64]| -> Option<f64> {
        let i = history.date_index(d)?;
        series
            .get(i.checked_sub(1)?)
            .copied()
            .filter(|v| v.is_finite())
    };
    let rows: Vec<Row> = quotes
        .into_iter()
        .filter(|q| q.otm() >= 0.0 && q.otm() < 0.25)
        .filter_map(|q| {
            Some(Row {
                vix: prev(q.date, &history.vix)?,
                skew: prev(q.date, &history.skew_index)?,
                rate: prev(q.date, &history.rates)?,
                q,
            })
        })
        .collect();
    if rows.len() < 100 {
        return Err(DataError::Inconsistent {
            file: SPY_PUTS_FILE.into(),
            message: format!("only {} usable quotes to calibrate on", rows.len()),
        });
    }
    let fitting = |r: &&Row| r.q.month.is_multiple_of(2);
    // 1. ATM: the real IV of the put nearest the money (within 1% OTM) of
    //    each snapshot, against VIX × (a0 + a1·ln(T/30)).
    let mut xtx = [[0.0; 2]; 2];
    let mut xty = [0.0; 2];
    let atm_real = |r: &Row| -> Option<f64> {
        rows.iter()
            .filter(|o| o.q.month == r.q.month && o.q.date == r.q.date && o.q.otm() < 0.01)
            .min_by(|a, b| a.q.otm().total_cmp(&b.q.otm()))
            .map(|o| o.q.iv)
    };
    let mut seen = std::collections::BTreeSet::new();
    for r in rows.iter().filter(fitting) {
        if !seen.insert((r.q.month, r.q.date)) {
            continue;
        }
        let Some(atm) = atm_real(r) else { continue };
        let x = [
            r.vix / 100.0,
            r.vix / 100.0 * (r.q.dte.max(1) as f64 / 30.0).ln(),
        ];
        for i in 0..2 {
            xty[i] += x[i] * atm;
            for j in 0..2 {
                xtx[i][j] += x[i] * x[j];
            }
        }
    }
    let atm = solve(&mut xtx, &mut xty);
    // 2. Skew and smile, on the real ATM level of each snapshot (so the
    //    shape is fitted apart from the level's error).
    let mut model = IndexSkew {
        atm,
        skew: [0.0; 3],
        smile: [0.0; 2],
        max_sd,
    };
    let mut xtx = [[0.0; 5]; 5];
    let mut xty = [0.0; 5];
    let mut atm_cache = std::collections::BTreeMap::new();
    for r in rows.iter().filter(fitting) {
        let a = *atm_cache
            .entry((r.q.month, r.q.date))
            .or_insert_with(|| atm_real(r));
        let Some(a) = a else { continue };
        let dte = r.q.dte as f64;
        let x = model.moneyness(a, dte, r.q.spot, r.q.strike, r.rate);
        let (v, k) = (r.vix / 20.0 - 1.0, (r.skew - 130.0) / 10.0);
        let f = [x, x * v, x * k, x * x, x * x * v];
        let y = r.q.iv / a - 1.0;
        for i in 0..5 {
            xty[i] += f[i] * y;
            for j in 0..5 {
                xtx[i][j] += f[i] * f[j];
            }
        }
    }
    let c = solve5(xtx, xty);
    model.skew = [c[0], c[1], c[2]];
    model.smile = [c[3], c[4]];
    let buckets = |keep: &dyn Fn(&Row) -> bool| -> Vec<BucketError> {
        (0..5u32)
            .map(|b| {
                let lo = f64::from(b) * 0.05;
                BucketError {
                    from_pct: b * 5,
                    stats: ErrorStats::from_pairs(
                        rows.iter()
                            .filter(|r| keep(r) && r.q.otm() >= lo && r.q.otm() < lo + 0.05)
                            .map(|r| {
                                let m = model.put_vol(
                                    r.vix,
                                    r.skew,
                                    r.q.dte as f64,
                                    r.q.spot,
                                    r.q.strike,
                                    r.rate,
                                );
                                (m, r.q.iv)
                            }),
                    ),
                }
            })
            .collect()
    };
    let months = rows.iter().map(|r| r.q.month).max().unwrap_or(0) + 1;
    Ok(SkewFit {
        model,
        fit_months: months.div_ceil(2),
        held_out_months: months / 2,
        held_out_45: buckets(&|r| r.q.month % 2 == 1 && r.q.dte >= 35),
        held_out_21: buckets(&|r| r.q.month % 2 == 1 && r.q.dte < 35),
        in_sample_45: buckets(&|r| r.q.month.is_multiple_of(2) && r.q.dte >= 35),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_solve_recovers_a_known_system() {
        let a = [[2.0, 1.0], [1.0, 3.0]];
        let x = solve(&mut a.clone(), &mut [5.0, 10.0]);
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn test_error_stats_in_vol_points() {
        let s = ErrorStats::from_pairs([(0.22, 0.20), (0.18, 0.20)]);
        assert_eq!(s.n, 2);
        assert!(s.bias.abs() < 1e-9);
        assert!((s.mae - 2.0).abs() < 1e-9 && (s.rmse - 2.0).abs() < 1e-9);
    }
}
