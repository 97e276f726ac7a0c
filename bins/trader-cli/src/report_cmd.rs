//! `trader-cli report`: the performance report of the configured database
//! alone (whatever wrote it: `traderd`, a live run, or a backtest whose
//! database the configuration names): trades, the daily equity curve, the
//! summary and the risk-rule checks, written as `report.md`, `report.html`
//! and the SVG charts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::America::New_York;
use clap::Args;
use core_domain::{AccountRepository, Money, WorkingMemory};
use orchestrator::backtest::{check_rules, results};
use orchestrator::metrics::MetricsParams;
use orchestrator::report::{ReportMeta, write_report};
use serde_json::json;
use settings::Loaded;
use store::Store;

use crate::backtest_cmd::{print_summary, rule_limits};

/// Arguments of `trader-cli report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD, New York date) [default: the first day recorded].
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD, New York date), inclusive [default: the last day recorded].
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Directory for report.md, report.html and the charts (created if
    /// missing; an existing report there is replaced).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
}

/// Midnight in New York at the start of `date`, in UTC.
fn new_york_midnight(date: NaiveDate) -> Result<DateTime<Utc>> {
    let Some(midnight) = date.and_hms_opt(0, 0, 0) else {
        bail!("{date} has no midnight");
    };
    New_York
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{date} 00:00 does not exist in New York"))
}

/// Writes the report of the period from `store` into `args.out` and prints
/// the summary. Exit code 0 once the report is written, whatever it shows
/// (broken risk rules are listed in it and in the summary).
pub fn run(args: &ReportArgs, json: bool, loaded: &Loaded, store: &Store) -> Result<ExitCode> {
    let settings = &loaded.settings;
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        bail!("--from {from} is after --to {to}: the period is empty; swap them");
    }
    // Without a bound, everything recorded.
    let from_t = match args.from {
        Some(d) => new_york_midnight(d)?,
        None => Utc
            .with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    };
    let to_t = match args.to {
        Some(d) => {
            let next = d
                .succ_opt()
                .with_context(|| format!("--to {d} is the last representable date"))?;
            new_york_midnight(next)? - Duration::nanoseconds(1)
        }
        None => Utc
            .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
            .single()
            .unwrap_or_default(),
    };
    // Starting equity: the net liquidation at the period's first snapshot;
    // without one, the simulated exchange's starting cash.
    let first_snapshot = store
        .snapshots(from_t, to_t)
        .context("reading the account snapshots")?
        .into_iter()
        .next();
    let starting = match &first_snapshot {
        Some(s) => s.net_liquidation,
        None => Money::from_f64_dollars(settings.broker.sim.exchange.starting_cash)
            .context("broker.sim.exchange.starting_cash is not an amount of money; fix it and run `trader-cli config check`")?,
    };
    let res = results(store, from_t, to_t, starting, &MetricsParams::default())
        .context("reading the trades and account snapshots from the database")?;
    let limits = rule_limits(settings);
    let rules = check_rules(&res.trades, &limits);

    // The period shown: as asked, else what the database holds.
    let first_day = res
        .equity
        .first()
        .map(|p| p.date)
        .into_iter()
        .chain(res.trades.iter().map(|t| t.entry_date))
        .min();
    let last_day = res
        .equity
        .last()
        .map(|p| p.date)
        .into_iter()
        .chain(
            res.trades
                .iter()
                .map(|t| t.exit_date.unwrap_or(t.entry_date)),
        )
        .max();
    let today = execution::trade_log::exchange_date(Utc::now());
    let period_from = args.from.or(first_day).unwrap_or(today);
    let period_to = args.to.or(last_day).unwrap_or(period_from);
    let seed = store
        .recall(traderd::wiring::REPLAY_KEY)
        .context("reading the replay record")?
        .and_then(|v| serde_json::from_value::<traderd::wiring::ReplayIdentity>(v).ok())
        .map(|r| r.seed);
    let meta = ReportMeta {
        period_from,
        period_to,
        seed,
        config_path: loaded.file_found.then(|| loaded.path.clone()),
        config_hash: None,
        generated_at: Utc::now(),
        caveats: traderd::wiring::caveats(&loaded.settings),
    };
    let title = format!("Performance {period_from} to {period_to}");
    let paths = write_report(
        &args.out,
        &title,
        &res.summary,
        &res.equity,
        &res.trades,
        &meta,
    )
    .with_context(|| {
        format!(
            "writing the report into {} (check that the directory is writable, or choose another with --out)",
            args.out.display()
        )
    })?;
    let db = settings::redact_url(&settings.database.url);
    let empty = res.trades.is_empty().then(|| {
        if args.from.is_some() || args.to.is_some() {
            format!(
                "no trades were entered from {period_from} to {period_to}; the report has no trades (widen --from/--to)"
            )
        } else {
            "the database has no trades yet; the report has no trades (the engine writes them: run `traderd`, or point database.url at a backtest's database)".to_string()
        }
    });
    if json {
        crate::output::json(&json!({
            "database": db,
            "period": {"from": period_from, "to": period_to},
            "report": paths.html.display().to_string(),
            "markdown": paths.markdown.display().to_string(),
            "trades": res.trades.len(),
            "note": empty,
            "summary": res.summary,
            "rules": rules,
        }))?;
    } else {
        println!("{title}");
        if let Some(note) = &empty {
            println!("  note              {note}");
        }
        print_summary(&res.summary, &rules, &limits);
        println!("  database          {db}");
        println!(
            "  report            {} (and {})",
            paths.html.display(),
            paths.markdown.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
