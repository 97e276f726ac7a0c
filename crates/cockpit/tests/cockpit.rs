//! The cockpit against a real database and real HTTP on loopback: the
//! token guards every state change (and nothing changes without it), the
//! emergency stop is recorded with the actor "dashboard", the inbound SMS
//! webhook checks the signature and the number, `/metrics` is Prometheus
//! text, and notifications reach a webhook once — or are retried and the
//! failure audited when the listener fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::Utc;
use core_domain::{AuditEntry, AuditRepository};
use serde_json::{Value, json};
use store::Store;

const TOKEN: &str = "test-token-0123456789";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    cockpit: cockpit::Cockpit,
    base: String,
    http: reqwest::Client,
}

async fn fixture(configure: impl FnOnce(&mut settings::Settings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Arc::new(Store::open_and_migrate(&url).unwrap());
    let mut s = settings::Settings::default();
    s.database.url = url;
    s.dashboard.bind = "127.0.0.1:0".into();
    s.dashboard.refresh_secs = 1;
    s.notifications.retry_initial_ms = 20;
    s.notifications.retry_max_ms = 40;
    s.notifications.max_attempts = 3;
    s.notifications.timeout_secs = 2;
    configure(&mut s);
    let secrets = cockpit::Secrets {
        dashboard_token: Some(TOKEN.into()),
        channels: cockpit::notify::ChannelSecrets {
            sms_token: Some("twilio-auth-token".into()),
            ..Default::default()
        },
        inbound_secret: None,
    };
    let cockpit = cockpit::start(&s, Arc::clone(&store), Arc::new(|| true), secrets)
        .await
        .unwrap();
    let base = format!("http://{}", cockpit.addr.unwrap());
    Fixture {
        _dir: dir,
        store,
        cockpit,
        base,
        http: reqwest::Client::new(),
    }
}

fn state(store: &Store) -> Option<String> {
    store.trading_state().unwrap().map(|r| r.state.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_emergency_stop_needs_the_token_and_is_recorded_as_the_dashboard() {
    let f = fixture(|_| {}).await;
    let url = format!("{}/api/emergency-stop", f.base);
    let body = json!({"reason": "test", "flatten": false});
    // No token, a wrong token: refused, nothing recorded.
    let r = f.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = f
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(state(&f.store), None);
    assert!(f.store.pending_control_requests().unwrap().is_empty());
    // A cross-site form post (no JSON, no header) cannot do it either.
    let r = f
        .http
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("reason=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // With the token: halted, queued, audited as "dashboard".
    let r = f
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "test", "flatten": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "halted");
    assert_eq!(state(&f.store).as_deref(), Some("halted"));
    let pending = f.store.pending_control_requests().unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].flatten);
    assert_eq!(pending[0].actor, "dashboard");
    let audit = f.store.recent_audit(5).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "emergency_stop" && a.actor == "dashboard")
    );
    // Resume likewise.
    let r = f
        .http
        .post(format!("{}/api/resume", f.base))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(state(&f.store).as_deref(), Some("active"));
    // The pages and the API read without a token on loopback.
    for path in [
        "/",
        "/positions",
        "/orders",
        "/fills",
        "/trades",
        "/equity",
        "/decisions",
        "/experiments",
        "/patterns",
        "/learning",
        "/audit",
        "/notifications",
        "/health",
    ] {
        let r = f
            .http
            .get(format!("{}{path}", f.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let html = r.text().await.unwrap();
        assert!(!html.contains(TOKEN), "{path} shows the token");
    }
    let v: Value = f
        .http
        .get(format!("{}/api/status", f.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["trading_state"]["state"], "active");
    assert_eq!(v["breakers"][0]["name"], "daily_loss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_auth_failures_are_rate_limited() {
    let f = fixture(|s| s.dashboard.max_auth_failures_per_minute = 3).await;
    let url = format!("{}/api/resume", f.base);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = f
            .http
            .post(&url)
            .bearer_auth("nope")
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, vec![401, 401, 401, 429, 429]);
    // Even the right token waits out the minute.
    let r = f
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(state(&f.store), None);
}

fn signed_form(params: &[(&str, &str)], url: &str, token: &str) -> (String, String) {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = cockpit::web::inbound::twilio_signature(token, url, &owned);
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    (body, sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_inbound_stop_trading_needs_the_signature_and_a_known_number() {
    let public = "https://trader.example.org/sms/inbound";
    let f = fixture(|s| {
        s.notifications.inbound.enabled = true;
        s.notifications.inbound.allowed_numbers = "+15550001111".into();
        s.notifications.inbound.public_url = public.into();
    })
    .await;
    let url = format!("{}/sms/inbound", f.base);
    let post = |body: String, sig: String| {
        f.http
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", sig)
            .body(body)
            .send()
    };
    // Wrong signature (signed with another key).
    let (body, sig) = signed_form(
        &[("From", "+15550001111"), ("Body", "STOP TRADING")],
        public,
        "another-key",
    );
    assert_eq!(
        post(body, sig).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // Right signature, unknown number.
    let (body, sig) = signed_form(
        &[("From", "+15559999999"), ("Body", "STOP TRADING")],
        public,
        "twilio-auth-token",
    );
    assert_eq!(
        post(body, sig).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(state(&f.store), None);
    assert!(f.store.pending_control_requests().unwrap().is_empty());
    // STATUS answers without changing anything.
    let (body, sig) = signed_form(
        &[("From", "+15550001111"), ("Body", "status")],
        public,
        "twilio-auth-token",
    );
    let r = post(body, sig).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Trading active"));
    assert_eq!(state(&f.store), None);
    // Valid: halts, answered, audited with the number.
    let (body, sig) = signed_form(
        &[
            ("From", "+15550001111"),
            ("Body", "STOP TRADING"),
            ("To", "+15550002222"),
        ],
        public,
        "twilio-auth-token",
    );
    let r = post(body, sig).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("<Response><Message>Trading halted"), "{text}");
    assert_eq!(state(&f.store).as_deref(), Some("halted"));
    let pending = f.store.pending_control_requests().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].actor, "sms:+15550001111");
}

/// Checks every line of an OpenMetrics / Prometheus text exposition.
fn assert_prometheus_text(text: &str) {
    let mut samples = 0;
    let mut types = 0;
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "{line}");
            let name = parts.next().unwrap();
            assert!(valid_name(name), "{line}");
            if kind == "TYPE" {
                types += 1;
                let t = parts.next().unwrap();
                assert!(
                    [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "info",
                        "stateset",
                        "unknown",
                        "gaugehistogram"
                    ]
                    .contains(&t),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "{line}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').unwrap();
                assert!(valid_name(k), "{line}");
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        samples += 1;
    }
    assert!(text.trim_end().ends_with("# EOF"));
    assert!(samples > 10 && types > 10, "{text}");
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_metrics_are_prometheus_text_with_the_loop_and_database_figures() {
    let f = fixture(|_| {}).await;
    {
        use orchestrator::CycleObserver;
        let mut obs = f.cockpit.observer(|_| {});
        obs.waiting(Utc::now(), Duration::from_secs(60));
        let report = orchestrator::CycleReport {
            fills: 2,
            open_trades: 3,
            net_liquidation_cents: 10_000_012,
            ..Default::default()
        };
        obs.cycle_done(&report, Duration::from_millis(12));
    }
    let r = f
        .http
        .get(format!("{}/metrics", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    assert_prometheus_text(&text);
    for want in [
        "trader_cycles_total 1",
        "trader_fills_total 2",
        "trader_open_positions 3",
        "trader_net_liquidation_usd 100000.12",
        "trader_cycle_duration_seconds_count 1",
        "trader_trading_state{state=\"active\"} 1",
        "trader_breaker_tripped{breaker=\"daily_loss\"} 0",
        "trader_broker_connected 1",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let r = f
        .http
        .get(format!("{}/readyz", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A webhook listener that answers `status` and keeps every body.
async fn listener(status: StatusCode) -> (String, Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (g, h) = (Arc::clone(&got), Arc::clone(&hits));
    let app = Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let (g, h) = (Arc::clone(&g), Arc::clone(&h));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                g.lock().unwrap().push(v);
                status
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got, hits)
}

fn trip(store: &Store) {
    store
        .append_audit(
            &AuditEntry::new(Utc::now(), "risk", "risk.state_change")
                .context(json!({
                    "from": "active",
                    "cause": "daily loss breaker: net liquidation 100000.00 -> 97900.00 (-2.1000%) <= -2.0000%"
                }))
                .decision("halted"),
        )
        .unwrap();
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_breaker_trip_reaches_the_webhook_once_with_its_numbers() {
    let (url, got, hits) = listener(StatusCode::OK).await;
    let f = fixture(|s| {
        s.notifications.webhook.enabled = true;
        s.notifications.webhook.url = url;
    })
    .await;
    // Let the follower take its starting point, then trip.
    tokio::time::sleep(Duration::from_millis(400)).await;
    trip(&f.store);
    wait_for(|| hits.load(Ordering::SeqCst) >= 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let v = got.lock().unwrap()[0].clone();
    assert_eq!(v["event"], "breaker_trip");
    assert_eq!(v["severity"], "critical");
    assert!(v["reason"].as_str().unwrap().contains("daily loss breaker"));
    assert_eq!(v["numbers"]["net_liq_usd"], 97_900.0);
    assert_eq!(v["numbers"]["daily_change_pct"], -2.1);
    let attempts = f.store.recent_notifications(10).unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].ok && attempts[0].is_final);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_failing_webhook_is_retried_and_its_failure_audited() {
    let (url, _got, hits) = listener(StatusCode::INTERNAL_SERVER_ERROR).await;
    let f = fixture(|s| {
        s.notifications.webhook.enabled = true;
        s.notifications.webhook.url = url;
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    trip(&f.store);
    let store = Arc::clone(&f.store);
    wait_for(|| {
        store
            .recent_audit(20)
            .unwrap()
            .iter()
            .any(|a| a.action == "notification.failed")
    })
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 3, "max_attempts = 3");
    let attempts = f.store.recent_notifications(10).unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| !a.ok));
    assert_eq!(attempts.iter().filter(|a| a.is_final).count(), 1);
    assert!(attempts[0].detail.contains("HTTP 500"));
    let status = f.cockpit.notifier.as_ref().unwrap().status();
    assert!(status[0].dead, "{status:?}");
    // The dashboard shows the dead channel.
    let v: Value = f
        .http
        .get(format!("{}/api/notifications", f.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["channels"][0]["dead"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_off_loopback_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Arc::new(Store::open_and_migrate(&url).unwrap());
    let mut s = settings::Settings::default();
    s.dashboard.bind = "0.0.0.0:0".into();
    let e = cockpit::start(&s, store, Arc::new(|| true), cockpit::Secrets::default())
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("TRADER_DASHBOARD_TOKEN"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_the_analyst_reports_are_a_page_and_an_api() {
    let f = fixture(|_| {}).await;
    // Before any report: the page says how to get one.
    let page = f
        .http
        .get(format!("{}/analyst", f.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("No report yet"), "{page}");
    let report = json!({
        "summary": "Energy puts lost money in March",
        "insights": [{"text": "stops cluster in high VIX", "evidence": [{"stat": "vix.30+.mean_roi", "value": -0.05}]}],
        "recommendations": [{"parameter": "otm_min", "from": 0.15, "to": 0.17, "status": "rejected", "reason": "not supported by the local statistics", "rationale": "deeper OTM"}],
    });
    let id = f
        .store
        .record_analyst_report(
            &store::NewAnalystReport {
                created_at: "2020-03-14T14:00:00Z".parse().unwrap(),
                source: "claude".into(),
                trigger: "weekly".into(),
                model: Some("claude-sonnet-5-5".into()),
                summary: "Energy puts lost money in March".into(),
                accepted: 0,
                rejected: 1,
                cost_micros: 1234,
                fallback_reason: None,
                report,
            },
            &[],
        )
        .unwrap();
    let api: Value = f
        .http
        .get(format!("{}/api/analyst-reports", f.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["reports"][0]["id"], json!(id));
    assert_eq!(api["reports"][0]["trigger"], json!("weekly"));
    let page = f
        .http
        .get(format!("{}/analyst", f.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "Energy puts lost money in March",
        "stops cluster in high VIX",
        "not supported by the local statistics",
        "otm_min",
    ] {
        assert!(page.contains(want), "the page lacks {want:?}");
    }
}
