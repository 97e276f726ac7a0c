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
fn backtest_throughput(from: NaiveDate, to: NaiveDate) -> Result<(u64, usize, usize, f64)> {
    use core_domain::TradeRepository;
    let dir = tempfile_dir()?;
    let url = dir.join("bench.db").display().to_string();
    let store = Arc::new(store::Store::open_and_migrate(&url)?);
    store.relax_durability_for_research()?;
    let settings = settings::Settings::default();
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
        backtest_throughput(args.backtest_from, bt_to).context("the engine backtest benchmark")?;

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
    }
    Ok(ExitCode::SUCCESS)
}
