//! `trader-cli`: set up, inspect, backtest and steer the trader (the
//! engine itself runs as the daemon `traderd`).
//!
//! Exit codes: 0 success; 1 the command failed (the message says why);
//! 2 usage error; 3 the subcommand is not implemented yet.
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod analyst_cmd;
mod backtest_cmd;
mod bench;
mod calibrate_cmd;
mod chain_cmd;
mod commands;
mod engine_view;
mod learning_proof_cmd;
mod optimize_cmd;
mod output;
mod quant;
mod report_cmd;
mod scan_cmd;
mod sim_gateway_cmd;
mod validate_cmd;

/// Exit code of a subcommand that exists in the plan but not yet in code
/// (or, for `run`, not in this binary).
pub const EXIT_NOT_IMPLEMENTED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "trader-cli",
    version,
    about = "Command line of the self-learning naked-put trader for Interactive Brokers",
    long_about = "Command line of the self-learning naked-put trader for Interactive Brokers.\n\n\
                  Exit codes: 0 success, 1 failure, 2 usage error, 3 not implemented yet."
)]
pub struct Cli {
    /// Configuration file (TOML) [default: trader.toml, and the defaults
    /// apply while it does not exist]. A file named here or in TRADER_CONFIG
    /// must exist (`init` writes it).
    #[arg(long, global = true, env = "TRADER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print data as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the commented configuration template and create the database.
    Init {
        /// Overwrite an existing configuration file.
        #[arg(long)]
        force: bool,
    },
    /// Check or show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Database migrations and health.
    #[command(subcommand)]
    Db(DbCommand),
    /// What the trader is doing: trading state, trades, orders, the engine's
    /// last cycle, regime, recent actions and events, goals, open positions
    /// with P&L and alerts, pending operator requests.
    Status,
    /// Open positions as the engine's monitor last saw them (DTE, mark,
    /// unrealized P&L, alerts); before the engine ran, as last reconciled
    /// with the broker.
    Positions,
    /// Trades, newest first.
    Trades {
        /// Only open trades.
        #[arg(long, conflicts_with = "closed")]
        open: bool,
        /// Only closed trades.
        #[arg(long)]
        closed: bool,
        /// Only this underlying.
        #[arg(long)]
        symbol: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Decision records (what was decided, why, the numbers compared), newest first.
    Decisions {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// The durable audit log, newest first.
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Notification delivery attempts (webhook, e-mail, SMS), newest
    /// first: what the dashboard's Notifications page shows.
    Notifications {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Experiments of the learning engine.
    Experiments,
    /// Patterns found in closed trades.
    Patterns {
        /// Include retired patterns.
        #[arg(long)]
        all: bool,
    },
    /// The learning engine's history of events and parameter changes.
    LearningHistory {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Screen the market and list ranked opportunities (the simulated market at --date by default).
    Scan(scan_cmd::ScanArgs),
    /// Replay the strategy's selection over history; compare with a hand-picked trade list.
    Validate(validate_cmd::ValidateArgs),
    /// Run the engine over real history on the simulated exchange; summary and report.
    Backtest(backtest_cmd::BacktestArgs),
    /// The engine runs as the daemon `traderd`: prints the command that starts it (exit 3).
    Run(commands::Pending),
    /// Learning metrics: win rate and ROI over time against the baseline, experiments, parameter history.
    /// With --ai: the Claude analyst's report (insights, grounded recommendations), stored in the database.
    Analyze(analyst_cmd::AnalyzeArgs),
    /// The analyst's stored reports (weekly runs of traderd and `analyze --ai`), newest first.
    Reports {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Show this report in full.
        #[arg(long)]
        id: Option<i64>,
    },
    /// Shadow trades: every evaluated opportunity followed to its outcome (evidence, never P&L).
    Shadow {
        /// At most this many, newest first.
        #[arg(long, default_value_t = 30)]
        limit: i64,
    },
    /// Search the strategy parameters with backtests (walk-forward); a proposal for an experiment, never a direct change.
    Optimize(optimize_cmd::OptimizeArgs),
    /// Halt trading: recorded in the database and queued for the engine,
    /// which cancels every working order (and with --flatten closes every
    /// position) at its next cycle.
    EmergencyStop {
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
        /// Also close every position (the engine does it at marketable limits).
        #[arg(long)]
        flatten: bool,
    },
    /// Resume trading after an emergency stop (recorded, and queued for the engine).
    Resume {
        /// Why it is safe to trade again (kept in the audit log).
        #[arg(long, default_value = "resumed by the operator")]
        reason: String,
    },
    /// Write the performance report (Markdown, HTML, charts) of the configured database.
    Report(report_cmd::ReportArgs),
    /// Price an option and its greeks (Black-Scholes-Merton; --american adds the American price).
    Price(quant::PriceArgs),
    /// Solve the implied volatility of an option price.
    Iv(quant::IvArgs),
    /// Reg-T / Cboe short put margin requirement.
    Margin(quant::MarginArgs),
    /// Throughput of the options math and the simulated market (run with --release).
    Bench(bench::BenchArgs),
    /// Is learning honest? The engine with its learner on the seeded synthetic market: a null market (how often a change is adopted) and a planted OTM-bucket edge (how often and how soon it is adopted). Run with --release.
    LearningProof(learning_proof_cmd::LearningProofArgs),
    /// Run the simulated TWS / IB Gateway on loopback, fronting the simulated exchange: dry-run the whole IBKR path offline (see docs/SIM_GATEWAY.md).
    SimGateway(sim_gateway_cmd::SimGatewayArgs),
    /// The modelled option chain of one underlying on a session of the
    /// simulated market (strikes, bid/ask, IV, greeks, open interest).
    Chain(chain_cmd::ChainArgs),
    /// The modelled surface against the real option data (ATM level and
    /// index skew), computed from the shipped data.
    Calibrate(calibrate_cmd::CalibrateArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration; lists every problem with its key path.
    Check,
    /// Print the effective configuration (file + environment), secrets redacted.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations.
    Migrate,
    /// Migrations applied and pending, row counts, integrity.
    Status,
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "trader-cli",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    match commands::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `trader-cli ... | head` closes the pipe early; printing then fails. That
/// is the reader's choice, not an error: exit quietly instead of panicking.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
