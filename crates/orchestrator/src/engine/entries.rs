//! Entries: the scan. A snapshot of the universe (quotes, closes; chains
//! and quotes of the search range — the control's, the test arm's and the
//! exploration band — only for symbols passing the strategy's screen), the
//! strategy's proposals split between the running experiment's arms, the
//! skip records (once per session for a subject and its failed criteria),
//! then each proposal through what-if margin, the governor (each approved
//! entry counted at once) and the executor; every put evaluated becomes a
//! shadow trade (`engine::shadows`).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    AuditRepository, Broker, Contract, DecisionKind, DecisionRecord, EntryProposal, MarketData,
    MarketRegime, MarketSnapshot, OptionContract, OptionQuote, OrderIntent, OrderPurpose,
    OrderRepository, Price, Side, Strategy, Symbol, TimeInForce, Trade, UnderlyingSnapshot,
};
use execution::{OrderContext, record_state_change};
use risk::{OrderMarket, RiskContext, ShortPutExposure};
use serde_json::json;

use super::Engine;
use super::perceive::Perception;
use super::shadows::ShadowTag;
use crate::EngineError;
use crate::hook::LearningHook;

/// A proposal and the experiment arm it belongs to (experiment id, arm).
type Tagged = (EntryProposal, Option<(String, &'static str)>);

/// One entry scan: what was quoted, and what became of each put.
pub(super) struct Scan {
    pub(super) snapshot: MarketSnapshot,
    /// Keys of the puts some arm could trade; the rest were quoted only to
    /// explore.
    pub(super) in_range: HashSet<String>,
    /// The underlyings' prices (mid, else last).
    pub(super) prices: BTreeMap<Symbol, Price>,
    /// The first reason each contract (or symbol) was left out.
    pub(super) skip_reasons: HashMap<String, String>,
    /// What became of each proposed put (taken, refused, the other arm's).
    pub(super) outcomes: HashMap<String, ShadowTag>,
}

/// What became of one proposal.
enum Entry {
    Sent,
    /// Refused by the governor.
    Refused,
    /// Approved but not sent (the executor failed; audited), or no price
    /// for its underlying.
    Dropped,
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// Builds the snapshot for entries, asks the strategy, and sends each
    /// proposal through what-if margin and the governor. Returns (sent,
    /// refused).
    pub(super) async fn scan_entries(
        &mut self,
        p: &Perception,
    ) -> Result<(usize, usize), EngineError> {
        let (now, today) = (p.now, p.today);
        // The running experiment, read once for the whole scan; its test
        // arm's range may reach beyond the control's: quote both.
        let experiment = self.experiment_strategy();
        let test_arm = experiment.as_ref().map(|(_, s)| s);
        let (snapshot, skipped, in_range) = self
            .entry_snapshot(now, today, test_arm, &p.held_quotes)
            .await;
        let (control, rejected) = self.strategy.propose_entries(&snapshot, &p.open_trades);
        let (tagged, other_arm) = self.split_by_arm(experiment, control, &snapshot, &p.open_trades);
        let skip_reasons = self.record_skips(today, skipped, rejected)?;
        store::crash_point("scan");

        let working = self.store.open_orders()?;
        let prices: BTreeMap<Symbol, Price> = snapshot
            .underlyings
            .iter()
            .filter_map(|u| {
                u.quote
                    .mid()
                    .or(u.quote.last)
                    .map(|p| (u.symbol.clone(), p))
            })
            .collect();
        let opened_today = self
            .trades_of_day(today)?
            .iter()
            .filter(|t| t.entry_date == today)
            .count() as i64;
        let mut ctx = self.risk_context(
            &p.session_start,
            &p.account,
            &p.open_trades,
            &snapshot.option_quotes,
            &prices,
            &working,
            today,
            opened_today,
        )?;
        let mut outcomes: HashMap<String, ShadowTag> = HashMap::new();
        for (p, id, arm) in other_arm {
            outcomes.insert(
                p.contract.key(),
                ShadowTag {
                    origin: core_domain::ShadowOrigin::Arm,
                    reason: format!(
                        "proposed by the {arm} arm of {id}; the key belongs to the other arm"
                    ),
                    experiment: Some((id, arm.to_string())),
                },
            );
        }
        let mut scan = Scan {
            snapshot,
            in_range,
            prices,
            skip_reasons,
            outcomes,
        };
        let (mut sent, mut refused) = (0, 0);
        for (proposal, arm) in tagged {
            match self
                .send_entry(now, today, &mut scan, &mut ctx, proposal, arm)
                .await?
            {
                Entry::Sent => sent += 1,
                Entry::Refused => refused += 1,
                Entry::Dropped => {}
            }
        }
        if self.params.shadow_trades {
            self.record_shadows(now, today, &scan)?;
        }
        Ok((sent, refused))
    }

    /// The universe's snapshot for entries (quotes and closes; chains and
    /// the search range's quotes for symbols the strategy screens in), the
    /// skips of symbols whose data failed, and the keys of the puts some
    /// arm could trade. The held quotes are added (the strategy sees its
    /// own positions' marks).
    async fn entry_snapshot(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        test_arm: Option<&S>,
        held_quotes: &[OptionQuote],
    ) -> (MarketSnapshot, Vec<DecisionRecord>, HashSet<String>) {
        let days = self.strategy.history_days();
        let mut underlyings = Vec::new();
        let mut option_quotes = Vec::new();
        let mut skipped = Vec::new();
        let mut in_range: HashSet<String> = HashSet::new();
        for (symbol, sector) in self.params.universe.clone() {
            let quote = match self.broker().stock_quote(&symbol).await {
                Ok(q) => q,
                Err(e) => {
                    skipped.push(skip(now, &symbol, format!("no quote: {e}")));
                    continue;
                }
            };
            let closes: Vec<Price> = self
                .closes(&symbol, today, days)
                .await
                .into_iter()
                .filter_map(|c| Price::from_f64(c).ok())
                .collect();
            let u = UnderlyingSnapshot {
                symbol: symbol.clone(),
                sector,
                quote,
                closes,
            };
            if self.strategy.wants_chain(&u, now) {
                let price = u.quote.mid().filter(|p| p.is_positive()).or(u.quote.last);
                if let Some(price) = price {
                    match self
                        .quote_chain(&symbol, price, now, test_arm, &mut in_range)
                        .await
                    {
                        Ok(q) => option_quotes.extend(q),
                        Err(why) => skipped.push(skip(now, &symbol, why)),
                    }
                }
            }
            underlyings.push(u);
        }
        option_quotes.extend(held_quotes.iter().cloned());
        let snapshot = MarketSnapshot {
            time: now,
            underlyings,
            option_quotes,
            vix: self.memory.vix,
        };
        (snapshot, skipped, in_range)
    }

    /// Quotes of the puts of `symbol`'s chain in the control's and the test
    /// arm's search ranges (their keys added to `in_range`) and in the
    /// exploration band; the reason when the chain or the quotes fail.
    async fn quote_chain(
        &self,
        symbol: &Symbol,
        price: Price,
        now: DateTime<Utc>,
        test_arm: Option<&S>,
        in_range: &mut HashSet<String>,
    ) -> Result<Vec<OptionQuote>, String> {
        let band = if self.params.shadow_trades {
            self.params.exploration_band
        } else {
            0.0
        };
        let chain = self
            .broker()
            .option_chain(symbol)
            .await
            .map_err(|e| format!("no option chain: {e}"))?;
        let mut wanted = self
            .strategy
            .contracts_of_interest(symbol, price, &chain, now);
        if let Some(t) = test_arm {
            wanted.extend(t.contracts_of_interest(symbol, price, &chain, now));
        }
        in_range.extend(wanted.iter().map(OptionContract::key));
        if band > 0.0 {
            wanted.extend(
                self.strategy
                    .exploration_contracts(symbol, price, &chain, now, band)
                    .into_iter()
                    .filter(|c| !in_range.contains(&c.key())),
            );
        }
        let mut seen = HashSet::new();
        wanted.retain(|c| seen.insert(c.key()));
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.broker()
            .option_quotes(&wanted)
            .await
            .map_err(|e| format!("no option quotes: {e}"))
    }

    /// With an experiment running, each opportunity goes to the arm its
    /// key hashes to: the control arm's proposals of control keys and the
    /// test arm's (the strategy with the test value) of test keys,
    /// interleaved by rank; what the other arm proposed is returned apart
    /// (an `arm` shadow trade).
    #[allow(clippy::type_complexity)]
    fn split_by_arm(
        &self,
        experiment: Option<(core_domain::Experiment, S)>,
        control: Vec<EntryProposal>,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
    ) -> (Vec<Tagged>, Vec<(EntryProposal, String, &'static str)>) {
        let mut tagged: Vec<Tagged> = Vec::new();
        let mut other_arm: Vec<(EntryProposal, String, &'static str)> = Vec::new();
        let Some((exp, test)) = experiment else {
            tagged.extend(control.into_iter().map(|p| (p, None)));
            return (tagged, other_arm);
        };
        let (test_proposals, _) = test.propose_entries(snapshot, open_trades);
        let id = exp.experiment_id.clone();
        let mut keep_control = Vec::new();
        for p in control {
            if self.learning.arm(&exp, &p.contract.key()) == "control" {
                keep_control.push(p);
            } else {
                other_arm.push((p, id.clone(), "control"));
            }
        }
        let mut keep_test = Vec::new();
        for p in test_proposals {
            if self.learning.arm(&exp, &p.contract.key()) == "test" {
                keep_test.push(p);
            } else {
                other_arm.push((p, id.clone(), "test"));
            }
        }
        let (mut c, mut t) = (keep_control.into_iter(), keep_test.into_iter());
        loop {
            let (a, b) = (c.next(), t.next());
            if a.is_none() && b.is_none() {
                break;
            }
            if let Some(p) = a {
                tagged.push((p, Some((id.clone(), "control"))));
            }
            if let Some(p) = b {
                tagged.push((p, Some((id.clone(), "test"))));
            }
        }
        (tagged, other_arm)
    }

    /// Skip records: the screen's and the finder's, one per symbol or
    /// contract, written together; a skip repeated in the same session for
    /// the same failed criteria is recorded once. Returns the first reason
    /// each contract (or symbol) the strategy rejected was left out, for
    /// its shadow trade.
    fn record_skips(
        &mut self,
        today: NaiveDate,
        skipped: Vec<DecisionRecord>,
        rejected: Vec<DecisionRecord>,
    ) -> Result<HashMap<String, String>, EngineError> {
        if self.skips_session != Some(today) {
            // A new session, or the first scan since a restart: the skips
            // already on record this session (none in a new one).
            self.skips_recorded = self.skips_on_record(today)?;
            self.skips_session = Some(today);
        }
        let mut skip_reasons: HashMap<String, String> = HashMap::new();
        for r in rejected.iter() {
            skip_reasons
                .entry(r.subject.clone())
                .or_insert_with(|| r.reason.clone());
        }
        let mut fresh = Vec::new();
        for r in skipped.into_iter().chain(rejected) {
            let key = (r.subject.clone(), skip_key(&r));
            if self.skips_recorded.insert(key) {
                fresh.push(r);
            }
        }
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for r in &fresh {
                tx.append_decision(r)?;
            }
            Ok(())
        })?;
        Ok(skip_reasons)
    }

    /// One proposal: what-if margin, the governor's check with the book as
    /// it is now (`ctx`, which an approved entry joins at once), the
    /// executor; its outcome noted in `scan.outcomes`.
    async fn send_entry(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
        scan: &mut Scan,
        ctx: &mut RiskContext,
        proposal: EntryProposal,
        arm: Option<(String, &'static str)>,
    ) -> Result<Entry, EngineError> {
        let symbol = proposal.contract.underlying.clone();
        let quote = scan
            .snapshot
            .option_quotes
            .iter()
            .find(|q| q.contract.key() == proposal.contract.key())
            .map(|q| q.quote.clone());
        let Some(underlying) = scan.prices.get(&symbol).copied() else {
            return Ok(Entry::Dropped);
        };
        let trade_id = trade_id_for(&proposal.contract, now);
        let intent = entry_intent(&proposal, &trade_id, now);
        let what_if = self.broker().what_if(&intent).await;
        let (margin_change, margin_after) = match &what_if {
            Ok(m) => (Some(m.initial_margin_change), Some(m.initial_margin_after)),
            Err(_) => (None, None),
        };
        let iv = quote
            .as_ref()
            .and_then(|q| q.implied_vol)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(self.params.fallback_implied_vol);
        ctx.what_if_initial_margin_after = margin_after;
        ctx.order_market = Some(OrderMarket {
            sector: self.sector_of(&symbol),
            underlying_price: underlying,
            implied_vol: iv,
        });
        self.load_returns(today, ctx, &symbol).await;
        ctx.returns = self.returns_for(ctx, &symbol);
        let experiment = arm.clone().map(|(i, a)| (i, a.to_string()));
        let approved = match self.governor.check(intent, ctx, now) {
            Ok(approved) => approved,
            Err(r) => {
                scan.outcomes.insert(
                    proposal.contract.key(),
                    ShadowTag {
                        origin: core_domain::ShadowOrigin::Refused,
                        reason: r.decision.reason.clone(),
                        experiment,
                    },
                );
                self.store.append_decision(&r.decision)?;
                for change in &r.state_changes {
                    record_state_change(&self.executor, change)?;
                }
                return Ok(Entry::Refused);
            }
        };
        let mut entry =
            self.entry_template(&proposal, &trade_id, now, today, underlying, margin_change);
        if let Some((id, a)) = &arm {
            entry.is_experiment = true;
            entry.experiment_id = Some(id.clone());
            entry.experiment_arm = Some((*a).to_string());
        }
        let mut context = quote
            .as_ref()
            .map(OrderContext::with_quote)
            .unwrap_or_default();
        context.underlying_price = Some(underlying);
        context.entry = Some(entry);
        context.note = json!({ "decision": proposal.decision.reason });
        self.store.append_decision(&proposal.decision)?;
        match self
            .executor
            .submit_with_context(approved, context, now)
            .await
        {
            Ok(order) => {
                scan.outcomes.insert(
                    proposal.contract.key(),
                    ShadowTag {
                        origin: core_domain::ShadowOrigin::Taken,
                        reason: proposal.decision.reason.clone(),
                        experiment,
                    },
                );
                // Counted at once: the next check sees it.
                ctx.positions.push(ShortPutExposure {
                    contract: proposal.contract.clone(),
                    sector: self.sector_of(&symbol),
                    contracts: order.intent.quantity,
                    mark: order.intent.limit_price,
                    underlying_price: underlying,
                    implied_vol: iv,
                });
                ctx.opened_today += 1;
                if let Ok(a) = self.broker().account_summary().await {
                    ctx.account = a;
                }
                Ok(Entry::Sent)
            }
            Err(e) => {
                self.audit(
                    now,
                    "entry.not_sent",
                    json!({ "trade_id": trade_id, "error": e.to_string() }),
                    None,
                )?;
                Ok(Entry::Dropped)
            }
        }
    }

    /// The (subject, failed criteria) keys of the skip records written in
    /// the session of `today` — what a restarted engine must not record
    /// again.
    fn skips_on_record(
        &self,
        today: NaiveDate,
    ) -> Result<std::collections::HashSet<(String, String)>, EngineError> {
        let midnight = today
            .and_hms_opt(0, 0, 0)
            .and_then(|t| {
                t.and_local_timezone(chrono_tz::America::New_York)
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc));
        let Some(since) = midnight else {
            return Ok(std::collections::HashSet::new());
        };
        Ok(self
            .store
            .decisions_since(DecisionKind::Skip, since)?
            .into_iter()
            .map(|r| (r.subject.clone(), skip_key(&r)))
            .collect())
    }

    async fn load_returns(&mut self, today: NaiveDate, ctx: &RiskContext, new: &Symbol) {
        if self.returns_session != Some(today) {
            self.returns.clear();
            self.returns_session = Some(today);
        }
        let mut wanted: Vec<Symbol> = ctx
            .positions
            .iter()
            .map(|p| p.contract.underlying.clone())
            .collect();
        wanted.push(new.clone());
        for s in wanted {
            if self.returns.contains_key(&s) {
                continue;
            }
            let closes = self
                .closes(&s, today, self.params.returns_lookback + 1)
                .await;
            let r: Vec<f64> = closes
                .windows(2)
                .filter(|w| w[0] > 0.0 && w[1] > 0.0)
                .map(|w| (w[1] / w[0]).ln())
                .collect();
            self.returns.insert(s, r);
        }
    }

    fn returns_for(&self, ctx: &RiskContext, new: &Symbol) -> BTreeMap<Symbol, Vec<f64>> {
        let mut out = BTreeMap::new();
        for s in ctx
            .positions
            .iter()
            .map(|p| &p.contract.underlying)
            .chain(std::iter::once(new))
        {
            if let Some(r) = self.returns.get(s) {
                out.insert(s.clone(), r.clone());
            }
        }
        // All series must end on the same session and have equal length:
        // cut to the shortest.
        let shortest = out.values().map(Vec::len).min().unwrap_or(0);
        for v in out.values_mut() {
            let cut = v.len() - shortest;
            v.drain(..cut);
        }
        out
    }

    fn entry_template(
        &self,
        proposal: &EntryProposal,
        trade_id: &str,
        now: DateTime<Utc>,
        today: NaiveDate,
        underlying: Price,
        margin: Option<core_domain::Money>,
    ) -> Trade {
        let c = &proposal.contract;
        let s = underlying.to_f64();
        let margin = margin.filter(|m| m.cents() > 0).unwrap_or_else(|| {
            pricing::short_put_margin(
                underlying,
                c.strike,
                proposal.limit_price,
                proposal.contracts,
            )
            .unwrap_or(core_domain::Money::ZERO)
        });
        let mut trade = Trade::opened(
            trade_id,
            c.underlying.clone(),
            c.strike,
            c.expiry,
            now,
            today,
            proposal.limit_price,
            proposal.contracts,
        );
        trade.sector = self.sector_of(&c.underlying);
        trade.entry_underlying_price = underlying;
        trade.margin_at_entry = margin;
        trade.otm_pct = if s > 0.0 {
            (s - c.strike.to_f64()) / s
        } else {
            0.0
        };
        trade.vix_at_entry = self.memory.vix;
        trade.market_regime = self.memory.regime.unwrap_or(MarketRegime::Unknown);
        trade
    }
}

/// The sell order that opens a proposal's trade (`O-` + the trade id).
fn entry_intent(proposal: &EntryProposal, trade_id: &str, now: DateTime<Utc>) -> OrderIntent {
    OrderIntent {
        order_ref: format!("O-{trade_id}"),
        contract: Contract::Option(proposal.contract.clone()),
        side: Side::Sell,
        quantity: proposal.contracts,
        limit_price: proposal.limit_price,
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Open,
        trade_id: Some(trade_id.to_string()),
        created_at: now,
    }
}

/// `T-{yyyymmddHHMM}-{SYMBOL}-{strike}P`: one trade per underlying and
/// cycle, the same on a re-run of the same cycle (so a restart cannot
/// send it twice: the order ref is `O-` + this).
pub fn trade_id_for(contract: &OptionContract, now: DateTime<Utc>) -> String {
    format!(
        "T-{}-{}-{}P",
        now.format("%Y%m%d%H%M"),
        contract.underlying,
        contract.strike
    )
}

/// What makes two skips of one subject the same: the names of the
/// criteria that failed.
fn skip_key(r: &DecisionRecord) -> String {
    let failed: Vec<&str> = r
        .criteria
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    failed.join(",")
}

fn skip(now: DateTime<Utc>, symbol: &Symbol, why: String) -> DecisionRecord {
    DecisionRecord::new(now, DecisionKind::Skip, symbol.to_string(), "skip", why)
}
