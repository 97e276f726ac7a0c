//! The Claude analyst's tables: its reports (`analyst_reports`) and every
//! call to the Messages API with its tokens and estimated cost
//! (`agent_calls`). The store keeps what it is given; what a report says
//! is the analyst's business (`agents-claude`).

use chrono::{DateTime, NaiveDateTime, Utc};
use core_domain::LearningEvent;
use diesel::prelude::*;

use crate::schema::{agent_calls, analyst_reports};
use crate::store::Exec;
use crate::{Store, StoreError, ops};

/// A report to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnalystReport {
    pub created_at: DateTime<Utc>,
    /// `claude` or `statistics`.
    pub source: String,
    /// `cli` or `weekly`.
    pub trigger: String,
    pub model: Option<String>,
    pub summary: String,
    pub accepted: i64,
    pub rejected: i64,
    /// Estimated cost, millionths of a US dollar.
    pub cost_micros: i64,
    pub fallback_reason: Option<String>,
    /// The whole report.
    pub report: serde_json::Value,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredAnalystReport {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub source: String,
    pub trigger: String,
    pub model: Option<String>,
    pub summary: String,
    pub accepted: i64,
    pub rejected: i64,
    pub cost_micros: i64,
    pub fallback_reason: Option<String>,
    pub report: serde_json::Value,
}

/// One call to the Messages API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentCall {
    pub time: DateTime<Utc>,
    /// `analysis` or `reasoner`.
    pub purpose: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub cache_read_input_tokens: i64,
    /// Estimated cost, millionths of a US dollar.
    pub cost_micros: i64,
    pub stop_reason: Option<String>,
}

type ReportRow = (
    i64,
    NaiveDateTime,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    String,
);

fn from_row(r: ReportRow) -> Result<StoredAnalystReport, StoreError> {
    let (
        id,
        created_at,
        source,
        trigger,
        model,
        summary,
        accepted,
        rejected,
        cost_micros,
        fallback_reason,
        report,
    ) = r;
    let report = serde_json::from_str(&report).map_err(|e| StoreError::Corrupt {
        table: "analyst_reports",
        row: id.to_string(),
        column: "report",
        detail: e.to_string(),
    })?;
    Ok(StoredAnalystReport {
        id,
        created_at: DateTime::from_naive_utc_and_offset(created_at, Utc),
        source,
        trigger,
        model,
        summary,
        accepted,
        rejected,
        cost_micros,
        fallback_reason,
        report,
    })
}

fn columns() -> (
    analyst_reports::id,
    analyst_reports::created_at,
    analyst_reports::source,
    analyst_reports::trigger,
    analyst_reports::model,
    analyst_reports::summary,
    analyst_reports::accepted,
    analyst_reports::rejected,
    analyst_reports::cost_micros,
    analyst_reports::fallback_reason,
    analyst_reports::report,
) {
    (
        analyst_reports::id,
        analyst_reports::created_at,
        analyst_reports::source,
        analyst_reports::trigger,
        analyst_reports::model,
        analyst_reports::summary,
        analyst_reports::accepted,
        analyst_reports::rejected,
        analyst_reports::cost_micros,
        analyst_reports::fallback_reason,
        analyst_reports::report,
    )
}

impl Store {
    /// Stores a report and the learning events of its accepted
    /// recommendations (proposals for experiments) in one transaction;
    /// returns the report's id.
    pub fn record_analyst_report(
        &self,
        report: &NewAnalystReport,
        proposals: &[LearningEvent],
    ) -> Result<i64, StoreError> {
        self.write(|c| {
            let id = diesel::insert_into(analyst_reports::table)
                .values((
                    analyst_reports::created_at.eq(report.created_at.naive_utc()),
                    analyst_reports::source.eq(&report.source),
                    analyst_reports::trigger.eq(&report.trigger),
                    analyst_reports::model.eq(&report.model),
                    analyst_reports::summary.eq(&report.summary),
                    analyst_reports::accepted.eq(report.accepted),
                    analyst_reports::rejected.eq(report.rejected),
                    analyst_reports::cost_micros.eq(report.cost_micros),
                    analyst_reports::fallback_reason.eq(&report.fallback_reason),
                    analyst_reports::report.eq(report.report.to_string()),
                ))
                .returning(analyst_reports::id)
                .get_result(c)
                .map_err(StoreError::query("store the analyst report"))?;
            for e in proposals {
                ops::append_learning_event(c, e)?;
            }
            Ok(id)
        })
    }

    /// Stored reports, newest first (at most `limit`). The dashboard and
    /// the notifications read reports through this and
    /// [`Store::analyst_report`].
    pub fn analyst_reports(&self, limit: i64) -> Result<Vec<StoredAnalystReport>, StoreError> {
        self.read(|c| {
            let rows: Vec<ReportRow> = analyst_reports::table
                .order((
                    analyst_reports::created_at.desc(),
                    analyst_reports::id.desc(),
                ))
                .limit(limit.max(0))
                .select(columns())
                .load(c)
                .map_err(StoreError::query("read the analyst reports"))?;
            rows.into_iter().map(from_row).collect()
        })
    }

    /// One stored report by id.
    pub fn analyst_report(&self, id: i64) -> Result<Option<StoredAnalystReport>, StoreError> {
        self.read(|c| {
            let row: Option<ReportRow> = analyst_reports::table
                .filter(analyst_reports::id.eq(id))
                .select(columns())
                .first(c)
                .optional()
                .map_err(StoreError::query("read an analyst report"))?;
            row.map(from_row).transpose()
        })
    }

    /// The newest report of `trigger` (`weekly`, `cli`), if any.
    pub fn latest_analyst_report(
        &self,
        trigger: &str,
    ) -> Result<Option<StoredAnalystReport>, StoreError> {
        self.read(|c| {
            let row: Option<ReportRow> = analyst_reports::table
                .filter(analyst_reports::trigger.eq(trigger))
                .order((
                    analyst_reports::created_at.desc(),
                    analyst_reports::id.desc(),
                ))
                .select(columns())
                .first(c)
                .optional()
                .map_err(StoreError::query("read the latest analyst report"))?;
            row.map(from_row).transpose()
        })
    }

    /// Records one call to the Messages API.
    pub fn record_agent_call(&self, call: &AgentCall) -> Result<(), StoreError> {
        self.write(|c| {
            diesel::insert_into(agent_calls::table)
                .values((
                    agent_calls::time.eq(call.time.naive_utc()),
                    agent_calls::purpose.eq(&call.purpose),
                    agent_calls::model.eq(&call.model),
                    agent_calls::input_tokens.eq(call.input_tokens),
                    agent_calls::output_tokens.eq(call.output_tokens),
                    agent_calls::cache_creation_input_tokens.eq(call.cache_creation_input_tokens),
                    agent_calls::cache_read_input_tokens.eq(call.cache_read_input_tokens),
                    agent_calls::cost_micros.eq(call.cost_micros),
                    agent_calls::stop_reason.eq(&call.stop_reason),
                ))
                .execute(c)
                .map_err(StoreError::query("record the agent call"))?;
            Ok(())
        })
    }

    /// The estimated cost of every call at or after `since`, in millionths
    /// of a US dollar.
    pub fn agent_spend_micros_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        self.read(|c| {
            let costs: Vec<i64> = agent_calls::table
                .filter(agent_calls::time.ge(since.naive_utc()))
                .select(agent_calls::cost_micros)
                .load(c)
                .map_err(StoreError::query("sum the agent calls' cost"))?;
            Ok(costs.iter().sum())
        })
    }
}
