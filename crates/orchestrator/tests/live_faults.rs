//! The engine against a broker with IBKR's failures (issue #12): the
//! simulated exchange behind a forwarder that can refuse the account
//! summary, lose the connection, confirm cancels late, hide a position or
//! drop settlement events. Each test fails on the engine before the fixes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use core_domain::{
    AccountSnapshot, AuditRepository, Broker, BrokerError, BrokerEvent, Clock, Contract, DailyBar,
    Fill, MarginImpact, MarketData, OptionChain, OptionContract, OptionQuote, OrderIntent,
    OrderPurpose, OrderRepository, OrderUpdate, Position, Quote, Symbol, Trade, TradeFilter,
    TradeRepository, TradeStatus,
};
use market_sim::{ExchangeClock, SimExchange};
use orchestrator::engine::{Engine, put_of};
use orchestrator::{Action, CycleReport, Pace, run};
use risk::TradingState;
use store::{ControlAction, ControlRequest, Store};

/// The simulated exchange behind a link with switchable faults.
struct Faulty {
    ex: Arc<SimExchange>,
    /// Every call fails as if TWS were unreachable.
    down: AtomicBool,
    /// `account_summary` fails.
    no_account: AtomicBool,
    /// Cancels are acknowledged but carried out at the next poll.
    late_cancels: AtomicBool,
    queued_cancels: Mutex<Vec<String>>,
    /// Option positions (contract keys) the broker no longer shows.
    hidden: Mutex<Vec<String>>,
    /// Expirations and assignments are never reported as events.
    drop_settlements: AtomicBool,
    /// Closing orders are "rejected" by an error code only (IB 110, the
    /// price is off the tick): acknowledged, never placed, the error
    /// reported at the next poll.
    reject_closes: AtomicBool,
    queued_events: Mutex<Vec<BrokerEvent>>,
    /// Positions the broker shows besides the exchange's (stock the
    /// system never received).
    extra: Mutex<Vec<Position>>,
    next_fake_id: std::sync::atomic::AtomicI64,
}

impl Faulty {
    fn new(ex: &Arc<SimExchange>) -> Arc<Self> {
        Arc::new(Faulty {
            ex: Arc::clone(ex),
            down: AtomicBool::new(false),
            no_account: AtomicBool::new(false),
            late_cancels: AtomicBool::new(false),
            queued_cancels: Mutex::new(Vec::new()),
            hidden: Mutex::new(Vec::new()),
            drop_settlements: AtomicBool::new(false),
            reject_closes: AtomicBool::new(false),
            queued_events: Mutex::new(Vec::new()),
            extra: Mutex::new(Vec::new()),
            next_fake_id: std::sync::atomic::AtomicI64::new(900_000),
        })
    }

    fn check(&self) -> Result<(), BrokerError> {
        if self.down.load(Ordering::SeqCst) {
            Err(BrokerError::NotConnected("TWS unreachable (test)".into()))
        } else {
            Ok(())
        }
    }
}

impl Broker for Faulty {
    async fn contract_details(&self, contract: &Contract) -> Result<Contract, BrokerError> {
        self.check()?;
        self.ex.contract_details(contract).await
    }
    async fn what_if(&self, intent: &OrderIntent) -> Result<MarginImpact, BrokerError> {
        self.check()?;
        self.ex.what_if(intent).await
    }
    async fn place_order(&self, intent: &OrderIntent) -> Result<i64, BrokerError> {
        self.check()?;
        if self.reject_closes.load(Ordering::SeqCst) && intent.purpose == OrderPurpose::Close {
            self.queued_events.lock().unwrap().push(BrokerEvent::Error {
                code: 110,
                message:
                    "The price does not conform to the minimum price variation for this contract."
                        .into(),
                order_ref: Some(intent.order_ref.clone()),
            });
            return Ok(self.next_fake_id.fetch_add(1, Ordering::SeqCst));
        }
        self.ex.place_order(intent).await
    }
    async fn cancel_order(&self, order_ref: &str) -> Result<(), BrokerError> {
        self.check()?;
        if self.late_cancels.load(Ordering::SeqCst) {
            self.queued_cancels
                .lock()
                .unwrap()
                .push(order_ref.to_string());
            return Ok(());
        }
        self.ex.cancel_order(order_ref).await
    }
    async fn open_orders(&self) -> Result<Vec<OrderUpdate>, BrokerError> {
        self.check()?;
        self.ex.open_orders().await
    }
    async fn executions_since(&self, since: DateTime<Utc>) -> Result<Vec<Fill>, BrokerError> {
        self.check()?;
        self.ex.executions_since(since).await
    }
    async fn poll_events(&self) -> Result<Vec<BrokerEvent>, BrokerError> {
        self.check()?;
        let queued: Vec<String> = std::mem::take(&mut *self.queued_cancels.lock().unwrap());
        for r in queued {
            let _ = self.ex.cancel_order(&r).await;
        }
        let mut events: Vec<BrokerEvent> = std::mem::take(&mut *self.queued_events.lock().unwrap());
        events.extend(self.ex.poll_events().await?);
        if self.drop_settlements.load(Ordering::SeqCst) {
            events.retain(|e| {
                !matches!(
                    e,
                    BrokerEvent::Expiration { .. } | BrokerEvent::Assignment { .. }
                )
            });
        }
        Ok(events)
    }
    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.check()?;
        let hidden = self.hidden.lock().unwrap().clone();
        Ok(self
            .ex
            .positions()
            .await?
            .into_iter()
            .filter(|p| !hidden.contains(&p.contract.key()))
            .chain(self.extra.lock().unwrap().iter().cloned())
            .collect())
    }
    async fn account_summary(&self) -> Result<AccountSnapshot, BrokerError> {
        self.check()?;
        if self.no_account.load(Ordering::SeqCst) {
            return Err(BrokerError::Timeout("account summary (test)".into()));
        }
        self.ex.account_summary().await
    }
}

impl MarketData for Faulty {
    async fn stock_quote(&self, symbol: &Symbol) -> Result<Quote, BrokerError> {
        self.check()?;
        self.ex.stock_quote(symbol).await
    }
    async fn daily_bars(
        &self,
        symbol: &Symbol,
        end: NaiveDate,
        count: usize,
    ) -> Result<Vec<DailyBar>, BrokerError> {
        self.check()?;
        self.ex.daily_bars(symbol, end, count).await
    }
    async fn option_chain(&self, symbol: &Symbol) -> Result<OptionChain, BrokerError> {
        self.check()?;
        self.ex.option_chain(symbol).await
    }
    async fn option_quotes(
        &self,
        contracts: &[OptionContract],
    ) -> Result<Vec<OptionQuote>, BrokerError> {
        self.check()?;
        self.ex.option_quotes(contracts).await
    }
}

type FaultyEngine =
    Engine<Arc<Faulty>, strategy_naked_put::NakedPutStrategy, orchestrator::hook::Learner>;

struct Run {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    ex: Arc<SimExchange>,
    link: Arc<Faulty>,
    engine: FaultyEngine,
    clock: ExchangeClock,
    rt: tokio::runtime::Runtime,
}

fn utc(s: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

/// The loosened strategy of `engine_loop.rs` (positions open in a short
/// window).
fn loose_settings() -> settings::Settings {
    let mut settings = settings::Settings::default();
    let s = &mut settings.strategy;
    s.otm_range.min = 0.05;
    s.otm_range.max = 0.25;
    s.premium_range.min = 0.05;
    s.premium_range.max = 5.0;
    s.dte_range.min = 5;
    s.dte_range.max = 30;
    s.max_positions = 6;
    s.min_open_interest = 0;
    s.max_spread_pct = 1.0;
    let r = &mut settings.risk;
    r.max_sector_concentration = 1.0;
    r.max_correlation = 1.0;
    r.max_portfolio_var_95 = 1.0;
    settings
}

fn start(settings: &settings::Settings, from: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("engine.db").display().to_string();
    let store = Arc::new(Store::open_and_migrate(&url).unwrap());
    store.relax_durability_for_research().unwrap();
    let history = traderd::wiring::history().unwrap();
    let from: NaiveDate = from.parse().unwrap();
    let ex = traderd::wiring::sim_exchange(
        settings,
        Arc::clone(&history),
        settings.broker.sim.chain.clone(),
        from,
        Some(7),
    )
    .unwrap();
    let link = Faulty::new(&ex);
    let engine = traderd::wiring::build_engine(
        settings,
        Arc::clone(&store),
        Arc::clone(&link),
        traderd::wiring::schedule(settings).unwrap(),
        traderd::wiring::engine_params(settings, &history),
        settings.risk_limits(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Run {
        _dir: dir,
        store,
        clock: ExchangeClock::new(Arc::clone(&ex)),
        ex,
        link,
        engine,
        rt,
    }
}

impl Run {
    /// Runs the loop up to `until`; the reports of its cycles.
    fn drive(&mut self, until: DateTime<Utc>) -> Vec<CycleReport> {
        let stop = AtomicBool::new(false);
        let mut reports = Vec::new();
        self.rt
            .block_on(run(
                &mut self.engine,
                &self.clock,
                until,
                Pace::AsFastAsPossible,
                &stop,
                |r| reports.push(r.clone()),
            ))
            .unwrap();
        reports
    }

    /// The next cycle only.
    fn step(&mut self) -> CycleReport {
        let next = self.engine.schedule().next_cycle(self.clock.now());
        self.drive(next).pop().unwrap()
    }

    fn open_trades(&self) -> Vec<Trade> {
        self.store
            .trades(&TradeFilter::default())
            .unwrap()
            .into_iter()
            .filter(|t| t.status == TradeStatus::Open)
            .collect()
    }

    fn audited(&self, action: &str) -> usize {
        self.store
            .recent_audit(1_000_000)
            .unwrap()
            .iter()
            .filter(|a| a.action == action)
            .count()
    }

    fn request_stop(&self, flatten: bool) {
        self.store
            .request_control(&ControlRequest {
                id: None,
                time: self.clock.now(),
                actor: "operator:test".into(),
                action: ControlAction::EmergencyStop,
                flatten,
                reason: "live fault test".into(),
            })
            .unwrap();
    }
}

#[test]
fn a_failed_account_summary_still_runs_the_exits_and_no_entries() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.drive(utc("2020-02-12 16:00"));
    assert!(!run.open_trades().is_empty());
    run.link.no_account.store(true, Ordering::SeqCst);
    let r = run.step();
    assert!(
        r.actions.contains(&Action::ManageExits),
        "exits run without the account summary: {:?}",
        r.actions
    );
    assert!(!r.actions.contains(&Action::ScanEntries), "{:?}", r.actions);
    assert_eq!(r.entries_sent, 0);
}

#[test]
fn an_emergency_stop_while_disconnected_is_recorded_and_carried_out_at_reconnect() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.drive(utc("2020-02-12 16:00"));
    let open = run.open_trades();
    assert!(!open.is_empty());
    run.request_stop(true);
    run.link.down.store(true, Ordering::SeqCst);
    // The cycle does not fail; the halt is recorded.
    let _ = run.step();
    assert_eq!(run.engine.governor().state(), TradingState::Halted);
    assert_eq!(
        run.store.trading_state().unwrap().unwrap().state.as_str(),
        "halted"
    );
    assert!(run.store.pending_control_requests().unwrap().is_empty());
    // Back: the positions are closed.
    run.link.down.store(false, Ordering::SeqCst);
    run.step();
    let orders = run.store.all_orders().unwrap();
    for t in &open {
        assert!(
            orders
                .iter()
                .any(|o| o.intent.trade_id.as_deref() == Some(&t.trade_id)
                    && o.intent.purpose == OrderPurpose::Close
                    && o.status != core_domain::OrderStatus::Created),
            "no close sent for {} after the reconnect",
            t.trade_id
        );
    }
}

#[test]
fn a_flatten_never_closes_a_trade_twice_while_a_cancel_is_unconfirmed() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.drive(utc("2020-02-12 16:00"));
    let open = run.open_trades();
    assert!(!open.is_empty());
    // A resting close of the first trade (at the bid: below the ask), sent
    // through an executor of its own on the same store and broker.
    let t = open[0].clone();
    let put = put_of(&t);
    let quote = run
        .rt
        .block_on(run.ex.option_quotes(std::slice::from_ref(&put)))
        .unwrap()
        .remove(0)
        .quote;
    let now = run.clock.now();
    let intent = OrderIntent {
        order_ref: format!("X-{}-manual-{}", t.trade_id, now.format("%Y%m%d%H%M")),
        contract: Contract::Option(put.clone()),
        side: core_domain::Side::Buy,
        quantity: t.contracts,
        limit_price: quote.bid.unwrap(),
        time_in_force: core_domain::TimeInForce::Day,
        purpose: OrderPurpose::Close,
        trade_id: Some(t.trade_id.clone()),
        created_at: now,
    };
    let account = run.rt.block_on(run.ex.account_summary()).unwrap();
    let approved = risk::RiskGovernor::new(risk::RiskLimits::default())
        .check(
            intent,
            &risk::RiskContext::new(account.clone(), account),
            now,
        )
        .unwrap();
    let side_exec = execution::OrderExecutor::new(Arc::clone(&run.store), Arc::clone(&run.link));
    run.rt.block_on(side_exec.submit(approved, now)).unwrap();
    let working_closes = |run: &Run| {
        run.rt
            .block_on(run.ex.open_orders())
            .unwrap()
            .into_iter()
            .filter(|u| {
                run.store
                    .order(&u.order_ref)
                    .unwrap()
                    .is_some_and(|o| o.intent.trade_id.as_deref() == Some(&t.trade_id))
            })
            .count()
    };
    assert_eq!(working_closes(&run), 1);

    // The stop: the cancel is taken but carried out only later.
    run.link.late_cancels.store(true, Ordering::SeqCst);
    run.request_stop(true);
    run.step();
    assert_eq!(run.engine.governor().state(), TradingState::Halted);
    assert!(
        working_closes(&run) <= 1,
        "a second close of {} while the first still works",
        t.trade_id
    );
    // The next cycles confirm the cancel and close it once.
    run.link.late_cancels.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        run.step();
        assert!(working_closes(&run) <= 1);
    }
    let positions = run.rt.block_on(run.ex.positions()).unwrap();
    assert!(
        positions
            .iter()
            .all(|p| !matches!(p.contract, Contract::Option(_)) || p.quantity <= 0),
        "a flatten left a long put: {positions:?}"
    );
}

#[test]
fn a_position_gone_at_the_broker_is_a_mismatch_reduce_only_and_never_bought_back() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.drive(utc("2020-02-12 16:00"));
    let open = run.open_trades();
    assert!(!open.is_empty());
    let t = open[0].clone();
    let key = Contract::Option(put_of(&t)).key();
    run.link.hidden.lock().unwrap().push(key.clone());
    run.step();
    run.step();
    assert_eq!(run.engine.governor().state(), TradingState::ReduceOnly);
    assert!(run.audited("position_mismatch") >= 1);
    assert!(
        run.engine
            .memory()
            .position_mismatches
            .iter()
            .any(|m| m.contains(&key)),
        "{:?}",
        run.engine.memory().position_mismatches
    );
    // Whatever the exits say, nothing buys back a put the broker does not
    // show.
    run.drive(utc("2020-02-14 21:00"));
    let orders = run.store.all_orders().unwrap();
    let since = utc("2020-02-12 16:00");
    assert!(
        !orders
            .iter()
            .any(|o| o.intent.trade_id.as_deref() == Some(&t.trade_id)
                && o.intent.purpose == OrderPurpose::Close
                && o.intent.created_at > since),
        "a close of {} whose position is gone",
        t.trade_id
    );
}

#[test]
fn a_settlement_while_the_daemon_was_away_is_recognised_from_the_positions() {
    // Exits only on expiry day (time exit at 0 days), no profit target.
    let mut settings = loose_settings();
    settings.strategy.exits.profit_target = 0.99;
    settings.strategy.exits.time_exit_dte = 0;
    settings.strategy.exits.stop_loss = -10.0;
    let mut run = start(&settings, "2020-02-03");
    run.drive(utc("2020-02-27 21:30"));
    let expiring: Vec<Trade> = run
        .open_trades()
        .into_iter()
        .filter(|t| t.expiration == NaiveDate::from_ymd_opt(2020, 2, 28).unwrap())
        .collect();
    assert!(!expiring.is_empty(), "a trade expiring 2020-02-28");
    // Away over the expiry; the settlement is never reported (an adapter
    // restarted after it has no baseline to infer it from).
    run.link.down.store(true, Ordering::SeqCst);
    run.link.drop_settlements.store(true, Ordering::SeqCst);
    run.drive(utc("2020-03-02 14:00"));
    run.link.down.store(false, Ordering::SeqCst);
    run.drive(utc("2020-03-02 16:00"));
    for t in &expiring {
        let now = run.store.trade(&t.trade_id).unwrap().unwrap();
        assert_eq!(
            now.status,
            TradeStatus::Closed,
            "{} is still open",
            t.trade_id
        );
        assert!(
            matches!(
                now.exit_reason,
                Some(core_domain::ExitReason::ExpiredWorthless | core_domain::ExitReason::Assigned)
            ),
            "{:?}",
            now.exit_reason
        );
    }
    assert!(run.audited("position_reconciled") >= 1);
    assert!(run.engine.memory().position_mismatches.is_empty());
}

#[test]
fn a_close_rejected_by_an_error_code_only_is_ended_and_a_new_close_follows() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.link.reject_closes.store(true, Ordering::SeqCst);
    run.drive(utc("2020-02-21 21:00"));
    let orders = run.store.all_orders().unwrap();
    let rejected: Vec<_> = orders
        .iter()
        .filter(|o| {
            o.intent.purpose == OrderPurpose::Close
                && o.status == core_domain::OrderStatus::Rejected
                && o.reason.as_deref().is_some_and(|r| r.contains("110"))
        })
        .collect();
    assert!(
        !rejected.is_empty(),
        "closes rejected by code 110 end rejected: {:?}",
        orders
            .iter()
            .filter(|o| o.intent.purpose == OrderPurpose::Close)
            .map(|o| (o.intent.order_ref.clone(), o.status))
            .collect::<Vec<_>>()
    );
    // The broker takes closes again: the trades close.
    run.link.reject_closes.store(false, Ordering::SeqCst);
    run.drive(utc("2020-03-06 21:00"));
    // No close was left stuck: each rejected one was followed by another
    // attempt for its trade, and the trade closed.
    let orders = run.store.all_orders().unwrap();
    for r in &rejected {
        let trade = r.intent.trade_id.clone().unwrap();
        assert!(
            orders
                .iter()
                .any(|o| o.intent.trade_id.as_deref() == Some(&trade)
                    && o.intent.purpose == OrderPurpose::Close
                    && o.intent.created_at > r.intent.created_at),
            "no new close of {trade} after {} was rejected",
            r.intent.order_ref
        );
        assert_eq!(
            run.store.trade(&trade).unwrap().unwrap().status,
            TradeStatus::Closed,
            "{trade}"
        );
    }
}

#[test]
fn a_partial_assignment_keeps_the_rest_open_and_sells_the_shares_received() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.drive(utc("2020-02-12 16:00"));
    let held: Vec<Trade> = run
        .open_trades()
        .into_iter()
        .filter(|t| t.contracts >= 2)
        .collect();
    assert!(
        !held.is_empty(),
        "a trade of 2 contracts or more: {:?}",
        run.open_trades()
    );
    // One contract is assigned early; the broker never says so (the
    // adapter infers it from the positions).
    run.link.drop_settlements.store(true, Ordering::SeqCst);
    let (put, qty) = run.ex.assign_now(1, 2).unwrap();
    assert_eq!(qty, -1);
    let trade = held
        .iter()
        .find(|t| put_of(t) == put)
        .cloned()
        .unwrap_or_else(|| {
            run.open_trades()
                .into_iter()
                .find(|t| put_of(t) == put)
                .unwrap()
        });
    for _ in 0..4 {
        run.step();
    }
    let now = run.store.trade(&trade.trade_id).unwrap().unwrap();
    assert_eq!(
        now.contracts,
        trade.contracts - 1,
        "the rest stays the trade's"
    );
    assert_ne!(
        now.exit_reason,
        Some(core_domain::ExitReason::Assigned),
        "a partial assignment never closes the whole trade"
    );
    // The 100 shares received are sold (a liquidation of the stock), never
    // more; the trading state is not reduce-only (nothing unexplained).
    let sales: Vec<_> = run
        .store
        .all_orders()
        .unwrap()
        .into_iter()
        .filter(|o| {
            o.intent.purpose == OrderPurpose::Liquidate
                && matches!(&o.intent.contract, Contract::Stock(s) if s.symbol == put.underlying)
        })
        .collect();
    assert!(!sales.is_empty(), "the assigned shares are sold");
    assert!(sales.iter().all(|o| o.intent.quantity <= 100), "{sales:?}");
    assert!(
        run.engine.memory().position_mismatches.is_empty(),
        "{:?}",
        run.engine.memory().position_mismatches
    );
    assert_eq!(run.engine.governor().state(), TradingState::Active);
}

#[test]
fn stock_no_assignment_explains_is_a_mismatch_in_a_traded_symbol_only() {
    let mut run = start(&loose_settings(), "2020-02-03");
    run.drive(utc("2020-02-12 16:00"));
    let open = run.open_trades();
    assert!(!open.is_empty());
    let at = run.clock.now();
    let stock = |symbol: &str| Position {
        contract: Contract::Stock(core_domain::StockContract::us(Symbol::new(symbol).unwrap())),
        quantity: 300,
        avg_cost: core_domain::Price::from_cents(10_000),
        market_price: None,
        updated_at: at,
    };
    // Stock the operator holds in a symbol the system never trades: left
    // alone.
    run.link.extra.lock().unwrap().push(stock("ZZZZ"));
    run.step();
    run.step();
    assert!(
        run.engine.memory().position_mismatches.is_empty(),
        "{:?}",
        run.engine.memory().position_mismatches
    );
    // 300 shares of a traded symbol that no assignment delivered: a
    // mismatch (seen twice), reduce-only, never sold.
    let symbol = open[0].symbol.as_str().to_string();
    run.link.extra.lock().unwrap().push(stock(&symbol));
    run.step();
    run.step();
    assert!(
        run.engine
            .memory()
            .position_mismatches
            .iter()
            .any(|m| m.starts_with(&format!("{symbol} stock"))),
        "{:?}",
        run.engine.memory().position_mismatches
    );
    assert_eq!(run.engine.governor().state(), TradingState::ReduceOnly);
    assert!(!run.store.all_orders().unwrap().iter().any(|o| matches!(
        &o.intent.contract,
        Contract::Stock(s) if s.symbol.as_str() == symbol
    )));
}
