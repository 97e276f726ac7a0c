//! The analyst against a fake Messages API on loopback: the request's
//! exact form, the retry policy, every fallback, and the grounding checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agents_claude::analysis::{AnalysisInput, Source, Status};
use agents_claude::fake::{FakeMessagesApi, FakeResponse, sample_trades};
use agents_claude::{AgentConfig, Analyst, AnalystError, ApiError, ApiKey, Pricing, RetryPolicy};
use chrono::{TimeZone, Utc};
use core_domain::{LearningEventType, LearningRepository};
use learning::experiments::{Governor, ParameterSet};
use learning::patterns::PatternParams;
use serde_json::{Value, json};
use store::Store;

const KEY: &str = "sk-ant-test-key-do-not-leak-42";

fn config(base_url: &str, deadline: Duration) -> AgentConfig {
    AgentConfig {
        enabled: true,
        model: "claude-test-model".into(),
        max_tokens: 1024,
        base_url: base_url.into(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            deadline,
        },
        monthly_budget_usd: 10.0,
        pricing: Pricing {
            input_per_mtok: 2.0,
            output_per_mtok: 10.0,
        },
    }
}

fn analyst(server: &FakeMessagesApi) -> Analyst {
    Analyst::new(
        config(server.base_url(), Duration::from_secs(5)),
        ApiKey::new(KEY),
    )
    .unwrap()
}

fn input() -> AnalysisInput {
    AnalysisInput {
        now: Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap(),
        window_days: None,
        trades: sample_trades(90),
        parameters: ParameterSet::naked_put_defaults(),
        governor: Governor {
            min_days_between_changes: 30,
            max_shift: 0.2,
        },
        history: Vec::new(),
        experiments: Vec::new(),
        pattern_params: PatternParams::default(),
    }
}

fn stat(input: &AnalysisInput, key: &str) -> f64 {
    input
        .statistics()
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing"))
}

/// An answer recommending `otm_min` 0.15 → `to`, citing `evidence`.
fn answer(to: f64, evidence: Value) -> String {
    json!({
        "summary": "The 18-20% OTM bucket earns more.",
        "insights": [{"text": "18-20% OTM outperforms", "evidence": evidence}],
        "recommendations": [{
            "parameter": "otm_min", "from": 0.15, "to": to,
            "rationale": "move toward the bucket that earns more",
            "evidence": evidence
        }]
    })
    .to_string()
}

fn good_evidence(input: &AnalysisInput) -> Value {
    json!([
        {"stat": "otm.18-20.mean_roi", "value": stat(input, "otm.18-20.mean_roi")},
        {"stat": "otm.18-20.p_roi", "value": stat(input, "otm.18-20.p_roi")}
    ])
}

fn store() -> Store {
    Store::open_and_migrate(":memory:").unwrap()
}

fn ok_message(text: &str) -> FakeResponse {
    FakeResponse::message(text, "end_turn", 1200, 300)
}

#[tokio::test]
async fn the_request_has_the_exact_form_and_headers() {
    let input = input();
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.18, good_evidence(&input)))])
        .await
        .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.source, Source::Claude);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["model"], "claude-test-model");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["system"][0]["type"], "text");
    assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
    let format = &body["output_config"]["format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["schema"]["additionalProperties"], false);
    assert_eq!(
        format["schema"]["required"],
        json!(["summary", "insights", "recommendations"])
    );
    // The first user message's text is exactly one JSON document.
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["role"], "user");
    let text = body["messages"][0]["content"][0]["text"].as_str().unwrap();
    let doc: Value = serde_json::from_str(text).unwrap();
    let stats = doc["statistics"].as_object().unwrap();
    assert!(stats.values().all(Value::is_number));
    for k in [
        "overall.win_rate",
        "overall.trades",
        "otm.18-20.trades",
        "sector.Energy.mean_roi",
        "dte.6-8.trades",
        "weekday.Monday.trades",
        "regime.bull_quiet.trades",
        "winners.trades",
    ] {
        assert!(stats.contains_key(k), "{k} missing from {stats:?}");
    }
    assert_eq!(doc["parameters"]["otm_min"], 0.15);
    assert_eq!(doc["learning_constraints"]["max_shift"], 0.2);
    assert!(doc["running_experiments"].is_array());
    // Privacy: statistics and parameters only.
    for banned in ["T-1", "XOM", "account", "DU", KEY] {
        assert!(!text.contains(banned), "{banned} sent");
    }
    // Usage and cost are recorded.
    let cost = report.cost.unwrap();
    assert_eq!(cost.usage.input_tokens, 1200);
    assert!((cost.cost_usd - (1200.0 * 2.0 + 300.0 * 10.0) / 1e6).abs() < 1e-12);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried() {
    let input = input();
    let server = FakeMessagesApi::scripted(vec![
        FakeResponse::error(429, "rate_limit_error", "slow down").with_header("retry-after", "0"),
        ok_message(&answer(0.18, good_evidence(&input))),
    ])
    .await
    .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.source, Source::Claude);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(report.cost.unwrap().attempts, 2);
}

#[tokio::test]
async fn a_429_without_retry_after_is_not_retried_and_falls_back() {
    let input = input();
    let server =
        FakeMessagesApi::scripted(vec![FakeResponse::error(429, "rate_limit_error", "quota")])
            .await
            .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
    assert_eq!(server.requests().len(), 1);
    assert!(report.fallback_reason.unwrap().contains("429"));
}

#[tokio::test]
async fn a_529_storm_then_success() {
    let input = input();
    let overloaded = FakeResponse::error(529, "overloaded_error", "Overloaded");
    let server = FakeMessagesApi::scripted(vec![
        overloaded.clone(),
        overloaded.clone(),
        overloaded,
        ok_message(&answer(0.18, good_evidence(&input))),
    ])
    .await
    .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.source, Source::Claude);
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_529_until_the_deadline_falls_back_to_the_statistics() {
    let input = input();
    let server = FakeMessagesApi::scripted(vec![FakeResponse::error(
        529,
        "overloaded_error",
        "Overloaded",
    )])
    .await
    .unwrap();
    let mut cfg = config(server.base_url(), Duration::from_millis(40));
    cfg.retry.max_retries = 1_000;
    cfg.retry.base_delay = Duration::from_millis(5);
    cfg.retry.max_delay = Duration::from_millis(10);
    let a = Analyst::new(cfg, ApiKey::new(KEY)).unwrap();
    let report = a.analyze(&store(), &input).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
    let reason = report.fallback_reason.clone().unwrap();
    assert!(reason.contains("529"), "{reason}");
    let n = server.requests().len();
    assert!((2..1_000).contains(&n), "{n} attempts");
    // The statistical report has the same structure.
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["source"], "statistics");
    assert!(v["insights"].is_array() && v["recommendations"].is_array());
    assert!(v["statistics"]["overall.win_rate"].is_number());
}

#[tokio::test]
async fn a_401_is_a_clear_configuration_error() {
    let server = FakeMessagesApi::scripted(vec![FakeResponse::error(
        401,
        "authentication_error",
        "invalid x-api-key",
    )])
    .await
    .unwrap();
    let err = analyst(&server)
        .analyze(&store(), &input())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AnalystError::Api(ApiError::Authentication { .. })
    ));
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("ANTHROPIC_API_KEY"),
        "{text}"
    );
    assert!(!text.contains(KEY));
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn a_refusal_falls_back() {
    let server = FakeMessagesApi::scripted(vec![FakeResponse::message("", "refusal", 100, 5)])
        .await
        .unwrap();
    let s = store();
    let report = analyst(&server).analyze(&s, &input()).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
    assert!(report.fallback_reason.unwrap().contains("refused"));
    // The call's tokens still count.
    assert!(
        s.agent_spend_micros_since(Utc.timestamp_opt(0, 0).unwrap())
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn max_tokens_with_truncated_json_falls_back() {
    let input = input();
    let full = answer(0.18, good_evidence(&input));
    let cut = &full[..full.len() / 2];
    let server =
        FakeMessagesApi::scripted(vec![FakeResponse::message(cut, "max_tokens", 1000, 1024)])
            .await
            .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
    assert!(report.fallback_reason.unwrap().contains("max_tokens"));
}

#[tokio::test]
async fn an_answer_breaking_the_schema_falls_back() {
    let bad = json!({"summary": "x", "insights": [], "recommendations": [
        {"parameter": "otm_min", "from": 0.15, "to": "0.18", "rationale": "r", "evidence": []}
    ]})
    .to_string();
    let server = FakeMessagesApi::scripted(vec![ok_message(&bad)])
        .await
        .unwrap();
    let report = analyst(&server).analyze(&store(), &input()).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
    assert!(report.fallback_reason.unwrap().contains("schema"));
    // An extra field breaks it too (additionalProperties: false).
    let extra =
        json!({"summary": "x", "insights": [], "recommendations": [], "mood": "good"}).to_string();
    let server = FakeMessagesApi::scripted(vec![ok_message(&extra)])
        .await
        .unwrap();
    let report = analyst(&server).analyze(&store(), &input()).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
}

#[tokio::test]
async fn a_recommendation_citing_a_wrong_number_is_rejected() {
    let input = input();
    let real = stat(&input, "otm.18-20.mean_roi");
    let evidence = json!([
        {"stat": "otm.18-20.mean_roi", "value": real * 1.5},
        {"stat": "otm.18-20.p_roi", "value": stat(&input, "otm.18-20.p_roi")}
    ]);
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.18, evidence))])
        .await
        .unwrap();
    let s = store();
    let report = analyst(&server).analyze(&s, &input).await.unwrap();
    assert_eq!(report.source, Source::Claude);
    let r = &report.recommendations[0];
    assert_eq!(r.status, Status::Rejected);
    assert!(r.reason.contains("otm.18-20.mean_roi"), "{}", r.reason);
    assert_eq!(report.insights[0].status, Status::Rejected);
    let id = Analyst::store_report(&s, &report, "cli").unwrap();
    assert!(id > 0);
    assert!(
        s.learning_history(100).unwrap().is_empty(),
        "nothing proposed"
    );
}

#[tokio::test]
async fn a_fifty_percent_shift_with_right_numbers_is_rejected() {
    let input = input();
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.225, good_evidence(&input)))])
        .await
        .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    let r = &report.recommendations[0];
    assert_eq!(r.status, Status::Rejected);
    assert!(r.reason.contains("50.0% shift"), "{}", r.reason);
    assert_eq!(report.insights[0].status, Status::Accepted);
}

#[tokio::test]
async fn a_grounded_recommendation_is_accepted_and_proposed_as_an_experiment() {
    let input = input();
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.18, good_evidence(&input)))])
        .await
        .unwrap();
    let s = store();
    let report = analyst(&server).analyze(&s, &input).await.unwrap();
    let r = &report.recommendations[0];
    assert_eq!(r.status, Status::Accepted, "{}", r.reason);
    let id = Analyst::store_report(&s, &report, "cli").unwrap();
    let stored = s.analyst_report(id).unwrap().unwrap();
    assert_eq!(stored.source, "claude");
    assert_eq!(stored.accepted, 1);
    assert_eq!(stored.report["recommendations"][0]["status"], "accepted");
    let history = s.learning_history(10).unwrap();
    assert_eq!(history.len(), 1);
    let e = &history[0];
    assert_eq!(e.event_type, LearningEventType::ProposalReceived);
    assert_eq!(e.parameter_changed.as_deref(), Some("otm_min"));
    assert_eq!(e.new_value.as_deref(), Some(r#"{"otm_min":0.18}"#));
    assert!(e.reasoning.contains("not applied"));
    assert_eq!(s.analyst_reports(10).unwrap().len(), 1);
}

#[tokio::test]
async fn a_supported_direction_is_required_and_one_change_per_thirty_days() {
    // Away from the outperforming bucket: the numbers are right, the
    // direction is not.
    let mut input = input();
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.13, good_evidence(&input)))])
        .await
        .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.recommendations[0].status, Status::Rejected);
    assert!(report.recommendations[0].reason.contains("do not support"));
    // A change adopted ten days ago blocks any recommendation.
    input.history.push(core_domain::LearningEvent {
        event_type: LearningEventType::ParameterAdopted,
        event_date: input.now - chrono::Duration::days(10),
        pattern_name: None,
        confidence: None,
        sample_size: None,
        parameter_changed: Some("dte_max".into()),
        old_value: Some("14".into()),
        new_value: Some("12".into()),
        reasoning: "adopted".into(),
    });
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.18, good_evidence(&input)))])
        .await
        .unwrap();
    let report = analyst(&server).analyze(&store(), &input).await.unwrap();
    assert_eq!(report.recommendations[0].status, Status::Rejected);
    assert!(report.recommendations[0].reason.contains("30 days"));
}

#[tokio::test]
async fn without_a_key_the_statistical_report_and_no_call() {
    let a = Analyst::new(config("http://127.0.0.1:9", Duration::from_secs(1)), None).unwrap();
    let report = a.analyze(&store(), &input()).await.unwrap();
    assert_eq!(report.source, Source::Statistics);
    assert!(
        report
            .fallback_reason
            .unwrap()
            .contains("ANTHROPIC_API_KEY")
    );
    assert!(report.recommendations.is_empty());
    assert!(
        report
            .insights
            .iter()
            .any(|i| i.text.contains("otm.18-20") && i.text.contains("outperforms")),
        "{:?}",
        report.insights
    );
}

#[tokio::test]
async fn the_key_is_not_in_the_database() {
    let input = input();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = Store::open_and_migrate(path.to_str().unwrap()).unwrap();
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.18, good_evidence(&input)))])
        .await
        .unwrap();
    let a = analyst(&server);
    assert!(!format!("{a:?}").contains(KEY));
    let report = a.analyze(&s, &input).await.unwrap();
    Analyst::store_report(&s, &report, "cli").unwrap();
    drop(s);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is in the database files"
        );
    }
}

#[tokio::test]
async fn the_monthly_spend_cap_stops_calls() {
    let input = input();
    let server = FakeMessagesApi::scripted(vec![ok_message(&answer(0.18, good_evidence(&input)))])
        .await
        .unwrap();
    let s = store();
    let mut cfg = config(server.base_url(), Duration::from_secs(1));
    cfg.monthly_budget_usd = 0.005;
    let a = Analyst::new(cfg, ApiKey::new(KEY)).unwrap();
    assert_eq!(a.analyze(&s, &input).await.unwrap().source, Source::Claude);
    // 1200 in + 300 out = $0.0054 spent: over the cap.
    let second = a.analyze(&s, &input).await.unwrap();
    assert_eq!(second.source, Source::Statistics);
    assert!(second.fallback_reason.unwrap().contains("spend cap"));
    assert_eq!(server.requests().len(), 1);
}
