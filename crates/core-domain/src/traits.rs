//! The traits every other crate speaks. Shaped after what IBKR offers (see
//! `../shared/docs/IBKR.md`) so that the simulated exchange and the IBKR
//! adapter both implement them without pretending.
//!
//! Broker and market-data calls are `async` because the IBKR path is a
//! network protocol; the simulated exchange answers at once. Repository
//! calls are synchronous: SQLite is in-process and each call is one short
//! transaction.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    AccountSnapshot, AuditEntry, BrokerError, Contract, DailyBar, DecisionRecord, ExitReason,
    Experiment, Fill, LearningEvent, LedgerEntry, MarginImpact, Money, OptionChain, OptionContract,
    OptionQuote, Order, OrderIntent, OrderStatus, Pattern, PatternStatus, Position, Price, Quote,
    RepoError, ShadowTrade, Slippage, Symbol, Trade,
};

/// Prices, bars and option chains.
pub trait MarketData: Send + Sync {
    /// The latest quote of a stock or index.
    fn stock_quote(
        &self,
        symbol: &Symbol,
    ) -> impl Future<Output = Result<Quote, BrokerError>> + Send;

    /// Up to `count` daily bars ending on or before `end`, oldest first.
    /// During a session the last bar may be a partial one for today (IBKR
    /// sends it); callers that need completed sessions drop bars dated
    /// today. Implementations never return a bar dated after the current
    /// session.
    fn daily_bars(
        &self,
        symbol: &Symbol,
        end: NaiveDate,
        count: usize,
    ) -> impl Future<Output = Result<Vec<DailyBar>, BrokerError>> + Send;

    /// Listed expirations and strikes (IBKR `option_chain`).
    fn option_chain(
        &self,
        symbol: &Symbol,
    ) -> impl Future<Output = Result<OptionChain, BrokerError>> + Send;

    /// Quotes with IV and greeks for the given contracts. A contract with no
    /// quote is left out rather than failing the whole request.
    fn option_quotes(
        &self,
        contracts: &[OptionContract],
    ) -> impl Future<Output = Result<Vec<OptionQuote>, BrokerError>> + Send;
}

/// An order status report from the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub order_ref: String,
    pub broker_order_id: Option<i64>,
    pub status: OrderStatus,
    pub filled_quantity: i64,
    pub remaining_quantity: i64,
    pub avg_fill_price: Option<Price>,
    pub reason: Option<String>,
    pub time: DateTime<Utc>,
}

/// Something the broker tells us without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BrokerEvent {
    OrderStatus(OrderUpdate),
    /// An execution, with its commission (IBKR sends them apart; adapters
    /// join them by execution id before reporting).
    Fill(Fill),
    /// A commission report for an execution reported before without it
    /// (IBKR sends the two apart; a report that comes after the execution
    /// was reported with a zero commission, e.g. across a restart). The
    /// recorded fill with this execution id takes the commission.
    Commission {
        exec_id: String,
        commission: Money,
        time: DateTime<Utc>,
    },
    /// A short option was assigned: stock received at the strike.
    Assignment {
        contract: OptionContract,
        quantity: i64,
        time: DateTime<Utc>,
    },
    /// An option expired worthless and left the account.
    Expiration {
        contract: OptionContract,
        quantity: i64,
        time: DateTime<Utc>,
    },
    /// An error or advisory code from the broker.
    Error {
        code: i32,
        message: String,
        order_ref: Option<String>,
    },
    ConnectionLost {
        time: DateTime<Utc>,
    },
    ConnectionRestored {
        time: DateTime<Utc>,
    },
}

/// Orders, fills, positions and the account.
///
/// Implementations must treat `order_ref` as an idempotency key: placing an
/// intent whose `order_ref` the broker already knows must not create a
/// second order.
pub trait Broker: Send + Sync {
    /// Resolves a contract to the broker's definition (fills in `con_id`).
    fn contract_details(
        &self,
        contract: &Contract,
    ) -> impl Future<Output = Result<Contract, BrokerError>> + Send;

    /// What the order would do to margin, without placing it.
    fn what_if(
        &self,
        intent: &OrderIntent,
    ) -> impl Future<Output = Result<MarginImpact, BrokerError>> + Send;

    /// Sends a limit order; returns the broker's order id.
    fn place_order(
        &self,
        intent: &OrderIntent,
    ) -> impl Future<Output = Result<i64, BrokerError>> + Send;

    /// Requests cancellation; the outcome arrives as an order event.
    fn cancel_order(&self, order_ref: &str)
    -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Orders still working at the broker.
    fn open_orders(&self) -> impl Future<Output = Result<Vec<OrderUpdate>, BrokerError>> + Send;

    /// Executions at or after `since` (for reconciliation after a restart).
    fn executions_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Fill>, BrokerError>> + Send;

    /// Events received since the last call, oldest first.
    fn poll_events(&self) -> impl Future<Output = Result<Vec<BrokerEvent>, BrokerError>> + Send;

    fn positions(&self) -> impl Future<Output = Result<Vec<Position>, BrokerError>> + Send;

    fn account_summary(&self) -> impl Future<Output = Result<AccountSnapshot, BrokerError>> + Send;
}

/// What a strategy sees at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketSnapshot {
    pub time: DateTime<Utc>,
    pub underlyings: Vec<UnderlyingSnapshot>,
    pub option_quotes: Vec<OptionQuote>,
    /// VIX close, when known.
    pub vix: Option<f64>,
}

/// One underlying in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderlyingSnapshot {
    pub symbol: Symbol,
    pub sector: Option<String>,
    pub quote: Quote,
    /// Daily closes, oldest first, ending with the latest complete session.
    pub closes: Vec<Price>,
}

/// An order the strategy would like to open, with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryProposal {
    pub contract: OptionContract,
    pub contracts: i64,
    pub limit_price: Price,
    pub decision: DecisionRecord,
}

/// A position the strategy would like to close, with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitProposal {
    pub trade_id: String,
    pub reason: ExitReason,
    pub limit_price: Price,
    pub decision: DecisionRecord,
}

/// Proposes entries and exits from a snapshot. Pure: no I/O, no clock, so
/// the same strategy runs in backtest and live.
pub trait Strategy: Send + Sync {
    fn name(&self) -> &str;

    /// Daily closes per underlying the strategy needs in a snapshot.
    fn history_days(&self) -> usize {
        60
    }

    /// Whether the engine should fetch the option chain of `underlying`
    /// for entries (e.g. it passes the strategy's screen on its closes).
    /// Saves the chain requests of underlyings that cannot qualify; the
    /// default asks for every one.
    fn wants_chain(&self, underlying: &UnderlyingSnapshot, time: DateTime<Utc>) -> bool {
        let _ = (underlying, time);
        true
    }

    /// The contracts of `chain` the strategy wants quoted for entries on
    /// `underlying` at `price` (its search range). The default: none.
    fn contracts_of_interest(
        &self,
        underlying: &Symbol,
        price: Price,
        chain: &OptionChain,
        time: DateTime<Utc>,
    ) -> Vec<OptionContract> {
        let _ = (underlying, price, chain, time);
        Vec::new()
    }

    /// The contracts to quote for learning around the search range: the
    /// range widened by `band` (relative: 0.20 is as far as one governed
    /// parameter change may move a bound). Those outside
    /// [`Strategy::contracts_of_interest`] are never traded under the
    /// current parameters; the engine records them as shadow trades,
    /// evidence of what a change of the range would do. The default: the
    /// search range itself.
    fn exploration_contracts(
        &self,
        underlying: &Symbol,
        price: Price,
        chain: &OptionChain,
        time: DateTime<Utc>,
        band: f64,
    ) -> Vec<OptionContract> {
        let _ = band;
        self.contracts_of_interest(underlying, price, chain, time)
    }

    /// Opportunities, ranked best first, and a decision record for each
    /// candidate left out.
    fn propose_entries(
        &self,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
    ) -> (Vec<EntryProposal>, Vec<DecisionRecord>);

    /// The numeric parameters an experiment or the optimizer may change,
    /// by name, with their current values (e.g. `otm_min`).
    fn parameters(&self) -> std::collections::BTreeMap<String, f64> {
        std::collections::BTreeMap::new()
    }

    /// The same strategy with parameter `name` set to `value` (an
    /// experiment's test arm). An unknown name or a value the strategy
    /// cannot use is an error saying why.
    fn with_parameter(&self, name: &str, value: f64) -> Result<Self, String>
    where
        Self: Sized,
    {
        let _ = value;
        Err(format!(
            "{}: no parameter {name:?} can be changed",
            self.name()
        ))
    }

    /// Exits for open trades; every open trade gets a decision (exit or hold).
    fn propose_exits(
        &self,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
    ) -> (Vec<ExitProposal>, Vec<DecisionRecord>);
}

/// Filters for listing trades.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TradeFilter {
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    pub symbol: Option<Symbol>,
    pub experiment_id: Option<String>,
    /// Newest first, at most this many.
    pub limit: Option<i64>,
}

/// Trades (the `trades` table).
pub trait TradeRepository {
    /// Inserts a new trade; a second trade with the same `trade_id` is a
    /// [`RepoError::Duplicate`].
    fn insert_trade(&self, trade: &Trade) -> Result<(), RepoError>;
    /// Replaces the stored trade with the same `trade_id`.
    fn update_trade(&self, trade: &Trade) -> Result<(), RepoError>;
    fn trade(&self, trade_id: &str) -> Result<Option<Trade>, RepoError>;
    fn trades(&self, filter: &TradeFilter) -> Result<Vec<Trade>, RepoError>;
}

/// Orders and fills. The intent is written before it is sent.
pub trait OrderRepository {
    /// Writes a new order (status `created`); a known `order_ref` is a
    /// [`RepoError::Duplicate`], which is how a restart avoids sending twice.
    fn insert_order(&self, order: &Order) -> Result<(), RepoError>;
    /// Stores the order's new state and appends the status change to its
    /// history, in one transaction.
    fn update_order(&self, order: &Order) -> Result<(), RepoError>;
    fn order(&self, order_ref: &str) -> Result<Option<Order>, RepoError>;
    /// Orders not in a terminal state.
    fn open_orders(&self) -> Result<Vec<Order>, RepoError>;
    /// Records a fill once: returns `false` if its `exec_id` was known.
    fn record_fill(&self, fill: &Fill) -> Result<bool, RepoError>;
    fn fills(&self, order_ref: &str) -> Result<Vec<Fill>, RepoError>;
    /// Restates a recorded fill (found by its `exec_id`) with the given
    /// quantity, price and commission: a late commission report or an
    /// execution correction. Returns `false` if no fill has that id.
    fn amend_fill(&self, fill: &Fill) -> Result<bool, RepoError>;
    /// The recorded fill with this execution id.
    fn fill(&self, exec_id: &str) -> Result<Option<Fill>, RepoError>;
    /// The newest fill time, for reconciliation.
    fn last_fill_time(&self) -> Result<Option<DateTime<Utc>>, RepoError>;
    /// Every order that opens or closes `trade_id`, oldest first.
    fn orders_for_trade(&self, trade_id: &str) -> Result<Vec<Order>, RepoError>;
    /// Records how a fill compared with mid and its limit (once per
    /// `exec_id`; a second record for the same fill is ignored).
    fn record_slippage(&self, slippage: &Slippage) -> Result<(), RepoError>;
    /// The slippage records of `order_ref`'s fills, oldest first.
    fn slippage(&self, order_ref: &str) -> Result<Vec<Slippage>, RepoError>;
}

/// Positions as last reconciled with the broker, account snapshots and the
/// cash ledger.
pub trait AccountRepository {
    /// Replaces the stored positions with `positions`, in one transaction.
    fn replace_positions(&self, positions: &[Position]) -> Result<(), RepoError>;
    fn positions(&self) -> Result<Vec<Position>, RepoError>;
    fn insert_snapshot(&self, snapshot: &AccountSnapshot) -> Result<(), RepoError>;
    fn latest_snapshot(&self) -> Result<Option<AccountSnapshot>, RepoError>;
    /// Snapshots taken between `from` and `to` (inclusive), oldest first.
    fn snapshots(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AccountSnapshot>, RepoError>;
    fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<(), RepoError>;
    /// Sum of all ledger entries.
    fn ledger_balance(&self) -> Result<Money, RepoError>;
}

/// The audit log and decision records. Append-only.
pub trait AuditRepository {
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), RepoError>;
    fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, RepoError>;
    fn append_decision(&self, record: &DecisionRecord) -> Result<(), RepoError>;
    /// Newest first.
    fn recent_decisions(&self, limit: i64) -> Result<Vec<DecisionRecord>, RepoError>;
}

/// Experiments, patterns and the learning history.
pub trait LearningRepository {
    fn insert_experiment(&self, experiment: &Experiment) -> Result<(), RepoError>;
    fn update_experiment(&self, experiment: &Experiment) -> Result<(), RepoError>;
    fn experiment(&self, experiment_id: &str) -> Result<Option<Experiment>, RepoError>;
    fn experiments(&self) -> Result<Vec<Experiment>, RepoError>;
    fn insert_pattern(&self, pattern: &Pattern) -> Result<i64, RepoError>;
    fn set_pattern_status(&self, id: i64, status: PatternStatus) -> Result<(), RepoError>;
    fn patterns(&self, status: Option<PatternStatus>) -> Result<Vec<(i64, Pattern)>, RepoError>;
    fn append_learning_event(&self, event: &LearningEvent) -> Result<(), RepoError>;
    fn learning_history(&self, limit: i64) -> Result<Vec<LearningEvent>, RepoError>;
    /// Records a shadow trade once: `Ok(false)` when its `shadow_id` is
    /// known (nothing written).
    fn insert_shadow(&self, shadow: &ShadowTrade) -> Result<bool, RepoError>;
    /// Replaces the stored shadow trade with the same `shadow_id`.
    fn update_shadow(&self, shadow: &ShadowTrade) -> Result<(), RepoError>;
    /// Shadow trades still open, oldest first.
    fn open_shadows(&self) -> Result<Vec<ShadowTrade>, RepoError>;
    /// Shadow trades, newest first, at most `limit`.
    fn shadows(&self, limit: i64) -> Result<Vec<ShadowTrade>, RepoError>;
}

/// The engine's working memory: small JSON values by key, kept across
/// restarts (goals, recent actions, the trading state).
pub trait WorkingMemory {
    fn remember(&self, key: &str, value: &serde_json::Value) -> Result<(), RepoError>;
    fn recall(&self, key: &str) -> Result<Option<serde_json::Value>, RepoError>;
    fn forget(&self, key: &str) -> Result<(), RepoError>;
    fn keys(&self) -> Result<Vec<String>, RepoError>;
}

impl<T: MarketData + ?Sized> MarketData for std::sync::Arc<T> {
    fn stock_quote(
        &self,
        symbol: &Symbol,
    ) -> impl Future<Output = Result<Quote, BrokerError>> + Send {
        (**self).stock_quote(symbol)
    }

    fn daily_bars(
        &self,
        symbol: &Symbol,
        end: NaiveDate,
        count: usize,
    ) -> impl Future<Output = Result<Vec<DailyBar>, BrokerError>> + Send {
        (**self).daily_bars(symbol, end, count)
    }

    fn option_chain(
        &self,
        symbol: &Symbol,
    ) -> impl Future<Output = Result<OptionChain, BrokerError>> + Send {
        (**self).option_chain(symbol)
    }

    fn option_quotes(
        &self,
        contracts: &[OptionContract],
    ) -> impl Future<Output = Result<Vec<OptionQuote>, BrokerError>> + Send {
        (**self).option_quotes(contracts)
    }
}

/// A shared broker is a broker: the engine and its clock (or a control
/// API) can hold the same simulated exchange or connection.
impl<T: Broker + ?Sized> Broker for std::sync::Arc<T> {
    fn contract_details(
        &self,
        contract: &Contract,
    ) -> impl Future<Output = Result<Contract, BrokerError>> + Send {
        (**self).contract_details(contract)
    }

    fn what_if(
        &self,
        intent: &OrderIntent,
    ) -> impl Future<Output = Result<MarginImpact, BrokerError>> + Send {
        (**self).what_if(intent)
    }

    fn place_order(
        &self,
        intent: &OrderIntent,
    ) -> impl Future<Output = Result<i64, BrokerError>> + Send {
        (**self).place_order(intent)
    }

    fn cancel_order(
        &self,
        order_ref: &str,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        (**self).cancel_order(order_ref)
    }

    fn open_orders(&self) -> impl Future<Output = Result<Vec<OrderUpdate>, BrokerError>> + Send {
        (**self).open_orders()
    }

    fn executions_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Fill>, BrokerError>> + Send {
        (**self).executions_since(since)
    }

    fn poll_events(&self) -> impl Future<Output = Result<Vec<BrokerEvent>, BrokerError>> + Send {
        (**self).poll_events()
    }

    fn positions(&self) -> impl Future<Output = Result<Vec<Position>, BrokerError>> + Send {
        (**self).positions()
    }

    fn account_summary(&self) -> impl Future<Output = Result<AccountSnapshot, BrokerError>> + Send {
        (**self).account_summary()
    }
}
