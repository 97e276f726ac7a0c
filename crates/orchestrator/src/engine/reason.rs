//! Reason: the rules that choose a cycle's [`Action`]s from what the
//! perceive step saw. [`reason`] is pure — a [`Perception`] in, a
//! [`Plan`] out, no database, broker or clock — so each rule is unit-tested
//! on its own (the table below); [`action_record`] is the decision record
//! of the choice. The engine then lets the optional AI reasoner leave
//! actions out (`crate::agent`) and writes the record.

use core_domain::{
    AuditRepository, Broker, Criterion, DecisionKind, DecisionRecord, MarketData, OrderStatus,
    Strategy,
};
use risk::TradingState;
use serde_json::json;

use super::perceive::Perception;
use super::{Action, CycleReport, Engine};
use crate::EngineError;
use crate::events::EngineEvent;
use crate::hook::LearningHook;
use crate::schedule::Phase;

/// What the rules chose: the actions, in the order they run, and the
/// criteria behind them (for the decision record).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub criteria: Vec<Criterion>,
}

/// The rules (see `docs/ENGINE.md`, "One cycle"):
/// - `cancel_stale` while the market is not closed and an order sent has
///   waited `reprice_after_minutes` unfilled;
/// - `manage_exits` while the market is not closed, with open trades or
///   stock held, and positions read this cycle;
/// - `scan_entries` in the open phase, trading active, a slot free, the
///   account and positions fresh, and the session's first scan or
///   `entry_scan_minutes` since the last;
/// - `analyze_performance` at the session's close;
/// - `learn` when trades closed this cycle;
/// - else `idle`.
pub fn reason(p: &Perception) -> Plan {
    let now = p.now;
    let trading = p.phase != Phase::Closed;
    let stale = p.working.iter().any(|o| {
        matches!(
            o.status,
            OrderStatus::Sent | OrderStatus::Accepted | OrderStatus::PartiallyFilled
        ) && (now - o.intent.created_at).num_minutes() >= p.reprice_after_minutes
    });
    let has_stock = p
        .positions
        .iter()
        .any(|x| matches!(x.contract, core_domain::Contract::Stock(_)) && x.quantity != 0);
    let free_slots = p.free_slots;
    let scan_due = match p.last_scan {
        Some(t) => {
            execution::trade_log::exchange_date(t) != p.today
                || (now - t).num_minutes() >= p.entry_scan_minutes
        }
        None => true,
    };
    let (account_fresh, positions_fresh) = (p.account_fresh, p.positions_fresh);
    let mut actions = Vec::new();
    let mut why = Vec::new();
    if trading && stale {
        actions.push(Action::CancelStale);
        why.push(Criterion::text(
            "stale_orders",
            "yes",
            "orders unfilled past the reprice time",
            true,
        ));
    }
    if trading && (!p.open_trades.is_empty() || has_stock) && positions_fresh {
        actions.push(Action::ManageExits);
        why.push(Criterion::number(
            "open_trades",
            p.open_trades.len() as f64,
            "> 0",
            true,
        ));
    }
    let state = p.trading_state;
    let phase = p.phase;
    let can_scan = phase == Phase::Open
        && state == TradingState::Active
        && free_slots > 0
        && scan_due
        && account_fresh
        && positions_fresh;
    if !(account_fresh && positions_fresh) {
        why.push(Criterion::text(
            "broker_data",
            format!("account {account_fresh}, positions {positions_fresh}"),
            "fresh account and positions for entries (exits need fresh positions)",
            false,
        ));
    }
    if can_scan {
        actions.push(Action::ScanEntries);
    }
    why.push(Criterion::text(
        "phase",
        format!("{phase:?}").to_lowercase(),
        "open for entries",
        phase == Phase::Open,
    ));
    why.push(Criterion::text(
        "trading_state",
        state.as_str(),
        "active for entries",
        state == TradingState::Active,
    ));
    why.push(Criterion::number(
        "free_slots",
        free_slots as f64,
        "> 0 for entries",
        free_slots > 0,
    ));
    why.push(Criterion::text(
        "scan_due",
        scan_due.to_string(),
        format!(
            "first open cycle or {} min since the last scan",
            p.entry_scan_minutes
        ),
        scan_due,
    ));
    if p.flatten {
        why.push(Criterion::text(
            "flatten",
            "pending",
            "after an emergency stop with flatten, exits are emergency closes until a resume",
            true,
        ));
    }
    if p.analyze_now {
        actions.push(Action::AnalyzePerformance);
    }
    if !p.closed_now.is_empty() {
        actions.push(Action::Learn);
    }
    if actions.is_empty() {
        actions.push(Action::Idle);
    }
    Plan {
        actions,
        criteria: why,
    }
}

/// The `action` decision record of the cycle's choice (`actions`: the
/// plan's, after the AI reasoner), with the plan's `criteria`; `None` for an
/// idle cycle after an idle cycle (a run of idle cycles is recorded once,
/// when it starts).
pub fn action_record(
    p: &Perception,
    criteria: Vec<Criterion>,
    actions: &[Action],
    events: &[EngineEvent],
) -> Option<DecisionRecord> {
    if actions == p.last_actions && actions == [Action::Idle] {
        return None;
    }
    let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    Some(
        DecisionRecord::new(
            p.now,
            DecisionKind::Action,
            "engine",
            names.join("+"),
            format!(
                "phase {:?}, {}, {} open trades, {} free slots, {} working orders",
                p.phase,
                p.trading_state,
                p.open_trades.len(),
                p.free_slots,
                p.working.len()
            ),
        )
        .with_criteria(criteria)
        .with_context(json!({
            "alerts": p.monitor.alerts().map(|a| a.message()).collect::<Vec<_>>(),
            "unrealized_pnl": p.monitor.unrealized_pnl.to_string(),
            "net_liquidation": p.account.net_liquidation.to_string(),
            "events": events.iter().map(EngineEvent::describe).collect::<Vec<_>>(),
        })),
    )
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// The cycle's actions: the rules' plan, less what the optional AI
    /// reasoner leaves out, recorded as an `action` decision.
    pub(super) async fn decide(
        &mut self,
        p: &Perception,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, EngineError> {
        let Plan { actions, criteria } = reason(p);
        // The optional AI reasoner (crate::agent) may leave actions out.
        let events = &report.events;
        let actions = self
            .agent
            .reason(&self.store, p.now, actions, || {
                json!({
                    "state": {
                        "phase": format!("{:?}", p.phase).to_lowercase(),
                        "trading_state": p.trading_state.as_str(),
                        "open_trades": p.open_trades.len(),
                        "free_slots": p.free_slots,
                        "working_orders": p.working.len(),
                    },
                    "positions": &p.monitor,
                    "events": events.iter().map(EngineEvent::describe).collect::<Vec<_>>(),
                })
            })
            .await;
        report.actions = actions.clone();
        if let Some(record) = action_record(p, criteria, &actions, &report.events) {
            self.store.append_decision(&record)?;
        }
        self.memory.last_actions = actions.clone();
        Ok(actions)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The rules, situation by situation: a [`Perception`] with one fact
    //! changed from a quiet open market, and the plan it must give. No
    //! database, broker or clock.
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{Duration, NaiveDate, TimeZone};
    use core_domain::{
        AccountSnapshot, Contract, Money, Order, OrderIntent, OrderPurpose, Position, Price, Right,
        Side, StockContract, Symbol, TimeInForce, Trade,
    };
    use execution::{MonitorInput, MonitorParams, PositionMonitor};
    use risk::RiskContext;

    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        // Tuesday 2020-02-11, 10:30 in New York.
        chrono::Utc
            .with_ymd_and_hms(2020, 2, 11, 15, 30, 0)
            .single()
            .unwrap()
    }

    fn account() -> AccountSnapshot {
        AccountSnapshot {
            time: now(),
            account: "DU1".into(),
            net_liquidation: Money::from_dollars(100_000),
            cash: Money::from_dollars(100_000),
            excess_liquidity: Money::from_dollars(100_000),
            initial_margin: Money::ZERO,
            maintenance_margin: Money::ZERO,
            realized_pnl: Money::ZERO,
            unrealized_pnl: Money::ZERO,
        }
    }

    /// An open market, trading active, fresh data, nothing held, nothing
    /// working, slots free, never scanned.
    fn quiet() -> Perception {
        let monitor = PositionMonitor::new(MonitorParams::default())
            .unwrap()
            .evaluate(&MonitorInput {
                time: now(),
                open_trades: &[],
                quotes: &[],
                underlying_prices: &BTreeMap::new(),
                closed_trades: &[],
            });
        Perception {
            now: now(),
            today: NaiveDate::from_ymd_opt(2020, 2, 11).unwrap(),
            phase: Phase::Open,
            trading_state: TradingState::Active,
            account: account(),
            account_fresh: true,
            session_start: account(),
            positions: Vec::new(),
            positions_fresh: true,
            open_trades: Vec::new(),
            held_quotes: Vec::new(),
            prices: BTreeMap::new(),
            working: Vec::new(),
            free_slots: 5,
            monitor,
            risk: RiskContext::new(account(), account()),
            closed_now: Vec::new(),
            position_gone: BTreeSet::new(),
            analyze_now: false,
            last_scan: None,
            last_actions: Vec::new(),
            flatten: false,
            entry_scan_minutes: 120,
            reprice_after_minutes: 15,
        }
    }

    fn trade() -> Trade {
        Trade::opened(
            "T-1",
            Symbol::new("AAPL").unwrap(),
            Price::from_raw(1_500_000),
            NaiveDate::from_ymd_opt(2020, 2, 21).unwrap(),
            now(),
            NaiveDate::from_ymd_opt(2020, 2, 11).unwrap(),
            Price::from_raw(4_000),
            1,
        )
    }

    /// An order sent `minutes` before now, in `status`.
    fn order(minutes: i64, status: OrderStatus) -> Order {
        let mut o = Order::new(OrderIntent {
            order_ref: "X-T-1".into(),
            contract: Contract::Option(core_domain::OptionContract::us(
                Symbol::new("AAPL").unwrap(),
                Right::Put,
                Price::from_raw(1_500_000),
                NaiveDate::from_ymd_opt(2020, 2, 21).unwrap(),
            )),
            side: Side::Buy,
            quantity: 1,
            limit_price: Price::from_raw(2_000),
            time_in_force: TimeInForce::Day,
            purpose: OrderPurpose::Close,
            trade_id: Some("T-1".into()),
            created_at: now() - Duration::minutes(minutes),
        });
        o.status = status;
        o
    }

    fn stock(quantity: i64) -> Position {
        Position {
            contract: Contract::Stock(StockContract::us(Symbol::new("AAPL").unwrap())),
            quantity,
            avg_cost: Price::from_raw(1_500_000),
            market_price: None,
            updated_at: now(),
        }
    }

    use Action::*;

    #[test]
    fn test_each_situation_gives_its_plan() {
        type Change = fn(&mut Perception);
        let table: Vec<(&str, Change, Vec<Action>)> = vec![
            (
                "a quiet open market, never scanned",
                |_| {},
                vec![ScanEntries],
            ),
            (
                "scanned 30 minutes ago",
                |p| p.last_scan = Some(p.now - Duration::minutes(30)),
                vec![Idle],
            ),
            (
                "scanned 120 minutes ago",
                |p| p.last_scan = Some(p.now - Duration::minutes(120)),
                vec![ScanEntries],
            ),
            (
                "scanned yesterday, less than 120 minutes of session ago",
                |p| p.last_scan = Some(p.now - Duration::hours(18)),
                vec![ScanEntries],
            ),
            (
                "the last minutes of the session",
                |p| p.phase = Phase::Closing,
                vec![Idle],
            ),
            ("the market closed", |p| p.phase = Phase::Closed, vec![Idle]),
            (
                "halted",
                |p| p.trading_state = TradingState::Halted,
                vec![Idle],
            ),
            (
                "reduce-only",
                |p| p.trading_state = TradingState::ReduceOnly,
                vec![Idle],
            ),
            ("no free slot", |p| p.free_slots = 0, vec![Idle]),
            (
                "no account this cycle",
                |p| p.account_fresh = false,
                vec![Idle],
            ),
            (
                "an open trade",
                |p| p.open_trades = vec![trade()],
                vec![ManageExits, ScanEntries],
            ),
            (
                "an open trade, no positions this cycle",
                |p| {
                    p.open_trades = vec![trade()];
                    p.positions_fresh = false;
                },
                vec![Idle],
            ),
            (
                "an open trade while the market is closed",
                |p| {
                    p.open_trades = vec![trade()];
                    p.phase = Phase::Closed;
                },
                vec![Idle],
            ),
            (
                "an open trade while halted",
                |p| {
                    p.open_trades = vec![trade()];
                    p.trading_state = TradingState::Halted;
                },
                vec![ManageExits],
            ),
            (
                "stock held (an assignment)",
                |p| {
                    p.positions = vec![stock(100)];
                    p.free_slots = 0;
                },
                vec![ManageExits],
            ),
            (
                "a stock position of zero",
                |p| {
                    p.positions = vec![stock(0)];
                    p.free_slots = 0;
                },
                vec![Idle],
            ),
            (
                "an order unfilled for 15 minutes",
                |p| {
                    p.working = vec![order(15, OrderStatus::Accepted)];
                    p.free_slots = 0;
                },
                vec![CancelStale],
            ),
            (
                "an order unfilled for 14 minutes",
                |p| {
                    p.working = vec![order(14, OrderStatus::Sent)];
                    p.free_slots = 0;
                },
                vec![Idle],
            ),
            (
                "an old order not yet sent (the resolver's, not stale)",
                |p| {
                    p.working = vec![order(60, OrderStatus::Created)];
                    p.free_slots = 0;
                },
                vec![Idle],
            ),
            (
                "a stale order while the market is closed",
                |p| {
                    p.working = vec![order(60, OrderStatus::PartiallyFilled)];
                    p.phase = Phase::Closed;
                },
                vec![Idle],
            ),
            (
                "the session's close",
                |p| {
                    p.phase = Phase::Closed;
                    p.analyze_now = true;
                },
                vec![AnalyzePerformance],
            ),
            (
                "trades closed this cycle",
                |p| {
                    p.closed_now = vec![trade()];
                    p.free_slots = 0;
                },
                vec![Learn],
            ),
            (
                "everything at once",
                |p| {
                    p.open_trades = vec![trade()];
                    p.working = vec![order(20, OrderStatus::Accepted)];
                    p.closed_now = vec![trade()];
                },
                vec![CancelStale, ManageExits, ScanEntries, Learn],
            ),
        ];
        for (situation, change, expected) in table {
            let mut p = quiet();
            change(&mut p);
            assert_eq!(reason(&p).actions, expected, "{situation}");
        }
    }

    fn criterion<'a>(plan: &'a Plan, name: &str) -> Option<&'a Criterion> {
        plan.criteria.iter().find(|c| c.name == name)
    }

    #[test]
    fn test_the_criteria_say_why_entries_wait() {
        let mut p = quiet();
        p.positions_fresh = false;
        p.free_slots = 0;
        let plan = reason(&p);
        let broker = criterion(&plan, "broker_data").expect("broker_data criterion");
        assert!(!broker.passed);
        assert!(!criterion(&plan, "free_slots").unwrap().passed);
        assert!(criterion(&plan, "phase").unwrap().passed);
        assert!(criterion(&plan, "scan_due").unwrap().passed);
        assert!(criterion(&plan, "flatten").is_none());

        let mut p = quiet();
        p.flatten = true;
        p.trading_state = TradingState::Halted;
        let plan = reason(&p);
        assert!(criterion(&plan, "flatten").is_some());
        assert!(!criterion(&plan, "trading_state").unwrap().passed);
        assert!(criterion(&plan, "broker_data").is_none());
    }

    #[test]
    fn test_a_run_of_idle_cycles_is_recorded_once() {
        let mut p = quiet();
        p.free_slots = 0;
        let plan = reason(&p);
        assert_eq!(plan.actions, [Idle]);
        let first = action_record(&p, plan.criteria.clone(), &plan.actions, &[]);
        let record = first.expect("the first idle cycle is recorded");
        assert_eq!(record.decision, "idle");
        assert_eq!(record.subject, "engine");
        assert!(record.reason.contains("0 free slots"), "{}", record.reason);
        p.last_actions = vec![Idle];
        assert!(action_record(&p, plan.criteria.clone(), &plan.actions, &[]).is_none());
        // Any other choice is recorded every time.
        let scan = [ScanEntries];
        p.last_actions = scan.to_vec();
        let again = action_record(&p, plan.criteria, &scan, &[]).expect("recorded");
        assert_eq!(again.decision, "scan_entries");
    }
}
