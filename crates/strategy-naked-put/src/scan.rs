//! The scan: screener and finder run against a broker, for `trader-cli
//! scan` and the engine.
//!
//! For every symbol of the universe: daily bars for the screen, of which
//! only completed sessions (dated before `today`) are used — a broker may
//! send a partial bar for the current session;
//! for every symbol passing it: the stock quote (the current price), the
//! option chain, quotes of the puts in the search range only, the finder,
//! and a what-if margin for every passing put. A failing request for one
//! symbol (or one what-if) never aborts the scan: it becomes a skip record
//! naming what was being done and the broker's answer (or, for a what-if,
//! a fall-back to Reg-T noted in the opportunity's record).

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    Broker, BrokerError, Contract, Criterion, DecisionKind, DecisionRecord, MarketData,
    OrderIntent, OrderPurpose, Price, Quote, Side, Symbol, TimeInForce,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::StrategyError;
use crate::finder::{FindContext, Opportunity, check_params, contracts_to_quote, find, rank};
use crate::indicators::sma;
use crate::params::NakedPutParams;
use crate::rules::is_uptrend;
use crate::screener::{ScreenInput, ScreenedUnderlying, screen};

/// Daily bars asked per symbol: the screen needs 50 closes; the rest is
/// slack for gaps.
pub const BARS: usize = 60;

/// What a scan found, and why everything else was left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub time: DateTime<Utc>,
    /// The date DTE is counted from.
    pub today: NaiveDate,
    /// The strategy's name (`params.name`).
    pub strategy: String,
    /// Passing puts, ranked best first ([`crate::finder::rank`]).
    pub opportunities: Vec<Opportunity>,
    /// A skip record for everything left out, with its reasons: symbols
    /// the screen refused, symbols whose data could not be read, and puts
    /// in the search range that failed an entry criterion.
    pub rejected: Vec<DecisionRecord>,
    /// Every symbol of the universe as the scan saw it, in universe order.
    pub underlyings: Vec<UnderlyingScan>,
    /// Symbols put through the screen (their bars were read).
    pub screened: usize,
    /// Symbols that passed the screen.
    pub passed_screen: usize,
    /// Option quotes received (only puts in the search range are asked).
    pub quoted: usize,
}

/// One symbol of the universe in a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderlyingScan {
    pub symbol: Symbol,
    pub sector: Option<String>,
    /// Closes read (at most [`BARS`]).
    pub closes: usize,
    /// Date of the last close read: the latest completed session.
    pub last_bar_date: Option<NaiveDate>,
    pub last_close: Option<f64>,
    pub sma20: Option<f64>,
    pub sma50: Option<f64>,
    /// last close > SMA20 > SMA50 (false without 50 closes).
    pub uptrend: bool,
    pub passed_screen: bool,
    /// The current price, for symbols that passed the screen and quoted.
    pub price: Option<Price>,
    /// Puts in the search range asked for, and quotes received.
    pub contracts_asked: usize,
    pub quotes: usize,
    pub opportunities: usize,
    /// The first request that failed for this symbol, if any.
    pub error: Option<String>,
}

/// The current price from a stock quote: the mid of a two-sided quote,
/// else the last trade.
pub fn current_price(quote: &Quote) -> Option<Price> {
    // The mid of a two-sided quote first: a last trade can be stale (on
    // IBKR, yesterday's close before the first trade of the day).
    quote
        .mid()
        .filter(|p| p.is_positive())
        .or_else(|| quote.last.filter(|p| p.is_positive()))
}

/// Runs the screen and the finder for `universe` (symbol, sector) against
/// `market` and `broker` (what-if margin only; nothing is ordered).
///
/// `open_positions` is the count of positions open now (the entry rule's
/// limit); `today` is the date DTE is counted from, and bars dated `today`
/// or later are dropped (only completed sessions enter the SMAs); `time`
/// stamps the records.
/// Fails only on parameters that cannot be used; every per-symbol failure
/// is a skip record in the report.
pub async fn scan<M: MarketData, B: Broker>(
    market: &M,
    broker: &B,
    params: &NakedPutParams,
    universe: &[(Symbol, Option<String>)],
    open_positions: i64,
    today: NaiveDate,
    time: DateTime<Utc>,
) -> Result<ScanReport, StrategyError> {
    check_params(params)?;
    let mut rejected = Vec::new();
    let mut underlyings = Vec::with_capacity(universe.len());
    let mut inputs = Vec::with_capacity(universe.len());
    for (symbol, sector) in universe {
        let mut row = UnderlyingScan {
            symbol: symbol.clone(),
            sector: sector.clone(),
            closes: 0,
            last_bar_date: None,
            last_close: None,
            sma20: None,
            sma50: None,
            uptrend: false,
            passed_screen: false,
            price: None,
            contracts_asked: 0,
            quotes: 0,
            opportunities: 0,
            error: None,
        };
        match market.daily_bars(symbol, today, BARS + 1).await {
            Ok(mut bars) => {
                // Only completed sessions: a bar dated today is at best a
                // partial one (IBKR sends it during the session), and a
                // close that has not happened must not enter the SMAs.
                bars.retain(|b| b.date < today);
                if bars.len() > BARS {
                    bars.drain(..bars.len() - BARS);
                }
                let closes: Vec<f64> = bars.iter().map(|b| b.close.to_f64()).collect();
                row.closes = closes.len();
                row.last_bar_date = bars.last().map(|b| b.date);
                row.last_close = closes.last().copied();
                row.sma20 = sma(&closes, 20);
                row.sma50 = sma(&closes, 50);
                row.uptrend = match (row.last_close, row.sma20, row.sma50) {
                    (Some(c), Some(a), Some(b)) => is_uptrend(c, a, b),
                    _ => false,
                };
                let last20 = &bars[bars.len().saturating_sub(20)..];
                let avg_volume = (last20.len() == 20 && last20.iter().all(|b| b.volume.is_some()))
                    .then(|| last20.iter().filter_map(|b| b.volume).sum::<i64>() as f64 / 20.0);
                inputs.push(ScreenInput {
                    symbol: symbol.clone(),
                    sector: sector.clone(),
                    closes,
                    avg_volume,
                });
            }
            Err(e) => {
                let err = StrategyError::broker(format!("reading the daily bars of {symbol}"), e);
                tracing::warn!(error = %err, "scan: symbol skipped");
                row.error = Some(err.to_string());
                rejected.push(broker_skip(time, symbol, "bars", &err));
            }
        }
        underlyings.push(row);
    }
    let screened = inputs.len();
    let (passed, screen_rejects) = screen(&inputs, params, time);
    rejected.extend(screen_rejects);
    let passed_screen = passed.len();
    let ctx = FindContext {
        params,
        open_positions,
        today,
        time,
    };
    let mut opportunities = Vec::new();
    let mut quoted = 0;
    for u in &passed {
        let outcome = find_for(market, broker, &ctx, u).await;
        quoted += outcome.quotes;
        if let Some(row) = underlyings.iter_mut().find(|r| r.symbol == u.symbol) {
            row.passed_screen = true;
            row.price = outcome.price;
            row.contracts_asked = outcome.contracts_asked;
            row.quotes = outcome.quotes;
            row.opportunities = outcome.found.len();
            row.error = outcome.error;
        }
        rejected.extend(outcome.skipped);
        opportunities.extend(outcome.found);
    }
    rank(&mut opportunities);
    Ok(ScanReport {
        time,
        today,
        strategy: params.name.clone(),
        opportunities,
        rejected,
        underlyings,
        screened,
        passed_screen,
        quoted,
    })
}

/// What the finder made of one screened symbol.
struct SymbolOutcome {
    price: Option<Price>,
    contracts_asked: usize,
    quotes: usize,
    found: Vec<Opportunity>,
    skipped: Vec<DecisionRecord>,
    error: Option<String>,
}

/// Quote, chain, quotes of the search range, finder and what-if margins of
/// one screened symbol; a failed request ends it with a skip record.
async fn find_for<M: MarketData, B: Broker>(
    market: &M,
    broker: &B,
    ctx: &FindContext<'_>,
    u: &ScreenedUnderlying,
) -> SymbolOutcome {
    let (params, time, symbol) = (ctx.params, ctx.time, &u.symbol);
    let mut out = SymbolOutcome {
        price: None,
        contracts_asked: 0,
        quotes: 0,
        found: Vec::new(),
        skipped: Vec::new(),
        error: None,
    };
    let fail = |mut out: SymbolOutcome, what: &str, stage: &str, e: BrokerError| {
        let err = StrategyError::broker(format!("{what} {symbol}"), e);
        tracing::warn!(error = %err, "scan: symbol skipped");
        out.error = Some(err.to_string());
        out.skipped.push(broker_skip(time, symbol, stage, &err));
        out
    };
    let price = match market.stock_quote(symbol).await {
        Ok(q) => match current_price(&q) {
            Some(p) => p,
            None => {
                let e = BrokerError::NoData(format!("{symbol}: a quote without a price"));
                return fail(out, "reading the quote of", "quote", e);
            }
        },
        Err(e) => return fail(out, "reading the quote of", "quote", e),
    };
    out.price = Some(price);
    let chain = match market.option_chain(symbol).await {
        Ok(c) => c,
        Err(e) => return fail(out, "reading the option chain of", "chain", e),
    };
    let wanted = contracts_to_quote(&chain, price, params, ctx.today);
    out.contracts_asked = wanted.len();
    if wanted.is_empty() {
        out.skipped.push(crate::finder::no_candidates_record(
            time,
            symbol,
            price,
            params,
            "listed",
            format!(
                "{} expirations, {} strikes listed",
                chain.expirations.len(),
                chain.strikes.len()
            ),
        ));
        return out;
    }
    let quotes = match market.option_quotes(&wanted).await {
        Ok(q) => q,
        Err(e) => return fail(out, "reading the option quotes of", "option_quotes", e),
    };
    out.quotes = quotes.len();
    let (mut found, skipped) = find(ctx, u, price, &chain, &quotes);
    out.skipped.extend(skipped);
    for o in &mut found {
        let intent = what_if_intent(o, time);
        let answer = match broker.what_if(&intent).await {
            Ok(m) => Ok(m.initial_margin_change),
            Err(e) => {
                let doing = format!("asking the what-if margin of {}", o.contract.key());
                tracing::warn!(error = %e, "{doing}");
                Err(StrategyError::broker(doing, e).to_string())
            }
        };
        o.set_what_if(answer);
    }
    out.found = found;
    out
}

/// The sell-to-open order a what-if is asked for: the opportunity's
/// contracts at the bid, a day order. Never placed.
pub fn what_if_intent(o: &Opportunity, time: DateTime<Utc>) -> OrderIntent {
    OrderIntent {
        order_ref: format!("whatif:{}:{}", o.contract.key(), time.timestamp()),
        contract: Contract::Option(o.contract.clone()),
        side: Side::Sell,
        quantity: o.contracts,
        limit_price: o.bid,
        time_in_force: TimeInForce::Day,
        purpose: OrderPurpose::Open,
        trade_id: None,
        created_at: time,
    }
}

fn broker_skip(
    time: DateTime<Utc>,
    symbol: &Symbol,
    stage: &str,
    err: &StrategyError,
) -> DecisionRecord {
    let text = err.to_string();
    DecisionRecord::new(
        time,
        DecisionKind::Skip,
        symbol.to_string(),
        "skip",
        text.clone(),
    )
    .with_criteria(vec![Criterion::text(
        "broker",
        text.clone(),
        "the broker answers",
        false,
    )])
    .with_context(json!({"stage": stage, "error": text}))
}
