//! Option chains modelled from the underlying: listed expirations and
//! strikes, an implied-volatility surface, quotes with greeks, bid/ask at
//! listed ticks, open interest and volume. `docs/MARKET_MODEL.md` states
//! every formula; the parameters are [`ChainModelParams`].
//!
//! Nothing here looks ahead: the surface used on session `d` is built from
//! closes (and the VIX) up to session `d − 1`.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use core_domain::{
    Contract, OptionChain, OptionContract, OptionQuote, Price, Quote, Right, Symbol,
};

use crate::History;
use crate::calendar::NyseCalendar;
use crate::params::ChainModelParams;

/// Seconds in the 365-day year of the pricing conventions (Actual/365).
const YEAR_SECONDS: f64 = 365.0 * 86_400.0;
/// Sessions in a year, to annualize daily realized volatility.
const SESSIONS_PER_YEAR: f64 = 252.0;

/// The volatility state of one symbol on one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolState {
    /// 30-calendar-day at-the-money implied volatility.
    pub sigma_30: f64,
    /// The long-run level the term structure reverts to.
    pub sigma_long_run: f64,
    /// Blended realized volatility it was built from.
    pub realized: f64,
    /// The variance risk premium applied, in vol points.
    pub premium: f64,
    /// Risk-free rate, continuously compounded.
    pub rate: f64,
}

/// Annualized close-to-close volatility of the last `n` returns before
/// session `d` (closes `d−n−1 ..= d−1`), if enough data.
pub fn realized_vol(series: &[f64], d: usize, n: usize) -> Option<f64> {
    if d < n + 1 {
        return None;
    }
    let window = &series[d - n - 1..d];
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    let mut count = 0usize;
    for w in window.windows(2) {
        if w[0] > 0.0 && w[1] > 0.0 && w[0].is_finite() && w[1].is_finite() {
            let r = (w[1] / w[0]).ln();
            sum += r;
            sum_sq += r * r;
            count += 1;
        }
    }
    if count < n / 2 + 1 || count < 2 {
        return None;
    }
    let mean = sum / count as f64;
    let var = (sum_sq - count as f64 * mean * mean) / (count as f64 - 1.0);
    Some((var.max(0.0) * SESSIONS_PER_YEAR).sqrt())
}

/// The chain model: params plus what is derived from them once.
#[derive(Debug, Clone)]
pub struct ChainModel {
    params: ChainModelParams,
    weeklies_from: NaiveDate,
    penny: HashSet<String>,
}

/// Everything needed to quote one underlying at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuoteContext<'a> {
    pub now: DateTime<Utc>,
    pub spot: f64,
    pub vol: VolState,
    /// The underlying's sector (for planted edges).
    pub sector: &'a str,
}

/// What every strike of one expiry shares at one moment: computed once per
/// expiry, not once per quote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpiryContext {
    pub expiry: NaiveDate,
    /// Years to the expiry session's close (Actual/365).
    pub t_years: f64,
    /// At-the-money implied volatility at that expiry.
    pub atm_vol: f64,
    pub forward: f64,
    pub monthly: bool,
}

impl ChainModel {
    pub fn new(params: ChainModelParams) -> Self {
        let weeklies_from = params.weeklies_from_date();
        let penny = params
            .penny_everywhere
            .iter()
            .map(|s| s.to_ascii_uppercase())
            .collect();
        ChainModel {
            params,
            weeklies_from,
            penny,
        }
    }

    pub fn params(&self) -> &ChainModelParams {
        &self.params
    }

    /// The volatility state of symbol `s` for trading on session `d`,
    /// from data up to session `d − 1`.
    pub fn vol_state(&self, history: &History, s: usize, d: usize) -> Option<VolState> {
        let p = &self.params;
        let series = history.closes.get(s)?;
        let short = realized_vol(series, d, p.rv_short_days)?;
        let long = realized_vol(series, d, p.rv_long_days).unwrap_or(short);
        let realized = p.rv_short_weight * short + (1.0 - p.rv_short_weight) * long;
        let long_run = realized_vol(series, d, p.long_run_days).unwrap_or(long);
        let premium = d
            .checked_sub(1)
            .and_then(|prev| {
                let vix = *history.vix.get(prev)?;
                if !vix.is_finite() {
                    return None;
                }
                let short_i = realized_vol(&history.index, d, p.rv_short_days)?;
                let long_i = realized_vol(&history.index, d, p.rv_long_days).unwrap_or(short_i);
                let index_rv = p.rv_short_weight * short_i + (1.0 - p.rv_short_weight) * long_i;
                Some((vix / 100.0 - index_rv).clamp(p.vrp_min, p.vrp_max))
            })
            .unwrap_or(p.vrp_points);
        let rate = d
            .checked_sub(1)
            .and_then(|prev| history.rates.get(prev).copied())
            .or_else(|| history.rates.first().copied())
            .unwrap_or(0.0);
        let clamp = |v: f64| v.clamp(p.min_vol, p.max_vol);
        let mut sigma_30 = clamp(realized + premium);
        let mut sigma_long_run = clamp(long_run + p.vrp_points);
        // The 91-day ATM level: the real IV at the previous close where the
        // history has it, else the calibrated model; the legacy term
        // structure above is rescaled to pass through it.
        let real = if p.iv_anchor {
            d.checked_sub(1)
                .and_then(|prev| history.implied_vol(s, prev))
        } else {
            None
        };
        let target = real.or_else(|| {
            (p.iv_model == crate::calibrate::IV_MODEL_CALIBRATED)
                .then(|| crate::calibrate::iv_inputs(history, s, d, p))
                .flatten()
                .map(|x| clamp(crate::calibrate::iv_model_value(&p.iv_coefficients(), &x)))
        });
        if let Some(target) = target {
            let at_91 = sigma_long_run
                + (sigma_30 - sigma_long_run) * (30.0f64 / 91.0).powf(p.term_exponent);
            if at_91 > 0.0 {
                let k = target / at_91;
                sigma_30 = clamp(sigma_30 * k);
                sigma_long_run = clamp(sigma_long_run * k);
            }
        }
        Some(VolState {
            sigma_30,
            sigma_long_run,
            realized,
            premium: sigma_30 - realized,
            rate,
        })
    }

    /// At-the-money implied volatility for `t_years` to expiry.
    pub fn atm_vol(&self, vol: &VolState, t_years: f64) -> f64 {
        let p = &self.params;
        let days = (t_years * 365.0).max(0.5);
        let v = vol.sigma_long_run
            + (vol.sigma_30 - vol.sigma_long_run) * (30.0 / days).powf(p.term_exponent);
        v.clamp(p.min_vol, p.max_vol)
    }

    /// The shared part of every quote of one expiry.
    pub fn expiry_context(
        &self,
        calendar: &NyseCalendar,
        ctx: &QuoteContext,
        expiry: NaiveDate,
    ) -> ExpiryContext {
        let t_years = Self::years_to_expiry(calendar, ctx.now, expiry);
        self.expiry_at(ctx, expiry, t_years, self.is_monthly(calendar, expiry))
    }

    fn expiry_at(
        &self,
        ctx: &QuoteContext,
        expiry: NaiveDate,
        t_years: f64,
        monthly: bool,
    ) -> ExpiryContext {
        let t = t_years.max(60.0 / YEAR_SECONDS);
        ExpiryContext {
            expiry,
            t_years,
            atm_vol: self.atm_vol(&ctx.vol, t_years),
            forward: ctx.spot * ((ctx.vol.rate - self.params.dividend_yield) * t).exp(),
            monthly,
        }
    }

    /// The implied volatility of a strike: the ATM level times the skew and
    /// smile in standardized moneyness x = ln(F/K)/(σ_atm·√T).
    pub fn implied_vol(&self, ctx: &QuoteContext, strike: f64, t_years: f64) -> f64 {
        self.smile(&self.expiry_at(ctx, NaiveDate::MIN, t_years, false), strike)
    }

    fn smile(&self, e: &ExpiryContext, strike: f64) -> f64 {
        let p = &self.params;
        let t = e.t_years.max(60.0 / YEAR_SECONDS);
        // Saturate smoothly (a hard clamp would put a kink in the smile and
        // break convexity of prices in strike).
        let raw = (e.forward / strike).ln() / (e.atm_vol * t.sqrt());
        let x = p.max_sd * (raw / p.max_sd).tanh();
        (e.atm_vol * (1.0 + p.skew_per_sd * x + p.smile_per_sd2 * x * x))
            .clamp(p.min_vol, p.max_vol)
    }

    /// Listed strike interval at a price level (standard intervals; half
    /// of them with `fine_strikes`).
    pub fn strike_interval(&self, spot: f64) -> f64 {
        let standard = if spot < 5.0 {
            0.5
        } else if spot < 25.0 {
            1.0
        } else if spot < 50.0 {
            2.5
        } else if spot < 200.0 {
            5.0
        } else {
            10.0
        };
        if self.params.fine_strikes {
            standard / 2.0
        } else {
            standard
        }
    }

    /// Strikes listed around `spot`, ascending.
    pub fn strikes(&self, spot: f64) -> Vec<Price> {
        let step = self.strike_interval(spot);
        let lo = (spot * (1.0 - self.params.strike_range) / step)
            .ceil()
            .max(1.0) as i64;
        let hi = (spot * (1.0 + self.params.strike_range) / step).floor() as i64;
        let step_raw = (step * 10_000.0).round() as i64;
        (lo..=hi).map(|k| Price::from_raw(k * step_raw)).collect()
    }

    /// Expirations listed on `date`, ascending: the next weeklies (from
    /// `weeklies_from`) and the next monthlies, each moved to Thursday when
    /// its Friday is an exchange holiday.
    pub fn expirations(&self, calendar: &NyseCalendar, date: NaiveDate) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut friday = date;
        while friday.weekday() != Weekday::Fri {
            friday += Duration::days(1);
        }
        if date >= self.weeklies_from {
            let mut f = friday;
            while out.len() < self.params.weekly_count {
                let e = calendar.weekly_expiration(f);
                if e >= date {
                    out.push(e);
                }
                f += Duration::days(7);
            }
        }
        let (mut y, mut m) = (date.year(), date.month());
        let mut monthlies = 0;
        while monthlies < self.params.monthly_count {
            let e = calendar.monthly_expiration(y, m);
            if e >= date {
                out.push(e);
                monthlies += 1;
            }
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether `expiry` is a third-Friday (monthly) expiration.
    pub fn is_monthly(&self, calendar: &NyseCalendar, expiry: NaiveDate) -> bool {
        calendar.monthly_expiration(expiry.year(), expiry.month()) == expiry
    }

    /// The quoting tick of `symbol` at `price`.
    pub fn tick(&self, symbol: &Symbol, price: f64) -> Price {
        if price < 3.0 || self.penny.contains(symbol.as_str()) {
            Price::from_cents(1)
        } else {
            Price::from_cents(5)
        }
    }

    /// The listed chain of `symbol` on `date` at `spot`.
    pub fn chain(
        &self,
        calendar: &NyseCalendar,
        symbol: &Symbol,
        date: NaiveDate,
        spot: f64,
    ) -> OptionChain {
        self.chain_with(symbol, self.expirations(calendar, date), spot)
    }

    /// The listed chain with the day's expirations already computed.
    pub fn chain_with(
        &self,
        symbol: &Symbol,
        expirations: Vec<NaiveDate>,
        spot: f64,
    ) -> OptionChain {
        OptionChain {
            underlying: symbol.clone(),
            underlying_con_id: Some(con_id_for(symbol.as_str())),
            expirations,
            strikes: self.strikes(spot),
            multiplier: 100,
        }
    }

    /// Years from `now` to the close of the expiry session.
    pub fn years_to_expiry(calendar: &NyseCalendar, now: DateTime<Utc>, expiry: NaiveDate) -> f64 {
        let close = calendar
            .session_close(expiry)
            .unwrap_or_else(|| expiry.and_hms_opt(21, 0, 0).unwrap_or_default().and_utc());
        ((close - now).num_seconds() as f64 / YEAR_SECONDS).max(0.0)
    }

    /// A full quote of one option: theoretical value (never below intrinsic,
    /// since listed equity options are American), greeks at the modelled
    /// IV, bid/ask rounded outward to the tick, sizes, open interest and
    /// volume. Deterministic in `(seed, contract, date)`.
    pub fn quote(
        &self,
        calendar: &NyseCalendar,
        ctx: &QuoteContext,
        contract: &OptionContract,
        seed: u64,
    ) -> OptionQuote {
        let e = self.expiry_context(calendar, ctx, contract.expiry);
        self.quote_at(ctx, &e, contract, seed)
    }

    /// Quotes many contracts, sharing the per-expiry work.
    pub fn quote_many<'c>(
        &self,
        calendar: &NyseCalendar,
        ctx: &QuoteContext,
        contracts: impl IntoIterator<Item = &'c OptionContract>,
        seed: u64,
    ) -> Vec<OptionQuote> {
        let mut cache: Vec<ExpiryContext> = Vec::new();
        contracts
            .into_iter()
            .map(|c| {
                let e = match cache.iter().find(|e| e.expiry == c.expiry) {
                    Some(e) => *e,
                    None => {
                        let e = self.expiry_context(calendar, ctx, c.expiry);
                        cache.push(e);
                        e
                    }
                };
                self.quote_at(ctx, &e, c, seed)
            })
            .collect()
    }

    /// One quote, given its expiry's shared context (see [`Self::quote`]).
    pub fn quote_at(
        &self,
        ctx: &QuoteContext,
        e: &ExpiryContext,
        contract: &OptionContract,
        seed: u64,
    ) -> OptionQuote {
        let p = &self.params;
        let strike = contract.strike.to_f64();
        let t = e.t_years;
        let mut iv = self.smile(e, strike);
        if !p.planted_edges.is_empty() {
            let otm = 1.0 - strike / ctx.spot;
            let day = ctx.now.date_naive().weekday();
            let extra: f64 = p
                .planted_edges
                .iter()
                .map(|edge| edge.extra_for(ctx.sector, otm, day))
                .sum();
            iv = (iv + extra).clamp(p.min_vol, p.max_vol);
        }
        let is_put = contract.right == Right::Put;
        let (theo, greeks) = crate::bs::price_and_greeks(
            is_put,
            ctx.spot,
            strike,
            ctx.vol.rate,
            p.dividend_yield,
            iv,
            t,
        );
        let intrinsic = if is_put {
            (strike - ctx.spot).max(0.0)
        } else {
            (ctx.spot - strike).max(0.0)
        };
        let theo = theo.max(intrinsic);
        let date = ctx.now.date_naive();
        let key = contract_hash(seed, contract, date);
        let monthly = e.monthly;
        let moneyness = (strike / ctx.spot).ln().abs();
        let oi_noise = 0.5 + unit(key);
        let oi = (p.oi_at_the_money
            * (-moneyness / p.oi_decay).exp()
            * if monthly { 1.0 } else { p.oi_weekly_share }
            * oi_noise)
            .floor();
        let volume = (oi * p.volume_turnover * (0.5 + unit(key ^ 0x9e37))).floor();
        let tick = self.tick(&contract.underlying, theo);
        let width = (p.spread_base + p.spread_pct * theo).max(tick.to_f64())
            * (1.0 + p.spread_illiquidity / (1.0 + oi / 1_000.0));
        let bid_f = (theo - width / 2.0).max(0.0);
        let ask_f = theo + width / 2.0;
        // Each side on the tick of its own price level.
        let bid_tick = self.tick(&contract.underlying, bid_f);
        let bid = Price::from_f64(bid_f)
            .unwrap_or(Price::ZERO)
            .floor_to_tick(bid_tick);
        let ask_tick = self.tick(&contract.underlying, ask_f);
        let mut ask = Price::from_f64(ask_f)
            .unwrap_or(ask_tick)
            .ceil_to_tick(ask_tick);
        if ask <= bid {
            ask = (bid + ask_tick).ceil_to_tick(ask_tick);
        }
        let size = ((oi / 20.0).clamp(1.0, 500.0) * (0.5 + unit(key ^ 0x5bd1))).max(1.0) as i64;
        let quote = Quote {
            contract: Contract::Option(contract.clone()),
            bid: Some(bid),
            ask: Some(ask),
            last: None,
            bid_size: Some(size),
            ask_size: Some(size),
            time: ctx.now,
            implied_vol: Some(iv),
            greeks: Some(greeks),
            underlying_price: Price::from_f64(ctx.spot).ok(),
            open_interest: Some(oi as i64),
            volume: Some(volume as i64),
        };
        OptionQuote {
            contract: contract.clone(),
            quote,
        }
    }

    /// Whether `contract` is listed on `date` with the underlying at
    /// `spot`: an expiration the model lists that day, and a strike on the
    /// listed grid — a multiple of the interval of the current price level
    /// or of the strike's own level (strikes listed earlier stay listed
    /// after the price moves away). A `spot` that is not a positive number
    /// uses the strike's level alone.
    pub fn is_listed(
        &self,
        calendar: &NyseCalendar,
        contract: &OptionContract,
        date: NaiveDate,
        spot: f64,
    ) -> bool {
        self.is_listed_in(contract, date, spot, &self.expirations(calendar, date))
    }

    /// [`Self::is_listed`] with the day's expirations already computed.
    pub fn is_listed_in(
        &self,
        contract: &OptionContract,
        date: NaiveDate,
        spot: f64,
        expirations: &[NaiveDate],
    ) -> bool {
        let raw = contract.strike.raw();
        let strike = contract.strike.to_f64();
        let mut step = self.strike_interval(strike);
        if spot.is_finite() && spot > 0.0 {
            step = step.min(self.strike_interval(spot));
        }
        let step_raw = (step * 10_000.0).round() as i64;
        contract.multiplier == 100
            && raw > 0
            && step_raw > 0
            && raw % step_raw == 0
            && contract.expiry >= date
            && expirations.binary_search(&contract.expiry).is_ok()
    }
}

/// A stable positive contract id from a key (IBKR ids are positive i64s).
pub fn con_id_for(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 2) as i64 + 1
}

/// SplitMix64: a fixed, documented mixing function, so that noise is the
/// same on every platform and Rust version.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash.
pub(crate) fn unit(h: u64) -> f64 {
    (mix(h) >> 11) as f64 / (1u64 << 53) as f64
}

fn contract_hash(seed: u64, c: &OptionContract, date: NaiveDate) -> u64 {
    let mut h = mix(seed);
    for b in c.underlying.as_str().bytes() {
        h = mix(h ^ u64::from(b));
    }
    h = mix(h ^ c.strike.raw() as u64);
    h = mix(h ^ c.expiry.num_days_from_ce() as u64);
    h = mix(h ^ date.num_days_from_ce() as u64);
    mix(h ^ matches!(c.right, Right::Call) as u64)
}
