//! The dashboard's data, read from the database: one function per page,
//! each returning the JSON its `/api/...` route serves and its HTML page
//! renders. Money is in dollars with the unit in the field name
//! (`net_liq_usd`); prices per share likewise (`mark_usd`).

use chrono::{DateTime, Utc};
use core_domain::{
    AccountRepository, AuditRepository, LearningRepository, OrderRepository, PatternStatus, Price,
    Symbol, TradeFilter, TradeRepository,
};
use orchestrator::metrics::{EquityPoint, drawdown_curve, max_drawdown};
use serde::Deserialize;
use serde_json::{Value, json};
use store::Store;

use crate::ops::{self, OpsError, usd};

type R = Result<Value, OpsError>;

fn repo(what: &'static str) -> impl FnOnce(core_domain::RepoError) -> OpsError {
    move |source| OpsError::Repo {
        what: what.into(),
        source,
    }
}

fn stq(what: &'static str) -> impl FnOnce(store::StoreError) -> OpsError {
    move |source| OpsError::Store {
        what: what.into(),
        source,
    }
}

/// Per-share price in dollars.
pub fn px(p: Price) -> f64 {
    p.to_f64()
}

/// The overview: trading state, account, today's P&L, margin use, the
/// breakers, the book (positions with marks, P&L, greeks, DTE, alerts),
/// and the engine.
pub fn status(store: &Store, limits: &risk::RiskLimits, now: DateTime<Utc>) -> R {
    let state = store
        .trading_state()
        .map_err(stq("reading the trading state"))?;
    let view = ops::engine_view(store)?;
    let account = ops::live_account(store)?;
    let pending = store
        .pending_control_requests()
        .map_err(stq("reading the pending control requests"))?;
    let open = store
        .trades(&TradeFilter {
            open: Some(true),
            ..Default::default()
        })
        .map_err(repo("reading the open trades"))?;
    let closed = store
        .trades(&TradeFilter {
            open: Some(false),
            ..Default::default()
        })
        .map_err(repo("reading the closed trades"))?;
    let realized: i64 = closed
        .iter()
        .filter_map(|t| t.profit_loss)
        .map(|m| m.cents())
        .sum();
    let working = store
        .open_orders()
        .map_err(repo("reading the working orders"))?;
    let session_start = view.memory.as_ref().and_then(|m| m.session_start.clone());
    let today = match (&account, &session_start) {
        (Some(a), Some(s)) => Some(usd(a.net_liquidation - s.net_liquidation)),
        _ => None,
    };
    let engine_time = view.memory.as_ref().and_then(|m| m.last_cycle);
    let breakers = ops::breakers(
        limits,
        view.memory.as_ref(),
        account.as_ref(),
        engine_time.unwrap_or(now),
    );
    let (state_name, cause, since) = match state {
        Some(r) => (r.state, r.cause, Some(r.time.and_utc())),
        None => (
            core_domain::TradingState::Active,
            "no state change recorded".to_string(),
            None,
        ),
    };
    let mut v = json!({
        "time": now,
        "trading_state": {"state": state_name, "cause": cause, "since": since},
        "account": account.as_ref().map(|a| json!({
            "time": a.time,
            "account": a.account,
            "net_liq_usd": usd(a.net_liquidation),
            "cash_usd": usd(a.cash),
            "excess_liquidity_usd": usd(a.excess_liquidity),
            "initial_margin_usd": usd(a.initial_margin),
            "maintenance_margin_usd": usd(a.maintenance_margin),
            "unrealized_pnl_usd": usd(a.unrealized_pnl),
            "margin_utilization_pct": (a.margin_utilization() * 10_000.0).round() / 100.0,
        })),
        "session_start_net_liq_usd": session_start.as_ref().map(|s| usd(s.net_liquidation)),
        "today_pnl_usd": today,
        "breakers": breakers,
        "trades": {"open": open.len(), "closed": closed.len(), "realized_pnl_usd": realized as f64 / 100.0},
        "orders_working": working.len(),
        "pending_requests": pending.iter().map(ops::describe_request).collect::<Vec<_>>(),
    });
    if let (Some(all), Value::Object(more)) = (v.as_object_mut(), positions_value(&view)) {
        all.extend(more);
    }
    if let Some(all) = v.as_object_mut() {
        all.insert(
            "engine".into(),
            ops::engine_status_json(&view, &pending)
                .get("engine")
                .cloned()
                .unwrap_or(Value::Null),
        );
        all.insert("working_memory_problems".into(), json!(view.problems));
    }
    Ok(v)
}

fn positions_value(view: &ops::EngineView) -> Value {
    let Some(r) = &view.monitor else {
        return json!({"positions": [], "positions_as_of": null, "book": null});
    };
    let rows: Vec<Value> = r
        .positions
        .iter()
        .map(|p| {
            json!({
                "trade_id": p.trade_id,
                "symbol": p.symbol.to_string(),
                "contract": p.contract,
                "contracts": p.contracts,
                "dte": p.dte,
                "days_held": p.days_held,
                "entry_premium_usd": px(p.entry_premium),
                "mark_usd": p.mark.map(px),
                "underlying_usd": p.underlying_price.map(px),
                "otm_pct": p.otm_pct.map(|x| (x * 10_000.0).round() / 100.0),
                "unrealized_pnl_usd": p.unrealized_pnl.map(usd),
                "max_profit_usd": usd(p.max_profit),
                "profit_pct": p.profit_pct.map(|x| (x * 10_000.0).round() / 100.0),
                "delta": p.greeks.as_ref().map(|g| g.delta),
                "gamma": p.greeks.as_ref().map(|g| g.gamma),
                "theta_per_day_usd": p.greeks.as_ref().map(|g| g.theta / 365.0),
                "vega": p.greeks.as_ref().map(|g| g.vega),
                "implied_vol": p.implied_vol,
                "alerts": p.alerts.iter().map(|a| json!({"kind": ops::alert_kind(a), "message": a.message()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "positions": rows,
        "positions_as_of": r.time,
        "book": {
            "count": r.position_count,
            "unrealized_pnl_usd": usd(r.unrealized_pnl),
            "delta": r.greeks.delta,
            "theta_per_day_usd": r.greeks.theta / 365.0,
            "vega": r.greeks.vega,
        },
    })
}

/// Open positions: the engine monitor's last report, and the broker's
/// positions as stored.
pub fn positions(store: &Store) -> R {
    let view = ops::engine_view(store)?;
    let mut v = positions_value(&view);
    let broker = store.positions().map_err(repo("reading the positions"))?;
    if let Some(all) = v.as_object_mut() {
        all.insert(
            "broker_positions".into(),
            json!(
                broker
                    .iter()
                    .map(|p| json!({
                        "contract": p.contract.key(),
                        "quantity": p.quantity,
                        "avg_cost_usd": px(p.avg_cost),
                        "mark_usd": p.market_price.map(px),
                        "market_value_usd": p.market_value().map(usd),
                        "updated_at": p.updated_at,
                    }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    Ok(v)
}

/// Working orders.
pub fn orders(store: &Store) -> R {
    let working = store
        .open_orders()
        .map_err(repo("reading the working orders"))?;
    Ok(json!({"orders": working.iter().map(|o| json!({
        "order_ref": o.intent.order_ref,
        "contract": o.intent.contract.key(),
        "side": o.intent.side,
        "quantity": o.intent.quantity,
        "limit_usd": px(o.intent.limit_price),
        "purpose": o.intent.purpose,
        "status": o.status,
        "filled": o.filled_quantity,
        "created_at": o.intent.created_at,
        "trade_id": o.intent.trade_id,
    })).collect::<Vec<_>>()}))
}

/// The newest fills.
pub fn fills(store: &Store, limit: i64) -> R {
    let fills = store
        .recent_fills(limit)
        .map_err(stq("reading the fills"))?;
    Ok(json!({"fills": fills.iter().map(|f| json!({
        "time": f.time,
        "exec_id": f.exec_id,
        "order_ref": f.order_ref,
        "contract": f.contract.key(),
        "side": f.side,
        "quantity": f.quantity,
        "price_usd": px(f.price),
        "commission_usd": usd(f.commission),
    })).collect::<Vec<_>>()}))
}

/// The trades filter of `/api/trades` and the trades page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TradeQuery {
    /// `open`, `closed` or empty for both.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub symbol: Option<String>,
    #[serde(default)]
    pub experiment: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

pub fn trades(store: &Store, q: &TradeQuery) -> R {
    let symbol = match q.symbol.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            Symbol::new(s.to_ascii_uppercase())
                .map_err(|e| OpsError::Invalid(format!("symbol {s:?}: {e}")))?,
        ),
        None => None,
    };
    let filter = TradeFilter {
        open: match q.status.as_deref() {
            Some("open") => Some(true),
            Some("closed") => Some(false),
            _ => None,
        },
        symbol,
        experiment_id: q.experiment.clone().filter(|s| !s.trim().is_empty()),
        limit: Some(q.limit.unwrap_or(200).clamp(1, 10_000)),
    };
    let trades = store.trades(&filter).map_err(repo("reading the trades"))?;
    Ok(json!({"trades": trades.iter().map(|t| json!({
        "trade_id": t.trade_id,
        "symbol": t.symbol.to_string(),
        "strike_usd": px(t.strike),
        "expiration": t.expiration,
        "contracts": t.contracts,
        "entry_time": t.entry_time,
        "entry_premium_usd": px(t.entry_premium),
        "exit_time": t.exit_time,
        "exit_premium_usd": t.exit_premium.map(px),
        "exit_reason": t.exit_reason,
        "profit_loss_usd": t.profit_loss.map(usd),
        "roi_pct": t.roi.map(|r| (r * 10_000.0).round() / 100.0),
        "otm_pct": (t.otm_pct * 10_000.0).round() / 100.0,
        "dte": t.dte,
        "status": t.status,
        "experiment_id": t.experiment_id,
        "experiment_arm": t.experiment_arm,
    })).collect::<Vec<_>>()}))
}

/// The equity curve (one point per session close) and the drawdown.
pub fn equity_points(store: &Store) -> Result<(Vec<EquityPoint>, core_domain::Money), OpsError> {
    let from = DateTime::<Utc>::MIN_UTC;
    let to = DateTime::<Utc>::MAX_UTC;
    let snapshots = store
        .snapshots(from, to)
        .map_err(repo("reading the account snapshots"))?;
    let mut points: Vec<EquityPoint> = Vec::new();
    for s in &snapshots {
        let date = execution::trade_log::exchange_date(s.time);
        let p = EquityPoint::from_snapshot(date, s, 0);
        match points.last_mut() {
            Some(last) if last.date == date => *last = p,
            _ => points.push(p),
        }
    }
    let view = ops::engine_view(store)?;
    let start = view
        .memory
        .as_ref()
        .and_then(|_| snapshots.first().map(|s| s.net_liquidation))
        .unwrap_or_default();
    Ok((points, start))
}

pub fn equity(store: &Store) -> R {
    let (points, start) = equity_points(store)?;
    let dd = drawdown_curve(start, &points);
    let max = max_drawdown(start, &points);
    Ok(json!({
        "starting_equity_usd": usd(start),
        "equity": points.iter().map(|p| json!({"date": p.date, "net_liq_usd": usd(p.net_liquidation)})).collect::<Vec<_>>(),
        "drawdown": dd.iter().map(|(d, x)| json!({"date": d, "drawdown_pct": (x * 10_000.0).round() / 100.0})).collect::<Vec<_>>(),
        "max_drawdown": max,
    }))
}

/// Decision records, newest first, optionally of one kind.
pub fn decisions(store: &Store, limit: i64, kind: Option<&str>) -> R {
    let all = store
        .recent_decisions(if kind.is_some() { 5_000 } else { limit })
        .map_err(repo("reading the decisions"))?;
    let kind = kind.map(str::trim).filter(|k| !k.is_empty());
    let rows: Vec<_> = all
        .into_iter()
        .filter(|d| kind.is_none_or(|k| d.kind.to_string() == k))
        .take(usize::try_from(limit.max(1)).unwrap_or(100))
        .collect();
    Ok(json!({"decisions": rows}))
}

pub fn experiments(store: &Store) -> R {
    Ok(json!({"experiments": store.experiments().map_err(repo("reading the experiments"))?}))
}

pub fn patterns(store: &Store, all: bool) -> R {
    let list = store
        .patterns(if all {
            None
        } else {
            Some(PatternStatus::Active)
        })
        .map_err(repo("reading the patterns"))?;
    Ok(
        json!({"patterns": list.iter().map(|(id, p)| json!({"id": id, "pattern": p})).collect::<Vec<_>>()}),
    )
}

pub fn learning_history(store: &Store, limit: i64) -> R {
    Ok(
        json!({"learning_history": store.learning_history(limit).map_err(repo("reading the learning history"))?}),
    )
}

pub fn audit(store: &Store, limit: i64) -> R {
    Ok(json!({"audit": store.recent_audit(limit).map_err(repo("reading the audit log"))?}))
}

pub fn notifications(
    store: &Store,
    limit: i64,
) -> Result<Vec<store::NotificationAttempt>, OpsError> {
    store
        .recent_notifications(limit)
        .map_err(stq("reading the notification attempts"))
}

/// The analyst's stored reports (weekly and on demand), newest first.
pub fn analyst_reports(
    store: &Store,
    limit: i64,
) -> Result<Vec<store::StoredAnalystReport>, OpsError> {
    store
        .analyst_reports(limit)
        .map_err(stq("reading the analyst's reports"))
}
