//! A fake Messages API to try `trader-cli analyze --ai` by hand, offline:
//!
//! ```sh
//! cargo run -p agents-claude --example fake_messages_api -- 127.0.0.1:8787
//! ANTHROPIC_API_KEY=test ANTHROPIC_BASE_URL=http://127.0.0.1:8787 trader-cli analyze --ai --json
//! ```
//!
//! It answers every request from the statistics the request carries: an
//! insight citing the overall figures and, when an OTM slice outperforms
//! significantly, a recommendation moving `otm_min` 19% toward it
//! (grounded), one citing a wrong number and one shifting 50% (both
//! rejected by the grounding checks).

use agents_claude::fake::{FakeMessagesApi, FakeResponse, RecordedRequest};
use serde_json::{Value, json};

fn answer(request: &RecordedRequest) -> FakeResponse {
    let body = request.json();
    let text = body["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or("{}");
    let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let s = &doc["statistics"];
    let alpha = doc["learning_constraints"]["alpha"]
        .as_f64()
        .unwrap_or(0.05);
    let ev = |k: &str| json!({"stat": k, "value": s[k]});
    let overall: Vec<Value> = ["overall.trades", "overall.win_rate", "overall.mean_roi"]
        .iter()
        .filter(|k| s[**k].is_number())
        .map(|k| ev(k))
        .collect();
    let mut insights = vec![json!({
        "text": "Overall results of the window.",
        "evidence": overall
    })];
    let mut recommendations = Vec::new();
    let best = s
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let slice = k.strip_prefix("otm.")?.strip_suffix(".p_roi")?;
            let p = v.as_f64()?;
            let diff = s[format!("otm.{slice}.roi_diff")].as_f64()?;
            (p <= alpha && diff > 0.0).then(|| (slice.to_owned(), p))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some((slice, _)), Some(from)) = (best, doc["parameters"]["otm_min"].as_f64()) {
        let (lo, hi) = slice.split_once('-').unwrap_or(("0", "0"));
        let mid = (lo.parse::<f64>().unwrap_or(0.0) + hi.parse::<f64>().unwrap_or(0.0)) / 200.0;
        let step = if mid > from { 0.19 } else { -0.19 };
        let to = ((from * (1.0 + step)) * 10_000.0).round() / 10_000.0;
        let evidence = json!([
            ev(&format!("otm.{slice}.mean_roi")),
            ev(&format!("otm.{slice}.p_roi"))
        ]);
        insights.push(
            json!({"text": format!("{slice}% OTM outperforms the rest."), "evidence": evidence}),
        );
        recommendations.push(json!({"parameter": "otm_min", "from": from, "to": to,
            "rationale": format!("move toward the {slice}% OTM slice"), "evidence": evidence}));
        let wrong = s[format!("otm.{slice}.mean_roi")].as_f64().unwrap_or(1.0) * 2.0;
        recommendations.push(json!({"parameter": "otm_min", "from": from, "to": to,
            "rationale": "the same, citing a wrong number",
            "evidence": [{"stat": format!("otm.{slice}.mean_roi"), "value": wrong}]}));
        recommendations.push(
            json!({"parameter": "otm_min", "from": from, "to": from * 1.5,
            "rationale": "the same, too far", "evidence": evidence}),
        );
    }
    let answer = json!({
        "summary": "A fake analyst's answer, built from the statistics sent.",
        "insights": insights,
        "recommendations": recommendations,
    });
    FakeResponse::message(&answer.to_string(), "end_turn", 2_000, 500)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8787".into());
    let server = FakeMessagesApi::start_on(&addr, |r, _| answer(r)).await?;
    println!(
        "fake Messages API on {}; set ANTHROPIC_BASE_URL={} and any ANTHROPIC_API_KEY; Ctrl-C stops it",
        server.base_url(),
        server.base_url()
    );
    tokio::signal::ctrl_c().await?;
    println!("received {} request(s)", server.requests().len());
    Ok(())
}
