//! The dashboard in a real headless browser (Debian's `chromium`, driven
//! over the DevTools protocol) during a replay of `traderd`: the overview
//! loads and its positions update live; the red button without the token
//! is refused (401) and nothing changes; with the token the database
//! shows the halt, and the engine carries it out within a cycle. A
//! screenshot of the overview is written to
//! `target/test-artifacts/overview.png`.
//!
//! Needs `chromium` on the PATH (`.ci/run` installs it when missing).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use core_domain::AuditRepository;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "browser-test-token-42";

/// Kills the child when dropped (a failed assertion must not leave a
/// browser or a daemon running).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!("chromium is not installed: `apt-get install -y chromium` (.ci/run does it)");
}

/// Starts traderd on a replay at `speed`, the dashboard on a free port;
/// returns the child and the dashboard's base URL.
fn start_traderd(dir: &Path) -> (Killed, String) {
    std::fs::write(
        dir.join("trader.toml"),
        // A strategy loose enough to hold positions from the first days.
        "[strategy]\notm_range = { min = 0.05, max = 0.25 }\npremium_range = { min = 0.05, max = 5.0 }\n\
         dte_range = { min = 5, max = 30 }\nmax_positions = 6\nmin_open_interest = 0\nmax_spread_pct = 1.0\n\
         [risk]\nmax_sector_concentration = 1.0\nmax_correlation = 1.0\nmax_portfolio_var_95 = 1.0\n\
         [dashboard]\nbind = \"127.0.0.1:0\"\nrefresh_secs = 1\n[logging]\nfile = false\n",
    )
    .unwrap();
    let mut child = Command::new(e2e::binary("traderd").expect("traderd is not built"))
        .args([
            "--from",
            "2020-02-03",
            "--to",
            "2020-06-30",
            "--speed",
            "780",
            "--quiet",
        ])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("TRADER_DASHBOARD_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("traderd ended before printing the dashboard's address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("traderd: dashboard at ") {
            break rest.trim().trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), base)
}

/// A DevTools session on one page.
struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(Message::Text(
                json!({"id": id, "method": method, "params": params})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("the browser did not answer")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is true.
    async fn wait_true(&mut self, expr: &str, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.eval(expr).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("not true within {within:?}: {expr}");
    }
}

async fn open_browser(profile: &Path, url: &str) -> (Killed, Cdp) {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let browser_ws = loop {
        let line = lines
            .next()
            .expect("chromium ended before it listened")
            .unwrap();
        if let Some(rest) = line.strip_prefix("DevTools listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let killed = Killed(child);
    let http = browser_ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let list: Value = reqwest::get(format!("http://{http}/json/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .expect("no page target");
    let (ws, _) = tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap())
        .await
        .unwrap();
    let mut cdp = Cdp { ws, next: 0 };
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Page.navigate", json!({"url": url})).await;
    (killed, cdp)
}

fn store(dir: &Path) -> store::Store {
    store::Store::open(dir.join("data/trader.db").to_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_the_overview_updates_live_and_the_red_button_halts_only_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, base) = start_traderd(dir.path());
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = open_browser(profile.path(), &format!("{base}/")).await;

    // The overview loads and receives live updates.
    cdp.wait_true(
        "document.getElementById('overview') !== null && Number(document.getElementById('overview').dataset.updates || 0) >= 1",
        Duration::from_secs(30),
    )
    .await;
    // Positions appear, and the book's time moves on as the replay runs.
    cdp.wait_true(
        "document.querySelectorAll('#positions tbody tr').length >= 1",
        Duration::from_secs(90),
    )
    .await;
    let first = cdp
        .eval("document.getElementById('positions-as-of').textContent")
        .await;
    cdp.wait_true(
        &format!(
            "document.getElementById('positions-as-of').textContent !== {first} && document.querySelectorAll('#positions tbody tr').length >= 1"
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        cdp.eval("document.getElementById('state').textContent")
            .await,
        json!("ACTIVE")
    );

    // The red button without the token: refused, nothing changes.
    let press = |token: &str| {
        format!(
            "document.getElementById('stop-button').click();\
             document.getElementById('control-reason').value = 'browser test';\
             document.getElementById('control-token').value = '{token}';\
             document.getElementById('control-confirm').click(); true"
        )
    };
    cdp.eval(&press("")).await;
    cdp.wait_true(
        "document.body.dataset.lastControlStatus === '401'",
        Duration::from_secs(10),
    )
    .await;
    {
        let s = store(dir.path());
        assert_ne!(
            s.trading_state().unwrap().map(|r| r.state),
            Some(core_domain::TradingState::Halted)
        );
        assert!(s.pending_control_requests().unwrap().is_empty());
    }

    // With the token: the database shows the halt at once, and the engine
    // carries it out within a cycle.
    cdp.eval(&press(TOKEN)).await;
    cdp.wait_true(
        "document.body.dataset.lastControlStatus === '200'",
        Duration::from_secs(10),
    )
    .await;
    let s = store(dir.path());
    let store::TradingStateRecord { state, cause, .. } = s.trading_state().unwrap().unwrap();
    assert_eq!(state, core_domain::TradingState::Halted);
    assert!(cause.contains("browser test"), "{cause}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = s.recent_audit(50).unwrap().iter().any(|a| {
            a.action == "emergency_stop"
                && a.actor == "dashboard"
                && a.outcome
                    .as_deref()
                    .is_some_and(|o| o.starts_with("halted"))
        });
        if done && s.pending_control_requests().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not carry out the stop"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cdp.wait_true(
        "document.getElementById('state').textContent === 'HALTED'",
        Duration::from_secs(10),
    )
    .await;

    // The screenshot, as a test artifact.
    let shot = cdp
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("overview.png"), &png).unwrap();
}
