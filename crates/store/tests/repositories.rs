//! Round trips through every repository trait on a real SQLite file.

// Helpers outside #[test] functions panic on failure too: this is a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Duration;
use common::{at, temp_store};
use core_domain::stubs::{self, date, symbol};
use core_domain::*;
use serde_json::json;
use store::{Store, StoreError};

// ---------------------------------------------------------------- trades

fn experiment(id: &str) -> Experiment {
    Experiment {
        experiment_id: id.into(),
        name: "Wider OTM band".into(),
        hypothesis: "18-20% OTM earns more per unit of margin".into(),
        parameter_name: "otm_range".into(),
        control_value: "0.15..0.20".into(),
        test_value: "0.18..0.22".into(),
        allocation: 0.2,
        min_samples: 30,
        status: ExperimentStatus::Active,
        start_date: date(2024, 1, 2),
        end_date: None,
        control_trades: 0,
        test_trades: 0,
        p_value: None,
        effect_size: None,
        decision: None,
    }
}

/// A trade with every optional field set and awkward values (sub-second
/// times, thirds, negative P&L).
fn full_trade(store: &Store) -> Trade {
    store.insert_experiment(&experiment("EXP-1")).unwrap();
    Trade {
        trade_id: "T-FULL".into(),
        symbol: symbol("BRK.B"),
        sector: Some("Financials".into()),
        strike: Price::from_raw(3_512_345),
        expiration: date(2024, 2, 16),
        entry_date: date(2024, 1, 9),
        entry_time: at(0, 123_456_789),
        entry_premium: Price::from_raw(4_321),
        contracts: 3,
        entry_underlying_price: Price::from_raw(4_100_050),
        margin_at_entry: Money::from_cents(812_345),
        exit_date: Some(date(2024, 1, 30)),
        exit_time: Some(at(86_400 * 21, 999_999_999)),
        exit_premium: Some(Price::from_raw(12_345)),
        exit_reason: Some(ExitReason::StopLoss),
        profit_loss: Some(Money::from_cents(-240_173)),
        profit_pct: Some(-1.0 / 3.0),
        roi: Some(-0.029_564_876_543_21),
        days_held: Some(21),
        otm_pct: 1.0 / 7.0,
        dte: 38,
        vix_at_entry: Some(17.25),
        market_regime: MarketRegime::BearVolatile,
        is_experiment: true,
        experiment_id: Some("EXP-1".into()),
        experiment_arm: Some("test".into()),
        commissions: Money::from_cents(390),
        status: TradeStatus::Closed,
    }
}

#[test]
fn test_every_trade_field_survives_insert_and_read() {
    let (_dir, store) = temp_store();
    let full = full_trade(&store);
    store.insert_trade(&full).unwrap();
    assert_eq!(store.trade("T-FULL").unwrap(), Some(full));

    let open = stubs::open_trade();
    store.insert_trade(&open).unwrap();
    assert_eq!(store.trade("T-1").unwrap(), Some(open));
    assert_eq!(store.trade("T-NONE").unwrap(), None);
}

#[test]
fn test_closed_trade_update_is_read_back_whole() {
    let (_dir, store) = temp_store();
    let mut t = stubs::open_trade();
    store.insert_trade(&t).unwrap();
    t.close(TradeExit {
        time: at(3 * 86_400, 500_000),
        date: date(2024, 1, 12),
        exit_premium: Price::from_cents(20),
        reason: ExitReason::ProfitTarget,
        commission: Money::from_cents(325),
    })
    .unwrap();
    store.update_trade(&t).unwrap();
    assert_eq!(store.trade("T-1").unwrap(), Some(t.clone()));

    // An update can also clear fields again (None is written as NULL).
    let mut reopened = t.clone();
    reopened.exit_reason = None;
    reopened.exit_time = None;
    reopened.profit_pct = None;
    reopened.status = TradeStatus::Open;
    store.update_trade(&reopened).unwrap();
    assert_eq!(store.trade("T-1").unwrap(), Some(reopened));
}

#[test]
fn test_duplicate_trade_id_is_duplicate_and_unknown_trade_update_is_not_found() {
    let (_dir, store) = temp_store();
    let t = stubs::open_trade();
    store.insert_trade(&t).unwrap();
    let e = store.insert_trade(&t).unwrap_err();
    assert!(
        matches!(&e, RepoError::Duplicate(m) if m.contains("T-1")),
        "{e}"
    );
    let mut other = t.clone();
    other.trade_id = "T-2".into();
    let e = store.update_trade(&other).unwrap_err();
    assert!(
        matches!(&e, RepoError::NotFound(m) if m.contains("T-2")),
        "{e}"
    );
}

#[test]
fn test_trade_for_an_unknown_experiment_is_refused() {
    let (_dir, store) = temp_store();
    let mut t = stubs::open_trade();
    t.is_experiment = true;
    t.experiment_id = Some("EXP-404".into());
    let e = store.insert_trade(&t).unwrap_err();
    assert!(
        matches!(&e, RepoError::NotFound(m) if m.contains("EXP-404")),
        "{e}"
    );
    assert_eq!(store.trade("T-1").unwrap(), None);
}

#[test]
fn test_trade_filter_selects_and_orders_newest_first() {
    let (_dir, store) = temp_store();
    store.insert_experiment(&experiment("EXP-1")).unwrap();
    for (i, (sym, closed, exp)) in [
        ("AAPL", false, false),
        ("KO", true, false),
        ("AAPL", true, true),
        ("KO", false, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut t = stubs::open_trade();
        t.trade_id = format!("T-{i}");
        t.symbol = symbol(sym);
        t.entry_time = at(i as i64 * 60, 0);
        if closed {
            t.status = TradeStatus::Closed;
        }
        if exp {
            t.is_experiment = true;
            t.experiment_id = Some("EXP-1".into());
        }
        store.insert_trade(&t).unwrap();
    }
    let ids = |f: TradeFilter| -> Vec<String> {
        store
            .trades(&f)
            .unwrap()
            .into_iter()
            .map(|t| t.trade_id)
            .collect()
    };
    assert_eq!(ids(TradeFilter::default()), ["T-3", "T-2", "T-1", "T-0"]);
    let open = TradeFilter {
        open: Some(true),
        ..Default::default()
    };
    assert_eq!(ids(open), ["T-3", "T-0"]);
    let closed_aapl = TradeFilter {
        open: Some(false),
        symbol: Some(symbol("AAPL")),
        ..Default::default()
    };
    assert_eq!(ids(closed_aapl), ["T-2"]);
    let in_experiment = TradeFilter {
        experiment_id: Some("EXP-1".into()),
        ..Default::default()
    };
    assert_eq!(ids(in_experiment), ["T-3", "T-2"]);
    let newest_two = TradeFilter {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(ids(newest_two), ["T-3", "T-2"]);
}

// ---------------------------------------------------------------- orders

#[test]
fn test_order_life_is_stored_with_its_history_and_fills() {
    let (_dir, store) = temp_store();
    let mut o = stubs::sell_to_open("O-1");
    store.insert_order(&o).unwrap();
    assert_eq!(store.order("O-1").unwrap(), Some(o.clone()));

    o.transition(OrderStatus::Sent, at(1, 0), None).unwrap();
    o.broker_order_id = Some(42);
    store.update_order(&o).unwrap();
    o.transition(OrderStatus::Accepted, at(2, 0), None).unwrap();
    store.update_order(&o).unwrap();
    assert_eq!(store.open_orders().unwrap(), vec![o.clone()]);

    let mut f1 = stubs::fill("O-1", "E-1", 2);
    f1.time = at(3, 250_000_000);
    o.apply_fill(&f1).unwrap();
    assert!(store.record_fill(&f1).unwrap());
    store.update_order(&o).unwrap();
    assert_eq!(store.order("O-1").unwrap(), Some(o.clone()));

    let mut f2 = stubs::fill("O-1", "E-2", 3);
    f2.time = at(4, 0);
    f2.price = Price::from_cents(39);
    o.apply_fill(&f2).unwrap();
    assert!(store.record_fill(&f2).unwrap());
    store.update_order(&o).unwrap();

    let stored = store.order("O-1").unwrap().unwrap();
    assert_eq!(stored, o);
    assert_eq!(stored.status, OrderStatus::Filled);
    assert!(store.open_orders().unwrap().is_empty());
    assert_eq!(store.fills("O-1").unwrap(), vec![f1.clone(), f2.clone()]);
    assert_eq!(store.last_fill_time().unwrap(), Some(f2.time));

    let history: Vec<OrderStatus> = store
        .order_events("O-1")
        .unwrap()
        .into_iter()
        .map(|e| e.status)
        .collect();
    use OrderStatus::*;
    assert_eq!(history, [Created, Sent, Accepted, PartiallyFilled, Filled]);

    // An update that changes neither status nor filled quantity adds no event.
    store.update_order(&o).unwrap();
    assert_eq!(store.order_events("O-1").unwrap().len(), 5);
}

#[test]
fn test_duplicate_order_ref_is_duplicate_and_changes_nothing() {
    let (_dir, store) = temp_store();
    let o = stubs::sell_to_open("O-1");
    store.insert_order(&o).unwrap();
    let mut again = stubs::sell_to_open("O-1");
    again.intent.quantity = 99;
    let e = store.insert_order(&again).unwrap_err();
    assert!(
        matches!(&e, RepoError::Duplicate(m) if m.contains("O-1")),
        "{e}"
    );
    assert_eq!(store.order("O-1").unwrap(), Some(o));
    assert_eq!(store.order_events("O-1").unwrap().len(), 1);
    let e = store
        .update_order(&stubs::sell_to_open("O-404"))
        .unwrap_err();
    assert!(matches!(e, RepoError::NotFound(_)), "{e}");
}

#[test]
fn test_record_fill_deduplicates_by_exec_id() {
    let (_dir, store) = temp_store();
    store.insert_order(&stubs::sell_to_open("O-1")).unwrap();
    let f = stubs::fill("O-1", "E-1", 5);
    assert!(store.record_fill(&f).unwrap());
    assert!(!store.record_fill(&f).unwrap());
    let mut replay = f.clone();
    replay.quantity = 1;
    assert!(!store.record_fill(&replay).unwrap());
    assert_eq!(store.fills("O-1").unwrap(), vec![f]);
}

#[test]
fn test_open_orders_exclude_every_terminal_status() {
    let (_dir, store) = temp_store();
    for (i, status) in OrderStatus::ALL.into_iter().enumerate() {
        let mut o = stubs::sell_to_open(&format!("O-{i}"));
        o.status = status;
        store.insert_order(&o).unwrap();
    }
    let open: Vec<OrderStatus> = store
        .open_orders()
        .unwrap()
        .into_iter()
        .map(|o| o.status)
        .collect();
    let expected: Vec<OrderStatus> = OrderStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .collect();
    assert_eq!(open, expected);
}

#[test]
fn test_stock_orders_and_every_intent_field_round_trip() {
    let (_dir, store) = temp_store();
    let o = Order::new(OrderIntent {
        order_ref: "LIQ-1".into(),
        contract: Contract::Stock(StockContract {
            con_id: Some(265_598),
            ..StockContract::us(symbol("AAPL"))
        }),
        side: Side::Buy,
        quantity: 500,
        limit_price: Price::from_raw(1_499_999),
        time_in_force: TimeInForce::Gtc,
        purpose: OrderPurpose::Liquidate,
        trade_id: None,
        created_at: at(0, 1),
    });
    store.insert_order(&o).unwrap();
    assert_eq!(store.order("LIQ-1").unwrap(), Some(o));
}

// ---------------------------------------------------------------- account

fn position(strike_cents: i64, qty: i64) -> Position {
    Position {
        contract: Contract::Option(OptionContract::us(
            symbol("KO"),
            Right::Put,
            Price::from_cents(strike_cents),
            date(2024, 1, 19),
        )),
        quantity: qty,
        avg_cost: Price::from_raw(4_123),
        market_price: Some(Price::from_raw(2_050)),
        updated_at: at(10, 0),
    }
}

#[test]
fn test_replace_positions_replaces_all_or_nothing() {
    let (_dir, store) = temp_store();
    let a = position(5_000, -5);
    let mut b = position(5_500, -2);
    b.market_price = None;
    store.replace_positions(&[b.clone(), a.clone()]).unwrap();
    assert_eq!(store.positions().unwrap(), vec![a.clone(), b.clone()]);

    store.replace_positions(std::slice::from_ref(&b)).unwrap();
    assert_eq!(store.positions().unwrap(), vec![b.clone()]);

    let e = store
        .replace_positions(&[a.clone(), a.clone()])
        .unwrap_err();
    assert!(matches!(e, RepoError::Duplicate(_)), "{e}");
    assert_eq!(store.positions().unwrap(), vec![b]);

    store.replace_positions(&[]).unwrap();
    assert!(store.positions().unwrap().is_empty());
}

fn snapshot(time: chrono::DateTime<chrono::Utc>, net_liq: i64) -> AccountSnapshot {
    AccountSnapshot {
        time,
        account: "DU123456".into(),
        net_liquidation: Money::from_cents(net_liq),
        cash: Money::from_cents(9_876_543),
        excess_liquidity: Money::from_cents(7_000_001),
        initial_margin: Money::from_cents(1_234_567),
        maintenance_margin: Money::from_cents(1_000_000),
        realized_pnl: Money::from_cents(-12_345),
        unrealized_pnl: Money::from_cents(6_789),
    }
}

#[test]
fn test_latest_snapshot_is_the_one_with_the_latest_time() {
    let (_dir, store) = temp_store();
    assert_eq!(store.latest_snapshot().unwrap(), None);
    let later = snapshot(at(120, 5), 10_000_001);
    let earlier = snapshot(at(60, 0), 9_999_999);
    store.insert_snapshot(&later).unwrap();
    store.insert_snapshot(&earlier).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), Some(later));
}

#[test]
fn test_ledger_balance_is_the_exact_sum_of_entries() {
    let (_dir, store) = temp_store();
    assert_eq!(store.ledger_balance().unwrap(), Money::ZERO);
    let mut ledger = Ledger::new();
    ledger.deposit(at(0, 0), Money::from_dollars(100_000), "seed");
    let mut f = stubs::fill("O-1", "E-1", 5);
    f.price = Price::from_raw(4_133);
    ledger.post_fill(&f).unwrap();
    store.append_ledger(ledger.entries()).unwrap();
    store
        .append_ledger(&[LedgerEntry {
            time: at(5, 0),
            kind: LedgerEntryKind::Interest,
            amount: Money::from_cents(-1),
            reference: "2024-01".into(),
        }])
        .unwrap();
    assert_eq!(
        store.ledger_balance().unwrap(),
        ledger.cash() - Money::from_cents(1)
    );
    assert_eq!(
        store.ledger_entries(Some("E-1")).unwrap(),
        ledger.entries()[1..].to_vec()
    );
    assert_eq!(store.ledger_entries(None).unwrap().len(), 4);
}

// ---------------------------------------------------------------- audit

#[test]
fn test_audit_and_decisions_come_back_newest_first_and_whole() {
    let (_dir, store) = temp_store();
    for i in 0..3 {
        store
            .append_audit(
                &AuditEntry::new(at(i, 0), "traderd", format!("action.{i}"))
                    .context(json!({"i": i, "nested": {"ok": true}}))
                    .decision("go")
                    .outcome("done"),
            )
            .unwrap();
    }
    store
        .append_audit(&AuditEntry::new(at(10, 0), "trader-cli", "bare"))
        .unwrap();
    let recent = store.recent_audit(2).unwrap();
    assert_eq!(recent[0], AuditEntry::new(at(10, 0), "trader-cli", "bare"));
    assert_eq!(recent[1].action, "action.2");
    assert_eq!(recent[1].context["nested"]["ok"], json!(true));
    assert_eq!(store.recent_audit(100).unwrap().len(), 4);

    let d = DecisionRecord::new(
        at(1, 7),
        DecisionKind::Skip,
        "KO",
        "skip",
        "premium too low",
    )
    .with_criteria(vec![
        Criterion::number("premium", 0.12, ">= 0.30", false),
        Criterion::text("trend", "up", "up", true),
    ])
    .with_context(json!({"bid": 0.10, "ask": 0.14}));
    let newer = DecisionRecord::new(at(2, 0), DecisionKind::Hold, "T-1", "hold", "not yet");
    store.append_decision(&d).unwrap();
    store.append_decision(&newer).unwrap();
    assert_eq!(store.recent_decisions(10).unwrap(), vec![newer, d]);
    assert!(store.recent_decisions(0).unwrap().is_empty());
}

// ---------------------------------------------------------------- learning

#[test]
fn test_experiments_round_trip_and_update() {
    let (_dir, store) = temp_store();
    let mut e = experiment("EXP-1");
    store.insert_experiment(&e).unwrap();
    let dup = store.insert_experiment(&e).unwrap_err();
    assert!(matches!(dup, RepoError::Duplicate(_)), "{dup}");
    assert_eq!(store.experiment("EXP-1").unwrap(), Some(e.clone()));

    e.status = ExperimentStatus::Complete;
    e.end_date = Some(date(2024, 3, 1));
    e.control_trades = 31;
    e.test_trades = 30;
    e.p_value = Some(0.0123);
    e.effect_size = Some(0.41);
    e.decision = Some("adopt pending review".into());
    store.update_experiment(&e).unwrap();
    assert_eq!(store.experiment("EXP-1").unwrap(), Some(e.clone()));

    store.insert_experiment(&experiment("EXP-2")).unwrap();
    let ids: Vec<String> = store
        .experiments()
        .unwrap()
        .into_iter()
        .map(|e| e.experiment_id)
        .collect();
    assert_eq!(ids, ["EXP-1", "EXP-2"]);
    let missing = store.update_experiment(&experiment("EXP-9")).unwrap_err();
    assert!(matches!(missing, RepoError::NotFound(_)), "{missing}");
    assert_eq!(store.experiment("EXP-9").unwrap(), None);
}

fn pattern(name: &str) -> Pattern {
    Pattern {
        pattern_type: "otm_bucket".into(),
        pattern_name: name.into(),
        sample_size: 42,
        win_rate: 0.881,
        avg_roi: 0.0213,
        confidence: 0.95,
        p_value: 0.004,
        status: PatternStatus::Active,
        date_detected: date(2024, 2, 1),
        context: json!({"low": 0.18, "high": 0.20}),
    }
}

#[test]
fn test_patterns_are_numbered_filtered_and_retired() {
    let (_dir, store) = temp_store();
    let a = store.insert_pattern(&pattern("18-20% OTM")).unwrap();
    let b = store.insert_pattern(&pattern("Tuesday entries")).unwrap();
    assert_ne!(a, b);
    store.set_pattern_status(a, PatternStatus::Retired).unwrap();
    let active = store.patterns(Some(PatternStatus::Active)).unwrap();
    assert_eq!(active, vec![(b, pattern("Tuesday entries"))]);
    let all = store.patterns(None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1.status, PatternStatus::Retired);
    let e = store
        .set_pattern_status(9_999, PatternStatus::Retired)
        .unwrap_err();
    assert!(matches!(e, RepoError::NotFound(_)), "{e}");
}

#[test]
fn test_learning_history_round_trips_newest_first() {
    let (_dir, store) = temp_store();
    let full = LearningEvent {
        event_type: LearningEventType::ParameterAdopted,
        event_date: at(86_400, 42),
        pattern_name: Some("18-20% OTM".into()),
        confidence: Some(0.97),
        sample_size: Some(64),
        parameter_changed: Some("otm_range".into()),
        old_value: Some("0.15..0.20".into()),
        new_value: Some("0.18..0.22".into()),
        reasoning: "test arm beat control, p=0.01 after correction".into(),
    };
    let bare = LearningEvent {
        event_type: LearningEventType::PatternDetected,
        event_date: at(0, 0),
        pattern_name: None,
        confidence: None,
        sample_size: None,
        parameter_changed: None,
        old_value: None,
        new_value: None,
        reasoning: "first look".into(),
    };
    store.append_learning_event(&bare).unwrap();
    store.append_learning_event(&full).unwrap();
    assert_eq!(
        store.learning_history(10).unwrap(),
        vec![full.clone(), bare]
    );
    assert_eq!(store.learning_history(1).unwrap(), vec![full]);
}

// ---------------------------------------------------------------- working memory

#[test]
fn test_working_memory_remembers_overwrites_and_forgets() {
    let (_dir, store) = temp_store();
    assert_eq!(store.recall("goal").unwrap(), None);
    store.remember("goal", &json!({"weekly": 500})).unwrap();
    store
        .remember("actions", &json!(["scan", "enter"]))
        .unwrap();
    store.remember("goal", &json!({"weekly": 600})).unwrap();
    assert_eq!(store.recall("goal").unwrap(), Some(json!({"weekly": 600})));
    assert_eq!(store.keys().unwrap(), ["actions", "goal"]);
    store.forget("goal").unwrap();
    store.forget("never-there").unwrap();
    assert_eq!(store.recall("goal").unwrap(), None);
    assert_eq!(store.keys().unwrap(), ["actions"]);
}

// ---------------------------------------------------------------- transactions

#[test]
fn test_atomically_commits_all_or_nothing() {
    let (_dir, store) = temp_store();
    let failed: Result<(), RepoError> = store.atomically(|tx| {
        tx.insert_order(&stubs::sell_to_open("O-1"))?;
        tx.record_fill(&stubs::fill("O-1", "E-1", 1))?;
        Err(RepoError::Backend("caller gave up".into()))
    });
    assert!(failed.is_err());
    assert_eq!(store.order("O-1").unwrap(), None);
    assert!(store.fills("O-1").unwrap().is_empty());

    let done: Result<bool, RepoError> = store.atomically(|tx| {
        tx.insert_order(&stubs::sell_to_open("O-1"))?;
        // A failed call undoes only itself; the caller may carry on.
        let dup = tx.insert_order(&stubs::sell_to_open("O-1"));
        assert!(matches!(dup, Err(RepoError::Duplicate(_))));
        tx.record_fill(&stubs::fill("O-1", "E-1", 1))
    });
    assert!(done.unwrap());
    assert!(store.order("O-1").unwrap().is_some());
    assert_eq!(store.fills("O-1").unwrap().len(), 1);
    assert_eq!(store.order_events("O-1").unwrap().len(), 1);

    // The closure's error type only needs From<StoreError>.
    let counted: Result<usize, StoreError> = store.atomically(|tx| {
        Ok(tx
            .open_orders()
            .map_err(|e| StoreError::NotFound {
                what: e.to_string(),
            })?
            .len())
    });
    assert_eq!(counted.unwrap(), 1);
}

// ---------------------------------------------------------------- corrupt rows

#[test]
fn test_unreadable_stored_values_are_corrupt_naming_table_row_and_column() {
    use diesel::prelude::*;
    let (dir, store) = temp_store();
    store.insert_trade(&stubs::open_trade()).unwrap();
    store.insert_order(&stubs::sell_to_open("O-1")).unwrap();
    let mut raw =
        SqliteConnection::establish(dir.path().join("trader.db").to_str().unwrap()).unwrap();
    diesel::sql_query("UPDATE trades SET market_regime = 'sideways' WHERE trade_id = 'T-1'")
        .execute(&mut raw)
        .unwrap();
    diesel::sql_query("UPDATE orders SET contract = '{not json' WHERE order_ref = 'O-1'")
        .execute(&mut raw)
        .unwrap();

    let e = store.trade("T-1").unwrap_err();
    let RepoError::Corrupt(m) = &e else {
        panic!("expected Corrupt, got {e}")
    };
    assert!(
        m.contains("trades") && m.contains("T-1") && m.contains("market_regime"),
        "{m}"
    );
    let e = store.open_orders().unwrap_err();
    let RepoError::Corrupt(m) = &e else {
        panic!("expected Corrupt, got {e}")
    };
    assert!(
        m.contains("orders") && m.contains("O-1") && m.contains("contract"),
        "{m}"
    );
}

#[test]
fn test_times_keep_their_sub_second_precision() {
    let (_dir, store) = temp_store();
    let mut o = stubs::sell_to_open("O-1");
    o.intent.created_at = at(0, 1);
    o.updated_at = at(0, 1) + Duration::nanoseconds(999_999_998);
    store.insert_order(&o).unwrap();
    assert_eq!(store.order("O-1").unwrap(), Some(o));
}

#[test]
fn test_a_stale_order_update_that_goes_backwards_is_a_conflict() {
    let (_dir, store) = temp_store();
    let mut o = stubs::sell_to_open("O-1");
    store.insert_order(&o).unwrap();
    let stale = o.clone();
    o.transition(OrderStatus::Sent, at(1, 0), None).unwrap();
    o.apply_fill(&stubs::fill("O-1", "E-1", 5)).unwrap();
    store.update_order(&o).unwrap();
    // A copy read before the fill tries to write Created back.
    let err = store.update_order(&stale).unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err}");
    assert_eq!(
        store.order("O-1").unwrap().unwrap().status,
        OrderStatus::Filled
    );
}
