//! The subcommands.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::Args;
use core_domain::{
    AccountRepository, AuditEntry, AuditRepository, LearningRepository, OrderRepository,
    PatternStatus, Symbol, TradeFilter, TradeRepository,
};
use serde_json::json;
use settings::{ConfigError, LoadOptions, Loaded};
use store::Store;

use crate::output::{self, opt, pct, table};
use crate::{Cli, Command, ConfigCommand, DbCommand, EXIT_NOT_IMPLEMENTED};

/// Arguments of a subcommand that is planned but not built yet; accepted so
/// that the message is the same whatever is passed.
#[derive(Debug, Args)]
pub struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// Who is acting, for the audit log.
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("trader-cli:{user}")
}

pub fn run(cli: &Cli) -> Result<ExitCode> {
    // The console stays quiet (warnings only); RUST_LOG can raise it.
    let quiet = settings::LoggingSettings {
        file: false,
        ..Default::default()
    };
    let _guard = settings::logging::init(&quiet, "trader-cli", Some("warn"));
    match &cli.command {
        Command::Init { force } => init(cli, *force),
        Command::Config(ConfigCommand::Check) => config_check(cli),
        Command::Config(ConfigCommand::Show) => config_show(cli),
        Command::Db(DbCommand::Migrate) => db_migrate(cli),
        Command::Db(DbCommand::Status) => db_status(cli),
        Command::Status => status(cli),
        Command::Positions => positions(cli),
        Command::Trades {
            open,
            closed,
            symbol,
            limit,
        } => trades(cli, *open, *closed, symbol.as_deref(), *limit),
        Command::Decisions { limit } => decisions(cli, *limit),
        Command::Audit { limit } => audit(cli, *limit),
        Command::Notifications { limit } => notifications(cli, *limit),
        Command::Experiments => experiments(cli),
        Command::Patterns { all } => patterns(cli, *all),
        Command::LearningHistory { limit } => learning_history(cli, *limit),
        Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        Command::Scan(a) => {
            let loaded = load_settings(cli)?;
            crate::scan_cmd::run(a, cli.json, &loaded.settings)
        }
        Command::Validate(a) => {
            let loaded = load_settings(cli)?;
            crate::validate_cmd::run(a, cli.json, &loaded.settings)
        }
        Command::Backtest(a) => {
            let loaded = load_settings(cli)?;
            crate::backtest_cmd::run_backtest(a, cli.json, &loaded.settings)
        }
        Command::Run(_) => run_elsewhere(cli),
        Command::Report(a) => {
            let loaded = load_settings(cli)?;
            let store = open_existing(&loaded)?;
            crate::report_cmd::run(a, cli.json, &loaded, &store)
        }
        Command::Analyze(a) if a.ai => {
            let loaded = load_settings(cli)?;
            let store = open_existing(&loaded)?;
            crate::analyst_cmd::run(a, cli.json, &loaded, &store)
        }
        Command::Analyze(_) => analyze(cli),
        Command::Reports { limit, id } => {
            let loaded = load_settings(cli)?;
            let store = open_existing(&loaded)?;
            crate::analyst_cmd::reports(cli.json, &store, *limit, *id)
        }
        Command::Shadow { limit } => shadow(cli, *limit),
        Command::Optimize(a) => {
            let loaded = load_settings(cli)?;
            let store = open_existing(&loaded)?;
            crate::optimize_cmd::run(a, cli.json, &loaded.settings, &store)
        }
        Command::EmergencyStop { reason, flatten } => emergency_stop(cli, reason, *flatten),
        Command::Resume { reason } => resume(cli, reason),
        Command::Price(a) => crate::quant::price(a, cli.json),
        Command::Iv(a) => crate::quant::iv(a, cli.json),
        Command::Margin(a) => crate::quant::margin(a, cli.json),
        Command::Bench(a) => crate::bench::run(a, cli.json),
        Command::LearningProof(a) => crate::learning_proof_cmd::run(a, cli.json),
        Command::SimGateway(a) => {
            let loaded = load_settings(cli)?;
            crate::sim_gateway_cmd::run(a, &loaded.settings)
        }
        Command::Chain(a) => crate::chain_cmd::run(a, cli.json, &load_settings(cli)?.settings),
        Command::Calibrate(a) => {
            crate::calibrate_cmd::run(a, cli.json, &load_settings(cli)?.settings)
        }
    }
}

/// `trader-cli run`: the engine runs as the daemon; says how to start it.
fn run_elsewhere(cli: &Cli) -> Result<ExitCode> {
    let command = match &cli.config {
        Some(path) => {
            let path = path.display().to_string();
            if path
                .chars()
                .any(|c| c.is_whitespace() || "'\"$`\\".contains(c))
            {
                format!("traderd --config '{}'", path.replace('\'', r"'\''"))
            } else {
                format!("traderd --config {path}")
            }
        }
        None => "traderd".to_string(),
    };
    eprintln!(
        "trader-cli run: not implemented here: the engine runs as the daemon. Start it with\n  \
         {command}\n\
         `trader-cli status` shows what it is doing; Ctrl-C stops it after the cycle in progress."
    );
    Ok(ExitCode::from(EXIT_NOT_IMPLEMENTED))
}

/// Loads the configuration. A missing default file means the defaults; a
/// file named with --config or TRADER_CONFIG must exist.
fn load_settings(cli: &Cli) -> Result<Loaded> {
    let opts = LoadOptions::for_config_arg(cli.config.as_deref());
    settings::load(&opts).map_err(|e| match e {
        ConfigError::Invalid(_) => anyhow::anyhow!(
            "{e}\nfix {} (or the environment variables named) and run `trader-cli config check`",
            opts.path.display()
        ),
        other => other.into(),
    })
}

fn open_store(loaded: &Loaded) -> Result<Store> {
    let url = &loaded.settings.database.url;
    Store::open(url).with_context(|| format!("opening the database {url}"))
}

fn init(cli: &Cli, force: bool) -> Result<ExitCode> {
    let path = &settings::config_path(cli.config.as_deref());
    let existed = path.exists();
    if existed && !force {
        println!(
            "config   {} exists; kept as it is (use --force to overwrite with the template)",
            path.display()
        );
    } else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the directory {}", dir.display()))?;
        }
        std::fs::write(path, settings::TEMPLATE)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "config   {} {} (every key commented; edit it, then `trader-cli config check`)",
            path.display(),
            if existed { "overwritten" } else { "written" }
        );
    }
    let loaded = load_settings(cli)?;
    let store = open_store(&loaded)?;
    let applied = store.migrate().context("applying database migrations")?;
    println!(
        "database {} ready ({} migration(s) applied now)",
        loaded.settings.database.url,
        applied.len()
    );
    store.append_audit(
        &AuditEntry::new(Utc::now(), actor(), "init")
            .context(json!({
                "config": path.display().to_string(),
                "config_written": !existed || force,
                "migrations_applied": applied,
            }))
            .outcome("ok"),
    )?;
    println!("next     `trader-cli config check`, then `trader-cli status`");
    Ok(ExitCode::SUCCESS)
}

fn config_check(cli: &Cli) -> Result<ExitCode> {
    let opts = LoadOptions::for_config_arg(cli.config.as_deref());
    match settings::load(&opts) {
        Ok(loaded) => {
            if cli.json {
                output::json(&json!({
                    "ok": true,
                    "file": loaded.path.display().to_string(),
                    "file_found": loaded.file_found,
                    "environment_overrides": loaded.env_overrides,
                    "problems": [],
                }))?;
            } else {
                let source = if loaded.file_found {
                    loaded.path.display().to_string()
                } else {
                    format!("{} not found: defaults", loaded.path.display())
                };
                println!("ok: {source}");
                println!(
                    "    broker {} ({}), database {}",
                    loaded.settings.broker.kind,
                    loaded.settings.broker.trading_mode,
                    settings::redact_url(&loaded.settings.database.url)
                );
                if !loaded.env_overrides.is_empty() {
                    println!("    overridden by {}", loaded.env_overrides.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ConfigError::Invalid(issues)) => {
            if cli.json {
                let problems: Vec<_> = issues
                    .iter()
                    .map(|i| json!({"key": i.key, "message": i.message, "origin": i.origin}))
                    .collect();
                output::json(&json!({
                    "ok": false,
                    "file": opts.path.display().to_string(),
                    "problems": problems,
                }))?;
            } else {
                eprintln!("{}: {} problem(s):", opts.path.display(), issues.len());
                for i in &issues {
                    eprintln!("  - {i}");
                }
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            if cli.json {
                output::json(
                    &json!({"ok": false, "file": opts.path.display().to_string(),
                    "problems": [{"key": "(file)", "message": e.to_string(), "origin": null}]}),
                )?;
            } else {
                eprintln!("{e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn config_show(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    if cli.json {
        output::json(&settings::effective_json(&loaded))?;
    } else {
        print!("{}", settings::effective_toml(&loaded));
    }
    Ok(ExitCode::SUCCESS)
}

fn db_migrate(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_store(&loaded)?;
    let applied = store.migrate().context("applying database migrations")?;
    store.append_audit(
        &AuditEntry::new(Utc::now(), actor(), "db.migrate")
            .context(json!({"applied": applied}))
            .outcome("ok"),
    )?;
    if cli.json {
        output::json(&json!({"applied": applied}))?;
    } else if applied.is_empty() {
        println!("database is up to date");
    } else {
        for m in &applied {
            println!("applied {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn db_status(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_store(&loaded)?;
    let migrations = store.migration_status()?;
    let counts = store.table_counts()?;
    let integrity = store.integrity_check()?;
    if cli.json {
        output::json(&json!({
            "database": settings::redact_url(&loaded.settings.database.url),
            "migrations": migrations.iter().map(|m| json!({"name": m.name, "applied": m.applied})).collect::<Vec<_>>(),
            "tables": counts.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect::<Vec<_>>(),
            "integrity": integrity,
        }))?;
    } else {
        println!(
            "database  {}",
            settings::redact_url(&loaded.settings.database.url)
        );
        println!("integrity {integrity}");
        println!();
        let rows: Vec<Vec<String>> = migrations
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    if m.applied { "applied" } else { "pending" }.into(),
                ]
            })
            .collect();
        table(&["migration", "state"], &rows);
        println!();
        let rows: Vec<Vec<String>> = counts
            .iter()
            .map(|(t, n)| vec![t.clone(), n.to_string()])
            .collect();
        table(&["table", "rows"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the database for reading; if it does not exist yet, says how to
/// create it instead of creating an empty one.
fn open_existing(loaded: &Loaded) -> Result<Store> {
    let url = loaded.settings.database.url.trim();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path != ":memory:" && !Path::new(path).exists() {
        bail!("no database at {path}; run `trader-cli init` (or `trader-cli db migrate`) first");
    }
    let store = open_store(loaded)?;
    let pending = store
        .migration_status()?
        .iter()
        .filter(|m| !m.applied)
        .count();
    if pending > 0 {
        bail!("the database has {pending} pending migration(s); run `trader-cli db migrate`");
    }
    Ok(store)
}

fn status(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let s = &loaded.settings;
    let state = store.trading_state()?;
    let open = store.trades(&TradeFilter {
        open: Some(true),
        ..Default::default()
    })?;
    let closed = store.trades(&TradeFilter {
        open: Some(false),
        ..Default::default()
    })?;
    let working = store.open_orders()?;
    let positions = store.positions()?;
    let snapshot = store.latest_snapshot()?;
    let decisions = store.recent_decisions(5)?;
    let engine = crate::engine_view::load(&store)?;
    let pending = store
        .pending_control_requests()
        .context("reading the pending control requests")?;
    let realized: core_domain::Money = closed.iter().filter_map(|t| t.profit_loss).sum();
    let (state_name, state_cause, state_since) = match &state {
        Some(r) => (r.state, r.cause.clone(), Some(r.time.to_string())),
        None => (
            core_domain::TradingState::Active,
            "no state change recorded".into(),
            None,
        ),
    };
    if cli.json {
        let mut value = json!({
            "config": {"file": loaded.path.display().to_string(), "file_found": loaded.file_found},
            "broker": {"kind": s.broker.kind, "trading_mode": s.broker.trading_mode},
            "strategy": s.strategy.name,
            "database": settings::redact_url(&s.database.url),
            "trading_state": {"state": state_name, "cause": state_cause, "since": state_since},
            "trades": {"open": open.len(), "closed": closed.len(), "realized_pnl": realized.to_string()},
            "orders_working": working.len(),
            "positions": positions.len(),
            "account": snapshot,
            "recent_decisions": decisions,
        });
        if let (Some(all), serde_json::Value::Object(more)) = (
            value.as_object_mut(),
            crate::engine_view::status_json(&engine, &pending),
        ) {
            all.extend(more);
        }
        output::json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("trader status");
    println!(
        "  config      {} ({})",
        loaded.path.display(),
        if loaded.file_found {
            "found"
        } else {
            "not found: defaults"
        }
    );
    println!(
        "  strategy    {}: puts {:.0}-{:.0}% OTM, ${:.2}-${:.2} premium, {}-{} DTE, {} contracts",
        s.strategy.name,
        s.strategy.otm_range.min * 100.0,
        s.strategy.otm_range.max * 100.0,
        s.strategy.premium_range.min,
        s.strategy.premium_range.max,
        s.strategy.dte_range.min,
        s.strategy.dte_range.max,
        s.strategy.position_size
    );
    println!(
        "  broker      {} ({})",
        s.broker.kind, s.broker.trading_mode
    );
    println!("  database    {}", settings::redact_url(&s.database.url));
    match &state_since {
        Some(since) => println!("  trading     {state_name} since {since}: {state_cause}"),
        None => println!("  trading     {state_name} ({state_cause})"),
    }
    println!(
        "  trades      {} open, {} closed, realized P&L ${realized}",
        open.len(),
        closed.len()
    );
    println!("  orders      {} working", working.len());
    println!("  positions   {}", positions.len());
    match &snapshot {
        Some(a) => println!(
            "  account     net liquidation ${}, cash ${}, margin ${} ({})",
            a.net_liquidation, a.cash, a.initial_margin, a.time
        ),
        None => println!("  account     no snapshot yet"),
    }
    if decisions.is_empty() {
        println!("  decisions   none yet");
    } else {
        println!("  decisions   latest {}:", decisions.len());
        for d in &decisions {
            println!(
                "    {} {} {}: {} ({})",
                d.time.format("%Y-%m-%d %H:%M"),
                d.kind,
                d.subject,
                d.decision,
                d.reason
            );
        }
    }
    crate::engine_view::print_status(&engine, &pending);
    Ok(ExitCode::SUCCESS)
}

/// The halt (and a flatten request), through the operation the dashboard
/// and the SMS webhook use too (`cockpit::ops::emergency_stop`): queued for
/// the engine, which halts, cancels every working order and, with
/// `flatten`, closes every position at its next cycle; and recorded at
/// once in the trading-state history, the audit log and the decision
/// records. Works with or without a running daemon.
fn emergency_stop(cli: &Cli, reason: &str, flatten: bool) -> Result<ExitCode> {
    if reason.trim().is_empty() {
        bail!("--reason must say why trading is halted");
    }
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let who = actor();
    let outcome = cockpit::ops::emergency_stop(&store, &who, reason, flatten)?;
    if cli.json {
        output::json(&outcome)?;
    } else {
        let state = if flatten {
            "halted (flatten requested)"
        } else {
            "halted"
        };
        println!("trading {state}: {reason}");
        println!(
            "recorded in {} (trading state, audit log, decision record) and queued as control request #{}.",
            settings::redact_url(&loaded.settings.database.url),
            opt(outcome.request_id)
        );
        println!(
            "the engine cancels every working order{} at its next cycle (or when `traderd` starts, if it is not running).",
            if flatten {
                " and closes every position at marketable limits"
            } else {
                ""
            }
        );
        println!("resume with `trader-cli resume --reason \"...\"`");
    }
    Ok(ExitCode::SUCCESS)
}

/// Back to active trading: queued for the engine and recorded like the
/// halt (`cockpit::ops::resume`, shared with the dashboard).
fn resume(cli: &Cli, reason: &str) -> Result<ExitCode> {
    if reason.trim().is_empty() {
        bail!("--reason must say why it is safe to trade again");
    }
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let who = actor();
    let outcome = cockpit::ops::resume(&store, &who, reason)?;
    if cli.json {
        output::json(&outcome)?;
    } else {
        println!(
            "trading active again (was {}): {reason}",
            outcome.previous_state.unwrap_or_default()
        );
        println!(
            "recorded in {} and queued as control request #{}; the engine resumes at its next cycle (or when `traderd` starts).",
            settings::redact_url(&loaded.settings.database.url),
            opt(outcome.request_id)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Open positions: the engine monitor's last report (working memory key
/// `last_monitor`) when the engine has run, with broker positions it does
/// not cover (stock from an assignment) listed after it; else the broker
/// positions as last stored. `--json` gives `{"source": "engine_monitor" |
/// "broker", ...}`.
fn positions(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let positions = store.positions()?;
    let engine = crate::engine_view::load(&store)?;
    for p in &engine.problems {
        eprintln!("warning: {p}");
    }
    let broker_row = |p: &core_domain::Position| {
        vec![
            p.contract.key(),
            p.quantity.to_string(),
            p.avg_cost.to_string(),
            opt(p.market_price),
            opt(p.market_value()),
            p.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        ]
    };
    let broker_header = ["contract", "qty", "avg cost", "mark", "value", "updated"];
    let Some(report) = &engine.monitor else {
        if cli.json {
            output::json(&json!({"source": "broker", "positions": positions}))?;
        } else {
            if engine.memory.is_none() {
                println!(
                    "the engine has not run on this database (start it with `traderd`); positions as last stored from the broker:"
                );
            }
            let rows: Vec<Vec<String>> = positions.iter().map(broker_row).collect();
            table(&broker_header, &rows);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let monitored: std::collections::HashSet<&str> = report
        .positions
        .iter()
        .map(|p| p.contract.as_str())
        .collect();
    let others: Vec<&core_domain::Position> = positions
        .iter()
        .filter(|p| p.quantity != 0 && !monitored.contains(p.contract.key().as_str()))
        .collect();
    if cli.json {
        output::json(&json!({
            "source": "engine_monitor",
            "time": report.time,
            "unrealized_pnl": report.unrealized_pnl,
            "greeks": report.greeks,
            "positions": report.positions,
            "other_broker_positions": others,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::engine_view::print_monitor_positions(report);
    if !others.is_empty() {
        println!();
        println!("also held at the broker (not a monitored short put):");
        let rows: Vec<Vec<String>> = others.iter().map(|p| broker_row(p)).collect();
        table(&broker_header, &rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn trades(
    cli: &Cli,
    open: bool,
    closed: bool,
    symbol: Option<&str>,
    limit: i64,
) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let filter = TradeFilter {
        open: if open {
            Some(true)
        } else if closed {
            Some(false)
        } else {
            None
        },
        symbol: symbol.map(Symbol::new).transpose()?,
        experiment_id: None,
        limit: Some(limit),
    };
    let trades = store.trades(&filter)?;
    output::list(
        cli.json,
        &trades,
        &[
            "trade", "symbol", "strike", "expiry", "qty", "entry", "premium", "exit", "paid",
            "reason", "P&L", "ROI",
        ],
        |t| {
            vec![
                t.trade_id.clone(),
                t.symbol.to_string(),
                t.strike.to_string(),
                t.expiration.to_string(),
                t.contracts.to_string(),
                t.entry_date.to_string(),
                t.entry_premium.to_string(),
                opt(t.exit_date),
                opt(t.exit_premium),
                opt(t.exit_reason),
                opt(t.profit_loss),
                pct(t.roi),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Learning metrics from the database: is the system getting better?
fn analyze(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let trades = store.trades(&TradeFilter::default())?;
    let experiments = store.experiments()?;
    let history = store.learning_history(i64::MAX)?;
    let m = learning::metrics::learning_metrics(&trades, &experiments, &history);
    if cli.json {
        output::json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    let row = |o: &learning::metrics::Outcomes| {
        vec![
            o.label.clone(),
            o.trades.to_string(),
            pct(o.win_rate),
            pct(o.mean_roi),
        ]
    };
    let mut rows = vec![row(&m.baseline)];
    if let Some(a) = &m.since_first_adoption {
        rows.push(row(a));
    }
    println!("learning — the configured rules (baseline) against what learning changed");
    output::table(&["group", "trades", "win rate", "mean ROI"], &rows);
    println!();
    println!("by year of exit");
    let years: Vec<Vec<String>> = m.by_year.iter().map(row).collect();
    output::table(&["year", "trades", "win rate", "mean ROI"], &years);
    let e = &m.experiments;
    println!();
    println!(
        "experiments: {} run — {} active, {} complete (waiting on the 30-day limit), {} adopted, {} rejected, {} rolled back",
        e.run, e.active, e.complete, e.adopted, e.rejected, e.rolled_back
    );
    if m.parameter_history.is_empty() {
        println!("parameter history: no change adopted (the configured parameters are in force)");
    } else {
        println!("parameter history:");
        for p in &m.parameter_history {
            println!(
                "  {} {} {}: {} -> {}",
                p.date.format("%Y-%m-%d"),
                p.event,
                p.parameter.as_deref().unwrap_or("?"),
                p.from.as_deref().unwrap_or("?"),
                p.to.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Shadow trades: the summary by origin over every shadow, then the
/// newest ones. Hypothetical outcomes, one contract each, no commissions:
/// never P&L.
fn shadow(cli: &Cli, limit: i64) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let all = store.shadows(i64::MAX)?;
    let summary = learning::shadow::summarize(&all);
    let newest: Vec<_> = all
        .iter()
        .take(usize::try_from(limit.max(0)).unwrap_or(0))
        .cloned()
        .collect();
    if cli.json {
        output::json(&json!({ "summary": summary, "shadows": newest }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("(no shadow trades yet: the engine records one for every put it evaluates)");
        return Ok(ExitCode::SUCCESS);
    }
    println!("shadow trades — hypothetical, one contract each, no commissions; never P&L");
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            vec![
                s.origin.to_string(),
                s.count.to_string(),
                s.closed.to_string(),
                pct(s.win_rate),
                pct(s.mean_roi),
                s.total_hypothetical.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "origin",
            "shadows",
            "closed",
            "win rate",
            "mean ROI",
            "hypothetical",
        ],
        &rows,
    );
    println!();
    output::list(
        false,
        &newest,
        &[
            "shadow", "origin", "bid", "OTM", "DTE", "exit", "reason", "P&L", "ROI", "why",
        ],
        |s| {
            vec![
                s.shadow_id.clone(),
                s.origin.to_string(),
                s.entry_premium.to_string(),
                format!("{:.1}%", s.otm_pct * 100.0),
                s.dte.to_string(),
                opt(s.exit_premium),
                opt(s.exit_reason),
                opt(s.profit_loss),
                pct(s.roi),
                s.reason.clone(),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn decisions(cli: &Cli, limit: i64) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let records = store.recent_decisions(limit)?;
    if cli.json {
        output::json(&records)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("(no decisions yet)");
    }
    for d in &records {
        println!(
            "{} {} {} -> {}: {}",
            d.time.format("%Y-%m-%d %H:%M:%S"),
            d.kind,
            d.subject,
            d.decision,
            d.reason
        );
        for c in &d.criteria {
            println!(
                "    [{}] {} = {} (threshold {})",
                if c.passed { "pass" } else { "FAIL" },
                c.name,
                c.value,
                c.threshold
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(cli: &Cli, limit: i64) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let entries = store.recent_audit(limit)?;
    output::list(
        cli.json,
        &entries,
        &["time", "actor", "action", "decision", "outcome"],
        |e| {
            vec![
                e.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.actor.clone(),
                e.action.clone(),
                opt(e.decision.as_deref()),
                opt(e.outcome.as_deref()),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn notifications(cli: &Cli, limit: i64) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let attempts = cockpit::views::notifications(&store, limit)?;
    output::list(
        cli.json,
        &attempts,
        &[
            "time", "channel", "event", "severity", "attempt", "ok", "final", "detail",
        ],
        |a| {
            vec![
                a.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                a.channel.clone(),
                a.event.clone(),
                a.severity.clone(),
                a.attempt.to_string(),
                a.ok.to_string(),
                a.is_final.to_string(),
                a.detail.clone(),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn experiments(cli: &Cli) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let list = store.experiments()?;
    output::list(
        cli.json,
        &list,
        &[
            "experiment",
            "parameter",
            "control",
            "test",
            "status",
            "trades c/t",
            "p",
            "decision",
        ],
        |e| {
            vec![
                e.experiment_id.clone(),
                e.parameter_name.clone(),
                e.control_value.clone(),
                e.test_value.clone(),
                e.status.to_string(),
                format!("{}/{}", e.control_trades, e.test_trades),
                opt(e.p_value.map(|p| format!("{p:.4}"))),
                opt(e.decision.as_deref()),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn patterns(cli: &Cli, all: bool) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let list = store.patterns(if all {
        None
    } else {
        Some(PatternStatus::Active)
    })?;
    if cli.json {
        let v: Vec<_> = list
            .iter()
            .map(|(id, p)| json!({"id": id, "pattern": p}))
            .collect();
        output::json(&v)?;
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|(id, p)| {
                vec![
                    id.to_string(),
                    p.pattern_type.clone(),
                    p.pattern_name.clone(),
                    p.sample_size.to_string(),
                    pct(Some(p.win_rate)),
                    pct(Some(p.avg_roi)),
                    format!("{:.4}", p.p_value),
                    p.status.to_string(),
                ]
            })
            .collect();
        table(
            &[
                "id", "type", "pattern", "n", "win rate", "avg ROI", "p", "status",
            ],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn learning_history(cli: &Cli, limit: i64) -> Result<ExitCode> {
    let loaded = load_settings(cli)?;
    let store = open_existing(&loaded)?;
    let events = store.learning_history(limit)?;
    output::list(
        cli.json,
        &events,
        &["time", "event", "parameter", "old", "new", "reasoning"],
        |e| {
            vec![
                e.event_date.format("%Y-%m-%d %H:%M").to_string(),
                e.event_type.to_string(),
                opt(e.parameter_changed.as_deref()),
                opt(e.old_value.as_deref()),
                opt(e.new_value.as_deref()),
                e.reasoning.clone(),
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
