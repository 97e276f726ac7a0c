//! The gateway: accepts TWS API connections, answers them from the
//! simulated exchange, pushes the exchange's events, applies faults.
//!
//! One lock ([`Shared::state`]) serializes every exchange call that changes
//! or reads state together with the routing tables, so events are routed
//! in the order the exchange produced them. Exchange calls are synchronous
//! underneath (their futures are ready at once); [`ready`] runs them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use core_domain::{
    Broker, BrokerError, BrokerEvent, Contract, Fill, MarketData, OptionContract, OrderIntent,
    OrderPurpose, OrderStatus, OrderUpdate, Price, Quote, Right, Side, StockContract, Symbol,
    TimeInForce,
};
use market_sim::SimExchange;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::faults::{Fault, FaultState, MalformedKind};
use crate::proto::{self, WireContract};
use crate::wire::{self, Frame, FrameError, inbound, outbound};
use crate::{GatewayConfig, GatewayError, TimeMode};

/// Request id for messages that answer no request.
const NO_ID: i32 = -1;
/// How long a new connection may take to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most option contracts one contract-details request lists.
const MAX_DETAILS: usize = 2_000;

/// Runs an exchange call whose future is ready at once (the simulated
/// exchange never waits).
fn ready<F: Future>(f: F) -> Result<F::Output, BrokerError> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(BrokerError::Protocol(
            "the simulated exchange did not answer at once".into(),
        )),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn frame<M: Message>(id: i32, m: &M) -> Vec<u8> {
    wire::encode_proto_frame(id, &m.encode_to_vec())
}

fn error_frame(id: i32, code: i32, message: impl Into<String>, now: DateTime<Utc>) -> Vec<u8> {
    frame(
        outbound::ERROR,
        &proto::ErrorMsg {
            id: Some(id),
            error_time: Some(now.timestamp_millis()),
            code: Some(code),
            message: Some(message.into()),
            advanced_order_reject_json: None,
        },
    )
}

/// A stable, positive 31-bit contract id for a contract key.
fn wire_con_id(key: &str) -> i32 {
    let h = market_sim::chain::con_id_for(key);
    let folded = h.rem_euclid(i64::from(i32::MAX - 1)) + 1;
    i32::try_from(folded).unwrap_or(1)
}

fn decimal(q: i64) -> String {
    q.to_string()
}

fn parse_quantity(s: &str) -> Option<i64> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v > 0.0).then_some(v as i64)
}

/// The TWS status string of an order status.
fn wire_status(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Created | OrderStatus::Sent => "PreSubmitted",
        OrderStatus::Accepted | OrderStatus::PartiallyFilled => "Submitted",
        OrderStatus::PendingCancel => "PendingCancel",
        OrderStatus::Filled => "Filled",
        OrderStatus::Cancelled | OrderStatus::Expired => "Cancelled",
        OrderStatus::Rejected => "Inactive",
    }
}

/// One connected client.
struct Conn {
    conn_id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    close: watch::Sender<bool>,
    /// reqMarketDataType: 1 real-time, 2 frozen, 3 delayed, 4 delayed-frozen.
    market_data_type: i32,
    /// Streaming (non-snapshot) market data: request id → contract.
    /// Streaming requests: the contract, and whether generic tick 101
    /// (open interest) was asked for.
    streams: BTreeMap<i32, (Contract, bool)>,
    /// Messages received in the current one-second window.
    window: (Instant, u32),
}

/// What the gateway knows of an order it passed to the exchange.
#[derive(Debug, Clone)]
struct OrderInfo {
    api_id: i32,
    client_id: i32,
    perm_id: i64,
    contract: WireContract,
    order: proto::WireOrder,
    filled: i64,
    fill_value: f64,
}

/// One execution, as reqExecutions reports it.
#[derive(Debug, Clone)]
struct ExecRecord {
    fill: Fill,
    api_id: i32,
    client_id: i32,
    perm_id: i64,
    cum_qty: i64,
    avg_price: f64,
    contract: WireContract,
}

#[derive(Default)]
struct State {
    clients: BTreeMap<i32, Conn>,
    /// Exchange order id → order.
    orders: BTreeMap<i64, OrderInfo>,
    /// (client id, API order id) → exchange order id.
    by_api: HashMap<(i32, i32), i64>,
    /// orderRef → exchange order id.
    by_ref: HashMap<String, i64>,
    next_order_id: i32,
    executions: Vec<ExecRecord>,
    /// Wire contract id → contract.
    contracts: HashMap<i32, Contract>,
    /// How many of the exchange's settlements (expiries, assignments)
    /// have been recorded as executions.
    settlements_seen: usize,
}

impl State {
    fn send(&self, client_id: i32, f: Vec<u8>) {
        if let Some(c) = self.clients.get(&client_id) {
            let _ = c.tx.send(f);
        }
    }

    /// Sends an order message to the client that owns the order, and to
    /// client 0 (which, as in TWS, sees every client's orders).
    fn send_order_msg(&self, owner: i32, f: Vec<u8>) {
        if owner != 0 && self.clients.contains_key(&0) {
            self.send(0, f.clone());
        }
        self.send(owner, f);
    }

    fn broadcast(&self, f: &[u8]) {
        for c in self.clients.values() {
            let _ = c.tx.send(f.to_vec());
        }
    }

    fn register(&mut self, c: &Contract) -> i32 {
        let id = wire_con_id(&c.key());
        self.contracts.entry(id).or_insert_with(|| c.clone());
        id
    }
}

/// Everything the connections, the control channel and the handle share.
pub(crate) struct Shared {
    exchange: Arc<SimExchange>,
    config: GatewayConfig,
    tz: chrono_tz::Tz,
    faults: Mutex<FaultState>,
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
    next_conn: AtomicU64,
    /// The journal file (`GatewayConfig::journal`).
    journal: Mutex<Option<std::fs::File>>,
}

/// The simulated gateway.
pub struct SimGateway;

impl SimGateway {
    /// Binds 127.0.0.1 (`config.port`, 0 for an ephemeral port) and the
    /// control channel (if configured), and serves until the handle shuts
    /// it down or the control channel says `QUIT`.
    pub async fn start(
        config: GatewayConfig,
        exchange: Arc<SimExchange>,
    ) -> Result<GatewayHandle, GatewayError> {
        let tz: chrono_tz::Tz = config
            .time_zone
            .parse()
            .map_err(|e| GatewayError::Config(format!("time zone {:?}: {e}", config.time_zone)))?;
        if let TimeMode::Paced {
            sim_minutes_per_second,
        } = config.mode
            && !(sim_minutes_per_second.is_finite()
                && sim_minutes_per_second > 0.0
                && sim_minutes_per_second <= 1e6)
        {
            return Err(GatewayError::Config(format!(
                "paced mode needs 0 < sim_minutes_per_second <= 1e6, got {sim_minutes_per_second}"
            )));
        }
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let control = match config.control_port {
            Some(p) => Some(TcpListener::bind(("127.0.0.1", p)).await?),
            None => None,
        };
        let control_addr = control.as_ref().map(|l| l.local_addr()).transpose()?;
        let (shutdown, _) = watch::channel(false);
        let journal = match &config.journal {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        GatewayError::Config(format!("journal {}: {e}", path.display()))
                    })?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            journal: Mutex::new(journal),
            faults: Mutex::new(FaultState::from_config(&config.faults)),
            state: Mutex::new(State {
                next_order_id: config.first_order_id.max(1),
                ..State::default()
            }),
            exchange,
            tz,
            config,
            shutdown,
            next_conn: AtomicU64::new(1),
        });
        let mut tasks = vec![tokio::spawn(accept_loop(Arc::clone(&shared), listener))];
        if let Some(l) = control {
            tasks.push(tokio::spawn(crate::control::serve_control(
                Arc::clone(&shared),
                l,
            )));
        }
        if let TimeMode::Paced {
            sim_minutes_per_second,
        } = shared.config.mode
        {
            tasks.push(tokio::spawn(paced_loop(
                Arc::clone(&shared),
                sim_minutes_per_second,
            )));
        }
        info!(%addr, ?control_addr, "simulated TWS gateway listening");
        Ok(GatewayHandle {
            addr,
            control_addr,
            shared,
            tasks,
        })
    }
}

/// A running gateway.
pub struct GatewayHandle {
    addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl GatewayHandle {
    /// Where TWS API clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the control channel listens, if configured.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    pub fn exchange(&self) -> &Arc<SimExchange> {
        &self.shared.exchange
    }

    /// The exchange's (simulated) time.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.exchange.now()
    }

    /// Advances the exchange to `t` (processing every checkpoint), pushes
    /// the resulting events and fresh ticks of streaming market data, and
    /// returns the new time.
    pub fn advance_to(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, GatewayError> {
        self.shared.advance_to(t)
    }

    /// Injects a fault now.
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// How many sessions have sent a StartApi so far (reconnections
    /// included).
    pub fn sessions_started(&self) -> u64 {
        self.shared.next_conn.load(Ordering::Relaxed) - 1
    }

    /// The client ids connected now.
    pub fn connected_clients(&self) -> Vec<i32> {
        lock(&self.shared.state).clients.keys().copied().collect()
    }

    /// Resolves when the gateway has been told to stop (control `QUIT` or
    /// [`GatewayHandle::shutdown`]).
    pub async fn stopped(&self) {
        let mut rx = self.shared.shutdown.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops accepting, drops every connection and ends the gateway's tasks.
    pub async fn shutdown(self) {
        self.shared.stop();
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Starts the gateway and serves until the control channel's `QUIT`.
pub async fn serve(config: GatewayConfig, exchange: Arc<SimExchange>) -> Result<(), GatewayError> {
    let handle = SimGateway::start(config, exchange).await?;
    handle.stopped().await;
    handle.shutdown().await;
    Ok(())
}

/// Builds the simulated exchange over the shipped history from
/// `config.from` (default parameters and chain model).
pub fn build_exchange(config: &GatewayConfig) -> Result<Arc<SimExchange>, GatewayError> {
    let from = config
        .from
        .ok_or_else(|| GatewayError::Config("`from` (the first session) is required".into()))?;
    let history = market_sim::data::real_history()
        .map_err(|e| GatewayError::Exchange(format!("loading the shipped history: {e}")))?;
    let exchange = SimExchange::new(
        Arc::new(history.clone()),
        market_sim::ChainModel::new(market_sim::ChainModelParams::default()),
        market_sim::ExchangeParams::default(),
        from,
    )
    .map_err(|e| GatewayError::Exchange(e.to_string()))?;
    Ok(Arc::new(exchange))
}

/// Builds the exchange from `config.from` and serves until `QUIT`.
pub async fn serve_history(config: GatewayConfig) -> Result<(), GatewayError> {
    let exchange = build_exchange(&config)?;
    serve(config, exchange).await
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "TWS API connection");
                    tokio::spawn(run_connection(Arc::clone(&shared), stream));
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn paced_loop(shared: Arc<Shared>, sim_minutes_per_second: f64) {
    let tick = Duration::from_millis(100);
    let step = chrono::Duration::milliseconds((sim_minutes_per_second * 60.0 * 100.0) as i64);
    loop {
        tokio::time::sleep(tick).await;
        let ex = &shared.exchange;
        let target = if ex.is_open() {
            ex.now() + step
        } else {
            match ex.next_checkpoint() {
                Some(t) => t,
                None => return,
            }
        };
        if let Err(e) = shared.advance_to(target) {
            info!("paced clock stops: {e}");
            return;
        }
    }
}

async fn write_direct(wr: &mut OwnedWriteHalf, f: &[u8]) {
    let _ = wr.write_all(f).await;
    let _ = wr.flush().await;
}

async fn run_connection(shared: Arc<Shared>, stream: TcpStream) {
    let refusing = lock(&shared.faults)
        .refuse_until
        .is_some_and(|t| Instant::now() < t);
    if refusing {
        debug!("connection refused: the gateway is restarting (fault)");
        return;
    }
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let version = match tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_handshake(&mut rd)).await
    {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            warn!("handshake refused: {e}");
            return;
        }
        Err(_) => {
            warn!("handshake timed out");
            return;
        }
    };
    let time = shared.tws_time(shared.exchange.now());
    write_direct(&mut wr, &wire::handshake_reply(version, &time)).await;
    let start = match tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_frame(&mut rd)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            debug!("connection ended before StartApi: {e}");
            return;
        }
        Err(_) => {
            warn!("no StartApi within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    let client_id = match (start.id, proto::StartApi::decode(start.payload.as_slice())) {
        (inbound::START_API, Ok(s)) => s.client_id.unwrap_or(0),
        _ => {
            warn!(
                id = start.id,
                "the first message was not a StartApi; closing"
            );
            let f = error_frame(NO_ID, 320, "expected StartApi", shared.exchange.now());
            write_direct(&mut wr, &f).await;
            return;
        }
    };
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let (close, close_rx) = watch::channel(false);
    let registered = {
        let mut st = lock(&shared.state);
        if *shared.shutdown.borrow() {
            return;
        }
        let next_order_id = st.next_order_id;
        match st.clients.entry(client_id) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Conn {
                    conn_id,
                    tx: tx.clone(),
                    close,
                    market_data_type: 1,
                    streams: BTreeMap::new(),
                    window: (Instant::now(), 0),
                });
                let _ = tx.send(frame(
                    outbound::NEXT_VALID_ID,
                    &proto::NextValidId {
                        order_id: Some(next_order_id),
                    },
                ));
                let _ = tx.send(frame(
                    outbound::MANAGED_ACCOUNTS,
                    &proto::ManagedAccounts {
                        accounts: Some(shared.config.account.clone()),
                    },
                ));
                // the data-farm notices TWS sends every new session
                let now = shared.exchange.now();
                for (code, text) in [
                    (2104, "Market data farm connection is OK:usfarm"),
                    (2106, "HMDS data farm connection is OK:ushmds"),
                    (2158, "Sec-def data farm connection is OK:secdefnj"),
                ] {
                    let _ = tx.send(error_frame(NO_ID, code, text, now));
                }
                true
            }
        }
    };
    if !registered {
        info!(client_id, "client id in use: refused");
        let f = error_frame(
            NO_ID,
            326,
            format!(
                "Unable to connect as the client id is already in use. Retry with a unique client id. ({client_id})"
            ),
            shared.exchange.now(),
        );
        write_direct(&mut wr, &f).await;
        return;
    }
    info!(client_id, conn_id, version, "client connected");
    let writer = tokio::spawn(write_loop(Arc::clone(&shared), wr, rx, close_rx.clone()));
    let mut close_rx = close_rx;
    loop {
        tokio::select! {
            _ = close_rx.changed() => break,
            f = wire::read_frame(&mut rd) => match f {
                Ok(f) => shared.handle(client_id, f),
                Err(FrameError::Closed) => break,
                Err(e) => {
                    warn!(client_id, "unreadable frame, closing the connection: {e}");
                    let f = error_frame(NO_ID, 320, format!("unreadable frame: {e}"), shared.exchange.now());
                    let _ = tx.send(f);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    break;
                }
            }
        }
    }
    shared.unregister(client_id, conn_id);
    drop(tx);
    let _ = writer.await;
    info!(client_id, conn_id, "client disconnected");
}

async fn write_loop(
    shared: Arc<Shared>,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    mut close: watch::Receiver<bool>,
) {
    loop {
        let f = tokio::select! {
            _ = close.changed() => break,
            f = rx.recv() => match f { Some(f) => f, None => break },
        };
        let (delay, malformed) = {
            let mut faults = lock(&shared.faults);
            (faults.delay_ms, faults.malformed.take())
        };
        if delay > 0 {
            tokio::select! {
                _ = close.changed() => break,
                _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
            }
        }
        let bytes = match malformed {
            None => f,
            Some(MalformedKind::Garbage) => {
                info!("fault: sending a garbage frame");
                wire::garbage_frame()
            }
            Some(MalformedKind::UnknownId) => {
                info!("fault: sending an unknown message id");
                let mut b = wire::unknown_id_frame();
                b.extend_from_slice(&f);
                b
            }
            Some(MalformedKind::Corrupt) => {
                info!("fault: sending a corrupt reply");
                wire::corrupt_frame(&f)
            }
        };
        if wr.write_all(&bytes).await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// What a message asks of the exchange, parsed.
enum Resolved {
    One(Contract),
    Many(Vec<Contract>),
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        self.exchange.now()
    }

    /// `YYYYMMDD HH:MM:SS <zone>` in the configured zone.
    pub(crate) fn tws_time(&self, t: DateTime<Utc>) -> String {
        format!(
            "{} {}",
            t.with_timezone(&self.tz).format("%Y%m%d %H:%M:%S"),
            self.config.time_zone
        )
    }

    pub(crate) fn stop(&self) {
        let first = !self.shutdown.send_replace(true);
        self.drop_all("gateway shutdown");
        if first {
            self.journal_positions();
        }
    }

    /// Appends one JSON line to the journal, if there is one.
    fn journal(&self, line: serde_json::Value) {
        let mut j = lock(&self.journal);
        if let Some(file) = j.as_mut() {
            use std::io::Write;
            if let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                warn!("writing the journal: {e}");
            }
        }
    }

    fn journal_fill(&self, kind: &str, rec: &ExecRecord) {
        let f = &rec.fill;
        self.journal(serde_json::json!({
            "kind": kind,
            "exec_id": f.exec_id,
            "order_ref": f.order_ref,
            "api_order_id": rec.api_id,
            "client_id": rec.client_id,
            "contract": f.contract.key(),
            "side": match f.side { Side::Buy => "BUY", Side::Sell => "SELL" },
            "quantity": f.quantity,
            "price": f.price.to_string(),
            "commission": f.commission.to_string(),
            "time": f.time.to_rfc3339(),
        }));
    }

    /// The exchange's positions at the end, in the journal.
    fn journal_positions(&self) {
        if lock(&self.journal).is_none() {
            return;
        }
        let positions = ready(self.exchange.positions())
            .and_then(|r| r)
            .unwrap_or_default();
        for p in positions {
            self.journal(serde_json::json!({
                "kind": "position",
                "contract": p.contract.key(),
                "quantity": p.quantity,
            }));
        }
        self.journal(serde_json::json!({ "kind": "end", "time": self.now().to_rfc3339() }));
    }

    pub(crate) fn subscribe_stop(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn exchange_now(&self) -> DateTime<Utc> {
        self.exchange.now()
    }

    fn unregister(&self, client_id: i32, conn_id: u64) {
        let mut st = lock(&self.state);
        if st
            .clients
            .get(&client_id)
            .is_some_and(|c| c.conn_id == conn_id)
        {
            st.clients.remove(&client_id);
        }
    }

    /// Closes every client connection now (they may reconnect).
    pub(crate) fn drop_all(&self, why: &str) {
        let mut st = lock(&self.state);
        let n = st.clients.len();
        for (_, c) in std::mem::take(&mut st.clients) {
            c.close.send_replace(true);
        }
        if n > 0 {
            info!(connections = n, "dropping every connection: {why}");
        }
    }

    pub(crate) fn inject(&self, fault: Fault) {
        info!(?fault, "fault injected");
        match &fault {
            Fault::DropNow => self.drop_all("fault injection"),
            Fault::NightlyRestart { .. } => {
                lock(&self.faults).apply(&fault);
                self.drop_all("fault: the nightly restart");
            }
            Fault::EmitError { code, message } => {
                let st = lock(&self.state);
                st.broadcast(&error_frame(NO_ID, *code, message.clone(), self.now()));
            }
            _ => lock(&self.faults).apply(&fault),
        }
    }

    /// The last time `ADVANCE` may reach (the close of `config.to`).
    fn time_limit(&self) -> Option<DateTime<Utc>> {
        let to = self.config.to?;
        let cal = self.exchange.calendar();
        cal.session_on_or_before(to)
            .and_then(|d| cal.session_close(d))
            .or_else(|| to.and_hms_opt(23, 59, 59).map(|t| t.and_utc()))
    }

    pub(crate) fn advance_to(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, GatewayError> {
        if let Some(limit) = self.time_limit()
            && t > limit
        {
            return Err(GatewayError::Config(format!(
                "{t} is past the end of the run ({limit})"
            )));
        }
        let mut st = lock(&self.state);
        let settled_before = self.exchange.settlements().len();
        let n = self.exchange.advance_to(t);
        self.assignment_faults();
        let expiry_drop = {
            let mut faults = lock(&self.faults);
            let settled = self.exchange.settlements().len() > settled_before;
            if faults.expiry_disconnected && settled {
                faults.expiry_disconnected = false;
                true
            } else {
                false
            }
        };
        if expiry_drop {
            // The client hears nothing of the settlement: it must find it
            // from positions (and executions) when it reconnects.
            for (_, c) in std::mem::take(&mut st.clients) {
                c.close.send_replace(true);
            }
            info!("fault: every connection dropped as options settle");
        }
        self.pump(&mut st);
        if n > 0 {
            self.refresh_streams(&mut st);
        }
        Ok(self.exchange.now())
    }

    /// `early_assignment` / `partial_assignment`: an exercise notice now.
    fn assignment_faults(&self) {
        let (early, partial) = {
            let f = lock(&self.faults);
            (f.early_assignment, f.partial_assignment)
        };
        if early && let Some((c, q)) = self.exchange.assign_now(1, 1) {
            lock(&self.faults).early_assignment = false;
            info!(contract = %c.key(), quantity = q, "fault: early assignment");
        }
        if partial && let Some((c, q)) = self.exchange.assign_now(1, 2) {
            lock(&self.faults).partial_assignment = false;
            info!(contract = %c.key(), quantity = q, "fault: partial assignment");
        }
    }

    /// Advances to the next checkpoint, if any.
    pub(crate) fn step(&self) -> Result<DateTime<Utc>, GatewayError> {
        let next = self
            .exchange
            .next_checkpoint()
            .ok_or_else(|| GatewayError::Exchange("the history has no later checkpoint".into()))?;
        self.advance_to(next)
    }

    // ---- events ----

    /// Routes every pending exchange event to the clients.
    fn pump(&self, st: &mut State) {
        let mut events = match ready(self.exchange.poll_events()).and_then(|r| r) {
            Ok(e) => e,
            Err(e) => {
                warn!("polling the exchange's events: {e}");
                return;
            }
        };
        if lock(&self.faults).status_before_execution {
            // TWS's habit: "Filled" before the execution it reports.
            events.sort_by_key(|e| !matches!(e, BrokerEvent::OrderStatus(_)));
        }
        for ev in events {
            match ev {
                BrokerEvent::OrderStatus(u) => self.on_status(st, &u),
                BrokerEvent::Fill(f) => self.on_fill(st, f),
                BrokerEvent::Error {
                    code,
                    message,
                    order_ref,
                } => {
                    let owner = order_ref
                        .as_ref()
                        .and_then(|r| st.by_ref.get(r))
                        .and_then(|id| st.orders.get(id))
                        .map(|o| (o.client_id, o.api_id));
                    match owner {
                        Some((client, api)) => {
                            st.send_order_msg(client, error_frame(api, code, message, self.now()))
                        }
                        None => st.broadcast(&error_frame(NO_ID, code, message, self.now())),
                    }
                }
                BrokerEvent::Assignment {
                    contract, quantity, ..
                } => info!(contract = %contract.key(), quantity, "assignment (positions show it)"),
                BrokerEvent::Expiration {
                    contract, quantity, ..
                } => info!(contract = %contract.key(), quantity, "expiration (positions show it)"),
                BrokerEvent::ConnectionLost { .. }
                | BrokerEvent::ConnectionRestored { .. }
                | BrokerEvent::Commission { .. } => {}
            }
        }
        self.record_settlements(st);
    }

    /// Expiries, assignments and exercises become executions with order id
    /// 0 and client id 0 (as TWS reports them): pushed to every client
    /// and listed by reqExecutions.
    fn record_settlements(&self, st: &mut State) {
        let all = self.exchange.settlements();
        if all.len() <= st.settlements_seen {
            return;
        }
        for fill in all.into_iter().skip(st.settlements_seen) {
            let con_id = st.register(&fill.contract);
            let rec = ExecRecord {
                api_id: 0,
                client_id: 0,
                perm_id: 0,
                cum_qty: fill.quantity,
                avg_price: fill.price.to_f64(),
                contract: wire_contract(&fill.contract, con_id),
                fill,
            };
            for f in self.exec_frames(&rec, NO_ID) {
                st.broadcast(&f);
            }
            self.journal_fill("settlement", &rec);
            st.executions.push(rec);
            st.settlements_seen += 1;
        }
    }

    fn status_frame(&self, info: &OrderInfo, u: &OrderUpdate) -> Vec<u8> {
        let last = if info.filled > 0 {
            info.fill_value / info.filled as f64
        } else {
            0.0
        };
        frame(
            outbound::ORDER_STATUS,
            &proto::OrderStatusMsg {
                order_id: Some(info.api_id),
                status: Some(wire_status(u.status).into()),
                filled: Some(decimal(u.filled_quantity)),
                remaining: Some(decimal(u.remaining_quantity)),
                avg_fill_price: Some(u.avg_fill_price.map_or(0.0, Price::to_f64)),
                perm_id: Some(info.perm_id),
                parent_id: Some(0),
                last_fill_price: Some(last),
                client_id: Some(info.client_id),
                why_held: None,
            },
        )
    }

    fn on_status(&self, st: &mut State, u: &OrderUpdate) {
        let Some(info) = u.broker_order_id.and_then(|id| st.orders.get(&id)).cloned() else {
            debug!(order_ref = %u.order_ref, "status of an order the gateway did not place");
            return;
        };
        st.send_order_msg(info.client_id, self.status_frame(&info, u));
        let reason = u.reason.clone().unwrap_or_default();
        match u.status {
            OrderStatus::Cancelled | OrderStatus::Expired => st.send_order_msg(
                info.client_id,
                error_frame(
                    info.api_id,
                    202,
                    format!("Order Canceled - reason:{reason}"),
                    self.now(),
                ),
            ),
            OrderStatus::Rejected => st.send_order_msg(
                info.client_id,
                error_frame(
                    info.api_id,
                    201,
                    format!("Order rejected - reason:{reason}"),
                    self.now(),
                ),
            ),
            _ => {}
        }
    }

    fn exec_frames(&self, rec: &ExecRecord, req_id: i32) -> [Vec<u8>; 2] {
        let f = &rec.fill;
        let exec = frame(
            outbound::EXECUTION_DATA,
            &proto::ExecutionDetails {
                req_id: Some(req_id),
                contract: Some(rec.contract.clone()),
                execution: Some(proto::WireExecution {
                    order_id: Some(rec.api_id),
                    exec_id: Some(f.exec_id.clone()),
                    time: Some(self.tws_time(f.time)),
                    account: Some(self.config.account.clone()),
                    exchange: Some("SMART".into()),
                    side: Some(
                        match f.side {
                            Side::Buy => "BOT",
                            Side::Sell => "SLD",
                        }
                        .into(),
                    ),
                    shares: Some(decimal(f.quantity)),
                    price: Some(f.price.to_f64()),
                    perm_id: Some(rec.perm_id),
                    client_id: Some(rec.client_id),
                    cum_qty: Some(decimal(rec.cum_qty)),
                    avg_price: Some(rec.avg_price),
                    order_ref: Some(f.order_ref.clone()),
                }),
            },
        );
        let commission = frame(
            outbound::COMMISSION_REPORT,
            &proto::CommissionReport {
                exec_id: Some(f.exec_id.clone()),
                commission: Some(f.commission.to_f64()),
                currency: Some("USD".into()),
                realized_pnl: Some(f64::MAX),
            },
        );
        [exec, commission]
    }

    fn on_fill(&self, st: &mut State, fill: Fill) {
        let id = st.by_ref.get(&fill.order_ref).copied();
        let con_id = st.register(&fill.contract);
        let (api_id, client_id, perm_id, cum_qty, avg_price, contract) =
            match id.and_then(|id| st.orders.get_mut(&id)) {
                Some(o) => {
                    o.filled += fill.quantity;
                    o.fill_value += fill.price.to_f64() * fill.quantity as f64;
                    (
                        o.api_id,
                        o.client_id,
                        o.perm_id,
                        o.filled,
                        o.fill_value / o.filled as f64,
                        o.contract.clone(),
                    )
                }
                None => (
                    0,
                    0,
                    0,
                    fill.quantity,
                    fill.price.to_f64(),
                    wire_contract(&fill.contract, con_id),
                ),
            };
        let mut rec = ExecRecord {
            fill,
            api_id,
            client_id,
            perm_id,
            cum_qty,
            avg_price,
            contract,
        };
        let (correct, delay) = {
            let mut faults = lock(&self.faults);
            let correct = faults.corrections > 0;
            if correct {
                faults.corrections -= 1;
            }
            (correct, Duration::from_millis(faults.commission_delay_ms))
        };
        if correct {
            // IB's execution ids: the last part counts corrections.
            rec.fill.exec_id = format!("{}.01.01", rec.fill.exec_id);
        }
        self.journal_fill("execution", &rec);
        let [exec, commission] = self.exec_frames(&rec, NO_ID);
        st.send_order_msg(client_id, exec);
        self.send_order_msg_after(st, client_id, commission, delay);
        if correct {
            // The correction: the same execution again under `.02`.
            let mut fix = rec.clone();
            fix.fill.exec_id = format!(
                "{}.02",
                rec.fill
                    .exec_id
                    .strip_suffix(".01")
                    .unwrap_or(&rec.fill.exec_id)
            );
            info!(exec_id = %fix.fill.exec_id, "fault: execution corrected");
            let [exec, commission] = self.exec_frames(&fix, NO_ID);
            st.send_order_msg(client_id, exec);
            self.send_order_msg_after(st, client_id, commission, delay);
            st.executions.push(rec);
            st.executions.push(fix);
        } else {
            st.executions.push(rec);
        }
    }

    /// An order message, after `delay` (wall clock) when it is not zero.
    fn send_order_msg_after(&self, st: &State, owner: i32, f: Vec<u8>, delay: Duration) {
        if delay.is_zero() {
            st.send_order_msg(owner, f);
            return;
        }
        let mut targets = Vec::new();
        for id in [owner, 0] {
            if let Some(c) = st.clients.get(&id)
                && !targets.iter().any(|(i, _)| *i == id)
            {
                targets.push((id, c.tx.clone()));
            }
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(delay).await;
                    for (_, tx) in targets {
                        let _ = tx.send(f.clone());
                    }
                });
            }
            Err(_) => st.send_order_msg(owner, f),
        }
    }

    /// Fresh ticks for every streaming market-data request.
    fn refresh_streams(&self, st: &mut State) {
        for conn in st.clients.values() {
            for (req, (contract, oi)) in &conn.streams {
                for f in self.tick_frames(*req, contract, conn.market_data_type, false, *oi) {
                    let _ = conn.tx.send(f);
                }
            }
        }
    }

    // ---- messages ----

    /// Handles one message of a connected client.
    fn handle(&self, client_id: i32, f: Frame) {
        let mut st = lock(&self.state);
        // rate limit and message-count faults
        let (limit, drop_now) = {
            let mut faults = lock(&self.faults);
            let drop_now = match faults.drop_after_messages {
                Some(0) | Some(1) => {
                    faults.drop_after_messages = None;
                    true
                }
                Some(n) => {
                    faults.drop_after_messages = Some(n - 1);
                    false
                }
                None => false,
            };
            (faults.max_messages_per_second, drop_now)
        };
        if let Some(conn) = st.clients.get_mut(&client_id) {
            let now = Instant::now();
            if now.duration_since(conn.window.0) >= Duration::from_secs(1) {
                conn.window = (now, 0);
            }
            conn.window.1 += 1;
            if let Some(max) = limit
                && conn.window.1 > max
            {
                let n = conn.window.1;
                let _ = conn.tx.send(error_frame(
                    NO_ID,
                    100,
                    format!("Max rate of messages per second has been exceeded:max={max} rec={n}"),
                    self.now(),
                ));
                return;
            }
        } else {
            return;
        }
        if !f.protobuf {
            st.send(
                client_id,
                error_frame(
                    NO_ID,
                    505,
                    format!(
                        "Fatal Error: Unknown message id. (text-framed message {} is not supported; the gateway speaks protobuf, server version 213+)",
                        f.id
                    ),
                    self.now(),
                ),
            );
        } else if let Err(e) = self.dispatch(&mut st, client_id, &f) {
            let (id, code, msg) = e;
            st.send(client_id, error_frame(id, code, msg, self.now()));
        }
        if drop_now {
            drop(st);
            self.drop_all("fault: drop after N messages");
        }
    }

    /// Routes a protobuf message; an `Err` is sent back as an error frame
    /// `(id, code, message)`.
    fn dispatch(&self, st: &mut State, client: i32, f: &Frame) -> Result<(), (i32, i32, String)> {
        let p = f.payload.as_slice();
        let undecodable = |e: prost::DecodeError| {
            warn!(id = f.id, "undecodable message: {e}");
            (
                NO_ID,
                320,
                format!(
                    "Error reading request. Message id {}: undecodable protobuf: {e}",
                    f.id
                ),
            )
        };
        match f.id {
            inbound::REQ_IDS => {
                proto::ReqIds::decode(p).map_err(undecodable)?;
                st.send(
                    client,
                    frame(
                        outbound::NEXT_VALID_ID,
                        &proto::NextValidId {
                            order_id: Some(st.next_order_id),
                        },
                    ),
                );
            }
            inbound::REQ_MANAGED_ACCTS => {
                proto::Empty::decode(p).map_err(undecodable)?;
                st.send(
                    client,
                    frame(
                        outbound::MANAGED_ACCOUNTS,
                        &proto::ManagedAccounts {
                            accounts: Some(self.config.account.clone()),
                        },
                    ),
                );
            }
            inbound::REQ_CURRENT_TIME => {
                proto::Empty::decode(p).map_err(undecodable)?;
                st.send(
                    client,
                    frame(
                        outbound::CURRENT_TIME,
                        &proto::CurrentTime {
                            time: Some(self.now().timestamp()),
                        },
                    ),
                );
            }
            inbound::REQ_CURRENT_TIME_MILLIS => {
                proto::Empty::decode(p).map_err(undecodable)?;
                st.send(
                    client,
                    frame(
                        outbound::CURRENT_TIME_MILLIS,
                        &proto::CurrentTime {
                            time: Some(self.now().timestamp_millis()),
                        },
                    ),
                );
            }
            inbound::REQ_MARKET_DATA_TYPE => {
                let m = proto::ReqMarketDataType::decode(p).map_err(undecodable)?;
                let t = m.market_data_type.unwrap_or(1);
                if !(1..=4).contains(&t) {
                    return Err((
                        NO_ID,
                        321,
                        format!(
                            "Error validating request:-'market data type' : cause - {t} is not 1..4"
                        ),
                    ));
                }
                if let Some(c) = st.clients.get_mut(&client) {
                    c.market_data_type = t;
                }
            }
            inbound::REQ_CONTRACT_DATA => {
                let m = proto::ReqContractData::decode(p).map_err(undecodable)?;
                self.contract_data(st, client, m)?;
            }
            inbound::CANCEL_CONTRACT_DATA => {
                proto::ReqIdOnly::decode(p).map_err(undecodable)?;
            }
            inbound::REQ_SEC_DEF_OPT_PARAMS => {
                let m = proto::ReqSecDefOptParams::decode(p).map_err(undecodable)?;
                self.sec_def_opt_params(st, client, m)?;
            }
            inbound::REQ_MKT_DATA => {
                let m = proto::ReqMktData::decode(p).map_err(undecodable)?;
                self.mkt_data(st, client, m)?;
            }
            inbound::CANCEL_MKT_DATA => {
                let m = proto::ReqIdOnly::decode(p).map_err(undecodable)?;
                if let (Some(c), Some(id)) = (st.clients.get_mut(&client), m.req_id) {
                    c.streams.remove(&id);
                }
            }
            inbound::REQ_HISTORICAL_DATA => {
                let m = proto::ReqHistoricalData::decode(p).map_err(undecodable)?;
                self.historical(st, client, m)?;
            }
            inbound::CANCEL_HISTORICAL_DATA => {
                proto::ReqIdOnly::decode(p).map_err(undecodable)?;
            }
            inbound::PLACE_ORDER => {
                let m = proto::PlaceOrder::decode(p).map_err(undecodable)?;
                self.place_order(st, client, m)?;
            }
            inbound::CANCEL_ORDER => {
                let m = proto::CancelOrder::decode(p).map_err(undecodable)?;
                self.cancel_order(st, client, m.order_id.unwrap_or(0))?;
            }
            inbound::REQ_GLOBAL_CANCEL => {
                self.global_cancel(st);
            }
            inbound::REQ_OPEN_ORDERS => {
                proto::Empty::decode(p).map_err(undecodable)?;
                self.open_orders(st, client, client != 0);
            }
            inbound::REQ_ALL_OPEN_ORDERS | inbound::REQ_AUTO_OPEN_ORDERS => {
                self.open_orders(st, client, false);
            }
            inbound::REQ_COMPLETED_ORDERS => {
                st.send(
                    client,
                    frame(outbound::COMPLETED_ORDERS_END, &proto::Empty {}),
                );
            }
            inbound::REQ_EXECUTIONS => {
                let m = proto::ReqExecutions::decode(p).map_err(undecodable)?;
                self.executions(st, client, m);
            }
            inbound::REQ_POSITIONS => {
                proto::Empty::decode(p).map_err(undecodable)?;
                self.positions(st, client)?;
            }
            inbound::CANCEL_POSITIONS | inbound::CANCEL_ACCOUNT_SUMMARY => {}
            inbound::REQ_ACCOUNT_SUMMARY => {
                let m = proto::ReqAccountSummary::decode(p).map_err(undecodable)?;
                self.account_summary(st, client, m)?;
            }
            id if (1..=inbound::MAX_KNOWN).contains(&id) => {
                let req = proto::ReqIdOnly::decode(p)
                    .ok()
                    .and_then(|m| m.req_id)
                    .unwrap_or(NO_ID);
                debug!(id, "request the gateway does not implement");
                return Err((
                    req,
                    321,
                    format!(
                        "Error validating request:-message id {id} is not implemented by the simulated gateway"
                    ),
                ));
            }
            id => {
                warn!(id, "unknown message id");
                return Err((
                    NO_ID,
                    505,
                    format!("Fatal Error: Unknown message id. ({id})"),
                ));
            }
        }
        Ok(())
    }

    // ---- contracts ----

    /// The domain contract(s) a wire contract names.
    fn resolve(&self, st: &State, w: &WireContract) -> Result<Resolved, String> {
        if let Some(id) = w.con_id.filter(|id| *id > 0) {
            return st
                .contracts
                .get(&id)
                .cloned()
                .map(Resolved::One)
                .ok_or_else(|| format!("unknown contract id {id}"));
        }
        let symbol = w
            .symbol
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or("no symbol")?;
        let symbol = Symbol::new(symbol).map_err(|e| e.to_string())?;
        match w.sec_type.as_deref().unwrap_or("STK") {
            "STK" => Ok(Resolved::One(Contract::Stock(StockContract::us(symbol)))),
            "OPT" => {
                let right = match w.right.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    Some("P" | "PUT") => Some(Right::Put),
                    Some("C" | "CALL") => Some(Right::Call),
                    None | Some("") | Some("?") => None,
                    Some(r) => return Err(format!("right {r:?}")),
                };
                let expiry = match w.expiry.as_deref().filter(|e| !e.is_empty()) {
                    Some(e) if e.len() == 8 => Some(
                        NaiveDate::parse_from_str(e, "%Y%m%d")
                            .map_err(|err| format!("expiry {e:?}: {err}"))?,
                    ),
                    Some(e) if e.len() == 6 => None,
                    Some(e) => return Err(format!("expiry {e:?}: give YYYYMMDD or YYYYMM")),
                    None => None,
                };
                // a contract month (YYYYMM) lists that month's expirations
                let month = w
                    .expiry
                    .as_deref()
                    .filter(|e| e.len() == 6)
                    .map(|e| {
                        NaiveDate::parse_from_str(&format!("{e}01"), "%Y%m%d")
                            .map_err(|err| format!("contract month {e:?}: {err}"))
                    })
                    .transpose()?;
                let strike = match w.strike.filter(|s| *s > 0.0) {
                    Some(s) => Some(Price::from_f64(s).map_err(|e| e.to_string())?),
                    None => None,
                };
                if let (Some(right), Some(expiry), Some(strike)) = (right, expiry, strike) {
                    return Ok(Resolved::One(Contract::Option(OptionContract::us(
                        symbol, right, strike, expiry,
                    ))));
                }
                let chain = ready(self.exchange.option_chain(&symbol))
                    .and_then(|r| r)
                    .map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                'all: for e in chain
                    .expirations
                    .iter()
                    .filter(|e| expiry.is_none_or(|x| x == **e))
                    .filter(|e| {
                        month.is_none_or(|m| {
                            e.format("%Y%m").to_string() == m.format("%Y%m").to_string()
                        })
                    })
                {
                    for s in chain
                        .strikes
                        .iter()
                        .filter(|s| strike.is_none_or(|x| x == **s))
                    {
                        for r in [Right::Put, Right::Call] {
                            if right.is_none_or(|x| x == r) {
                                out.push(Contract::Option(OptionContract::us(
                                    symbol.clone(),
                                    r,
                                    *s,
                                    *e,
                                )));
                                if out.len() >= MAX_DETAILS {
                                    break 'all;
                                }
                            }
                        }
                    }
                }
                Ok(Resolved::Many(out))
            }
            other => Err(format!(
                "security type {other:?} is not simulated (STK, OPT)"
            )),
        }
    }

    fn resolve_one(&self, st: &State, w: &WireContract) -> Result<Contract, String> {
        match self.resolve(st, w)? {
            Resolved::One(c) => Ok(c),
            Resolved::Many(_) => {
                Err("the contract is ambiguous (give right, strike and expiry)".into())
            }
        }
    }

    fn contract_data(
        &self,
        st: &mut State,
        client: i32,
        m: proto::ReqContractData,
    ) -> Result<(), (i32, i32, String)> {
        let req = m.req_id.unwrap_or(NO_ID);
        let no_def = |why: String| {
            (
                req,
                200,
                format!("No security definition has been found for the request ({why})"),
            )
        };
        let w = m.contract.unwrap_or_default();
        if let Some(symbol) = index_symbol(&w) {
            let key = format!("IND:{symbol}");
            let con_id = wire_con_id(&key);
            st.send(
                client,
                frame(
                    outbound::CONTRACT_DATA,
                    &proto::ContractData {
                        req_id: Some(req),
                        contract: Some(WireContract {
                            con_id: Some(con_id),
                            symbol: Some(symbol.to_string()),
                            sec_type: Some("IND".into()),
                            exchange: Some("CBOE".into()),
                            currency: Some("USD".into()),
                            local_symbol: Some(symbol.to_string()),
                            ..Default::default()
                        }),
                        details: Some(proto::WireContractDetails {
                            market_name: Some(symbol.to_string()),
                            long_name: Some(symbol.to_string()),
                            time_zone_id: Some(self.config.time_zone.clone()),
                            ..Default::default()
                        }),
                    },
                ),
            );
            st.send(
                client,
                frame(
                    outbound::CONTRACT_DATA_END,
                    &proto::IdEnd { req_id: Some(req) },
                ),
            );
            return Ok(());
        }
        let candidates = match self.resolve(st, &w).map_err(no_def)? {
            Resolved::One(c) => vec![c],
            Resolved::Many(v) => v,
        };
        let mut found = Vec::new();
        for c in candidates {
            match ready(self.exchange.contract_details(&c)).and_then(|r| r) {
                Ok(c) => found.push(c),
                Err(e) => debug!("contract details: {e}"),
            }
        }
        if found.is_empty() {
            return Err(no_def("not listed in the simulated market".into()));
        }
        for c in found {
            let con_id = st.register(&c);
            let details = self.details_of(st, &c);
            st.send(
                client,
                frame(
                    outbound::CONTRACT_DATA,
                    &proto::ContractData {
                        req_id: Some(req),
                        contract: Some(wire_contract(&c, con_id)),
                        details: Some(details),
                    },
                ),
            );
        }
        st.send(
            client,
            frame(
                outbound::CONTRACT_DATA_END,
                &proto::IdEnd { req_id: Some(req) },
            ),
        );
        Ok(())
    }

    fn details_of(&self, st: &mut State, c: &Contract) -> proto::WireContractDetails {
        let mut d = proto::WireContractDetails {
            market_name: Some(c.symbol().to_string()),
            min_tick: Some("0.01".into()),
            order_types: Some("LMT".into()),
            valid_exchanges: Some("SMART".into()),
            time_zone_id: Some(self.config.time_zone.clone()),
            ..Default::default()
        };
        match c {
            Contract::Stock(s) => {
                let info = self
                    .exchange
                    .history()
                    .symbols
                    .iter()
                    .find(|i| i.symbol == s.symbol);
                d.long_name = Some(info.map_or_else(|| s.symbol.to_string(), |i| i.name.clone()));
                d.industry = info.map(|i| i.sector.clone());
            }
            Contract::Option(o) => {
                let under = Contract::Stock(StockContract::us(o.underlying.clone()));
                d.under_con_id = Some(st.register(&under));
                d.under_symbol = Some(o.underlying.to_string());
                d.under_sec_type = Some("STK".into());
                d.contract_month = Some(o.expiry.format("%Y%m").to_string());
                d.real_expiration_date = Some(o.expiry.format("%Y%m%d").to_string());
                d.long_name = Some(o.underlying.to_string());
            }
        }
        d
    }

    fn sec_def_opt_params(
        &self,
        st: &mut State,
        client: i32,
        m: proto::ReqSecDefOptParams,
    ) -> Result<(), (i32, i32, String)> {
        let req = m.req_id.unwrap_or(NO_ID);
        let con_id = m.underlying_con_id.unwrap_or(0);
        if con_id == 0 {
            return Err((
                req,
                321,
                "Error validating request.-'bX' : cause - Invalid underlying contract id: 0 (request the underlying's contract details for its conId)".into(),
            ));
        }
        let symbol = match st.contracts.get(&con_id) {
            Some(Contract::Stock(s)) => s.symbol.clone(),
            _ => {
                // not looked up yet: accept the symbol if its id matches
                let s = m.underlying_symbol.clone().unwrap_or_default();
                let c = Symbol::new(&s)
                    .map(|s| Contract::Stock(StockContract::us(s)))
                    .map_err(|e| {
                        (
                            req,
                            200,
                            format!("No security definition has been found for the request ({e})"),
                        )
                    })?;
                if wire_con_id(&c.key()) != con_id {
                    return Err((
                        req,
                        200,
                        format!(
                            "No security definition has been found for the request (underlying contract id {con_id})"
                        ),
                    ));
                }
                st.register(&c);
                c.symbol().clone()
            }
        };
        let chain = ready(self.exchange.option_chain(&symbol))
            .and_then(|r| r)
            .map_err(|e| {
                (
                    req,
                    200,
                    format!("No security definition has been found for the request ({e})"),
                )
            })?;
        st.send(
            client,
            frame(
                outbound::SEC_DEF_OPT_PARAM,
                &proto::SecDefOptParameter {
                    req_id: Some(req),
                    exchange: Some("SMART".into()),
                    underlying_con_id: Some(con_id),
                    trading_class: Some(symbol.to_string()),
                    multiplier: Some(chain.multiplier.to_string()),
                    expirations: chain
                        .expirations
                        .iter()
                        .map(|d| d.format("%Y%m%d").to_string())
                        .collect(),
                    strikes: chain.strikes.iter().map(|p| p.to_f64()).collect(),
                },
            ),
        );
        st.send(
            client,
            frame(
                outbound::SEC_DEF_OPT_PARAM_END,
                &proto::IdEnd { req_id: Some(req) },
            ),
        );
        Ok(())
    }

    // ---- market data ----

    fn quote_of(&self, c: &Contract) -> Result<Quote, BrokerError> {
        match c {
            Contract::Stock(s) => ready(self.exchange.stock_quote(&s.symbol)).and_then(|r| r),
            Contract::Option(o) => ready(self.exchange.option_quotes(std::slice::from_ref(o)))
                .and_then(|r| r)?
                .into_iter()
                .next()
                .map(|q| q.quote)
                .ok_or_else(|| BrokerError::UnknownContract(format!("{}: not listed", o.key()))),
        }
    }

    /// Tick frames for one quote; `delayed` picks the delayed tick types.
    /// `open_interest`: generic tick 101 was requested (streaming only, as
    /// in TWS): the option's open interest (tick 27 call / 28 put, 86
    /// delayed) and its volume (8, 74 delayed) are sent too.
    fn tick_frames(
        &self,
        req: i32,
        c: &Contract,
        md_type: i32,
        snapshot: bool,
        open_interest: bool,
    ) -> Vec<Vec<u8>> {
        let delayed = !self.config.realtime_data_available && md_type >= 3;
        let Ok(q) = self.quote_of(c) else {
            return Vec::new();
        };
        let (bid_t, ask_t, last_t, bid_sz_t, ask_sz_t, bid_opt, ask_opt, model_opt) = if delayed {
            (66, 67, 68, 69, 70, 80, 81, 83)
        } else {
            (1, 2, 4, 0, 3, 10, 11, 13)
        };
        let mut out = Vec::new();
        let price = |t: i32, p: Option<Price>, size: Option<i64>| {
            p.map(|p| {
                frame(
                    outbound::TICK_PRICE,
                    &proto::TickPrice {
                        req_id: Some(req),
                        tick_type: Some(t),
                        price: Some(p.to_f64()),
                        size: size.map(decimal),
                        attr_mask: Some(if snapshot { 0 } else { 1 }),
                    },
                )
            })
        };
        let size = |t: i32, s: Option<i64>| {
            s.map(|s| {
                frame(
                    outbound::TICK_SIZE,
                    &proto::TickSize {
                        req_id: Some(req),
                        tick_type: Some(t),
                        size: Some(decimal(s)),
                    },
                )
            })
        };
        out.extend(price(bid_t, q.bid, q.bid_size));
        out.extend(price(ask_t, q.ask, q.ask_size));
        out.extend(price(last_t, q.last, None));
        out.extend(size(bid_sz_t, q.bid_size));
        out.extend(size(ask_sz_t, q.ask_size));
        if let Contract::Option(_) = c {
            let g = q.greeks;
            let comp = |t: i32, p: Option<Price>| {
                frame(
                    outbound::TICK_OPTION_COMPUTATION,
                    &proto::TickOptionComputation {
                        req_id: Some(req),
                        tick_type: Some(t),
                        tick_attrib: Some(0),
                        implied_vol: Some(q.implied_vol.unwrap_or(-1.0)),
                        delta: Some(g.map_or(-2.0, |g| g.delta)),
                        option_price: Some(p.map_or(-1.0, Price::to_f64)),
                        pv_dividend: Some(0.0),
                        gamma: Some(g.map_or(-2.0, |g| g.gamma)),
                        // TWS units: vega per vol point, theta per day
                        // (the domain keeps per 1.00 of vol and per year)
                        vega: Some(g.map_or(-2.0, |g| g.vega / 100.0)),
                        theta: Some(g.map_or(-2.0, |g| g.theta / 365.0)),
                        underlying_price: Some(q.underlying_price.map_or(-1.0, Price::to_f64)),
                    },
                )
            };
            out.push(comp(bid_opt, q.bid));
            out.push(comp(ask_opt, q.ask));
            out.push(comp(model_opt, q.mid()));
            if open_interest {
                let oi_t = match (delayed, c) {
                    (true, _) => 86,
                    (false, Contract::Option(o)) if o.right == core_domain::Right::Call => 27,
                    (false, _) => 28,
                };
                out.extend(size(oi_t, q.open_interest));
                out.extend(size(if delayed { 74 } else { 8 }, q.volume));
            }
        }
        out
    }

    fn mkt_data(
        &self,
        st: &mut State,
        client: i32,
        m: proto::ReqMktData,
    ) -> Result<(), (i32, i32, String)> {
        let req = m.req_id.unwrap_or(NO_ID);
        let w = m.contract.unwrap_or_default();
        let c = self.resolve_one(st, &w).map_err(|e| {
            (
                req,
                200,
                format!("No security definition has been found for the request ({e})"),
            )
        })?;
        if let Err(e) = self.quote_of(&c) {
            return Err((
                req,
                200,
                format!("No security definition has been found for the request ({e})"),
            ));
        }
        st.register(&c);
        let md_type = st.clients.get(&client).map_or(1, |c| c.market_data_type);
        let snapshot = m.snapshot.unwrap_or(false) || m.regulatory_snapshot.unwrap_or(false);
        if snapshot
            && m.generic_tick_list
                .as_deref()
                .is_some_and(|g| !g.trim().is_empty())
        {
            return Err((
                req,
                321,
                "Error validating request.-'bI' : cause - Snapshot market data subscription is not applicable to generic ticks".into(),
            ));
        }
        let mut out = Vec::new();
        if !self.config.realtime_data_available {
            if md_type < 3 {
                out.push(error_frame(
                    req,
                    10089,
                    format!(
                        "Requested market data requires additional subscription for API. See link in 'Market Data Connections' dialog for more details.Delayed market data is available.{} SMART/TOP/ALL",
                        c.symbol()
                    ),
                    self.now(),
                ));
                if snapshot {
                    out.push(frame(
                        outbound::TICK_SNAPSHOT_END,
                        &proto::IdEnd { req_id: Some(req) },
                    ));
                }
                for f in out {
                    st.send(client, f);
                }
                return Ok(());
            }
            out.push(error_frame(
                req,
                10167,
                "Requested market data is not subscribed. Displaying delayed market data.",
                self.now(),
            ));
            out.push(frame(
                outbound::MARKET_DATA_TYPE,
                &proto::MarketDataType {
                    req_id: Some(req),
                    market_data_type: Some(3),
                },
            ));
        } else {
            out.push(frame(
                outbound::MARKET_DATA_TYPE,
                &proto::MarketDataType {
                    req_id: Some(req),
                    market_data_type: Some(1),
                },
            ));
        }
        let open_interest = m
            .generic_tick_list
            .as_deref()
            .is_some_and(|g| g.split(',').any(|t| t.trim() == "101"));
        out.extend(self.tick_frames(req, &c, md_type, snapshot, open_interest));
        if snapshot {
            out.push(frame(
                outbound::TICK_SNAPSHOT_END,
                &proto::IdEnd { req_id: Some(req) },
            ));
        } else if let Some(conn) = st.clients.get_mut(&client) {
            conn.streams.insert(req, (c, open_interest));
        }
        for f in out {
            st.send(client, f);
        }
        Ok(())
    }

    fn historical(
        &self,
        st: &mut State,
        client: i32,
        m: proto::ReqHistoricalData,
    ) -> Result<(), (i32, i32, String)> {
        let req = m.req_id.unwrap_or(NO_ID);
        {
            let mut faults = lock(&self.faults);
            if faults.pacing_historical > 0 {
                faults.pacing_historical -= 1;
                return Err((
                    req,
                    162,
                    "Historical Market Data Service error message:Historical data request pacing violation".into(),
                ));
            }
        }
        let bar = m.bar_size.clone().unwrap_or_default();
        if bar.trim() != "1 day" {
            return Err((
                req,
                321,
                format!(
                    "Error validating request:-'bar size' : cause - {bar:?}: the simulated gateway has daily bars only (\"1 day\")"
                ),
            ));
        }
        if m.keep_up_to_date.unwrap_or(false) {
            return Err((
                req,
                321,
                "Error validating request:-'keepUpToDate' : cause - not simulated".into(),
            ));
        }
        let duration = m.duration.clone().unwrap_or_default();
        let count = parse_duration_sessions(&duration).ok_or_else(|| {
            (
                req,
                321,
                format!("Error validating request:-'duration' : cause - {duration:?}"),
            )
        })?;
        let end = match m
            .end_date_time
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => s
                .get(..8)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
                .ok_or_else(|| {
                    (
                        req,
                        321,
                        format!("Error validating request:-'endDateTime' : cause - {s:?}"),
                    )
                })?,
            None => self.now().with_timezone(&self.tz).date_naive(),
        };
        let w = m.contract.unwrap_or_default();
        let no_def = |e: String| {
            (
                req,
                200,
                format!("No security definition has been found for the request ({e})"),
            )
        };
        let symbol = match index_symbol(&w) {
            Some(s) => s,
            None => self.resolve_one(st, &w).map_err(no_def)?.symbol().clone(),
        };
        let bars = ready(self.exchange.daily_bars(&symbol, end, count))
            .and_then(|r| r)
            .map_err(|e| {
                (
                    req,
                    162,
                    format!("Historical Market Data Service error message:{e}"),
                )
            })?;
        let wire_bars: Vec<proto::WireBar> = bars
            .iter()
            .map(|b| proto::WireBar {
                date: Some(b.date.format("%Y%m%d").to_string()),
                open: Some(b.open.to_f64()),
                high: Some(b.high.to_f64()),
                low: Some(b.low.to_f64()),
                close: Some(b.close.to_f64()),
                // TWS sends -1 for an unknown volume
                volume: Some(b.volume.map_or("-1".to_string(), |v| v.to_string())),
                wap: Some(b.close.to_f64().to_string()),
                bar_count: Some(1),
            })
            .collect();
        let start = bars.first().map_or(end, |b| b.date);
        let fmt = |d: NaiveDate| format!("{}-00:00:00", d.format("%Y%m%d"));
        st.send(
            client,
            frame(
                outbound::HISTORICAL_DATA,
                &proto::HistoricalData {
                    req_id: Some(req),
                    bars: wire_bars,
                },
            ),
        );
        st.send(
            client,
            frame(
                outbound::HISTORICAL_DATA_END,
                &proto::HistoricalDataEnd {
                    req_id: Some(req),
                    start: Some(fmt(start)),
                    end: Some(format!("{}", self.now().format("%Y%m%d-%H:%M:%S"))),
                },
            ),
        );
        Ok(())
    }

    // ---- orders ----

    fn open_order_frame(&self, info: &OrderInfo, status: &str) -> Vec<u8> {
        let mut order = info.order.clone();
        order.client_id = Some(info.client_id);
        order.order_id = Some(info.api_id);
        order.perm_id = Some(info.perm_id);
        order.account = Some(self.config.account.clone());
        order.filled_quantity = Some(decimal(info.filled));
        frame(
            outbound::OPEN_ORDER,
            &proto::OpenOrder {
                order_id: Some(info.api_id),
                contract: Some(info.contract.clone()),
                order: Some(order),
                state: Some(proto::WireOrderState {
                    status: Some(status.into()),
                    commission_currency: Some("USD".into()),
                    margin_currency: Some("USD".into()),
                    ..Default::default()
                }),
            },
        )
    }

    fn intent_of(
        &self,
        st: &State,
        client: i32,
        api_id: i32,
        w: &WireContract,
        o: &proto::WireOrder,
    ) -> Result<(Contract, OrderIntent), String> {
        let contract = self.resolve_one(st, w)?;
        let side = match o.action.as_deref() {
            Some("BUY") => Side::Buy,
            Some("SELL") => Side::Sell,
            other => return Err(format!("action {other:?} (BUY or SELL)")),
        };
        let order_type = o.order_type.as_deref().unwrap_or("LMT");
        if order_type != "LMT" {
            return Err(format!(
                "order type {order_type:?}: the simulated exchange takes limit orders only"
            ));
        }
        let quantity = o
            .total_quantity
            .as_deref()
            .and_then(parse_quantity)
            .ok_or_else(|| format!("quantity {:?}: a positive whole number", o.total_quantity))?;
        let limit = o
            .limit_price
            .filter(|p| p.is_finite() && *p > 0.0 && *p != f64::MAX)
            .ok_or("a limit price is required")?;
        let limit_price = Price::from_f64(limit).map_err(|e| e.to_string())?;
        let time_in_force = match o.tif.as_deref().unwrap_or("DAY") {
            "" | "DAY" => TimeInForce::Day,
            "GTC" => TimeInForce::Gtc,
            "IOC" => TimeInForce::Ioc,
            other => return Err(format!("time in force {other:?} (DAY, GTC, IOC)")),
        };
        let order_ref = o
            .order_ref
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| format!("gw-{client}-{api_id}"));
        let intent = OrderIntent {
            order_ref,
            contract: contract.clone(),
            side,
            quantity,
            limit_price,
            time_in_force,
            purpose: match side {
                Side::Sell => OrderPurpose::Open,
                Side::Buy => OrderPurpose::Close,
            },
            trade_id: None,
            created_at: self.now(),
        };
        Ok((contract, intent))
    }

    fn place_order(
        &self,
        st: &mut State,
        client: i32,
        m: proto::PlaceOrder,
    ) -> Result<(), (i32, i32, String)> {
        let api_id = m.order_id.unwrap_or(0);
        let reject = |reason: String| (api_id, 201, format!("Order rejected - reason:{reason}"));
        if api_id <= 0 {
            return Err((
                NO_ID,
                103,
                format!("Duplicate order id / invalid order id {api_id}"),
            ));
        }
        let w = m.contract.unwrap_or_default();
        let o = m.order.unwrap_or_default();
        let what_if = o.what_if.unwrap_or(false);
        if st.by_api.contains_key(&(client, api_id)) && !what_if {
            return Err((
                api_id,
                10326,
                format!(
                    "order {api_id} exists: modifying orders is not simulated (cancel and place a new one)"
                ),
            ));
        }
        if api_id >= st.next_order_id {
            st.next_order_id = api_id.saturating_add(1);
        }
        if !what_if {
            let mut faults = lock(&self.faults);
            if faults.reject_orders > 0 {
                faults.reject_orders -= 1;
                let code = if faults.reject_code > 0 {
                    faults.reject_code
                } else {
                    201
                };
                if code == 201 {
                    return Err(reject(faults.reject_reason.clone()));
                }
                // Refused by the error code alone: no status follows.
                return Err((api_id, code, faults.reject_reason.clone()));
            }
        }
        let (contract, intent) = self.intent_of(st, client, api_id, &w, &o).map_err(reject)?;
        let con_id = st.register(&contract);
        let wire_c = wire_contract(&contract, con_id);
        let mut order = o.clone();
        order.order_ref = Some(intent.order_ref.clone());
        order.order_type = Some("LMT".into());
        if what_if {
            let impact = ready(self.exchange.what_if(&intent))
                .and_then(|r| r)
                .map_err(|e| reject(e.to_string()))?;
            let account = ready(self.exchange.account_summary()).and_then(|r| r).ok();
            let ewl = account.map(|a| a.net_liquidation.to_f64());
            order.client_id = Some(client);
            order.order_id = Some(api_id);
            order.what_if = Some(true);
            let f = frame(
                outbound::OPEN_ORDER,
                &proto::OpenOrder {
                    order_id: Some(api_id),
                    contract: Some(wire_c),
                    order: Some(order),
                    state: Some(proto::WireOrderState {
                        status: Some("PreSubmitted".into()),
                        init_margin_before: Some(impact.initial_margin_before.to_f64()),
                        maint_margin_before: Some(impact.maintenance_margin_before.to_f64()),
                        equity_with_loan_before: ewl,
                        init_margin_change: Some(impact.initial_margin_change.to_f64()),
                        maint_margin_change: Some(impact.maintenance_margin_change.to_f64()),
                        equity_with_loan_change: ewl.map(|_| 0.0),
                        init_margin_after: Some(impact.initial_margin_after.to_f64()),
                        maint_margin_after: Some(impact.maintenance_margin_after.to_f64()),
                        equity_with_loan_after: ewl,
                        commission: impact.commission.map(|c| c.to_f64()),
                        commission_currency: Some("USD".into()),
                        margin_currency: Some("USD".into()),
                        reject_reason: None,
                    }),
                },
            );
            st.send(client, f);
            return Ok(());
        }
        if let Some(existing) = st
            .by_ref
            .get(&intent.order_ref)
            .and_then(|id| st.orders.get(id))
        {
            return Err(reject(format!(
                "duplicate orderRef {:?}: it is order {} of client {} (permId {}); no second order was created",
                intent.order_ref, existing.api_id, existing.client_id, existing.perm_id
            )));
        }
        let exchange_id = match ready(self.exchange.place_order(&intent)).and_then(|r| r) {
            Ok(id) => id,
            Err(e) => return Err(reject(e.to_string())),
        };
        if st.orders.contains_key(&exchange_id) {
            // the exchange already knew this orderRef (placed outside the gateway)
            return Err(reject(format!(
                "duplicate orderRef {:?}: the exchange already has it as order {exchange_id}",
                intent.order_ref
            )));
        }
        let info = OrderInfo {
            api_id,
            client_id: client,
            perm_id: 1_000_000_000 + exchange_id,
            contract: wire_c,
            order,
            filled: 0,
            fill_value: 0.0,
        };
        st.orders.insert(exchange_id, info.clone());
        st.by_api.insert((client, api_id), exchange_id);
        st.by_ref.insert(intent.order_ref.clone(), exchange_id);
        info!(client, api_id, exchange_id, order_ref = %intent.order_ref, "order placed");
        let drop_after = {
            let mut faults = lock(&self.faults);
            std::mem::take(&mut faults.drop_after_place_order)
        };
        if drop_after {
            // the client never hears of its order; the exchange has it
            let mut clients = std::mem::take(&mut st.clients);
            self.pump(st);
            for (_, c) in std::mem::take(&mut clients) {
                c.close.send_replace(true);
            }
            info!("fault: every connection dropped right after a placeOrder");
            return Ok(());
        }
        self.journal(serde_json::json!({
            "kind": "order",
            "order_ref": intent.order_ref,
            "api_order_id": api_id,
            "client_id": client,
            "contract": intent.contract.key(),
            "side": match intent.side { Side::Buy => "BUY", Side::Sell => "SELL" },
            "quantity": intent.quantity,
            "limit": intent.limit_price.to_string(),
            "time": self.now().to_rfc3339(),
        }));
        st.send_order_msg(client, self.open_order_frame(&info, "Submitted"));
        let hold = {
            let mut faults = lock(&self.faults);
            let hold = faults.inactive_holds > 0;
            if hold {
                faults.inactive_holds -= 1;
            }
            hold
        };
        if hold {
            // IB's Inactive: held, not rejected; the order keeps working.
            info!(api_id, "fault: order reported Inactive (held)");
            st.send_order_msg(
                client,
                frame(
                    outbound::ORDER_STATUS,
                    &proto::OrderStatusMsg {
                        order_id: Some(api_id),
                        status: Some("Inactive".into()),
                        filled: Some(decimal(0)),
                        remaining: Some(decimal(intent.quantity)),
                        avg_fill_price: Some(0.0),
                        perm_id: Some(info.perm_id),
                        parent_id: Some(0),
                        last_fill_price: Some(0.0),
                        client_id: Some(client),
                        why_held: Some("locate".into()),
                    },
                ),
            );
        }
        self.pump(st);
        Ok(())
    }

    fn cancel_order(
        &self,
        st: &mut State,
        client: i32,
        api_id: i32,
    ) -> Result<(), (i32, i32, String)> {
        let id = st.by_api.get(&(client, api_id)).copied().or_else(|| {
            (client == 0)
                .then(|| {
                    st.orders
                        .iter()
                        .find(|(_, o)| o.api_id == api_id)
                        .map(|(id, _)| *id)
                })
                .flatten()
        });
        let Some(id) = id else {
            return Err((
                api_id,
                10147,
                format!("OrderId {api_id} that needs to be cancelled is not found."),
            ));
        };
        let order_ref = st
            .by_ref
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let race = {
            let mut faults = lock(&self.faults);
            let race = faults.cancel_races > 0;
            if race {
                faults.cancel_races -= 1;
            }
            race
        };
        if race && self.exchange.fill_at_limit(&order_ref) {
            // The fill beat the cancel: the execution and "Filled" go out,
            // and the cancel is answered "cannot be cancelled".
            info!(api_id, "fault: a fill raced the cancel");
            self.pump(st);
            return Err((
                api_id,
                10148,
                format!(
                    "OrderId {api_id} that needs to be cancelled cannot be cancelled, state: Filled."
                ),
            ));
        }
        match ready(self.exchange.cancel_order(&order_ref)).and_then(|r| r) {
            Ok(()) => {
                self.pump(st);
                Ok(())
            }
            Err(e) => Err((
                api_id,
                10148,
                format!("OrderId {api_id} that needs to be cancelled cannot be cancelled: {e}"),
            )),
        }
    }

    fn global_cancel(&self, st: &mut State) {
        let working = ready(self.exchange.open_orders())
            .and_then(|r| r)
            .unwrap_or_default();
        for u in working {
            if let Err(e) = ready(self.exchange.cancel_order(&u.order_ref)).and_then(|r| r) {
                debug!("global cancel of {}: {e}", u.order_ref);
            }
        }
        self.pump(st);
    }

    fn open_orders(&self, st: &mut State, client: i32, own_only: bool) {
        let working = ready(self.exchange.open_orders())
            .and_then(|r| r)
            .unwrap_or_default();
        for u in working {
            let Some(info) = u.broker_order_id.and_then(|id| st.orders.get(&id)) else {
                continue;
            };
            if own_only && info.client_id != client {
                continue;
            }
            let mut info = info.clone();
            info.filled = u.filled_quantity;
            st.send(client, self.open_order_frame(&info, wire_status(u.status)));
            st.send(client, self.status_frame(&info, &u));
        }
        st.send(client, frame(outbound::OPEN_ORDER_END, &proto::Empty {}));
    }

    fn executions(&self, st: &mut State, client: i32, m: proto::ReqExecutions) {
        let req = m.req_id.unwrap_or(NO_ID);
        let f = m.filter.unwrap_or_default();
        let since = f.time.as_deref().and_then(|t| self.parse_filter_time(t));
        let account_ok = f
            .account
            .as_deref()
            .is_none_or(|a| a.is_empty() || a == self.config.account);
        let matching: Vec<ExecRecord> = st
            .executions
            .iter()
            .filter(|r| f.client_id.is_none_or(|c| c == 0 || c == r.client_id))
            .filter(|_| account_ok)
            .filter(|r| {
                f.symbol
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || s == r.fill.contract.symbol().as_str())
            })
            .filter(|r| {
                f.sec_type.as_deref().is_none_or(|s| {
                    s.is_empty()
                        || s == match r.fill.contract {
                            Contract::Stock(_) => "STK",
                            Contract::Option(_) => "OPT",
                        }
                })
            })
            .filter(|r| {
                f.side.as_deref().is_none_or(|s| {
                    s.is_empty()
                        || (s == "BUY" && r.fill.side == Side::Buy)
                        || (s == "SELL" && r.fill.side == Side::Sell)
                })
            })
            .filter(|r| since.is_none_or(|t| r.fill.time >= t))
            .cloned()
            .collect();
        for r in &matching {
            for fr in self.exec_frames(r, req) {
                st.send(client, fr);
            }
        }
        st.send(
            client,
            frame(
                outbound::EXECUTION_DATA_END,
                &proto::IdEnd { req_id: Some(req) },
            ),
        );
    }

    /// `YYYYMMDD HH:MM:SS [zone]` (the zone, if any, must be the gateway's
    /// or UTC; none means the gateway's) or `YYYYMMDD-HH:MM:SS` (UTC).
    fn parse_filter_time(&self, t: &str) -> Option<DateTime<Utc>> {
        let t = t.trim();
        if t.is_empty() {
            return None;
        }
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, "%Y%m%d-%H:%M:%S") {
            return Some(n.and_utc());
        }
        let head = t.get(..17)?;
        let zone = t.get(17..).map(str::trim).unwrap_or_default();
        let n = chrono::NaiveDateTime::parse_from_str(head, "%Y%m%d %H:%M:%S").ok()?;
        if zone.eq_ignore_ascii_case("UTC") || zone.eq_ignore_ascii_case("GMT") {
            return Some(n.and_utc());
        }
        let tz: chrono_tz::Tz = if zone.is_empty() {
            self.tz
        } else {
            zone.parse().unwrap_or(self.tz)
        };
        tz.from_local_datetime(&n)
            .earliest()
            .map(|d| d.with_timezone(&Utc))
    }

    fn positions(&self, st: &mut State, client: i32) -> Result<(), (i32, i32, String)> {
        let positions = ready(self.exchange.positions())
            .and_then(|r| r)
            .map_err(|e| (NO_ID, 321, e.to_string()))?;
        for p in positions {
            let con_id = st.register(&p.contract);
            st.send(
                client,
                frame(
                    outbound::POSITION,
                    &proto::PositionMsg {
                        account: Some(self.config.account.clone()),
                        contract: Some(wire_contract(&p.contract, con_id)),
                        position: Some(decimal(p.quantity)),
                        avg_cost: Some(p.avg_cost.to_f64() * p.contract.multiplier() as f64),
                    },
                ),
            );
        }
        st.send(client, frame(outbound::POSITION_END, &proto::Empty {}));
        Ok(())
    }

    fn account_summary(
        &self,
        st: &mut State,
        client: i32,
        m: proto::ReqAccountSummary,
    ) -> Result<(), (i32, i32, String)> {
        let req = m.req_id.unwrap_or(NO_ID);
        let a = ready(self.exchange.account_summary())
            .and_then(|r| r)
            .map_err(|e| (req, 321, e.to_string()))?;
        let tags = m.tags.unwrap_or_default();
        let value = |tag: &str| -> Option<String> {
            let v = match tag {
                "NetLiquidation" | "EquityWithLoanValue" => a.net_liquidation.to_f64(),
                "TotalCashValue" | "SettledCash" => a.cash.to_f64(),
                "ExcessLiquidity"
                | "AvailableFunds"
                | "FullExcessLiquidity"
                | "FullAvailableFunds" => a.excess_liquidity.to_f64(),
                "InitMarginReq" | "FullInitMarginReq" => a.initial_margin.to_f64(),
                "MaintMarginReq" | "FullMaintMarginReq" => a.maintenance_margin.to_f64(),
                "BuyingPower" => 4.0 * a.excess_liquidity.to_f64().max(0.0),
                "GrossPositionValue" => (a.net_liquidation - a.cash).to_f64().abs(),
                "AccountType" => return Some("INDIVIDUAL".into()),
                "Cushion" => {
                    let nl = a.net_liquidation.to_f64();
                    if nl > 0.0 {
                        a.excess_liquidity.to_f64() / nl
                    } else {
                        0.0
                    }
                }
                _ => return None,
            };
            Some(format!("{v:.2}"))
        };
        for tag in tags.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if let Some(v) = value(tag) {
                st.send(
                    client,
                    frame(
                        outbound::ACCOUNT_SUMMARY,
                        &proto::AccountSummaryMsg {
                            req_id: Some(req),
                            account: Some(self.config.account.clone()),
                            tag: Some(tag.to_string()),
                            value: Some(v),
                            currency: Some(if tag == "AccountType" { "" } else { "USD" }.into()),
                        },
                    ),
                );
            }
        }
        st.send(
            client,
            frame(
                outbound::ACCOUNT_SUMMARY_END,
                &proto::IdEnd { req_id: Some(req) },
            ),
        );
        Ok(())
    }
}

/// The index a contract names (`IND` SPX or VIX: daily bars only).
fn index_symbol(w: &WireContract) -> Option<Symbol> {
    if w.sec_type.as_deref() != Some("IND") {
        return None;
    }
    let s = w.symbol.as_deref()?;
    [market_sim::INDEX_SPX, market_sim::INDEX_VIX]
        .contains(&s)
        .then(|| Symbol::new(s).ok())
        .flatten()
}

/// How many daily sessions a TWS duration (`"30 D"`, `"2 W"`, `"6 M"`,
/// `"1 Y"`) covers.
pub(crate) fn parse_duration_sessions(d: &str) -> Option<usize> {
    let mut parts = d.split_whitespace();
    let n: usize = parts.next()?.parse().ok()?;
    let unit = parts.next()?.to_ascii_uppercase();
    let sessions = match unit.as_str() {
        "D" => n,
        "W" => n * 5,
        "M" => n * 21,
        "Y" => n * 252,
        "S" => n.div_ceil(86_400).max(1),
        _ => return None,
    };
    (n > 0).then_some(sessions)
}

/// The wire form of a domain contract.
pub(crate) fn wire_contract(c: &Contract, con_id: i32) -> WireContract {
    match c {
        Contract::Stock(s) => WireContract {
            con_id: Some(con_id),
            symbol: Some(s.symbol.to_string()),
            sec_type: Some("STK".into()),
            exchange: Some("SMART".into()),
            primary_exchange: Some("NYSE".into()),
            currency: Some("USD".into()),
            local_symbol: Some(s.symbol.to_string()),
            trading_class: Some(s.symbol.to_string()),
            ..Default::default()
        },
        Contract::Option(o) => WireContract {
            con_id: Some(con_id),
            symbol: Some(o.underlying.to_string()),
            sec_type: Some("OPT".into()),
            expiry: Some(o.expiry.format("%Y%m%d").to_string()),
            strike: Some(o.strike.to_f64()),
            right: Some(o.right.code().into()),
            multiplier: Some(o.multiplier as f64),
            exchange: Some("SMART".into()),
            currency: Some("USD".into()),
            local_symbol: Some(format!(
                "{:<6}{}{}{:08}",
                o.underlying.as_str(),
                o.expiry.format("%y%m%d"),
                o.right.code(),
                (o.strike.to_f64() * 1000.0).round() as i64
            )),
            trading_class: Some(o.underlying.to_string()),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_count_sessions() {
        assert_eq!(parse_duration_sessions("30 D"), Some(30));
        assert_eq!(parse_duration_sessions("2 W"), Some(10));
        assert_eq!(parse_duration_sessions("1 Y"), Some(252));
        assert_eq!(parse_duration_sessions("0 D"), None);
        assert_eq!(parse_duration_sessions("3 fortnights"), None);
    }

    #[test]
    fn con_ids_are_stable_positive_i32() {
        let a = wire_con_id("AAPL");
        assert_eq!(a, wire_con_id("AAPL"));
        assert!(a > 0);
        assert_ne!(a, wire_con_id("MSFT"));
    }

    #[test]
    fn statuses_map_to_tws_words() {
        assert_eq!(wire_status(OrderStatus::Accepted), "Submitted");
        assert_eq!(wire_status(OrderStatus::Filled), "Filled");
        assert_eq!(wire_status(OrderStatus::Expired), "Cancelled");
    }
}
