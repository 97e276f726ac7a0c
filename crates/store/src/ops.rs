//! The queries behind the repository traits, each on a connection the
//! caller has already put in a transaction (see `Store::write`/`read`).

use chrono::{DateTime, NaiveDateTime, Utc};
use core_domain::{
    AccountSnapshot, AuditEntry, DecisionRecord, Experiment, Fill, LearningEvent, LedgerEntry,
    Money, Order, OrderStatus, Pattern, PatternStatus, Position, ShadowTrade, Slippage, Trade,
    TradeFilter,
};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use crate::codec::{self, At, to_json, utc};
use crate::rows::*;
use crate::schema::*;
use crate::{OrderEvent, StoreError};

type Conn = SqliteConnection;
type R<T> = Result<T, StoreError>;

/// A `LIMIT` from a caller's count: negative means none.
fn limit(n: i64) -> i64 {
    n.max(0)
}

// ---------------------------------------------------------------- trades

pub fn insert_trade(c: &mut Conn, t: &Trade) -> R<()> {
    diesel::insert_into(trades::table)
        .values(TradeRow::from_domain(t))
        .execute(c)
        .map_err(StoreError::on_insert(
            format!("trade {}", t.trade_id),
            || format!("experiment {}", t.experiment_id.as_deref().unwrap_or("?")),
        ))?;
    Ok(())
}

pub fn update_trade(c: &mut Conn, t: &Trade) -> R<()> {
    let n = diesel::update(trades::table.filter(trades::trade_id.eq(&t.trade_id)))
        .set(TradeRow::from_domain(t))
        .execute(c)
        .map_err(StoreError::on_insert(
            format!("trade {}", t.trade_id),
            || format!("experiment {}", t.experiment_id.as_deref().unwrap_or("?")),
        ))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("trade {}", t.trade_id),
        });
    }
    Ok(())
}

pub fn trade(c: &mut Conn, trade_id: &str) -> R<Option<Trade>> {
    trades::table
        .filter(trades::trade_id.eq(trade_id))
        .select(TradeRow::as_select())
        .first(c)
        .optional()
        .map_err(StoreError::query(format!("read trade {trade_id}")))?
        .map(TradeRow::into_domain)
        .transpose()
}

pub fn trades(c: &mut Conn, f: &TradeFilter) -> R<Vec<Trade>> {
    let mut q = trades::table.select(TradeRow::as_select()).into_boxed();
    if let Some(open) = f.open {
        let status = if open { "open" } else { "closed" };
        q = q.filter(trades::status.eq(status));
    }
    if let Some(symbol) = &f.symbol {
        q = q.filter(trades::symbol.eq(symbol.as_str()));
    }
    if let Some(experiment_id) = &f.experiment_id {
        q = q.filter(trades::experiment_id.eq(experiment_id));
    }
    q = q.order((trades::entry_time.desc(), trades::id.desc()));
    if let Some(n) = f.limit {
        q = q.limit(limit(n));
    }
    q.load(c)
        .map_err(StoreError::query("list trades"))?
        .into_iter()
        .map(TradeRow::into_domain)
        .collect()
}

// ---------------------------------------------------------------- orders

fn append_order_event(c: &mut Conn, o: &Order) -> R<()> {
    diesel::insert_into(order_events::table)
        .values(OrderEventRow {
            order_ref: o.intent.order_ref.clone(),
            status: o.status.as_str().to_string(),
            reason: o.reason.clone(),
            time: codec::ts(o.updated_at),
        })
        .execute(c)
        .map_err(StoreError::query(format!(
            "append a status event of order {}",
            o.intent.order_ref
        )))?;
    Ok(())
}

pub fn insert_order(c: &mut Conn, o: &Order) -> R<()> {
    diesel::insert_into(orders::table)
        .values(OrderRow::from_domain(o)?)
        .execute(c)
        .map_err(StoreError::on_insert(
            format!("order {}", o.intent.order_ref),
            String::new,
        ))?;
    append_order_event(c, o)
}

pub fn update_order(c: &mut Conn, o: &Order) -> R<()> {
    let order_ref = &o.intent.order_ref;
    let before: Option<(String, i64)> = orders::table
        .filter(orders::order_ref.eq(order_ref))
        .select((orders::status, orders::filled_quantity))
        .first(c)
        .optional()
        .map_err(StoreError::query(format!("read order {order_ref}")))?;
    let Some((status_before, filled_before)) = before else {
        return Err(StoreError::NotFound {
            what: format!("order {order_ref}"),
        });
    };
    // The stored order may only move forward along the state machine.
    let stored: OrderStatus = status_before.parse().map_err(|_| StoreError::Corrupt {
        table: "orders",
        row: order_ref.clone(),
        column: "status",
        detail: format!("unknown status {status_before:?}"),
    })?;
    if (stored != o.status && !stored.can_reach(o.status)) || o.filled_quantity < filled_before {
        return Err(StoreError::Conflict {
            what: format!(
                "order {order_ref} is stored as {stored} with {filled_before} filled; {} with {} filled does not follow from it",
                o.status, o.filled_quantity
            ),
        });
    }
    diesel::update(orders::table.filter(orders::order_ref.eq(order_ref)))
        .set(OrderStateRow::from_domain(o))
        .execute(c)
        .map_err(StoreError::query(format!("update order {order_ref}")))?;
    if status_before != o.status.as_str() || filled_before != o.filled_quantity {
        append_order_event(c, o)?;
    }
    Ok(())
}

pub fn order(c: &mut Conn, order_ref: &str) -> R<Option<Order>> {
    orders::table
        .filter(orders::order_ref.eq(order_ref))
        .select(OrderRow::as_select())
        .first(c)
        .optional()
        .map_err(StoreError::query(format!("read order {order_ref}")))?
        .map(OrderRow::into_domain)
        .transpose()
}

/// The statuses an order ends in (`OrderStatus::is_terminal`), spelled
/// out so that [`open_orders`] is one fixed statement, prepared once and
/// cached (a bound list of variable length is prepared at every call).
pub(crate) const TERMINAL_STATUSES: [OrderStatus; 4] = [
    OrderStatus::Filled,
    OrderStatus::Cancelled,
    OrderStatus::Rejected,
    OrderStatus::Expired,
];

pub fn open_orders(c: &mut Conn) -> R<Vec<Order>> {
    let [a, b, d, e] = TERMINAL_STATUSES.map(OrderStatus::as_str);
    orders::table
        .filter(
            orders::status
                .ne(a)
                .and(orders::status.ne(b))
                .and(orders::status.ne(d))
                .and(orders::status.ne(e)),
        )
        .order(orders::id.asc())
        .select(OrderRow::as_select())
        .load(c)
        .map_err(StoreError::query("list open orders"))?
        .into_iter()
        .map(OrderRow::into_domain)
        .collect()
}

pub fn order_events(c: &mut Conn, order_ref: &str) -> R<Vec<OrderEvent>> {
    let rows: Vec<(i64, OrderEventRow)> = order_events::table
        .filter(order_events::order_ref.eq(order_ref))
        .order(order_events::id.asc())
        .select((order_events::id, OrderEventRow::as_select()))
        .load(c)
        .map_err(StoreError::query(format!(
            "read the history of order {order_ref}"
        )))?;
    rows.into_iter()
        .map(|(id, r)| {
            let row = format!("id={id}");
            let at = At {
                table: "order_events",
                row: &row,
            };
            Ok(OrderEvent {
                id,
                status: at.parse("status", &r.status)?,
                reason: r.reason,
                time: utc(r.time),
            })
        })
        .collect()
}

pub fn record_fill(c: &mut Conn, f: &Fill) -> R<bool> {
    let n = diesel::insert_into(fills::table)
        .values(FillRow::from_domain(f)?)
        .on_conflict(fills::exec_id)
        .do_nothing()
        .execute(c)
        .map_err(StoreError::on_insert(format!("fill {}", f.exec_id), || {
            format!("order {}", f.order_ref)
        }))?;
    Ok(n == 1)
}

/// Restates a recorded fill (a late commission report or an execution
/// correction): its quantity, price and commission take the given values;
/// its id, order, contract, side and time stay. `Ok(false)` when no fill
/// has that `exec_id`.
pub fn amend_fill(c: &mut Conn, f: &Fill) -> R<bool> {
    let n = diesel::update(fills::table.filter(fills::exec_id.eq(&f.exec_id)))
        .set((
            fills::quantity.eq(f.quantity),
            fills::price.eq(f.price.raw()),
            fills::commission.eq(f.commission.cents()),
        ))
        .execute(c)
        .map_err(StoreError::query(format!("amend fill {}", f.exec_id)))?;
    Ok(n == 1)
}

pub fn fill(c: &mut Conn, exec_id: &str) -> R<Option<Fill>> {
    fills::table
        .filter(fills::exec_id.eq(exec_id))
        .select(FillRow::as_select())
        .first(c)
        .optional()
        .map_err(StoreError::query(format!("read fill {exec_id}")))?
        .map(FillRow::into_domain)
        .transpose()
}

pub fn all_orders(c: &mut Conn) -> R<Vec<Order>> {
    orders::table
        .order((orders::created_at.asc(), orders::id.asc()))
        .select(OrderRow::as_select())
        .load(c)
        .map_err(StoreError::query("read every order"))?
        .into_iter()
        .map(OrderRow::into_domain)
        .collect()
}

pub fn orders_for_trade(c: &mut Conn, trade_id: &str) -> R<Vec<Order>> {
    orders::table
        .filter(orders::trade_id.eq(trade_id))
        .order((orders::created_at.asc(), orders::id.asc()))
        .select(OrderRow::as_select())
        .load(c)
        .map_err(StoreError::query(format!(
            "read the orders of trade {trade_id}"
        )))?
        .into_iter()
        .map(OrderRow::into_domain)
        .collect()
}

pub fn record_slippage(c: &mut Conn, s: &Slippage) -> R<()> {
    diesel::insert_into(slippage::table)
        .values(SlippageRow::from_domain(s))
        .on_conflict(slippage::exec_id)
        .do_nothing()
        .execute(c)
        .map_err(StoreError::on_insert(
            format!("slippage of fill {}", s.exec_id),
            || format!("fill {} of order {}", s.exec_id, s.order_ref),
        ))?;
    Ok(())
}

pub fn slippage_of(c: &mut Conn, order_ref: &str) -> R<Vec<Slippage>> {
    slippage::table
        .filter(slippage::order_ref.eq(order_ref))
        .order((slippage::time.asc(), slippage::id.asc()))
        .select(SlippageRow::as_select())
        .load(c)
        .map_err(StoreError::query(format!(
            "read the slippage of order {order_ref}"
        )))?
        .into_iter()
        .map(SlippageRow::into_domain)
        .collect()
}

pub fn fills(c: &mut Conn, order_ref: &str) -> R<Vec<Fill>> {
    fills::table
        .filter(fills::order_ref.eq(order_ref))
        .order((fills::time.asc(), fills::id.asc()))
        .select(FillRow::as_select())
        .load(c)
        .map_err(StoreError::query(format!(
            "read the fills of order {order_ref}"
        )))?
        .into_iter()
        .map(FillRow::into_domain)
        .collect()
}

pub fn last_fill_time(c: &mut Conn) -> R<Option<DateTime<Utc>>> {
    let t: Option<NaiveDateTime> = fills::table
        .select(diesel::dsl::max(fills::time))
        .first(c)
        .map_err(StoreError::query("read the newest fill time"))?;
    Ok(t.map(utc))
}

// ---------------------------------------------------------------- account

pub fn replace_positions(c: &mut Conn, ps: &[Position]) -> R<()> {
    diesel::delete(positions::table)
        .execute(c)
        .map_err(StoreError::query("delete the stored positions"))?;
    for p in ps {
        let row = PositionRow::from_domain(p)?;
        let what = format!("position {}", row.contract_key);
        diesel::insert_into(positions::table)
            .values(row)
            .execute(c)
            .map_err(StoreError::on_insert(what, String::new))?;
    }
    Ok(())
}

pub fn positions(c: &mut Conn) -> R<Vec<Position>> {
    positions::table
        .order(positions::contract_key.asc())
        .select(PositionRow::as_select())
        .load(c)
        .map_err(StoreError::query("read the positions"))?
        .into_iter()
        .map(PositionRow::into_domain)
        .collect()
}

pub fn insert_snapshot(c: &mut Conn, s: &AccountSnapshot) -> R<()> {
    diesel::insert_into(account_snapshots::table)
        .values(SnapshotRow::from_domain(s))
        .execute(c)
        .map_err(StoreError::query("insert an account snapshot"))?;
    Ok(())
}

pub fn latest_snapshot(c: &mut Conn) -> R<Option<AccountSnapshot>> {
    Ok(account_snapshots::table
        .order((account_snapshots::time.desc(), account_snapshots::id.desc()))
        .select(SnapshotRow::as_select())
        .first(c)
        .optional()
        .map_err(StoreError::query("read the latest account snapshot"))?
        .map(SnapshotRow::into_domain))
}

pub fn snapshots(c: &mut Conn, from: DateTime<Utc>, to: DateTime<Utc>) -> R<Vec<AccountSnapshot>> {
    Ok(account_snapshots::table
        .filter(account_snapshots::time.ge(from.naive_utc()))
        .filter(account_snapshots::time.le(to.naive_utc()))
        .order((account_snapshots::time.asc(), account_snapshots::id.asc()))
        .select(SnapshotRow::as_select())
        .load(c)
        .map_err(StoreError::query("read the account snapshots"))?
        .into_iter()
        .map(SnapshotRow::into_domain)
        .collect())
}

pub fn append_ledger(c: &mut Conn, entries: &[LedgerEntry]) -> R<()> {
    for e in entries {
        diesel::insert_into(ledger_entries::table)
            .values(LedgerRow::from_domain(e))
            .execute(c)
            .map_err(StoreError::query(format!(
                "append a ledger entry for {}",
                e.reference
            )))?;
    }
    Ok(())
}

pub fn ledger_balance(c: &mut Conn) -> R<Money> {
    // SUM over integers is exact in SQLite (it fails on overflow rather than
    // switching to floating point); the CAST keeps PostgreSQL's NUMERIC sum
    // an integer too.
    let cents: i64 = ledger_entries::table
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
        ))
        .first(c)
        .map_err(StoreError::query("sum the ledger"))?;
    Ok(Money::from_cents(cents))
}

pub fn ledger_entries(c: &mut Conn, reference: Option<&str>) -> R<Vec<LedgerEntry>> {
    let mut q = ledger_entries::table
        .select((ledger_entries::id, LedgerRow::as_select()))
        .into_boxed();
    if let Some(r) = reference {
        q = q.filter(ledger_entries::reference.eq(r));
    }
    let rows: Vec<(i64, LedgerRow)> = q
        .order(ledger_entries::id.asc())
        .load(c)
        .map_err(StoreError::query("read the ledger"))?;
    rows.into_iter().map(|(id, r)| r.into_domain(id)).collect()
}

// ---------------------------------------------------------------- audit

pub fn append_audit(c: &mut Conn, a: &AuditEntry) -> R<()> {
    diesel::insert_into(audit_log::table)
        .values(AuditRow::from_domain(a)?)
        .execute(c)
        .map_err(StoreError::query(format!(
            "append audit entry {}",
            a.action
        )))?;
    Ok(())
}

pub fn recent_audit(c: &mut Conn, n: i64) -> R<Vec<AuditEntry>> {
    let rows: Vec<(i64, AuditRow)> = audit_log::table
        .order((audit_log::time.desc(), audit_log::id.desc()))
        .limit(limit(n))
        .select((audit_log::id, AuditRow::as_select()))
        .load(c)
        .map_err(StoreError::query("read the audit log"))?;
    rows.into_iter().map(|(id, r)| r.into_domain(id)).collect()
}

pub fn append_decision(c: &mut Conn, d: &DecisionRecord) -> R<()> {
    diesel::insert_into(decision_records::table)
        .values(DecisionRow::from_domain(d)?)
        .execute(c)
        .map_err(StoreError::query(format!(
            "append a decision record on {}",
            d.subject
        )))?;
    Ok(())
}

pub fn recent_decisions(c: &mut Conn, n: i64) -> R<Vec<DecisionRecord>> {
    let rows: Vec<(i64, DecisionRow)> = decision_records::table
        .order((decision_records::time.desc(), decision_records::id.desc()))
        .limit(limit(n))
        .select((decision_records::id, DecisionRow::as_select()))
        .load(c)
        .map_err(StoreError::query("read the decision records"))?;
    rows.into_iter().map(|(id, r)| r.into_domain(id)).collect()
}

pub fn decisions_of_kind_since(
    c: &mut Conn,
    kind: &str,
    since: chrono::NaiveDateTime,
) -> R<Vec<DecisionRecord>> {
    let rows: Vec<(i64, DecisionRow)> = decision_records::table
        .filter(decision_records::kind.eq(kind))
        .filter(decision_records::time.ge(since))
        .order((decision_records::time.asc(), decision_records::id.asc()))
        .select((decision_records::id, DecisionRow::as_select()))
        .load(c)
        .map_err(StoreError::query(format!(
            "read the {kind} decision records"
        )))?;
    rows.into_iter().map(|(id, r)| r.into_domain(id)).collect()
}

// ---------------------------------------------------------------- learning

pub fn insert_experiment(c: &mut Conn, e: &Experiment) -> R<()> {
    diesel::insert_into(experiments::table)
        .values(ExperimentRow::from_domain(e))
        .execute(c)
        .map_err(StoreError::on_insert(
            format!("experiment {}", e.experiment_id),
            String::new,
        ))?;
    Ok(())
}

pub fn update_experiment(c: &mut Conn, e: &Experiment) -> R<()> {
    let n =
        diesel::update(experiments::table.filter(experiments::experiment_id.eq(&e.experiment_id)))
            .set(ExperimentRow::from_domain(e))
            .execute(c)
            .map_err(StoreError::query(format!(
                "update experiment {}",
                e.experiment_id
            )))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("experiment {}", e.experiment_id),
        });
    }
    Ok(())
}

pub fn experiment(c: &mut Conn, experiment_id: &str) -> R<Option<Experiment>> {
    experiments::table
        .filter(experiments::experiment_id.eq(experiment_id))
        .select(ExperimentRow::as_select())
        .first(c)
        .optional()
        .map_err(StoreError::query(format!(
            "read experiment {experiment_id}"
        )))?
        .map(ExperimentRow::into_domain)
        .transpose()
}

pub fn experiments(c: &mut Conn) -> R<Vec<Experiment>> {
    experiments::table
        .order(experiments::id.asc())
        .select(ExperimentRow::as_select())
        .load(c)
        .map_err(StoreError::query("list experiments"))?
        .into_iter()
        .map(ExperimentRow::into_domain)
        .collect()
}

pub fn insert_pattern(c: &mut Conn, p: &Pattern) -> R<i64> {
    diesel::insert_into(patterns::table)
        .values(PatternRow::from_domain(p)?)
        .returning(patterns::id)
        .get_result(c)
        .map_err(StoreError::query(format!(
            "insert pattern {}",
            p.pattern_name
        )))
}

pub fn set_pattern_status(c: &mut Conn, id: i64, status: PatternStatus) -> R<()> {
    let n = diesel::update(patterns::table.find(id))
        .set(patterns::status.eq(status.as_str()))
        .execute(c)
        .map_err(StoreError::query(format!("set the status of pattern {id}")))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("pattern {id}"),
        });
    }
    Ok(())
}

pub fn patterns(c: &mut Conn, status: Option<PatternStatus>) -> R<Vec<(i64, Pattern)>> {
    let mut q = patterns::table
        .select((patterns::id, PatternRow::as_select()))
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(patterns::status.eq(s.as_str()));
    }
    let rows: Vec<(i64, PatternRow)> = q
        .order(patterns::id.asc())
        .load(c)
        .map_err(StoreError::query("list patterns"))?;
    rows.into_iter()
        .map(|(id, r)| Ok((id, r.into_domain(id)?)))
        .collect()
}

pub fn append_learning_event(c: &mut Conn, e: &LearningEvent) -> R<()> {
    diesel::insert_into(learning_history::table)
        .values(LearningRow::from_domain(e))
        .execute(c)
        .map_err(StoreError::query(format!(
            "append learning event {}",
            e.event_type
        )))?;
    Ok(())
}

pub fn learning_history(c: &mut Conn, n: i64) -> R<Vec<LearningEvent>> {
    let rows: Vec<(i64, LearningRow)> = learning_history::table
        .order((
            learning_history::event_date.desc(),
            learning_history::id.desc(),
        ))
        .limit(limit(n))
        .select((learning_history::id, LearningRow::as_select()))
        .load(c)
        .map_err(StoreError::query("read the learning history"))?;
    rows.into_iter().map(|(id, r)| r.into_domain(id)).collect()
}

// ---------------------------------------------------------------- working memory

pub fn remember(c: &mut Conn, key: &str, value: &serde_json::Value) -> R<()> {
    let text = to_json(&format!("working memory {key}"), value)?;
    let now = codec::ts(Utc::now());
    diesel::insert_into(working_memory::table)
        .values((
            working_memory::key.eq(key),
            working_memory::value.eq(&text),
            working_memory::updated_at.eq(now),
        ))
        .on_conflict(working_memory::key)
        .do_update()
        .set((
            working_memory::value.eq(&text),
            working_memory::updated_at.eq(now),
        ))
        .execute(c)
        .map_err(StoreError::query(format!("remember {key}")))?;
    Ok(())
}

pub fn recall(c: &mut Conn, key: &str) -> R<Option<serde_json::Value>> {
    let text: Option<String> = working_memory::table
        .find(key)
        .select(working_memory::value)
        .first(c)
        .optional()
        .map_err(StoreError::query(format!("recall {key}")))?;
    let row = format!("key={key}");
    let at = At {
        table: "working_memory",
        row: &row,
    };
    text.map(|t| at.json("value", &t)).transpose()
}

pub fn forget(c: &mut Conn, key: &str) -> R<()> {
    diesel::delete(working_memory::table.find(key))
        .execute(c)
        .map_err(StoreError::query(format!("forget {key}")))?;
    Ok(())
}

pub fn keys(c: &mut Conn) -> R<Vec<String>> {
    working_memory::table
        .order(working_memory::key.asc())
        .select(working_memory::key)
        .load(c)
        .map_err(StoreError::query("list working memory keys"))
}

pub fn insert_shadow(c: &mut Conn, t: &ShadowTrade) -> R<bool> {
    let n = diesel::insert_into(shadow_trades::table)
        .values(ShadowRow::from_domain(t))
        .on_conflict(shadow_trades::shadow_id)
        .do_nothing()
        .execute(c)
        .map_err(StoreError::query(format!(
            "write shadow trade {}",
            t.shadow_id
        )))?;
    Ok(n == 1)
}

pub fn update_shadow(c: &mut Conn, t: &ShadowTrade) -> R<()> {
    let n = diesel::update(shadow_trades::table.filter(shadow_trades::shadow_id.eq(&t.shadow_id)))
        .set(ShadowRow::from_domain(t))
        .execute(c)
        .map_err(StoreError::query(format!(
            "update shadow trade {}",
            t.shadow_id
        )))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("shadow trade {}", t.shadow_id),
        });
    }
    Ok(())
}

pub fn open_shadows(c: &mut Conn) -> R<Vec<ShadowTrade>> {
    shadow_trades::table
        .filter(shadow_trades::status.eq("open"))
        .order((shadow_trades::created_at.asc(), shadow_trades::id.asc()))
        .select(ShadowRow::as_select())
        .load(c)
        .map_err(StoreError::query("read the open shadow trades"))?
        .into_iter()
        .map(ShadowRow::into_domain)
        .collect()
}

pub fn shadows(c: &mut Conn, limit: i64) -> R<Vec<ShadowTrade>> {
    shadow_trades::table
        .order((shadow_trades::created_at.desc(), shadow_trades::id.desc()))
        .limit(limit)
        .select(ShadowRow::as_select())
        .load(c)
        .map_err(StoreError::query("read the shadow trades"))?
        .into_iter()
        .map(ShadowRow::into_domain)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spelled_out_terminal_statuses_are_exactly_the_terminal_ones() {
        let terminal: Vec<OrderStatus> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, TERMINAL_STATUSES.to_vec());
    }
}
