//! `price`, `iv` and `margin`: the `pricing` crate from the command line.
//!
//! Conventions are the crate's (and the golden files'): time is `days / 365`
//! (Actual/365 Fixed); rate and dividend yield are continuously compounded
//! fractions (`--rate 0.05` is 5%); vol is an annual fraction; prices are per
//! share; vega is per 1.00 of vol, theta per year, rho per 1.00 of rate.
//! Numbers are printed with full precision (10 decimals in text, the
//! shortest round-trip form in JSON) so that results can be compared with a
//! reference through the command line.

use std::process::ExitCode;

use anyhow::{Context, Result};
use core_domain::{Price, Right};
use pricing::{OptionInputs, years_from_days};
use serde_json::json;

use crate::output;

/// `trader-cli price`: European price and greeks, optionally the American
/// price and early-exercise premium.
#[derive(Debug, clap::Args)]
pub struct PriceArgs {
    /// Put or call (`put`, `call`, `P`, `C`).
    #[arg(long)]
    pub right: Right,
    /// Underlying price, dollars per share.
    #[arg(long, allow_negative_numbers = true)]
    pub spot: f64,
    /// Strike, dollars per share.
    #[arg(long, allow_negative_numbers = true)]
    pub strike: f64,
    /// Risk-free rate, continuously compounded, as a fraction (0.05 is 5%).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// Dividend yield, continuously compounded, as a fraction.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub div: f64,
    /// Annual volatility as a fraction (0.25 is 25%).
    #[arg(long, allow_negative_numbers = true)]
    pub vol: f64,
    /// Calendar days to expiry (t = days / 365); fractions allowed.
    #[arg(long, allow_negative_numbers = true)]
    pub days: f64,
    /// Also price the American option (finite differences) and its
    /// early-exercise premium.
    #[arg(long)]
    pub american: bool,
}

/// `trader-cli iv`: the implied volatility of a European option's price.
#[derive(Debug, clap::Args)]
pub struct IvArgs {
    /// Option price, dollars per share.
    #[arg(long, allow_negative_numbers = true)]
    pub price: f64,
    /// Put or call (`put`, `call`, `P`, `C`).
    #[arg(long)]
    pub right: Right,
    /// Underlying price, dollars per share.
    #[arg(long, allow_negative_numbers = true)]
    pub spot: f64,
    /// Strike, dollars per share.
    #[arg(long, allow_negative_numbers = true)]
    pub strike: f64,
    /// Risk-free rate, continuously compounded, as a fraction (0.05 is 5%).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// Dividend yield, continuously compounded, as a fraction.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub div: f64,
    /// Calendar days to expiry (t = days / 365); fractions allowed.
    #[arg(long, allow_negative_numbers = true)]
    pub days: f64,
}

/// `trader-cli margin`: the Reg-T / Cboe initial margin of short puts.
#[derive(Debug, clap::Args)]
pub struct MarginArgs {
    /// Underlying price, dollars per share (at most 4 decimals).
    #[arg(long, allow_negative_numbers = true)]
    pub underlying: Price,
    /// Strike, dollars per share (at most 4 decimals).
    #[arg(long, allow_negative_numbers = true)]
    pub strike: Price,
    /// The put's price, dollars per share (at most 4 decimals).
    #[arg(long, allow_negative_numbers = true)]
    pub premium: Price,
    /// Number of short contracts (100 shares each).
    #[arg(long, allow_negative_numbers = true)]
    pub contracts: i64,
}

fn inputs(right: Right, spot: f64, strike: f64, rate: f64, div: f64, days: f64) -> OptionInputs {
    OptionInputs {
        right,
        spot,
        strike,
        t_years: years_from_days(days),
        rate,
        dividend_yield: div,
    }
}

/// A number in full precision for people: 10 decimals, or scientific
/// notation with 10 significant decimals where fixed point would hide it.
fn num(v: f64) -> String {
    if v == 0.0 || (1e-4..1e12).contains(&v.abs()) {
        format!("{v:.10}")
    } else {
        format!("{v:.10e}")
    }
}

fn right_name(right: Right) -> &'static str {
    match right {
        Right::Put => "put",
        Right::Call => "call",
    }
}

/// Prints the European price and greeks (and, with `--american`, the
/// American price and early-exercise premium). Bad inputs are an error that
/// says which and why.
pub fn price(args: &PriceArgs, json: bool) -> Result<ExitCode> {
    let inputs = inputs(
        args.right,
        args.spot,
        args.strike,
        args.rate,
        args.div,
        args.days,
    );
    let v = pricing::european_valuation(&inputs, args.vol).context("pricing the option")?;
    let american = if args.american {
        let a =
            pricing::american_price(&inputs, args.vol).context("pricing the American option")?;
        Some((a, (a - v.price).max(0.0)))
    } else {
        None
    };
    let g = v.greeks;
    if json {
        let mut out = json!({
            "price": v.price,
            "delta": g.delta,
            "gamma": g.gamma,
            "vega": g.vega,
            "theta": g.theta,
            "rho": g.rho,
        });
        if let (Some((a, premium)), Some(map)) = (american, out.as_object_mut()) {
            map.insert("american_price".into(), json!(a));
            map.insert("early_exercise_premium".into(), json!(premium));
        }
        output::json(&out)?;
    } else {
        println!(
            "European {} spot {} strike {} rate {} div {} vol {} days {} (t = {} years)",
            right_name(args.right),
            args.spot,
            args.strike,
            args.rate,
            args.div,
            args.vol,
            args.days,
            num(inputs.t_years)
        );
        println!("price                   {}", num(v.price));
        println!("delta                   {}", num(g.delta));
        println!("gamma                   {}", num(g.gamma));
        println!("vega                    {}  (per 1.00 vol)", num(g.vega));
        println!("theta                   {}  (per year)", num(g.theta));
        println!("rho                     {}  (per 1.00 rate)", num(g.rho));
        if let Some((a, premium)) = american {
            println!("american_price          {}", num(a));
            println!("early_exercise_premium  {}", num(premium));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the implied volatility and how many price evaluations the solve
/// took. A price with no implied volatility (below intrinsic, above the
/// upper bound, at expiry) is an error that says why.
pub fn iv(args: &IvArgs, json: bool) -> Result<ExitCode> {
    let inputs = inputs(
        args.right,
        args.spot,
        args.strike,
        args.rate,
        args.div,
        args.days,
    );
    let sol =
        pricing::implied_vol(&inputs, args.price).context("solving the implied volatility")?;
    if json {
        output::json(&json!({
            "vol": sol.vol,
            "price_evaluations": sol.price_evaluations,
        }))?;
    } else {
        println!(
            "vol                {}  ({:.4}%)",
            num(sol.vol),
            sol.vol * 100.0
        );
        println!("price_evaluations  {}", sol.price_evaluations);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the margin requirement of the short puts in dollars and cents
/// (exact; rounded up to the cent only where it is not a whole cent).
pub fn margin(args: &MarginArgs, json: bool) -> Result<ExitCode> {
    let m = pricing::short_put_margin(args.underlying, args.strike, args.premium, args.contracts)
        .context("computing the short put margin")?;
    if json {
        output::json(&json!({
            "requirement": m.to_f64(),
            "requirement_cents": m.cents(),
        }))?;
    } else {
        println!(
            "requirement  {m}  ({} short put(s), strike {}, underlying {}, premium {}; \
             Reg-T: premium + max(20% underlying - OTM amount, 10% strike), x 100 x contracts)",
            args.contracts, args.strike, args.underlying, args.premium
        );
    }
    Ok(ExitCode::SUCCESS)
}
