//! Order bookkeeping that needs no connection: order-id allocation across
//! reconnects, the order-ref ↔ order-id registry, IBKR order statuses,
//! and joining executions with their commission reports.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use core_domain::{Contract, Fill, Money, OrderStatus, Side};

/// Hands out IBKR order ids. TWS requires each new order id to be above
/// every id this client used before; the nightly restart can roll the
/// server's "next valid id" back, so the next id is always
/// `max(server's next valid id, last used + 1)`. Call [`Self::on_server_next_id`]
/// after every (re)connect with the id `next_valid_order_id()` returned.
#[derive(Debug, Clone, Default)]
pub struct OrderIdAllocator {
    server_next: Option<i32>,
    last_used: Option<i32>,
}

impl OrderIdAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from what an earlier process used (e.g. the largest broker
    /// order id in the store), so a restart never reuses an id.
    pub fn with_last_used(last_used: Option<i32>) -> Self {
        OrderIdAllocator {
            server_next: None,
            last_used,
        }
    }

    /// The server's next valid id, after a (re)connect.
    pub fn on_server_next_id(&mut self, next: i32) {
        self.server_next = Some(next);
    }

    /// An id seen on an order of this client (open orders, executions):
    /// never hand it out again.
    pub fn observe_used(&mut self, id: i32) {
        if id > 0 && self.last_used.is_none_or(|last| id > last) {
            self.last_used = Some(id);
        }
    }

    /// The next id to send. `None` before the server has said anything:
    /// no order may be sent before the first connect.
    pub fn allocate(&mut self) -> Option<i32> {
        let server = self.server_next?;
        let id = match self.last_used {
            Some(last) => server.max(last.saturating_add(1)),
            None => server,
        };
        self.last_used = Some(id);
        Some(id)
    }

    pub fn last_used(&self) -> Option<i32> {
        self.last_used
    }
}

/// Which order ids belong to which order refs (status messages carry only
/// the id; executions and open orders carry the ref).
#[derive(Debug, Clone, Default)]
pub struct OrderRegistry {
    by_ref: HashMap<String, i32>,
    by_id: HashMap<i32, String>,
}

impl OrderRegistry {
    pub fn insert(&mut self, order_ref: &str, order_id: i32) {
        if order_ref.is_empty() {
            return;
        }
        self.by_ref.insert(order_ref.to_string(), order_id);
        self.by_id.insert(order_id, order_ref.to_string());
    }

    pub fn id_of(&self, order_ref: &str) -> Option<i32> {
        self.by_ref.get(order_ref).copied()
    }

    pub fn ref_of(&self, order_id: i32) -> Option<&str> {
        self.by_id.get(&order_id).map(String::as_str)
    }
}

/// IBKR's order status text as a domain status. `filled`/`remaining` tell
/// a partial fill from a fresh working order. Unknown text is `None`.
pub fn map_status(status: &str, filled: i64, remaining: i64) -> Option<OrderStatus> {
    Some(match status {
        "ApiPending" | "PendingSubmit" => OrderStatus::Sent,
        "PreSubmitted" | "Submitted" if filled > 0 && remaining > 0 => OrderStatus::PartiallyFilled,
        "PreSubmitted" | "Submitted" => OrderStatus::Accepted,
        "PendingCancel" => OrderStatus::PendingCancel,
        "Filled" => OrderStatus::Filled,
        "Cancelled" | "ApiCancelled" if filled > 0 && remaining == 0 => OrderStatus::Filled,
        "Cancelled" | "ApiCancelled" => OrderStatus::Cancelled,
        // TWS's Inactive is not an outcome: IB documents it as "accepted
        // by the system or an exchange but currently inactive due to
        // system, exchange or other issues" — the order may be held (e.g.
        // outside trading hours) and become active again. A rejection comes
        // with an error code (201, 110, 103, …), which the adapter applies
        // as the terminal status (`crate::errors::is_order_terminal`).
        "Inactive" if filled > 0 => OrderStatus::PartiallyFilled,
        "Inactive" => OrderStatus::Accepted,
        _ => return None,
    })
}

/// An execution before its commission report, reduced to domain values.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingExecution {
    pub exec_id: String,
    pub order_id: i32,
    pub order_ref: String,
    pub contract: Contract,
    pub side: Side,
    pub quantity: i64,
    pub price: core_domain::Price,
    pub time: DateTime<Utc>,
}

/// What [`FillJoiner`] made of an execution or a commission report.
#[derive(Debug, Clone, PartialEq)]
pub enum Joined {
    /// A new fill, to report.
    New(Fill),
    /// A fill already reported, reported again with better figures: the
    /// commission report that came after the fill was reported with a
    /// zero commission, or IBKR's correction of the execution (its
    /// `.02` id). Its `exec_id` is the one first reported, so whoever
    /// recorded that fill replaces it (never adds a second).
    Amended(Fill),
    /// Waiting for its other half.
    Waiting,
    /// An execution reported before (in this process or, by its id, in an
    /// earlier one): nothing to report, but its quantity is accounted for.
    Known {
        order_ref: String,
        base: String,
        quantity: i64,
    },
    /// A commission report for an execution reported before without its
    /// commission and no longer held here (reported by an earlier process,
    /// or flushed long ago): reported under the execution id recorded for
    /// its base, for the recorded fill to take.
    Commission { exec_id: String, commission: Money },
    /// Nothing to do (a duplicate commission report, …).
    Ignored,
}

/// Joins executions and commission reports (IBKR sends them apart, in
/// either order, and resends both on every executions request) into
/// [`Fill`]s, each reported once.
///
/// * an execution waits for its commission report;
/// * a commission report that arrives first waits for its execution;
/// * an execution id already reported is ignored (dedup across
///   reconnects and reconciliation requests);
/// * IBKR corrects an execution by sending it again with the last part of
///   its id counted up (`0000e0d5.6553f2ec.01.01` → `.01.02`): both share
///   the base `0000e0d5.6553f2ec.01`. A correction of a waiting execution
///   replaces it; a correction of a reported one is [`Joined::Amended`]
///   under the id first reported (it replaces, never adds);
/// * a commission report for an execution flushed with a zero commission
///   (it waited too long) is [`Joined::Amended`] with the commission.
#[derive(Debug, Default)]
pub struct FillJoiner {
    executions: HashMap<String, PendingExecution>,
    /// When each waiting execution arrived (local clock): how long it has
    /// waited for its commission, whatever the execution's own time says.
    arrived: HashMap<String, std::time::Instant>,
    /// Waiting execution id → the id first reported for its base, when it
    /// corrects a reported execution.
    amends: HashMap<String, String>,
    /// Waiting correction id → the id of the waiting execution it replaced:
    /// the fill is reported under the first id (stable across replays).
    renamed: HashMap<String, String>,
    commissions: HashMap<String, Money>,
    reported: HashSet<String>,
    /// Base id → the execution id reported for it.
    reported_base: HashMap<String, String>,
    reported_order: VecDeque<String>,
    /// Fills reported with a zero commission because none came in time,
    /// kept so a late commission report can amend them.
    flushed: HashMap<String, Fill>,
    /// Reported execution ids whose (non-zero) commission was reported
    /// too: a commission report for one of them again is a resend.
    commissioned: HashSet<String>,
    /// Bounded memory: the oldest reported ids are forgotten beyond this.
    capacity: usize,
}

impl FillJoiner {
    pub fn new() -> Self {
        FillJoiner {
            capacity: 100_000,
            ..Self::default()
        }
    }

    /// Marks execution ids as already known (e.g. from the store after a
    /// restart).
    pub fn mark_reported<I: IntoIterator<Item = String>>(&mut self, ids: I) {
        for id in ids {
            self.remember(id);
        }
    }

    pub fn is_reported(&self, exec_id: &str) -> bool {
        self.reported.contains(exec_id)
    }

    /// An execution.
    pub fn on_execution(&mut self, exec: PendingExecution) -> Joined {
        let base = base_id(&exec.exec_id).to_string();
        if self.reported.contains(&exec.exec_id) {
            return Joined::Known {
                order_ref: exec.order_ref,
                base,
                quantity: exec.quantity,
            };
        }
        // A correction of an execution still waiting: it replaces it.
        let waiting_same_base: Vec<String> = self
            .executions
            .keys()
            .filter(|id| base_id(id) == base && **id != exec.exec_id)
            .cloned()
            .collect();
        let mut arrived = std::time::Instant::now();
        for old in waiting_same_base {
            self.executions.remove(&old);
            if let Some(at) = self.arrived.remove(&old) {
                arrived = arrived.min(at);
            }
            if let Some(first) = self.amends.remove(&old) {
                self.amends.insert(exec.exec_id.clone(), first);
            }
            let first = self.renamed.remove(&old).unwrap_or(old);
            self.renamed.insert(exec.exec_id.clone(), first);
        }
        if let Some(first) = self.reported_base.get(&base)
            && *first != exec.exec_id
        {
            self.amends.insert(exec.exec_id.clone(), first.clone());
        }
        if let Some(commission) = self.commissions.remove(&exec.exec_id) {
            return self.complete(exec, commission);
        }
        self.arrived.insert(exec.exec_id.clone(), arrived);
        self.executions.insert(exec.exec_id.clone(), exec);
        Joined::Waiting
    }

    /// A commission report.
    pub fn on_commission(&mut self, exec_id: &str, commission: Money) -> Joined {
        if self.reported.contains(exec_id) {
            // Late: the fill went out with a zero commission.
            if commission == Money::ZERO || !self.commissioned.insert(exec_id.to_string()) {
                return Joined::Ignored;
            }
            return match self.flushed.remove(exec_id) {
                Some(mut fill) => {
                    fill.commission = commission;
                    Joined::Amended(fill)
                }
                // Reported by an earlier process (or flushed and
                // forgotten): the store holds the fill, under the id first
                // reported for its base.
                None => Joined::Commission {
                    exec_id: self
                        .reported_base
                        .get(base_id(exec_id))
                        .cloned()
                        .unwrap_or_else(|| exec_id.to_string()),
                    commission,
                },
            };
        }
        match self.executions.remove(exec_id) {
            Some(exec) => {
                self.arrived.remove(exec_id);
                self.complete(exec, commission)
            }
            None => {
                self.commissions.insert(exec_id.to_string(), commission);
                Joined::Waiting
            }
        }
    }

    /// Executions still waiting for a commission report.
    pub fn pending(&self) -> usize {
        self.executions.len()
    }

    /// Whether an execution of `order_ref` waits for its commission.
    pub fn is_waiting(&self, order_ref: &str) -> bool {
        self.executions.values().any(|e| e.order_ref == order_ref)
    }

    /// Gives up waiting for commissions: executions older than `before`
    /// are reported with a zero commission (IBKR does not always send a
    /// report, e.g. for some executions replayed after a restart). The
    /// caller logs them; a late report amends them.
    pub fn flush_older_than(&mut self, before: DateTime<Utc>) -> Vec<Joined> {
        let stale: Vec<String> = self
            .executions
            .iter()
            .filter(|(_, e)| e.time < before)
            .map(|(id, _)| id.clone())
            .collect();
        self.complete_all(stale)
    }

    /// Executions that have waited at least `wait` (local clock) for their
    /// commission report, completed with a zero commission.
    pub fn flush_waiting_longer_than(&mut self, wait: std::time::Duration) -> Vec<Joined> {
        let stale: Vec<String> = self
            .arrived
            .iter()
            .filter(|(_, at)| at.elapsed() >= wait)
            .map(|(id, _)| id.clone())
            .collect();
        self.complete_all(stale)
    }

    fn complete_all(&mut self, ids: Vec<String>) -> Vec<Joined> {
        let mut out = Vec::new();
        for id in ids {
            self.arrived.remove(&id);
            if let Some(exec) = self.executions.remove(&id) {
                let joined = self.complete(exec, Money::ZERO);
                if let Joined::New(f) | Joined::Amended(f) = &joined {
                    self.flushed.insert(id.clone(), f.clone());
                    if self.flushed.len() > 10_000 {
                        // Bounded: a report a day late is not waited for.
                        let oldest = self
                            .flushed
                            .iter()
                            .min_by_key(|(_, f)| f.time)
                            .map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            self.flushed.remove(&k);
                        }
                    }
                }
                out.push(joined);
            }
        }
        out.sort_by_key(|j| match j {
            Joined::New(f) | Joined::Amended(f) => Some(f.time),
            _ => None,
        });
        out
    }

    fn complete(&mut self, exec: PendingExecution, commission: Money) -> Joined {
        let amends = self.amends.remove(&exec.exec_id);
        let first = self.renamed.remove(&exec.exec_id);
        // the first id first: it is the base's recorded id
        if let Some(first) = &first {
            self.remember(first.clone());
        }
        self.remember(exec.exec_id.clone());
        if commission != Money::ZERO {
            self.commissioned.insert(exec.exec_id.clone());
        }
        let fill = Fill {
            exec_id: amends.clone().or(first).unwrap_or(exec.exec_id),
            order_ref: exec.order_ref,
            contract: exec.contract,
            side: exec.side,
            quantity: exec.quantity,
            price: exec.price,
            commission,
            time: exec.time,
        };
        if amends.is_some() {
            Joined::Amended(fill)
        } else {
            Joined::New(fill)
        }
    }

    fn remember(&mut self, id: String) {
        if self.reported.insert(id.clone()) {
            self.reported_base
                .entry(base_id(&id).to_string())
                .or_insert_with(|| id.clone());
            self.reported_order.push_back(id);
            while self.reported_order.len() > self.capacity.max(1) {
                if let Some(old) = self.reported_order.pop_front() {
                    self.reported.remove(&old);
                    self.commissioned.remove(&old);
                    let base = base_id(&old).to_string();
                    if self.reported_base.get(&base) == Some(&old) {
                        self.reported_base.remove(&base);
                    }
                }
            }
        }
    }
}

/// An execution id without IBKR's correction counter: the last
/// dot-separated part of IBKR's ids counts corrections
/// (`0000e0d5.6553f2ec.01.01`, then `.01.02`): the base is everything
/// before it (`0000e0d5.6553f2ec.01`) for the first report and its
/// corrections alike. An id of three or more parts whose last part is two
/// digits has such a counter; other ids are their own base.
pub fn base_id(exec_id: &str) -> &str {
    let parts = exec_id.split('.').count();
    match exec_id.rsplit_once('.') {
        Some((base, last))
            if parts >= 3 && last.len() == 2 && last.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => exec_id,
    }
}

/// The latest state of each order, keyed by order id, for `open_orders`.
pub(crate) type OrderBook = BTreeMap<i32, core_domain::OrderUpdate>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use core_domain::{Price, StockContract, Symbol};

    #[test]
    fn ids_start_at_the_servers_next_id() {
        let mut ids = OrderIdAllocator::new();
        assert_eq!(ids.allocate(), None, "no order before the first connect");
        ids.on_server_next_id(100);
        assert_eq!(ids.allocate(), Some(100));
        assert_eq!(ids.allocate(), Some(101));
    }

    #[test]
    fn ids_never_go_back_after_a_reconnect_rolls_the_server_back() {
        let mut ids = OrderIdAllocator::new();
        ids.on_server_next_id(100);
        for _ in 0..5 {
            ids.allocate();
        }
        // nightly restart: the gateway says 1 again
        ids.on_server_next_id(1);
        assert_eq!(ids.allocate(), Some(105));
        // a server ahead of us wins
        ids.on_server_next_id(500);
        assert_eq!(ids.allocate(), Some(500));
        assert_eq!(ids.allocate(), Some(501));
    }

    #[test]
    fn ids_seen_on_orders_are_not_reused() {
        let mut ids = OrderIdAllocator::with_last_used(Some(41));
        ids.on_server_next_id(10);
        assert_eq!(ids.allocate(), Some(42));
        ids.observe_used(77);
        ids.observe_used(3);
        assert_eq!(ids.allocate(), Some(78));
        assert_eq!(ids.last_used(), Some(78));
    }

    #[test]
    fn registry_maps_both_ways() {
        let mut reg = OrderRegistry::default();
        reg.insert("o-1", 7);
        reg.insert("", 8);
        assert_eq!(reg.id_of("o-1"), Some(7));
        assert_eq!(reg.ref_of(7), Some("o-1"));
        assert_eq!(reg.ref_of(8), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(map_status("PendingSubmit", 0, 1), Some(OrderStatus::Sent));
        assert_eq!(
            map_status("PreSubmitted", 0, 1),
            Some(OrderStatus::Accepted)
        );
        assert_eq!(
            map_status("Submitted", 1, 2),
            Some(OrderStatus::PartiallyFilled)
        );
        assert_eq!(
            map_status("PendingCancel", 0, 1),
            Some(OrderStatus::PendingCancel)
        );
        assert_eq!(map_status("Filled", 3, 0), Some(OrderStatus::Filled));
        assert_eq!(map_status("Cancelled", 0, 3), Some(OrderStatus::Cancelled));
        assert_eq!(
            map_status("ApiCancelled", 0, 3),
            Some(OrderStatus::Cancelled)
        );
        // Inactive is a hold, not a rejection (the error code rejects)
        assert_eq!(map_status("Inactive", 0, 3), Some(OrderStatus::Accepted));
        assert_eq!(
            map_status("Inactive", 1, 2),
            Some(OrderStatus::PartiallyFilled)
        );
        assert_eq!(map_status("Weird", 0, 3), None);
    }

    fn exec(id: &str, secs: i64) -> Result<PendingExecution, Box<dyn std::error::Error>> {
        Ok(PendingExecution {
            exec_id: id.into(),
            order_id: 5,
            order_ref: "o-1".into(),
            contract: Contract::Stock(StockContract::us(Symbol::new("AAPL")?)),
            side: Side::Sell,
            quantity: 1,
            price: Price::from_cents(120),
            time: Utc
                .timestamp_opt(1_700_000_000 + secs, 0)
                .single()
                .ok_or("time")?,
        })
    }

    fn new_fill(j: Joined) -> Result<Fill, String> {
        match j {
            Joined::New(f) => Ok(f),
            other => Err(format!("expected a new fill, got {other:?}")),
        }
    }

    #[test]
    fn execution_then_commission() -> Result<(), Box<dyn std::error::Error>> {
        let mut j = FillJoiner::new();
        assert_eq!(j.on_execution(exec("e1", 0)?), Joined::Waiting);
        assert_eq!(j.pending(), 1);
        assert!(j.is_waiting("o-1"));
        let fill = new_fill(j.on_commission("e1", Money::from_cents(65)))?;
        assert_eq!(fill.exec_id, "e1");
        assert_eq!(fill.commission, Money::from_cents(65));
        assert_eq!(fill.order_ref, "o-1");
        assert_eq!(j.pending(), 0);
        Ok(())
    }

    #[test]
    fn commission_then_execution() -> Result<(), Box<dyn std::error::Error>> {
        let mut j = FillJoiner::new();
        assert_eq!(
            j.on_commission("e2", Money::from_cents(100)),
            Joined::Waiting
        );
        let fill = new_fill(j.on_execution(exec("e2", 0)?))?;
        assert_eq!(fill.commission, Money::from_cents(100));
        Ok(())
    }

    #[test]
    fn duplicates_are_reported_once() -> Result<(), Box<dyn std::error::Error>> {
        let mut j = FillJoiner::new();
        j.on_execution(exec("e3", 0)?);
        new_fill(j.on_commission("e3", Money::from_cents(65)))?;
        // the same execution again (reconciliation after a reconnect)
        assert!(matches!(
            j.on_execution(exec("e3", 0)?),
            Joined::Known { quantity: 1, .. }
        ));
        assert_eq!(
            j.on_commission("e3", Money::from_cents(65)),
            Joined::Ignored
        );
        assert_eq!(j.pending(), 0);
        // known from the store
        j.mark_reported(["e4".to_string()]);
        assert!(matches!(
            j.on_execution(exec("e4", 0)?),
            Joined::Known { .. }
        ));
        assert!(j.is_reported("e4"));
        Ok(())
    }

    #[test]
    fn base_ids_drop_the_correction_counter() {
        // The bug: ".01.01" was its own base while ".01.02" mapped to
        // ".01", so a correction never matched the execution it corrects.
        assert_eq!(base_id("0000e0d5.6553f2ec.01.01"), "0000e0d5.6553f2ec.01");
        assert_eq!(base_id("0000e0d5.6553f2ec.01.02"), "0000e0d5.6553f2ec.01");
        assert_eq!(base_id("SIM-42"), "SIM-42");
        assert_eq!(base_id("a.b.c"), "a.b.c");
        assert_eq!(base_id("a.b.c.x1"), "a.b.c.x1");
        assert_eq!(base_id("SIM-00000007.01.02"), "SIM-00000007.01");
        assert_eq!(base_id("a.b.123"), "a.b.123");
    }

    #[test]
    fn a_correction_of_a_reported_execution_replaces_it() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut j = FillJoiner::new();
        j.on_execution(exec("0000e0d5.6553f2ec.01.01", 0)?);
        new_fill(j.on_commission("0000e0d5.6553f2ec.01.01", Money::from_cents(65)))?;
        let mut corrected = exec("0000e0d5.6553f2ec.01.02", 0)?;
        corrected.price = Price::from_cents(125);
        assert_eq!(j.on_execution(corrected), Joined::Waiting);
        match j.on_commission("0000e0d5.6553f2ec.01.02", Money::from_cents(65)) {
            Joined::Amended(f) => {
                assert_eq!(f.exec_id, "0000e0d5.6553f2ec.01.01", "under the first id");
                assert_eq!(f.price, Price::from_cents(125));
            }
            other => return Err(format!("expected an amendment, got {other:?}").into()),
        }
        // and the correction replayed later is known, not new
        assert!(matches!(
            j.on_execution(exec("0000e0d5.6553f2ec.01.02", 0)?),
            Joined::Known { .. }
        ));
        // corrections of a fill known from the store amend it too
        let mut k = FillJoiner::new();
        k.mark_reported(["1.2.03.01".to_string()]);
        k.on_commission("1.2.03.02", Money::ZERO);
        assert!(
            matches!(k.on_execution(exec("1.2.03.02", 0)?), Joined::Amended(f) if f.exec_id == "1.2.03.01")
        );
        Ok(())
    }

    #[test]
    fn a_correction_of_a_waiting_execution_replaces_it() -> Result<(), Box<dyn std::error::Error>> {
        let mut j = FillJoiner::new();
        j.on_execution(exec("x.y.01.01", 0)?);
        j.on_execution(exec("x.y.01.02", 0)?);
        assert_eq!(j.pending(), 1, "one execution, corrected");
        assert_eq!(j.on_commission("x.y.01.01", Money::ZERO), Joined::Waiting);
        let f = new_fill(j.on_commission("x.y.01.02", Money::from_cents(65)))?;
        assert_eq!(f.exec_id, "x.y.01.01", "under the first id");
        // either id replayed later is known
        assert!(matches!(
            j.on_execution(exec("x.y.01.01", 0)?),
            Joined::Known { .. }
        ));
        assert!(matches!(
            j.on_execution(exec("x.y.01.02", 0)?),
            Joined::Known { .. }
        ));
        assert_eq!(j.pending(), 0);
        Ok(())
    }

    #[test]
    fn stale_executions_are_flushed_without_commission() -> Result<(), Box<dyn std::error::Error>> {
        let mut j = FillJoiner::new();
        j.on_execution(exec("old", 0)?);
        j.on_execution(exec("new", 100)?);
        let cutoff = Utc.timestamp_opt(1_700_000_050, 0).single().ok_or("time")?;
        let fills = j.flush_older_than(cutoff);
        assert_eq!(fills.len(), 1);
        let f = new_fill(fills[0].clone())?;
        assert_eq!(f.exec_id, "old");
        assert_eq!(f.commission, Money::ZERO);
        assert_eq!(j.pending(), 1);
        // and once only
        assert!(j.flush_older_than(cutoff).is_empty());
        Ok(())
    }

    #[test]
    fn a_commission_report_after_the_flush_amends_the_fill()
    -> Result<(), Box<dyn std::error::Error>> {
        // Before: a report after the 30 s flush was dropped.
        let mut j = FillJoiner::new();
        j.on_execution(exec("late", 0)?);
        let flushed = j.flush_waiting_longer_than(std::time::Duration::ZERO);
        assert_eq!(new_fill(flushed[0].clone())?.commission, Money::ZERO);
        match j.on_commission("late", Money::from_cents(65)) {
            Joined::Amended(f) => {
                assert_eq!(f.exec_id, "late");
                assert_eq!(f.commission, Money::from_cents(65));
                assert_eq!(f.quantity, 1);
            }
            other => return Err(format!("expected an amendment, got {other:?}").into()),
        }
        // once
        assert_eq!(
            j.on_commission("late", Money::from_cents(65)),
            Joined::Ignored
        );
        Ok(())
    }

    #[test]
    fn a_late_commission_for_an_execution_of_an_earlier_process_is_reported()
    -> Result<(), Box<dyn std::error::Error>> {
        // Before: after a restart the joiner knew the id (from the store)
        // but not the fill, and dropped the report.
        let mut j = FillJoiner::new();
        j.mark_reported(["0000e0d5.6553f2ec.01.01".to_string()]);
        let expect = Joined::Commission {
            exec_id: "0000e0d5.6553f2ec.01.01".into(),
            commission: Money::from_cents(65),
        };
        assert_eq!(
            j.on_commission("0000e0d5.6553f2ec.01.01", Money::from_cents(65)),
            expect
        );
        // a resend, and a zero report, change nothing
        assert_eq!(
            j.on_commission("0000e0d5.6553f2ec.01.01", Money::from_cents(65)),
            Joined::Ignored
        );
        assert_eq!(
            j.on_commission("0000e0d5.6553f2ec.01.01", Money::ZERO),
            Joined::Ignored
        );
        // an execution joined with its commission in this process: its
        // commission report resent on every executions request is ignored
        j.on_execution(exec("fresh", 0)?);
        assert!(matches!(
            j.on_commission("fresh", Money::from_cents(65)),
            Joined::New(_)
        ));
        assert_eq!(
            j.on_commission("fresh", Money::from_cents(65)),
            Joined::Ignored
        );
        Ok(())
    }
}
