//! What the operator's cockpit reads and writes beyond the repositories:
//! the audit log by id (the stream notifications follow), the newest fills
//! across orders, orders counted by status (metrics), a write probe
//! (readiness) and the notification attempts.

use chrono::{DateTime, NaiveDateTime, Utc};
use core_domain::{AuditEntry, Fill};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codec::{ts, utc};
use crate::rows::{AuditRow, FillRow};
use crate::schema::{audit_log, fills, notification_attempts, orders};
use crate::store::Exec;
use crate::{Store, StoreError};

/// One delivery attempt of a notification on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationAttempt {
    /// Database id (`None` before it is recorded).
    pub id: Option<i64>,
    /// Wall clock of the attempt.
    pub time: DateTime<Utc>,
    /// `webhook`, `email` or `sms`.
    pub channel: String,
    /// The event's kind (`breaker_trip`, `halt`, ...).
    pub event: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The event's identity (e.g. `audit:42`), the same on every attempt.
    pub event_key: String,
    /// 1 for the first attempt of this event on this channel.
    pub attempt: i64,
    pub ok: bool,
    /// No further attempt follows (delivered, or retries exhausted).
    pub is_final: bool,
    /// The reply's status or the error.
    pub detail: String,
    /// What was sent.
    pub payload: serde_json::Value,
}

impl Store {
    /// Audit entries with an id above `after`, oldest first, at most
    /// `limit`: the stream the notifier follows.
    pub fn audit_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        self.read(|c| {
            let rows: Vec<(i64, AuditRow)> = audit_log::table
                .filter(audit_log::id.gt(after))
                .order(audit_log::id.asc())
                .limit(limit.max(0))
                .select((audit_log::id, AuditRow::as_select()))
                .load(c)
                .map_err(StoreError::query("read the audit log after an id"))?;
            rows.into_iter()
                .map(|(id, r)| Ok((id, r.into_domain(id)?)))
                .collect()
        })
    }

    /// The largest audit id (0 for an empty log).
    pub fn max_audit_id(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            let id: Option<i64> = audit_log::table
                .select(diesel::dsl::max(audit_log::id))
                .first(c)
                .map_err(StoreError::query("read the newest audit id"))?;
            Ok(id.unwrap_or(0))
        })
    }

    /// The newest `limit` fills across every order, newest first.
    pub fn recent_fills(&self, limit: i64) -> Result<Vec<Fill>, StoreError> {
        self.read(|c| {
            fills::table
                .order((fills::time.desc(), fills::id.desc()))
                .limit(limit.max(0))
                .select(FillRow::as_select())
                .load(c)
                .map_err(StoreError::query("read the newest fills"))?
                .into_iter()
                .map(FillRow::into_domain)
                .collect()
        })
    }

    /// How many fills are recorded.
    pub fn fill_count(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            fills::table
                .count()
                .get_result(c)
                .map_err(StoreError::query("count the fills"))
        })
    }

    /// Orders counted by status (the status's serde name), sorted by status.
    pub fn orders_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| {
            orders::table
                .group_by(orders::status)
                .select((orders::status, diesel::dsl::count_star()))
                .order(orders::status.asc())
                .load(c)
                .map_err(StoreError::query("count the orders by status"))
        })
    }

    /// Whether the database takes a write now: takes the write lock in an
    /// empty transaction (nothing is written).
    pub fn probe_writable(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(()))
    }

    /// Records one delivery attempt; returns its id.
    pub fn record_notification(&self, a: &NotificationAttempt) -> Result<i64, StoreError> {
        let payload = serde_json::to_string(&a.payload).map_err(|source| StoreError::Encode {
            what: format!("the payload of notification {}", a.event_key),
            source,
        })?;
        self.write(|c| {
            diesel::insert_into(notification_attempts::table)
                .values((
                    notification_attempts::time.eq(ts(a.time)),
                    notification_attempts::channel.eq(&a.channel),
                    notification_attempts::event.eq(&a.event),
                    notification_attempts::severity.eq(&a.severity),
                    notification_attempts::event_key.eq(&a.event_key),
                    notification_attempts::attempt.eq(a.attempt),
                    notification_attempts::ok.eq(a.ok),
                    notification_attempts::is_final.eq(a.is_final),
                    notification_attempts::detail.eq(&a.detail),
                    notification_attempts::payload.eq(&payload),
                ))
                .returning(notification_attempts::id)
                .get_result(c)
                .map_err(StoreError::query("record a notification attempt"))
        })
    }

    /// The newest `limit` notification attempts, newest first.
    pub fn recent_notifications(&self, limit: i64) -> Result<Vec<NotificationAttempt>, StoreError> {
        type Row = (
            i64,
            NaiveDateTime,
            String,
            String,
            String,
            String,
            i64,
            bool,
            bool,
            String,
            String,
        );
        self.read(|c| {
            let rows: Vec<Row> = notification_attempts::table
                .order(notification_attempts::id.desc())
                .limit(limit.max(0))
                .select((
                    notification_attempts::id,
                    notification_attempts::time,
                    notification_attempts::channel,
                    notification_attempts::event,
                    notification_attempts::severity,
                    notification_attempts::event_key,
                    notification_attempts::attempt,
                    notification_attempts::ok,
                    notification_attempts::is_final,
                    notification_attempts::detail,
                    notification_attempts::payload,
                ))
                .load(c)
                .map_err(StoreError::query("read the notification attempts"))?;
            rows.into_iter()
                .map(|r| {
                    let payload = serde_json::from_str(&r.10).map_err(|e| StoreError::Corrupt {
                        table: "notification_attempts",
                        row: r.0.to_string(),
                        column: "payload",
                        detail: e.to_string(),
                    })?;
                    Ok(NotificationAttempt {
                        id: Some(r.0),
                        time: utc(r.1),
                        channel: r.2,
                        event: r.3,
                        severity: r.4,
                        event_key: r.5,
                        attempt: r.6,
                        ok: r.7,
                        is_final: r.8,
                        detail: r.9,
                        payload,
                    })
                })
                .collect()
        })
    }
}
