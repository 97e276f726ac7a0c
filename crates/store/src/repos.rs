//! The repository traits of `core_domain`, implemented for [`Store`] (each
//! call one transaction) and for [`StoreTx`] (each call a savepoint of the
//! caller's transaction). Both delegate to the same queries in `ops`.

use chrono::{DateTime, Utc};
use core_domain::{
    AccountRepository, AccountSnapshot, AuditEntry, AuditRepository, DecisionRecord, Experiment,
    Fill, LearningEvent, LearningRepository, LedgerEntry, Money, Order, OrderRepository, Pattern,
    PatternStatus, Position, RepoError, ShadowTrade, Slippage, Trade, TradeFilter, TradeRepository,
    WorkingMemory,
};

use crate::ops;
use crate::store::Exec;
use crate::{Store, StoreTx};

macro_rules! impl_repositories {
    ($($ty:ty),+) => {$(
        impl TradeRepository for $ty {
            /// A second trade with the same `trade_id` is `Duplicate`; an
            /// `experiment_id` that names no experiment is `NotFound`.
            fn insert_trade(&self, trade: &Trade) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::insert_trade(c, trade))?)
            }
            /// Overwrites every column; `NotFound` when no trade has this
            /// `trade_id`.
            fn update_trade(&self, trade: &Trade) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::update_trade(c, trade))?)
            }
            fn trade(&self, trade_id: &str) -> Result<Option<Trade>, RepoError> {
                Ok(self.read(|c| ops::trade(c, trade_id))?)
            }
            /// Always newest first (by entry time, then insertion).
            fn trades(&self, filter: &TradeFilter) -> Result<Vec<Trade>, RepoError> {
                Ok(self.read(|c| ops::trades(c, filter))?)
            }
        }

        impl OrderRepository for $ty {
            /// Writes the order and its first history event together.
            fn insert_order(&self, order: &Order) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::insert_order(c, order))?)
            }
            /// Writes the order's state (never its intent) and, when the
            /// status or the filled quantity changed, appends a history
            /// event, in one transaction. `NotFound` for an unknown order.
            fn update_order(&self, order: &Order) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::update_order(c, order))?)
            }
            fn order(&self, order_ref: &str) -> Result<Option<Order>, RepoError> {
                Ok(self.read(|c| ops::order(c, order_ref))?)
            }
            /// Oldest first.
            fn open_orders(&self) -> Result<Vec<Order>, RepoError> {
                Ok(self.read(ops::open_orders)?)
            }
            /// `Ok(false)` when the `exec_id` is known (nothing written);
            /// `NotFound` when the fill's order is unknown.
            fn record_fill(&self, fill: &Fill) -> Result<bool, RepoError> {
                Ok(self.write(|c| ops::record_fill(c, fill))?)
            }
            /// `Ok(false)` when no fill has that `exec_id`.
            fn amend_fill(&self, fill: &Fill) -> Result<bool, RepoError> {
                Ok(self.write(|c| ops::amend_fill(c, fill))?)
            }
            fn fill(&self, exec_id: &str) -> Result<Option<Fill>, RepoError> {
                Ok(self.read(|c| ops::fill(c, exec_id))?)
            }
            /// Oldest first.
            fn fills(&self, order_ref: &str) -> Result<Vec<Fill>, RepoError> {
                Ok(self.read(|c| ops::fills(c, order_ref))?)
            }
            fn last_fill_time(&self) -> Result<Option<DateTime<Utc>>, RepoError> {
                Ok(self.read(ops::last_fill_time)?)
            }
            /// Oldest first (by creation time, then insertion).
            fn orders_for_trade(&self, trade_id: &str) -> Result<Vec<Order>, RepoError> {
                Ok(self.read(|c| ops::orders_for_trade(c, trade_id))?)
            }
            /// Ignored when the fill already has a record; `NotFound`
            /// (foreign key) when the fill is not stored.
            fn record_slippage(&self, slippage: &Slippage) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::record_slippage(c, slippage))?)
            }
            fn slippage(&self, order_ref: &str) -> Result<Vec<Slippage>, RepoError> {
                Ok(self.read(|c| ops::slippage_of(c, order_ref))?)
            }
        }

        impl AccountRepository for $ty {
            /// Two positions with the same contract key are `Duplicate` and
            /// leave the stored positions unchanged.
            fn replace_positions(&self, positions: &[Position]) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::replace_positions(c, positions))?)
            }
            /// Ordered by contract key.
            fn positions(&self) -> Result<Vec<Position>, RepoError> {
                Ok(self.read(ops::positions)?)
            }
            fn insert_snapshot(&self, snapshot: &AccountSnapshot) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::insert_snapshot(c, snapshot))?)
            }
            /// The snapshot with the latest time.
            fn latest_snapshot(&self) -> Result<Option<AccountSnapshot>, RepoError> {
                Ok(self.read(ops::latest_snapshot)?)
            }
            /// Oldest first.
            fn snapshots(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<AccountSnapshot>, RepoError> {
                Ok(self.read(|c| ops::snapshots(c, from, to))?)
            }
            /// All entries or none.
            fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::append_ledger(c, entries))?)
            }
            fn ledger_balance(&self) -> Result<Money, RepoError> {
                Ok(self.read(ops::ledger_balance)?)
            }
        }

        impl AuditRepository for $ty {
            fn append_audit(&self, entry: &AuditEntry) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::append_audit(c, entry))?)
            }
            /// Newest first.
            fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, RepoError> {
                Ok(self.read(|c| ops::recent_audit(c, limit))?)
            }
            fn append_decision(&self, record: &DecisionRecord) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::append_decision(c, record))?)
            }
            fn recent_decisions(&self, limit: i64) -> Result<Vec<DecisionRecord>, RepoError> {
                Ok(self.read(|c| ops::recent_decisions(c, limit))?)
            }
        }

        impl LearningRepository for $ty {
            /// A known `experiment_id` is `Duplicate`.
            fn insert_experiment(&self, experiment: &Experiment) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::insert_experiment(c, experiment))?)
            }
            /// `NotFound` for an unknown `experiment_id`.
            fn update_experiment(&self, experiment: &Experiment) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::update_experiment(c, experiment))?)
            }
            fn experiment(&self, experiment_id: &str) -> Result<Option<Experiment>, RepoError> {
                Ok(self.read(|c| ops::experiment(c, experiment_id))?)
            }
            /// Oldest first.
            fn experiments(&self) -> Result<Vec<Experiment>, RepoError> {
                Ok(self.read(ops::experiments)?)
            }
            /// Returns the new pattern's id.
            fn insert_pattern(&self, pattern: &Pattern) -> Result<i64, RepoError> {
                Ok(self.write(|c| ops::insert_pattern(c, pattern))?)
            }
            /// `NotFound` for an unknown id.
            fn set_pattern_status(&self, id: i64, status: PatternStatus) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::set_pattern_status(c, id, status))?)
            }
            /// Oldest first, with their ids.
            fn patterns(
                &self,
                status: Option<PatternStatus>,
            ) -> Result<Vec<(i64, Pattern)>, RepoError> {
                Ok(self.read(|c| ops::patterns(c, status))?)
            }
            fn append_learning_event(&self, event: &LearningEvent) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::append_learning_event(c, event))?)
            }
            /// Newest first.
            fn learning_history(&self, limit: i64) -> Result<Vec<LearningEvent>, RepoError> {
                Ok(self.read(|c| ops::learning_history(c, limit))?)
            }
            fn insert_shadow(&self, shadow: &ShadowTrade) -> Result<bool, RepoError> {
                Ok(self.write(|c| ops::insert_shadow(c, shadow))?)
            }
            fn update_shadow(&self, shadow: &ShadowTrade) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::update_shadow(c, shadow))?)
            }
            fn open_shadows(&self) -> Result<Vec<ShadowTrade>, RepoError> {
                Ok(self.read(ops::open_shadows)?)
            }
            fn shadows(&self, limit: i64) -> Result<Vec<ShadowTrade>, RepoError> {
                Ok(self.read(|c| ops::shadows(c, limit))?)
            }
        }

        impl WorkingMemory for $ty {
            /// Inserts or replaces the value (stamped with the wall clock).
            fn remember(&self, key: &str, value: &serde_json::Value) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::remember(c, key, value))?)
            }
            fn recall(&self, key: &str) -> Result<Option<serde_json::Value>, RepoError> {
                Ok(self.read(|c| ops::recall(c, key))?)
            }
            /// Forgetting an unknown key is not an error.
            fn forget(&self, key: &str) -> Result<(), RepoError> {
                Ok(self.write(|c| ops::forget(c, key))?)
            }
            /// Sorted.
            fn keys(&self) -> Result<Vec<String>, RepoError> {
                Ok(self.read(ops::keys)?)
            }
        }
    )+};
}

impl_repositories!(Store, StoreTx<'_>);
