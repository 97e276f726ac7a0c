//! `traderd`: the trading daemon.
//!
//! It wires the implementations together (configuration, logging, the store,
//! and in later issues the broker, strategy, risk governor and engine loop)
//! and runs the loop perceive → reason → act → learn.
//!
//! Today it validates the configuration, prepares the database and records
//! its start in the audit log; the engine loop arrives with the engine-loop
//! issue (#6), and until then it exits with code 3 ("not implemented yet")
//! rather than pretend to trade.
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Parser;
use core_domain::{AuditEntry, AuditRepository};
use serde_json::json;

/// Exit code when the requested work is not implemented yet.
const EXIT_NOT_IMPLEMENTED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "traderd",
    version,
    about = "The self-learning naked-put trading daemon"
)]
struct Args {
    /// Configuration file (TOML) [default: trader.toml, and the defaults
    /// apply while it does not exist]. A file named here or in TRADER_CONFIG
    /// must exist.
    #[arg(long, env = "TRADER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("traderd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    let opts = settings::LoadOptions::for_config_arg(args.config.as_deref());
    let loaded = settings::load(&opts)
        .context("loading the configuration (check it with `trader-cli config check`)")?;
    let _log = settings::logging::init(&loaded.settings.logging, "traderd", None);
    tracing::info!(
        config = %loaded.path.display(),
        broker = %loaded.settings.broker.kind,
        mode = %loaded.settings.broker.trading_mode,
        "traderd starting"
    );
    let store = store::Store::open(&loaded.settings.database.url)
        .with_context(|| format!("opening the database {}", loaded.settings.database.url))?;
    let applied = store.migrate().context("applying database migrations")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "database migrations applied");
    }
    let message = "the engine loop arrives with the engine-loop issue (#6); nothing was traded";
    store.append_audit(
        &AuditEntry::new(Utc::now(), "traderd", "daemon.start")
            .context(json!({
                "config": loaded.path.display().to_string(),
                "broker": loaded.settings.broker.kind,
                "trading_mode": loaded.settings.broker.trading_mode,
            }))
            .outcome("not_implemented"),
    )?;
    tracing::error!("{message}");
    eprintln!("traderd: {message}");
    Ok(ExitCode::from(EXIT_NOT_IMPLEMENTED))
}
