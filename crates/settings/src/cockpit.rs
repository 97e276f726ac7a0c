//! `[dashboard]` and `[notifications]`: the operator's cockpit (issue #15).
//! Secrets (the dashboard token, SMTP and SMS credentials, the inbound
//! shared secret) come from the environment only; these are their names.

use serde::{Deserialize, Serialize};

/// The dashboard's bearer token (state-changing requests; every request
/// when bound off loopback).
pub const DASHBOARD_TOKEN_ENV: &str = "TRADER_DASHBOARD_TOKEN";
/// SMTP login name (optional: no login without it).
pub const SMTP_USERNAME_ENV: &str = "TRADER_SMTP_USERNAME";
/// SMTP login password.
pub const SMTP_PASSWORD_ENV: &str = "TRADER_SMTP_PASSWORD";
/// The SMS provider's account id (Twilio: the Account SID), HTTP basic
/// auth user.
pub const SMS_ACCOUNT_ENV: &str = "TRADER_SMS_ACCOUNT_SID";
/// The SMS provider's auth token: HTTP basic auth password, and the key of
/// the inbound webhook's signature (`X-Twilio-Signature`).
pub const SMS_TOKEN_ENV: &str = "TRADER_SMS_AUTH_TOKEN";
/// A shared secret the inbound webhook accepts instead of the provider's
/// signature (header `X-Trader-Secret`).
pub const SMS_INBOUND_SECRET_ENV: &str = "TRADER_SMS_INBOUND_SECRET";

/// The web dashboard served by `traderd`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    pub enabled: bool,
    /// Address and port to listen on ("127.0.0.1:8080"; port 0 picks one).
    pub bind: String,
    /// Seconds between live updates pushed to open pages.
    pub refresh_secs: i64,
    /// Failed authentications allowed per client address per minute
    /// before it is refused for the rest of the minute.
    pub max_auth_failures_per_minute: i64,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            enabled: true,
            bind: "127.0.0.1:8080".into(),
            refresh_secs: 2,
            max_auth_failures_per_minute: 5,
        }
    }
}

impl DashboardSettings {
    /// Whether `bind` is a loopback address (127.0.0.0/8, ::1 or
    /// `localhost`).
    pub fn binds_loopback(&self) -> bool {
        is_loopback_bind(&self.bind)
    }
}

/// Whether `host:port` names a loopback host.
pub fn is_loopback_bind(bind: &str) -> bool {
    let host = match bind.rsplit_once(':') {
        Some((h, _)) => h,
        None => bind,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Outbound notifications and the inbound SMS webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Seconds the broker may stay disconnected before it is notified.
    pub disconnect_alert_secs: i64,
    /// A summary after each session's close.
    pub daily_summary: bool,
    /// Delivery attempts per event and channel (the first included).
    pub max_attempts: i64,
    /// Wait before the first retry, in milliseconds; doubled each retry.
    pub retry_initial_ms: i64,
    /// Longest wait between retries, in milliseconds.
    pub retry_max_ms: i64,
    /// Seconds one delivery may take before it counts as failed.
    pub timeout_secs: i64,
    pub webhook: WebhookSettings,
    pub email: EmailSettings,
    pub sms: SmsSettings,
    pub inbound: InboundSmsSettings,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            disconnect_alert_secs: 300,
            daily_summary: true,
            max_attempts: 5,
            retry_initial_ms: 2000,
            retry_max_ms: 300_000,
            timeout_secs: 10,
            webhook: WebhookSettings::default(),
            email: EmailSettings::default(),
            sms: SmsSettings::default(),
            inbound: InboundSmsSettings::default(),
        }
    }
}

/// A JSON POST to a URL (Slack, Discord, ntfy-style or your own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    pub enabled: bool,
    pub url: String,
    /// "info", "warning" or "critical": the least severe event sent.
    pub min_severity: String,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            enabled: false,
            url: String::new(),
            min_severity: "info".into(),
        }
    }
}

/// E-mail over SMTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: i64,
    /// "starttls" (required), or "none" (plain; loopback hosts only).
    pub tls: String,
    pub from: String,
    /// Recipients, comma-separated.
    pub to: String,
    pub min_severity: String,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            enabled: false,
            smtp_host: String::new(),
            smtp_port: 587,
            tls: "starttls".into(),
            from: String::new(),
            to: String::new(),
            min_severity: "warning".into(),
        }
    }
}

/// SMS through a provider's HTTP API (Twilio-style: a form POST with
/// `From`, `To`, `Body` and HTTP basic auth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    pub enabled: bool,
    /// The provider's "send a message" URL.
    pub api_url: String,
    pub from: String,
    /// Recipients, comma-separated.
    pub to: String,
    pub min_severity: String,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            enabled: false,
            api_url: String::new(),
            from: String::new(),
            to: String::new(),
            min_severity: "critical".into(),
        }
    }
}

/// The inbound SMS webhook (`POST /sms/inbound`): "STOP TRADING" and
/// "STATUS" from the numbers listed here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSmsSettings {
    pub enabled: bool,
    /// Phone numbers allowed to send commands, comma-separated (E.164).
    pub allowed_numbers: String,
    /// The public URL the provider posts to (its signature covers it).
    pub public_url: String,
}

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// The checks of `[dashboard]` and `[notifications]`, every problem with
/// its key path.
pub(crate) fn check(
    s: &crate::Settings,
    env: &std::collections::BTreeMap<String, String>,
    issues: &mut Vec<crate::ConfigIssue>,
) {
    let mut fail = |key: &str, message: String| {
        issues.push(crate::ConfigIssue {
            key: key.into(),
            message,
            origin: None,
        })
    };
    let has = |name: &str| env.get(name).is_some_and(|v| !v.trim().is_empty());
    let d = &s.dashboard;
    if d.bind.parse::<std::net::SocketAddr>().is_err() && !d.bind.starts_with("localhost:") {
        fail(
            "dashboard.bind",
            format!(
                "must be an address and port such as \"127.0.0.1:8080\"; got {:?}",
                d.bind
            ),
        );
    } else if d.enabled && !d.binds_loopback() && !has(DASHBOARD_TOKEN_ENV) {
        fail(
            "dashboard.bind",
            format!(
                "{:?} is not a loopback address: set the environment variable {DASHBOARD_TOKEN_ENV} \
                 (every request then needs it), or bind 127.0.0.1 and reach it through an SSH \
                 tunnel or a TLS reverse proxy",
                d.bind
            ),
        );
    }
    if !(1..=3600).contains(&d.refresh_secs) {
        fail(
            "dashboard.refresh_secs",
            format!("must be 1 to 3600; got {}", d.refresh_secs),
        );
    }
    if !(1..=1000).contains(&d.max_auth_failures_per_minute) {
        fail(
            "dashboard.max_auth_failures_per_minute",
            format!("must be 1 to 1000; got {}", d.max_auth_failures_per_minute),
        );
    }
    let n = &s.notifications;
    if n.disconnect_alert_secs < 1 {
        fail(
            "notifications.disconnect_alert_secs",
            format!("must be at least 1; got {}", n.disconnect_alert_secs),
        );
    }
    if !(1..=20).contains(&n.max_attempts) {
        fail(
            "notifications.max_attempts",
            format!("must be 1 to 20; got {}", n.max_attempts),
        );
    }
    if n.retry_initial_ms < 1 || n.retry_max_ms < n.retry_initial_ms {
        fail(
            "notifications.retry_initial_ms",
            format!(
                "must be at least 1 and at most notifications.retry_max_ms ({}); got {}",
                n.retry_max_ms, n.retry_initial_ms
            ),
        );
    }
    if !(1..=300).contains(&n.timeout_secs) {
        fail(
            "notifications.timeout_secs",
            format!("must be 1 to 300; got {}", n.timeout_secs),
        );
    }
    let mut severity = |key: &str, v: &str| {
        if !SEVERITIES.contains(&v) {
            fail(
                key,
                format!("must be \"info\", \"warning\" or \"critical\"; got {v:?}"),
            );
        }
    };
    severity(
        "notifications.webhook.min_severity",
        &n.webhook.min_severity,
    );
    severity("notifications.email.min_severity", &n.email.min_severity);
    severity("notifications.sms.min_severity", &n.sms.min_severity);
    let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let mut fail = |key: &str, message: String| {
        issues.push(crate::ConfigIssue {
            key: key.into(),
            message,
            origin: None,
        })
    };
    if n.webhook.enabled && !http(&n.webhook.url) {
        fail(
            "notifications.webhook.url",
            format!(
                "must be an http(s) URL while the webhook is enabled; got {:?}",
                n.webhook.url
            ),
        );
    }
    let e = &n.email;
    if e.enabled {
        if e.smtp_host.trim().is_empty() {
            fail(
                "notifications.email.smtp_host",
                "must be set while e-mail is enabled".into(),
            );
        }
        if !(1..=65535).contains(&e.smtp_port) {
            fail(
                "notifications.email.smtp_port",
                format!("must be 1 to 65535; got {}", e.smtp_port),
            );
        }
        if !e.from.contains('@') {
            fail(
                "notifications.email.from",
                format!("must be an e-mail address; got {:?}", e.from),
            );
        }
        if split_list(&e.to).is_empty() || split_list(&e.to).iter().any(|a| !a.contains('@')) {
            fail(
                "notifications.email.to",
                format!(
                    "must list e-mail addresses, comma-separated; got {:?}",
                    e.to
                ),
            );
        }
    }
    match e.tls.as_str() {
        "starttls" => {}
        "none" if is_loopback_bind(&format!("{}:0", e.smtp_host)) || !e.enabled => {}
        "none" => fail(
            "notifications.email.tls",
            format!(
                "\"none\" (no encryption) is allowed only for a loopback smtp_host; got host {:?}",
                e.smtp_host
            ),
        ),
        other => fail(
            "notifications.email.tls",
            format!("must be \"starttls\" or \"none\"; got {other:?}"),
        ),
    }
    let m = &n.sms;
    if m.enabled {
        if !http(&m.api_url) {
            fail(
                "notifications.sms.api_url",
                format!(
                    "must be an http(s) URL while SMS is enabled; got {:?}",
                    m.api_url
                ),
            );
        }
        if m.from.trim().is_empty() {
            fail(
                "notifications.sms.from",
                "must be set while SMS is enabled".into(),
            );
        }
        if split_list(&m.to).is_empty() {
            fail(
                "notifications.sms.to",
                "must list at least one number while SMS is enabled".into(),
            );
        }
        if !has(SMS_ACCOUNT_ENV) || !has(SMS_TOKEN_ENV) {
            fail(
                "notifications.sms.enabled",
                format!(
                    "SMS needs the environment variables {SMS_ACCOUNT_ENV} and {SMS_TOKEN_ENV}"
                ),
            );
        }
    }
    let i = &n.inbound;
    if i.enabled {
        if split_list(&i.allowed_numbers).is_empty() {
            fail(
                "notifications.inbound.allowed_numbers",
                "must list at least one number while the inbound webhook is enabled".into(),
            );
        }
        if !has(SMS_TOKEN_ENV) && !has(SMS_INBOUND_SECRET_ENV) {
            fail(
                "notifications.inbound.enabled",
                format!(
                    "the inbound webhook needs {SMS_TOKEN_ENV} (to check the provider's signature) \
                     or {SMS_INBOUND_SECRET_ENV} (a shared secret)"
                ),
            );
        }
        if has(SMS_TOKEN_ENV) && !http(&i.public_url) {
            fail(
                "notifications.inbound.public_url",
                format!(
                    "must be the http(s) URL the provider posts to (its signature covers it); got {:?}",
                    i.public_url
                ),
            );
        }
    }
}

/// A comma-separated list, trimmed, empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_loopback_binds_are_recognised() {
        assert!(is_loopback_bind("127.0.0.1:8080"));
        assert!(is_loopback_bind("127.1.2.3:0"));
        assert!(is_loopback_bind("[::1]:8080"));
        assert!(is_loopback_bind("localhost:80"));
        assert!(!is_loopback_bind("0.0.0.0:8080"));
        assert!(!is_loopback_bind("192.168.1.5:8080"));
        assert!(!is_loopback_bind("[::]:8080"));
    }

    #[test]
    fn test_lists_are_split_on_commas() {
        assert_eq!(split_list(" a@b.c, ,d@e.f "), vec!["a@b.c", "d@e.f"]);
        assert!(split_list("").is_empty());
    }
}
