//! `trader-cli backtest`: the engine loop over real history on the
//! simulated exchange and a simulated clock, everything written to a
//! database just as live trading would, then a summary and a report read
//! back from that database alone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, Utc};
use clap::Args;
use core_domain::Money;
use indicatif::{ProgressBar, ProgressStyle};
use orchestrator::backtest::{RuleLimits, RuleReport, check_rules, results};
use orchestrator::metrics::{MetricsParams, Summary};
use orchestrator::report::{ReportMeta, fmt_money, write_report};
use orchestrator::{Pace, run};
use serde_json::json;
use store::Store;

/// Arguments of `trader-cli backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// First day (YYYY-MM-DD); the run opens at the first session on or after it.
    #[arg(long, default_value = "2016-01-04")]
    pub from: NaiveDate,
    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long, default_value = "2018-12-31")]
    pub to: NaiveDate,
    /// Seed of the simulated market (overrides broker.sim.exchange.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the run's database and report go [default:
    /// backtests/<from>_<to>_seed<seed>]. An existing database there is
    /// replaced.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the backtest; exit code 0, or 1 if a risk rule was broken.
pub fn run_backtest(
    args: &BacktestArgs,
    json: bool,
    settings: &settings::Settings,
) -> Result<ExitCode> {
    if args.from > args.to {
        bail!(
            "--from {} is after --to {}: the window is empty",
            args.from,
            args.to
        );
    }
    let seed = args.seed.unwrap_or(settings.broker.sim.exchange.seed);
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("backtests").join(format!("{}_{}_seed{seed}", args.from, args.to))
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    let db = dir.join("backtest.db");
    store::remove_database_files(&db).with_context(|| format!("replacing {}", db.display()))?;
    let url = db.display().to_string();
    let store = Arc::new(
        Store::open_and_migrate(&url).with_context(|| format!("creating the database {url}"))?,
    );
    store
        .relax_durability_for_research()
        .context("configuring the backtest database")?;
    let mut sim =
        traderd::wiring::sim_run(settings, Arc::clone(&store), args.from, args.to, Some(seed))?;
    let start_time = sim.exchange.now();
    let until = sim.until;
    let total_minutes = (until - start_time).num_minutes().max(1) as u64;
    let bar = if args.quiet || json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total_minutes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = AtomicBool::new(false);
    let wall = Instant::now();
    let mut cycles = 0u64;
    let mut trades_closed = 0usize;
    runtime
        .block_on(run(
            &mut sim.engine,
            &sim.clock,
            until,
            Pace::AsFastAsPossible,
            &stop,
            |r| {
                cycles += 1;
                trades_closed += r.trades_closed;
                if let Some(t) = r.time {
                    bar.set_position((t - start_time).num_minutes().max(0) as u64);
                    if cycles.is_multiple_of(64) {
                        bar.set_message(format!(
                            "{} · {} trades closed · net liq {}",
                            t.format("%Y-%m-%d"),
                            trades_closed,
                            fmt_money(Money::from_cents(r.net_liquidation_cents))
                        ));
                    }
                }
            },
        ))
        .context("running the engine over history")?;
    bar.finish_and_clear();
    let elapsed = wall.elapsed();

    // From the database alone.
    let starting = Money::from_f64_dollars(settings.broker.sim.exchange.starting_cash)
        .context("broker.sim.exchange.starting_cash")?;
    let res = results(
        &store,
        start_time,
        until,
        starting,
        &MetricsParams::default(),
    )
    .context("reading the run back from its database")?;
    let limits = rule_limits(settings);
    let rules = check_rules(&res.trades, &limits);
    let meta = ReportMeta {
        period_from: sim.first_session,
        period_to: args.to,
        seed: Some(seed),
        config_path: None,
        config_hash: None,
        generated_at: Utc::now(),
        caveats: traderd::wiring::caveats(settings),
    };
    let title = format!(
        "Backtest {} to {} (seed {seed})",
        sim.first_session, args.to
    );
    let paths = write_report(&dir, &title, &res.summary, &res.equity, &res.trades, &meta)
        .context("writing the report")?;
    let s = &res.summary;
    if json {
        crate::output::json(&json!({
            "database": url,
            "report": paths.html.display().to_string(),
            "cycles": cycles,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "summary": s,
            "rules": rules,
            "caveats": meta.caveats,
        }))?;
    } else {
        println!("{title}");
        println!(
            "  cycles            {cycles} in {:.1} s",
            elapsed.as_secs_f64()
        );
        print_summary(s, &rules, &limits);
        for caveat in &meta.caveats {
            println!("  caveat            {caveat}");
        }
        println!("  database          {url}");
        println!("  report            {}", paths.html.display());
    }
    Ok(if rules.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The rule limits of the settings (see [`traderd::wiring::rule_limits`]).
pub fn rule_limits(settings: &settings::Settings) -> RuleLimits {
    traderd::wiring::rule_limits(settings)
}

/// Prints the summary lines of a run read back from its database, the
/// lines `backtest`, `report` and `traderd` share
/// ([`orchestrator::report::summary_lines`]).
pub fn print_summary(s: &Summary, rules: &RuleReport, limits: &RuleLimits) {
    for line in orchestrator::report::summary_lines(s, rules, limits) {
        println!("{line}");
    }
}
