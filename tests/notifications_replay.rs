//! Notifications from a real replay: `traderd` with `[notifications]`
//! pointing at a webhook listener on loopback and a daily-loss breaker
//! tight enough to trip in the first days. One trip gives exactly one
//! delivery with the event, the reason and the numbers; a listener that
//! fails (slowly) gets every retry and an audited failure, and the engine
//! loop takes no longer for it (the same trades, about the same time).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use core_domain::{AuditRepository, TradeFilter, TradeRepository};
use serde_json::Value;

struct Listener {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
}

/// A webhook listener answering `status` after `delay`.
fn listener(rt: &tokio::runtime::Runtime, status: StatusCode, delay: Duration) -> Listener {
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
                tokio::time::sleep(delay).await;
                status
            }
        }),
    );
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    rt.spawn(async move { axum::serve(l, app).await.unwrap() });
    Listener {
        url: format!("http://{addr}/hook"),
        got,
        hits,
    }
}

/// Runs the replay to its end with the webhook at `url`; returns the
/// loop's wall time as traderd reports it ("done in X s").
fn replay(dir: &Path, url: &str) -> f64 {
    std::fs::write(
        dir.join("trader.toml"),
        format!(
            "[strategy]\notm_range = {{ min = 0.05, max = 0.25 }}\npremium_range = {{ min = 0.05, max = 5.0 }}\n\
             dte_range = {{ min = 5, max = 30 }}\nmax_positions = 6\nmin_open_interest = 0\nmax_spread_pct = 1.0\n\
             [risk]\nmax_sector_concentration = 1.0\nmax_correlation = 1.0\nmax_portfolio_var_95 = 1.0\n\
             [circuit_breakers.daily_loss]\nthreshold = -0.0001\n\
             [dashboard]\nbind = \"127.0.0.1:0\"\n[logging]\nfile = false\n\
             [notifications]\ndaily_summary = false\nmax_attempts = 3\nretry_initial_ms = 200\nretry_max_ms = 400\ntimeout_secs = 5\n\
             [notifications.webhook]\nenabled = true\nurl = \"{url}\"\nmin_severity = \"critical\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(e2e::binary("traderd").expect("traderd is not built"))
        .args(["--from", "2020-02-03", "--to", "2020-02-14", "--quiet"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.split(": done in ").nth(1))
        .and_then(|x| x.trim_end_matches(" s").trim().parse().ok())
        .unwrap_or_else(|| panic!("no timing in {text}"))
}

fn store(dir: &Path) -> store::Store {
    store::Store::open(dir.join("data/trader.db").to_str().unwrap()).unwrap()
}

fn trades(dir: &Path) -> Vec<String> {
    store(dir)
        .trades(&TradeFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| format!("{} {:?}", t.trade_id, t.profit_loss))
        .collect()
}

#[test]
fn test_a_daily_loss_trip_is_notified_once_and_a_failing_webhook_is_retried_without_slowing_the_loop()
 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // A listener that takes it: exactly one delivery, with the numbers.
    let ok = listener(&rt, StatusCode::OK, Duration::ZERO);
    let a = tempfile::tempdir().unwrap();
    let ok_secs = replay(a.path(), &ok.url);
    assert_eq!(
        ok.hits.load(Ordering::SeqCst),
        1,
        "{:?}",
        ok.got.lock().unwrap()
    );
    let v = ok.got.lock().unwrap()[0].clone();
    assert_eq!(v["event"], "breaker_trip");
    assert_eq!(v["severity"], "critical");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("daily loss breaker"),
        "{v}"
    );
    for n in [
        "net_liq_usd",
        "session_start_net_liq_usd",
        "daily_change_pct",
        "daily_loss_threshold_pct",
    ] {
        assert!(v["numbers"][n].is_number(), "{n} missing: {v}");
    }
    assert!(v["numbers"]["daily_change_pct"].as_f64().unwrap() <= -0.01);
    let attempts = store(a.path()).recent_notifications(10).unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].ok);

    // A listener that fails slowly (2 s, then HTTP 500): three attempts,
    // recorded, the failure audited — and the loop did not wait for them.
    let bad = listener(
        &rt,
        StatusCode::INTERNAL_SERVER_ERROR,
        Duration::from_secs(1),
    );
    let b = tempfile::tempdir().unwrap();
    let bad_secs = replay(b.path(), &bad.url);
    eprintln!("loop: {ok_secs:.2} s with a working webhook, {bad_secs:.2} s with a failing one");
    assert_eq!(bad.hits.load(Ordering::SeqCst), 3);
    let s = store(b.path());
    let attempts = s.recent_notifications(10).unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|x| !x.ok && x.detail.contains("HTTP 500"))
    );
    assert!(
        s.recent_audit(100)
            .unwrap()
            .iter()
            .any(|e| e.action == "notification.failed" && e.actor == "notifier")
    );
    assert_eq!(trades(a.path()), trades(b.path()));
    // The deliveries took over 6.6 s (3 × 2 s + backoff); the loop's time
    // is the other run's, give or take the machine's noise.
    assert!(
        bad_secs < ok_secs + 4.5,
        "the loop took {bad_secs:.1} s with a failing webhook, {ok_secs:.1} s without"
    );
}
