//! The trade logger: each trade's whole life in the `trades` table,
//! written in the same transaction as the fill or settlement that moves it.
//!
//! * **Entry** — the first fill of an opening order (purpose `Open`, with a
//!   `trade_id`) inserts the trade from the order's
//!   [`OrderContext::entry`] template (sector, OTM %, DTE, VIX at entry,
//!   market regime, experiment id and arm, margin at entry) with the
//!   fill's facts: the entry premium is the volume-weighted average fill
//!   price of the trade's opening orders (rounded to 1/10000 $), the
//!   contracts their filled quantity, the entry time the first fill's, the
//!   commissions theirs. Later fills (of the order, or of a replacement
//!   opening the same trade) update those.
//! * **Exit by order** — a closing order's fills close the trade once the
//!   closing orders of the trade have bought back all its contracts: the
//!   exit premium is their volume-weighted average fill price (rounded to
//!   1/10000 $), the commission their sum, the reason the one in the
//!   closing order's context ([`ExitReason::Manual`] when none).
//! * **Expiry** — an expiration closes the trade at 0 with
//!   [`ExitReason::ExpiredWorthless`], no commission.
//! * **Assignment** — closes the trade with [`ExitReason::Assigned`] at
//!   the intrinsic value `strike − underlying price` (the loss carried into
//!   the stock, which the exit manager then sells; that sale's result is in
//!   the ledger, not in the trade). The ledger gets the settlement: the
//!   option leaves at 0 and the stock arrives at the strike.
//! * **Partial settlement** — an assignment (or expiry) of fewer contracts
//!   than the trade holds never closes it: the trade keeps the rest open
//!   ([`TradeChange::PartlySettled`]), the settled contracts go to the
//!   ledger.
//!
//! The P&L of a closed trade is the cash its fills moved (premium in,
//! buy-backs out, every commission), less a settlement's cost: exactly
//! what the ledger holds for them, even when fills came at several prices
//! and the average premiums are rounded.
//!
//! A trade is never closed twice: an event for a closed or unknown trade
//! changes nothing and is reported to the caller, who audits it.

use chrono::{DateTime, Utc};
use chrono_tz::America::New_York;
use core_domain::{
    AccountRepository, Contract, ExitReason, Fill, Ledger, Money, OptionContract, Order,
    OrderPurpose, OrderRepository, Price, Side, StockContract, Trade, TradeExit, TradeFilter,
    TradeRepository, TradeStatus,
};
use store::StoreTx;

use crate::{ExecutionError, OrderContext};

/// What the trade logger did with one fill or settlement.
#[derive(Debug, Clone, PartialEq)]
pub enum TradeChange {
    Opened(Trade),
    /// A later partial fill of the opening order.
    Increased(Trade),
    Closed(Trade),
    /// A partial expiry or assignment: the trade keeps the contracts not
    /// settled (its `contracts` reduced) and stays open; the settled
    /// part is in the ledger (its cost is not in the trade's P&L).
    PartlySettled(Trade),
    /// A recorded fill was amended (a late commission report, an
    /// execution correction) and the trade restated with it.
    Amended(Trade),
    /// Nothing to do (a liquidation, a partial close, an order with no trade).
    None,
    /// The event names a trade that is not open; nothing was changed.
    Unmatched(String),
}

/// The New York date of `time`.
pub fn exchange_date(time: DateTime<Utc>) -> chrono::NaiveDate {
    time.with_timezone(&New_York).date_naive()
}

/// Applies a recorded fill of `order` (already updated with it) to its
/// trade. Called inside the fill's transaction.
pub(crate) fn on_fill(
    tx: &StoreTx<'_>,
    order: &Order,
    fill: &Fill,
) -> Result<TradeChange, ExecutionError> {
    let Some(trade_id) = order.intent.trade_id.clone() else {
        return Ok(TradeChange::None);
    };
    match order.intent.purpose {
        OrderPurpose::Open => on_open_fill(tx, order, fill, &trade_id),
        OrderPurpose::Close => on_close_fill(tx, order, &trade_id, fill.time),
        OrderPurpose::Liquidate => Ok(TradeChange::None),
    }
}

/// A recorded fill of `order` was amended from `old` to `new` (the order
/// already restated with it): its trade follows. An open trade's entry
/// premium, contracts and commissions are restated from its opening orders
/// (as a new fill restates them); a closed trade's premiums, commissions
/// and P&L are restated, the P&L moving by exactly the cash the amendment
/// moved, so the trade stays equal to what the ledger holds for it.
pub(crate) fn on_amendment(
    tx: &StoreTx<'_>,
    order: &Order,
    old: &Fill,
    new: &Fill,
) -> Result<TradeChange, ExecutionError> {
    let Some(trade_id) = order.intent.trade_id.clone() else {
        return Ok(TradeChange::None);
    };
    let Some(mut trade) = tx
        .trade(&trade_id)
        .map_err(repo(format!("reading trade {trade_id}")))?
    else {
        return Ok(TradeChange::Unmatched(trade_id));
    };
    if trade.status != TradeStatus::Closed {
        return match order.intent.purpose {
            OrderPurpose::Open => match on_open_fill(tx, order, new, &trade_id)? {
                TradeChange::Increased(t) => Ok(TradeChange::Amended(t)),
                other => Ok(other),
            },
            // A close's figures enter the trade when it closes.
            OrderPurpose::Close | OrderPurpose::Liquidate => Ok(TradeChange::None),
        };
    }
    let orders = tx
        .orders_for_trade(&trade_id)
        .map_err(repo(format!("reading the orders of trade {trade_id}")))?;
    let vwap = |purpose| filled(&orders, purpose).1;
    match order.intent.purpose {
        OrderPurpose::Open => {
            if let Some(p) = vwap(OrderPurpose::Open) {
                trade.entry_premium = p;
            }
        }
        OrderPurpose::Close => {
            let settled = matches!(
                trade.exit_reason,
                Some(ExitReason::Assigned | ExitReason::ExpiredWorthless)
            );
            if !settled && let Some(p) = vwap(OrderPurpose::Close) {
                trade.exit_premium = Some(p);
            }
        }
        OrderPurpose::Liquidate => return Ok(TradeChange::None),
    }
    let (proceeds, _, _) = fills_cash(tx, &orders)?;
    let pl = trade.profit_loss.unwrap_or(Money::ZERO) + (new.cash_flow() - old.cash_flow());
    trade.commissions += new.commission - old.commission;
    trade.profit_loss = Some(pl);
    if proceeds.cents() > 0 {
        trade.profit_pct = Some(pl.cents() as f64 / proceeds.cents() as f64);
    }
    trade.roi = (trade.margin_at_entry.cents() > 0)
        .then(|| pl.cents() as f64 / trade.margin_at_entry.cents() as f64);
    tx.update_trade(&trade)
        .map_err(repo(format!("restating trade {trade_id}")))?;
    Ok(TradeChange::Amended(trade))
}

fn repo(what: String) -> impl FnOnce(core_domain::RepoError) -> ExecutionError {
    ExecutionError::repo(what)
}

fn on_open_fill(
    tx: &StoreTx<'_>,
    order: &Order,
    fill: &Fill,
    trade_id: &str,
) -> Result<TradeChange, ExecutionError> {
    // Every opening order of the trade counts: a replacement (cancel/
    // replace) of a partially filled entry adds to the same trade.
    let opens: Vec<Order> = tx
        .orders_for_trade(trade_id)
        .map_err(repo(format!("reading the orders of trade {trade_id}")))?
        .into_iter()
        .filter(|o| o.intent.purpose == OrderPurpose::Open && o.filled_quantity > 0)
        .collect();
    let (contracts, premium, commissions) = match filled(&opens, OrderPurpose::Open) {
        (contracts, Some(premium)) => (
            contracts,
            premium,
            opens.iter().fold(Money::ZERO, |a, o| a + o.commission),
        ),
        _ => (
            order.filled_quantity,
            order.avg_fill_price.unwrap_or(fill.price),
            order.commission,
        ),
    };
    if let Some(mut trade) = tx
        .trade(trade_id)
        .map_err(repo(format!("reading trade {trade_id}")))?
    {
        if trade.status == TradeStatus::Closed {
            return Ok(TradeChange::Unmatched(trade_id.to_string()));
        }
        trade.entry_premium = premium;
        trade.contracts = contracts;
        trade.commissions = commissions;
        tx.update_trade(&trade)
            .map_err(repo(format!("updating trade {trade_id}")))?;
        return Ok(TradeChange::Increased(trade));
    }
    let context = OrderContext::of(order);
    let mut trade = context
        .entry
        .unwrap_or_else(|| bare_trade(order, trade_id, fill.time));
    trade.trade_id = trade_id.to_string();
    trade.entry_time = fill.time;
    trade.entry_date = exchange_date(fill.time);
    trade.entry_premium = premium;
    trade.contracts = contracts;
    trade.commissions = commissions;
    trade.status = TradeStatus::Open;
    if trade.entry_underlying_price == Price::ZERO
        && let Some(u) = context.underlying_price
    {
        trade.entry_underlying_price = u;
    }
    tx.insert_trade(&trade)
        .map_err(repo(format!("writing trade {trade_id}")))?;
    Ok(TradeChange::Opened(trade))
}

/// A trade from the order alone, when its context has no template (an
/// order placed by hand): what the order says, the rest unknown.
fn bare_trade(order: &Order, trade_id: &str, time: DateTime<Utc>) -> Trade {
    let (symbol, strike, expiration) = match &order.intent.contract {
        Contract::Option(o) => (o.underlying.clone(), o.strike, o.expiry),
        Contract::Stock(s) => (s.symbol.clone(), Price::ZERO, exchange_date(time)),
    };
    let mut trade = Trade::opened(
        trade_id,
        symbol,
        strike,
        expiration,
        time,
        exchange_date(time),
        order.avg_fill_price.unwrap_or(order.intent.limit_price),
        order.filled_quantity,
    );
    trade.commissions = order.commission;
    trade
}

fn on_close_fill(
    tx: &StoreTx<'_>,
    order: &Order,
    trade_id: &str,
    time: DateTime<Utc>,
) -> Result<TradeChange, ExecutionError> {
    let Some(mut trade) = tx
        .trade(trade_id)
        .map_err(repo(format!("reading trade {trade_id}")))?
    else {
        return Ok(TradeChange::Unmatched(trade_id.to_string()));
    };
    if trade.status == TradeStatus::Closed {
        return Ok(TradeChange::Unmatched(trade_id.to_string()));
    }
    let closes: Vec<Order> = tx
        .orders_for_trade(trade_id)
        .map_err(repo(format!("reading the orders of trade {trade_id}")))?
        .into_iter()
        .filter(|o| o.intent.purpose == OrderPurpose::Close && o.filled_quantity > 0)
        .collect();
    let (bought, vwap) = filled(&closes, OrderPurpose::Close);
    if bought < trade.contracts {
        return Ok(TradeChange::None);
    }
    let exit_premium = vwap.unwrap_or(Price::ZERO);
    let commission = closes.iter().fold(Money::ZERO, |a, o| a + o.commission);
    let reason = OrderContext::of(order)
        .exit_reason
        .unwrap_or(ExitReason::Manual);
    trade
        .close(TradeExit {
            time,
            date: exchange_date(time),
            exit_premium,
            reason,
            commission,
        })
        .map_err(|e| ExecutionError::Repo {
            what: format!("closing trade {trade_id}"),
            source: core_domain::RepoError::Conflict(e.to_string()),
        })?;
    outcome_from_fills(tx, &mut trade, Money::ZERO)?;
    tx.update_trade(&trade)
        .map_err(repo(format!("closing trade {trade_id}")))?;
    Ok(TradeChange::Closed(trade))
}

/// Sets a closed trade's P&L (and the ratios built on it) from the cash
/// its fills actually moved, as the ledger posted them, less `exit_cost`
/// (a settlement's cost, not a fill). [`Trade::close`] values the trade at
/// its average prices, rounded to 1/10000 $, which misses the cash by a
/// cent or more when the fills came at several prices. A trade with no
/// stored opening fill keeps the values `close` computed.
fn outcome_from_fills(
    tx: &StoreTx<'_>,
    trade: &mut Trade,
    exit_cost: Money,
) -> Result<(), ExecutionError> {
    let trade_id = trade.trade_id.clone();
    let orders = tx
        .orders_for_trade(&trade_id)
        .map_err(repo(format!("reading the orders of trade {trade_id}")))?;
    let (proceeds, net, commissions) = fills_cash(tx, &orders)?;
    if proceeds == Money::ZERO {
        return Ok(());
    }
    let pl = net - exit_cost;
    trade.commissions = commissions;
    trade.profit_loss = Some(pl);
    trade.profit_pct = Some(pl.cents() as f64 / proceeds.cents() as f64);
    trade.roi = (trade.margin_at_entry.cents() > 0)
        .then(|| pl.cents() as f64 / trade.margin_at_entry.cents() as f64);
    Ok(())
}

/// The contracts the `orders` of `purpose` filled, and their
/// volume-weighted average fill price rounded to 1/10000 $ (`None` when
/// none filled).
fn filled(orders: &[Order], purpose: OrderPurpose) -> (i64, Option<Price>) {
    let (qty, value) = orders
        .iter()
        .filter(|o| o.intent.purpose == purpose && o.filled_quantity > 0)
        .fold((0i64, 0i128), |(q, v), o| {
            (
                q + o.filled_quantity,
                v + i128::from(o.avg_fill_price.map_or(0, Price::raw))
                    * i128::from(o.filled_quantity),
            )
        });
    (
        qty,
        (qty > 0).then(|| Price::from_raw(round_div(value, i128::from(qty)))),
    )
}

/// The cash the fills of a trade's opening and closing `orders` moved:
/// the opening premium (gross), the net cash (commissions included) and
/// the commissions.
fn fills_cash(tx: &StoreTx<'_>, orders: &[Order]) -> Result<(Money, Money, Money), ExecutionError> {
    let (mut proceeds, mut net, mut commissions) = (Money::ZERO, Money::ZERO, Money::ZERO);
    for o in orders.iter().filter(|o| {
        o.filled_quantity > 0
            && matches!(o.intent.purpose, OrderPurpose::Open | OrderPurpose::Close)
    }) {
        let order_ref = &o.intent.order_ref;
        for f in tx
            .fills(order_ref)
            .map_err(repo(format!("reading the fills of order {order_ref}")))?
        {
            if o.intent.purpose == OrderPurpose::Open {
                proceeds += f.price.notional(f.quantity, f.contract.multiplier());
            }
            net += f.cash_flow();
            commissions += f.commission;
        }
    }
    Ok((proceeds, net, commissions))
}

fn round_div(num: i128, den: i128) -> i64 {
    if den == 0 {
        return 0;
    }
    let q = (2 * num + den).div_euclid(2 * den);
    i64::try_from(q).unwrap_or(i64::MAX)
}

/// The open trade holding `contract` short, if any.
pub(crate) fn open_trade_for(
    tx: &StoreTx<'_>,
    contract: &OptionContract,
) -> Result<Option<Trade>, ExecutionError> {
    let filter = TradeFilter {
        open: Some(true),
        symbol: Some(contract.underlying.clone()),
        ..TradeFilter::default()
    };
    let trades = tx.trades(&filter).map_err(repo(format!(
        "reading the open trades of {}",
        contract.underlying
    )))?;
    Ok(trades
        .into_iter()
        .find(|t| t.strike == contract.strike && t.expiration == contract.expiry))
}

/// An expiration or assignment of `contract` (`quantity` signed as held,
/// negative for short). Closes the matching open trade and posts the
/// settlement to the ledger, in the caller's transaction.
pub(crate) fn on_settlement(
    tx: &StoreTx<'_>,
    contract: &OptionContract,
    quantity: i64,
    assigned: Option<Price>,
    time: DateTime<Utc>,
) -> Result<TradeChange, ExecutionError> {
    let key = Contract::Option(contract.clone()).key();
    let Some(mut trade) = open_trade_for(tx, contract)? else {
        return Ok(TradeChange::Unmatched(key));
    };
    let date = exchange_date(time);
    let qty = quantity.abs();
    let partial = qty > 0 && qty < trade.contracts;
    if partial {
        // A partial assignment (or expiry) settles only those contracts:
        // the trade stays open with the rest, which its exits close.
        trade.contracts -= qty;
        tx.update_trade(&trade)
            .map_err(repo(format!("reducing trade {}", trade.trade_id)))?;
        post_settlement(tx, contract, quantity, assigned, time, &format!("-P{qty}"))?;
        return Ok(TradeChange::PartlySettled(trade));
    }
    let (reason, exit_premium) = match assigned {
        Some(underlying) => (
            ExitReason::Assigned,
            Price::from_raw((contract.strike.raw() - underlying.raw()).max(0)),
        ),
        None => (ExitReason::ExpiredWorthless, Price::ZERO),
    };
    trade
        .close(TradeExit {
            time,
            date,
            exit_premium,
            reason,
            commission: Money::ZERO,
        })
        .map_err(|e| ExecutionError::Repo {
            what: format!("closing trade {}", trade.trade_id),
            source: core_domain::RepoError::Conflict(e.to_string()),
        })?;
    let exit_cost = exit_premium.notional(quantity.abs(), contract.multiplier);
    outcome_from_fills(tx, &mut trade, exit_cost)?;
    tx.update_trade(&trade)
        .map_err(repo(format!("closing trade {}", trade.trade_id)))?;

    post_settlement(tx, contract, quantity, assigned, time, "")?;
    Ok(TradeChange::Closed(trade))
}

/// The settlement in the ledger: the option leaves at 0; on assignment
/// the stock arrives at the strike (a short put buys the shares).
fn post_settlement(
    tx: &StoreTx<'_>,
    contract: &OptionContract,
    quantity: i64,
    assigned: Option<Price>,
    time: DateTime<Utc>,
    suffix: &str,
) -> Result<(), ExecutionError> {
    let key = Contract::Option(contract.clone()).key();
    let date = exchange_date(time);
    let qty = quantity.abs();
    let tag = if assigned.is_some() {
        "ASSIGN"
    } else {
        "EXPIRE"
    };
    let stamp = date.format("%Y%m%d");
    let close_side = if quantity < 0 { Side::Buy } else { Side::Sell };
    let mut ledger = Ledger::new();
    let option_fill = Fill {
        exec_id: format!("{tag}-{stamp}-{key}{suffix}"),
        order_ref: format!("{tag}-{key}"),
        contract: Contract::Option(contract.clone()),
        side: close_side,
        quantity: qty,
        price: Price::ZERO,
        commission: Money::ZERO,
        time,
    };
    let mut fills = vec![option_fill];
    if assigned.is_some() {
        fills.push(Fill {
            exec_id: format!("{tag}-{stamp}-{key}{suffix}-STK"),
            order_ref: format!("{tag}-{key}"),
            contract: Contract::Stock(StockContract::us(contract.underlying.clone())),
            side: if quantity < 0 { Side::Buy } else { Side::Sell },
            quantity: qty * contract.multiplier,
            price: contract.strike,
            commission: Money::ZERO,
            time,
        });
    }
    for f in &fills {
        // Zero-price option fills post no cash; the position change is
        // what matters for the book.
        if let Err(e) = ledger.post_fill(f) {
            return Err(ExecutionError::FillRefused {
                order_ref: f.order_ref.clone(),
                exec_id: f.exec_id.clone(),
                reason: e.to_string(),
            });
        }
    }
    tx.append_ledger(ledger.entries())
        .map_err(repo(format!("posting the settlement of {key}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_div_rounds_half_up() {
        assert_eq!(round_div(5, 2), 3);
        assert_eq!(round_div(4, 2), 2);
        assert_eq!(round_div(7, 3), 2);
        assert_eq!(round_div(0, 0), 0);
    }
}
