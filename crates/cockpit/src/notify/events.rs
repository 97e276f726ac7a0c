//! What is worth telling the operator, and how severe it is. Events come
//! from the audit log (whoever wrote it: the engine, the risk governor,
//! trader-cli, the dashboard, an SMS), from the account snapshots (the
//! daily summary) and from the broker link (disconnections).

use chrono::{DateTime, Utc};
use core_domain::AuditEntry;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How urgent an event is; each channel has a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The kinds of event notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A circuit breaker changed the trading state (daily loss, API errors).
    BreakerTrip,
    /// Trading halted other than by a breaker trip (the engine carrying out
    /// an emergency stop).
    Halt,
    Resume,
    /// An operator's emergency stop (CLI, dashboard, SMS).
    EmergencyStop,
    /// The broker's positions differ from ours.
    PositionMismatch,
    /// The broker stayed disconnected longer than configured.
    Disconnected,
    /// It came back after a notified disconnection.
    Reconnected,
    RejectedOrder,
    DailySummary,
    /// A notification channel failed every attempt of a delivery.
    ChannelDead,
    /// The analyst's weekly report was stored (`trader-cli reports`).
    AnalystReport,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BreakerTrip => "breaker_trip",
            EventKind::Halt => "halt",
            EventKind::Resume => "resume",
            EventKind::EmergencyStop => "emergency_stop",
            EventKind::PositionMismatch => "position_mismatch",
            EventKind::Disconnected => "disconnected",
            EventKind::Reconnected => "reconnected",
            EventKind::RejectedOrder => "rejected_order",
            EventKind::DailySummary => "daily_summary",
            EventKind::ChannelDead => "channel_dead",
            EventKind::AnalystReport => "analyst_report",
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub severity: Severity,
    /// When it happened (engine time for engine events).
    pub time: DateTime<Utc>,
    /// Its identity: the same on every attempt and channel (`audit:42`).
    pub key: String,
    /// One line.
    pub title: String,
    /// Why, in words (with the numbers where the source gives them).
    pub reason: String,
    /// The numbers, by name (money in dollars, `_usd`; fractions `_pct` in
    /// percent).
    pub numbers: Map<String, Value>,
}

impl Event {
    /// The text a person reads (e-mail body, SMS, chat message).
    pub fn text(&self) -> String {
        let mut s = format!(
            "[trader {}] {}: {}",
            self.severity.as_str(),
            self.title,
            self.reason
        );
        if !self.numbers.is_empty() {
            let nums: Vec<String> = self
                .numbers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" ({})", nums.join(", ")));
        }
        s
    }

    /// The JSON a webhook receives: the structured event, plus `text`
    /// (Slack) and `content` (Discord) so chat endpoints show it as is.
    pub fn payload(&self) -> Value {
        json!({
            "event": self.kind.as_str(),
            "severity": self.severity.as_str(),
            "time": self.time,
            "key": self.key,
            "title": self.title,
            "reason": self.reason,
            "numbers": self.numbers,
            "text": self.text(),
            "content": self.text(),
        })
    }
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// The event an audit entry stands for, if any. `numbers` are filled by
/// the caller where the entry has none (the breaker's account figures).
pub fn from_audit(id: i64, a: &AuditEntry) -> Option<Event> {
    let decision = a.decision.clone().unwrap_or_default();
    let make = |kind: EventKind, severity: Severity, title: String, reason: String| Event {
        kind,
        severity,
        time: a.time,
        key: format!("audit:{id}"),
        title,
        reason,
        numbers: Map::new(),
    };
    let action = a.action.as_str();
    match action {
        "risk.state_change" => {
            let cause = text_of(&a.context, "cause").unwrap_or_default();
            let from = text_of(&a.context, "from").unwrap_or_default();
            if a.actor == "risk" {
                if decision == "active" {
                    return Some(make(
                        EventKind::BreakerTrip,
                        Severity::Info,
                        format!("circuit breaker cleared: {from} -> active"),
                        cause,
                    ));
                }
                Some(make(
                    EventKind::BreakerTrip,
                    Severity::Critical,
                    format!("circuit breaker tripped: trading {from} -> {decision}"),
                    cause,
                ))
            } else if decision == "halted" {
                Some(make(
                    EventKind::Halt,
                    Severity::Critical,
                    format!("trading halted by {}", a.actor),
                    cause,
                ))
            } else {
                None
            }
        }
        "emergency_stop" if a.outcome.as_deref() == Some("recorded") => {
            let reason = text_of(&a.context, "reason").unwrap_or_default();
            let flatten = a.context.get("flatten").and_then(Value::as_bool) == Some(true);
            Some(make(
                EventKind::EmergencyStop,
                Severity::Critical,
                format!(
                    "emergency stop{} by {}",
                    if flatten { " with flatten" } else { "" },
                    a.actor
                ),
                reason,
            ))
        }
        "resume" if a.outcome.as_deref() == Some("recorded") => Some(make(
            EventKind::Resume,
            Severity::Warning,
            format!("trading resumed by {}", a.actor),
            text_of(&a.context, "reason").unwrap_or_default(),
        )),
        "order.rejected" => Some(make(
            EventKind::RejectedOrder,
            Severity::Warning,
            format!(
                "order {} rejected",
                text_of(&a.context, "order_ref").unwrap_or_default()
            ),
            text_of(&a.context, "reason").unwrap_or_default(),
        )),
        "analyst.report" => {
            let mut e = make(
                EventKind::AnalystReport,
                Severity::Info,
                format!(
                    "analyst report #{} ({})",
                    a.context
                        .get("report_id")
                        .map_or(String::new(), Value::to_string),
                    text_of(&a.context, "source").unwrap_or_default()
                ),
                text_of(&a.context, "summary").unwrap_or_default(),
            );
            for k in ["report_id", "accepted", "recommendations"] {
                if let Some(v) = a.context.get(k) {
                    e.numbers.insert(k.to_string(), v.clone());
                }
            }
            Some(e)
        }
        _ if action.contains("mismatch") => Some(make(
            EventKind::PositionMismatch,
            Severity::Critical,
            format!("position mismatch ({action}) reported by {}", a.actor),
            a.outcome
                .clone()
                .or_else(|| text_of(&a.context, "reason"))
                .unwrap_or_else(|| a.context.to_string()),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at() -> DateTime<Utc> {
        "2020-03-09T15:00:00Z".parse().unwrap()
    }

    #[test]
    fn test_a_stored_analyst_report_is_an_info_event_with_its_summary() {
        let a = AuditEntry::new(at(), "analyst", "analyst.report")
            .context(json!({"report_id": 7, "source": "model", "summary": "ROI held up", "accepted": 1, "recommendations": 2}))
            .outcome("weekly analysis #7");
        let e = from_audit(3, &a).unwrap();
        assert_eq!(e.kind, EventKind::AnalystReport);
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(e.reason, "ROI held up");
        assert!(e.title.contains("#7"), "{}", e.title);
        assert_eq!(e.numbers["accepted"], json!(1));
    }

    #[test]
    fn test_a_breaker_trip_by_risk_is_critical_with_its_cause() {
        let a = AuditEntry::new(at(), "risk", "risk.state_change")
            .context(json!({"from": "active", "cause": "daily loss breaker: -2.1% <= -2%"}))
            .decision("halted");
        let e = from_audit(7, &a).unwrap();
        assert_eq!(e.kind, EventKind::BreakerTrip);
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.key, "audit:7");
        assert!(e.reason.contains("-2.1%"));
    }

    #[test]
    fn test_operator_records_map_to_stop_and_resume_once() {
        let stop = AuditEntry::new(at(), "dashboard", "emergency_stop")
            .context(json!({"reason": "test", "flatten": true}))
            .decision("halt+flatten")
            .outcome("recorded");
        assert_eq!(from_audit(1, &stop).unwrap().kind, EventKind::EmergencyStop);
        // The engine's record of carrying it out is not a second event.
        let done = AuditEntry::new(at(), "dashboard", "emergency_stop").outcome("halted; 0 orders");
        assert!(from_audit(2, &done).is_none());
        let resume = AuditEntry::new(at(), "trader-cli:bob", "resume").outcome("recorded");
        assert_eq!(from_audit(3, &resume).unwrap().kind, EventKind::Resume);
    }

    #[test]
    fn test_rejections_and_mismatches_are_events_and_routine_entries_are_not() {
        let r = AuditEntry::new(at(), "execution", "order.rejected")
            .context(json!({"order_ref": "O-1", "reason": "margin"}));
        assert_eq!(from_audit(1, &r).unwrap().kind, EventKind::RejectedOrder);
        let m = AuditEntry::new(at(), "broker-ibkr", "reconcile.position_mismatch")
            .outcome("AAPL put: broker -2, ours -1");
        let e = from_audit(2, &m).unwrap();
        assert_eq!(e.kind, EventKind::PositionMismatch);
        assert!(e.reason.contains("broker -2"));
        assert!(from_audit(3, &AuditEntry::new(at(), "execution", "order.sent")).is_none());
    }

    #[test]
    fn test_payload_has_event_reason_numbers_and_chat_text() {
        let mut e = from_audit(
            9,
            &AuditEntry::new(at(), "risk", "risk.state_change")
                .context(json!({"from": "active", "cause": "x"}))
                .decision("halted"),
        )
        .unwrap();
        e.numbers.insert("net_liq_usd".into(), json!(97_900.0));
        let p = e.payload();
        assert_eq!(p["event"], "breaker_trip");
        assert_eq!(p["reason"], "x");
        assert_eq!(p["numbers"]["net_liq_usd"], 97_900.0);
        assert!(p["text"].as_str().unwrap().contains("net_liq_usd=97900"));
    }
}
