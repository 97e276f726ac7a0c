//! A fake Messages API on loopback, for tests and offline trials: a small
//! HTTP/1.1 server (keep-alive, `content-length` bodies) that records every
//! request and answers each from a responder the caller gives. It speaks
//! only what [`MessagesClient`](crate::MessagesClient) sends.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the fake server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RecordedRequest {
    /// The first header called `name` (lower case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An answer of the fake server.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FakeResponse {
    /// 200 with a JSON body.
    #[must_use]
    pub fn ok(body: &serde_json::Value) -> Self {
        FakeResponse {
            status: 200,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// An API error (`{"type":"error","error":{...}}`).
    #[must_use]
    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        FakeResponse {
            status,
            headers: Vec::new(),
            body: serde_json::json!({
                "type": "error",
                "error": {"type": kind, "message": message}
            })
            .to_string(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A successful message answer with one text block.
    #[must_use]
    pub fn message(text: &str, stop_reason: &str, input_tokens: u64, output_tokens: u64) -> Self {
        FakeResponse::ok(&serde_json::json!({
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "fake-model",
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
        }))
    }
}

type Responder = dyn Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync;

/// The running server; it stops when dropped.
pub struct FakeMessagesApi {
    base_url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeMessagesApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMessagesApi")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeMessagesApi {
    /// Answers the n-th request (from 0) with `script[n]`, and every later
    /// one with the last entry.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn scripted(script: Vec<FakeResponse>) -> std::io::Result<Self> {
        Self::start(move |_, n| {
            script
                .get(n)
                .or_else(|| script.last())
                .cloned()
                .unwrap_or_else(|| FakeResponse::error(500, "api_error", "empty script"))
        })
        .await
    }

    /// Answers each request with `responder(request, n)`.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(
        responder: impl Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", responder).await
    }

    /// As [`start`](Self::start), on `addr`.
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn start_on(
        addr: &str,
        responder: impl Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Responder> = Arc::new(responder);
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                let responder = Arc::clone(&responder);
                tokio::spawn(async move {
                    let _ = serve(stream, recorded, responder).await;
                });
            }
        });
        Ok(FakeMessagesApi {
            base_url,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every request received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeMessagesApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    responder: Arc<Responder>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Read the head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0_u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buf.len() < body_start + length {
            let mut chunk = [0_u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[body_start..body_start + length]).to_string();
        buf.drain(..body_start + length);
        let request = RecordedRequest {
            method,
            path,
            headers,
            body,
        };
        let n = {
            let mut r = recorded
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            r.push(request.clone());
            r.len() - 1
        };
        let response = responder(&request, n);
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            response.status,
            reason_phrase(response.status),
            response.body.len()
        );
        for (k, v) in &response.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&response.body);
        stream.write_all(out.as_bytes()).await?;
        stream.flush().await?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Closed trades with a planted effect, for tests and trials of the
/// analyst: `n` trades cycling through 15%, 17% and 19% OTM; the 18-20%
/// OTM bucket earns about 4% ROI, the others about 0.5%, each with a
/// deterministic spread. Entries a day apart from 2026-01-05, exits a week
/// later.
#[must_use]
pub fn sample_trades(n: usize) -> Vec<core_domain::Trade> {
    use chrono::{Duration, TimeZone, Utc};
    use core_domain::{ExitReason, MarketRegime, Money, Price, Symbol, Trade, TradeStatus};
    let base = Utc
        .with_ymd_and_hms(2026, 1, 5, 15, 0, 0)
        .single()
        .unwrap_or_default();
    let sectors = ["Energy", "Information Technology", "Health Care"];
    let symbols = ["XOM", "MSFT", "JNJ"];
    (0..n)
        .filter_map(|i| {
            let otm = [0.15, 0.17, 0.19][i % 3];
            let noise = (((i * 7919) % 13) as f64 - 6.0) * 0.003;
            let roi = if i % 3 == 2 { 0.04 } else { 0.005 } + noise;
            let entry_time = base + Duration::days(i as i64);
            let exit_time = entry_time + Duration::days(7);
            let margin = Money::from_dollars(5_000);
            let pnl = Money::from_cents((roi * 500_000.0).round() as i64);
            let symbol = Symbol::new(symbols[(i / 3) % 3]).ok()?;
            Some(Trade {
                trade_id: format!("T-{i}"),
                symbol,
                sector: Some(sectors[(i / 3) % 3].into()),
                strike: Price::from_cents(10_000),
                expiration: (entry_time + Duration::days(10)).date_naive(),
                entry_date: entry_time.date_naive(),
                entry_time,
                entry_premium: Price::from_cents(40),
                contracts: 5,
                entry_underlying_price: Price::from_cents(12_000),
                margin_at_entry: margin,
                exit_date: Some(exit_time.date_naive()),
                exit_time: Some(exit_time),
                exit_premium: Some(Price::from_cents(20)),
                exit_reason: Some(if roi > 0.0 {
                    ExitReason::ProfitTarget
                } else {
                    ExitReason::StopLoss
                }),
                profit_loss: Some(pnl),
                profit_pct: Some(0.5),
                roi: Some(roi),
                days_held: Some(7),
                otm_pct: otm,
                dte: 7 + (i % 8) as i64,
                vix_at_entry: Some(14.0 + (i % 10) as f64),
                market_regime: MarketRegime::BullQuiet,
                is_experiment: false,
                experiment_id: None,
                experiment_arm: None,
                commissions: Money::from_cents(325),
                status: TradeStatus::Closed,
            })
        })
        .collect()
}
