//! The Messages API client: `POST {base_url}/v1/messages` over `reqwest`
//! (rustls), with the retry policy of Anthropic's official SDKs.
//!
//! Retried: 408, 409, 429 (only with a `retry-after` header: a 429
//! without one means a quota, not a moment's congestion), every 5xx
//! (529 = overloaded included) and connection errors and timeouts. A
//! `retry-after-ms` / `retry-after` header (seconds or an HTTP date)
//! sets the wait when it is positive and at most 60 s; `x-should-retry:
//! false` stops retrying. Otherwise the wait is `base · 2^n`, at most
//! `max_delay`, less up to 25% jitter. No retry starts past the total
//! deadline. 400, 401, 403, 404 and 413 fail at once with a message
//! saying what to do.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use thiserror::Error;

use crate::api::{ANTHROPIC_VERSION, ErrorBody, MessagesRequest, MessagesResponse};

/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The environment variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "ANTHROPIC_BASE_URL";

/// The API key. Never printed: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an empty key.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into();
        let key = key.trim();
        (!key.is_empty()).then(|| ApiKey(key.to_owned()))
    }

    /// From `ANTHROPIC_API_KEY`.
    #[must_use]
    pub fn from_env() -> Option<ApiKey> {
        std::env::var(API_KEY_ENV).ok().and_then(ApiKey::new)
    }

    fn header(&self) -> Result<HeaderValue, ApiError> {
        let mut v = HeaderValue::from_str(&self.0).map_err(|_| ApiError::Config {
            message: format!("{API_KEY_ENV} holds characters an HTTP header cannot carry"),
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// When and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
    /// No attempt starts after this much time since the first.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            deadline: Duration::from_secs(120),
        }
    }
}

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Without the `/v1/messages` path (`https://api.anthropic.com`).
    pub base_url: String,
    pub api_key: ApiKey,
    /// One attempt's timeout.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// The base URL: `ANTHROPIC_BASE_URL` when set, else `configured`.
    #[must_use]
    pub fn base_url_from_env_or(configured: &str) -> String {
        std::env::var(BASE_URL_ENV)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| configured.to_owned())
    }
}

/// What went wrong with a call.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("agent configuration: {message}")]
    Config { message: String },
    #[error(
        "the Messages API refused the request as invalid (400 {kind}): {message}; check [agent] model and max_tokens"
    )]
    BadRequest { kind: String, message: String },
    #[error(
        "the Messages API refused the API key (401): {message}; set a valid key in ANTHROPIC_API_KEY"
    )]
    Authentication { message: String },
    #[error(
        "the API key may not use this model or feature (403): {message}; check the key's workspace and [agent] model"
    )]
    PermissionDenied { message: String },
    #[error(
        "not found (404): {message}; check [agent] model (a model id from Anthropic's models page) and [agent] base_url"
    )]
    NotFound { message: String },
    #[error("the request is too large (413): {message}; analyse a shorter window (--days)")]
    TooLarge { message: String },
    #[error("rate limited (429) without a retry-after header: {message}; wait, or raise the quota")]
    RateLimited { message: String },
    #[error("the Messages API answered {status} after {attempts} attempt(s): {message}")]
    Status {
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("could not reach the Messages API after {attempts} attempt(s): {message}")]
    Connection { attempts: u32, message: String },
    #[error("the answer of the Messages API could not be read: {message}")]
    Decode { message: String },
}

impl ApiError {
    /// A problem of the configuration (key, model, URL) rather than of the
    /// moment: the caller should say so and stop instead of falling back
    /// silently.
    #[must_use]
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            ApiError::Config { .. }
                | ApiError::Authentication { .. }
                | ApiError::PermissionDenied { .. }
                | ApiError::NotFound { .. }
        )
    }
}

/// One successful call: the answer and how many attempts it took.
#[derive(Debug, Clone)]
pub struct Reply {
    pub response: MessagesResponse,
    pub attempts: u32,
}

/// The Messages API client.
#[derive(Debug, Clone)]
pub struct MessagesClient {
    http: reqwest::Client,
    config: ClientConfig,
    endpoint: String,
}

impl MessagesClient {
    /// # Errors
    /// [`ApiError::Config`] for a base URL that is not http(s) or a client
    /// that cannot be built.
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ApiError::Config {
                message: format!("base URL must be http(s); got {base:?}"),
            });
        }
        let endpoint = format!("{base}/v1/messages");
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ApiError::Config {
                message: format!("HTTP client: {e}"),
            })?;
        Ok(MessagesClient {
            http,
            config,
            endpoint,
        })
    }

    /// The URL requests go to.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `request`, retrying as the module documentation says.
    ///
    /// # Errors
    /// The last failure when retries run out, or at once for an error that
    /// no retry can fix.
    pub async fn create(&self, request: &MessagesRequest) -> Result<Reply, ApiError> {
        let started = Instant::now();
        let policy = self.config.retry;
        let key = self.config.api_key.header()?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(&self.endpoint)
                .header("x-api-key", key.clone())
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header("content-type", "application/json")
                .json(request)
                .send()
                .await;
            let (failure, wait_hint) = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        let response: MessagesResponse =
                            serde_json::from_str(&body).map_err(|e| ApiError::Decode {
                                message: e.to_string(),
                            })?;
                        return Ok(Reply {
                            response,
                            attempts: attempt,
                        });
                    }
                    let message = error_message(&body);
                    let kind = error_kind(&body);
                    match status.as_u16() {
                        400 => return Err(ApiError::BadRequest { kind, message }),
                        401 => return Err(ApiError::Authentication { message }),
                        403 => return Err(ApiError::PermissionDenied { message }),
                        404 => return Err(ApiError::NotFound { message }),
                        413 => return Err(ApiError::TooLarge { message }),
                        _ => {}
                    }
                    let hint = retry_after(&headers);
                    if status == StatusCode::TOO_MANY_REQUESTS && hint.is_none() {
                        return Err(ApiError::RateLimited { message });
                    }
                    let retryable = should_retry(status, &headers);
                    let err = ApiError::Status {
                        status: status.as_u16(),
                        attempts: attempt,
                        message,
                    };
                    if !retryable {
                        return Err(err);
                    }
                    (err, hint)
                }
                Err(e) => (
                    ApiError::Connection {
                        attempts: attempt,
                        message: e.to_string(),
                    },
                    None,
                ),
            };
            if attempt > policy.max_retries {
                return Err(failure);
            }
            let wait = wait_hint.unwrap_or_else(|| backoff(&policy, attempt - 1));
            if started.elapsed() + wait > policy.deadline {
                tracing::warn!(
                    attempts = attempt,
                    "Messages API: the retry deadline of {:?} is reached",
                    policy.deadline
                );
                return Err(failure);
            }
            tracing::info!(attempt, ?wait, "Messages API: retrying after: {failure}");
            tokio::time::sleep(wait).await;
        }
    }
}

/// 408, 409, 429, 5xx, unless the server says `x-should-retry: false`
/// (and `true` forces a retry).
fn should_retry(status: StatusCode, headers: &HeaderMap) -> bool {
    match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some("true") => return true,
        Some("false") => return false,
        _ => {}
    }
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// `retry-after-ms`, else `retry-after` (seconds, or an HTTP date), when
/// positive and at most a minute.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let wait = if let Some(ms) = get("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        Some(ms / 1000.0)
    } else if let Some(v) = get("retry-after") {
        match v.trim().parse::<f64>() {
            Ok(s) => Some(s),
            Err(_) => chrono::DateTime::parse_from_rfc2822(v.trim())
                .ok()
                .map(|t| {
                    (t.timestamp_millis() - chrono::Utc::now().timestamp_millis()) as f64 / 1000.0
                }),
        }
    } else {
        None
    }?;
    (wait.is_finite() && (0.0..=60.0).contains(&wait)).then(|| Duration::from_secs_f64(wait))
}

/// `base · 2^n` capped at `max_delay`, less up to 25% jitter.
fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(2_u32.saturating_pow(retry.min(16)));
    let capped = exp.min(policy.max_delay);
    capped.mul_f64(1.0 - 0.25 * jitter())
}

/// A number in [0, 1) that differs from call to call (std's randomly keyed
/// hasher over a counter: jitter needs no cryptographic quality).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1_u64 << 53) as f64
}

fn error_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) if !b.error.message.is_empty() => b.error.message,
        _ => {
            let t: String = body.chars().take(300).collect();
            if t.trim().is_empty() {
                "(no message)".into()
            } else {
                t
            }
        }
    }
}

fn error_kind(body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .map(|b| b.error.kind)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_never_printed() {
        let k = ApiKey::new("sk-ant-secret-123").unwrap();
        assert!(!format!("{k:?} {k}").contains("secret"));
        let cfg = ClientConfig {
            base_url: "http://x".into(),
            api_key: k,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        };
        assert!(!format!("{cfg:?}").contains("secret"));
        assert!(ApiKey::new("  ").is_none());
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for n in 0..8 {
            let d = backoff(&p, n);
            let full = (p.base_delay * 2_u32.pow(n)).min(p.max_delay);
            assert!(d <= full && d >= full.mul_f64(0.75), "{n}: {d:?}");
        }
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("600"));
        assert_eq!(retry_after(&h), None);
        assert!(should_retry(
            StatusCode::from_u16(529).unwrap(),
            &HeaderMap::new()
        ));
        assert!(should_retry(StatusCode::CONFLICT, &HeaderMap::new()));
        assert!(!should_retry(StatusCode::BAD_REQUEST, &HeaderMap::new()));
    }
}
