//! A seeded synthetic market for scenarios history lacks: stochastic
//! volatility (Heston, full-truncation Euler, daily steps) with jumps
//! (Merton: Poisson arrivals, normal log sizes), a market factor every
//! symbol loads on (beta) plus an idiosyncratic part, per-symbol profiles
//! and sectors, a synthetic index and VIX.
//!
//! Two uses beyond stress scenarios:
//! * a **null market** ([`SyntheticConfig::null_market`]): constant
//!   volatility, no jumps, drift equal to the risk-free rate, and options
//!   priced at exactly that volatility with no skew and no premium
//!   ([`null_chain_params`]), so no strategy parameter has a real edge;
//! * **planted edges** ([`PlantedEdge`]): extra implied volatility in one
//!   sector, one out-of-the-money bucket or on one weekday, so options
//!   there are richer than the realized path justifies and selling them
//!   earns more. The learning engine should find these and nothing else.
//!
//! Deterministic: the same config gives the same history, bit for bit.

use chrono::{Datelike, NaiveDate, Weekday};
use core_domain::Symbol;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::calendar::NyseCalendar;
use crate::chain::mix;
use crate::params::ChainModelParams;
use crate::{History, SymbolInfo};

/// One synthetic symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolProfile {
    pub symbol: String,
    pub sector: String,
    pub start_price: f64,
    /// Loading on the market factor.
    pub beta: f64,
    /// Long-run idiosyncratic volatility (annualized).
    pub idio_vol: f64,
    /// Heston mean reversion speed of the idiosyncratic variance (per year).
    pub kappa: f64,
    /// Volatility of variance.
    pub vol_of_vol: f64,
    /// Jumps per year, and their mean and standard deviation in log price.
    pub jump_intensity: f64,
    pub jump_mean: f64,
    pub jump_std: f64,
}

/// The market factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketProfile {
    /// Expected return per year above the risk-free rate.
    pub excess_drift: f64,
    pub long_run_vol: f64,
    pub kappa: f64,
    pub vol_of_vol: f64,
    /// Correlation of variance and price shocks (the leverage effect).
    pub rho: f64,
    pub jump_intensity: f64,
    pub jump_mean: f64,
    pub jump_std: f64,
    /// Risk-free rate, continuously compounded.
    pub rate: f64,
    /// Vol points by which the synthetic VIX exceeds the market's true
    /// volatility (the variance risk premium the chain model reads).
    pub vix_premium: f64,
}

/// Where a planted edge applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EdgeScope {
    /// Every option on a symbol of this sector.
    Sector { sector: String },
    /// Puts whose strike is `min..=max` below spot (fractions, 0.18..=0.20).
    OtmBucket { min: f64, max: f64 },
    /// Every option quoted on this weekday ("Mon", "Tue", ...).
    Weekday { day: String },
}

/// Extra implied volatility (vol points, 0.05 = 5 points) where `scope`
/// applies: options there are priced richer than the path justifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantedEdge {
    pub scope: EdgeScope,
    pub extra_vol: f64,
}

impl PlantedEdge {
    /// Extra vol for an option of `sector`, `otm` below spot, quoted on `day`.
    pub fn extra_for(&self, sector: &str, otm: f64, day: Weekday) -> f64 {
        let applies = match &self.scope {
            EdgeScope::Sector { sector: s } => s == sector,
            EdgeScope::OtmBucket { min, max } => otm >= *min && otm <= *max,
            EdgeScope::Weekday { day: d } => d.parse::<Weekday>().is_ok_and(|w| w == day),
        };
        if applies { self.extra_vol } else { 0.0 }
    }

    /// Every out-of-range value, as (key under the edge, message): an
    /// `otm_bucket` needs `0 <= min <= max < 1`, a `sector` a name, a
    /// `weekday` a trading day ("Mon".."Fri", or the full name), and
    /// `extra_vol` lies within -1..=1 vol.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        match &self.scope {
            EdgeScope::Sector { sector } => {
                if sector.trim().is_empty() {
                    p.push((
                        "scope.sector".into(),
                        "must name a sector, e.g. \"Energy\"; got an empty text".into(),
                    ));
                }
            }
            EdgeScope::OtmBucket { min, max } => {
                let fraction = |v: f64| v.is_finite() && (0.0..1.0).contains(&v);
                if !fraction(*min) {
                    p.push((
                        "scope.min".into(),
                        format!("must be a fraction below spot within 0..1, e.g. 0.18; got {min}"),
                    ));
                }
                if !fraction(*max) {
                    p.push((
                        "scope.max".into(),
                        format!("must be a fraction below spot within 0..1, e.g. 0.20; got {max}"),
                    ));
                }
                if fraction(*min) && fraction(*max) && min > max {
                    p.push((
                        "scope.min".into(),
                        format!("must not exceed scope.max ({max}); got {min}"),
                    ));
                }
            }
            EdgeScope::Weekday { day } => {
                let trading_day = day
                    .parse::<Weekday>()
                    .is_ok_and(|w| w.number_from_monday() <= 5);
                if !trading_day {
                    p.push((
                        "scope.day".into(),
                        format!(
                            "must be a trading day: \"Mon\", \"Tue\", \"Wed\", \"Thu\" or \"Fri\"; got {day:?}"
                        ),
                    ));
                }
            }
        }
        if !(self.extra_vol.is_finite() && (-1.0..=1.0).contains(&self.extra_vol)) {
            p.push((
                "extra_vol".into(),
                format!(
                    "must be within -1..=1 vol points as a fraction (0.05 = 5 points); got {}",
                    self.extra_vol
                ),
            ));
        }
        p
    }
}

/// Everything the generator needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    pub seed: u64,
    pub start: NaiveDate,
    /// Number of exchange sessions to generate.
    pub sessions: usize,
    pub market: MarketProfile,
    pub symbols: Vec<SymbolProfile>,
}

impl SyntheticConfig {
    /// A 20-symbol market in the sectors of the real data, with stochastic
    /// volatility and jumps.
    pub fn realistic(seed: u64, start: NaiveDate, sessions: usize) -> Self {
        let sectors = [
            ("Information Technology", 1.2, 0.30),
            ("Financials", 1.1, 0.25),
            ("Energy", 1.0, 0.30),
            ("Health Care", 0.8, 0.22),
            ("Consumer Staples", 0.6, 0.18),
            ("Consumer Discretionary", 1.1, 0.28),
            ("Industrials", 1.0, 0.24),
        ];
        let symbols = (0..20)
            .map(|i| {
                let (sector, beta, idio) = sectors[i % sectors.len()];
                let h = mix(seed ^ (i as u64 + 1));
                let wobble = 0.8 + 0.4 * ((h >> 11) as f64 / (1u64 << 53) as f64);
                SymbolProfile {
                    symbol: format!("SYN{i:02}"),
                    sector: sector.into(),
                    start_price: 40.0 + 10.0 * i as f64,
                    beta,
                    idio_vol: idio * wobble,
                    kappa: 3.0,
                    vol_of_vol: 0.4,
                    jump_intensity: 1.0,
                    jump_mean: -0.03,
                    jump_std: 0.06,
                }
            })
            .collect();
        SyntheticConfig {
            seed,
            start,
            sessions,
            market: MarketProfile {
                excess_drift: 0.05,
                long_run_vol: 0.16,
                kappa: 4.0,
                vol_of_vol: 0.5,
                rho: -0.7,
                jump_intensity: 0.5,
                jump_mean: -0.04,
                jump_std: 0.05,
                rate: 0.02,
                vix_premium: 0.04,
            },
            symbols,
        }
    }

    /// The null market: constant volatility, no jumps, no excess drift,
    /// no volatility premium. Pair it with [`null_chain_params`].
    pub fn null_market(seed: u64, start: NaiveDate, sessions: usize) -> Self {
        let mut c = Self::realistic(seed, start, sessions);
        c.market.excess_drift = 0.0;
        c.market.vol_of_vol = 0.0;
        c.market.jump_intensity = 0.0;
        c.market.vix_premium = 0.0;
        for s in &mut c.symbols {
            s.vol_of_vol = 0.0;
            s.jump_intensity = 0.0;
        }
        c
    }

    /// Every problem with the config, as (key, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.sessions < 2 {
            p.push((
                "sessions".into(),
                format!("must be at least 2; got {}", self.sessions),
            ));
        }
        if self.symbols.is_empty() {
            p.push(("symbols".into(), "at least one symbol is needed".into()));
        }
        for (i, s) in self.symbols.iter().enumerate() {
            if Symbol::new(&s.symbol).is_err() {
                p.push((
                    format!("symbols[{i}].symbol"),
                    format!("{:?} is not a valid symbol", s.symbol),
                ));
            }
            if !(s.start_price > 0.0
                && s.idio_vol >= 0.0
                && s.kappa >= 0.0
                && s.vol_of_vol >= 0.0
                && s.jump_intensity >= 0.0
                && s.jump_std >= 0.0)
            {
                p.push((
                    format!("symbols[{i}]"),
                    "prices, volatilities, speeds and intensities must not be negative".into(),
                ));
            }
        }
        let m = &self.market;
        if !(m.long_run_vol > 0.0
            && m.kappa >= 0.0
            && m.vol_of_vol >= 0.0
            && (-1.0..=1.0).contains(&m.rho)
            && m.jump_intensity >= 0.0
            && m.jump_std >= 0.0)
        {
            p.push((
                "market".into(),
                "volatility must be positive, rho within -1..=1, the rest not negative".into(),
            ));
        }
        p
    }
}

/// Chain-model parameters under which options on a [`SyntheticConfig::null_market`]
/// are fairly priced: no skew, no smile, no premium, a flat term structure.
pub fn null_chain_params() -> ChainModelParams {
    ChainModelParams {
        vrp_points: 0.0,
        vrp_min: 0.0,
        vrp_max: 0.0,
        skew_per_sd: 0.0,
        smile_per_sd2: 0.0,
        term_exponent: 0.0,
        iv_model: crate::calibrate::IV_MODEL_LEGACY.into(),
        iv_anchor: false,
        ..ChainModelParams::default()
    }
}

/// One Heston variance path step (full truncation), returning the new
/// variance and the variance used for this step's return.
fn heston_step(v: f64, kappa: f64, theta: f64, xi: f64, dt: f64, z: f64) -> (f64, f64) {
    let vp = v.max(0.0);
    let next = v + kappa * (theta - vp) * dt + xi * (vp * dt).sqrt() * z;
    (next, vp)
}

/// Generates the history: sessions from `start` on the NYSE calendar,
/// closes for every symbol, the index (starting at 1000), a VIX (true
/// market volatility plus `vix_premium`, in points) and a flat rate.
pub fn generate(config: &SyntheticConfig) -> Result<History, String> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(problems
            .iter()
            .map(|(k, m)| format!("{k}: {m}"))
            .collect::<Vec<_>>()
            .join("; "));
    }
    let calendar = NyseCalendar::new();
    let mut dates = Vec::with_capacity(config.sessions);
    let mut d = config.start;
    while dates.len() < config.sessions {
        if calendar.is_session(d) {
            dates.push(d);
        }
        d = d.succ_opt().ok_or("ran past the last representable date")?;
    }
    let dt = 1.0 / 252.0;
    let m = &config.market;
    let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed));
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    let n = dates.len();
    let theta_m = m.long_run_vol * m.long_run_vol;
    let mut v_m = theta_m;
    let mut index = Vec::with_capacity(n);
    let mut vix = Vec::with_capacity(n);
    let mut market_returns = Vec::with_capacity(n);
    let mut level = 1000.0_f64;
    let mut jump_rng = ChaCha8Rng::seed_from_u64(mix(config.seed ^ 0x4a55));
    let jump_count = |rng: &mut ChaCha8Rng, intensity: f64| -> u64 {
        if intensity <= 0.0 {
            return 0;
        }
        Poisson::new(intensity * dt).map_or(0, |p| p.sample(rng) as u64)
    };
    for i in 0..n {
        if i > 0 {
            let z1 = normal();
            let z2 = m.rho * z1 + (1.0 - m.rho * m.rho).sqrt() * normal();
            let (next, vp) = heston_step(v_m, m.kappa, theta_m, m.vol_of_vol, dt, z2);
            v_m = next;
            let k = jump_count(&mut jump_rng, m.jump_intensity);
            let mut jump = 0.0;
            for _ in 0..k {
                let z: f64 = StandardNormal.sample(&mut jump_rng);
                jump += m.jump_mean + m.jump_std * z;
            }
            let r = (m.rate + m.excess_drift - 0.5 * vp) * dt + (vp * dt).sqrt() * z1 + jump;
            market_returns.push(r);
            level *= r.exp();
        } else {
            market_returns.push(0.0);
        }
        index.push(level);
        vix.push((v_m.max(0.0).sqrt() + m.vix_premium) * 100.0);
    }
    let mut closes = Vec::with_capacity(config.symbols.len());
    let mut symbols = Vec::with_capacity(config.symbols.len());
    for (j, s) in config.symbols.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed ^ (0x1000 + j as u64)));
        let theta = s.idio_vol * s.idio_vol;
        let mut v = theta;
        let mut price = s.start_price;
        let mut series = Vec::with_capacity(n);
        for (i, rm) in market_returns.iter().enumerate() {
            if i > 0 {
                let z1: f64 = StandardNormal.sample(&mut rng);
                let zi: f64 = StandardNormal.sample(&mut rng);
                let z2 = m.rho * z1 + (1.0 - m.rho * m.rho).sqrt() * zi;
                let (next, vp) = heston_step(v, s.kappa, theta, s.vol_of_vol, dt, z2);
                v = next;
                let k = jump_count(&mut rng, s.jump_intensity);
                let mut jump = 0.0;
                for _ in 0..k {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    jump += s.jump_mean + s.jump_std * z;
                }
                // Market part scaled by beta, with the drift re-based so the
                // symbol's expected return is rate + beta × excess.
                let market_part = s.beta * (rm - m.rate * dt) + m.rate * dt;
                let idio = -0.5 * vp * dt + (vp * dt).sqrt() * z1 + jump;
                price *= (market_part + idio).exp();
            }
            series.push(price);
        }
        closes.push(series);
        symbols.push(SymbolInfo {
            symbol: Symbol::new(&s.symbol).map_err(|e| e.to_string())?,
            sector: s.sector.clone(),
            name: format!("Synthetic {}", s.symbol),
        });
    }
    let history = History {
        dates,
        symbols,
        closes,
        index,
        vix,
        rates: vec![m.rate; n],
        implied_vol: Vec::new(),
        skew_index: Vec::new(),
        volumes: Vec::new(),
    };
    history.validate()?;
    Ok(history)
}

/// The weekday name the edge scopes use.
pub fn weekday_name(date: NaiveDate) -> &'static str {
    match date.weekday() {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> NaiveDate {
        NaiveDate::from_ymd_opt(2030, 1, 2).unwrap()
    }

    #[test]
    fn test_same_seed_same_market_other_seed_other_market() {
        let a = generate(&SyntheticConfig::realistic(7, start(), 300)).unwrap();
        let b = generate(&SyntheticConfig::realistic(7, start(), 300)).unwrap();
        let c = generate(&SyntheticConfig::realistic(8, start(), 300)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.closes, c.closes);
        assert_eq!(a.dates.len(), 300);
        assert!(a.closes.iter().flatten().all(|p| p.is_finite() && *p > 0.0));
    }

    #[test]
    fn test_null_market_realized_vol_matches_its_constant_vol() {
        let cfg = SyntheticConfig::null_market(3, start(), 2_000);
        let h = generate(&cfg).unwrap();
        // Market variance plus beta² × market variance… symbol 4 has beta 0.6.
        let s = 4;
        let p = &cfg.symbols[s];
        let expected = (p.beta * p.beta * 0.16 * 0.16 + p.idio_vol * p.idio_vol).sqrt();
        let rv = crate::chain::realized_vol(&h.closes[s], h.dates.len(), 1_990).unwrap();
        assert!((rv / expected - 1.0).abs() < 0.08, "{rv} vs {expected}");
    }

    #[test]
    fn test_planted_edge_applies_only_in_its_scope() {
        let e = PlantedEdge {
            scope: EdgeScope::OtmBucket {
                min: 0.18,
                max: 0.20,
            },
            extra_vol: 0.05,
        };
        assert_eq!(e.extra_for("Energy", 0.19, Weekday::Mon), 0.05);
        assert_eq!(e.extra_for("Energy", 0.17, Weekday::Mon), 0.0);
        let w = PlantedEdge {
            scope: EdgeScope::Weekday { day: "Mon".into() },
            extra_vol: 0.03,
        };
        assert_eq!(w.extra_for("Energy", 0.1, Weekday::Mon), 0.03);
        assert_eq!(w.extra_for("Energy", 0.1, Weekday::Tue), 0.0);
    }

    #[test]
    fn test_planted_edge_problems_name_the_key() {
        let edge = |scope: EdgeScope, extra_vol: f64| PlantedEdge { scope, extra_vol };
        let keys = |e: PlantedEdge| e.problems().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        let bucket = |min: f64, max: f64| EdgeScope::OtmBucket { min, max };
        let day = |d: &str| EdgeScope::Weekday { day: d.into() };
        assert!(keys(edge(bucket(0.18, 0.20), 0.05)).is_empty());
        assert!(keys(edge(bucket(0.0, 0.0), -1.0)).is_empty());
        assert_eq!(keys(edge(bucket(0.3, 0.2), 0.05)), ["scope.min"]);
        assert_eq!(
            keys(edge(bucket(-0.1, 1.0), 0.05)),
            ["scope.min", "scope.max"]
        );
        assert_eq!(
            keys(edge(bucket(0.1, f64::NAN), -5.0)),
            ["scope.max", "extra_vol"]
        );
        assert!(keys(edge(day("Mon"), 0.05)).is_empty());
        assert!(keys(edge(day("friday"), 0.05)).is_empty());
        for bad in ["Sat", "Sunday", "Mo", "", " Mon"] {
            assert_eq!(keys(edge(day(bad), 0.05)), ["scope.day"], "{bad:?}");
        }
        let sector = |s: &str| EdgeScope::Sector { sector: s.into() };
        assert!(keys(edge(sector("Energy"), 0.05)).is_empty());
        assert_eq!(
            keys(edge(sector("  "), f64::INFINITY)),
            ["scope.sector", "extra_vol"]
        );
    }

    #[test]
    fn test_bad_config_is_refused_with_the_key() {
        let mut cfg = SyntheticConfig::realistic(1, start(), 10);
        cfg.symbols[0].start_price = -1.0;
        let err = generate(&cfg).unwrap_err();
        assert!(err.contains("symbols[0]"), "{err}");
    }
}
