//! `trader-cli optimize`: the parameter optimizer with the engine's
//! backtest as its objective. Walk-forward over the window; a proposal only
//! when the guard passes (out-of-sample margin and deflated Sharpe). A
//! proposal is recorded in the learning history as *received*: it becomes
//! a parameter change only through an experiment, never directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use chrono::{Duration, NaiveDate, Utc};
use clap::Args;
use core_domain::{LearningEvent, LearningEventType, LearningRepository, Money};
use learning::optimizer::{
    Evaluation, FoldRun, Optimizer, ParameterSet, ParameterSpace, ProposalGuard, SearchConfig,
    Window, names,
};
use orchestrator::backtest::results;
use orchestrator::metrics::MetricsParams;
use serde_json::json;
use settings::Settings;
use store::Store;

/// Arguments of `trader-cli optimize`.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// First day of the history searched.
    #[arg(long, default_value = "2014-01-02")]
    pub from: NaiveDate,
    /// Last day of the history searched (inclusive).
    #[arg(long, default_value = "2018-12-31")]
    pub to: NaiveDate,
    /// Walk-forward folds (each trains on what precedes its test window).
    #[arg(long, default_value_t = 2)]
    pub folds: usize,
    /// Objective requests per search (each fold searches once).
    #[arg(long, default_value_t = 60)]
    pub budget: usize,
    /// Nelder-Mead starts per search.
    #[arg(long, default_value_t = 2)]
    pub starts: usize,
    /// Seed of the starting points.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Worker threads (0 = every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Scratch directory for the backtests' databases [default: a
    /// temporary directory, removed at the end].
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Run only the walk-forward folds I−1, I−1+N, … of N shards (1-based,
    /// e.g. `2/3`) and print their runs as JSON, for `--merge`. Folds are
    /// independent (each search is seeded by its fold), so shards can run
    /// on other machines.
    #[arg(long, value_name = "I/N", value_parser = crate::learning_proof_cmd::parse_shard)]
    pub shard: Option<crate::learning_proof_cmd::Shard>,
    /// Conclude a walk-forward from shard outputs (`--shard I/N`) instead
    /// of searching: the same settings in each, every fold once; the
    /// proposal, if any, is recorded as usual.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub merge: Vec<PathBuf>,
}

/// What defines a walk-forward search (not how it is spread): shard
/// outputs merge only when these are equal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizeParams {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub folds: usize,
    pub budget: usize,
    pub starts: usize,
    pub seed: u64,
    /// The parameters in force when the shard ran.
    pub current: ParameterSet,
}

/// The strategy settings with an optimizer parameter set applied.
pub fn apply(settings: &Settings, set: &ParameterSet) -> Settings {
    let mut s = settings.clone();
    let st = &mut s.strategy;
    let get = |n: &str| set.get(n).copied();
    if let (Some(min), Some(w)) = (get(names::OTM_MIN), get(names::OTM_WIDTH)) {
        st.otm_range.min = min;
        st.otm_range.max = min + w;
    }
    if let (Some(min), Some(w)) = (get(names::PREMIUM_MIN), get(names::PREMIUM_WIDTH)) {
        st.premium_range.min = min;
        st.premium_range.max = min + w;
    }
    if let (Some(min), Some(w)) = (get(names::DTE_MIN), get(names::DTE_WIDTH)) {
        st.dte_range.min = min.round() as i64;
        st.dte_range.max = (min + w).round() as i64;
    }
    if let Some(v) = get(names::PROFIT_TARGET) {
        st.exits.profit_target = v;
    }
    if let Some(v) = get(names::STOP_LOSS) {
        st.exits.stop_loss = v;
    }
    s
}

/// The settings' strategy as an optimizer parameter set.
pub fn current(settings: &Settings) -> ParameterSet {
    let st = &settings.strategy;
    [
        (names::OTM_MIN, st.otm_range.min),
        (names::OTM_WIDTH, st.otm_range.max - st.otm_range.min),
        (names::PREMIUM_MIN, st.premium_range.min),
        (
            names::PREMIUM_WIDTH,
            st.premium_range.max - st.premium_range.min,
        ),
        (names::DTE_MIN, st.dte_range.min as f64),
        (
            names::DTE_WIDTH,
            (st.dte_range.max - st.dte_range.min) as f64,
        ),
        (names::PROFIT_TARGET, st.exits.profit_target),
        (names::STOP_LOSS, st.exits.stop_loss),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One backtest of `set` over `window` ([from, to)) into a scratch
/// database, read back as an optimizer evaluation (the optimizer's
/// objective; `trader-cli bench` times it).
pub fn evaluate(
    settings: &Settings,
    set: &ParameterSet,
    window: Window,
    scratch: &std::path::Path,
    counter: &AtomicUsize,
) -> Result<Evaluation, String> {
    let s = apply(settings, set);
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let db = scratch.join(format!("eval-{n}.db"));
    let url = db.display().to_string();
    let run = || -> anyhow::Result<Evaluation> {
        let store = Arc::new(Store::open_and_migrate(&url)?);
        store.relax_durability_for_research()?;
        let to = window.to - Duration::days(1);
        let mut sim = traderd::wiring::sim_run(&s, Arc::clone(&store), window.from, to, None)?;
        let start = sim.exchange.now();
        let until = sim.until;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stop = AtomicBool::new(false);
        rt.block_on(orchestrator::run(
            &mut sim.engine,
            &sim.clock,
            until,
            orchestrator::Pace::AsFastAsPossible,
            &stop,
            |_| {},
        ))?;
        let starting = Money::from_f64_dollars(s.broker.sim.exchange.starting_cash)?;
        let res = results(&store, start, until, starting, &MetricsParams::default())?;
        let mut prev = starting.cents() as f64;
        let mut daily = Vec::with_capacity(res.equity.len());
        for p in &res.equity {
            let v = p.net_liquidation.cents() as f64;
            if prev > 0.0 {
                daily.push(v / prev - 1.0);
            }
            prev = v;
        }
        let sum = &res.summary;
        Ok(Evaluation::from_daily_returns(
            daily,
            sum.closed_trades,
            sum.avg_roi.unwrap_or(0.0),
            sum.win_rate.unwrap_or(0.0),
        ))
    };
    let out = run().map_err(|e| format!("backtest of {window:?}: {e:#}"));
    // A scratch database: a failure to remove it is not the run's.
    let _ = store::remove_database_files(&db);
    out
}

/// Reads shard outputs of `optimize --shard I/N`: the same settings in
/// each, their fold runs together (`Optimizer::conclude` checks that every
/// fold is there once).
fn read_shards(files: &[PathBuf]) -> Result<(OptimizeParams, Vec<FoldRun>)> {
    let mut params: Option<OptimizeParams> = None;
    let mut runs = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a shard output (write it with `trader-cli optimize --shard I/N > FILE`)",
                f.display()
            )
        })?;
        let p: OptimizeParams = serde_json::from_value(v["params"].clone())
            .with_context(|| format!("{}: no search settings (`params`)", f.display()))?;
        match &params {
            None => params = Some(p),
            Some(q) if *q == p => {}
            Some(q) => bail!(
                "{} is another search than the first shard ({:?} against {:?}); merge only shards of one command with the same settings",
                f.display(),
                p,
                q
            ),
        }
        let fold_runs: Vec<FoldRun> = serde_json::from_value(v["fold_runs"].clone())
            .with_context(|| format!("{}: reading its fold runs", f.display()))?;
        runs.extend(fold_runs);
    }
    let params = params.context("--merge needs at least one shard output")?;
    Ok((params, runs))
}

/// Runs the optimizer; exit code 0 (with or without a proposal).
pub fn run(
    args: &OptimizeArgs,
    json_out: bool,
    settings: &Settings,
    store: &Store,
) -> Result<ExitCode> {
    if args.from >= args.to {
        bail!("--from {} must be before --to {}", args.from, args.to);
    }
    let scratch_owned = match &args.scratch {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            let d = std::env::temp_dir().join(format!("trader-optimize-{}", std::process::id()));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            d
        }
    };
    let counter = AtomicUsize::new(0);
    let scratch = scratch_owned.clone();
    let objective =
        |set: &ParameterSet, window: Window| evaluate(settings, set, window, &scratch, &counter);
    let mut params = OptimizeParams {
        from: args.from,
        to: args.to,
        folds: args.folds,
        budget: args.budget,
        starts: args.starts,
        seed: args.seed,
        current: current(settings),
    };
    let shard_runs = if args.merge.is_empty() {
        None
    } else {
        let (p, runs) = read_shards(&args.merge)?;
        params = p;
        Some(runs)
    };
    let config = SearchConfig {
        budget: params.budget,
        starts: params.starts,
        seed: params.seed,
        threads: args.threads,
        ..SearchConfig::default()
    };
    let optimizer = Optimizer::new(ParameterSpace::naked_put(), objective, config)
        .context("setting up the optimizer")?;
    let history = Window::new(params.from, params.to + Duration::days(1))
        .context("the --from/--to window")?;
    let current = params.current.clone();
    let guard = ProposalGuard::default();
    let started = std::time::Instant::now();
    let outcome = match (&shard_runs, args.shard) {
        (Some(runs), _) => optimizer
            .conclude(history, params.folds, runs.clone(), &current, &guard)
            .context("concluding the walk-forward from the shards"),
        (None, Some(shard)) => {
            let mut runs = Vec::new();
            for fold in learning::optimizer::walk_forward_folds(history, params.folds)
                .context("the walk-forward folds")?
                .into_iter()
                .filter(|f| f.index % shard.count == shard.index - 1)
            {
                runs.push(
                    optimizer
                        .walk_forward_fold(fold, &current)
                        .with_context(|| format!("fold {}", fold.index))?,
                );
            }
            if args.scratch.is_none() {
                let _ = std::fs::remove_dir_all(&scratch_owned);
            }
            crate::output::json(&json!({
                "params": params,
                "shard": shard.to_string(),
                "elapsed_seconds": started.elapsed().as_secs_f64(),
                "backtests": optimizer.backtests(),
                "fold_runs": runs,
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        (None, None) => optimizer
            .walk_forward(history, params.folds, &current, &guard)
            .context("the walk-forward search"),
    };
    let elapsed = started.elapsed().as_secs_f64();
    if args.scratch.is_none() {
        let _ = std::fs::remove_dir_all(&scratch_owned);
    }
    let report = outcome?;
    let now = Utc::now();
    if let Some(p) = &report.proposal {
        let changed: Vec<String> = p
            .parameters
            .iter()
            .map(|n| {
                format!(
                    "{n} {} -> {}",
                    p.current.get(n).copied().unwrap_or(f64::NAN),
                    p.proposed.get(n).copied().unwrap_or(f64::NAN)
                )
            })
            .collect();
        store.append_learning_event(&LearningEvent {
            event_type: LearningEventType::ProposalReceived,
            event_date: now,
            pattern_name: None,
            confidence: Some(p.deflated_sharpe.probability),
            sample_size: Some(p.out_of_sample.trades as i64),
            parameter_changed: Some(p.parameters.join(",")),
            old_value: Some(json!(p.current).to_string()),
            new_value: Some(json!(p.proposed).to_string()),
            reasoning: format!(
                "optimizer proposal ({}): {}; to be tested by an experiment, not applied",
                changed.join(", "),
                p.reasoning
            ),
        })?;
    }
    if json_out {
        crate::output::json(&json!({
            "elapsed_seconds": elapsed,
            "backtests": optimizer.backtests(),
            "cached": optimizer.cached(),
            "report": report,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "optimizer: {} folds over {} to {}, {} backtests ({} answered from the cache) in {elapsed:.1} s{}",
        report.folds.len(),
        params.from,
        params.to,
        optimizer.backtests(),
        optimizer.cached(),
        if args.merge.is_empty() {
            String::new()
        } else {
            format!(" (concluded from {} shard outputs)", args.merge.len())
        }
    );
    println!(
        "  out of sample   score {:.3} (current parameters {:.3})",
        report.out_of_sample_score, report.current_out_of_sample_score
    );
    if let Some(d) = &report.deflated_sharpe {
        println!("  deflated Sharpe probability {:.3}", d.probability);
    }
    println!(
        "  Pareto front    {} points (mean ROI, drawdown, win rate)",
        report.pareto_front.len()
    );
    match &report.proposal {
        Some(p) => {
            println!(
                "  PROPOSAL (recorded in the learning history; an experiment must confirm it):"
            );
            for n in &p.parameters {
                println!(
                    "    {n}: {} -> {}",
                    p.current.get(n).copied().unwrap_or(f64::NAN),
                    p.proposed.get(n).copied().unwrap_or(f64::NAN)
                );
            }
            println!("  {}", p.reasoning);
        }
        None => {
            println!("  no proposal:");
            for r in &report.rejections {
                println!("    - {r}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
