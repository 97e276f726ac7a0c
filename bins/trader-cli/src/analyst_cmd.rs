//! `trader-cli analyze --ai` (the Claude analyst, or its statistical
//! fallback) and `trader-cli reports` (the stored reports).

use std::process::ExitCode;

use agents_claude::{Report, Status};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use settings::Loaded;
use store::Store;

use crate::output;

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// The Claude analyst's report (insights and grounded recommendations,
    /// stored in the database); the statistical report of the same
    /// structure without ANTHROPIC_API_KEY or when the model cannot answer.
    #[arg(long)]
    pub ai: bool,
    /// Only trades closed in the last N days (0 = all) before the engine's
    /// last cycle (a replay's clock) or, if it never ran, now
    /// [default: [agent] window_days].
    #[arg(long, requires = "ai", value_name = "N")]
    pub days: Option<i64>,
}

/// Runs the analysis, stores the report and its proposals, prints it.
/// Exit 0 for the model's report and for the fallback; an error (exit 1)
/// only for a configuration problem (a key the API refuses, an unknown
/// model, a bad base URL).
pub fn run(args: &AnalyzeArgs, json: bool, loaded: &Loaded, store: &Store) -> Result<ExitCode> {
    let settings = &loaded.settings;
    let analyst = traderd::agent::analyst(loaded)?;
    let now = engine_time(store).unwrap_or_else(Utc::now);
    let parameters = traderd::agent::parameters_in_force(settings, store)?;
    let window = args.days.or(Some(settings.agent.window_days));
    if let Some(d) = args.days
        && d < 0
    {
        anyhow::bail!("--days must be 0 (all) or more; got {d}");
    }
    let input = traderd::agent::analysis_input(settings, store, now, window, parameters)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(analyst.analyze(store, &input))
        .context("the analyst")?;
    let id = agents_claude::Analyst::store_report(store, &report, "cli")?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(o) = value.as_object_mut() {
            o.insert("id".into(), id.into());
        }
        output::json(&value)?;
    } else {
        print_report(id, &report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine's clock: its last cycle from working memory (a replay's
/// simulated time), if the engine ran on this database.
fn engine_time(store: &Store) -> Option<DateTime<Utc>> {
    use core_domain::WorkingMemory;
    let value = store.recall(orchestrator::engine::keys::ENGINE).ok()??;
    serde_json::from_value::<orchestrator::Memory>(value)
        .ok()?
        .last_cycle
}

fn print_report(id: i64, r: &Report) {
    println!(
        "analyst report #{id} — source {} ({} closed trades{})",
        r.source.as_str(),
        r.closed_trades,
        r.window_days
            .map_or(String::new(), |d| format!(", last {d} days"))
    );
    if let Some(why) = &r.fallback_reason {
        println!("  statistical report: {why}");
    }
    println!();
    println!("{}", r.summary);
    if !r.insights.is_empty() {
        println!();
        println!("insights:");
        for i in &r.insights {
            let mark = if i.status == Status::Accepted {
                "-"
            } else {
                "x"
            };
            println!("  {mark} {}", i.text);
            if i.status == Status::Rejected {
                println!("      (citations do not match: {})", i.reason);
            }
        }
    }
    println!();
    if r.recommendations.is_empty() {
        println!("recommendations: none");
    } else {
        println!(
            "recommendations (an accepted one is a proposal for an experiment; the A/B test decides):"
        );
        for x in &r.recommendations {
            let status = match x.status {
                Status::Accepted => "ACCEPTED",
                Status::Rejected => "rejected",
            };
            println!(
                "  [{status}] {} {} -> {}: {}",
                x.parameter, x.from, x.to, x.rationale
            );
            println!("      {}", x.reason);
        }
    }
    if let Some(c) = &r.cost {
        println!();
        println!(
            "model {}: {} input + {} output tokens ({} cache read), estimated ${:.4}, {} attempt(s)",
            r.model.as_deref().unwrap_or("?"),
            c.usage.input_tokens,
            c.usage.output_tokens,
            c.usage.cache_read_input_tokens.unwrap_or(0),
            c.cost_usd,
            c.attempts
        );
    }
}

/// `trader-cli reports`: the stored reports, newest first, or one in full.
pub fn reports(json: bool, store: &Store, limit: i64, id: Option<i64>) -> Result<ExitCode> {
    if let Some(id) = id {
        let Some(r) = store.analyst_report(id)? else {
            anyhow::bail!("no analyst report #{id}; `trader-cli reports` lists them");
        };
        if json {
            output::json(&r)?;
        } else {
            match serde_json::from_value::<Report>(r.report.clone()) {
                Ok(report) => print_report(r.id, &report),
                Err(_) => output::json(&r.report)?,
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows = store.analyst_reports(limit)?;
    output::list(
        json,
        &rows,
        &[
            "id", "created", "trigger", "source", "accepted", "rejected", "cost $", "summary",
        ],
        |r| {
            let summary: String = r.summary.chars().take(70).collect();
            vec![
                r.id.to_string(),
                r.created_at.format("%Y-%m-%d %H:%M").to_string(),
                r.trigger.clone(),
                r.source.clone(),
                r.accepted.to_string(),
                r.rejected.to_string(),
                format!("{:.4}", r.cost_micros as f64 / 1e6),
                summary,
            ]
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
