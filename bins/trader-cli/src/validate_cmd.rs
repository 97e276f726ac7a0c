//! `trader-cli validate --from D --to D [--manual trades.csv] [--report
//! report.md] [--time HH:MM] [--json]`: replays the strategy's selection
//! day by day over the shipped history and reports what it would have
//! listed; with `--manual`, how often it picked the trades a trader took by
//! hand.
//!
//! The replay runs on one simulated exchange (`[broker.sim]`) opened at
//! `--from` and advanced session by session to `--time` New York (10:00 by
//! default), where the scan runs with no open positions: selection only,
//! nothing is ordered. A year takes well under a second in a release build.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveTime};
use market_sim::{ChainModel, SimExchange};
use strategy_naked_put::validator::{
    ManualTrade, Progress, ReplaySession, SESSION_OPEN_NEW_YORK, TARGET_BAND, ValidationConfig,
    ValidationReport, checkpoint_time, read_manual_trades, validate,
};

use crate::output::{self, table};

/// How many unmatched manual trades the summary prints (the markdown
/// report and the JSON have them all).
const UNMATCHED_SHOWN: usize = 20;

/// Seconds between progress lines on stderr (none for a shorter run).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Arguments of `trader-cli validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// First day of the window (YYYY-MM-DD), within the data (1990-01-02 to 2022-12-28).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day of the window (YYYY-MM-DD), included.
    #[arg(long)]
    pub to: NaiveDate,
    /// CSV of trades taken by hand, header `date,symbol,strike,expiry`
    /// (any order; extra columns such as premium are ignored): reports the
    /// strategy's match rate against it.
    #[arg(long)]
    pub manual: Option<std::path::PathBuf>,
    /// Also write the report as markdown to this file.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// New York time of the daily scan (HH:MM, 09:30 to 15:59).
    #[arg(long, default_value = "10:00")]
    pub time: String,
}

/// Runs the replay and prints a summary (or the whole report as JSON).
pub fn run(args: &ValidateArgs, json: bool, settings: &settings::Settings) -> Result<ExitCode> {
    let checkpoint = parse_time(&args.time)?;
    let (from, to) = (args.from, args.to);
    if from > to {
        bail!("--from {from} is after --to {to}: the window is empty");
    }
    let history = market_sim::data::real_history().context("loading the shipped history")?;
    let (first, last) = match (history.dates.first(), history.dates.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => bail!("the shipped history has no sessions"),
    };
    if from < first || to > last {
        bail!("the window {from} to {to} reaches outside the data, which covers {first} to {last}");
    }
    let range = history.date_range(from, to);
    if range.is_empty() {
        bail!("no trading session between {from} and {to}");
    }
    let manual: Option<Vec<ManualTrade>> = match &args.manual {
        Some(path) => Some(read_manual_trades(path).map_err(anyhow::Error::new)?),
        None => None,
    };

    let params = settings.strategy_params();
    let exchange = SimExchange::new(
        Arc::new(history.clone()),
        ChainModel::new(settings.broker.sim.chain.clone()),
        settings.broker.sim.exchange.clone(),
        from,
    )
    .map_err(|e| anyhow::anyhow!("opening the simulated exchange on {from}: {e}"))?;
    let calendar = exchange.calendar();
    let mut sessions = Vec::with_capacity(range.len());
    for date in &history.dates[range] {
        let (Some(open), Some(close)) =
            (calendar.session_open(*date), calendar.session_close(*date))
        else {
            bail!("{date} is in the data but not an exchange session of the calendar");
        };
        sessions.push(ReplaySession {
            date: *date,
            time: checkpoint_time(open, close, checkpoint),
        });
    }
    let universe = traderd::wiring::universe_of(history);
    let config = ValidationConfig {
        from,
        to,
        checkpoint,
        params,
        universe,
    };

    let started = Instant::now();
    let mut last_note = started;
    let show_progress = |p: &Progress| {
        let now = Instant::now();
        if now.duration_since(last_note) >= PROGRESS_EVERY {
            last_note = now;
            eprintln!(
                "validate: {} ({}/{} sessions, {:.0}%)",
                p.date,
                p.done,
                p.total,
                100.0 * p.done as f64 / p.total.max(1) as f64
            );
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(validate(
            &exchange,
            &exchange,
            &sessions,
            &config,
            manual.as_deref(),
            |t| {
                exchange.advance_to(t);
            },
            show_progress,
        ))
        .context("replaying the selection")?;
    let elapsed = started.elapsed();
    if elapsed >= PROGRESS_EVERY {
        eprintln!(
            "validate: {} sessions replayed in {:.1} s",
            report.sessions,
            elapsed.as_secs_f64()
        );
    }

    if let Some(path) = &args.report {
        write_markdown(path, &report)?;
    }
    if json {
        output::json(&report)?;
    } else {
        print_summary(&report, elapsed);
        if let Some(path) = &args.report {
            println!();
            println!("markdown report written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `HH:MM` (or `HH:MM:SS`) New York, inside the regular session.
fn parse_time(text: &str) -> Result<NaiveTime> {
    let t = text.trim();
    let time = NaiveTime::parse_from_str(t, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
        .with_context(|| format!("--time {text:?}: expected HH:MM (New York time)"))?;
    let close = NaiveTime::from_hms_opt(16, 0, 0).context("16:00 is a time")?;
    if time < SESSION_OPEN_NEW_YORK || time >= close {
        bail!(
            "--time {text}: the scan must run while the market is open, 09:30 to 15:59 New York \
             (on 13:00 early-close days a later time runs at 12:59)"
        );
    }
    Ok(time)
}

fn write_markdown(path: &Path, report: &ValidationReport) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    std::fs::write(path, report.to_markdown())
        .with_context(|| format!("writing the report to {}", path.display()))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn print_summary(r: &ValidationReport, elapsed: Duration) {
    let s = &r.summary;
    println!(
        "validation of {} from {} to {}: {} sessions at {} New York, {} symbols ({:.2} s)",
        r.params.name,
        r.from,
        r.to,
        r.sessions,
        r.checkpoint,
        r.universe.len(),
        elapsed.as_secs_f64()
    );
    println!();
    let share = |n: usize| pct(n as f64 / r.sessions.max(1) as f64);
    table(
        &["opportunities per day", "value"],
        &[
            vec!["listed in all".into(), s.total_opportunities.to_string()],
            vec![
                "days with at least one".into(),
                format!(
                    "{} ({})",
                    s.days_with_opportunity,
                    share(s.days_with_opportunity)
                ),
            ],
            vec!["mean".into(), format!("{:.2}", s.mean_per_day)],
            vec!["median".into(), format!("{:.1}", s.median_per_day)],
            vec!["most in a day".into(), s.max_per_day.to_string()],
            vec![
                format!("days with {}-{} (the target)", TARGET_BAND.0, TARGET_BAND.1),
                format!(
                    "{} ({})",
                    s.days_in_target_band,
                    pct(s.share_in_target_band)
                ),
            ],
            vec![
                format!("days with more than {}", TARGET_BAND.1),
                s.days_above_target_band.to_string(),
            ],
        ],
    );
    println!();
    for (title, h) in [
        ("otm", &s.otm_pct),
        ("premium", &s.premium),
        ("dte", &s.dte),
    ] {
        let mut cells: Vec<String> = h
            .buckets
            .iter()
            .map(|b| format!("{} {}", b.label, b.count))
            .collect();
        if h.below > 0 {
            cells.insert(0, format!("below {}", h.below));
        }
        if h.above > 0 {
            cells.push(format!("above {}", h.above));
        }
        println!("{title:<8} {}", cells.join(" | "));
    }
    let mut sectors: Vec<(&String, &usize)> = s.sectors.iter().collect();
    sectors.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let sectors: Vec<String> = sectors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "sectors  {}",
        if sectors.is_empty() {
            "-".to_string()
        } else {
            sectors.join(" | ")
        }
    );
    let top: Vec<String> = s
        .top_symbols
        .iter()
        .map(|t| format!("{} {}", t.symbol, t.opportunities))
        .collect();
    println!(
        "symbols  {}",
        if top.is_empty() {
            "-".to_string()
        } else {
            top.join(" | ")
        }
    );

    let Some(m) = &r.manual else {
        return;
    };
    println!();
    println!(
        "manual trades: {} in the window{}; exact match {} ({}), symbol listed that day {} ({})",
        m.trades,
        if m.outside_window > 0 {
            format!(" ({} outside it, ignored)", m.outside_window)
        } else {
            String::new()
        },
        m.matched_exact,
        pct(m.match_rate_exact),
        m.matched_symbol_day,
        pct(m.match_rate_symbol_day)
    );
    if m.unmatched.is_empty() {
        return;
    }
    let mut by: Vec<(&String, &usize)> = m.by_criterion.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let by: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("not selected because: {}", by.join(", "));
    println!();
    let rows: Vec<Vec<String>> = m
        .unmatched
        .iter()
        .take(UNMATCHED_SHOWN)
        .map(|u| {
            let t = &u.trade;
            vec![
                t.line.to_string(),
                t.date.to_string(),
                format!("{} {} {} P", t.symbol, t.expiry, t.strike),
                if u.symbol_day_matched { "yes" } else { "no" }.into(),
                u.reason.clone(),
            ]
        })
        .collect();
    table(&["line", "date", "put", "symbol listed", "reason"], &rows);
    if m.unmatched.len() > UNMATCHED_SHOWN {
        println!(
            "... and {} more (all in --json and --report)",
            m.unmatched.len() - UNMATCHED_SHOWN
        );
    }
}
