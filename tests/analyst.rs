//! `trader-cli analyze --ai --json` as a user runs it: without a key (the
//! statistical report, exit 0), against a fake Messages API named by
//! `ANTHROPIC_BASE_URL` (grounded recommendations accepted or rejected,
//! stored, listed by `trader-cli reports`), a refused key (a clear error,
//! exit 1) — and the key in no output, log, `config show` or database file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::{Command, Output};

use agents_claude::fake::{FakeMessagesApi, FakeResponse, RecordedRequest, sample_trades};
use core_domain::TradeRepository;
use serde_json::{Value, json};

const KEY: &str = "sk-ant-e2e-secret-7f3a9c";

fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = e2e::binary("trader-cli")
        .expect("trader-cli is not built; run `cargo test --workspace` (it builds the binaries)");
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(dir)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("TRADER_CONFIG")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A grounded answer built from the statistics the request carries: one
/// correct recommendation, one citing a wrong number, one shifting 50%.
fn answer_from(request: &RecordedRequest) -> FakeResponse {
    let body = request.json();
    let doc: Value = serde_json::from_str(
        body["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or("{}"),
    )
    .unwrap_or(Value::Null);
    let s = &doc["statistics"];
    let ev = |k: &str| json!({"stat": k, "value": s[k]});
    let good = json!([ev("otm.18-20.mean_roi"), ev("otm.18-20.p_roi")]);
    let wrong = json!([{"stat": "otm.18-20.mean_roi", "value": s["otm.18-20.mean_roi"].as_f64().unwrap_or(0.0) * 2.0}]);
    let answer = json!({
        "summary": "18-20% OTM earns more than the rest.",
        "insights": [{"text": "18-20% OTM outperforms", "evidence": good}],
        "recommendations": [
            {"parameter": "otm_min", "from": 0.15, "to": 0.18, "rationale": "toward 18-20%", "evidence": good},
            {"parameter": "otm_max", "from": 0.20, "to": 0.22, "rationale": "wider", "evidence": wrong},
            {"parameter": "otm_min", "from": 0.15, "to": 0.225, "rationale": "far toward 18-20%", "evidence": good}
        ]
    });
    FakeResponse::message(&answer.to_string(), "end_turn", 2000, 400)
}

fn assert_no_key_in(dir: &Path) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is in {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn analyze_ai_without_a_key_against_a_fake_api_and_with_a_refused_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = cli(d, &["init"], &[]);
    assert!(init.status.success(), "{}", text(&init));
    {
        let store =
            store::Store::open_and_migrate(d.join("data/trader.db").to_str().unwrap()).unwrap();
        for t in sample_trades(90) {
            store.insert_trade(&t).unwrap();
        }
    }
    // Every trade of the sample closed in 2026; read them all.
    let all = ["--days", "0"];

    // 1. No key: the statistical report, exit 0.
    let out = cli(d, &["analyze", "--ai", "--json", all[0], all[1]], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "statistics");
    assert!(
        v["fallback_reason"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY")
    );
    assert_eq!(v["closed_trades"], 90);
    assert!(v["statistics"]["otm.18-20.mean_roi"].is_number());

    // 2. A fake Messages API.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeMessagesApi::start(|r, _| answer_from(r)))
        .unwrap();
    let env = [
        ("ANTHROPIC_API_KEY", KEY),
        ("ANTHROPIC_BASE_URL", server.base_url()),
    ];
    let out = cli(d, &["analyze", "--ai", "--json", all[0], all[1]], &env);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "claude", "{v}");
    let recs = v["recommendations"].as_array().unwrap();
    let status: Vec<&str> = recs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["accepted", "rejected", "rejected"], "{v}");
    assert!(
        recs[1]["reason"]
            .as_str()
            .unwrap()
            .contains("computed value")
    );
    assert!(recs[2]["reason"].as_str().unwrap().contains("shift"));
    assert_eq!(v["cost"]["usage"]["input_tokens"], 2000);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("x-api-key"), Some(KEY));
    assert_eq!(reqs[0].header("anthropic-version"), Some("2023-06-01"));
    // Only statistics and parameters left the machine.
    assert!(!reqs[0].body.contains("T-1"));
    assert!(!reqs[0].body.contains("XOM"));

    // The human-readable form of the same.
    let out = cli(d, &["analyze", "--ai", all[0], all[1]], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("[ACCEPTED] otm_min 0.15 -> 0.18"),
        "{}",
        text(&out)
    );

    // 3. Stored and listed; the accepted one is a proposal.
    let out = cli(d, &["reports", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["source"], "claude");
    assert_eq!(list[2]["source"], "statistics");
    let out = cli(d, &["learning-history", "--json"], &[]);
    let history = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(history.contains("proposal_received"), "{history}");

    // 4. A refused key: a clear error, exit 1.
    let refusing = rt
        .block_on(FakeMessagesApi::scripted(vec![FakeResponse::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )]))
        .unwrap();
    let env401 = [
        ("ANTHROPIC_API_KEY", KEY),
        ("ANTHROPIC_BASE_URL", refusing.base_url()),
    ];
    let out = cli(d, &["analyze", "--ai", "--json"], &env401);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains("ANTHROPIC_API_KEY"),
        "{err}"
    );
    assert!(!text(&out).contains(KEY));

    // 5. The key is in no output, no `config show`, no log, no database.
    let show = cli(d, &["config", "show"], &env);
    assert!(show.status.success());
    assert!(text(&show).contains("redacted"), "{}", text(&show));
    assert!(!text(&show).contains(KEY));
    drop(server);
    assert_no_key_in(d);
}

fn traderd(dir: &Path, env: &[(&str, &str)]) -> Output {
    let bin = e2e::binary("traderd")
        .expect("traderd is not built; run `cargo test --workspace` (it builds the binaries)");
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("TRADER_CONFIG")
        .env("TRADER__BROKER__SIM__REPLAY__FROM", "2020-01-02")
        .env("TRADER__BROKER__SIM__REPLAY__TO", "2020-02-07")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The weekly run inside traderd: off in a replay without a key; with one,
/// a report every Saturday of the replay's clock, and the same trades as
/// without it.
#[test]
fn traderd_runs_the_weekly_analysis_only_with_a_key_and_trades_the_same() {
    let plain = tempfile::tempdir().unwrap();
    let out = traderd(plain.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeMessagesApi::scripted(vec![FakeResponse::message(
            &json!({"summary": "quiet weeks", "insights": [], "recommendations": []}).to_string(),
            "end_turn",
            1500,
            50,
        )]))
        .unwrap();
    let keyed = tempfile::tempdir().unwrap();
    let out = traderd(
        keyed.path(),
        &[
            ("ANTHROPIC_API_KEY", KEY),
            ("ANTHROPIC_BASE_URL", server.base_url()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    let reports = |d: &Path| -> Vec<Value> {
        let o = cli(d, &["reports", "--json"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(reports(plain.path()).is_empty());
    let weekly = reports(keyed.path());
    // Saturdays 2020-01-04 … 2020-02-01 of the replay.
    assert_eq!(weekly.len(), 5, "{weekly:?}");
    assert!(
        weekly
            .iter()
            .all(|r| r["trigger"] == "weekly" && r["source"] == "claude")
    );
    assert_eq!(server.requests().len(), 5);
    let trades = |d: &Path| {
        let o = cli(d, &["trades", "--json", "--limit", "1000"], &[]);
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert_eq!(trades(plain.path()), trades(keyed.path()));
    drop(server);
    assert_no_key_in(keyed.path());
}

/// `[agent] decide = true` with a model that never wants entries: the
/// reasoner's choice is carried out (no trade is opened) and recorded.
#[test]
fn traderd_with_the_reasoner_follows_the_models_narrower_choice() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeMessagesApi::start(|r, _| {
            let body = r.json();
            if body["tools"].is_array() {
                // Everything the rules allow but entries.
                let first: Value = serde_json::from_str(
                    body["messages"][0]["content"][0]["text"]
                        .as_str()
                        .unwrap_or("{}"),
                )
                .unwrap_or(Value::Null);
                let actions: Vec<&str> = first["allowed_actions"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| *a != "scan_entries")
                    .collect();
                FakeResponse::message(
                    &json!({"actions": actions, "reason": "no new risk this week"}).to_string(),
                    "end_turn",
                    300,
                    20,
                )
            } else {
                FakeResponse::message(
                    &json!({"summary": "s", "insights": [], "recommendations": []}).to_string(),
                    "end_turn",
                    100,
                    10,
                )
            }
        }))
        .unwrap();
    let window = [
        ("TRADER__BROKER__SIM__REPLAY__FROM", "2020-08-17"),
        ("TRADER__BROKER__SIM__REPLAY__TO", "2020-08-21"),
    ];
    let count = |d: &Path| {
        let o = cli(d, &["trades", "--json"], &[]);
        let trades: Value = serde_json::from_slice(&o.stdout).unwrap();
        trades.as_array().unwrap().len()
    };
    // The rules alone open trades in this window.
    let rules = tempfile::tempdir().unwrap();
    let out = traderd(rules.path(), &window);
    assert!(out.status.success(), "{}", text(&out));
    assert!(count(rules.path()) > 0);
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("ANTHROPIC_API_KEY", KEY),
        ("ANTHROPIC_BASE_URL", server.base_url()),
        ("TRADER__AGENT__DECIDE", "true"),
    ];
    env.extend(window);
    let out = traderd(dir.path(), &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(dir.path()), 0);
    let o = cli(
        dir.path(),
        &["decisions", "--json", "--limit", "100000"],
        &[],
    );
    let decisions: Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_model: Vec<&Value> = decisions
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["subject"] == "claude")
        .collect();
    assert!(
        !by_model.is_empty(),
        "{} requests; {}",
        server.requests().len(),
        serde_json::to_string(&decisions[0]).unwrap()
    );
    assert_eq!(by_model[0]["reason"], "no new risk this week");
    assert!(by_model.iter().any(|d| {
        d["context"]["rules_choice"]
            .as_str()
            .unwrap()
            .contains("scan_entries")
    }));
    assert!(
        by_model
            .iter()
            .all(|d| !d["decision"].as_str().unwrap().contains("scan_entries"))
    );
    assert!(by_model[0]["context"]["input_tokens"].as_u64().unwrap() > 0);
}
