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
use orchestrator::report::{ReportMeta, fmt_money, fmt_pct, fmt_ratio, write_report};
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
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("replacing {}", p.display()))?;
        }
    }
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
        }))?;
    } else {
        println!("{title}");
        println!(
            "  cycles            {cycles} in {:.1} s",
            elapsed.as_secs_f64()
        );
        print_summary(s, &rules, &limits);
        println!("  database          {url}");
        println!("  report            {}", paths.html.display());
    }
    Ok(if rules.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The limits [`check_rules`] verifies, from the settings: the risk
/// limits, the strategy's exits, and the exchange's slippage as the price
/// tolerance.
pub fn rule_limits(settings: &settings::Settings) -> RuleLimits {
    let limits = settings.risk_limits();
    RuleLimits {
        max_open: usize::try_from(limits.max_open_positions).unwrap_or(0),
        max_new_per_day: usize::try_from(limits.max_positions_per_day).unwrap_or(0),
        profit_target: settings.strategy.exits.profit_target,
        stop_loss: settings.strategy.exits.stop_loss,
        time_exit_dte: settings.strategy.exits.time_exit_dte,
        slippage_tolerance: settings.broker.sim.exchange.slippage_ticks as f64 * 0.01,
    }
}

/// Prints the summary lines of a run read back from its database (trades,
/// returns, risk, exits, the rule checks against `limits`): the lines
/// `backtest` and `report` share, between their own header and footer.
pub fn print_summary(s: &Summary, rules: &RuleReport, limits: &RuleLimits) {
    println!(
        "  trades            {} closed, {} open",
        s.closed_trades, s.open_trades
    );
    println!("  win rate          {}", fmt_pct(s.win_rate));
    println!("  avg ROI / trade   {}", fmt_pct(s.avg_roi));
    println!("  total P&L         {}", fmt_money(s.total_pnl));
    println!("  total return      {}", fmt_pct(s.total_return));
    println!("  CAGR              {}", fmt_pct(s.cagr));
    println!(
        "  Sharpe / Sortino  {} / {}",
        fmt_ratio(s.sharpe),
        fmt_ratio(s.sortino)
    );
    println!(
        "  max drawdown      {}",
        fmt_pct(Some(s.max_drawdown.fraction))
    );
    println!("  exposure          {}", fmt_pct(s.exposure));
    let reasons: Vec<String> = rules
        .exits_by_reason
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!(
        "  exits             {}",
        if reasons.is_empty() {
            "none".to_string()
        } else {
            reasons.join(", ")
        }
    );
    println!(
        "  risk rules        max open {} (≤ {}), max new/day {} (≤ {}), {} violations",
        rules.max_open_seen,
        limits.max_open,
        rules.max_new_in_a_day,
        limits.max_new_per_day,
        rules.violations.len()
    );
    for v in rules.violations.iter().take(10) {
        println!("    ! {}: {}", v.rule, v.detail);
    }
    if rules.violations.len() > 10 {
        println!("    ... and {} more", rules.violations.len() - 10);
    }
}
