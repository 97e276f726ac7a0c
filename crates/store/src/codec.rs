//! How domain values become column values and back.
//!
//! Enums are stored as their serde names (the same text they have in JSON),
//! through `as_str`/`FromStr` where the domain type has them and through the
//! small tables below where it does not. A stored text that parses to no
//! variant is a [`StoreError::Corrupt`] naming the table, row and column.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use core_domain::{LedgerEntryKind, OrderPurpose, Side, TimeInForce, TradeStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// Where a column value came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub table: &'static str,
    /// e.g. `trade_id=T-1` or `id=42`.
    pub row: &'a str,
}

impl At<'_> {
    pub fn corrupt(&self, column: &'static str, detail: impl Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            row: self.row.to_string(),
            column,
            detail: detail.to_string(),
        }
    }

    /// Parses an enum (or any `FromStr`) stored as text.
    pub fn parse<T>(&self, column: &'static str, text: &str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: Display,
    {
        text.parse::<T>()
            .map_err(|e| self.corrupt(column, format!("{text:?}: {e}")))
    }

    /// Parses an enum through one of the tables of this module.
    pub fn lookup<T>(
        &self,
        column: &'static str,
        text: &str,
        from: fn(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        from(text).ok_or_else(|| self.corrupt(column, format!("unknown value {text:?}")))
    }

    /// Reads a JSON column.
    pub fn json<T: DeserializeOwned>(
        &self,
        column: &'static str,
        text: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| self.corrupt(column, format!("invalid JSON: {e}")))
    }
}

/// Writes a JSON column.
pub(crate) fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode {
        what: what.to_string(),
        source,
    })
}

/// UTC instant to the `TIMESTAMP` column form.
pub(crate) fn ts(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// `TIMESTAMP` column (UTC) to an instant.
pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub(crate) fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

pub(crate) fn side_from(s: &str) -> Option<Side> {
    match s {
        "BUY" => Some(Side::Buy),
        "SELL" => Some(Side::Sell),
        _ => None,
    }
}

pub(crate) fn tif_str(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Day => "DAY",
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
    }
}

pub(crate) fn tif_from(s: &str) -> Option<TimeInForce> {
    match s {
        "DAY" => Some(TimeInForce::Day),
        "GTC" => Some(TimeInForce::Gtc),
        "IOC" => Some(TimeInForce::Ioc),
        _ => None,
    }
}

pub(crate) fn purpose_str(p: OrderPurpose) -> &'static str {
    match p {
        OrderPurpose::Open => "open",
        OrderPurpose::Close => "close",
        OrderPurpose::Liquidate => "liquidate",
    }
}

pub(crate) fn purpose_from(s: &str) -> Option<OrderPurpose> {
    match s {
        "open" => Some(OrderPurpose::Open),
        "close" => Some(OrderPurpose::Close),
        "liquidate" => Some(OrderPurpose::Liquidate),
        _ => None,
    }
}

pub(crate) fn trade_status_str(s: TradeStatus) -> &'static str {
    match s {
        TradeStatus::Open => "open",
        TradeStatus::Closed => "closed",
    }
}

pub(crate) fn trade_status_from(s: &str) -> Option<TradeStatus> {
    match s {
        "open" => Some(TradeStatus::Open),
        "closed" => Some(TradeStatus::Closed),
        _ => None,
    }
}

const LEDGER_KINDS: [LedgerEntryKind; 7] = [
    LedgerEntryKind::Deposit,
    LedgerEntryKind::Withdrawal,
    LedgerEntryKind::SaleProceeds,
    LedgerEntryKind::PurchaseCost,
    LedgerEntryKind::Commission,
    LedgerEntryKind::Assignment,
    LedgerEntryKind::Interest,
];

pub(crate) fn ledger_kind_from(s: &str) -> Option<LedgerEntryKind> {
    LEDGER_KINDS.into_iter().find(|k| k.as_str() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored text of an enum is its serde name, so that the database and
    /// the JSON the rest of the system writes agree.
    fn serde_name<T: Serialize>(v: T) -> String {
        match serde_json::to_value(v).unwrap() {
            serde_json::Value::String(s) => s,
            other => panic!("not a string: {other}"),
        }
    }

    #[test]
    fn test_enum_tables_match_serde_names_both_ways() {
        for s in [Side::Buy, Side::Sell] {
            assert_eq!(side_str(s), serde_name(s));
            assert_eq!(side_from(side_str(s)), Some(s));
        }
        for t in [TimeInForce::Day, TimeInForce::Gtc, TimeInForce::Ioc] {
            assert_eq!(tif_str(t), serde_name(t));
            assert_eq!(tif_from(tif_str(t)), Some(t));
        }
        for p in [
            OrderPurpose::Open,
            OrderPurpose::Close,
            OrderPurpose::Liquidate,
        ] {
            assert_eq!(purpose_str(p), serde_name(p));
            assert_eq!(purpose_from(purpose_str(p)), Some(p));
        }
        for s in [TradeStatus::Open, TradeStatus::Closed] {
            assert_eq!(trade_status_str(s), serde_name(s));
            assert_eq!(trade_status_from(trade_status_str(s)), Some(s));
        }
        for k in LEDGER_KINDS {
            // Fails to compile when a kind is added, as a reminder to list it.
            match k {
                LedgerEntryKind::Deposit
                | LedgerEntryKind::Withdrawal
                | LedgerEntryKind::SaleProceeds
                | LedgerEntryKind::PurchaseCost
                | LedgerEntryKind::Commission
                | LedgerEntryKind::Assignment
                | LedgerEntryKind::Interest => {}
            }
            assert_eq!(k.as_str(), serde_name(k));
            assert_eq!(ledger_kind_from(k.as_str()), Some(k));
        }
        assert_eq!(side_from("sell"), None);
    }

    #[test]
    fn test_corrupt_error_names_table_row_and_column() {
        let row = "trade_id=T-1";
        let at = At {
            table: "trades",
            row,
        };
        let e = at
            .parse::<core_domain::ExitReason>("exit_reason", "bogus")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("trades") && msg.contains("T-1") && msg.contains("exit_reason"));
        assert!(matches!(
            core_domain::RepoError::from(e),
            core_domain::RepoError::Corrupt(_)
        ));
    }
}
