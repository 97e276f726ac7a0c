//! The delivery channels: a webhook (JSON POST), e-mail over SMTP
//! (STARTTLS required unless the server is on loopback) and SMS through a
//! Twilio-style HTTP API. Each delivers one event or says why not.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use settings::{NotificationSettings, split_list};

use super::events::{Event, Severity};

/// The secrets the channels use, from the environment.
#[derive(Clone, Default)]
pub struct ChannelSecrets {
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub sms_account: Option<String>,
    pub sms_token: Option<String>,
}

impl std::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSecrets")
            .field("smtp_username", &self.smtp_username.as_ref().map(|_| "set"))
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| "set"))
            .field("sms_account", &self.sms_account.as_ref().map(|_| "set"))
            .field("sms_token", &self.sms_token.as_ref().map(|_| "set"))
            .finish()
    }
}

/// One configured channel.
#[derive(Debug, Clone)]
pub enum Channel {
    Webhook {
        url: String,
        min: Severity,
    },
    Email {
        host: String,
        port: u16,
        starttls: bool,
        from: String,
        to: Vec<String>,
        min: Severity,
    },
    Sms {
        api_url: String,
        from: String,
        to: Vec<String>,
        min: Severity,
    },
}

impl Channel {
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Email { .. } => "email",
            Channel::Sms { .. } => "sms",
        }
    }

    pub fn min_severity(&self) -> Severity {
        match self {
            Channel::Webhook { min, .. }
            | Channel::Email { min, .. }
            | Channel::Sms { min, .. } => *min,
        }
    }

    /// The channels enabled in the settings.
    pub fn from_settings(n: &NotificationSettings) -> Vec<Channel> {
        let sev = |s: &str| Severity::parse(s).unwrap_or(Severity::Critical);
        let mut out = Vec::new();
        if n.webhook.enabled {
            out.push(Channel::Webhook {
                url: n.webhook.url.clone(),
                min: sev(&n.webhook.min_severity),
            });
        }
        if n.email.enabled {
            out.push(Channel::Email {
                host: n.email.smtp_host.clone(),
                port: u16::try_from(n.email.smtp_port).unwrap_or(587),
                starttls: n.email.tls != "none",
                from: n.email.from.clone(),
                to: split_list(&n.email.to),
                min: sev(&n.email.min_severity),
            });
        }
        if n.sms.enabled {
            out.push(Channel::Sms {
                api_url: n.sms.api_url.clone(),
                from: n.sms.from.clone(),
                to: split_list(&n.sms.to),
                min: sev(&n.sms.min_severity),
            });
        }
        out
    }

    /// Delivers `event`; `Ok` with the reply's status, `Err` with why not.
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        secrets: &ChannelSecrets,
        timeout: Duration,
        event: &Event,
    ) -> Result<String, String> {
        match self {
            Channel::Webhook { url, .. } => {
                let reply = http
                    .post(url)
                    .timeout(timeout)
                    .json(&event.payload())
                    .send()
                    .await
                    .map_err(|e| format!("POST failed: {}", without_url(&e)))?;
                let status = reply.status();
                if status.is_success() {
                    Ok(format!("HTTP {}", status.as_u16()))
                } else {
                    Err(format!("HTTP {}", status.as_u16()))
                }
            }
            Channel::Sms {
                api_url, from, to, ..
            } => {
                let (Some(account), Some(token)) = (&secrets.sms_account, &secrets.sms_token)
                else {
                    return Err(format!(
                        "{} and {} are not set",
                        settings::SMS_ACCOUNT_ENV,
                        settings::SMS_TOKEN_ENV
                    ));
                };
                let body: String = event.text().chars().take(320).collect();
                let mut statuses = Vec::new();
                for number in to {
                    let reply = http
                        .post(api_url)
                        .timeout(timeout)
                        .basic_auth(account, Some(token))
                        .form(&[
                            ("From", from.as_str()),
                            ("To", number.as_str()),
                            ("Body", &body),
                        ])
                        .send()
                        .await
                        .map_err(|e| format!("POST to the SMS API failed: {}", without_url(&e)))?;
                    let status = reply.status();
                    if !status.is_success() {
                        return Err(format!(
                            "SMS API answered HTTP {} for {number}",
                            status.as_u16()
                        ));
                    }
                    statuses.push(status.as_u16().to_string());
                }
                Ok(format!("HTTP {}", statuses.join(",")))
            }
            Channel::Email {
                host,
                port,
                starttls,
                from,
                to,
                ..
            } => {
                let mut builder = Message::builder()
                    .from(
                        from.parse()
                            .map_err(|e| format!("from address {from:?}: {e}"))?,
                    )
                    .subject(format!(
                        "[trader {}] {}",
                        event.severity.as_str(),
                        event.title
                    ))
                    .header(ContentType::TEXT_PLAIN);
                for r in to {
                    builder = builder.to(r.parse().map_err(|e| format!("address {r:?}: {e}"))?);
                }
                let body = format!(
                    "{}\n\n{}\n",
                    event.text(),
                    serde_json::to_string_pretty(&event.payload()).unwrap_or_default()
                );
                let message = builder
                    .body(body)
                    .map_err(|e| format!("building the e-mail: {e}"))?;
                let mut transport = if *starttls {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|e| format!("SMTP relay {host}: {e}"))?
                } else {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                }
                .port(*port)
                .timeout(Some(timeout));
                if let (Some(u), Some(p)) = (&secrets.smtp_username, &secrets.smtp_password) {
                    transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
                }
                let reply = transport
                    .build()
                    .send(message)
                    .await
                    .map_err(|e| format!("SMTP {host}:{port}: {e}"))?;
                Ok(format!("SMTP {}", reply.code()))
            }
        }
    }
}

/// A reqwest error without its URL (a webhook URL may hold a secret).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request error"
    } else {
        "error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}
