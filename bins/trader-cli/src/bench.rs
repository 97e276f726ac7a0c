//! `trader-cli bench`: throughput figures of the options math and the
//! simulated market, measured on this machine, single-threaded. Run it in
//! release: `cargo run --release --bin trader-cli -- bench`.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use core_domain::{MarketData, OptionContract, Right};
use market_sim::calendar::NyseCalendar;
use market_sim::{ChainModel, ChainModelParams, ExchangeParams, QuoteContext, SimExchange};
use pricing::{OptionInputs, european_valuation, implied_vol};
use serde_json::json;

/// Options of the bench subcommand.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Fewer iterations (a smoke run; figures are noisier).
    #[arg(long)]
    pub quick: bool,
    /// The year simulated by the exchange benchmark.
    #[arg(long, default_value_t = 2016)]
    pub year: i32,
    /// First day of the engine backtest benchmark (the whole loop over the
    /// 20-stock universe into a scratch database).
    #[arg(long, default_value = "2010-01-04")]
    pub backtest_from: NaiveDate,
    /// Last day of the engine backtest benchmark (with --quick: one year
    /// from --backtest-from).
    #[arg(long, default_value = "2022-12-28")]
    pub backtest_to: NaiveDate,
}

/// The engine over history into a scratch database: (cycles, sessions,
/// trades, wall seconds).
fn backtest_throughput(
    from: NaiveDate,
    to: NaiveDate,
    commit: &str,
) -> Result<(u64, usize, usize, f64)> {
    use core_domain::TradeRepository;
    let dir = tempfile_dir()?.join(commit);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the scratch directory {}", dir.display()))?;
    let url = dir.join("bench.db").display().to_string();
    let store = Arc::new(store::Store::open_and_migrate(&url)?);
    store.relax_durability_for_research()?;
    let mut settings = settings::Settings::default();
    settings.database.commit = commit.to_string();
    let mut sim = traderd::wiring::sim_run(&settings, Arc::clone(&store), from, to, None)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut cycles = 0u64;
    let start = Instant::now();
    let until = sim.until;
    runtime.block_on(orchestrator::run(
        &mut sim.engine,
        &sim.clock,
        until,
        orchestrator::Pace::AsFastAsPossible,
        &stop,
        |_| cycles += 1,
    ))?;
    let secs = start.elapsed().as_secs_f64();
    let sessions = NyseCalendar::new().sessions(sim.first_session, to).len();
    let trades = store.trades(&core_domain::TradeFilter::default())?.len();
    drop(sim);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((cycles, sessions, trades, secs))
}

mod research {
    //! The research figures: optimizer evaluations, learning-proof years,
    //! and traderd's memory.
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result};
    use chrono::NaiveDate;

    use super::BenchArgs;

    pub struct Research {
        pub optimizer_threads: usize,
        pub optimizer_evaluations_per_minute: f64,
        pub proof_threads: usize,
        pub proof_years_per_minute: f64,
        pub replay_peak_rss_mb: Option<f64>,
        pub idle_rss_mb: Option<f64>,
        pub idle_cpu_percent: Option<f64>,
    }

    fn threads() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    pub fn measure(args: &BenchArgs, to: NaiveDate) -> Result<Research> {
        let scratch = super::tempfile_dir()?.join("research");
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        // The optimizer's own objective, one evaluation per thread at once.
        let n = threads();
        let settings = settings::Settings::default();
        let current = crate::optimize_cmd::current(&settings);
        let window =
            learning::optimizer::Window::new(args.backtest_from, to + chrono::Duration::days(1))
                .context("the optimizer window")?;
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let started = Instant::now();
        let done: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    scope.spawn(|| {
                        crate::optimize_cmd::evaluate(
                            &settings, &current, window, &scratch, &counter,
                        )
                        .is_ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .collect()
        });
        let evals = done.iter().filter(|d| **d).count();
        let optimizer_evaluations_per_minute =
            evals as f64 * 60.0 / started.elapsed().as_secs_f64();

        // learning-proof: one simulated year per seed, a seed per thread.
        let started = Instant::now();
        let years: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let scratch = &scratch;
                    scope.spawn(move || {
                        crate::learning_proof_cmd::run_null_year(100 + i as u64, scratch)
                            .map_or(0, |_| 1)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        let proof_years_per_minute = years as f64 * 60.0 / started.elapsed().as_secs_f64();

        let (replay_peak_rss_mb, idle_rss_mb, idle_cpu_percent) =
            match traderd_memory(&scratch, args.quick) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("bench: traderd's memory not measured: {e:#}");
                    (None, None, None)
                }
            };
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(Research {
            optimizer_threads: n,
            optimizer_evaluations_per_minute,
            proof_threads: n,
            proof_years_per_minute,
            replay_peak_rss_mb,
            idle_rss_mb,
            idle_cpu_percent,
        })
    }

    /// `traderd` next to this executable.
    fn traderd() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let path = exe.parent()?.join("traderd");
        path.exists().then_some(path)
    }

    /// A field of `/proc/PID/status` in kB (`VmHWM`, `VmRSS`).
    fn status_kb(pid: u32, field: &str) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// User + system CPU ticks of PID (`/proc/PID/stat`, fields 14 and 15).
    fn cpu_ticks(pid: u32) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = text.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    /// Peak RSS of a replay (one year, or a quarter with --quick), then
    /// RSS and CPU of a traderd waiting between cycles (a replay paced at
    /// one simulated minute a second: 15 s between market cycles).
    fn traderd_memory(
        scratch: &Path,
        quick: bool,
    ) -> Result<(Option<f64>, Option<f64>, Option<f64>)> {
        let Some(bin) = traderd() else {
            return Ok((None, None, None));
        };
        let dir = scratch.join("traderd");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("trader.toml"),
            "[database]\nurl = \"sqlite://data/trader.db\"\n[dashboard]\nbind = \"127.0.0.1:0\"\n",
        )?;
        let to = if quick { "2016-03-31" } else { "2016-12-30" };
        let mut child = Command::new(&bin)
            .args([
                "--config",
                "trader.toml",
                "--from",
                "2016-01-04",
                "--to",
                to,
                "--quiet",
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let mut peak: Option<f64> = None;
        while child.try_wait()?.is_none() {
            if let Some(kb) = status_kb(pid, "VmHWM") {
                peak = Some(peak.map_or(kb, |p: f64| p.max(kb)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let idle_dir = scratch.join("traderd-idle");
        std::fs::create_dir_all(&idle_dir)?;
        std::fs::copy(dir.join("trader.toml"), idle_dir.join("trader.toml"))?;
        let mut child = Command::new(&bin)
            .args([
                "--config",
                "trader.toml",
                "--from",
                "2016-01-04",
                "--to",
                "2016-01-08",
                "--speed",
                "1",
                "--quiet",
            ])
            .current_dir(&idle_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        // Past start-up and the first cycle, then 10 s of waiting.
        std::thread::sleep(Duration::from_secs(3));
        let ticks0 = cpu_ticks(pid);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(10));
        let ticks1 = cpu_ticks(pid);
        let rss = status_kb(pid, "VmRSS");
        let secs = t0.elapsed().as_secs_f64();
        let _ = child.kill();
        let _ = child.wait();
        // Clock ticks are 1/100 s on Linux.
        let cpu = match (ticks0, ticks1) {
            (Some(a), Some(b)) => Some((b.saturating_sub(a)) as f64 / 100.0 / secs * 100.0),
            _ => None,
        };
        Ok((peak.map(|kb| kb / 1024.0), rss.map(|kb| kb / 1024.0), cpu))
    }
}

/// A scratch directory under the system's temporary directory.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("trader-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the scratch directory {}", dir.display()))?;
    Ok(dir)
}

/// A deterministic spread of realistic inputs.
fn inputs(n: usize) -> Vec<(OptionInputs, f64)> {
    (0..n)
        .map(|i| {
            let f = |k: usize, m: usize| ((i * k) % m) as f64 / m as f64;
            let spot = 20.0 + 480.0 * f(7919, 1000);
            let moneyness = 0.6 + 0.8 * f(104_729, 997);
            let vol = 0.08 + 1.2 * f(1_299_709, 991);
            let days = 1.0 + 364.0 * f(15_485_863, 983);
            (
                OptionInputs {
                    right: if i % 2 == 0 { Right::Put } else { Right::Call },
                    spot,
                    strike: spot * moneyness,
                    t_years: days / 365.0,
                    rate: 0.03 * f(32_452_843, 977),
                    dividend_yield: 0.02 * f(49_979_687, 971),
                },
                vol,
            )
        })
        .collect()
}

pub fn run(args: &BenchArgs, as_json: bool) -> Result<ExitCode> {
    let scale = if args.quick { 10 } else { 1 };

    // 1. price + greeks
    let cases = inputs(1_000_000 / scale);
    let start = Instant::now();
    let mut sink = 0.0;
    for (i, vol) in &cases {
        sink += european_valuation(i, *vol).map_or(0.0, |v| v.price + v.greeks.delta);
    }
    black_box(sink);
    let greeks_per_sec = cases.len() as f64 / start.elapsed().as_secs_f64();

    // 2. implied volatility: solves of prices the model produced.
    let iv_cases: Vec<(OptionInputs, f64)> = inputs(200_000 / scale)
        .into_iter()
        .filter_map(|(i, vol)| european_valuation(&i, vol).ok().map(|v| (i, v.price)))
        .filter(|(i, p)| *p > 1e-6 * i.spot)
        .collect();
    let start = Instant::now();
    let mut evaluations = 0u64;
    let mut solved = 0u64;
    for (i, price) in &iv_cases {
        if let Ok(s) = implied_vol(i, *price) {
            evaluations += u64::from(s.price_evaluations);
            solved += 1;
        }
    }
    let iv_secs = start.elapsed().as_secs_f64();
    let iv_per_sec = iv_cases.len() as f64 / iv_secs;
    let avg_evals = evaluations as f64 / solved.max(1) as f64;

    // 3. full chain builds per symbol-day on the real history.
    let history = market_sim::data::real_history().context("loading the shipped history")?;
    let model = ChainModel::new(ChainModelParams::default());
    let calendar = NyseCalendar::new();
    let from = NaiveDate::from_ymd_opt(args.year, 1, 1).context("bad --year")?;
    let to = NaiveDate::from_ymd_opt(args.year, 12, 31).context("bad --year")?;
    let range = history.date_range(from, to);
    let start = Instant::now();
    let mut chains = 0u64;
    let mut quotes = 0u64;
    let step = if args.quick { 10 } else { 1 };
    for d in range.clone().step_by(step) {
        for (s, info) in history.symbols.iter().enumerate() {
            let (Some(spot), Some(vol)) = (
                history.close(s, d.saturating_sub(1)),
                model.vol_state(history, s, d),
            ) else {
                continue;
            };
            let date = history.dates[d];
            let Some(now) = calendar.session_open(date) else {
                continue;
            };
            let ctx = QuoteContext {
                now,
                spot,
                vol,
                sector: info.sector.as_str(),
            };
            let chain = model.chain(&calendar, &info.symbol, date, spot);
            let contracts: Vec<OptionContract> = chain
                .expirations
                .iter()
                .flat_map(|e| {
                    chain.strikes.iter().flat_map(move |k| {
                        [Right::Put, Right::Call]
                            .map(|r| OptionContract::us(info.symbol.clone(), r, *k, *e))
                    })
                })
                .collect();
            let built = model.quote_many(&calendar, &ctx, &contracts, 42);
            quotes += built.len() as u64;
            black_box(built);
            chains += 1;
        }
    }
    let chain_secs = start.elapsed().as_secs_f64();
    let chains_per_sec = chains as f64 / chain_secs;
    let quotes_per_chain = quotes as f64 / chains.max(1) as f64;

    // 4. a simulated year: every checkpoint of every session, the 20-stock
    // universe, the strategy's slice of each chain quoted at each checkpoint
    // (puts 5-25% OTM, 5-20 days out), every listed contract quotable.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    let exchange = SimExchange::new(
        Arc::new(history.clone()),
        ChainModel::new(ChainModelParams::default()),
        ExchangeParams::default(),
        from,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = Instant::now();
    let mut checkpoints = 0u64;
    let mut sim_quotes = 0u64;
    let mut sessions = 0u64;
    let mut last_date = None;
    runtime.block_on(async {
        while exchange.session_date() <= to {
            if last_date != Some(exchange.session_date()) {
                sessions += 1;
                last_date = Some(exchange.session_date());
            }
            for info in &history.symbols {
                let Ok(chain) = exchange.option_chain(&info.symbol).await else {
                    continue;
                };
                let Ok(q) = exchange.stock_quote(&info.symbol).await else {
                    continue;
                };
                let spot = q.last.map_or(0.0, |p| p.to_f64());
                let today = exchange.session_date();
                let wanted: Vec<OptionContract> = chain
                    .expirations
                    .iter()
                    .filter(|e| (5..=20).contains(&(**e - today).num_days()))
                    .flat_map(|e| {
                        chain
                            .strikes
                            .iter()
                            .filter(|k| (0.75..=0.95).contains(&(k.to_f64() / spot)))
                            .map(|k| OptionContract::us(info.symbol.clone(), Right::Put, *k, *e))
                    })
                    .collect();
                sim_quotes += exchange
                    .option_quotes(&wanted)
                    .await
                    .map_or(0, |v| v.len() as u64);
            }
            let Some(next) = exchange.next_checkpoint() else {
                break;
            };
            exchange.advance_to(next);
            checkpoints += 1;
        }
    });
    let sim_secs = start.elapsed().as_secs_f64();
    let full_chain_secs = checkpoints as f64 * history.symbols.len() as f64 / chains_per_sec;

    let bt_to = if args.quick {
        args.backtest_to
            .min(args.backtest_from + chrono::Duration::days(365))
    } else {
        args.backtest_to
    };
    let (bt_cycles, bt_sessions, bt_trades, bt_secs) =
        backtest_throughput(args.backtest_from, bt_to, "cycle")
            .context("the engine backtest benchmark")?;
    // The baseline of the same run: one year with every write committed on
    // its own (the live path's durability) against one unit of work a
    // cycle (a research run's).
    let year_from = NaiveDate::from_ymd_opt(args.year, 1, 1).context("bad --year")?;
    let year_to = NaiveDate::from_ymd_opt(args.year, 12, 31).context("bad --year")?;
    let (_, y_sessions, _, y_cycle_secs) = backtest_throughput(year_from, year_to, "cycle")
        .context("the engine backtest benchmark (one year, a unit of work a cycle)")?;
    let (_, _, _, y_write_secs) = backtest_throughput(year_from, year_to, "write")
        .context("the engine backtest benchmark (one year, a commit a write)")?;
    let per_write_ratio = y_write_secs / y_cycle_secs;
    let research = research::measure(args, bt_to).context("the research benchmarks")?;
    // The scratch directory of every run above.
    if let Ok(dir) = tempfile_dir() {
        let _ = std::fs::remove_dir_all(dir);
    }

    let figures = json!({
        "build": if cfg!(debug_assertions) { "debug (run with --release for real figures)" } else { "release" },
        "price_and_greeks_per_sec": greeks_per_sec,
        "implied_vol_solves_per_sec": iv_per_sec,
        "implied_vol_avg_price_evaluations": avg_evals,
        "implied_vol_cases": iv_cases.len(),
        "full_chain_builds_per_sec": chains_per_sec,
        "quotes_per_full_chain": quotes_per_chain,
        "simulated_year": args.year,
        "simulated_sessions": sessions,
        "simulated_checkpoints": checkpoints,
        "simulated_year_seconds": sim_secs,
        "simulated_sessions_per_sec": sessions as f64 / sim_secs,
        "strategy_slice_quotes": sim_quotes,
        "full_chains_at_every_checkpoint_seconds_estimate": full_chain_secs,
        "backtest_from": args.backtest_from,
        "backtest_to": bt_to,
        "backtest_cycles": bt_cycles,
        "backtest_sessions": bt_sessions,
        "backtest_trades": bt_trades,
        "backtest_seconds": bt_secs,
        "backtest_cycles_per_sec": bt_cycles as f64 / bt_secs,
        "backtest_sessions_per_sec": bt_sessions as f64 / bt_secs,
        "backtest_year_sessions": y_sessions,
        "backtest_year_seconds_unit_per_cycle": y_cycle_secs,
        "backtest_year_seconds_commit_per_write": y_write_secs,
        "backtest_speedup_vs_commit_per_write": per_write_ratio,
        "optimizer_threads": research.optimizer_threads,
        "optimizer_window_from": args.backtest_from,
        "optimizer_window_to": bt_to,
        "optimizer_evaluations_per_minute": research.optimizer_evaluations_per_minute,
        "learning_proof_threads": research.proof_threads,
        "learning_proof_simulated_years_per_minute": research.proof_years_per_minute,
        "traderd_replay_peak_rss_mb": research.replay_peak_rss_mb,
        "traderd_idle_rss_mb": research.idle_rss_mb,
        "traderd_idle_cpu_percent": research.idle_cpu_percent,
        "universe_421_stocks": "not measured: the 421-stock universe is not in this build",
    });
    if as_json {
        crate::output::json(&figures)?;
    } else {
        println!("bench ({})", figures["build"].as_str().unwrap_or(""));
        println!("  price + greeks          {greeks_per_sec:>14.0} /s");
        println!(
            "  implied vol solves      {iv_per_sec:>14.0} /s   ({avg_evals:.2} price evaluations on average, {} cases)",
            iv_cases.len()
        );
        println!(
            "  full chain builds       {chains_per_sec:>14.0} /s   ({quotes_per_chain:.0} quotes a chain, symbol-days of {})",
            args.year
        );
        println!(
            "  simulated year {}       {sim_secs:>14.3} s    ({sessions} sessions, {checkpoints} checkpoints, 20 symbols; {:.0} sessions/s)",
            args.year,
            sessions as f64 / sim_secs
        );
        println!(
            "                                         at every checkpoint: each symbol's option chain (expirations, strikes) read,"
        );
        println!(
            "                                         the strategy's slice quoted ({sim_quotes} quotes); other contracts are quoted on demand"
        );
        println!(
            "  quoting every listed put and call at every checkpoint would take about {full_chain_secs:.1} s"
        );
        println!(
            "  engine backtest {} to {bt_to}: {bt_secs:.1} s ({bt_cycles} cycles, {:.0} cycles/s, {:.0} sessions/s, {bt_trades} trades)",
            args.backtest_from,
            bt_cycles as f64 / bt_secs,
            bt_sessions as f64 / bt_secs
        );
        println!(
            "                                         the whole loop (perceive, reason, act, learn) with every record written to SQLite"
        );
        println!(
            "  engine sessions/s, {}   {:>10.0} /s   ({per_write_ratio:.2}x a commit per write: {y_write_secs:.1} s against {y_cycle_secs:.1} s, measured now)",
            args.year,
            y_sessions as f64 / y_cycle_secs
        );
        println!(
            "  optimizer evaluations   {:>14.1} /min ({} threads, each a backtest of {} to {bt_to})",
            research.optimizer_evaluations_per_minute,
            research.optimizer_threads,
            args.backtest_from
        );
        println!(
            "  learning-proof          {:>14.1} simulated years/min ({} threads, null market)",
            research.proof_years_per_minute, research.proof_threads
        );
        match (research.replay_peak_rss_mb, research.idle_rss_mb) {
            (Some(peak), Some(idle)) => println!(
                "  traderd RSS             {peak:>14.1} MB peak in a replay; idle between cycles {idle:.1} MB, {:.2}% CPU",
                research.idle_cpu_percent.unwrap_or(f64::NAN)
            ),
            _ => println!(
                "  traderd RSS             not measured (no traderd next to trader-cli, or no /proc)"
            ),
        }
        println!("  421-stock universe      not measured: that universe is not in this build");
    }
    Ok(ExitCode::SUCCESS)
}
