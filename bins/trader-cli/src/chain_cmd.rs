//! `trader-cli chain SYMBOL --date D [--expiry E] [--time HH:MM] [--calls]
//! [--json]`: the modelled option chain of one underlying as the simulated
//! market shows it on a session (strikes, bid/ask, IV, greeks, open
//! interest, volume), so anyone can hold it against real quotes.
//!
//! The market is the simulated exchange built from the shipped history and
//! `[broker.sim]`, at the first intraday checkpoint at or after `--time`
//! (New York) of `--date`. Without `--expiry` the first monthly expiration
//! at least 21 days out is shown. `--json` prints prices in dollars as
//! decimal numbers (fields ending in `_usd`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveTime};
use core_domain::{MarketData, OptionContract, Right, Symbol};
use market_sim::calendar::NyseCalendar;
use serde::Serialize;

use crate::output::{self, table};

/// Arguments of `trader-cli chain`.
#[derive(Debug, clap::Args)]
pub struct ChainArgs {
    /// The underlying (one of the simulated market's symbols).
    pub symbol: String,
    /// Session (YYYY-MM-DD).
    #[arg(long)]
    pub date: NaiveDate,
    /// Expiration (YYYY-MM-DD); default the first monthly expiration at
    /// least 21 days out.
    #[arg(long)]
    pub expiry: Option<NaiveDate>,
    /// New York time of day (HH:MM); the first checkpoint at or after it.
    #[arg(long, default_value = "10:00")]
    pub time: String,
    /// List calls as well as puts.
    #[arg(long)]
    pub calls: bool,
}

/// One row of the chain, prices in dollars.
#[derive(Debug, Serialize)]
struct Row {
    right: &'static str,
    strike_usd: f64,
    bid_usd: Option<f64>,
    ask_usd: Option<f64>,
    mid_usd: Option<f64>,
    implied_vol: Option<f64>,
    delta: Option<f64>,
    gamma: Option<f64>,
    /// Per 1.00 of volatility.
    vega: Option<f64>,
    /// Per year.
    theta: Option<f64>,
    open_interest: Option<i64>,
    volume: Option<i64>,
    bid_size: Option<i64>,
    ask_size: Option<i64>,
}

/// The chain as printed with `--json`.
#[derive(Debug, Serialize)]
struct ChainView {
    symbol: String,
    date: NaiveDate,
    time: String,
    spot_usd: f64,
    expiry: NaiveDate,
    days_to_expiry: i64,
    expirations: Vec<NaiveDate>,
    /// The real 3-month ATM implied vol at the previous close where the
    /// shipped data has it (what the surface's 91-day level follows).
    real_iv_3m_previous_close: Option<f64>,
    quotes: Vec<Row>,
}

pub fn run(args: &ChainArgs, json: bool, settings: &settings::Settings) -> Result<ExitCode> {
    if settings.broker.kind != "sim" {
        bail!("`chain` shows the simulated market; set broker.kind = \"sim\"");
    }
    let history = market_sim::universe::history_of(&settings.broker.sim.universe)
        .context("loading the universe's history")?;
    let symbol = Symbol::new(args.symbol.trim().to_ascii_uppercase())
        .with_context(|| format!("{:?} is not a symbol", args.symbol))?;
    let Some(s) = history.symbol_index(&symbol) else {
        let known: Vec<&str> = history.symbols.iter().map(|s| s.symbol.as_str()).collect();
        bail!(
            "{symbol} is not in the simulated market; its symbols are {}",
            known.join(" ")
        );
    };
    let Some(d) = history.date_index(args.date) else {
        bail!(
            "{} is not a session of the shipped data ({} to {})",
            args.date,
            history.dates.first().copied().unwrap_or_default(),
            history.dates.last().copied().unwrap_or_default()
        );
    };
    let time_of_day = NaiveTime::parse_from_str(args.time.trim(), "%H:%M")
        .with_context(|| format!("--time {:?}: expected HH:MM (New York time)", args.time))?;
    let exchange = traderd::wiring::sim_exchange(
        settings,
        Arc::new(history.clone()),
        settings.broker.sim.chain.clone(),
        args.date,
        None,
    )?;
    let mut notes = Vec::new();
    let at =
        crate::scan_cmd::checkpoint_at_or_after(&exchange, args.date, time_of_day, &mut notes)?;
    exchange.advance_to(at);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (chain, spot, quotes, expiry) = runtime.block_on(async {
        let chain = exchange
            .option_chain(&symbol)
            .await
            .with_context(|| format!("the option chain of {symbol}"))?;
        let spot = exchange
            .stock_quote(&symbol)
            .await
            .with_context(|| format!("the quote of {symbol}"))?;
        let calendar = NyseCalendar::new();
        let expiry = match args.expiry {
            Some(e) if chain.expirations.contains(&e) => e,
            Some(e) => bail!(
                "{e} is not listed on {}; listed: {}",
                args.date,
                list(&chain.expirations)
            ),
            None => chain
                .expirations
                .iter()
                .copied()
                .find(|e| {
                    (*e - args.date).num_days() >= 21
                        && calendar.monthly_expiration(
                            chrono::Datelike::year(e),
                            chrono::Datelike::month(e),
                        ) == *e
                })
                .or_else(|| chain.expirations.last().copied())
                .context("no expiration is listed")?,
        };
        let mut contracts = Vec::new();
        let rights: &[Right] = if args.calls {
            &[Right::Put, Right::Call]
        } else {
            &[Right::Put]
        };
        for right in rights {
            for k in &chain.strikes {
                contracts.push(OptionContract {
                    underlying: symbol.clone(),
                    right: *right,
                    strike: *k,
                    expiry,
                    multiplier: chain.multiplier,
                    con_id: None,
                    currency: "USD".into(),
                    exchange: "SMART".into(),
                });
            }
        }
        let quotes = exchange
            .option_quotes(&contracts)
            .await
            .with_context(|| format!("quotes of {symbol} {expiry}"))?;
        Ok::<_, anyhow::Error>((chain, spot, quotes, expiry))
    })?;
    let spot_usd = spot
        .bid
        .zip(spot.ask)
        .map(|(b, a)| (b.to_f64() + a.to_f64()) / 2.0)
        .or(spot.last.map(|p| p.to_f64()))
        .unwrap_or(f64::NAN);
    let rows: Vec<Row> = quotes
        .iter()
        .map(|q| {
            let q = &q.quote;
            let (right, strike) = match &q.contract {
                core_domain::Contract::Option(c) => (c.right, c.strike.to_f64()),
                _ => (Right::Put, f64::NAN),
            };
            let bid = q.bid.map(|p| p.to_f64());
            let ask = q.ask.map(|p| p.to_f64());
            Row {
                right: if right == Right::Put { "P" } else { "C" },
                strike_usd: strike,
                bid_usd: bid,
                ask_usd: ask,
                mid_usd: bid
                    .zip(ask)
                    .map(|(b, a)| ((b + a) / 2.0 * 10_000.0).round() / 10_000.0),
                implied_vol: q.implied_vol,
                delta: q.greeks.map(|g| g.delta),
                gamma: q.greeks.map(|g| g.gamma),
                vega: q.greeks.map(|g| g.vega),
                theta: q.greeks.map(|g| g.theta),
                open_interest: q.open_interest,
                volume: q.volume,
                bid_size: q.bid_size,
                ask_size: q.ask_size,
            }
        })
        .collect();
    let view = ChainView {
        symbol: symbol.as_str().to_owned(),
        date: args.date,
        time: at
            .with_timezone(&chrono_tz::America::New_York)
            .format("%H:%M")
            .to_string(),
        spot_usd,
        expiry,
        days_to_expiry: (expiry - args.date).num_days(),
        expirations: chain.expirations.clone(),
        real_iv_3m_previous_close: d.checked_sub(1).and_then(|p| history.implied_vol(s, p)),
        quotes: rows,
    };
    if json {
        for n in &notes {
            eprintln!("note: {n}");
        }
        output::json(&view)?;
    } else {
        for n in &notes {
            println!("note: {n}");
        }
        print_view(&view);
    }
    Ok(ExitCode::SUCCESS)
}

fn list(dates: &[NaiveDate]) -> String {
    dates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_view(v: &ChainView) {
    println!(
        "{} {} {} New York: spot ${:.2}; expiry {} ({} days); listed: {}",
        v.symbol,
        v.date,
        v.time,
        v.spot_usd,
        v.expiry,
        v.days_to_expiry,
        list(&v.expirations)
    );
    match v.real_iv_3m_previous_close {
        Some(iv) => println!(
            "real 3-month ATM IV at the previous close: {:.1}% (the surface's 91-day level)",
            iv * 100.0
        ),
        None => println!("no real implied vol for this day: the calibrated model sets the level"),
    }
    let money = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.2}"));
    let num = |p: Option<f64>, digits: usize| p.map_or("-".into(), |p| format!("{p:.digits$}"));
    let rows: Vec<Vec<String>> = v
        .quotes
        .iter()
        .map(|r| {
            vec![
                r.right.to_string(),
                format!("{:.2}", r.strike_usd),
                format!("{:.1}%", (1.0 - r.strike_usd / v.spot_usd) * 100.0),
                money(r.bid_usd),
                money(r.ask_usd),
                r.implied_vol
                    .map_or("-".into(), |iv| format!("{:.1}%", iv * 100.0)),
                num(r.delta, 3),
                num(r.gamma, 4),
                num(r.vega, 3),
                num(r.theta, 2),
                r.open_interest.map_or("-".into(), |o| o.to_string()),
                r.volume.map_or("-".into(), |o| o.to_string()),
            ]
        })
        .collect();
    table(
        &[
            "right", "strike", "otm", "bid", "ask", "iv", "delta", "gamma", "vega", "theta/yr",
            "oi", "volume",
        ],
        &rows,
    );
}
