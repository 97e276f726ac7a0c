//! The other channels and event sources against fakes on loopback: e-mail
//! through an SMTP server (plain, as `tls = "none"` allows on loopback),
//! SMS as a Twilio-style form POST with basic auth, a disconnection longer
//! than configured and the reconnection, and the daily summary at a
//! session's close.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use core_domain::{AccountRepository, AccountSnapshot, AuditEntry, AuditRepository, Money};
use serde_json::{Value, json};
use store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal SMTP server that accepts every message and keeps its data.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let g = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let (sock, _) = l.accept().await.unwrap();
            let g = Arc::clone(&g);
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut data = String::new();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            g.lock().unwrap().push(std::mem::take(&mut data));
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250-fake\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

/// A listener keeping every (authorization header, body).
async fn http_listener() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let g = Arc::clone(&g);
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                g.lock().unwrap().push((auth, body));
                StatusCode::CREATED
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out");
}

fn fresh_store(dir: &tempfile::TempDir) -> (Arc<Store>, settings::Settings) {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Arc::new(Store::open_and_migrate(&url).unwrap());
    let mut s = settings::Settings::default();
    s.database.url = url;
    s.dashboard.enabled = false;
    s.notifications.retry_initial_ms = 20;
    s.notifications.retry_max_ms = 40;
    (store, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_email_and_sms_deliver_an_emergency_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut s) = fresh_store(&dir);
    let (port, mails) = smtp_server().await;
    let (sms_url, texts) = http_listener().await;
    let e = &mut s.notifications.email;
    e.enabled = true;
    e.smtp_host = "127.0.0.1".into();
    e.smtp_port = i64::from(port);
    e.tls = "none".into();
    e.from = "trader@example.org".into();
    e.to = "ops@example.org".into();
    let m = &mut s.notifications.sms;
    m.enabled = true;
    m.api_url = sms_url;
    m.from = "+15550001111".into();
    m.to = "+15550002222".into();
    let secrets = cockpit::Secrets {
        channels: cockpit::notify::ChannelSecrets {
            sms_account: Some("AC123".into()),
            sms_token: Some("tok".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = cockpit::start(&s, Arc::clone(&store), Arc::new(|| true), secrets)
        .await
        .unwrap();
    cockpit::ops::emergency_stop(&store, "trader-cli:ops", "index halted", false).unwrap();
    wait_for(|| !mails.lock().unwrap().is_empty() && !texts.lock().unwrap().is_empty()).await;
    let mail = mails.lock().unwrap()[0].clone();
    assert!(
        mail.contains("Subject: [trader critical] emergency stop by trader-cli:ops"),
        "{mail}"
    );
    assert!(mail.contains("index halted"), "{mail}");
    let (auth, body) = texts.lock().unwrap()[0].clone();
    // Basic auth of AC123:tok.
    assert_eq!(auth, "Basic QUMxMjM6dG9r");
    assert!(body.contains("From=%2B15550001111"), "{body}");
    assert!(body.contains("To=%2B15550002222"), "{body}");
    assert!(body.contains("emergency+stop"), "{body}");
    let attempts = store.recent_notifications(10).unwrap();
    assert_eq!(attempts.iter().filter(|a| a.ok).count(), 2, "{attempts:?}");
    let status = c.notifier.as_ref().unwrap().status();
    assert!(
        status.iter().all(|s| s.delivered == 1 && !s.dead),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_long_disconnection_and_the_reconnection_are_notified() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut s) = fresh_store(&dir);
    let (url, got) = http_listener().await;
    s.notifications.webhook.enabled = true;
    s.notifications.webhook.url = url;
    s.notifications.disconnect_alert_secs = 1;
    let up = Arc::new(AtomicBool::new(true));
    let link = Arc::clone(&up);
    let c = cockpit::start(
        &s,
        Arc::clone(&store),
        Arc::new(move || link.load(Ordering::SeqCst)),
        cockpit::Secrets::default(),
    )
    .await
    .unwrap();
    up.store(false, Ordering::SeqCst);
    wait_for(|| !got.lock().unwrap().is_empty()).await;
    up.store(true, Ordering::SeqCst);
    wait_for(|| got.lock().unwrap().len() >= 2).await;
    let events: Vec<Value> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "disconnected");
    assert!(events[0]["numbers"]["down_secs"].as_u64().unwrap() >= 1);
    assert_eq!(events[1]["event"], "reconnected");
    assert_eq!(c.health.reconnects(), 1);
}

fn snapshot(time: &str, net: i64) -> AccountSnapshot {
    AccountSnapshot {
        time: time.parse().unwrap(),
        account: "SIM".into(),
        net_liquidation: Money::from_cents(net),
        cash: Money::from_cents(net),
        excess_liquidity: Money::from_cents(net),
        initial_margin: Money::from_cents(0),
        maintenance_margin: Money::from_cents(0),
        realized_pnl: Money::from_cents(0),
        unrealized_pnl: Money::from_cents(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_session_close_gives_a_daily_summary_and_routine_entries_give_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut s) = fresh_store(&dir);
    store
        .insert_snapshot(&snapshot("2020-02-03T21:00:00Z", 10_000_000))
        .unwrap();
    let (url, got) = http_listener().await;
    s.notifications.webhook.enabled = true;
    s.notifications.webhook.url = url;
    let _c = cockpit::start(
        &s,
        Arc::clone(&store),
        Arc::new(|| true),
        cockpit::Secrets::default(),
    )
    .await
    .unwrap();
    store
        .append_audit(&AuditEntry::new(Utc::now(), "execution", "order.sent").context(json!({})))
        .unwrap();
    store
        .insert_snapshot(&snapshot("2020-02-04T21:00:00Z", 10_012_345))
        .unwrap();
    wait_for(|| !got.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let v: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["event"], "daily_summary");
    assert_eq!(v["numbers"]["net_liq_usd"], 100_123.45);
    assert_eq!(v["numbers"]["day_pnl_usd"], 123.45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_dead_channel_is_reported_on_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut s) = fresh_store(&dir);
    let (sms_url, texts) = http_listener().await;
    // Nothing listens on this port: every webhook attempt fails.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    s.notifications.max_attempts = 2;
    s.notifications.webhook.enabled = true;
    s.notifications.webhook.url = dead_url;
    let m = &mut s.notifications.sms;
    m.enabled = true;
    m.api_url = sms_url;
    m.from = "+15550001111".into();
    m.to = "+15550002222".into();
    let secrets = cockpit::Secrets {
        channels: cockpit::notify::ChannelSecrets {
            sms_account: Some("AC123".into()),
            sms_token: Some("tok".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = cockpit::start(&s, Arc::clone(&store), Arc::new(|| true), secrets)
        .await
        .unwrap();
    cockpit::ops::emergency_stop(&store, "dashboard", "test", false).unwrap();
    wait_for(|| texts.lock().unwrap().len() >= 2).await;
    let bodies: Vec<String> = texts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert!(
        bodies.iter().any(|b| b.contains("emergency+stop")),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("notification+channel+webhook+is+not+delivering")),
        "{bodies:?}"
    );
    let status = c.notifier.as_ref().unwrap().status();
    let webhook = status.iter().find(|s| s.channel == "webhook").unwrap();
    assert!(webhook.dead && webhook.failed_attempts == 2, "{status:?}");
}
