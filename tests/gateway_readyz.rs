//! `/readyz` over the IBKR path: `traderd` against the simulated TWS
//! gateway is ready while its session is up, turns unready (503, the
//! broker check failing) when the gateway drops every connection, and is
//! ready again after the adapter reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const FROM: &str = "2021-03-01";
const TO: &str = "2021-03-31";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gateway(rt: &tokio::runtime::Runtime) -> sim_gateway::GatewayHandle {
    let settings = settings::Settings::default();
    let from = FROM.parse().unwrap();
    let exchange = traderd::wiring::sim_exchange(
        &settings,
        traderd::wiring::history().unwrap(),
        settings.broker.sim.chain.clone(),
        from,
        None,
    )
    .unwrap();
    rt.block_on(sim_gateway::SimGateway::start(
        sim_gateway::GatewayConfig {
            port: 0,
            control_port: Some(0),
            from: Some(from),
            to: Some(TO.parse().unwrap()),
            ..sim_gateway::GatewayConfig::default()
        },
        exchange,
    ))
    .unwrap()
}

/// (status, broker check ok) of `/readyz`.
async fn readyz(http: &reqwest::Client, base: &str) -> (u16, bool) {
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let broker = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "broker")
        .unwrap()["ok"]
        .as_bool()
        .unwrap();
    (status, broker)
}

async fn wait_for(http: &reqwest::Client, base: &str, want: (u16, bool), within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if readyz(http, base).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[test]
fn test_readyz_turns_unready_when_the_gateway_drops_and_ready_after_the_reconnect() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = gateway(&rt);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trader.toml"),
        format!(
            "[broker]\nkind = \"ibkr\"\n[broker.ibkr]\nport = {}\nsim_control = \"{}\"\nconnect_attempts = 3\nmessages_per_second = 5000\n\
             [dashboard]\nbind = \"127.0.0.1:0\"\n[logging]\nfile = false\n",
            handle.addr().port(),
            handle.control_addr().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(e2e::binary("traderd").expect("traderd is not built"))
        .args(["--from", FROM, "--to", TO, "--quiet"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .env_remove("TRADER_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _daemon = Killed(child);
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
    let http = reqwest::Client::new();
    rt.block_on(async {
        assert!(
            wait_for(&http, &base, (200, true), Duration::from_secs(30)).await,
            "never ready: {:?}",
            readyz(&http, &base).await
        );
        handle.inject(sim_gateway::Fault::DropNow);
        assert!(
            wait_for(&http, &base, (503, false), Duration::from_secs(10)).await,
            "still ready after the drop"
        );
        assert!(
            wait_for(&http, &base, (200, true), Duration::from_secs(30)).await,
            "not ready again after the reconnect: {:?}",
            readyz(&http, &base).await
        );
    });
}
