//! `trader-cli scan [--date D] [--time HH:MM] [--json]`: the screener and
//! the options finder against the configured broker, listing the ranked
//! opportunities and the reasons for everything left out.
//!
//! With `broker.kind = "sim"` (the default) the scan runs on the simulated
//! exchange built from the shipped history and `[broker.sim]`, at the
//! first intraday checkpoint at or after `--time` (New York) of session
//! `--date` (default: the last session of the data), with a fresh account
//! (no open positions). With `broker.kind = "ibkr"` it scans now through
//! TWS / IB Gateway (or `trader-cli sim-gateway`), counting the account's
//! open short puts. Nothing is ordered: the broker is asked for quotes and
//! what-if margin only.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use core_domain::DecisionRecord;
use market_sim::SimExchange;
use market_sim::calendar::NyseCalendar;
use strategy_naked_put::finder::MarginSource;
use strategy_naked_put::scan::{ScanReport, scan};

use crate::output::{self, table};

/// Arguments of `trader-cli scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Session to scan on the simulated market (YYYY-MM-DD). Default: the
    /// last session of the shipped data.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// New York time of day to scan at (HH:MM); the scan runs at the first
    /// intraday checkpoint at or after it (the close if it is later).
    #[arg(long, default_value = "10:00")]
    pub time: String,
}

/// Runs the scan and prints it: a table and the left-out reasons grouped
/// by symbol, or the `ScanReport` as JSON (notes then go to stderr).
pub fn run(args: &ScanArgs, json: bool, settings: &settings::Settings) -> Result<ExitCode> {
    match settings.broker.kind.as_str() {
        "sim" => {}
        "ibkr" => return run_ibkr(args, json, settings),
        other => bail!("unknown broker.kind {other:?}: expected \"sim\" or \"ibkr\""),
    }
    let params = settings.strategy_params();
    let history = market_sim::universe::history_of(&settings.broker.sim.universe)
        .context("loading the universe's history")?;
    let (first, last) = match (history.dates.first(), history.dates.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => bail!("the shipped history has no sessions"),
    };
    let mut notes = Vec::new();
    let date = match args.date {
        Some(d) => d,
        None => {
            notes.push(format!(
                "no --date given: scanning the last session of the data, {last}"
            ));
            last
        }
    };
    if history.date_index(date).is_none() {
        let next = history.dates.iter().find(|d| **d > date);
        match next {
            _ if date < first || date > last => {
                bail!("{date} is outside the simulated market's data ({first} to {last})")
            }
            Some(n) => bail!("{date} is not a trading session; the next one is {n}"),
            None => bail!("{date} is not a trading session"),
        }
    }
    let time_of_day = NaiveTime::parse_from_str(args.time.trim(), "%H:%M")
        .with_context(|| format!("--time {:?}: expected HH:MM (New York time)", args.time))?;
    let exchange = traderd::wiring::sim_exchange(
        settings,
        Arc::new(history.clone()),
        settings.broker.sim.chain.clone(),
        date,
        None,
    )?;
    let at = checkpoint_at_or_after(&exchange, date, time_of_day, &mut notes)?;
    exchange.advance_to(at);
    let universe = traderd::wiring::universe_of(history);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(scan(
            &*exchange, &*exchange, &params, &universe, 0, date, at,
        ))
        .context("scanning the simulated market")?;
    if json {
        for n in &notes {
            eprintln!("note: {n}");
        }
        output::json(&report)?;
    } else {
        for n in &notes {
            println!("note: {n}");
        }
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The scan against TWS / IB Gateway (or the simulated gateway) now: the
/// broker's time and its open short puts; quotes and what-if margin only,
/// nothing is ordered. `--date`/`--time` do not apply (a broker scans its
/// present).
fn run_ibkr(args: &ScanArgs, json: bool, settings: &settings::Settings) -> Result<ExitCode> {
    if args.date.is_some() {
        bail!(
            "--date applies to the simulated market only; against Interactive Brokers the scan is of now"
        );
    }
    let params = settings.strategy_params();
    let config = traderd::ibkr::ibkr_config(settings)?;
    let address = config.address();
    let history = traderd::wiring::history()?;
    let universe = traderd::wiring::universe_of(&history);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async {
        use core_domain::Broker;
        let broker = broker_ibkr::IbkrBroker::connect(config)
            .await
            .with_context(|| format!("connecting to TWS / IB Gateway at {address}"))?;
        let at = broker
            .server_time()
            .await
            .context("asking TWS / IB Gateway for its time")?;
        let date = at.with_timezone(&chrono_tz::America::New_York).date_naive();
        let open = broker
            .positions()
            .await
            .context("reading the account's positions")?
            .iter()
            .filter(|p| p.quantity < 0)
            .count();
        let report = scan(
            &broker,
            &broker,
            &params,
            &universe,
            i64::try_from(open).unwrap_or(i64::MAX),
            date,
            at,
        )
        .await
        .with_context(|| format!("scanning through TWS / IB Gateway at {address}"));
        broker.disconnect().await;
        report
    })?;
    if json {
        output::json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The first checkpoint of session `date` at or after `time_of_day` New
/// York (the open before it, the close after the last one).
pub(crate) fn checkpoint_at_or_after(
    exchange: &SimExchange,
    date: NaiveDate,
    time_of_day: NaiveTime,
    notes: &mut Vec<String>,
) -> Result<DateTime<Utc>> {
    let calendar = NyseCalendar::new();
    let open = calendar
        .session_open(date)
        .with_context(|| format!("{date} has no session open"))?;
    let checkpoints = exchange.checkpoint_times(date);
    let (Some(first), Some(close)) = (checkpoints.first().copied(), checkpoints.last().copied())
    else {
        bail!("{date} has no intraday checkpoints");
    };
    // The session opens at 09:30 New York; no daylight-saving change falls
    // inside a session, so the offset from the open is the time of day.
    let open_time = NaiveTime::from_hms_opt(9, 30, 0).context("09:30 is a time")?;
    let target = open + time_of_day.signed_duration_since(open_time);
    if target < first {
        notes.push(format!(
            "{} is before the open: scanning at the open",
            time_of_day.format("%H:%M")
        ));
        return Ok(first);
    }
    match checkpoints.iter().find(|t| **t >= target) {
        Some(t) => Ok(*t),
        None => {
            notes.push(format!(
                "{} is after the close: scanning at the close",
                time_of_day.format("%H:%M")
            ));
            Ok(close)
        }
    }
}

fn f2(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn print_report(r: &ScanReport) {
    println!(
        "scan of {} at {} ({}): {} symbols screened, {} passed the screen, {} puts quoted, {} opportunities",
        r.today,
        r.time.format("%Y-%m-%d %H:%M UTC"),
        r.strategy,
        r.screened,
        r.passed_screen,
        r.quoted,
        r.opportunities.len()
    );
    println!();
    let header = [
        "#", "symbol", "price", "sma20", "sma50", "strike", "expiry", "dte", "otm", "bid", "ask",
        "premium", "iv", "delta", "oi", "margin", "src", "eff/yr",
    ];
    let rows: Vec<Vec<String>> = r
        .opportunities
        .iter()
        .map(|o| {
            vec![
                o.rank.to_string(),
                o.symbol.to_string(),
                o.underlying_price.to_string(),
                f2(o.sma20),
                f2(o.sma50),
                o.strike.to_string(),
                o.expiry.to_string(),
                o.dte.to_string(),
                output::pct(Some(o.otm_pct)),
                o.bid.to_string(),
                o.ask.to_string(),
                o.premium.to_string(),
                output::pct(o.iv),
                o.delta.map_or_else(|| "-".into(), |d| format!("{d:.3}")),
                output::opt(o.open_interest),
                o.margin.to_string(),
                match o.margin_source {
                    MarginSource::WhatIf => "what-if".into(),
                    MarginSource::RegT => "Reg-T".into(),
                },
                output::pct(Some(o.margin_efficiency)),
            ]
        })
        .collect();
    table(&header, &rows);
    for o in &r.opportunities {
        println!("  {}: {}", o.contract.key(), o.rank_explanation);
    }
    println!();
    println!("left out ({}):", r.rejected.len());
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &r.rejected {
        let symbol = d
            .subject
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        groups.entry(symbol).or_default().push(left_out_line(d));
    }
    if groups.is_empty() {
        println!("  (nothing)");
    }
    for (symbol, lines) in groups {
        println!("  {symbol}:");
        for line in lines {
            println!("    {line}");
        }
    }
}

/// "MSFT: screen: uptrend failed (close 240.10 sma20 245.30 sma50 250.20;
/// needs close > sma20 > sma50)". Finder and broker reasons already carry
/// their numbers.
fn left_out_line(d: &DecisionRecord) -> String {
    if !d.reason.starts_with("screen:") {
        return format!("{}: {}", d.subject, d.reason);
    }
    let details: Vec<String> = d
        .criteria
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            let value = c
                .numeric_value
                .map_or_else(|| c.value.clone(), |v| format!("{} {v:.2}", c.name));
            format!("{value}; needs {}", c.threshold)
        })
        .collect();
    if details.is_empty() {
        format!("{}: {}", d.subject, d.reason)
    } else {
        format!("{}: {} ({})", d.subject, d.reason, details.join("; "))
    }
}
