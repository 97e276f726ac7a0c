//! Every parameter of the option-chain model and the simulated exchange,
//! with its default. `docs/MARKET_MODEL.md` explains each formula; the
//! defaults below are the values it quotes.

use serde::{Deserialize, Serialize};

/// How implied volatility, strikes, expirations, spreads and open interest
/// are modelled from the underlying's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainModelParams {
    /// Trailing window of the short realized volatility, in sessions.
    pub rv_short_days: usize,
    /// Trailing window of the long realized volatility, in sessions.
    pub rv_long_days: usize,
    /// Weight of the short window in the blended realized volatility.
    pub rv_short_weight: f64,
    /// Variance risk premium in vol points (0.04 = 4 points) added to
    /// realized volatility where VIX is not available.
    pub vrp_points: f64,
    /// Where VIX and the index are both known, the premium is
    /// VIX/100 − the index's blended realized volatility, clamped to
    /// `[vrp_min, vrp_max]`.
    pub vrp_min: f64,
    pub vrp_max: f64,
    /// Window of the long-run volatility the term structure reverts to.
    pub long_run_days: usize,
    /// How the 91-day at-the-money level is set where no real implied
    /// volatility is used: "calibrated" (a linear model of realized
    /// volatility and the VIX fitted on the real 3-month IV of the 20
    /// stocks, coefficients `iv_coef_*`) or "realized_plus_premium" (the
    /// legacy realized volatility plus a VIX-based premium).
    pub iv_model: String,
    /// Where the history has a real implied volatility for the symbol at
    /// the previous close, the 91-day ATM level follows it.
    pub iv_anchor: bool,
    /// Coefficients of the calibrated model: 91-day ATM IV = intercept +
    /// rv_short × RV(rv_short_days) + rv_long × RV(rv_long_days) +
    /// rv_long_run × RV(long_run_days) + vix × VIX/100 (fractions; defaults
    /// fitted by `trader-cli calibrate` on the shipped data).
    pub iv_coef_intercept: f64,
    pub iv_coef_rv_short: f64,
    pub iv_coef_rv_long: f64,
    pub iv_coef_rv_long_run: f64,
    pub iv_coef_vix: f64,
    /// Term-structure exponent β: σ_atm(T) = σ_lr + (σ_30 − σ_lr)·(30/T)^β.
    pub term_exponent: f64,
    /// Put skew: relative IV change per standard deviation of moneyness
    /// (x = ln(F/K) / (σ_atm √T); positive x is a lower strike).
    pub skew_per_sd: f64,
    /// Smile curvature per standard deviation squared.
    pub smile_per_sd2: f64,
    /// Moneyness beyond which the smile is flat, in standard deviations.
    pub max_sd: f64,
    /// Floor and cap of any implied volatility.
    pub min_vol: f64,
    pub max_vol: f64,
    /// Continuous dividend yield. 0: the shipped prices are dividend-adjusted.
    pub dividend_yield: f64,
    /// Strikes listed from spot × (1 − strike_range) to spot × (1 + strike_range).
    pub strike_range: f64,
    /// List the finer strike intervals of liquid names (half the standard).
    pub fine_strikes: bool,
    /// First date weekly expirations are listed (YYYY-MM-DD); monthlies only before.
    pub weeklies_from: String,
    /// How many weekly expirations are listed ahead.
    pub weekly_count: usize,
    /// How many monthly (third-Friday) expirations are listed ahead.
    pub monthly_count: usize,
    /// Bid/ask width = max(one tick, spread_base + spread_pct × price) ×
    /// (1 + spread_illiquidity / (1 + open_interest / 1000)).
    pub spread_base: f64,
    pub spread_pct: f64,
    pub spread_illiquidity: f64,
    /// Symbols quoted in $0.01 at every price level (otherwise $0.01 below
    /// $3 and $0.05 at $3 and above).
    pub penny_everywhere: Vec<String>,
    /// Open interest at the money of a monthly expiry, before noise.
    pub oi_at_the_money: f64,
    /// Open interest decays as exp(−|ln(K/S)| / oi_decay).
    pub oi_decay: f64,
    /// Weekly expirations carry this share of a monthly's open interest.
    pub oi_weekly_share: f64,
    /// Daily volume as a share of open interest.
    pub volume_turnover: f64,
    /// Extra implied volatility in chosen places, for testing what the
    /// learning engine finds (see `synthetic`). Empty for real history.
    pub planted_edges: Vec<crate::synthetic::PlantedEdge>,
}

impl Default for ChainModelParams {
    fn default() -> Self {
        ChainModelParams {
            rv_short_days: 20,
            rv_long_days: 120,
            rv_short_weight: 0.6,
            vrp_points: 0.04,
            vrp_min: -0.02,
            vrp_max: 0.15,
            long_run_days: 250,
            iv_model: crate::calibrate::IV_MODEL_CALIBRATED.into(),
            iv_anchor: true,
            // Fitted on the shipped data (`trader-cli calibrate` refits and
            // reports the difference).
            iv_coef_intercept: 0.0131,
            iv_coef_rv_short: 0.2655,
            iv_coef_rv_long: 0.2099,
            iv_coef_rv_long_run: 0.3866,
            iv_coef_vix: 0.1402,
            term_exponent: 0.35,
            skew_per_sd: 0.07,
            smile_per_sd2: 0.01,
            max_sd: 5.0,
            min_vol: 0.08,
            max_vol: 3.0,
            dividend_yield: 0.0,
            strike_range: 0.5,
            fine_strikes: false,
            weeklies_from: "2011-01-01".into(),
            weekly_count: 6,
            monthly_count: 4,
            spread_base: 0.02,
            spread_pct: 0.06,
            spread_illiquidity: 1.0,
            penny_everywhere: Vec::new(),
            oi_at_the_money: 8_000.0,
            oi_decay: 0.12,
            oi_weekly_share: 0.35,
            volume_turnover: 0.15,
            planted_edges: Vec::new(),
        }
    }
}

/// How the simulated exchange trades, settles and charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeParams {
    /// Starting cash in dollars.
    pub starting_cash: f64,
    /// Seed of every random draw (intraday paths, sizes, noise).
    pub seed: u64,
    /// Minutes between intraday checkpoints (the open and the close are
    /// always checkpoints).
    pub checkpoint_minutes: u32,
    /// Share of a day's variance that happens overnight (the gap at the open).
    pub overnight_variance_share: f64,
    /// Extra ticks a marketable order pays beyond the touch (0: at the touch).
    pub slippage_ticks: i64,
    /// Fill resting orders priced inside the spread (false: only marketable
    /// orders fill, never at mid).
    pub passive_fills: bool,
    /// Refuse limit prices further than this fraction from the mid.
    pub price_band: f64,
    /// Option commission per contract (IBKR Pro fixed) by premium level.
    pub option_commission: f64,
    pub option_commission_cheap: f64,
    pub option_commission_penny: f64,
    /// Minimum commission per order, dollars.
    pub min_commission: f64,
    /// Stock commission per share, with the order minimum above and a
    /// cap of `stock_commission_cap` of the trade value.
    pub stock_commission: f64,
    pub stock_commission_cap: f64,
    /// Early assignment of a short put more than this fraction in the money…
    pub early_assignment_itm: f64,
    /// …within this many calendar days of expiry (Lean's rule: 5%, 4 days).
    pub early_assignment_days: i64,
    /// Largest order accepted, contracts or shares.
    pub max_order_quantity: i64,
}

impl Default for ExchangeParams {
    fn default() -> Self {
        ExchangeParams {
            starting_cash: 100_000.0,
            seed: 42,
            checkpoint_minutes: 15,
            overnight_variance_share: 0.2,
            slippage_ticks: 0,
            passive_fills: false,
            price_band: 0.5,
            option_commission: 0.65,
            option_commission_cheap: 0.50,
            option_commission_penny: 0.25,
            min_commission: 1.00,
            stock_commission: 0.005,
            stock_commission_cap: 0.01,
            early_assignment_itm: 0.05,
            early_assignment_days: 4,
            max_order_quantity: 10_000,
        }
    }
}

impl ChainModelParams {
    /// Every out-of-range value, as (key under the section, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut need = |ok: bool, key: &str, msg: String| {
            if !ok {
                p.push((key.to_string(), msg));
            }
        };
        need(
            self.rv_short_days >= 2,
            "rv_short_days",
            format!("must be at least 2 sessions; got {}", self.rv_short_days),
        );
        need(
            self.rv_long_days >= self.rv_short_days,
            "rv_long_days",
            format!(
                "must be at least rv_short_days ({}); got {}",
                self.rv_short_days, self.rv_long_days
            ),
        );
        need(
            (0.0..=1.0).contains(&self.rv_short_weight),
            "rv_short_weight",
            format!("must be within 0..=1; got {}", self.rv_short_weight),
        );
        need(
            (0.0..=0.5).contains(&self.vrp_points),
            "vrp_points",
            format!("must be within 0..=0.5 vol; got {}", self.vrp_points),
        );
        need(
            self.vrp_min <= self.vrp_max,
            "vrp_min",
            format!(
                "must not exceed vrp_max ({}); got {}",
                self.vrp_max, self.vrp_min
            ),
        );
        need(
            self.long_run_days >= 2,
            "long_run_days",
            format!("must be at least 2; got {}", self.long_run_days),
        );
        need(
            [
                crate::calibrate::IV_MODEL_CALIBRATED,
                crate::calibrate::IV_MODEL_LEGACY,
            ]
            .contains(&self.iv_model.as_str()),
            "iv_model",
            format!(
                "must be \"calibrated\" or \"realized_plus_premium\"; got {:?}",
                self.iv_model
            ),
        );
        for (key, v) in [
            ("iv_coef_intercept", self.iv_coef_intercept),
            ("iv_coef_rv_short", self.iv_coef_rv_short),
            ("iv_coef_rv_long", self.iv_coef_rv_long),
            ("iv_coef_rv_long_run", self.iv_coef_rv_long_run),
            ("iv_coef_vix", self.iv_coef_vix),
        ] {
            need(
                v.is_finite() && v.abs() <= 5.0,
                key,
                format!("must be a number within -5..=5; got {v}"),
            );
        }
        need(
            (0.0..=1.0).contains(&self.term_exponent),
            "term_exponent",
            format!("must be within 0..=1; got {}", self.term_exponent),
        );
        need(
            (0.0..=0.3).contains(&self.skew_per_sd),
            "skew_per_sd",
            format!(
                "must be within 0..=0.3 (steeper breaks convexity in strike); got {}",
                self.skew_per_sd
            ),
        );
        need(
            (0.0..=0.05).contains(&self.smile_per_sd2),
            "smile_per_sd2",
            format!("must be within 0..=0.05; got {}", self.smile_per_sd2),
        );
        need(
            self.max_sd > 0.0,
            "max_sd",
            format!("must be positive; got {}", self.max_sd),
        );
        need(
            self.min_vol > 0.0 && self.min_vol < self.max_vol,
            "min_vol",
            format!(
                "must be above 0 and below max_vol ({}); got {}",
                self.max_vol, self.min_vol
            ),
        );
        need(
            (0.0..0.5).contains(&self.dividend_yield),
            "dividend_yield",
            format!("must be within 0..0.5; got {}", self.dividend_yield),
        );
        need(
            self.strike_range > 0.0 && self.strike_range < 1.0,
            "strike_range",
            format!("must be between 0 and 1; got {}", self.strike_range),
        );
        need(
            chrono::NaiveDate::parse_from_str(&self.weeklies_from, "%Y-%m-%d").is_ok(),
            "weeklies_from",
            format!("must be a date YYYY-MM-DD; got {:?}", self.weeklies_from),
        );
        need(
            self.weekly_count + self.monthly_count >= 1,
            "monthly_count",
            "at least one expiration must be listed".into(),
        );
        need(
            self.spread_base >= 0.0 && self.spread_pct >= 0.0 && self.spread_illiquidity >= 0.0,
            "spread_base",
            "spread parameters must not be negative".into(),
        );
        need(
            self.oi_at_the_money >= 0.0 && self.oi_decay > 0.0,
            "oi_decay",
            format!(
                "oi_at_the_money must not be negative and oi_decay must be positive; got {} and {}",
                self.oi_at_the_money, self.oi_decay
            ),
        );
        need(
            (0.0..=1.0).contains(&self.oi_weekly_share),
            "oi_weekly_share",
            format!("must be within 0..=1; got {}", self.oi_weekly_share),
        );
        need(
            self.volume_turnover >= 0.0,
            "volume_turnover",
            format!("must not be negative; got {}", self.volume_turnover),
        );
        for (i, edge) in self.planted_edges.iter().enumerate() {
            for (key, msg) in edge.problems() {
                p.push((format!("planted_edges[{i}].{key}"), msg));
            }
        }
        p
    }

    /// `[intercept, rv_short, rv_long, rv_long_run, vix]` of the
    /// calibrated ATM model.
    pub fn iv_coefficients(&self) -> [f64; 5] {
        [
            self.iv_coef_intercept,
            self.iv_coef_rv_short,
            self.iv_coef_rv_long,
            self.iv_coef_rv_long_run,
            self.iv_coef_vix,
        ]
    }

    /// The first date weekly expirations are listed.
    pub fn weeklies_from_date(&self) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(&self.weeklies_from, "%Y-%m-%d")
            .unwrap_or(chrono::NaiveDate::MIN)
    }
}

impl ExchangeParams {
    /// Every out-of-range value, as (key under the section, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut need = |ok: bool, key: &str, msg: String| {
            if !ok {
                p.push((key.to_string(), msg));
            }
        };
        need(
            self.starting_cash > 0.0 && self.starting_cash.is_finite(),
            "starting_cash",
            format!(
                "must be a positive number of dollars; got {}",
                self.starting_cash
            ),
        );
        need(
            (1..=390).contains(&self.checkpoint_minutes),
            "checkpoint_minutes",
            format!("must be 1 to 390 minutes; got {}", self.checkpoint_minutes),
        );
        need(
            (0.0..1.0).contains(&self.overnight_variance_share),
            "overnight_variance_share",
            format!("must be within 0..1; got {}", self.overnight_variance_share),
        );
        need(
            (0..=100).contains(&self.slippage_ticks),
            "slippage_ticks",
            format!("must be 0 to 100; got {}", self.slippage_ticks),
        );
        need(
            self.price_band > 0.0,
            "price_band",
            format!("must be positive; got {}", self.price_band),
        );
        need(
            self.option_commission >= 0.0
                && self.option_commission_cheap >= 0.0
                && self.option_commission_penny >= 0.0
                && self.min_commission >= 0.0,
            "option_commission",
            "commissions must not be negative".into(),
        );
        need(
            self.stock_commission >= 0.0 && self.stock_commission_cap >= 0.0,
            "stock_commission",
            "commissions must not be negative".into(),
        );
        need(
            (0.0..1.0).contains(&self.early_assignment_itm),
            "early_assignment_itm",
            format!("must be within 0..1; got {}", self.early_assignment_itm),
        );
        need(
            self.early_assignment_days >= 0,
            "early_assignment_days",
            format!("must not be negative; got {}", self.early_assignment_days),
        );
        need(
            self.max_order_quantity >= 1,
            "max_order_quantity",
            format!("must be at least 1; got {}", self.max_order_quantity),
        );
        p
    }
}
