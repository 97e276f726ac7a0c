//! Row structs of each table and their conversion to and from domain types.
//! Reading a row that does not convert is a [`StoreError::Corrupt`] naming
//! the table, the row and the column.

use chrono::{NaiveDate, NaiveDateTime};
use core_domain::{
    AccountSnapshot, AuditEntry, Contract, DecisionRecord, Experiment, Fill, LearningEvent,
    LedgerEntry, Money, Order, OrderIntent, Pattern, Position, Price, ShadowTrade, Slippage,
    Symbol, Trade,
};
use diesel::prelude::*;

use crate::StoreError;
use crate::codec::{self, At, to_json, ts, utc};
use crate::schema::*;

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = trades, check_for_backend(diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub(crate) struct TradeRow {
    pub trade_id: String,
    pub symbol: String,
    pub sector: Option<String>,
    pub strike: i64,
    pub expiration: NaiveDate,
    pub entry_date: NaiveDate,
    pub entry_time: NaiveDateTime,
    pub entry_premium: i64,
    pub contracts: i64,
    pub entry_underlying_price: i64,
    pub margin_at_entry: i64,
    pub exit_date: Option<NaiveDate>,
    pub exit_time: Option<NaiveDateTime>,
    pub exit_premium: Option<i64>,
    pub exit_reason: Option<String>,
    pub profit_loss: Option<i64>,
    pub profit_pct: Option<f64>,
    pub roi: Option<f64>,
    pub days_held: Option<i64>,
    pub otm_pct: f64,
    pub dte: i64,
    pub vix_at_entry: Option<f64>,
    pub market_regime: String,
    pub is_experiment: bool,
    pub experiment_id: Option<String>,
    pub experiment_arm: Option<String>,
    pub commissions: i64,
    pub status: String,
}

impl TradeRow {
    pub fn from_domain(t: &Trade) -> Self {
        TradeRow {
            trade_id: t.trade_id.clone(),
            symbol: t.symbol.to_string(),
            sector: t.sector.clone(),
            strike: t.strike.raw(),
            expiration: t.expiration,
            entry_date: t.entry_date,
            entry_time: ts(t.entry_time),
            entry_premium: t.entry_premium.raw(),
            contracts: t.contracts,
            entry_underlying_price: t.entry_underlying_price.raw(),
            margin_at_entry: t.margin_at_entry.cents(),
            exit_date: t.exit_date,
            exit_time: t.exit_time.map(ts),
            exit_premium: t.exit_premium.map(Price::raw),
            exit_reason: t.exit_reason.map(|r| r.as_str().to_string()),
            profit_loss: t.profit_loss.map(Money::cents),
            profit_pct: t.profit_pct,
            roi: t.roi,
            days_held: t.days_held,
            otm_pct: t.otm_pct,
            dte: t.dte,
            vix_at_entry: t.vix_at_entry,
            market_regime: t.market_regime.as_str().to_string(),
            is_experiment: t.is_experiment,
            experiment_id: t.experiment_id.clone(),
            experiment_arm: t.experiment_arm.clone(),
            commissions: t.commissions.cents(),
            status: codec::trade_status_str(t.status).to_string(),
        }
    }

    pub fn into_domain(self) -> Result<Trade, StoreError> {
        let row = format!("trade_id={}", self.trade_id);
        let at = At {
            table: "trades",
            row: &row,
        };
        Ok(Trade {
            symbol: Symbol::new(&self.symbol).map_err(|e| at.corrupt("symbol", e))?,
            sector: self.sector,
            strike: Price::from_raw(self.strike),
            expiration: self.expiration,
            entry_date: self.entry_date,
            entry_time: utc(self.entry_time),
            entry_premium: Price::from_raw(self.entry_premium),
            contracts: self.contracts,
            entry_underlying_price: Price::from_raw(self.entry_underlying_price),
            margin_at_entry: Money::from_cents(self.margin_at_entry),
            exit_date: self.exit_date,
            exit_time: self.exit_time.map(utc),
            exit_premium: self.exit_premium.map(Price::from_raw),
            exit_reason: self
                .exit_reason
                .as_deref()
                .map(|r| at.parse("exit_reason", r))
                .transpose()?,
            profit_loss: self.profit_loss.map(Money::from_cents),
            profit_pct: self.profit_pct,
            roi: self.roi,
            days_held: self.days_held,
            otm_pct: self.otm_pct,
            dte: self.dte,
            vix_at_entry: self.vix_at_entry,
            market_regime: at.parse("market_regime", &self.market_regime)?,
            is_experiment: self.is_experiment,
            experiment_id: self.experiment_id,
            experiment_arm: self.experiment_arm,
            commissions: Money::from_cents(self.commissions),
            status: at.lookup("status", &self.status, codec::trade_status_from)?,
            trade_id: self.trade_id,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct OrderRow {
    pub order_ref: String,
    pub broker_order_id: Option<i64>,
    pub contract_key: String,
    pub contract: String,
    pub side: String,
    pub quantity: i64,
    pub limit_price: i64,
    pub time_in_force: String,
    pub purpose: String,
    pub trade_id: Option<String>,
    pub status: String,
    pub filled_quantity: i64,
    pub avg_fill_price: Option<i64>,
    pub commission: i64,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub context: String,
}

impl OrderRow {
    pub fn from_domain(o: &Order) -> Result<Self, StoreError> {
        let i = &o.intent;
        Ok(OrderRow {
            order_ref: i.order_ref.clone(),
            broker_order_id: o.broker_order_id,
            contract_key: i.contract.key(),
            contract: to_json(&format!("contract of order {}", i.order_ref), &i.contract)?,
            side: codec::side_str(i.side).to_string(),
            quantity: i.quantity,
            limit_price: i.limit_price.raw(),
            time_in_force: codec::tif_str(i.time_in_force).to_string(),
            purpose: codec::purpose_str(i.purpose).to_string(),
            trade_id: i.trade_id.clone(),
            status: o.status.as_str().to_string(),
            filled_quantity: o.filled_quantity,
            avg_fill_price: o.avg_fill_price.map(Price::raw),
            commission: o.commission.cents(),
            reason: o.reason.clone(),
            created_at: ts(i.created_at),
            updated_at: ts(o.updated_at),
            context: to_json(&format!("context of order {}", i.order_ref), &o.context)?,
        })
    }

    pub fn into_domain(self) -> Result<Order, StoreError> {
        let row = format!("order_ref={}", self.order_ref);
        let at = At {
            table: "orders",
            row: &row,
        };
        let contract: Contract = at.json("contract", &self.contract)?;
        let context: serde_json::Value = at.json("context", &self.context)?;
        Ok(Order {
            context,
            status: at.parse("status", &self.status)?,
            broker_order_id: self.broker_order_id,
            filled_quantity: self.filled_quantity,
            avg_fill_price: self.avg_fill_price.map(Price::from_raw),
            commission: Money::from_cents(self.commission),
            reason: self.reason,
            updated_at: utc(self.updated_at),
            intent: OrderIntent {
                contract,
                side: at.lookup("side", &self.side, codec::side_from)?,
                quantity: self.quantity,
                limit_price: Price::from_raw(self.limit_price),
                time_in_force: at.lookup("time_in_force", &self.time_in_force, codec::tif_from)?,
                purpose: at.lookup("purpose", &self.purpose, codec::purpose_from)?,
                trade_id: self.trade_id,
                created_at: utc(self.created_at),
                order_ref: self.order_ref,
            },
        })
    }
}

/// The mutable part of an order: what `update_order` writes. The intent is
/// written once by `insert_order` and never changed.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = orders, check_for_backend(diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub(crate) struct OrderStateRow {
    pub broker_order_id: Option<i64>,
    pub status: String,
    pub filled_quantity: i64,
    pub avg_fill_price: Option<i64>,
    pub commission: i64,
    pub reason: Option<String>,
    pub updated_at: NaiveDateTime,
}

impl OrderStateRow {
    pub fn from_domain(o: &Order) -> Self {
        OrderStateRow {
            broker_order_id: o.broker_order_id,
            status: o.status.as_str().to_string(),
            filled_quantity: o.filled_quantity,
            avg_fill_price: o.avg_fill_price.map(Price::raw),
            commission: o.commission.cents(),
            reason: o.reason.clone(),
            updated_at: ts(o.updated_at),
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = order_events, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct OrderEventRow {
    pub order_ref: String,
    pub status: String,
    pub reason: Option<String>,
    pub time: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = fills, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct FillRow {
    pub exec_id: String,
    pub order_ref: String,
    pub contract: String,
    pub side: String,
    pub quantity: i64,
    pub price: i64,
    pub commission: i64,
    pub time: NaiveDateTime,
}

impl FillRow {
    pub fn from_domain(f: &Fill) -> Result<Self, StoreError> {
        Ok(FillRow {
            exec_id: f.exec_id.clone(),
            order_ref: f.order_ref.clone(),
            contract: to_json(&format!("contract of fill {}", f.exec_id), &f.contract)?,
            side: codec::side_str(f.side).to_string(),
            quantity: f.quantity,
            price: f.price.raw(),
            commission: f.commission.cents(),
            time: ts(f.time),
        })
    }

    pub fn into_domain(self) -> Result<Fill, StoreError> {
        let row = format!("exec_id={}", self.exec_id);
        let at = At {
            table: "fills",
            row: &row,
        };
        Ok(Fill {
            contract: at.json("contract", &self.contract)?,
            side: at.lookup("side", &self.side, codec::side_from)?,
            order_ref: self.order_ref,
            quantity: self.quantity,
            price: Price::from_raw(self.price),
            commission: Money::from_cents(self.commission),
            time: utc(self.time),
            exec_id: self.exec_id,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = positions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct PositionRow {
    pub contract_key: String,
    pub contract: String,
    pub quantity: i64,
    pub avg_cost: i64,
    pub market_price: Option<i64>,
    pub updated_at: NaiveDateTime,
}

impl PositionRow {
    pub fn from_domain(p: &Position) -> Result<Self, StoreError> {
        let key = p.contract.key();
        Ok(PositionRow {
            contract: to_json(&format!("contract of position {key}"), &p.contract)?,
            contract_key: key,
            quantity: p.quantity,
            avg_cost: p.avg_cost.raw(),
            market_price: p.market_price.map(Price::raw),
            updated_at: ts(p.updated_at),
        })
    }

    pub fn into_domain(self) -> Result<Position, StoreError> {
        let row = format!("contract_key={}", self.contract_key);
        let at = At {
            table: "positions",
            row: &row,
        };
        Ok(Position {
            contract: at.json("contract", &self.contract)?,
            quantity: self.quantity,
            avg_cost: Price::from_raw(self.avg_cost),
            market_price: self.market_price.map(Price::from_raw),
            updated_at: utc(self.updated_at),
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_snapshots, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SnapshotRow {
    pub time: NaiveDateTime,
    pub account: String,
    pub net_liquidation: i64,
    pub cash: i64,
    pub excess_liquidity: i64,
    pub initial_margin: i64,
    pub maintenance_margin: i64,
    pub realized_pnl: i64,
    pub unrealized_pnl: i64,
}

impl SnapshotRow {
    pub fn from_domain(s: &AccountSnapshot) -> Self {
        SnapshotRow {
            time: ts(s.time),
            account: s.account.clone(),
            net_liquidation: s.net_liquidation.cents(),
            cash: s.cash.cents(),
            excess_liquidity: s.excess_liquidity.cents(),
            initial_margin: s.initial_margin.cents(),
            maintenance_margin: s.maintenance_margin.cents(),
            realized_pnl: s.realized_pnl.cents(),
            unrealized_pnl: s.unrealized_pnl.cents(),
        }
    }

    pub fn into_domain(self) -> AccountSnapshot {
        AccountSnapshot {
            time: utc(self.time),
            account: self.account,
            net_liquidation: Money::from_cents(self.net_liquidation),
            cash: Money::from_cents(self.cash),
            excess_liquidity: Money::from_cents(self.excess_liquidity),
            initial_margin: Money::from_cents(self.initial_margin),
            maintenance_margin: Money::from_cents(self.maintenance_margin),
            realized_pnl: Money::from_cents(self.realized_pnl),
            unrealized_pnl: Money::from_cents(self.unrealized_pnl),
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_entries, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct LedgerRow {
    pub time: NaiveDateTime,
    pub kind: String,
    pub amount: i64,
    pub reference: String,
}

impl LedgerRow {
    pub fn from_domain(e: &LedgerEntry) -> Self {
        LedgerRow {
            time: ts(e.time),
            kind: e.kind.as_str().to_string(),
            amount: e.amount.cents(),
            reference: e.reference.clone(),
        }
    }

    pub fn into_domain(self, id: i64) -> Result<LedgerEntry, StoreError> {
        let row = format!("id={id}");
        let at = At {
            table: "ledger_entries",
            row: &row,
        };
        Ok(LedgerEntry {
            time: utc(self.time),
            kind: at.lookup("kind", &self.kind, codec::ledger_kind_from)?,
            amount: Money::from_cents(self.amount),
            reference: self.reference,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct AuditRow {
    pub time: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub context: String,
    pub decision: Option<String>,
    pub outcome: Option<String>,
}

impl AuditRow {
    pub fn from_domain(a: &AuditEntry) -> Result<Self, StoreError> {
        Ok(AuditRow {
            time: ts(a.time),
            actor: a.actor.clone(),
            action: a.action.clone(),
            context: to_json(&format!("context of audit entry {}", a.action), &a.context)?,
            decision: a.decision.clone(),
            outcome: a.outcome.clone(),
        })
    }

    pub fn into_domain(self, id: i64) -> Result<AuditEntry, StoreError> {
        let row = format!("id={id}");
        let at = At {
            table: "audit_log",
            row: &row,
        };
        Ok(AuditEntry {
            time: utc(self.time),
            context: at.json("context", &self.context)?,
            actor: self.actor,
            action: self.action,
            decision: self.decision,
            outcome: self.outcome,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = decision_records, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct DecisionRow {
    pub time: NaiveDateTime,
    pub kind: String,
    pub subject: String,
    pub decision: String,
    pub reason: String,
    pub criteria: String,
    pub context: String,
}

impl DecisionRow {
    pub fn from_domain(d: &DecisionRecord) -> Result<Self, StoreError> {
        let what = format!("decision record on {}", d.subject);
        Ok(DecisionRow {
            time: ts(d.time),
            kind: d.kind.as_str().to_string(),
            subject: d.subject.clone(),
            decision: d.decision.clone(),
            reason: d.reason.clone(),
            criteria: to_json(&what, &d.criteria)?,
            context: to_json(&what, &d.context)?,
        })
    }

    pub fn into_domain(self, id: i64) -> Result<DecisionRecord, StoreError> {
        let row = format!("id={id}");
        let at = At {
            table: "decision_records",
            row: &row,
        };
        Ok(DecisionRecord {
            time: utc(self.time),
            kind: at.parse("kind", &self.kind)?,
            criteria: at.json("criteria", &self.criteria)?,
            context: at.json("context", &self.context)?,
            subject: self.subject,
            decision: self.decision,
            reason: self.reason,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = experiments, check_for_backend(diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub(crate) struct ExperimentRow {
    pub experiment_id: String,
    pub name: String,
    pub hypothesis: String,
    pub parameter_name: String,
    pub control_value: String,
    pub test_value: String,
    pub allocation: f64,
    pub min_samples: i64,
    pub status: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub control_trades: i64,
    pub test_trades: i64,
    pub p_value: Option<f64>,
    pub effect_size: Option<f64>,
    pub decision: Option<String>,
}

impl ExperimentRow {
    pub fn from_domain(e: &Experiment) -> Self {
        ExperimentRow {
            experiment_id: e.experiment_id.clone(),
            name: e.name.clone(),
            hypothesis: e.hypothesis.clone(),
            parameter_name: e.parameter_name.clone(),
            control_value: e.control_value.clone(),
            test_value: e.test_value.clone(),
            allocation: e.allocation,
            min_samples: e.min_samples,
            status: e.status.as_str().to_string(),
            start_date: e.start_date,
            end_date: e.end_date,
            control_trades: e.control_trades,
            test_trades: e.test_trades,
            p_value: e.p_value,
            effect_size: e.effect_size,
            decision: e.decision.clone(),
        }
    }

    pub fn into_domain(self) -> Result<Experiment, StoreError> {
        let row = format!("experiment_id={}", self.experiment_id);
        let at = At {
            table: "experiments",
            row: &row,
        };
        Ok(Experiment {
            status: at.parse("status", &self.status)?,
            experiment_id: self.experiment_id,
            name: self.name,
            hypothesis: self.hypothesis,
            parameter_name: self.parameter_name,
            control_value: self.control_value,
            test_value: self.test_value,
            allocation: self.allocation,
            min_samples: self.min_samples,
            start_date: self.start_date,
            end_date: self.end_date,
            control_trades: self.control_trades,
            test_trades: self.test_trades,
            p_value: self.p_value,
            effect_size: self.effect_size,
            decision: self.decision,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = patterns, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct PatternRow {
    pub pattern_type: String,
    pub pattern_name: String,
    pub sample_size: i64,
    pub win_rate: f64,
    pub avg_roi: f64,
    pub confidence: f64,
    pub p_value: f64,
    pub status: String,
    pub date_detected: NaiveDate,
    pub context: String,
}

impl PatternRow {
    pub fn from_domain(p: &Pattern) -> Result<Self, StoreError> {
        Ok(PatternRow {
            pattern_type: p.pattern_type.clone(),
            pattern_name: p.pattern_name.clone(),
            sample_size: p.sample_size,
            win_rate: p.win_rate,
            avg_roi: p.avg_roi,
            confidence: p.confidence,
            p_value: p.p_value,
            status: p.status.as_str().to_string(),
            date_detected: p.date_detected,
            context: to_json(
                &format!("context of pattern {}", p.pattern_name),
                &p.context,
            )?,
        })
    }

    pub fn into_domain(self, id: i64) -> Result<Pattern, StoreError> {
        let row = format!("id={id}");
        let at = At {
            table: "patterns",
            row: &row,
        };
        Ok(Pattern {
            status: at.parse("status", &self.status)?,
            context: at.json("context", &self.context)?,
            pattern_type: self.pattern_type,
            pattern_name: self.pattern_name,
            sample_size: self.sample_size,
            win_rate: self.win_rate,
            avg_roi: self.avg_roi,
            confidence: self.confidence,
            p_value: self.p_value,
            date_detected: self.date_detected,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = learning_history, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct LearningRow {
    pub event_type: String,
    pub event_date: NaiveDateTime,
    pub pattern_name: Option<String>,
    pub confidence: Option<f64>,
    pub sample_size: Option<i64>,
    pub parameter_changed: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reasoning: String,
}

impl LearningRow {
    pub fn from_domain(e: &LearningEvent) -> Self {
        LearningRow {
            event_type: e.event_type.as_str().to_string(),
            event_date: ts(e.event_date),
            pattern_name: e.pattern_name.clone(),
            confidence: e.confidence,
            sample_size: e.sample_size,
            parameter_changed: e.parameter_changed.clone(),
            old_value: e.old_value.clone(),
            new_value: e.new_value.clone(),
            reasoning: e.reasoning.clone(),
        }
    }

    pub fn into_domain(self, id: i64) -> Result<LearningEvent, StoreError> {
        let row = format!("id={id}");
        let at = At {
            table: "learning_history",
            row: &row,
        };
        Ok(LearningEvent {
            event_type: at.parse("event_type", &self.event_type)?,
            event_date: utc(self.event_date),
            pattern_name: self.pattern_name,
            confidence: self.confidence,
            sample_size: self.sample_size,
            parameter_changed: self.parameter_changed,
            old_value: self.old_value,
            new_value: self.new_value,
            reasoning: self.reasoning,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = slippage, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SlippageRow {
    pub exec_id: String,
    pub order_ref: String,
    pub time: NaiveDateTime,
    pub side: String,
    pub quantity: i64,
    pub fill_price: i64,
    pub limit_price: i64,
    pub mid_at_send: Option<i64>,
    pub vs_mid: Option<i64>,
    pub vs_limit: i64,
}

impl SlippageRow {
    pub fn from_domain(s: &Slippage) -> Self {
        SlippageRow {
            exec_id: s.exec_id.clone(),
            order_ref: s.order_ref.clone(),
            time: ts(s.time),
            side: codec::side_str(s.side).to_string(),
            quantity: s.quantity,
            fill_price: s.fill_price.raw(),
            limit_price: s.limit_price.raw(),
            mid_at_send: s.mid_at_send.map(Price::raw),
            vs_mid: s.vs_mid.map(Price::raw),
            vs_limit: s.vs_limit.raw(),
        }
    }

    pub fn into_domain(self) -> Result<Slippage, StoreError> {
        let row = format!("exec_id={}", self.exec_id);
        let at = At {
            table: "slippage",
            row: &row,
        };
        Ok(Slippage {
            side: at.lookup("side", &self.side, codec::side_from)?,
            exec_id: self.exec_id,
            order_ref: self.order_ref,
            time: utc(self.time),
            quantity: self.quantity,
            fill_price: Price::from_raw(self.fill_price),
            limit_price: Price::from_raw(self.limit_price),
            mid_at_send: self.mid_at_send.map(Price::from_raw),
            vs_mid: self.vs_mid.map(Price::from_raw),
            vs_limit: Price::from_raw(self.vs_limit),
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = shadow_trades, check_for_backend(diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub(crate) struct ShadowRow {
    pub shadow_id: String,
    pub created_at: NaiveDateTime,
    pub symbol: String,
    pub sector: Option<String>,
    pub strike: i64,
    pub expiration: NaiveDate,
    pub entry_premium: i64,
    pub entry_underlying_price: i64,
    pub otm_pct: f64,
    pub dte: i64,
    pub margin_at_entry: i64,
    pub origin: String,
    pub reason: String,
    pub experiment_id: Option<String>,
    pub experiment_arm: Option<String>,
    pub vix_at_entry: Option<f64>,
    pub status: String,
    pub exit_time: Option<NaiveDateTime>,
    pub exit_premium: Option<i64>,
    pub exit_reason: Option<String>,
    pub profit_loss: Option<i64>,
    pub roi: Option<f64>,
}

impl ShadowRow {
    pub fn from_domain(t: &ShadowTrade) -> Self {
        ShadowRow {
            shadow_id: t.shadow_id.clone(),
            created_at: ts(t.created_at),
            symbol: t.symbol.to_string(),
            sector: t.sector.clone(),
            strike: t.strike.raw(),
            expiration: t.expiration,
            entry_premium: t.entry_premium.raw(),
            entry_underlying_price: t.entry_underlying_price.raw(),
            otm_pct: t.otm_pct,
            dte: t.dte,
            margin_at_entry: t.margin_at_entry.cents(),
            origin: t.origin.as_str().to_string(),
            reason: t.reason.clone(),
            experiment_id: t.experiment_id.clone(),
            experiment_arm: t.experiment_arm.clone(),
            vix_at_entry: t.vix_at_entry,
            status: codec::trade_status_str(t.status).to_string(),
            exit_time: t.exit_time.map(ts),
            exit_premium: t.exit_premium.map(Price::raw),
            exit_reason: t.exit_reason.map(|r| r.as_str().to_string()),
            profit_loss: t.profit_loss.map(Money::cents),
            roi: t.roi,
        }
    }

    pub fn into_domain(self) -> Result<ShadowTrade, StoreError> {
        let row = format!("shadow_id={}", self.shadow_id);
        let at = At {
            table: "shadow_trades",
            row: &row,
        };
        Ok(ShadowTrade {
            created_at: utc(self.created_at),
            symbol: Symbol::new(&self.symbol).map_err(|e| at.corrupt("symbol", e))?,
            sector: self.sector,
            strike: Price::from_raw(self.strike),
            expiration: self.expiration,
            entry_premium: Price::from_raw(self.entry_premium),
            entry_underlying_price: Price::from_raw(self.entry_underlying_price),
            otm_pct: self.otm_pct,
            dte: self.dte,
            margin_at_entry: Money::from_cents(self.margin_at_entry),
            origin: at.parse("origin", &self.origin)?,
            reason: self.reason,
            experiment_id: self.experiment_id,
            experiment_arm: self.experiment_arm,
            vix_at_entry: self.vix_at_entry,
            status: at.lookup("status", &self.status, codec::trade_status_from)?,
            exit_time: self.exit_time.map(utc),
            exit_premium: self.exit_premium.map(Price::from_raw),
            exit_reason: self
                .exit_reason
                .as_deref()
                .map(|r| at.parse("exit_reason", r))
                .transpose()?,
            profit_loss: self.profit_loss.map(Money::from_cents),
            roi: self.roi,
            shadow_id: self.shadow_id,
        })
    }
}
