//! `NakedPutStrategy`: the baseline strategy behind the [`Strategy`] trait.
//!
//! Pure: it reads only the [`MarketSnapshot`] and the open trades it is
//! handed (no broker, no clock), so it runs unchanged in backtest and live.
//! The snapshot's time, taken in America/New_York, gives the date DTE is
//! counted from.
//!
//! **Limit prices.** Entries are proposed at the **bid** and exits at the
//! **ask**: the touch, the price the finder ranked on and the rule judged
//! on. A sell at the bid (a buy at the ask) is marketable, so it fills at
//! once on the simulated exchange (which never fills at mid by default)
//! and is the realistic fill on IBKR; the premium recorded is then the
//! premium that was ranked. A mid limit would often rest unfilled and let
//! the trade drift from what the rules approved. Improving on the touch is
//! the executor's business, not the strategy's.
//!
//! **Margin.** The snapshot holds no broker, so entries are ranked on the
//! Reg-T requirement ([`crate::finder`]); the executor's what-if is the
//! check that counts before an order is sent.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;
use core_domain::{
    Criterion, DecisionKind, DecisionRecord, EntryProposal, ExitProposal, ExitReason,
    MarketSnapshot, OptionChain, OptionContract, OptionQuote, Price, Right, Strategy, Symbol,
    Trade, TradeStatus, UnderlyingSnapshot,
};
use serde_json::json;

use crate::error::StrategyError;
use crate::finder::{FindContext, check_params, find_in_quotes, merge_context, rank};
use crate::params::NakedPutParams;
use crate::rules::{ExitInput, should_exit};
use crate::scan::current_price;
use crate::screener::{ScreenInput, screen};

/// The baseline naked-put strategy with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct NakedPutStrategy {
    params: NakedPutParams,
}

impl NakedPutStrategy {
    /// A strategy with `params`; refused when they describe an impossible
    /// search (see [`check_params`]).
    pub fn new(params: NakedPutParams) -> Result<Self, StrategyError> {
        check_params(&params)?;
        Ok(NakedPutStrategy { params })
    }

    pub fn params(&self) -> &NakedPutParams {
        &self.params
    }
}

/// The New York calendar date of `time` (the exchange's date).
pub fn exchange_date(time: DateTime<Utc>) -> NaiveDate {
    time.with_timezone(&New_York).date_naive()
}

fn is_open(t: &Trade) -> bool {
    t.status == TradeStatus::Open
}

fn quote_of<'a>(quotes: &'a [OptionQuote], t: &Trade) -> Option<&'a OptionQuote> {
    quotes.iter().find(|q| {
        q.contract.underlying == t.symbol
            && q.contract.right == Right::Put
            && q.contract.strike == t.strike
            && q.contract.expiry == t.expiration
    })
}

impl Strategy for NakedPutStrategy {
    fn name(&self) -> &str {
        &self.params.name
    }

    fn history_days(&self) -> usize {
        crate::scan::BARS
    }

    fn parameters(&self) -> std::collections::BTreeMap<String, f64> {
        self.params.tunable()
    }

    /// Checked like the configuration ([`check_params`]).
    fn with_parameter(&self, name: &str, value: f64) -> Result<Self, String> {
        let params = self.params.with(name, value)?;
        NakedPutStrategy::new(params).map_err(|e| e.to_string())
    }

    /// The screen on the snapshot's closes (trend, price range).
    fn wants_chain(&self, underlying: &UnderlyingSnapshot, time: DateTime<Utc>) -> bool {
        let input = ScreenInput {
            symbol: underlying.symbol.clone(),
            sector: underlying.sector.clone(),
            closes: underlying.closes.iter().map(|c| c.to_f64()).collect(),
            avg_volume: None,
        };
        let (passed, _) = screen(std::slice::from_ref(&input), &self.params, time);
        !passed.is_empty()
    }

    /// The puts in the OTM and DTE search range
    /// ([`crate::finder::contracts_to_quote`]).
    fn contracts_of_interest(
        &self,
        _underlying: &Symbol,
        price: Price,
        chain: &OptionChain,
        time: DateTime<Utc>,
    ) -> Vec<OptionContract> {
        crate::finder::contracts_to_quote(chain, price, &self.params, exchange_date(time))
    }

    /// The puts of the OTM and DTE range widened by `band` (relative) at
    /// each end: OTM `otm_min·(1−band)`..`otm_max·(1+band)` (within 0..1),
    /// DTE `⌊dte_min·(1−band)⌋`..`⌈dte_max·(1+band)⌉`.
    fn exploration_contracts(
        &self,
        _underlying: &Symbol,
        price: Price,
        chain: &OptionChain,
        time: DateTime<Utc>,
        band: f64,
    ) -> Vec<OptionContract> {
        let mut p = self.params.clone();
        if band.is_finite() && band > 0.0 {
            let band = band.min(1.0);
            p.otm_min = (p.otm_min * (1.0 - band)).max(0.0);
            p.otm_max = (p.otm_max * (1.0 + band)).min(0.99);
            p.dte_min = (p.dte_min as f64 * (1.0 - band)).floor().max(0.0) as i64;
            p.dte_max = (p.dte_max as f64 * (1.0 + band)).ceil() as i64;
        }
        crate::finder::contracts_to_quote(chain, price, &p, exchange_date(time))
    }

    /// Screens the snapshot's underlyings on their closes, finds the
    /// qualifying puts among the snapshot's option quotes (Reg-T margin),
    /// ranks them by margin efficiency and proposes the best
    /// `max_positions − open trades` of them, `params.contracts` each at
    /// the bid. Everything else gets a skip record: screen failures,
    /// missing prices, puts failing a criterion, and passing puts ranked
    /// beyond the free position slots.
    fn propose_entries(
        &self,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
    ) -> (Vec<EntryProposal>, Vec<DecisionRecord>) {
        let p = &self.params;
        let time = snapshot.time;
        let open =
            i64::try_from(open_trades.iter().filter(|t| is_open(t)).count()).unwrap_or(i64::MAX);
        let inputs: Vec<ScreenInput> = snapshot
            .underlyings
            .iter()
            .map(|u| ScreenInput {
                symbol: u.symbol.clone(),
                sector: u.sector.clone(),
                closes: u.closes.iter().map(|c| c.to_f64()).collect(),
                avg_volume: None,
            })
            .collect();
        let (passed, mut rejected) = screen(&inputs, p, time);
        let ctx = FindContext {
            params: p,
            open_positions: open,
            today: exchange_date(time),
            time,
        };
        let mut opportunities = Vec::new();
        for u in &passed {
            let price = snapshot
                .underlyings
                .iter()
                .find(|s| s.symbol == u.symbol)
                .and_then(|s| current_price(&s.quote));
            let Some(price) = price else {
                rejected.push(
                    DecisionRecord::new(
                        time,
                        DecisionKind::Skip,
                        u.symbol.to_string(),
                        "skip",
                        format!("finder: no current price for {} in the snapshot", u.symbol),
                    )
                    .with_criteria(vec![Criterion::text(
                        "underlying_quote",
                        "no last and no two-sided quote",
                        "a price",
                        false,
                    )])
                    .with_context(json!({"stage": "finder", "strategy": p.name})),
                );
                continue;
            };
            let (found, skipped) = find_in_quotes(&ctx, u, price, &snapshot.option_quotes);
            if found.is_empty() && skipped.is_empty() {
                rejected.push(crate::finder::no_candidates_record(
                    time,
                    &u.symbol,
                    price,
                    p,
                    "quoted",
                    "none quoted in the snapshot".into(),
                ));
            }
            rejected.extend(skipped);
            opportunities.extend(found);
        }
        rank(&mut opportunities);
        // One position per underlying: a symbol already held gets no new
        // put, and only the best-ranked put of a symbol is proposed.
        let held: Vec<&core_domain::Symbol> = open_trades
            .iter()
            .filter(|t| is_open(t))
            .map(|t| &t.symbol)
            .collect();
        let mut chosen: Vec<core_domain::Symbol> = Vec::new();
        let mut eligible = Vec::new();
        for o in opportunities {
            let (why, criterion) = if held.contains(&&o.symbol) {
                (
                    format!("{} is already held: one position per underlying", o.symbol),
                    Criterion::text(
                        "already_held",
                        "yes",
                        "no open trade on the underlying",
                        false,
                    ),
                )
            } else if chosen.contains(&o.symbol) {
                (
                    format!(
                        "a better-ranked put on {} is already proposed: one per underlying",
                        o.symbol
                    ),
                    Criterion::text(
                        "one_per_underlying",
                        "another put proposed",
                        "one put per underlying",
                        false,
                    ),
                )
            } else {
                chosen.push(o.symbol.clone());
                eligible.push(o);
                continue;
            };
            let mut decision = o.decision;
            decision.kind = DecisionKind::Skip;
            decision.decision = "skip".into();
            decision.reason = why;
            decision.criteria.push(criterion);
            rejected.push(decision);
        }
        let free = usize::try_from((p.max_positions - open).max(0)).unwrap_or(0);
        let mut proposals = Vec::new();
        for (slot, o) in eligible.into_iter().enumerate() {
            let mut decision = o.decision;
            merge_context(
                &mut decision,
                json!({"limit_price": o.bid.to_f64(), "contracts": p.contracts}),
            );
            if slot < free {
                proposals.push(EntryProposal {
                    contract: o.contract,
                    contracts: p.contracts,
                    limit_price: o.bid,
                    decision,
                });
            } else {
                decision.kind = DecisionKind::Skip;
                decision.decision = "skip".into();
                decision.reason = format!(
                    "ranked #{} ({} among the eligible) but only {free} of {} position slots are free ({open} open)",
                    o.rank,
                    slot + 1,
                    p.max_positions
                );
                decision.criteria.push(Criterion::number(
                    "free_slots",
                    free as f64,
                    format!(">= {}", slot + 1),
                    false,
                ));
                rejected.push(decision);
            }
        }
        (proposals, rejected)
    }

    /// For every open trade: its put's quote in the snapshot, the cost to
    /// close at the ask, DTE from the snapshot's New York date, and
    /// [`should_exit`]. An exit is proposed at the ask; a trade whose quote
    /// (or ask) is missing is held with a record saying so. Closed trades
    /// are ignored.
    fn propose_exits(
        &self,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
    ) -> (Vec<ExitProposal>, Vec<DecisionRecord>) {
        let p = &self.params;
        let time = snapshot.time;
        let today = exchange_date(time);
        let mut exits = Vec::new();
        let mut holds = Vec::new();
        for t in open_trades.iter().filter(|t| is_open(t)) {
            let key =
                OptionContract::us(t.symbol.clone(), Right::Put, t.strike, t.expiration).key();
            let dte = (t.expiration - today).num_days();
            let quote = quote_of(&snapshot.option_quotes, t);
            let Some((q, ask)) = quote.and_then(|q| q.quote.ask.map(|a| (q, a))) else {
                let what = if quote.is_some() {
                    "has no ask"
                } else {
                    "is missing from the snapshot"
                };
                // The time exit does not depend on a price: near expiry the
                // position is closed anyway, at intrinsic value plus a
                // nickel (a marketable guess) from the underlying's price.
                if dte <= p.time_exit_dte {
                    let spot = snapshot
                        .underlyings
                        .iter()
                        .find(|u| u.symbol == t.symbol)
                        .and_then(|u| current_price(&u.quote));
                    let intrinsic = spot.map_or(t.strike.to_f64(), |s| {
                        (t.strike.to_f64() - s.to_f64()).max(0.0)
                    });
                    let limit = core_domain::Price::from_f64(intrinsic + 0.05)
                        .unwrap_or(core_domain::Price::from_cents(5));
                    let record = DecisionRecord::new(
                        time,
                        DecisionKind::Exit,
                        t.trade_id.clone(),
                        "exit:time_exit",
                        format!(
                            "time_exit: {dte} DTE <= {}; the quote of {key} {what}, so the limit is intrinsic value + $0.05 = {limit}",
                            p.time_exit_dte
                        ),
                    )
                    .with_criteria(vec![
                        Criterion::number("time_exit", dte as f64, format!("dte <= {}", p.time_exit_dte), true),
                        Criterion::text("quote", what, "a quote with an ask", false),
                    ])
                    .with_context(json!({"strategy": p.name, "contract": key, "dte": dte, "underlying_price": spot.map(|s| s.to_f64())}));
                    exits.push(ExitProposal {
                        trade_id: t.trade_id.clone(),
                        reason: ExitReason::TimeExit,
                        limit_price: limit,
                        decision: record,
                    });
                    continue;
                }
                holds.push(
                    DecisionRecord::new(
                        time,
                        DecisionKind::Hold,
                        t.trade_id.clone(),
                        "hold",
                        format!("the quote of {key} {what}: no exit can be judged, holding"),
                    )
                    .with_criteria(vec![Criterion::text(
                        "quote",
                        what,
                        "a quote with an ask",
                        false,
                    )])
                    .with_context(json!({
                        "strategy": p.name,
                        "contract": key,
                        "dte": dte,
                        "entry_premium": t.entry_premium.to_f64(),
                    })),
                );
                continue;
            };
            let input = ExitInput {
                trade_id: t.trade_id.clone(),
                entry_premium: t.entry_premium,
                cost_to_close: ask,
                dte,
            };
            let (reason, mut record) = should_exit(&input, p, time);
            merge_context(
                &mut record,
                json!({
                    "strategy": p.name,
                    "contract": key,
                    "bid": q.quote.bid.map(|b| b.to_f64()),
                    "ask": ask.to_f64(),
                    "entry_premium": t.entry_premium.to_f64(),
                    "contracts": t.contracts,
                    "dte": dte,
                }),
            );
            match reason {
                Some(reason) => exits.push(ExitProposal {
                    trade_id: t.trade_id.clone(),
                    reason,
                    limit_price: ask,
                    decision: record,
                }),
                None => holds.push(record),
            }
        }
        (exits, holds)
    }
}
