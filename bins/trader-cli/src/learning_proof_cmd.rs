//! `trader-cli learning-proof`: is learning honest? Two benchmarks of the
//! whole engine (traderd's wiring, the `Learner` in the loop) on the seeded
//! synthetic market of `market_sim::synthetic`:
//!
//! * **null** — a null market (constant vol, no jumps, options priced at
//!   exactly that vol, no skew, no premium): no parameter has a real edge.
//!   Counted: the simulated years in which any change was adopted.
//! * **edge** — the same market with a [`PlantedEdge`] in one OTM bucket
//!   (extra implied vol there, so selling those puts earns more; by default
//!   8–10% OTM, just below the strategy's 10–25% range, so the strategy
//!   cannot already be exploiting it — the engine's exploration band quotes
//!   it as shadow trades). Counted: the seeds where a pattern on that
//!   bucket is found and an experiment on `otm_min`/`otm_max` moving toward
//!   it (or, for a negative `--extra-vol`, away from it) is adopted within
//!   N closed trades, and the trades it took.
//!
//! Every figure is measured from the runs' databases; nothing is assumed.
//! The strategy is deliberately loose so that it trades often (see
//! [`loose_settings`]); the learning settings are the defaults.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    LearningEventType, LearningRepository, TradeFilter, TradeRepository, TradeStatus,
};
use market_sim::synthetic::{EdgeScope, PlantedEdge, SyntheticConfig, generate, null_chain_params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use settings::{Range, Settings};
use store::Store;

/// Sessions before the first trading day (realized vol and 60 closes).
const WARMUP_SESSIONS: usize = 80;
/// Sessions after the last trading day (listed expirations stay in range).
const TAIL_SESSIONS: usize = 40;
/// Sessions of a simulated year.
const YEAR_SESSIONS: usize = 252;

/// Arguments of `trader-cli learning-proof`.
#[derive(Debug, clap::Args)]
pub struct LearningProofArgs {
    /// Seeds (markets) per part; seeds are first-seed, first-seed+1, ...
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// Simulated years per seed.
    #[arg(long, default_value_t = 2)]
    pub years: usize,
    /// A smoke run: 4 seeds × 2 years (overrides --seeds and --years).
    #[arg(long)]
    pub quick: bool,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Part::Both)]
    pub part: Part,
    /// Lower bound of the planted edge's OTM bucket (fraction below spot).
    #[arg(long, default_value_t = 0.08)]
    pub edge_min: f64,
    /// Upper bound (exclusive) of the planted edge's OTM bucket.
    #[arg(long, default_value_t = 0.10)]
    pub edge_max: f64,
    /// Extra implied vol in the bucket (vol points as a fraction: 0.10 = 10
    /// points richer, so selling there earns more; negative = cheaper, so
    /// selling there earns less than elsewhere).
    #[arg(long, default_value_t = 0.10, allow_hyphen_values = true)]
    pub extra_vol: f64,
    /// Lower bound of the benchmark strategy's OTM range.
    #[arg(long, default_value_t = 0.10)]
    pub otm_min: f64,
    /// Upper bound of the benchmark strategy's OTM range.
    #[arg(long, default_value_t = 0.25)]
    pub otm_max: f64,
    /// The edge counts as adopted only within this many closed trades.
    #[arg(long, default_value_t = 300)]
    pub within_trades: usize,
    /// Worker threads (runs are independent) [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run only shard I of N (1-based, e.g. `2/8`): the runs whose index
    /// in the job list is I−1 modulo N. Run every shard (on one machine or
    /// many) with `--json > shard-I.json`, then `--merge shard-*.json`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Merge shard reports (written with `--json`) into one report instead
    /// of running: the same settings in each, every run once.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub merge: Vec<PathBuf>,
}

/// One shard of the job list: `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

pub(crate) fn parse_shard(s: &str) -> std::result::Result<Shard, String> {
    let bad = || format!("--shard {s:?}: expected I/N with 1 <= I <= N, e.g. 2/8");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let index: usize = i.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// What defines a benchmark (everything but how it is spread over threads
/// and shards): shard reports merge only when these are equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofParams {
    pub seeds: u64,
    pub years: usize,
    pub first_seed: u64,
    pub part: Part,
    pub edge_min: f64,
    pub edge_max: f64,
    pub extra_vol: f64,
    pub otm_min: f64,
    pub otm_max: f64,
    pub within_trades: usize,
}

impl ProofParams {
    fn of(args: &LearningProofArgs) -> Self {
        let (seeds, years) = if args.quick {
            (4, 2)
        } else {
            (args.seeds, args.years)
        };
        ProofParams {
            seeds,
            years,
            first_seed: args.first_seed,
            part: args.part,
            edge_min: args.edge_min,
            edge_max: args.edge_max,
            extra_vol: args.extra_vol,
            otm_min: args.otm_min,
            otm_max: args.otm_max,
            within_trades: args.within_trades,
        }
    }

    /// Every run of the benchmark: (seed, planted edge?), in a fixed order.
    fn jobs(&self) -> Vec<(u64, bool)> {
        let mut jobs = Vec::new();
        for s in 0..self.seeds {
            let seed = self.first_seed + s;
            if matches!(self.part, Part::Null | Part::Both) {
                jobs.push((seed, false));
            }
            if matches!(self.part, Part::Edge | Part::Both) {
                jobs.push((seed, true));
            }
        }
        jobs
    }

    /// The command that reproduces the whole benchmark.
    fn command(&self) -> String {
        format!(
            "trader-cli learning-proof --seeds {} --years {} --first-seed {} --part {} --otm-min {} --otm-max {} --edge-min {} --edge-max {} --extra-vol {} --within-trades {}",
            self.seeds,
            self.years,
            self.first_seed,
            match self.part {
                Part::Null => "null",
                Part::Edge => "edge",
                Part::Both => "both",
            },
            self.otm_min,
            self.otm_max,
            self.edge_min,
            self.edge_max,
            self.extra_vol,
            self.within_trades
        )
    }
}

/// The parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Null,
    Edge,
    Both,
}

/// The strategy the benchmark trades: loose enough to trade a few hundred
/// times a year on the 20-symbol synthetic market (the default rules,
/// OTM 15–20%, premium $0.30–0.50, DTE 7–14 with an uptrend filter and
/// liquidity screens, trade about 8 times a year). OTM `otm` (10–25% by
/// default), premium $0.05–3.00, DTE 5–30, 10 positions of one contract,
/// no trend filter, no volume or open-interest screen, spreads up to 100%
/// of the mid. Risk, exits and learning: the defaults.
pub fn loose_settings(otm: (f64, f64)) -> Settings {
    let mut s = Settings::default();
    let st = &mut s.strategy;
    st.otm_range = Range {
        min: otm.0,
        max: otm.1,
    };
    st.premium_range = Range {
        min: 0.05,
        max: 3.00,
    };
    st.dte_range = Range { min: 5, max: 30 };
    st.max_positions = 10;
    st.position_size = 1;
    st.trend_filter = "none".into();
    st.underlying_price_range = Range {
        min: 1.0,
        max: 10_000.0,
    };
    st.min_avg_volume = 0.0;
    st.min_open_interest = 0;
    st.max_spread_pct = 1.0;
    s
}

/// One experiment of a run, as its row ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentSummary {
    pub id: String,
    pub status: String,
    pub control_trades: i64,
    pub test_trades: i64,
    pub p_value: Option<f64>,
    pub effect: Option<f64>,
    pub decision: Option<String>,
}

/// One run: a seed, with or without the planted edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub seed: u64,
    pub planted: bool,
    pub first_session: NaiveDate,
    pub last_session: NaiveDate,
    pub closed_trades: usize,
    /// Per simulated year: adoptions in it.
    pub adoptions_by_year: Vec<usize>,
    pub experiments_started: usize,
    pub experiments_rejected: usize,
    pub experiments_adopted: usize,
    pub experiments_rolled_back: usize,
    /// Every adoption: (parameter, from, to, closed trades by then).
    pub adoptions: Vec<(String, String, String, usize)>,
    /// Every experiment: id, status, trades per arm, p-value, effect
    /// (test − control mean ROI), decision.
    pub experiments: Vec<ExperimentSummary>,
    /// Closed trades in the edge bucket, and their mean ROI; the rest.
    pub bucket_trades: usize,
    pub bucket_mean_roi: Option<f64>,
    pub rest_trades: usize,
    pub rest_mean_roi: Option<f64>,
    /// Closed trades when a pattern on the edge bucket (outperforming) was
    /// first detected.
    pub detected_after: Option<usize>,
    /// Closed trades when a change of otm_min/otm_max toward the bucket
    /// was first adopted.
    pub adopted_after: Option<usize>,
    pub seconds: f64,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(mut v: Vec<usize>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

/// Whether an OTM fraction lies in `[lo, hi)`.
fn in_bucket(otm: f64, lo: f64, hi: f64) -> bool {
    otm >= lo - 1e-9 && otm < hi - 1e-9
}

/// One simulated year of the null market with the default benchmark
/// strategy (`trader-cli bench` times it).
pub fn run_null_year(seed: u64, scratch: &std::path::Path) -> Result<RunOutcome> {
    run_one(seed, 1, None, (0.08, 0.10), (0.10, 0.25), scratch)
}

/// Runs the engine over one synthetic market and reads the outcome back
/// from its database.
fn run_one(
    seed: u64,
    years: usize,
    edge: Option<&PlantedEdge>,
    bucket: (f64, f64),
    otm: (f64, f64),
    scratch: &std::path::Path,
) -> Result<RunOutcome> {
    let wall = Instant::now();
    let start = NaiveDate::from_ymd_opt(2001, 1, 2).context("start date")?;
    let sessions = WARMUP_SESSIONS + years * YEAR_SESSIONS + TAIL_SESSIONS;
    let history = Arc::new(
        generate(&SyntheticConfig::null_market(seed, start, sessions))
            .map_err(|e| anyhow::anyhow!("generating the synthetic market (seed {seed}): {e}"))?,
    );
    let mut chain = null_chain_params();
    if let Some(e) = edge {
        chain.planted_edges = vec![e.clone()];
    }
    let from = history.dates[WARMUP_SESSIONS];
    let last_index = WARMUP_SESSIONS + years * YEAR_SESSIONS - 1;
    let to = history.dates[last_index];
    let dir = scratch.join(format!(
        "seed{seed}-{}",
        if edge.is_some() { "edge" } else { "null" }
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let url = dir.join("run.db").display().to_string();
    let store = Arc::new(Store::open_and_migrate(&url).with_context(|| format!("creating {url}"))?);
    store.relax_durability_for_research()?;
    let settings = loose_settings(otm);
    let mut sim = traderd::wiring::sim_run_on(
        &settings,
        Arc::clone(&store),
        traderd::wiring::SimMarket {
            history: Arc::clone(&history),
            chain,
        },
        from,
        to,
        Some(seed),
        settings.risk_limits(),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = AtomicBool::new(false);
    let until = sim.until;
    runtime
        .block_on(orchestrator::run(
            &mut sim.engine,
            &sim.clock,
            until,
            orchestrator::Pace::AsFastAsPossible,
            &stop,
            |_| {},
        ))
        .with_context(|| format!("running the engine (seed {seed})"))?;
    let first_session = sim.first_session;
    drop(sim);

    // Everything below from the database.
    let mut closed: Vec<core_domain::Trade> = store
        .trades(&TradeFilter {
            open: Some(false),
            ..TradeFilter::default()
        })?
        .into_iter()
        .filter(|t| t.status == TradeStatus::Closed)
        .collect();
    closed.sort_by_key(|t| t.exit_time);
    let closed_by = |t: DateTime<Utc>| {
        closed
            .iter()
            .filter(|x| x.exit_time.is_some_and(|e| e <= t))
            .count()
    };
    let closed_by_date = |d: NaiveDate| {
        closed
            .iter()
            .filter(|x| x.exit_date.is_some_and(|e| e <= d))
            .count()
    };
    let (lo, hi) = bucket;
    // A richer bucket should draw the range toward it, a poorer one push
    // it away.
    let richer = edge.is_none_or(|e| e.extra_vol > 0.0);
    let bucket_rois: Vec<f64> = closed
        .iter()
        .filter(|t| in_bucket(t.otm_pct, lo, hi))
        .filter_map(|t| t.roi)
        .collect();
    let rest_rois: Vec<f64> = closed
        .iter()
        .filter(|t| !in_bucket(t.otm_pct, lo, hi))
        .filter_map(|t| t.roi)
        .collect();

    let experiments = store.experiments()?;
    let count =
        |s: core_domain::ExperimentStatus| experiments.iter().filter(|e| e.status == s).count();
    let events = store.learning_history(i64::MAX)?;
    let year_of = |d: NaiveDate| -> usize {
        let idx = history.dates.partition_point(|x| *x < d);
        idx.saturating_sub(WARMUP_SESSIONS) / YEAR_SESSIONS
    };
    let mut adoptions_by_year = vec![0usize; years];
    let mut adoptions = Vec::new();
    let mut adopted_after: Option<usize> = None;
    let mut adopted_events: Vec<&core_domain::LearningEvent> = events
        .iter()
        .filter(|e| e.event_type == LearningEventType::ParameterAdopted)
        .collect();
    adopted_events.sort_by_key(|e| e.event_date);
    for e in adopted_events {
        let y = year_of(e.event_date.date_naive()).min(years.saturating_sub(1));
        if let Some(slot) = adoptions_by_year.get_mut(y) {
            *slot += 1;
        }
        let param = e.parameter_changed.clone().unwrap_or_default();
        let from_v = e.old_value.clone().unwrap_or_default();
        let to_v = e.new_value.clone().unwrap_or_default();
        let n = closed_by(e.event_date);
        // Toward a richer bucket: the range's bound moves closer to it.
        // Away from a poorer one: a bound moves past more of it (otm_min
        // up from inside or below the bucket, otm_max down from inside
        // or above it).
        let toward = match (from_v.parse::<f64>(), to_v.parse::<f64>()) {
            (Ok(a), Ok(b)) => match (param.as_str(), richer) {
                ("otm_min", true) => (b - lo).abs() < (a - lo).abs(),
                ("otm_max", true) => (b - hi).abs() < (a - hi).abs(),
                ("otm_min", false) => b > a && b > lo && a < hi,
                ("otm_max", false) => b < a && b < hi && a >= lo,
                _ => false,
            },
            _ => false,
        };
        if edge.is_some() && toward && adopted_after.is_none() {
            adopted_after = Some(n);
        }
        adoptions.push((param, from_v, to_v, n));
    }
    let detected_after = if edge.is_some() {
        store
            .patterns(None)?
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.pattern_type == "otm_bucket")
            .filter(|p| {
                let c = &p.context;
                let min = c.get("min").and_then(serde_json::Value::as_f64);
                let direction = c.get("direction").and_then(serde_json::Value::as_str);
                let expected = if richer {
                    "outperforms"
                } else {
                    "underperforms"
                };
                direction == Some(expected) && min.is_some_and(|m| in_bucket(m, lo, hi))
            })
            .map(|p| p.date_detected)
            .min()
            .map(closed_by_date)
    } else {
        None
    };
    let outcome = RunOutcome {
        seed,
        planted: edge.is_some(),
        first_session,
        last_session: to,
        closed_trades: closed.len(),
        adoptions_by_year,
        experiments_started: experiments.len(),
        experiments_rejected: count(core_domain::ExperimentStatus::Rejected),
        experiments_adopted: count(core_domain::ExperimentStatus::Adopted),
        experiments_rolled_back: count(core_domain::ExperimentStatus::RolledBack),
        adoptions,
        experiments: experiments
            .iter()
            .map(|e| ExperimentSummary {
                id: e.experiment_id.clone(),
                status: format!("{:?}", e.status).to_lowercase(),
                control_trades: e.control_trades,
                test_trades: e.test_trades,
                p_value: e.p_value,
                effect: e.effect_size,
                decision: e.decision.clone(),
            })
            .collect(),
        bucket_trades: bucket_rois.len(),
        bucket_mean_roi: mean(&bucket_rois),
        rest_trades: rest_rois.len(),
        rest_mean_roi: mean(&rest_rois),
        detected_after,
        adopted_after,
        seconds: wall.elapsed().as_secs_f64(),
    };
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(outcome)
}

/// Runs the benchmark (or one shard of it), or merges shard reports.
pub fn run(args: &LearningProofArgs, as_json: bool) -> Result<ExitCode> {
    if !args.merge.is_empty() {
        return merge(&args.merge, as_json);
    }
    let params = ProofParams::of(args);
    if params.seeds == 0 || params.years == 0 {
        bail!("--seeds and --years must be at least 1");
    }
    let edge = planted_edge(&params)?;
    let bucket = (params.edge_min, params.edge_max);
    let otm = (params.otm_min, params.otm_max);
    let years = params.years;
    let jobs: Vec<(u64, bool)> = params
        .jobs()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| args.shard.is_none_or(|s| i % s.count == s.index - 1))
        .map(|(_, j)| j)
        .collect();
    if jobs.is_empty() {
        bail!(
            "shard {} holds no run: the benchmark has only {} runs; use fewer shards",
            args.shard.map_or_else(String::new, |s| s.to_string()),
            params.jobs().len()
        );
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len().max(1));
    let scratch =
        std::env::temp_dir().join(format!("trader-learning-proof-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("creating the scratch directory {}", scratch.display()))?;
    let wall = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<RunOutcome>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(seed, planted)) = jobs.get(i) else {
                        break;
                    };
                    let r = run_one(seed, years, planted.then_some(&edge), bucket, otm, &scratch);
                    if !as_json {
                        match &r {
                            Ok(o) => eprintln!(
                                "  {} seed {seed}: {} trades, {} experiments, {} adopted, {:.0} s",
                                if planted { "edge" } else { "null" },
                                o.closed_trades,
                                o.experiments_started,
                                o.adoptions.len(),
                                o.seconds
                            ),
                            Err(e) => eprintln!("  seed {seed}: failed: {e:#}"),
                        }
                    }
                    if let Ok(mut v) = results.lock() {
                        v.push(r);
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let elapsed = wall.elapsed().as_secs_f64();
    let mut outcomes = Vec::new();
    for r in results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
    {
        outcomes.push(r?);
    }
    let spread = Spread {
        threads,
        elapsed,
        shard: args.shard,
        merged_from: 0,
    };
    report(&params, outcomes, &spread, as_json)
}

/// The planted edge of `params`, checked.
fn planted_edge(params: &ProofParams) -> Result<PlantedEdge> {
    let edge = PlantedEdge {
        scope: EdgeScope::OtmBucket {
            min: params.edge_min,
            // The edge's bucket is inclusive, the pattern buckets half-open.
            max: params.edge_max - 1e-6,
        },
        extra_vol: params.extra_vol,
    };
    let problems = edge.problems();
    if !problems.is_empty() || params.edge_max <= params.edge_min {
        bail!(
            "the planted edge: {}",
            problems
                .iter()
                .map(|(k, m)| format!("{k}: {m}"))
                .chain(
                    (params.edge_max <= params.edge_min)
                        .then(|| "--edge-max must exceed --edge-min".to_string())
                )
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let otm = (params.otm_min, params.otm_max);
    if !(0.0..1.0).contains(&otm.0) || !(0.0..1.0).contains(&otm.1) || otm.0 >= otm.1 {
        bail!(
            "--otm-min {} and --otm-max {} must be fractions in [0, 1) with min < max",
            otm.0,
            otm.1
        );
    }
    if params.extra_vol == 0.0 {
        bail!("--extra-vol 0 plants no edge; use --part null for the null market");
    }
    Ok(edge)
}

/// How a report's runs were spread: threads, wall-clock time, the shard
/// it is, or how many shard reports it merges.
struct Spread {
    threads: usize,
    elapsed: f64,
    shard: Option<Shard>,
    merged_from: usize,
}

/// Merges shard reports written with `--json`: the same benchmark in each
/// (its `params`), every run at most once; runs missing from every shard
/// are listed and make the report partial.
fn merge(files: &[PathBuf], as_json: bool) -> Result<ExitCode> {
    let mut params: Option<ProofParams> = None;
    let mut outcomes: Vec<RunOutcome> = Vec::new();
    let (mut threads, mut elapsed) = (0usize, 0.0f64);
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a JSON report (write shard reports with `learning-proof --json --shard I/N > FILE`)",
                f.display()
            )
        })?;
        let p: ProofParams = serde_json::from_value(v["params"].clone()).with_context(|| {
            format!(
                "{}: no benchmark settings (`params`); was it written by this version of learning-proof --json?",
                f.display()
            )
        })?;
        match &params {
            None => params = Some(p),
            Some(q) if *q == p => {}
            Some(q) => bail!(
                "{} is another benchmark than the first report: `{}` against `{}`; merge only shards of one command",
                f.display(),
                p.command(),
                q.command()
            ),
        }
        let runs: Vec<RunOutcome> = serde_json::from_value(v["runs"].clone())
            .with_context(|| format!("{}: reading its runs", f.display()))?;
        for r in runs {
            if outcomes
                .iter()
                .any(|o| o.seed == r.seed && o.planted == r.planted)
            {
                bail!(
                    "{}: the {} run of seed {} is in another report too; merge each shard once",
                    f.display(),
                    if r.planted { "edge" } else { "null" },
                    r.seed
                );
            }
            outcomes.push(r);
        }
        threads += v["threads"].as_u64().unwrap_or(0) as usize;
        elapsed = elapsed.max(v["elapsed_seconds"].as_f64().unwrap_or(0.0));
    }
    let Some(params) = params else {
        bail!("--merge needs at least one report");
    };
    let spread = Spread {
        threads,
        elapsed,
        shard: None,
        merged_from: files.len(),
    };
    report(&params, outcomes, &spread, as_json)
}

/// `k` of `n` with its exact 95% interval, as JSON.
fn rate_json(k: usize, n: usize) -> serde_json::Value {
    let ci = learning::stats::binomial_ci(k as u64, n as u64, 0.95).ok();
    json!({
        "count": k,
        "of": n,
        "share": (n > 0).then(|| k as f64 / n as f64),
        "ci95": ci.map(|(lo, hi)| [lo, hi]),
    })
}

/// `k of n (x%, 95% CI a–b%)`.
fn rate_text(k: usize, n: usize) -> String {
    match learning::stats::binomial_ci(k as u64, n as u64, 0.95) {
        Ok((lo, hi)) => format!(
            "{k} of {n} ({:.1}%, 95% CI {:.1}–{:.1}%)",
            100.0 * k as f64 / n as f64,
            100.0 * lo,
            100.0 * hi
        ),
        Err(_) => format!("{k} of {n}"),
    }
}

/// Summarizes the runs (all of them, or a shard's) and prints the report.
fn report(
    params: &ProofParams,
    mut outcomes: Vec<RunOutcome>,
    spread: &Spread,
    as_json: bool,
) -> Result<ExitCode> {
    let years = params.years;
    let (threads, elapsed) = (spread.threads, spread.elapsed);
    outcomes.sort_by_key(|o| (o.planted, o.seed));
    let missing: Vec<String> = params
        .jobs()
        .into_iter()
        .filter(|(seed, planted)| {
            !outcomes
                .iter()
                .any(|o| o.seed == *seed && o.planted == *planted)
        })
        .map(|(seed, planted)| format!("{} {seed}", if planted { "edge" } else { "null" }))
        .collect();
    let null_runs: Vec<&RunOutcome> = outcomes.iter().filter(|o| !o.planted).collect();
    let planted: Vec<&RunOutcome> = outcomes.iter().filter(|o| o.planted).collect();

    let null_years: usize = null_runs.iter().map(|o| o.adoptions_by_year.len()).sum();
    let null_years_with: usize = null_runs
        .iter()
        .map(|o| o.adoptions_by_year.iter().filter(|n| **n > 0).count())
        .sum();
    let sum =
        |v: &[&RunOutcome], f: fn(&RunOutcome) -> usize| v.iter().map(|o| f(o)).sum::<usize>();
    // Per experiment: of the null experiments that ended (adopted,
    // rejected or rolled back after adoption), how many were adopted.
    let null_ended = sum(&null_runs, |o| {
        o.experiments_adopted + o.experiments_rejected + o.experiments_rolled_back
    });
    let null_adopted_experiments = sum(&null_runs, |o| {
        o.experiments_adopted + o.experiments_rolled_back
    });
    let null_summary = (!null_runs.is_empty()).then(|| {
        json!({
            "runs": null_runs.len(),
            "simulated_years": null_years,
            "years_with_an_adoption": null_years_with,
            "share_of_years_with_an_adoption": null_years_with as f64 / null_years.max(1) as f64,
            "years_with_an_adoption_rate": rate_json(null_years_with, null_years),
            "experiments_ended": null_ended,
            "false_adoptions_per_ended_experiment": rate_json(null_adopted_experiments, null_ended),
            "adoptions": sum(&null_runs, |o| o.adoptions.len()),
            "closed_trades": sum(&null_runs, |o| o.closed_trades),
            "trades_per_year": sum(&null_runs, |o| o.closed_trades) as f64 / null_years.max(1) as f64,
            "experiments_started": sum(&null_runs, |o| o.experiments_started),
            "experiments_rejected": sum(&null_runs, |o| o.experiments_rejected),
            "experiments_adopted": sum(&null_runs, |o| o.experiments_adopted),
            "experiments_rolled_back": sum(&null_runs, |o| o.experiments_rolled_back),
            "target": "share of years with an adoption <= 5%, the upper end of its 95% interval <= 7%; false adoptions per experiment <= alpha",
        })
    });
    let within = params.within_trades;
    let detected: Vec<usize> = planted.iter().filter_map(|o| o.detected_after).collect();
    let adopted: Vec<usize> = planted.iter().filter_map(|o| o.adopted_after).collect();
    let adopted_within = adopted.iter().filter(|n| **n <= within).count();
    let detected_within = detected.iter().filter(|n| **n <= within).count();
    let pooled = |runs: &[&RunOutcome], f: fn(&RunOutcome) -> (usize, Option<f64>)| {
        let (n, s) = runs.iter().fold((0usize, 0.0f64), |(n, s), o| {
            let (k, m) = f(o);
            (n + k, s + m.unwrap_or(0.0) * k as f64)
        });
        (n > 0).then(|| s / n as f64)
    };
    let bucket_roi = pooled(&planted, |o| (o.bucket_trades, o.bucket_mean_roi));
    let rest_roi = pooled(&planted, |o| (o.rest_trades, o.rest_mean_roi));
    let null_bucket_roi = pooled(&null_runs, |o| (o.bucket_trades, o.bucket_mean_roi));
    let null_rest_roi = pooled(&null_runs, |o| (o.rest_trades, o.rest_mean_roi));
    let edge_summary = (!planted.is_empty()).then(|| {
        json!({
            "runs": planted.len(),
            "bucket": [params.edge_min, params.edge_max],
            "strategy_otm_range": [params.otm_min, params.otm_max],
            "extra_vol": params.extra_vol,
            "within_trades": within,
            "bucket_trades": sum(&planted, |o| o.bucket_trades),
            "bucket_mean_roi": bucket_roi,
            "rest_trades": sum(&planted, |o| o.rest_trades),
            "rest_mean_roi": rest_roi,
            "bucket_minus_rest_roi": bucket_roi.zip(rest_roi).map(|(a, b)| a - b),
            "seeds_detected": detected.len(),
            "seeds_detected_within": detected_within,
            "seeds_adopted": adopted.len(),
            "seeds_adopted_within": adopted_within,
            "share_adopted_within": adopted_within as f64 / planted.len().max(1) as f64,
            "adopted_within_rate": rate_json(adopted_within, planted.len()),
            "power_curve": ([100usize, 200, 300]
                .iter()
                .map(|n| json!({
                    "within_trades": n,
                    "adopted": rate_json(adopted.iter().filter(|a| **a <= *n).count(), planted.len()),
                }))
                .collect::<Vec<_>>()),
            "median_trades_to_detection": median(detected.clone()),
            "median_trades_to_adoption": median(adopted.clone()),
            "closed_trades": sum(&planted, |o| o.closed_trades),
            "experiments_started": sum(&planted, |o| o.experiments_started),
            "experiments_rejected": sum(&planted, |o| o.experiments_rejected),
            "adoptions_any_parameter": sum(&planted, |o| o.adoptions.len()),
            "target": format!("share adopted within {within} trades >= 80%"),
        })
    });
    let command = params.command();
    let report = json!({
        "command": command,
        "params": params,
        "shard": spread.shard.map(|s| s.to_string()),
        "merged_from": spread.merged_from,
        "missing_runs": missing,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "threads": threads,
        "elapsed_seconds": elapsed,
        "run_seconds": outcomes.iter().map(|o| o.seconds).sum::<f64>(),
        "seeds": params.seeds,
        "years": years,
        "null": null_summary,
        "null_bucket_mean_roi": null_bucket_roi,
        "null_rest_mean_roi": null_rest_roi,
        "edge": edge_summary,
        "runs": outcomes,
    });
    if as_json {
        crate::output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:+.2}%", 100.0 * v));
    println!(
        "learning-proof ({})",
        report["build"].as_str().unwrap_or("")
    );
    println!("  command   {command}");
    match (spread.shard, spread.merged_from) {
        (Some(s), _) => println!(
            "  shard     {s}: {} of the benchmark's {} runs (merge the shards' --json reports with --merge)",
            outcomes.len(),
            params.jobs().len()
        ),
        (None, n) if n > 0 => println!(
            "  merged    {n} shard reports, {} runs{}",
            outcomes.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(
                    "; INCOMPLETE, {} runs missing: {}",
                    missing.len(),
                    missing.join(", ")
                )
            }
        ),
        _ => {}
    }
    println!(
        "  elapsed   {elapsed:.0} s on {threads} thread(s), {} runs",
        outcomes.len()
    );
    if !null_runs.is_empty() {
        println!(
            "  (a) null market, {} seeds × {years} years",
            null_runs.len()
        );
        println!(
            "      years with an adoption   {} (target <= 5%, upper end <= 7%)",
            rate_text(null_years_with, null_years)
        );
        println!(
            "      adopted per experiment   {} of the experiments that ended (target <= alpha)",
            rate_text(null_adopted_experiments, null_ended)
        );
        println!(
            "      closed trades            {} ({:.0} a year)",
            sum(&null_runs, |o| o.closed_trades),
            sum(&null_runs, |o| o.closed_trades) as f64 / null_years.max(1) as f64
        );
        println!(
            "      experiments              {} started, {} rejected, {} adopted, {} rolled back",
            sum(&null_runs, |o| o.experiments_started),
            sum(&null_runs, |o| o.experiments_rejected),
            sum(&null_runs, |o| o.experiments_adopted),
            sum(&null_runs, |o| o.experiments_rolled_back)
        );
        println!(
            "      mean ROI in {:.0}-{:.0}% OTM     {} vs {} elsewhere",
            100.0 * params.edge_min,
            100.0 * params.edge_max,
            pct(null_bucket_roi),
            pct(null_rest_roi)
        );
    }
    if !planted.is_empty() {
        println!(
            "  (b) planted edge: {:+.0} vol points in {:.0}-{:.0}% OTM, {} seeds × {years} years",
            100.0 * params.extra_vol,
            100.0 * params.edge_min,
            100.0 * params.edge_max,
            planted.len()
        );
        println!(
            "      mean ROI in the bucket   {} ({} trades) vs {} elsewhere ({} trades): {} difference",
            pct(bucket_roi),
            sum(&planted, |o| o.bucket_trades),
            pct(rest_roi),
            sum(&planted, |o| o.rest_trades),
            pct(bucket_roi.zip(rest_roi).map(|(a, b)| a - b))
        );
        println!(
            "      detected (pattern)       {} of {} seeds ({detected_within} within {within} trades), median after {} trades",
            detected.len(),
            planted.len(),
            median(detected.clone()).map_or("-".into(), |m| format!("{m:.0}"))
        );
        println!(
            "      adopted (otm bound)      {} seeds in all; within {within} trades {} (target >= 80%), median after {} trades",
            adopted.len(),
            rate_text(adopted_within, planted.len()),
            median(adopted.clone()).map_or("-".into(), |m| format!("{m:.0}"))
        );
        println!(
            "      adopted within 100/200/300 trades   {} / {} / {} of {} seeds",
            adopted.iter().filter(|a| **a <= 100).count(),
            adopted.iter().filter(|a| **a <= 200).count(),
            adopted.iter().filter(|a| **a <= 300).count(),
            planted.len()
        );
        println!(
            "      experiments              {} started, {} rejected, {} adoptions of any parameter",
            sum(&planted, |o| o.experiments_started),
            sum(&planted, |o| o.experiments_rejected),
            sum(&planted, |o| o.adoptions.len())
        );
    }
    for o in &outcomes {
        for (p, a, b, n) in &o.adoptions {
            println!(
                "      {} seed {}: adopted {p} {a} -> {b} after {n} trades",
                if o.planted { "edge" } else { "null" },
                o.seed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params() -> ProofParams {
        ProofParams {
            seeds: 5,
            years: 2,
            first_seed: 101,
            part: Part::Both,
            edge_min: 0.08,
            edge_max: 0.10,
            extra_vol: 0.05,
            otm_min: 0.10,
            otm_max: 0.25,
            within_trades: 300,
        }
    }

    #[test]
    fn shards_parse_and_cover_every_run_once() {
        assert_eq!(parse_shard("2/8"), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/4", "5/4", "1", "a/b", "1/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let jobs = params().jobs();
        assert_eq!(jobs.len(), 10);
        let mut seen = Vec::new();
        for index in 1..=3 {
            let shard = Shard { index, count: 3 };
            seen.extend(
                jobs.iter()
                    .enumerate()
                    .filter(|(i, _)| i % shard.count == shard.index - 1)
                    .map(|(_, j)| *j),
            );
        }
        seen.sort();
        let mut all = jobs.clone();
        all.sort();
        assert_eq!(
            seen, all,
            "the shards together are the benchmark, each run once"
        );
    }

    fn outcome(seed: u64, planted: bool, adopted_year: Option<usize>) -> RunOutcome {
        RunOutcome {
            seed,
            planted,
            first_session: NaiveDate::from_ymd_opt(2001, 5, 1).unwrap(),
            last_session: NaiveDate::from_ymd_opt(2003, 5, 1).unwrap(),
            closed_trades: 500,
            adoptions_by_year: (0..2)
                .map(|y| usize::from(adopted_year == Some(y)))
                .collect(),
            experiments_started: 2,
            experiments_rejected: 1 + usize::from(adopted_year.is_none()),
            experiments_adopted: usize::from(adopted_year.is_some()),
            experiments_rolled_back: 0,
            adoptions: Vec::new(),
            experiments: Vec::new(),
            bucket_trades: 50,
            bucket_mean_roi: Some(0.01),
            rest_trades: 450,
            rest_mean_roi: Some(0.0),
            detected_after: planted.then_some(60),
            adopted_after: planted.then_some(200),
            seconds: 1.0,
        }
    }

    #[test]
    fn merged_shards_report_like_one_run_and_refuse_mixed_benchmarks() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, p: &ProofParams, runs: Vec<RunOutcome>| {
            let path = dir.path().join(name);
            let v = json!({ "params": p, "runs": runs, "threads": 2, "elapsed_seconds": 10.0 });
            std::fs::write(&path, v.to_string()).unwrap();
            path
        };
        let p = params();
        let a = write(
            "a.json",
            &p,
            vec![outcome(101, false, Some(1)), outcome(101, true, None)],
        );
        let b = write("b.json", &p, vec![outcome(102, false, None)]);
        assert!(merge(&[a.clone(), b.clone()], true).is_ok());
        // the same run twice
        let again = write("c.json", &p, vec![outcome(102, false, None)]);
        let err = merge(&[a.clone(), b.clone(), again], true).unwrap_err();
        assert!(format!("{err:#}").contains("seed 102"), "{err:#}");
        // another benchmark
        let mut other = params();
        other.extra_vol = 0.10;
        let d = write("d.json", &other, vec![outcome(103, false, None)]);
        let err = merge(&[a, d], true).unwrap_err();
        assert!(format!("{err:#}").contains("another benchmark"), "{err:#}");
    }
}
