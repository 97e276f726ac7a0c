//! The inbound SMS webhook (`POST /sms/inbound`, a Twilio-style form
//! POST with `From` and `Body`): "STOP TRADING" halts (the same emergency
//! stop as the CLI and the dashboard, actor `sms:<number>`), "STATUS"
//! answers with the trading state and the account. Only from the
//! configured numbers, and only with the provider's signature
//! (`X-Twilio-Signature`: base64 HMAC-SHA1, keyed by the auth token, of
//! the public URL followed by every parameter's name and value sorted by
//! name) or the shared secret (`X-Trader-Secret`). The answer is TwiML.

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{ApiError, Shared, auth, blocking};
use crate::ops;

/// The inbound webhook's settings and secrets.
#[derive(Clone, Default)]
pub struct InboundConfig {
    pub enabled: bool,
    pub allowed_numbers: Vec<String>,
    pub public_url: String,
    /// The provider's auth token (signature key).
    pub auth_token: Option<String>,
    /// The shared secret accepted instead of a signature.
    pub shared_secret: Option<String>,
}

/// Twilio's request signature: base64(HMAC-SHA1(auth token, URL + the
/// parameters' names and values, sorted by name)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn twiml(message: &str) -> Response {
    let escaped = super::pages::esc(message);
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{escaped}</Message></Response>"),
    )
        .into_response()
}

fn normalize(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

pub async fn sms_inbound(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let cfg = &s.inbound;
    if !cfg.enabled {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "the inbound SMS webhook is disabled (notifications.inbound.enabled)".into(),
        ));
    }
    let ip = peer.ip();
    if s.limiter.blocked(ip) {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many refused requests from this address; wait a minute".into(),
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded_pairs(&body);
    let signed = match (
        headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok()),
        &cfg.auth_token,
    ) {
        (Some(sig), Some(token)) => {
            let want = twilio_signature(token, &cfg.public_url, &params);
            auth::constant_time_eq(sig.trim().as_bytes(), want.as_bytes())
        }
        _ => false,
    };
    let shared = match (
        headers.get("x-trader-secret").and_then(|v| v.to_str().ok()),
        &cfg.shared_secret,
    ) {
        (Some(given), Some(secret)) => auth::constant_time_eq(given.as_bytes(), secret.as_bytes()),
        _ => false,
    };
    let refuse = |why: &str| {
        s.limiter.fail(ip);
        s.metrics.auth_failures.inc();
        tracing::warn!(client = %ip, "inbound SMS refused: {why}");
        ApiError(StatusCode::FORBIDDEN, why.to_string())
    };
    if !signed && !shared {
        return Err(refuse("missing or wrong signature"));
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let from = normalize(&get("From"));
    if from.is_empty() || !cfg.allowed_numbers.iter().any(|n| normalize(n) == from) {
        return Err(refuse("the sender's number is not allowed"));
    }
    let command = get("Body").trim().to_ascii_uppercase();
    let command = command.split_whitespace().collect::<Vec<_>>().join(" ");
    let actor = format!("sms:{from}");
    match command.as_str() {
        "STOP TRADING" => {
            let who = actor.clone();
            let outcome = blocking(&s, move |store| {
                ops::emergency_stop(store, &who, "STOP TRADING received by SMS", false)
            })
            .await?;
            tracing::warn!(from = %from, "emergency stop requested by SMS");
            Ok(twiml(&format!(
                "Trading halted (was {}). Request #{} is queued; the engine cancels every working order at its next cycle. Resume with trader-cli resume or the dashboard.",
                outcome.previous_state.unwrap_or_default(),
                outcome
                    .request_id
                    .map_or_else(|| "?".into(), |i| i.to_string())
            )))
        }
        "STATUS" => {
            let st = Arc::clone(&s);
            let v = blocking(&s, move |store| super::status_with_extras(store, &st)).await?;
            let state = v["trading_state"]["state"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            let net = v["account"]["net_liq_usd"].as_f64();
            let today = v["today_pnl_usd"].as_f64();
            let open = v["trades"]["open"].as_u64().unwrap_or(0);
            Ok(twiml(&format!(
                "Trading {state}; net liq {}; today {}; {open} open positions; broker {}.",
                net.map_or_else(|| "unknown".into(), |x| format!("${x:.2}")),
                today.map_or_else(|| "unknown".into(), |x| format!("{x:+.2}")),
                if s.health.broker_connected() {
                    "connected"
                } else {
                    "disconnected"
                }
            )))
        }
        _ => Ok(twiml("Commands: STOP TRADING, STATUS.")),
    }
}

/// The form body's pairs (percent-decoded, `+` as space).
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example (the auth token, URL and parameters of
    /// its "Validating Requests" page) gives its documented signature.
    #[test]
    fn test_signature_matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn test_form_bodies_are_decoded() {
        assert_eq!(
            serde_urlencoded_pairs(b"From=%2B15551234567&Body=STOP+TRADING"),
            vec![
                ("From".to_string(), "+15551234567".to_string()),
                ("Body".to_string(), "STOP TRADING".to_string())
            ]
        );
        assert_eq!(normalize("+1 (555) 123-4567"), "+15551234567");
    }
}
