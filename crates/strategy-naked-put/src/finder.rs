//! The options finder: which puts of a screened underlying qualify, what
//! margin each would take, and how they rank.
//!
//! * **Search range.** Only puts with days to expiry in
//!   `dte_min..=dte_max` and strikes `otm_min..=otm_max` out of the money,
//!   measured from the **current** underlying price, are candidates
//!   ([`contracts_to_quote`]); those are the only contracts worth asking
//!   the broker to quote.
//! * **Entry rule.** Every candidate goes through
//!   [`should_enter`](crate::rules::should_enter) with the premium at the
//!   **bid** (the price a sell can actually get, never the mid), its DTE,
//!   open interest, spread and the underlying's SMAs. A candidate that
//!   fails, has no quote, or has a one-sided quote gets a skip record.
//! * **Margin.** The Reg-T / Cboe short put requirement is computed for
//!   every passing candidate ([`pricing::short_put_margin`]) at the current
//!   underlying price with the option's mark (the mid, as brokers mark
//!   positions for margin; the sim's what-if does the same, so on the
//!   simulated exchange the two agree to the cent). A broker what-if, when
//!   the caller has one, replaces it ([`Opportunity::set_what_if`]); both
//!   and their difference are kept in the decision record.
//! * **Ranking** ([`rank`]) by margin efficiency, the annualized return on
//!   margin: `premium × multiplier × contracts / margin × 365 / DTE`;
//!   ties go to the higher premium, then symbol, strike and expiry.

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    Criterion, DecisionKind, DecisionRecord, Money, OptionChain, OptionContract, OptionQuote,
    Price, Right, Symbol,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::StrategyError;
use crate::params::NakedPutParams;
use crate::rules::{EPS, EntryCandidate, otm_pct, should_enter};
use crate::screener::ScreenedUnderlying;

/// Which margin figure an opportunity is ranked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginSource {
    /// The broker's what-if (initial margin change of the order).
    WhatIf,
    /// The Reg-T / Cboe formula.
    RegT,
}

/// A put that passed every entry criterion, with its margin and rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    /// The contract as the broker quoted it (with its `con_id` when known).
    pub contract: OptionContract,
    pub symbol: Symbol,
    pub sector: Option<String>,
    /// The underlying's current price (last trade, else the mid of its
    /// quote): the price OTM % and margin are computed from.
    pub underlying_price: Price,
    /// The latest completed session's close, and the SMAs of closes ending
    /// there (what the screener judged the uptrend on).
    pub last_close: f64,
    pub sma20: Option<f64>,
    pub sma50: Option<f64>,
    pub strike: Price,
    pub expiry: NaiveDate,
    /// Calendar days from the scan's date to expiry.
    pub dte: i64,
    /// (underlying price − strike) / underlying price.
    pub otm_pct: f64,
    pub bid: Price,
    pub ask: Price,
    /// Premium per share: the bid.
    pub premium: Price,
    pub iv: Option<f64>,
    pub delta: Option<f64>,
    pub open_interest: Option<i64>,
    /// Contracts the position would sell (`params.contracts`).
    pub contracts: i64,
    /// Premium received: premium × multiplier × contracts.
    pub credit: Money,
    /// The broker's what-if initial margin change, when it answered.
    pub margin_what_if: Option<Money>,
    /// The Reg-T / Cboe requirement at the mark (the mid).
    pub margin_reg_t: Money,
    /// The margin ranked on: the what-if when available, else Reg-T.
    pub margin: Money,
    pub margin_source: MarginSource,
    /// Annualized return on margin: credit / margin × 365 / DTE.
    pub margin_efficiency: f64,
    /// 1-based position after [`rank`]; 0 before ranking.
    pub rank: usize,
    /// Why it sits where it does, in words.
    pub rank_explanation: String,
    /// The entry rule's record, its context extended with the quote, both
    /// margins and their comparison, and the rank.
    pub decision: DecisionRecord,
}

/// What the finder needs besides the market: the rules and the moment.
#[derive(Debug, Clone, Copy)]
pub struct FindContext<'a> {
    pub params: &'a NakedPutParams,
    /// Positions open now, before any of these (the entry rule's
    /// `open_positions`).
    pub open_positions: i64,
    /// The date DTE is counted from.
    pub today: NaiveDate,
    /// Stamped on every decision record.
    pub time: DateTime<Utc>,
}

/// The skip record of an underlying with no put in the search range:
/// `source` says where the search looked ("listed", "quoted … in the
/// snapshot") and `found` what it found there.
pub fn no_candidates_record(
    time: DateTime<Utc>,
    symbol: &Symbol,
    price: Price,
    params: &NakedPutParams,
    source: &str,
    found: String,
) -> DecisionRecord {
    DecisionRecord::new(
        time,
        DecisionKind::Skip,
        symbol.to_string(),
        "skip",
        format!(
            "finder: no {source} put {}..={} OTM from {price} with {}..={} DTE",
            params.otm_min, params.otm_max, params.dte_min, params.dte_max
        ),
    )
    .with_criteria(vec![Criterion::text(
        "listed_candidates",
        found,
        "at least one put in the OTM and DTE ranges",
        false,
    )])
    .with_context(json!({"stage": "finder", "strategy": params.name}))
}

/// Checks that the parameters describe a search that can find anything:
/// finite numbers, non-empty ranges, OTM within [0, 1), a positive
/// contract count. Lists every problem.
pub fn check_params(p: &NakedPutParams) -> Result<(), StrategyError> {
    let mut problems = Vec::new();
    let floats = [
        ("otm_min", p.otm_min),
        ("otm_max", p.otm_max),
        ("premium_min", p.premium_min),
        ("premium_max", p.premium_max),
        ("price_min", p.price_min),
        ("price_max", p.price_max),
        ("max_spread_pct", p.max_spread_pct),
        ("profit_target", p.profit_target),
        ("stop_loss", p.stop_loss),
    ];
    for (name, v) in floats {
        if !v.is_finite() {
            problems.push(format!("{name} is {v}, not a number"));
        }
    }
    if !(0.0..1.0).contains(&p.otm_min) || !(0.0..1.0).contains(&p.otm_max) {
        problems.push(format!(
            "otm range {}..={} must lie in [0, 1)",
            p.otm_min, p.otm_max
        ));
    }
    for (name, lo, hi) in [
        ("otm", p.otm_min, p.otm_max),
        ("premium", p.premium_min, p.premium_max),
        ("price", p.price_min, p.price_max),
    ] {
        if lo > hi {
            problems.push(format!("{name} range {lo}..={hi} is empty"));
        }
    }
    if p.premium_min < 0.0 {
        problems.push(format!("premium_min {} is negative", p.premium_min));
    }
    if p.dte_min < 0 || p.dte_min > p.dte_max {
        problems.push(format!(
            "dte range {}..={} is empty or negative",
            p.dte_min, p.dte_max
        ));
    }
    if p.contracts <= 0 {
        problems.push(format!("contracts {} must be at least 1", p.contracts));
    }
    if p.max_positions < 0 {
        problems.push(format!("max_positions {} is negative", p.max_positions));
    }
    if p.min_open_interest < 0 {
        problems.push(format!(
            "min_open_interest {} is negative",
            p.min_open_interest
        ));
    }
    if p.max_spread_pct < 0.0 {
        problems.push(format!("max_spread_pct {} is negative", p.max_spread_pct));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StrategyError::BadParams(problems.join("; ")))
    }
}

/// Whether a put at `strike` expiring `expiry` lies in the search range:
/// DTE from `today` in `dte_min..=dte_max`, OTM from `underlying_price` in
/// `otm_min..=otm_max` (with the rules' tolerance [`EPS`]).
pub fn in_search_range(
    p: &NakedPutParams,
    underlying_price: Price,
    strike: Price,
    expiry: NaiveDate,
    today: NaiveDate,
) -> bool {
    let dte = (expiry - today).num_days();
    let otm = otm_pct(underlying_price.to_f64(), strike.to_f64());
    (p.dte_min..=p.dte_max).contains(&dte)
        && otm >= p.otm_min - EPS
        && otm <= p.otm_max + EPS
        && underlying_price.is_positive()
}

/// The puts of `chain` in the search range ([`in_search_range`]), ordered
/// by expiry then strike: the only contracts to ask quotes for.
pub fn contracts_to_quote(
    chain: &OptionChain,
    underlying_price: Price,
    p: &NakedPutParams,
    today: NaiveDate,
) -> Vec<OptionContract> {
    let mut expirations = chain.expirations.clone();
    expirations.sort();
    expirations.dedup();
    let mut strikes = chain.strikes.clone();
    strikes.sort();
    strikes.dedup();
    let mut out = Vec::new();
    for expiry in expirations {
        for strike in &strikes {
            if in_search_range(p, underlying_price, *strike, expiry, today) {
                let mut c =
                    OptionContract::us(chain.underlying.clone(), Right::Put, *strike, expiry);
                c.multiplier = chain.multiplier;
                out.push(c);
            }
        }
    }
    out
}

/// Finds the qualifying puts of one screened underlying from its listed
/// `chain` and the `quotes` received for [`contracts_to_quote`].
///
/// Returns the passing candidates (Reg-T margin, unranked: `rank` 0) and a
/// skip record for every other candidate in the search range (failed a
/// criterion, no quote, one-sided quote). Pure.
pub fn find(
    ctx: &FindContext<'_>,
    underlying: &ScreenedUnderlying,
    underlying_price: Price,
    chain: &OptionChain,
    quotes: &[OptionQuote],
) -> (Vec<Opportunity>, Vec<DecisionRecord>) {
    let candidates = contracts_to_quote(chain, underlying_price, ctx.params, ctx.today);
    evaluate(ctx, underlying, underlying_price, candidates, quotes)
}

/// [`find`] without a chain: the candidates are the puts of `underlying`
/// among `quotes` that lie in the search range (for a strategy that only
/// has a snapshot of quotes).
pub fn find_in_quotes(
    ctx: &FindContext<'_>,
    underlying: &ScreenedUnderlying,
    underlying_price: Price,
    quotes: &[OptionQuote],
) -> (Vec<Opportunity>, Vec<DecisionRecord>) {
    let mut candidates: Vec<OptionContract> = quotes
        .iter()
        .map(|q| &q.contract)
        .filter(|c| {
            c.underlying == underlying.symbol
                && c.right == Right::Put
                && in_search_range(ctx.params, underlying_price, c.strike, c.expiry, ctx.today)
        })
        .cloned()
        .collect();
    candidates.sort_by(|a, b| a.expiry.cmp(&b.expiry).then(a.strike.cmp(&b.strike)));
    candidates.dedup_by(|a, b| same_contract(a, b));
    evaluate(ctx, underlying, underlying_price, candidates, quotes)
}

/// Same listed contract, whatever the `con_id` (a broker fills it in).
pub(crate) fn same_contract(a: &OptionContract, b: &OptionContract) -> bool {
    a.underlying == b.underlying
        && a.right == b.right
        && a.strike == b.strike
        && a.expiry == b.expiry
        && a.multiplier == b.multiplier
}

fn evaluate(
    ctx: &FindContext<'_>,
    u: &ScreenedUnderlying,
    underlying_price: Price,
    candidates: Vec<OptionContract>,
    quotes: &[OptionQuote],
) -> (Vec<Opportunity>, Vec<DecisionRecord>) {
    let p = ctx.params;
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for candidate in candidates {
        let key = candidate.key();
        let Some(q) = quotes
            .iter()
            .find(|q| same_contract(&q.contract, &candidate))
        else {
            skipped.push(quote_skip(
                ctx,
                &key,
                "finder: no quote for the contract",
                "none",
            ));
            continue;
        };
        let (Some(bid), Some(ask)) = (q.quote.bid, q.quote.ask) else {
            skipped.push(quote_skip(
                ctx,
                &key,
                "finder: one-sided quote",
                &format!("bid {:?} ask {:?}", q.quote.bid, q.quote.ask),
            ));
            continue;
        };
        let dte = candidate.days_to_expiry(ctx.today);
        let iv = q.quote.implied_vol;
        let delta = q.quote.greeks.map(|g| g.delta);
        let open_interest = q.quote.open_interest;
        let entry = EntryCandidate {
            subject: key.clone(),
            underlying_price: underlying_price.to_f64(),
            sma20: u.sma20,
            sma50: u.sma50,
            strike: candidate.strike.to_f64(),
            bid,
            ask,
            dte,
            open_interest,
            open_positions: ctx.open_positions,
        };
        let mut record = should_enter(&entry, p, ctx.time);
        merge_context(
            &mut record,
            json!({
                "stage": "finder",
                "symbol": u.symbol,
                "underlying_price": underlying_price.to_f64(),
                "last_close": u.last_close,
                "sma20": u.sma20,
                "sma50": u.sma50,
                "bid": bid.to_f64(),
                "ask": ask.to_f64(),
                "iv": iv,
                "delta": delta,
                "open_interest": open_interest,
            }),
        );
        if record.decision != "enter" {
            if let Some(c) = record.criteria.iter().find(|c| !c.passed) {
                record.reason = format!(
                    "finder: {} {} outside {}",
                    c.name,
                    short_value(c),
                    c.threshold
                );
            }
            skipped.push(record);
            continue;
        }
        let mark = q.quote.mid().unwrap_or(bid);
        let reg_t = match pricing::short_put_margin(
            underlying_price,
            candidate.strike,
            mark,
            p.contracts,
        ) {
            Ok(m) => m,
            Err(e) => {
                let why = StrategyError::Pricing {
                    doing: format!("computing the Reg-T margin of {key}"),
                    why: e.to_string(),
                };
                skipped.push(quote_skip(
                    ctx,
                    &key,
                    &format!("finder: {why}"),
                    "margin not computable",
                ));
                continue;
            }
        };
        let credit = bid.notional(p.contracts, q.contract.multiplier);
        merge_context(
            &mut record,
            json!({"reg_t_inputs": {
                "underlying_price": underlying_price.to_f64(),
                "strike": candidate.strike.to_f64(),
                "premium_mark": mark.to_f64(),
                "contracts": p.contracts,
            }}),
        );
        let mut opp = Opportunity {
            contract: q.contract.clone(),
            symbol: u.symbol.clone(),
            sector: u.sector.clone(),
            underlying_price,
            last_close: u.last_close,
            sma20: u.sma20,
            sma50: u.sma50,
            strike: candidate.strike,
            expiry: candidate.expiry,
            dte,
            otm_pct: otm_pct(underlying_price.to_f64(), candidate.strike.to_f64()),
            bid,
            ask,
            premium: bid,
            iv,
            delta,
            open_interest,
            contracts: p.contracts,
            credit,
            margin_what_if: None,
            margin_reg_t: reg_t,
            margin: reg_t,
            margin_source: MarginSource::RegT,
            margin_efficiency: 0.0,
            rank: 0,
            rank_explanation: String::new(),
            decision: record,
        };
        opp.apply_margin(None, "no what-if asked: the Reg-T formula is used");
        found.push(opp);
    }
    (found, skipped)
}

impl Opportunity {
    /// Takes the broker's what-if answer: `Ok(margin)` (the initial margin
    /// change of the order) becomes the margin ranked on when positive; an
    /// error or a non-positive figure keeps Reg-T and says why. Both
    /// margins, their difference and the source are written to
    /// `decision.context["margin"]`, and the efficiency is recomputed.
    pub fn set_what_if(&mut self, what_if: Result<Money, String>) {
        match what_if {
            Ok(m) if m.cents() > 0 => self.apply_margin(Some(m), "broker what-if"),
            Ok(m) => self.apply_margin(
                None,
                &format!(
                    "the broker's what-if reported a margin change of {m}, not a usable requirement; Reg-T used"
                ),
            ),
            Err(e) => {
                self.apply_margin(None, &format!("the broker's what-if failed ({e}); Reg-T used"))
            }
        }
    }

    fn apply_margin(&mut self, what_if: Option<Money>, note: &str) {
        self.margin_what_if = what_if;
        let (margin, source) = match what_if {
            Some(m) => (m, MarginSource::WhatIf),
            None => (self.margin_reg_t, MarginSource::RegT),
        };
        self.margin = margin;
        self.margin_source = source;
        self.margin_efficiency = margin_efficiency(self.credit, margin, self.dte);
        let difference = what_if.map(|w| w - self.margin_reg_t);
        merge_context(
            &mut self.decision,
            json!({
                "margin": {
                    "reg_t": self.margin_reg_t.to_string(),
                    "reg_t_cents": self.margin_reg_t.cents(),
                    "what_if": what_if.map(|m| m.to_string()),
                    "what_if_cents": what_if.map(Money::cents),
                    "what_if_minus_reg_t": difference.map(|d| d.to_string()),
                    "what_if_minus_reg_t_cents": difference.map(Money::cents),
                    "used": source,
                    "note": note,
                },
                "credit": self.credit.to_string(),
                "margin_efficiency": self.margin_efficiency,
            }),
        );
    }
}

/// Annualized return on margin: `credit / margin × 365 / dte`, with DTE
/// floored at one day; 0 when the margin is not positive.
pub fn margin_efficiency(credit: Money, margin: Money, dte: i64) -> f64 {
    if margin.cents() <= 0 {
        return 0.0;
    }
    credit.cents() as f64 / margin.cents() as f64 * 365.0 / dte.max(1) as f64
}

/// Orders opportunities best first by margin efficiency (ties: higher
/// premium, then symbol, strike, expiry), sets `rank` (1-based) and
/// `rank_explanation`, and writes the rank into each decision's context.
pub fn rank(opportunities: &mut [Opportunity]) {
    opportunities.sort_by(|a, b| {
        b.margin_efficiency
            .total_cmp(&a.margin_efficiency)
            .then(b.premium.cmp(&a.premium))
            .then(a.symbol.cmp(&b.symbol))
            .then(a.strike.cmp(&b.strike))
            .then(a.expiry.cmp(&b.expiry))
    });
    let n = opportunities.len();
    let summary: Vec<(String, f64)> = opportunities
        .iter()
        .map(|o| (o.contract.key(), o.margin_efficiency))
        .collect();
    for (i, o) in opportunities.iter_mut().enumerate() {
        o.rank = i + 1;
        let source = match o.margin_source {
            MarginSource::WhatIf => "what-if",
            MarginSource::RegT => "Reg-T",
        };
        let mut text = format!(
            "#{} of {n} by margin efficiency: {:.1}% a year = credit ${} / margin ${} ({source}) x 365/{} days",
            o.rank,
            o.margin_efficiency * 100.0,
            o.credit,
            o.margin,
            o.dte
        );
        if let Some((key, eff)) = i.checked_sub(1).and_then(|j| summary.get(j)) {
            if *eff == o.margin_efficiency {
                text.push_str(&format!(
                    "; tied with #{} {key} on efficiency, placed after it by premium, symbol and strike",
                    i
                ));
            } else {
                text.push_str(&format!("; behind #{} {key} at {:.1}%", i, eff * 100.0));
            }
        }
        if let Some((key, eff)) = summary.get(i + 1) {
            text.push_str(&format!(
                "; ahead of #{} {key} at {:.1}%",
                i + 2,
                eff * 100.0
            ));
        }
        o.rank_explanation = text;
        let (rank, explanation) = (o.rank, o.rank_explanation.clone());
        merge_context(
            &mut o.decision,
            json!({"rank": rank, "rank_of": n, "rank_explanation": explanation}),
        );
    }
}

/// Inserts the keys of `extra` (an object) into the record's context,
/// turning a non-object context into `{"previous": …}` first.
pub(crate) fn merge_context(record: &mut DecisionRecord, extra: Value) {
    if !record.context.is_object() {
        let previous = std::mem::take(&mut record.context);
        record.context = if previous.is_null() {
            json!({})
        } else {
            json!({ "previous": previous })
        };
    }
    if let (Some(ctx), Value::Object(extra)) = (record.context.as_object_mut(), extra) {
        for (k, v) in extra {
            ctx.insert(k, v);
        }
    }
}

fn short_value(c: &Criterion) -> String {
    match c.numeric_value {
        Some(v) => format!("{}", (v * 10_000.0).round() / 10_000.0),
        None => c.value.clone(),
    }
}

fn quote_skip(ctx: &FindContext<'_>, key: &str, reason: &str, value: &str) -> DecisionRecord {
    DecisionRecord::new(ctx.time, DecisionKind::Skip, key, "skip", reason)
        .with_criteria(vec![Criterion::text(
            "quote",
            value,
            "a two-sided quote",
            false,
        )])
        .with_context(json!({"stage": "finder", "strategy": ctx.params.name}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_domain::{Contract, Greeks, Quote};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn screened() -> ScreenedUnderlying {
        ScreenedUnderlying {
            symbol: Symbol::new("XYZ").unwrap(),
            sector: Some("Tech".into()),
            last_close: 99.0,
            sma20: Some(95.0),
            sma50: Some(90.0),
            score: 0.1,
        }
    }

    fn quote(strike: i64, expiry: NaiveDate, bid: i64, ask: i64, oi: i64) -> OptionQuote {
        let c = OptionContract::us(
            Symbol::new("XYZ").unwrap(),
            Right::Put,
            Price::from_cents(strike * 100),
            expiry,
        );
        OptionQuote {
            contract: c.clone(),
            quote: Quote {
                contract: Contract::Option(c),
                bid: Some(Price::from_cents(bid)),
                ask: Some(Price::from_cents(ask)),
                last: None,
                bid_size: Some(10),
                ask_size: Some(10),
                time: DateTime::<Utc>::UNIX_EPOCH,
                implied_vol: Some(0.4),
                greeks: Some(Greeks {
                    delta: -0.05,
                    ..Greeks::default()
                }),
                underlying_price: None,
                open_interest: Some(oi),
                volume: None,
            },
        }
    }

    fn chain() -> OptionChain {
        OptionChain {
            underlying: Symbol::new("XYZ").unwrap(),
            underlying_con_id: None,
            expirations: vec![d(2024, 1, 12), d(2024, 1, 19), d(2024, 2, 16)],
            strikes: (70..=110)
                .step_by(5)
                .map(|k| Price::from_cents(k * 100))
                .collect(),
            multiplier: 100,
        }
    }

    #[test]
    fn only_puts_in_the_otm_and_dte_ranges_are_quoted() {
        let p = NakedPutParams::default();
        // Price 100: strikes 80 and 85 are 20% and 15% OTM; expiry 01-12 is
        // 3 days, 01-19 is 10 days, 02-16 is 38 days from 01-09.
        let got = contracts_to_quote(&chain(), Price::from_cents(10_000), &p, d(2024, 1, 9));
        let keys: Vec<String> = got.iter().map(OptionContract::key).collect();
        assert_eq!(
            keys,
            vec!["XYZ 2024-01-19 80.00 P", "XYZ 2024-01-19 85.00 P"]
        );
    }

    #[test]
    fn passing_puts_carry_reg_t_margin_and_failing_ones_a_reason() {
        let p = NakedPutParams::default();
        let ctx = FindContext {
            params: &p,
            open_positions: 0,
            today: d(2024, 1, 9),
            time: DateTime::<Utc>::UNIX_EPOCH,
        };
        let e = d(2024, 1, 19);
        let quotes = vec![quote(80, e, 20, 25, 500), quote(85, e, 40, 45, 500)];
        let (found, skipped) = find(
            &ctx,
            &screened(),
            Price::from_cents(10_000),
            &chain(),
            &quotes,
        );
        assert_eq!(found.len(), 1);
        let o = &found[0];
        assert_eq!(o.strike, Price::from_cents(8_500));
        assert_eq!(o.premium, o.bid);
        // Reg-T at the mid 0.425: 0.425 + max(20 - 15, 8.5) = 8.925 x 500
        assert_eq!(o.margin_reg_t, Money::from_cents(446_250));
        assert_eq!(o.margin, o.margin_reg_t);
        assert_eq!(o.credit, Money::from_cents(20_000));
        let want = 20_000.0 / 446_250.0 * 365.0 / 10.0;
        assert!((o.margin_efficiency - want).abs() < 1e-12);
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].reason.contains("premium_bid"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn what_if_replaces_reg_t_and_a_failure_falls_back_with_a_note() {
        let p = NakedPutParams::default();
        let ctx = FindContext {
            params: &p,
            open_positions: 0,
            today: d(2024, 1, 9),
            time: DateTime::<Utc>::UNIX_EPOCH,
        };
        let quotes = vec![quote(85, d(2024, 1, 19), 40, 45, 500)];
        let (mut found, _) = find(
            &ctx,
            &screened(),
            Price::from_cents(10_000),
            &chain(),
            &quotes,
        );
        let mut o = found.remove(0);
        o.set_what_if(Ok(Money::from_dollars(5_000)));
        assert_eq!(o.margin, Money::from_dollars(5_000));
        assert_eq!(o.margin_source, MarginSource::WhatIf);
        assert_eq!(
            o.decision.context["margin"]["what_if_minus_reg_t_cents"],
            json!(500_000 - 446_250)
        );
        o.set_what_if(Err("timed out".into()));
        assert_eq!(o.margin, o.margin_reg_t);
        assert_eq!(o.margin_what_if, None);
        assert!(
            o.decision.context["margin"]["note"]
                .as_str()
                .unwrap()
                .contains("timed out")
        );
    }

    #[test]
    fn rank_orders_by_efficiency_then_premium() {
        let p = NakedPutParams::default();
        let ctx = FindContext {
            params: &p,
            open_positions: 0,
            today: d(2024, 1, 9),
            time: DateTime::<Utc>::UNIX_EPOCH,
        };
        let e = d(2024, 1, 19);
        let quotes = vec![quote(80, e, 30, 35, 500), quote(85, e, 40, 45, 500)];
        let (mut found, _) = find(
            &ctx,
            &screened(),
            Price::from_cents(10_000),
            &chain(),
            &quotes,
        );
        assert_eq!(found.len(), 2);
        found[0].margin_efficiency = 0.5;
        found[1].margin_efficiency = 0.5;
        rank(&mut found);
        assert_eq!(found[0].premium, Price::from_cents(40));
        assert_eq!(found[0].rank, 1);
        assert_eq!(found[1].rank, 2);
        assert!(found[1].rank_explanation.contains("tied"));
    }

    #[test]
    fn bad_params_are_refused_with_every_problem() {
        let p = NakedPutParams {
            otm_min: 0.3,
            contracts: 0,
            ..NakedPutParams::default()
        };
        let e = check_params(&p).unwrap_err().to_string();
        assert!(e.contains("otm range") && e.contains("contracts"), "{e}");
        assert!(check_params(&NakedPutParams::default()).is_ok());
    }
}
