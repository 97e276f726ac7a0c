//! [`IbkrBroker`]: the `Broker` and `MarketData` traits over a live
//! `ibapi` connection, with reconnects, reconciliation and pacing.
//!
//! One `ibapi::Client` per connection; its own transport reconnect is off
//! (`max_reconnect_attempts(0)`), because the adapter needs to know when a
//! session ends: a supervisor task notices the loss, emits
//! `ConnectionLost`, reconnects with exponential backoff, emits
//! `ConnectionRestored`, then re-sends the market-data type and reconciles
//! (open orders, executions since the last one seen, positions) before
//! anything else uses the new session.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use core_domain::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Contract, DailyBar, Fill, MarginImpact,
    MarketData, Money, OptionChain, OptionContract, OptionQuote, OrderIntent, OrderStatus,
    OrderUpdate, Position, Price, Quote, Side, StockContract, Symbol, TimeInForce,
};
use futures::{Stream, StreamExt};
use ibapi::Client;
use ibapi::orders::{
    ExecutionFilter, ExecutionSide, Executions, Order as IbOrder, OrderUpdate as IbUpdate, Orders,
    PlaceOrder,
};
use ibapi::subscriptions::SubscriptionItem;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::bars::{RawBar, convert_bars, duration_for, filter_time, parse_ib_time};
use crate::config::{IbkrConfig, check_account};
use crate::connection::{Backoff, connect_hint, spawn_supervised};
use crate::contracts::{self, from_ib, money, price, quantity, signed_price, to_ib};
use crate::errors::{Disposition, is_order_terminal, map_client_error, map_error};
use crate::market_data_type::{
    MarketDataKind, MarketDataMode, QuoteAccumulator, from_ib as ticks_from_ib, kind_from_ib,
};
use crate::orders::{
    FillJoiner, Joined, OrderBook, OrderIdAllocator, OrderRegistry, PendingExecution, map_status,
};
use crate::pacing::Pacer;

/// Events waiting for `poll_events` beyond which each further multiple is
/// logged as an error (nothing is dropped: the buffer grows, fills above
/// all must reach the engine).
const EVENT_BACKLOG_WARNING: usize = 10_000;
/// How long a terminal order status waits for the executions it reports
/// (TWS may send "Filled" before the execution, and the execution waits
/// for its commission report) before it is reported anyway (at least the
/// commission wait and 10 s more).
const HELD_STATUS_WAIT: Duration = Duration::from_secs(40);
/// How often the supervisor checks the connection.
const HEALTH_CHECK: Duration = Duration::from_secs(5);

/// What a daemon knows of the broker from its database when it starts
/// again ([`IbkrBroker::connect_resuming`]).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The largest IBKR order id used (no id at or below it is used again).
    pub last_order_id: Option<i64>,
    /// Execution ids already recorded (not reported again as fills).
    pub known_exec_ids: Vec<String>,
    /// The positions last recorded: the reference for settlements that
    /// happened while the daemon was down. `None`: the first positions
    /// fetched are the reference.
    pub positions: Option<Vec<Position>>,
}

/// The Interactive Brokers adapter. Build it with [`IbkrBroker::connect`];
/// share it as `Arc<IbkrBroker>` (the traits are implemented for `Arc`).
/// Dropping it stops the background tasks and closes the connection.
/// It must be created inside a tokio runtime (it spawns its supervisor and
/// stream readers there).
pub struct IbkrBroker {
    inner: Arc<Inner>,
}

/// A contract's identity for position bookkeeping (con_id ignored: a
/// fill and a position may differ in whether they carry it).
fn contract_key(c: &Contract) -> String {
    match c {
        Contract::Option(o) => o.key(),
        Contract::Stock(st) => format!("STK {}", st.symbol),
    }
}

/// Lockstep: how long `poll_events` waits for the next queued order-stream
/// item before it counts the stream as drained.
const DRAIN_WAIT: Duration = Duration::from_millis(3);

/// How long an option's streaming quote waits for its open interest once
/// it is priced.
const OPEN_INTEREST_WAIT: Duration = Duration::from_millis(1500);

struct Inner {
    config: IbkrConfig,
    client: Mutex<Option<Arc<Client>>>,
    state: Mutex<State>,
    events: Mutex<VecDeque<BrokerEvent>>,
    pacer: Pacer,
    /// Serializes order placement, so two calls with one `order_ref`
    /// cannot both send.
    place_lock: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
    /// Signalled by the stream readers when the session ends.
    lost: tokio::sync::Notify,
    /// The gateway's clock minus ours in milliseconds, measured at each
    /// connect: "now" for execution filters, order times and today's date
    /// is the gateway's (a simulated gateway runs in the past; a real one
    /// may sit on a machine whose clock drifts). Atomic, so reading the
    /// time never takes the state lock.
    clock_offset_ms: std::sync::atomic::AtomicI64,
    /// The order stream, kept here instead of a reader task in lockstep
    /// mode ([`IbkrConfig::lockstep`]): `poll_events` drains it.
    updates: tokio::sync::Mutex<Option<UpdateStream>>,
    /// Pacing errors TWS sent without a request id (code 100 comes with
    /// id -1): a request left unanswered while this moved was dropped by
    /// TWS's message-rate limit.
    pacing_notices: std::sync::atomic::AtomicU64,
    /// Set when a reader task of the session panicked: the session is
    /// rebuilt even though the socket is still up.
    broken: std::sync::atomic::AtomicBool,
}

/// The order update stream, boxed so it can be kept.
type UpdateStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<SubscriptionItem<IbUpdate>, ibapi::Error>> + Send>>;

struct State {
    account: String,
    ids: OrderIdAllocator,
    registry: OrderRegistry,
    joiner: FillJoiner,
    book: OrderBook,
    md_mode: MarketDataMode,
    con_ids: HashMap<Symbol, i64>,
    last_exec_time: Option<DateTime<Utc>>,
    gateway_tz: Tz,
    /// Bumped on each new session; readers of an old session stop.
    session: u64,
    /// The positions as last fetched, plus our fills since (by contract
    /// key): what expiry or assignment must explain (see
    /// `infer_settlements`). `None` until the first fetch.
    held: Option<HashMap<String, (Contract, i64)>>,
    /// Per order ref, the quantity of each execution (by base id) reported
    /// as a fill or known from before: what a terminal status's filled
    /// quantity is compared with.
    delivered: HashMap<String, HashMap<String, i64>>,
    /// Terminal statuses that report more filled than the fills reported
    /// so far: released once the fills are out (or after
    /// [`HELD_STATUS_WAIT`]), so the status never overtakes its fills.
    held_statuses: HashMap<String, (OrderUpdate, std::time::Instant)>,
    /// Orders reported `Rejected` because of an order-ending error code.
    ended_by_error: std::collections::HashSet<String>,
}

/// Queues an event for `poll_events`. Nothing is ever dropped (fills
/// above all): past every [`EVENT_BACKLOG_WARNING`] waiting events an
/// error is logged, since the engine is not polling.
fn enqueue(events: &mut VecDeque<BrokerEvent>, event: BrokerEvent) {
    events.push_back(event);
    if events.len().is_multiple_of(EVENT_BACKLOG_WARNING) {
        tracing::error!(
            waiting = events.len(),
            "broker events are piling up (none is dropped): is the engine polling?"
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl IbkrBroker {
    /// Connects to TWS / IB Gateway, trying `config.connect_attempts` times
    /// with exponential backoff; the error names `host:port` and what to
    /// check. Once connected, later disconnects are repaired in the
    /// background (see the module docs).
    pub async fn connect(config: IbkrConfig) -> Result<IbkrBroker, BrokerError> {
        Self::connect_with(config, None, Vec::new()).await
    }

    /// [`Self::connect`] continuing from a previous run: `last_order_id` is
    /// the largest IBKR order id the store knows (no id at or below it is
    /// used again), `known_exec_ids` the execution ids already recorded
    /// (they are not reported again as fills).
    pub async fn connect_with(
        config: IbkrConfig,
        last_order_id: Option<i64>,
        known_exec_ids: Vec<String>,
    ) -> Result<IbkrBroker, BrokerError> {
        Self::connect_resuming(
            config,
            Resume {
                last_order_id,
                known_exec_ids,
                positions: None,
            },
        )
        .await
    }

    /// [`Self::connect_with`], also given the positions the database last
    /// recorded: they are the reference for expiries and assignments, so
    /// an option that settled while the daemon was down is reported
    /// (`Expiration` / `Assignment`) by the first reconciliation.
    pub async fn connect_resuming(
        config: IbkrConfig,
        resume: Resume,
    ) -> Result<IbkrBroker, BrokerError> {
        let Resume {
            last_order_id,
            known_exec_ids,
            positions,
        } = resume;
        let (shutdown, _) = watch::channel(false);
        let mut joiner = FillJoiner::new();
        joiner.mark_reported(known_exec_ids);
        let inner = Arc::new(Inner {
            pacer: Pacer::new(
                config.messages_per_second,
                config.snapshots_per_second,
                config.max_market_data_lines,
            ),
            state: Mutex::new(State {
                account: config.account.clone(),
                ids: OrderIdAllocator::with_last_used(
                    last_order_id.and_then(|id| i32::try_from(id).ok()),
                ),
                registry: OrderRegistry::default(),
                joiner,
                book: OrderBook::new(),
                md_mode: MarketDataMode::new(config.market_data),
                con_ids: HashMap::new(),
                last_exec_time: None,
                gateway_tz: chrono_tz::America::New_York,
                session: 0,
                held: positions.map(|ps| {
                    ps.into_iter()
                        .filter(|p| p.quantity != 0)
                        .map(|p| (contract_key(&p.contract), (p.contract, p.quantity)))
                        .collect()
                }),
                delivered: HashMap::new(),
                held_statuses: HashMap::new(),
                ended_by_error: std::collections::HashSet::new(),
            }),
            config,
            client: Mutex::new(None),
            events: Mutex::new(VecDeque::new()),
            place_lock: tokio::sync::Mutex::new(()),
            shutdown,
            lost: tokio::sync::Notify::new(),
            clock_offset_ms: std::sync::atomic::AtomicI64::new(0),
            updates: tokio::sync::Mutex::new(None),
            pacing_notices: std::sync::atomic::AtomicU64::new(0),
            broken: std::sync::atomic::AtomicBool::new(false),
        });

        let mut backoff = Backoff::new(inner.config.reconnect_initial, inner.config.reconnect_max);
        let attempts = inner.config.connect_attempts.max(1);
        let mut last_err = String::new();
        let mut connected = None;
        for attempt in 1..=attempts {
            match inner.open_client().await {
                Ok(client) => {
                    connected = Some(client);
                    break;
                }
                Err(ConnectFailure::Fatal(e)) => return Err(e),
                Err(ConnectFailure::Retry(why)) => {
                    warn!(
                        attempt,
                        attempts,
                        "connect to {} failed: {why}",
                        inner.config.address()
                    );
                    last_err = why;
                    if attempt < attempts {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        }
        let Some(client) = connected else {
            return Err(BrokerError::NotConnected(format!(
                "{} ({attempts} attempts; last error: {last_err})",
                connect_hint(&inner.config.host, inner.config.port)
            )));
        };
        inner.on_connected(client).await?;
        tokio::spawn(Inner::supervise_forever(Arc::clone(&inner)));
        Ok(IbkrBroker { inner })
    }

    /// The account in use (the configured one or the first managed one).
    pub fn account(&self) -> String {
        lock(&self.inner.state).account.clone()
    }

    /// Whether a session to TWS is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.session_up()
    }

    /// The market-data type in use (after any fallback to delayed data).
    pub fn market_data_kind(&self) -> MarketDataKind {
        lock(&self.inner.state).md_mode.current()
    }

    /// Cancels every open order of the account (IBKR global cancel): the
    /// emergency stop's broker half.
    pub async fn cancel_all(&self) -> Result<(), BrokerError> {
        let client = self.inner.client()?;
        self.inner.pacer.request().await;
        client
            .global_cancel()
            .await
            .map_err(|e| map_client_error(&e, "global cancel"))
    }

    /// The gateway's clock.
    pub async fn server_time(&self) -> Result<DateTime<Utc>, BrokerError> {
        let client = self.inner.client()?;
        self.inner.pacer.request().await;
        let t = self
            .inner
            .timed("server time", client.server_time())
            .await?
            .map_err(|e| map_client_error(&e, "server time"))?;
        DateTime::<Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond())
            .ok_or_else(|| BrokerError::Protocol(format!("server time {t} is out of range")))
    }

    /// Stops the background tasks and closes the connection.
    pub async fn disconnect(&self) {
        let _ = self.inner.shutdown.send(true);
        let client = lock(&self.inner.client).take();
        if let Some(c) = client {
            c.disconnect().await;
        }
    }
}

impl Drop for IbkrBroker {
    fn drop(&mut self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.lost.notify_waiters();
    }
}

enum ConnectFailure {
    /// Retrying cannot help (client id in use, bad settings).
    Fatal(BrokerError),
    Retry(String),
}

impl Inner {
    fn client(&self) -> Result<Arc<Client>, BrokerError> {
        lock(&self.client).clone().ok_or_else(|| {
            BrokerError::NotConnected(format!(
                "reconnecting to TWS / IB Gateway at {}; retry after the connection is restored",
                self.config.address()
            ))
        })
    }

    /// The gateway's time now (our clock plus the offset measured at the
    /// last connect).
    fn now(&self) -> DateTime<Utc> {
        let ms = self
            .clock_offset_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        Utc::now() + chrono::Duration::milliseconds(ms)
    }

    /// Records the gateway's time `t` (its clock minus ours); returns the
    /// offset.
    fn set_server_time(&self, t: time::OffsetDateTime) -> Option<chrono::Duration> {
        let server = DateTime::<Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond())?;
        let offset = server - Utc::now();
        self.clock_offset_ms.store(
            offset.num_milliseconds(),
            std::sync::atomic::Ordering::Relaxed,
        );
        Some(offset)
    }

    /// The gateway's trading date (New York).
    fn today_ny(&self) -> NaiveDate {
        self.now()
            .with_timezone(&chrono_tz::America::New_York)
            .date_naive()
    }

    fn push(&self, event: BrokerEvent) {
        if let BrokerEvent::Fill(f) = &event
            && let Some(held) = lock(&self.state).held.as_mut()
        {
            let signed = match f.side {
                core_domain::Side::Buy => f.quantity,
                core_domain::Side::Sell => -f.quantity,
            };
            held.entry(contract_key(&f.contract))
                .or_insert_with(|| (f.contract.clone(), 0))
                .1 += signed;
        }
        enqueue(&mut lock(&self.events), event);
    }

    /// Reports what the fill joiner made of an execution or commission
    /// report: a new fill (counted for its order's held status), an
    /// amendment of a reported fill (its exec id again, with the late
    /// commission or the corrected figures), or a known execution
    /// (counted).
    fn deliver(&self, joined: Joined) {
        let order_ref = match joined {
            Joined::New(fill) => {
                let order_ref = fill.order_ref.clone();
                lock(&self.state)
                    .delivered
                    .entry(order_ref.clone())
                    .or_default()
                    .insert(
                        crate::orders::base_id(&fill.exec_id).to_string(),
                        fill.quantity,
                    );
                self.push(BrokerEvent::Fill(fill));
                order_ref
            }
            Joined::Amended(fill) => {
                info!(exec_id = %fill.exec_id, commission = %fill.commission, price = %fill.price,
                      quantity = fill.quantity, "an execution reported before is amended");
                self.push(BrokerEvent::Fill(fill));
                return;
            }
            Joined::Known {
                order_ref,
                base,
                quantity,
            } => {
                lock(&self.state)
                    .delivered
                    .entry(order_ref.clone())
                    .or_default()
                    .insert(base, quantity);
                order_ref
            }
            Joined::Commission {
                exec_id,
                commission,
            } => {
                info!(%exec_id, %commission, "a late commission report for an execution reported before");
                let time = self.now();
                self.push(BrokerEvent::Commission {
                    exec_id,
                    commission,
                    time,
                });
                return;
            }
            Joined::Waiting | Joined::Ignored => return,
        };
        self.release_status(&order_ref, false);
    }

    /// The quantity of `order_ref` reported as fills (or known).
    fn delivered_quantity(st: &State, order_ref: &str) -> i64 {
        st.delivered
            .get(order_ref)
            .map_or(0, |m| m.values().sum::<i64>())
    }

    /// Reports an order status, holding a terminal one back while it
    /// reports more filled than the fills reported so far.
    fn report_status(&self, update: OrderUpdate) {
        {
            let mut st = lock(&self.state);
            let delivered = Self::delivered_quantity(&st, &update.order_ref);
            if update.status.is_terminal() && update.filled_quantity > delivered {
                debug!(order_ref = %update.order_ref, filled = update.filled_quantity, delivered,
                       "terminal status before its executions; held until they are reported");
                st.held_statuses.insert(
                    update.order_ref.clone(),
                    (update, std::time::Instant::now()),
                );
                return;
            }
            if update.status.is_terminal() {
                st.held_statuses.remove(&update.order_ref);
            }
        }
        self.push(BrokerEvent::OrderStatus(update));
    }

    /// Releases `order_ref`'s held status once its fills are out (or,
    /// with `force`, anyway).
    fn release_status(&self, order_ref: &str, force: bool) {
        let released = {
            let mut st = lock(&self.state);
            let delivered = Self::delivered_quantity(&st, order_ref);
            let ready = st
                .held_statuses
                .get(order_ref)
                .is_some_and(|(u, _)| force || u.filled_quantity <= delivered);
            if ready {
                st.held_statuses.remove(order_ref).map(|(u, _)| u)
            } else {
                None
            }
        };
        if let Some(u) = released {
            self.push(BrokerEvent::OrderStatus(u));
        }
    }

    async fn timed<F: std::future::Future>(
        &self,
        what: &str,
        fut: F,
    ) -> Result<F::Output, BrokerError> {
        tokio::time::timeout(self.config.request_timeout, fut)
            .await
            .map_err(|_| BrokerError::Timeout(what.to_string()))
    }

    async fn open_client(&self) -> Result<Arc<Client>, ConnectFailure> {
        let builder = Client::builder()
            .address(self.config.address())
            .client_id(self.config.client_id)
            .max_reconnect_attempts(0)
            .rate_limiter(ibapi::RateLimiter::per_second(
                self.config.messages_per_second.max(1),
            ))
            .one_shot_timeout(self.config.request_timeout.max(Duration::from_millis(1)));
        match tokio::time::timeout(self.config.connect_timeout, builder.connect()).await {
            Err(_) => Err(ConnectFailure::Retry(format!(
                "no handshake within {:?}",
                self.config.connect_timeout
            ))),
            Ok(Ok(client)) => Ok(Arc::new(client)),
            Ok(Err(ibapi::Error::ClientIdInUse { client_id })) => {
                Err(ConnectFailure::Fatal(BrokerError::NotConnected(format!(
                    "client id {client_id} is already in use at {} (IB code 326): choose another \
                     broker.ibkr.client_id or close the other session",
                    self.config.address()
                ))))
            }
            Ok(Err(ibapi::Error::InvalidArgument(why))) => Err(ConnectFailure::Fatal(
                BrokerError::NotConnected(format!("invalid connection settings: {why}")),
            )),
            Ok(Err(e)) => Err(ConnectFailure::Retry(e.to_string())),
        }
    }

    /// After every (re)connect: account, order ids, market-data type,
    /// stream readers, then reconciliation.
    async fn on_connected(self: &Arc<Self>, client: Arc<Client>) -> Result<(), BrokerError> {
        // The account first: a session whose account does not match the
        // trading mode is refused before anything else uses it.
        let mut managed: Vec<String> = client
            .handshake_managed_accounts()
            .iter()
            .filter(|a| !a.is_empty())
            .cloned()
            .collect();
        if managed.is_empty() {
            managed = self
                .timed("managed accounts", client.managed_accounts())
                .await?
                .map_err(|e| map_client_error(&e, "managed accounts"))?
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect();
        }
        let chosen = {
            let st = lock(&self.state);
            if st.account.is_empty() {
                managed.first().cloned().unwrap_or_default()
            } else {
                st.account.clone()
            }
        };
        if let Err(why) = check_account(self.config.live, &chosen, &managed) {
            tracing::error!(account = %chosen, managed = ?managed, "{why}");
            client.disconnect().await;
            return Err(BrokerError::NotConnected(why));
        }
        let session = {
            let mut st = lock(&self.state);
            st.session += 1;
            // Executions without a zone in their time are in the gateway's
            // zone; ibapi reports it as a `time_tz` zone, which would add a
            // dependency: the US/Eastern default holds for US gateways.
            st.account = chosen;
            st.session
        };

        // Never reuse an order id: ask the server after each connect.
        self.pacer.request().await;
        let next = self
            .timed("next valid order id", client.next_valid_order_id())
            .await?
            .map_err(|e| map_client_error(&e, "next valid order id"))?;
        lock(&self.state).ids.on_server_next_id(next);

        // The gateway's clock, for "now" in filters and dates.
        self.pacer.request().await;
        match self.timed("server time", client.server_time()).await {
            Ok(Ok(t)) => {
                if let Some(offset) = self.set_server_time(t)
                    && offset.num_seconds().abs() > 60
                {
                    info!(
                        offset_seconds = offset.num_seconds(),
                        "the gateway's clock differs from ours; using the gateway's"
                    );
                }
            }
            Ok(Err(e)) => warn!("server time: {e}; using the local clock"),
            Err(e) => warn!("{e}; using the local clock"),
        }

        // TWS forgets the market-data type on reconnect.
        let kind = lock(&self.state).md_mode.current();
        self.pacer.request().await;
        client
            .switch_market_data_type(kind.to_ib())
            .await
            .map_err(|e| map_client_error(&e, "market data type"))?;

        // Readers before reconciliation, so nothing falls between them.
        self.pacer.request().await;
        let updates = client
            .order_update_stream()
            .await
            .map_err(|e| map_client_error(&e, "order update stream"))?;
        let notices = client
            .notice_stream()
            .map_err(|e| map_client_error(&e, "notice stream"))?;
        *lock(&self.client) = Some(Arc::clone(&client));
        if self.config.lockstep {
            *self.updates.lock().await = Some(Box::pin(updates));
        } else {
            self.supervised(
                "order update reader",
                session,
                Self::read_updates(Arc::clone(self), updates, session),
            );
        }
        self.supervised(
            "notice reader",
            session,
            Self::read_notices(Arc::clone(self), notices, session),
        );

        info!(
            address = %self.config.address(),
            account = %lock(&self.state).account,
            next_order_id = next,
            market_data = ?kind,
            "connected to TWS / IB Gateway"
        );
        self.reconcile(&client).await
    }

    /// Open orders, executions since the last one seen (missed fills become
    /// `Fill` events, deduplicated by execution id) and positions.
    async fn reconcile(&self, client: &Client) -> Result<(), BrokerError> {
        let orders = self.fetch_open_orders(client).await?;
        debug!(open_orders = orders.len(), "reconciled open orders");

        let since = lock(&self.state).last_exec_time;
        let since = since.unwrap_or_else(|| self.now() - chrono::Duration::days(1));
        let (execs, commissions) = self.fetch_executions(client, since).await?;
        let mut joined = Vec::new();
        {
            let mut st = lock(&self.state);
            for e in execs {
                st.ids.observe_used(e.order_id);
                st.last_exec_time = st.last_exec_time.max(Some(e.time));
                joined.push(st.joiner.on_execution(e));
            }
            for (id, c) in commissions {
                joined.push(st.joiner.on_commission(&id, c));
            }
        }
        let found = joined
            .iter()
            .filter(|j| matches!(j, Joined::New(_) | Joined::Amended(_)))
            .count();
        if found > 0 {
            info!(fills = found, "fills found while reconciling");
        }
        for j in joined {
            self.deliver(j);
        }

        let positions = self.fetch_positions(client).await?;
        debug!(positions = positions.len(), "reconciled positions");
        Ok(())
    }

    /// Spawns one of a session's reader tasks under supervision: a panic
    /// is logged and reported (`BrokerEvent::Error`), and the session is
    /// rebuilt (the supervisor reconnects and reconciles), so fills never
    /// silently stop while the connection looks up.
    fn supervised<F>(self: &Arc<Self>, what: &'static str, session: u64, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let inner = Arc::clone(self);
        spawn_supervised(task, move |message| {
            tracing::error!(
                "the IBKR adapter's {what} panicked: {message}; rebuilding the connection"
            );
            inner.push(BrokerEvent::Error {
                code: 0,
                message: format!(
                    "the IBKR adapter's {what} panicked ({message}); the connection is rebuilt and reconciled"
                ),
                order_ref: None,
            });
            if inner.is_current(session) {
                inner
                    .broken
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                inner.lost.notify_one();
            }
        });
    }

    /// Whether the session is usable: connected, and no reader died.
    fn session_up(&self) -> bool {
        !self.broken.load(std::sync::atomic::Ordering::SeqCst)
            && lock(&self.client)
                .as_ref()
                .is_some_and(|c| c.is_connected())
    }

    /// [`Self::supervise`], restarted if it panics.
    async fn supervise_forever(self: Arc<Self>) {
        loop {
            let run = tokio::spawn(Self::supervise(Arc::clone(&self)));
            match run.await {
                Err(e) if e.is_panic() => {
                    tracing::error!("the IBKR connection supervisor panicked; restarting it");
                    self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ => return,
            }
        }
    }

    /// The supervisor: notices a lost session, reconnects with backoff,
    /// and flushes executions whose commission never came.
    async fn supervise(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut backoff = Backoff::new(self.config.reconnect_initial, self.config.reconnect_max);
        loop {
            // Wait for a loss (or check health now and then).
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.lost.notified() => {}
                _ = tokio::time::sleep(HEALTH_CHECK) => {
                    self.flush_stale_executions();
                    if self.session_up() { continue; }
                }
            }
            if *shutdown.borrow() {
                return;
            }
            if self.session_up() {
                continue;
            }
            let old = lock(&self.client).take();
            if let Some(c) = old {
                c.disconnect().await;
            }
            warn!(address = %self.config.address(), "connection to TWS / IB Gateway lost; reconnecting");
            self.push(BrokerEvent::ConnectionLost { time: self.now() });
            backoff.reset();
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                let opened = self.open_client().await;
                if opened.is_ok() {
                    self.broken
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                }
                match opened {
                    Ok(client) => match self.on_connected(client).await {
                        Ok(()) => {
                            info!(
                                attempts = backoff.attempts(),
                                "reconnected to TWS / IB Gateway"
                            );
                            self.push(BrokerEvent::ConnectionRestored { time: self.now() });
                            break;
                        }
                        Err(e) => {
                            warn!("reconnected but could not resume the session: {e}");
                            let old = lock(&self.client).take();
                            if let Some(c) = old {
                                c.disconnect().await;
                            }
                        }
                    },
                    Err(ConnectFailure::Fatal(e)) => {
                        warn!("reconnect refused: {e}; retrying");
                    }
                    Err(ConnectFailure::Retry(why)) => {
                        debug!(attempt = backoff.attempts(), "reconnect failed: {why}");
                    }
                }
            }
        }
    }

    fn flush_stale_executions(&self) {
        // Waiting time on our clock: the execution's own time is the
        // gateway's, which may be far from ours (a simulated gateway).
        let joined = lock(&self.state)
            .joiner
            .flush_waiting_longer_than(self.config.commission_wait);
        for j in joined {
            if let Joined::New(f) | Joined::Amended(f) = &j {
                warn!(exec_id = %f.exec_id, "no commission report for the execution yet; reporting it \
                      with zero commission (a later report amends it)");
            }
            self.deliver(j);
        }
        // Terminal statuses whose executions never came: reported anyway
        // (the executor compares the filled quantities).
        let overdue: Vec<String> = lock(&self.state)
            .held_statuses
            .iter()
            .filter(|(_, (_, at))| {
                at.elapsed()
                    >= HELD_STATUS_WAIT.max(self.config.commission_wait + Duration::from_secs(10))
            })
            .map(|(r, _)| r.clone())
            .collect();
        for order_ref in overdue {
            warn!(%order_ref, "a terminal order status waited for its executions in vain; reporting it");
            self.release_status(&order_ref, true);
        }
    }

    fn is_current(&self, session: u64) -> bool {
        lock(&self.state).session == session
    }

    /// Reads the client-wide order update stream of one session.
    async fn read_updates<S>(self: Arc<Self>, mut updates: S, session: u64)
    where
        S: Stream<Item = Result<SubscriptionItem<IbUpdate>, ibapi::Error>> + Unpin,
    {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let item = tokio::select! {
                _ = shutdown.changed() => return,
                item = updates.next() => item,
            };
            if !self.is_current(session) {
                return;
            }
            if !self.on_update_item(item) {
                return;
            }
        }
    }

    /// Handles one item of the order stream; `false` when the stream
    /// ended (the session is lost).
    fn on_update_item(
        &self,
        item: Option<Result<SubscriptionItem<IbUpdate>, ibapi::Error>>,
    ) -> bool {
        match item {
            Some(Ok(SubscriptionItem::Data(update))) => self.on_update(update),
            Some(Ok(SubscriptionItem::Notice(n))) => {
                self.on_notice(n.code, &n.message, n.request_id)
            }
            Some(Err(e)) => {
                warn!("order update stream ended: {e}");
                self.lost.notify_one();
                return false;
            }
            None => {
                debug!("order update stream closed");
                self.lost.notify_one();
                return false;
            }
        }
        true
    }

    /// Lockstep: a round trip (the server time; TWS answers requests in
    /// order, so every message sent before it has been dispatched when the
    /// answer arrives), then every order-stream item already received.
    ///
    /// Simulated time does not pass while the connection is down, so a
    /// lost connection is waited for here (the supervisor is woken and
    /// reconnects, reconciling; at most `request_timeout`), as the wall
    /// clock would have waited for a real TWS.
    async fn sync_events(&self) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        loop {
            match self.sync_once().await {
                Err(BrokerError::NotConnected(why)) if tokio::time::Instant::now() < deadline => {
                    debug!("lockstep poll waits for the reconnect: {why}");
                    self.lost.notify_one();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    async fn sync_once(&self) -> Result<(), BrokerError> {
        let client = self.client()?;
        self.pacer.request().await;
        let t = self
            .timed("server time", client.server_time())
            .await?
            .map_err(|e| map_client_error(&e, "server time"))?;
        self.set_server_time(t);
        {
            let mut updates = self.updates.lock().await;
            // Everything sent before the round trip's answer is queued in
            // the stream; a short wait per item (the stream's future may
            // need more than one poll) ends when it is empty.
            while let Some(stream) = updates.as_mut() {
                match tokio::time::timeout(DRAIN_WAIT, stream.next()).await {
                    Ok(item) => {
                        if !self.on_update_item(item) {
                            *updates = None;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        // Settlements at this step, in this poll (as the in-process
        // exchange reports them).
        self.fetch_positions(&client).await?;
        Ok(())
    }

    /// Reads global notices (connectivity, farm status, unrouted errors).
    async fn read_notices(
        self: Arc<Self>,
        mut notices: ibapi::subscriptions::NoticeStream,
        session: u64,
    ) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let notice = tokio::select! {
                _ = shutdown.changed() => return,
                n = notices.next() => n,
            };
            if !self.is_current(session) {
                return;
            }
            match notice {
                Some(n) => self.on_notice(n.code, &n.message, n.request_id),
                None => return,
            }
        }
    }

    fn on_notice(&self, code: i32, message: &str, request_id: Option<i32>) {
        let order_ref =
            request_id.and_then(|id| lock(&self.state).registry.ref_of(id).map(str::to_string));
        match map_error(code, message, order_ref.as_deref().unwrap_or("")) {
            Disposition::Ignore => debug!(code, "IB notice: {message}"),
            // The market-data request that gets the advisory switches the
            // session (and sends the new type); an unrouted one is only noted.
            Disposition::DelayedDataAdvisory => debug!(code, "market data advisory: {message}"),
            Disposition::Connectivity { lost: true } => {
                warn!(code, "TWS lost its connection to IB: {message}");
                self.push(BrokerEvent::ConnectionLost { time: self.now() });
            }
            Disposition::Connectivity { lost: false } => {
                info!(code, "TWS connection to IB restored: {message}");
                self.push(BrokerEvent::ConnectionRestored { time: self.now() });
            }
            Disposition::Error(e) => {
                if matches!(e, BrokerError::Pacing(_)) {
                    self.pacing_notices
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                warn!(code, order_ref = ?order_ref, "IB error: {e}");
                self.push(BrokerEvent::Error {
                    code,
                    message: e.to_string(),
                    order_ref: order_ref.clone(),
                });
                if let (Some(order_ref), Some(id)) = (order_ref, request_id) {
                    self.on_order_error(id, &order_ref, code, message);
                }
            }
        }
    }

    /// An error sent with one of our orders' ids: when its code ends the
    /// order (201, 110, 103, …; TWS may send no status, or only
    /// `Inactive`), the order is reported `Rejected` with IB's text, so
    /// the executor can close it instead of waiting forever.
    fn on_order_error(&self, order_id: i32, order_ref: &str, code: i32, message: &str) {
        if !is_order_terminal(code, message)
            // the refusal of a second order with the same orderRef is
            // not about the order that holds it
            || message.to_ascii_lowercase().contains("duplicate orderref")
        {
            return;
        }
        let update = {
            let mut st = lock(&self.state);
            let Some(last) = st.book.remove(&order_id) else {
                debug!(
                    order_ref,
                    code, "error for an order already finished; nothing to end"
                );
                return;
            };
            st.ended_by_error.insert(order_ref.to_string());
            let filled = last
                .filled_quantity
                .max(Self::delivered_quantity(&st, order_ref));
            OrderUpdate {
                order_ref: order_ref.to_string(),
                broker_order_id: Some(i64::from(order_id)),
                status: OrderStatus::Rejected,
                filled_quantity: filled,
                remaining_quantity: 0,
                avg_fill_price: last.avg_fill_price,
                reason: Some(format!("IB code {code}: {message}")),
                time: self.now(),
            }
        };
        info!(order_ref, code, "order ended by IB error");
        self.report_status(update);
    }

    fn on_update(&self, update: IbUpdate) {
        match update {
            IbUpdate::OrderStatus(s) => {
                let filled = quantity(s.filled).unwrap_or(0);
                let remaining = quantity(s.remaining).unwrap_or(0);
                let Some(status) = map_status(s.status.as_str(), filled, remaining) else {
                    debug!(
                        order_id = s.order_id,
                        status = s.status.as_str(),
                        "unknown order status"
                    );
                    return;
                };
                let event = {
                    let mut st = lock(&self.state);
                    let Some(order_ref) = st.registry.ref_of(s.order_id).map(str::to_string) else {
                        debug!(
                            order_id = s.order_id,
                            "status of an order without orderRef; ignored"
                        );
                        return;
                    };
                    let update = OrderUpdate {
                        order_ref,
                        broker_order_id: Some(i64::from(s.order_id)),
                        status,
                        filled_quantity: filled,
                        remaining_quantity: remaining,
                        avg_fill_price: s
                            .average_fill_price
                            .and_then(price)
                            .filter(|p| p.is_positive()),
                        reason: if s.status.as_str() == "Inactive" {
                            Some(format!(
                                "Inactive at IB (held, not rejected){}",
                                if s.why_held.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {}", s.why_held)
                                }
                            ))
                        } else {
                            (!s.why_held.is_empty()).then(|| s.why_held.clone())
                        },
                        time: self.now(),
                    };
                    if st.ended_by_error.contains(&update.order_ref) {
                        // Already reported Rejected (an order-ending error
                        // code); its later Inactive / Cancelled adds nothing.
                        debug!(
                            order_id = s.order_id,
                            status = s.status.as_str(),
                            "status of an order ended by an error code; ignored"
                        );
                        return;
                    }
                    if status.is_terminal() {
                        st.book.remove(&s.order_id);
                    } else {
                        st.book.insert(s.order_id, update.clone());
                    }
                    update
                };
                self.report_status(event);
            }
            IbUpdate::OpenOrder(d) => {
                if d.order.what_if {
                    return;
                }
                let mut st = lock(&self.state);
                st.ids.observe_used(d.order_id);
                st.registry.insert(&d.order.order_ref, d.order_id);
            }
            IbUpdate::ExecutionData(e) => {
                let pending = self.pending_execution(&e);
                if let Some(p) = pending {
                    let joined = {
                        let mut st = lock(&self.state);
                        st.last_exec_time = st.last_exec_time.max(Some(p.time));
                        st.joiner.on_execution(p)
                    };
                    self.deliver(joined);
                }
            }
            IbUpdate::CommissionReport(c) => {
                let commission = money(c.commission).unwrap_or(Money::ZERO);
                let joined = lock(&self.state)
                    .joiner
                    .on_commission(&c.execution_id, commission);
                self.deliver(joined);
            }
            IbUpdate::OrderBound(_) => {}
        }
    }

    fn pending_execution(&self, e: &ibapi::orders::ExecutionData) -> Option<PendingExecution> {
        if e.execution.order_id <= 0 {
            // Not an order of an API client: an expiry, assignment or
            // exercise (the settlement shows in positions, see
            // `infer_settlements`), or an order entered in TWS by hand
            // (the engine's position reconciliation sees it).
            debug!(exec_id = %e.execution.execution_id, order_ref = %e.execution.order_reference,
                   "execution without an API order id; not one of our fills");
            return None;
        }
        let contract = match from_ib(&e.contract) {
            Ok(c) => c,
            Err(err) => {
                warn!(exec_id = %e.execution.execution_id, "execution of an unsupported contract: {err}");
                return None;
            }
        };
        let (tz, known_ref) = {
            let st = lock(&self.state);
            (
                st.gateway_tz,
                st.registry.ref_of(e.execution.order_id).map(str::to_string),
            )
        };
        let order_ref = if e.execution.order_reference.is_empty() {
            known_ref.unwrap_or_default()
        } else {
            e.execution.order_reference.clone()
        };
        let time = parse_ib_time(&e.execution.time, tz).unwrap_or_else(|| {
            warn!(time = %e.execution.time, "unparsable execution time; using now");
            self.now()
        });
        Some(PendingExecution {
            exec_id: e.execution.execution_id.clone(),
            order_id: e.execution.order_id,
            order_ref,
            contract,
            side: match e.execution.side {
                ExecutionSide::Bought => Side::Buy,
                ExecutionSide::Sold => Side::Sell,
            },
            quantity: quantity(e.execution.shares).unwrap_or(0).abs(),
            price: price(e.execution.price).unwrap_or(Price::ZERO),
            time,
        })
    }

    async fn fetch_open_orders(&self, client: &Client) -> Result<Vec<OrderUpdate>, BrokerError> {
        self.pacer.request().await;
        let sub = self
            .timed("open orders", client.open_orders())
            .await?
            .map_err(|e| map_client_error(&e, "open orders"))?;
        let items = self.drain(sub, "open orders", |_| false).await?;
        let mut refs: HashMap<i32, (String, i64)> = HashMap::new();
        let mut statuses = Vec::new();
        for item in items {
            match item {
                Orders::OrderData(d) => {
                    if d.order.what_if {
                        continue;
                    }
                    let total = quantity(d.order.total_quantity).unwrap_or(0);
                    refs.insert(d.order_id, (d.order.order_ref.clone(), total));
                    statuses.push((d.order_id, d.order_state.status.as_str().to_string(), None));
                }
                Orders::OrderStatus(s) => statuses.push((
                    s.order_id,
                    s.status.as_str().to_string(),
                    Some((
                        quantity(s.filled).unwrap_or(0),
                        quantity(s.remaining).unwrap_or(0),
                        s.average_fill_price,
                    )),
                )),
            }
        }
        let mut st = lock(&self.state);
        for (id, (order_ref, _)) in &refs {
            st.ids.observe_used(*id);
            st.registry.insert(order_ref, *id);
        }
        let mut latest: HashMap<i32, OrderUpdate> = HashMap::new();
        for (id, status_text, numbers) in statuses {
            let Some((order_ref, total)) = refs
                .get(&id)
                .cloned()
                .or_else(|| st.registry.ref_of(id).map(|r| (r.to_string(), 0)))
            else {
                continue;
            };
            if order_ref.is_empty() {
                continue;
            }
            let (filled, remaining, avg) = match numbers {
                Some(n) => n,
                None => latest
                    .get(&id)
                    .map(|u| (u.filled_quantity, u.remaining_quantity, None))
                    .unwrap_or((0, total, None)),
            };
            let Some(status) = map_status(&status_text, filled, remaining) else {
                continue;
            };
            latest.insert(
                id,
                OrderUpdate {
                    order_ref,
                    broker_order_id: Some(i64::from(id)),
                    status,
                    filled_quantity: filled,
                    remaining_quantity: remaining,
                    avg_fill_price: avg.and_then(price).filter(|p| p.is_positive()),
                    reason: None,
                    time: self.now(),
                },
            );
        }
        let working: Vec<OrderUpdate> = latest
            .into_values()
            .filter(|u| !u.status.is_terminal())
            .collect();
        st.book.clear();
        for u in &working {
            if let Some(id) = u.broker_order_id.and_then(|i| i32::try_from(i).ok()) {
                st.book.insert(id, u.clone());
            }
        }
        let mut out = working;
        out.sort_by_key(|u| u.broker_order_id);
        Ok(out)
    }

    /// Executions (and their commission reports) at or after `since`.
    async fn fetch_executions(
        &self,
        client: &Client,
        since: DateTime<Utc>,
    ) -> Result<(Vec<PendingExecution>, Vec<(String, Money)>), BrokerError> {
        let account = lock(&self.state).account.clone();
        let filter = ExecutionFilter {
            account_code: account,
            time: filter_time(since),
            ..ExecutionFilter::default()
        };
        self.pacer.request().await;
        let sub = self
            .timed("executions", client.executions(filter))
            .await?
            .map_err(|e| map_client_error(&e, "executions"))?;
        let items = self.drain(sub, "executions", |_| false).await?;
        let mut execs = Vec::new();
        let mut commissions = Vec::new();
        for item in items {
            match item {
                Executions::ExecutionData(e) => {
                    if let Some(p) = self.pending_execution(&e)
                        && p.time >= since
                    {
                        execs.push(p);
                    }
                }
                Executions::CommissionReport(c) => {
                    commissions.push((
                        c.execution_id.clone(),
                        money(c.commission).unwrap_or(Money::ZERO),
                    ));
                }
            }
        }
        Ok((execs, commissions))
    }

    async fn fetch_positions(&self, client: &Client) -> Result<Vec<Position>, BrokerError> {
        self.pacer.request().await;
        let sub = self
            .timed("positions", client.positions())
            .await?
            .map_err(|e| map_client_error(&e, "positions"))?;
        let items = self
            .drain(sub, "positions", |u| {
                matches!(u, ibapi::accounts::PositionUpdate::PositionEnd)
            })
            .await?;
        let account = lock(&self.state).account.clone();
        let now = self.now();
        let mut out = Vec::new();
        for item in items {
            let ibapi::accounts::PositionUpdate::Position(p) = item else {
                continue;
            };
            if !account.is_empty() && p.account != account {
                continue;
            }
            let qty = quantity(p.position).unwrap_or(0);
            if qty == 0 {
                continue;
            }
            let contract = match from_ib(&p.contract) {
                Ok(c) => c,
                Err(e) => {
                    debug!("position skipped: {e}");
                    continue;
                }
            };
            // IBKR's average cost is per contract (price × multiplier) for
            // options; the domain keeps it per share of the underlying.
            let per_unit = p.average_cost / contract.multiplier().max(1) as f64;
            out.push(Position {
                contract,
                quantity: qty,
                avg_cost: signed_price(per_unit).unwrap_or(Price::ZERO),
                market_price: None,
                updated_at: now,
            });
        }
        self.infer_settlements(&out);
        Ok(out)
    }

    /// Expiries and assignments, which TWS reports as position changes
    /// rather than as our executions. An option position that moved toward
    /// zero beyond what our fills explain settled:
    ///
    /// * as many contracts as the underlying's stock position moved the
    ///   assignment's way (a short put's assignment buys 100 shares a
    ///   contract, a short call's sells them; a long option's exercise the
    ///   reverse) were assigned — at any date: early assignment, and
    ///   partial assignment (part of the position) are reported with their
    ///   own quantity;
    /// * the rest expired, when the option is on or past its expiry date;
    ///   before it, the rest is unexplained (logged; the engine's position
    ///   reconciliation sees it).
    ///
    /// Then `positions` becomes the new reference. The first reference is
    /// the database's positions when the caller resumes with them
    /// ([`IbkrBroker::connect_resuming`]), so what settled while the
    /// daemon was down is found at start.
    fn infer_settlements(&self, positions: &[Position]) {
        let today = self.today_ny();
        let now = self.now();
        let current: HashMap<String, (Contract, i64)> = positions
            .iter()
            .map(|p| (contract_key(&p.contract), (p.contract.clone(), p.quantity)))
            .collect();
        let mut st = lock(&self.state);
        let previous = st.held.replace(current.clone());
        drop(st);
        let Some(previous) = previous else {
            return;
        };
        let qty = |m: &HashMap<String, (Contract, i64)>, k: &str| m.get(k).map_or(0, |(_, q)| *q);
        // The stock each underlying moved, consumed as assignments explain it.
        let mut stock_moves: HashMap<String, i64> = HashMap::new();
        let mut settled_options: Vec<(&String, &core_domain::OptionContract, i64, i64)> =
            Vec::new();
        for (key, (contract, before)) in &previous {
            let Contract::Option(o) = contract else {
                continue;
            };
            let after = qty(&current, key);
            if *before == 0 || after.signum() == -before.signum() {
                continue;
            }
            let settled = before - after;
            if settled == 0 || settled.signum() != before.signum() {
                continue;
            }
            settled_options.push((key, o, *before, settled));
        }
        settled_options.sort_by(|a, b| a.0.cmp(b.0));
        for (_, o, before, settled) in settled_options {
            let stock_key = contract_key(&Contract::Stock(core_domain::StockContract::us(
                o.underlying.clone(),
            )));
            let moved = stock_moves
                .entry(stock_key.clone())
                .or_insert_with(|| qty(&current, &stock_key) - qty(&previous, &stock_key));
            // +1: the assignment buys stock (short put, long call).
            let direction = match (o.right, before < 0) {
                (core_domain::Right::Put, true) | (core_domain::Right::Call, false) => 1,
                _ => -1,
            };
            let multiplier = o.multiplier.max(1);
            let contracts = settled.abs();
            let assigned = ((*moved * direction) / multiplier).clamp(0, contracts);
            *moved -= assigned * multiplier * direction;
            let sign = before.signum();
            if assigned > 0 {
                info!(contract = %o.key(), quantity = assigned * sign, early = o.expiry > today,
                      "assignment inferred from positions");
                self.push(BrokerEvent::Assignment {
                    contract: o.clone(),
                    quantity: assigned * sign,
                    time: now,
                });
            }
            let rest = contracts - assigned;
            if rest == 0 {
                continue;
            }
            if o.expiry <= today {
                info!(contract = %o.key(), quantity = rest * sign, "expiry inferred from positions");
                self.push(BrokerEvent::Expiration {
                    contract: o.clone(),
                    quantity: rest * sign,
                    time: now,
                });
            } else {
                warn!(contract = %o.key(), quantity = rest * sign,
                      "an option position shrank before its expiry with no fill and no assignment \
                       to explain it (a trade outside the trader?); left to the position reconciliation");
            }
        }
    }

    /// Reads a subscription to its end (or until `stop` says the last item
    /// arrived), within the request timeout. Notices are logged; an error
    /// ends the read.
    async fn drain<T, S>(
        &self,
        mut sub: S,
        what: &str,
        stop: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, BrokerError>
    where
        S: Stream<Item = Result<SubscriptionItem<T>, ibapi::Error>> + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, sub.next())
                .await
                .map_err(|_| BrokerError::Timeout(what.to_string()))?;
            match next {
                None => return Ok(out),
                Some(Ok(SubscriptionItem::Data(d))) => {
                    let last = stop(&d);
                    out.push(d);
                    if last {
                        return Ok(out);
                    }
                }
                Some(Ok(SubscriptionItem::Notice(n))) => {
                    if let Disposition::Error(e) = map_error(n.code, &n.message, what) {
                        debug!(code = n.code, "{what}: {e}");
                    }
                }
                Some(Err(ibapi::Error::EndOfStream)) => return Ok(out),
                Some(Err(e)) => return Err(map_client_error(&e, what)),
            }
        }
    }

    /// One market-data snapshot, with the delayed-data fallback: on a
    /// no-subscription advisory the session switches to delayed data (once,
    /// whichever request sees the advisory first) and the snapshot is
    /// asked once more under the new type. `Ok(None)`: no price came.
    ///
    /// An option is asked for as a short streaming request with generic
    /// tick 101 instead (TWS sends open interest only to streaming
    /// requests; a snapshot with generic ticks is refused with 321): read
    /// until bid, ask and the model computation arrived and then at most
    /// [`OPEN_INTEREST_WAIT`] more for the open interest, then cancelled
    /// (dropping the subscription cancels it).
    async fn snapshot(&self, contract: &Contract) -> Result<Option<Quote>, BrokerError> {
        let streaming = matches!(contract, Contract::Option(_));
        let what = format!("quote {}", contracts::describe(contract));
        let pacing_before = self
            .pacing_notices
            .load(std::sync::atomic::Ordering::Relaxed);
        for attempt in 0..2 {
            let client = self.client()?;
            let ib = to_ib(contract);
            let sent_kind = lock(&self.state).md_mode.current();
            let _line = self.pacer.market_data_line().await?;
            let request = if streaming {
                client.market_data(&ib).generic_ticks(&["101"]).streaming()
            } else {
                client.market_data(&ib).snapshot()
            };
            let sub = self.timed(&what, request.subscribe()).await?;
            let mut advisory = None;
            let mut acc = QuoteAccumulator::new();
            match sub {
                Err(e) => match advisory_code(&e) {
                    Some(code) => advisory = Some(code),
                    None => return Err(map_client_error(&e, &what)),
                },
                Ok(mut sub) => {
                    let mut deadline = tokio::time::Instant::now() + self.config.snapshot_timeout;
                    loop {
                        if streaming && acc.option_priced() {
                            if acc.has_open_interest() {
                                break;
                            }
                            deadline =
                                deadline.min(tokio::time::Instant::now() + OPEN_INTEREST_WAIT);
                        }
                        let Ok(next) = tokio::time::timeout_at(deadline, sub.next()).await else {
                            debug!("{what}: snapshot timed out; using the ticks received");
                            break;
                        };
                        use ibapi::market_data::realtime::TickTypes as T;
                        match next {
                            None | Some(Ok(SubscriptionItem::Data(T::SnapshotEnd))) => break,
                            Some(Ok(SubscriptionItem::Data(T::MarketDataType(t)))) => {
                                if let Some(kind) = kind_from_ib(t) {
                                    lock(&self.state).md_mode.on_reported(kind);
                                }
                            }
                            Some(Ok(SubscriptionItem::Data(tick))) => {
                                for t in ticks_from_ib(&tick) {
                                    acc.push(t);
                                }
                            }
                            Some(Ok(SubscriptionItem::Notice(n))) => {
                                match map_error(n.code, &n.message, &what) {
                                    Disposition::DelayedDataAdvisory => advisory = Some(n.code),
                                    // TWS dropped the request (message rate):
                                    // say so rather than "no quote"
                                    Disposition::Error(e @ BrokerError::Pacing(_)) => {
                                        return Err(e);
                                    }
                                    Disposition::Error(e) => debug!("{what}: {e}"),
                                    _ => {}
                                }
                            }
                            Some(Err(e)) => {
                                if let Some(code) = advisory_code(&e) {
                                    advisory = Some(code);
                                    break;
                                }
                                let mapped = map_client_error(&e, &what);
                                return match mapped {
                                    BrokerError::UnknownContract(_) | BrokerError::NoData(_) => {
                                        debug!("{mapped}");
                                        Ok(None)
                                    }
                                    other => Err(other),
                                };
                            }
                        }
                    }
                }
            }
            if acc.has_price() {
                return Ok(Some(acc.into_quote(contract.clone(), self.now())));
            }
            let Some(code) = advisory else {
                let pacing_now = self
                    .pacing_notices
                    .load(std::sync::atomic::Ordering::Relaxed);
                if pacing_now != pacing_before {
                    return Err(BrokerError::Pacing(format!(
                        "{what}: no answer, and TWS reported a pacing violation meanwhile (its \
                         message-rate limit drops requests; broker.ibkr messages_per_second)"
                    )));
                }
                return Ok(None);
            };
            let switched = lock(&self.state).md_mode.on_code(code);
            if let Some(kind) = switched {
                self.switch_market_data(&client, kind).await?;
            }
            let now_kind = lock(&self.state).md_mode.current();
            if attempt > 0 || now_kind == sent_kind {
                debug!(code, "{what}: no market data (already {now_kind:?})");
                return Ok(None);
            }
        }
        Ok(None)
    }

    async fn switch_market_data(
        &self,
        client: &Client,
        kind: MarketDataKind,
    ) -> Result<(), BrokerError> {
        info!("switching market data to {kind:?} (type {})", kind.code());
        self.pacer.request().await;
        client
            .switch_market_data_type(kind.to_ib())
            .await
            .map_err(|e| map_client_error(&e, "market data type"))
    }

    async fn stock_con_id(&self, symbol: &Symbol) -> Result<i64, BrokerError> {
        if let Some(id) = lock(&self.state).con_ids.get(symbol).copied() {
            return Ok(id);
        }
        let resolved = self
            .contract_details(&Contract::Stock(StockContract::us(symbol.clone())))
            .await?;
        resolved
            .con_id()
            .ok_or_else(|| BrokerError::UnknownContract(format!("{symbol}: no contract id")))
    }

    async fn contract_details(&self, contract: &Contract) -> Result<Contract, BrokerError> {
        let what = format!("contract details {}", contracts::describe(contract));
        let client = self.client()?;
        self.pacer.request().await;
        let details = self
            .timed(&what, client.contract_details(&to_ib(contract)))
            .await?
            .map_err(|e| map_client_error(&e, &what))?;
        let Some(first) = details.first() else {
            return Err(BrokerError::UnknownContract(contracts::describe(contract)));
        };
        if details.len() > 1 {
            debug!(
                matches = details.len(),
                "{what}: several matches, using the first"
            );
        }
        let resolved = from_ib(&first.contract)?;
        if let Contract::Stock(s) = &resolved
            && let Some(id) = s.con_id
        {
            lock(&self.state).con_ids.insert(s.symbol.clone(), id);
        }
        Ok(resolved)
    }

    fn ib_order(
        &self,
        intent: &OrderIntent,
        client: &Client,
        what_if: bool,
    ) -> Result<IbOrder, BrokerError> {
        let ib_contract = to_ib(&intent.contract);
        let account = lock(&self.state).account.clone();
        let qty = intent.quantity as f64;
        let builder = client.order(&ib_contract);
        let builder = match intent.side {
            Side::Buy => builder.buy(qty),
            Side::Sell => builder.sell(qty),
        };
        let builder = builder.limit(intent.limit_price.to_f64());
        let builder = match intent.time_in_force {
            TimeInForce::Day => builder.day_order(),
            TimeInForce::Gtc => builder.good_till_canceled(),
            TimeInForce::Ioc => builder.immediate_or_cancel(),
        };
        let builder = if account.is_empty() {
            builder
        } else {
            builder.account(account)
        };
        let mut order = builder.build_order().map_err(|e| BrokerError::Rejected {
            order_ref: intent.order_ref.clone(),
            reason: format!("the order cannot be built: {e}"),
        })?;
        order.order_ref = intent.order_ref.clone();
        order.what_if = what_if;
        order.transmit = true;
        Ok(order)
    }

    /// The order id IBKR already has for `order_ref` (open orders, then
    /// today's executions), for idempotent placement.
    async fn existing_order_id(
        &self,
        client: &Client,
        order_ref: &str,
    ) -> Result<Option<i32>, BrokerError> {
        if let Some(id) = lock(&self.state).registry.id_of(order_ref) {
            return Ok(Some(id));
        }
        self.fetch_open_orders(client).await?;
        if let Some(id) = lock(&self.state).registry.id_of(order_ref) {
            return Ok(Some(id));
        }
        let since = self.now() - chrono::Duration::days(7);
        let (execs, _) = self.fetch_executions(client, since).await?;
        Ok(execs
            .iter()
            .find(|e| e.order_ref == order_ref)
            .map(|e| e.order_id))
    }
}

impl MarketData for IbkrBroker {
    async fn stock_quote(&self, symbol: &Symbol) -> Result<Quote, BrokerError> {
        let contract = Contract::Stock(StockContract::us(symbol.clone()));
        self.inner
            .snapshot(&contract)
            .await?
            .ok_or_else(|| BrokerError::NoData(format!("{symbol}: no quote in the snapshot")))
    }

    async fn daily_bars(
        &self,
        symbol: &Symbol,
        end: NaiveDate,
        count: usize,
    ) -> Result<Vec<DailyBar>, BrokerError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let what = format!("daily bars {symbol}");
        let client = self.inner.client()?;
        let contract = to_ib(&Contract::Stock(StockContract::us(symbol.clone())));
        let today = self.inner.today_ny();
        let (value, unit) = duration_for(count);
        let duration = if unit == 'Y' {
            ibapi::market_data::historical::Duration::years(value)
        } else {
            ibapi::market_data::historical::Duration::days(value)
        };
        let mut request = client
            .historical_data(&contract, ibapi::market_data::historical::BarSize::Day)
            .what_to_show(ibapi::market_data::historical::WhatToShow::Trades)
            .duration(duration);
        if end < today {
            // The end of `end` in UTC covers the whole New York session.
            let next = end.succ_opt().unwrap_or(end);
            let ts = next
                .and_hms_opt(4, 0, 0)
                .map(|t| t.and_utc().timestamp())
                .unwrap_or_default();
            if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ts) {
                request = request.ending(t);
            }
        }
        self.inner.pacer.request().await;
        let data = self
            .inner
            .timed(&what, request.fetch())
            .await?
            .map_err(|e| map_client_error(&e, &what))?;
        let raw: Vec<RawBar> = data
            .bars
            .iter()
            .filter_map(|b| {
                let date = match b.date {
                    ibapi::market_data::historical::BarTimestamp::Date(d) => d,
                    ibapi::market_data::historical::BarTimestamp::DateTime(dt) => dt.date(),
                };
                let date = NaiveDate::from_ymd_opt(
                    date.year(),
                    u32::from(u8::from(date.month())),
                    u32::from(date.day()),
                )?;
                Some(RawBar {
                    date,
                    open: b.open,
                    high: b.high,
                    low: b.low,
                    close: b.close,
                    volume: b.volume,
                })
            })
            .collect();
        Ok(convert_bars(symbol, &raw, end, today, count))
    }

    async fn option_chain(&self, symbol: &Symbol) -> Result<OptionChain, BrokerError> {
        let what = format!("option chain {symbol}");
        let con_id = self.inner.stock_con_id(symbol).await?;
        let con_id32 = i32::try_from(con_id).map_err(|_| {
            BrokerError::Protocol(format!("{what}: contract id {con_id} out of range"))
        })?;
        let client = self.inner.client()?;
        self.inner.pacer.request().await;
        let sub = self
            .inner
            .timed(
                &what,
                client
                    .option_chain(
                        symbol.as_str(),
                        ibapi::contracts::SecurityType::Stock,
                        con_id32,
                    )
                    .subscribe(),
            )
            .await?
            .map_err(|e| map_client_error(&e, &what))?;
        let chains = self.inner.drain(sub, &what, |_| false).await?;
        let chosen = choose_chains(
            symbol.as_str(),
            chains
                .iter()
                .map(|c| ChainParams {
                    exchange: c.exchange.as_str(),
                    trading_class: c.trading_class.as_str(),
                    multiplier: c.multiplier.as_str(),
                    expirations: &c.expirations,
                    strikes: &c.strikes,
                })
                .collect(),
        );
        chosen
            .map(|c| OptionChain {
                underlying: symbol.clone(),
                underlying_con_id: Some(con_id),
                expirations: c.expirations,
                strikes: c.strikes,
                multiplier: c.multiplier,
            })
            .ok_or_else(|| BrokerError::NoData(format!("{what}: IBKR lists no options")))
    }

    async fn option_quotes(
        &self,
        contracts: &[OptionContract],
    ) -> Result<Vec<OptionQuote>, BrokerError> {
        let inner = &self.inner;
        let tasks = contracts.iter().map(|c| async move {
            let contract = Contract::Option(c.clone());
            match inner.snapshot(&contract).await {
                Ok(Some(quote)) => Ok(Some(OptionQuote {
                    contract: c.clone(),
                    quote,
                })),
                Ok(None) => Ok(None),
                Err(e) if matches!(e, BrokerError::UnknownContract(_) | BrokerError::NoData(_)) => {
                    debug!("{}: {e}", c.key());
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        });
        // Concurrency is bounded by the pacer's market-data lines.
        let results = futures::future::join_all(tasks).await;
        let mut out = Vec::new();
        for r in results {
            if let Some(q) = r? {
                out.push(q);
            }
        }
        Ok(out)
    }
}

impl Broker for IbkrBroker {
    async fn contract_details(&self, contract: &Contract) -> Result<Contract, BrokerError> {
        self.inner.contract_details(contract).await
    }

    async fn what_if(&self, intent: &OrderIntent) -> Result<MarginImpact, BrokerError> {
        intent.validate().map_err(|e| BrokerError::Rejected {
            order_ref: intent.order_ref.clone(),
            reason: e.to_string(),
        })?;
        let what = format!("what-if {}", intent.order_ref);
        let client = self.inner.client()?;
        let order = self.inner.ib_order(intent, &client, true)?;
        let id = lock(&self.inner.state)
            .ids
            .allocate()
            .ok_or_else(|| BrokerError::NotConnected("no order id from the server yet".into()))?;
        self.inner.pacer.request().await;
        let mut sub = self
            .inner
            .timed(
                &what,
                client.place_order(id, &to_ib(&intent.contract), &order),
            )
            .await?
            .map_err(|e| map_client_error(&e, &intent.order_ref))?;
        let deadline = tokio::time::Instant::now() + self.inner.config.request_timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, sub.next())
                .await
                .map_err(|_| BrokerError::Timeout(what.clone()))?;
            match next {
                Some(Ok(SubscriptionItem::Data(PlaceOrder::OpenOrder(d)))) if d.order_id == id => {
                    let s = &d.order_state;
                    if !s.reject_reason.is_empty() {
                        return Err(match map_error(201, &s.reject_reason, &intent.order_ref) {
                            Disposition::Error(e) => e,
                            _ => BrokerError::Rejected {
                                order_ref: intent.order_ref.clone(),
                                reason: s.reject_reason.clone(),
                            },
                        });
                    }
                    let m = |v: Option<f64>| v.and_then(money).unwrap_or(Money::ZERO);
                    return Ok(MarginImpact {
                        initial_margin_before: m(s.initial_margin_before),
                        initial_margin_change: m(s.initial_margin_change),
                        initial_margin_after: m(s.initial_margin_after),
                        maintenance_margin_before: m(s.maintenance_margin_before),
                        maintenance_margin_change: m(s.maintenance_margin_change),
                        maintenance_margin_after: m(s.maintenance_margin_after),
                        commission: s.commission.and_then(money),
                    });
                }
                Some(Ok(SubscriptionItem::Data(_))) => {}
                Some(Ok(SubscriptionItem::Notice(n))) => {
                    if let Disposition::Error(e) = map_error(n.code, &n.message, &intent.order_ref)
                        && n.is_error()
                    {
                        return Err(e);
                    }
                }
                Some(Err(e)) => return Err(map_client_error(&e, &intent.order_ref)),
                None => {
                    return Err(BrokerError::Protocol(format!(
                        "{what}: TWS ended the reply without the margin figures"
                    )));
                }
            }
        }
    }

    async fn place_order(&self, intent: &OrderIntent) -> Result<i64, BrokerError> {
        intent.validate().map_err(|e| BrokerError::Rejected {
            order_ref: intent.order_ref.clone(),
            reason: e.to_string(),
        })?;
        let _guard = self.inner.place_lock.lock().await;
        let client = self.inner.client()?;
        if let Some(existing) = self
            .inner
            .existing_order_id(&client, &intent.order_ref)
            .await?
        {
            info!(order_ref = %intent.order_ref, order_id = existing, "order already known to IBKR; not sending it again");
            return Ok(i64::from(existing));
        }
        let order = self.inner.ib_order(intent, &client, false)?;
        let id = {
            let mut st = lock(&self.inner.state);
            let id = st.ids.allocate().ok_or_else(|| {
                BrokerError::NotConnected("no order id from the server yet".into())
            })?;
            st.registry.insert(&intent.order_ref, id);
            st.book.insert(
                id,
                OrderUpdate {
                    order_ref: intent.order_ref.clone(),
                    broker_order_id: Some(i64::from(id)),
                    status: OrderStatus::Sent,
                    filled_quantity: 0,
                    remaining_quantity: intent.quantity,
                    avg_fill_price: None,
                    reason: None,
                    time: self.inner.now(),
                },
            );
            id
        };
        self.inner.pacer.request().await;
        let sent = client
            .submit_order(id, &to_ib(&intent.contract), &order)
            .await;
        if let Err(e) = sent {
            lock(&self.inner.state).book.remove(&id);
            return Err(map_client_error(
                &e,
                &format!("place order {}", intent.order_ref),
            ));
        }
        info!(order_ref = %intent.order_ref, order_id = id, side = %intent.side, quantity = intent.quantity,
              limit = %intent.limit_price, contract = %intent.contract, "order sent");
        Ok(i64::from(id))
    }

    async fn cancel_order(&self, order_ref: &str) -> Result<(), BrokerError> {
        let client = self.inner.client()?;
        let id = match self.inner.existing_order_id(&client, order_ref).await? {
            Some(id) => id,
            None => {
                return Err(BrokerError::Rejected {
                    order_ref: order_ref.to_string(),
                    reason: "IBKR has no order with this orderRef".into(),
                });
            }
        };
        self.inner.pacer.request().await;
        let sub = client
            .cancel_order(id, "")
            .await
            .map_err(|e| map_client_error(&e, &format!("cancel {order_ref}")))?;
        // The outcome arrives on the order update stream.
        drop(sub);
        Ok(())
    }

    async fn open_orders(&self) -> Result<Vec<OrderUpdate>, BrokerError> {
        let client = self.inner.client()?;
        self.inner.fetch_open_orders(&client).await
    }

    async fn executions_since(&self, since: DateTime<Utc>) -> Result<Vec<Fill>, BrokerError> {
        let client = self.inner.client()?;
        let (execs, commissions) = self.inner.fetch_executions(&client, since).await?;
        // A local join: these are returned whether or not they were
        // reported as events.
        let mut joiner = FillJoiner::new();
        let mut joined = Vec::new();
        for (id, c) in commissions {
            joiner.on_commission(&id, c);
        }
        for e in execs {
            joined.push(joiner.on_execution(e));
        }
        joined.extend(joiner.flush_older_than(DateTime::<Utc>::MAX_UTC));
        // A correction replaces the execution it corrects.
        let mut by_id: std::collections::BTreeMap<String, Fill> = std::collections::BTreeMap::new();
        for j in joined {
            if let Joined::New(f) | Joined::Amended(f) = j {
                by_id.insert(f.exec_id.clone(), f);
            }
        }
        let mut fills: Vec<Fill> = by_id.into_values().collect();
        fills.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.exec_id.cmp(&b.exec_id)));
        Ok(fills)
    }

    async fn poll_events(&self) -> Result<Vec<BrokerEvent>, BrokerError> {
        if self.inner.config.lockstep {
            self.inner.sync_events().await?;
        }
        self.inner.flush_stale_executions();
        Ok(lock(&self.inner.events).drain(..).collect())
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        let client = self.inner.client()?;
        self.inner.fetch_positions(&client).await
    }

    async fn account_summary(&self) -> Result<AccountSnapshot, BrokerError> {
        use ibapi::accounts::{AccountSummaryResult, AccountSummaryTags as Tags};
        let client = self.inner.client()?;
        let tags = [
            Tags::NET_LIQUIDATION,
            Tags::TOTAL_CASH_VALUE,
            Tags::EXCESS_LIQUIDITY,
            Tags::INIT_MARGIN_REQ,
            Tags::MAINT_MARGIN_REQ,
            Tags::LEDGER,
        ];
        self.inner.pacer.request().await;
        let group = ibapi::accounts::types::AccountGroup("All".into());
        let sub = self
            .inner
            .timed("account summary", client.account_summary(&group, &tags))
            .await?
            .map_err(|e| map_client_error(&e, "account summary"))?;
        let items = self
            .inner
            .drain(sub, "account summary", |r| {
                matches!(r, AccountSummaryResult::End)
            })
            .await?;
        let account = lock(&self.inner.state).account.clone();
        let values: Vec<(String, String, String)> = items
            .into_iter()
            .filter_map(|r| match r {
                AccountSummaryResult::Summary(s) if account.is_empty() || s.account == account => {
                    Some((s.tag, s.value, s.currency))
                }
                _ => None,
            })
            .collect();
        summary_to_snapshot(&account, &values, self.inner.now())
    }
}

/// The advisory code when an `ibapi` error is a no-subscription advisory.
fn advisory_code(e: &ibapi::Error) -> Option<i32> {
    match e {
        ibapi::Error::Notice(n)
            if map_error(n.code, &n.message, "") == Disposition::DelayedDataAdvisory =>
        {
            Some(n.code)
        }
        _ => None,
    }
}

/// One exchange's option parameters, borrowed from IBKR's answer.
#[derive(Debug, Clone)]
pub(crate) struct ChainParams<'a> {
    pub exchange: &'a str,
    pub trading_class: &'a str,
    pub multiplier: &'a str,
    pub expirations: &'a [String],
    pub strikes: &'a [f64],
}

/// The chain the system trades from IBKR's per-exchange answers: SMART
/// when listed, else the union of all exchanges; the trading class named
/// like the symbol when there is one (weeklies of some names have their
/// own class, e.g. SPXW, and are kept when no class matches).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChosenChain {
    pub expirations: Vec<NaiveDate>,
    pub strikes: Vec<Price>,
    pub multiplier: i64,
}

pub(crate) fn choose_chains(symbol: &str, chains: Vec<ChainParams<'_>>) -> Option<ChosenChain> {
    if chains.is_empty() {
        return None;
    }
    let smart: Vec<&ChainParams<'_>> = chains.iter().filter(|c| c.exchange == "SMART").collect();
    let pool: Vec<&ChainParams<'_>> = if smart.is_empty() {
        chains.iter().collect()
    } else {
        smart
    };
    let same_class: Vec<&ChainParams<'_>> = pool
        .iter()
        .copied()
        .filter(|c| c.trading_class == symbol)
        .collect();
    let pool = if same_class.is_empty() {
        pool
    } else {
        same_class
    };
    let mut expirations: Vec<NaiveDate> = pool
        .iter()
        .flat_map(|c| c.expirations.iter())
        .filter_map(|e| contracts::parse_expiry(e))
        .collect();
    expirations.sort();
    expirations.dedup();
    let mut strikes: Vec<Price> = pool
        .iter()
        .flat_map(|c| c.strikes.iter())
        .filter_map(|s| price(*s))
        .filter(|p| p.is_positive())
        .collect();
    strikes.sort();
    strikes.dedup();
    let multiplier = pool
        .iter()
        .find_map(|c| c.multiplier.trim().parse::<f64>().ok().and_then(quantity))
        .filter(|m| *m > 0)
        .unwrap_or(100);
    Some(ChosenChain {
        expirations,
        strikes,
        multiplier,
    })
}

/// Account summary values (tag, value, currency) → a snapshot. Amounts
/// are rounded to the cent at this boundary.
pub(crate) fn summary_to_snapshot(
    account: &str,
    values: &[(String, String, String)],
    time: DateTime<Utc>,
) -> Result<AccountSnapshot, BrokerError> {
    let get = |tag: &str| -> Option<Money> {
        values
            .iter()
            .filter(|(t, _, c)| t == tag && (c.is_empty() || c == "USD" || c == "BASE"))
            .find_map(|(_, v, _)| v.trim().parse::<f64>().ok().and_then(money))
    };
    let net_liquidation = get("NetLiquidation").ok_or_else(|| {
        BrokerError::NoData(format!(
            "account summary of {}: no NetLiquidation value (is the account right? broker.ibkr.account)",
            if account.is_empty() { "the account" } else { account }
        ))
    })?;
    Ok(AccountSnapshot {
        time,
        account: account.to_string(),
        net_liquidation,
        cash: get("TotalCashValue")
            .or_else(|| get("CashBalance"))
            .unwrap_or(Money::ZERO),
        excess_liquidity: get("ExcessLiquidity").unwrap_or(Money::ZERO),
        initial_margin: get("InitMarginReq").unwrap_or(Money::ZERO),
        maintenance_margin: get("MaintMarginReq").unwrap_or(Money::ZERO),
        realized_pnl: get("RealizedPnL").unwrap_or(Money::ZERO),
        unrealized_pnl: get("UnrealizedPnL").unwrap_or(Money::ZERO),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_queue_never_drops_a_fill() {
        // Before: the oldest event was dropped at 10,000, fills included.
        let mut q = VecDeque::new();
        let n = EVENT_BACKLOG_WARNING + 5;
        for i in 0..n {
            enqueue(
                &mut q,
                BrokerEvent::Error {
                    code: i as i32,
                    message: String::new(),
                    order_ref: None,
                },
            );
        }
        assert_eq!(q.len(), n);
        assert!(matches!(
            q.front(),
            Some(BrokerEvent::Error { code: 0, .. })
        ));
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn smart_chain_of_the_symbols_class_is_chosen() {
        let e1 = strings(&["20250117", "20250221"]);
        let e2 = strings(&["20250124"]);
        let e3 = strings(&["20991231"]);
        let s1 = [100.0, 105.0];
        let s2 = [102.5];
        let s3 = [1.0];
        let chains = vec![
            ChainParams {
                exchange: "CBOE",
                trading_class: "AAPL",
                multiplier: "100",
                expirations: &e3,
                strikes: &s3,
            },
            ChainParams {
                exchange: "SMART",
                trading_class: "AAPL",
                multiplier: "100",
                expirations: &e1,
                strikes: &s1,
            },
            ChainParams {
                exchange: "SMART",
                trading_class: "AAPL",
                multiplier: "100",
                expirations: &e2,
                strikes: &s2,
            },
        ];
        let c = choose_chains("AAPL", chains).unwrap_or_else(|| ChosenChain {
            expirations: vec![],
            strikes: vec![],
            multiplier: 0,
        });
        assert_eq!(c.expirations.len(), 3);
        assert_eq!(
            c.expirations[0],
            NaiveDate::from_ymd_opt(2025, 1, 17).unwrap_or_default()
        );
        assert_eq!(
            c.strikes,
            vec![
                Price::from_cents(10_000),
                Price::from_cents(10_250),
                Price::from_cents(10_500)
            ]
        );
        assert_eq!(c.multiplier, 100);
    }

    #[test]
    fn without_smart_all_exchanges_count_and_other_classes_are_kept_when_none_match() {
        let e1 = strings(&["20250117"]);
        let s1 = [5000.0];
        let chains = vec![ChainParams {
            exchange: "CBOE",
            trading_class: "SPXW",
            multiplier: "100",
            expirations: &e1,
            strikes: &s1,
        }];
        let c = choose_chains("SPX", chains);
        assert_eq!(c.map(|c| c.strikes.len()), Some(1));
        assert_eq!(choose_chains("X", Vec::new()), None);
    }

    fn quick_config(port: u16) -> IbkrConfig {
        IbkrConfig {
            port,
            connect_attempts: 2,
            connect_timeout: Duration::from_millis(300),
            reconnect_initial: Duration::from_millis(10),
            reconnect_max: Duration::from_millis(20),
            ..IbkrConfig::default()
        }
    }

    #[tokio::test]
    async fn first_connect_gives_up_with_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
        // A port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        match IbkrBroker::connect(quick_config(port)).await {
            Err(BrokerError::NotConnected(m)) => {
                assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
                assert!(m.contains("2 attempts"), "{m}");
                assert!(m.contains("Enable ActiveX and Socket Clients"), "{m}");
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("connected to nothing"),
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_silent_server_times_out_the_handshake() -> Result<(), Box<dyn std::error::Error>> {
        // Accepts connections and never answers the handshake.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let started = std::time::Instant::now();
        let result = IbkrBroker::connect(quick_config(port)).await;
        assert!(
            matches!(&result, Err(BrokerError::NotConnected(m)) if m.contains("no handshake")),
            "{:?}",
            result.as_ref().err()
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        server.abort();
        Ok(())
    }

    #[test]
    fn account_summary_values() -> Result<(), BrokerError> {
        let v = |t: &str, val: &str, c: &str| (t.to_string(), val.to_string(), c.to_string());
        let values = vec![
            v("NetLiquidation", "100000.505", "USD"),
            v("TotalCashValue", "90000", "USD"),
            v("ExcessLiquidity", "80000.25", "USD"),
            v("InitMarginReq", "15000", "USD"),
            v("MaintMarginReq", "12000", "USD"),
            v("RealizedPnL", "12.5", "BASE"),
            v("UnrealizedPnL", "-3.25", "BASE"),
            v("NetLiquidation", "1", "EUR"),
        ];
        let s = summary_to_snapshot("DU1", &values, Utc::now())?;
        assert_eq!(s.net_liquidation, Money::from_cents(10_000_051));
        assert_eq!(s.cash, Money::from_dollars(90_000));
        assert_eq!(s.excess_liquidity, Money::from_cents(8_000_025));
        assert_eq!(s.initial_margin, Money::from_dollars(15_000));
        assert_eq!(s.maintenance_margin, Money::from_dollars(12_000));
        assert_eq!(s.realized_pnl, Money::from_cents(1250));
        assert_eq!(s.unrealized_pnl, Money::from_cents(-325));
        assert!(
            matches!(summary_to_snapshot("DU1", &[], Utc::now()), Err(BrokerError::NoData(m)) if m.contains("broker.ibkr.account"))
        );
        Ok(())
    }
}
