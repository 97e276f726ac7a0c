//! Real-time or delayed market data, and folding ticks into a quote.
//!
//! Paper accounts and accounts without market-data subscriptions get
//! advisories 10089 / 10167 / 10168 / 354 for real-time requests. The
//! adapter then switches the session to delayed data (type 3), remembers
//! the choice, and re-sends it after every reconnect (TWS forgets it).
//! Delayed data arrives with its own tick types (66–76 for prices and
//! sizes, 80–83 for option computations); [`QuoteAccumulator`] accepts
//! both sets.

use chrono::{DateTime, Utc};
use core_domain::{Contract, Greeks, Price, Quote};

use crate::contracts::{price, quantity};
use crate::errors::DELAYED_DATA_ADVISORIES;

/// Which market data the session asks TWS for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarketDataKind {
    /// Real-time (type 1); needs subscriptions.
    #[default]
    Realtime,
    /// Frozen (type 2): the last real-time values after the close.
    Frozen,
    /// Delayed (type 3): 15–20 minutes late, free.
    Delayed,
    /// Delayed frozen (type 4).
    DelayedFrozen,
}

impl MarketDataKind {
    /// IBKR's number for the type.
    pub fn code(self) -> i32 {
        match self {
            MarketDataKind::Realtime => 1,
            MarketDataKind::Frozen => 2,
            MarketDataKind::Delayed => 3,
            MarketDataKind::DelayedFrozen => 4,
        }
    }

    pub(crate) fn to_ib(self) -> ibapi::market_data::MarketDataType {
        use ibapi::market_data::MarketDataType as T;
        match self {
            MarketDataKind::Realtime => T::Realtime,
            MarketDataKind::Frozen => T::Frozen,
            MarketDataKind::Delayed => T::Delayed,
            MarketDataKind::DelayedFrozen => T::DelayedFrozen,
        }
    }

    /// Parses a config value: "realtime", "frozen", "delayed",
    /// "delayed_frozen" (or the numbers 1–4).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "realtime" | "real_time" | "live" | "1" => Some(MarketDataKind::Realtime),
            "frozen" | "2" => Some(MarketDataKind::Frozen),
            "delayed" | "3" => Some(MarketDataKind::Delayed),
            "delayed_frozen" | "4" => Some(MarketDataKind::DelayedFrozen),
            _ => None,
        }
    }

    fn is_delayed(self) -> bool {
        matches!(
            self,
            MarketDataKind::Delayed | MarketDataKind::DelayedFrozen
        )
    }
}

/// The session's market-data type: what was asked for and what is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketDataMode {
    preference: MarketDataKind,
    current: MarketDataKind,
}

impl MarketDataMode {
    pub fn new(preference: MarketDataKind) -> Self {
        MarketDataMode {
            preference,
            current: preference,
        }
    }

    /// The type to (re-)send to TWS after a (re)connect.
    pub fn current(&self) -> MarketDataKind {
        self.current
    }

    pub fn preference(&self) -> MarketDataKind {
        self.preference
    }

    /// The decision on an error code received for a market-data request:
    /// `Some(kind)` when the session must switch to `kind` (and the request
    /// be retried), `None` when nothing changes. Only a real-time or
    /// frozen session falls back, and only once: a delayed session that
    /// still gets advisories has no data for the contract.
    pub fn on_code(&mut self, code: i32) -> Option<MarketDataKind> {
        if !DELAYED_DATA_ADVISORIES.contains(&code) || self.current.is_delayed() {
            return None;
        }
        self.current = match self.current {
            MarketDataKind::Frozen => MarketDataKind::DelayedFrozen,
            _ => MarketDataKind::Delayed,
        };
        Some(self.current)
    }

    /// TWS reports the type a subscription actually gets (a
    /// `MarketDataType` tick); remember a delayed one so later requests
    /// and reconnects use it.
    pub fn on_reported(&mut self, kind: MarketDataKind) {
        if kind.is_delayed() && !self.current.is_delayed() {
            self.current = kind;
        }
    }
}

/// A tick, reduced to what the adapter reads (kept free of `ibapi` types so
/// the folding is testable on its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tick {
    Price { tick_type: i32, value: f64 },
    Size { tick_type: i32, value: f64 },
    Option(OptionTick),
}

/// An option computation tick (types 10–13 real-time, 80–83 delayed).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OptionTick {
    pub tick_type: i32,
    pub implied_vol: Option<f64>,
    pub delta: Option<f64>,
    pub gamma: Option<f64>,
    pub vega: Option<f64>,
    pub theta: Option<f64>,
    pub underlying_price: Option<f64>,
}

/// Converts an `ibapi` tick; ticks the adapter does not read are `None`.
pub(crate) fn from_ib(tick: &ibapi::market_data::realtime::TickTypes) -> Vec<Tick> {
    use ibapi::market_data::realtime::TickTypes as T;
    match tick {
        T::Price(p) => vec![Tick::Price {
            tick_type: p.tick_type as i32,
            value: p.price,
        }],
        T::Size(s) => vec![Tick::Size {
            tick_type: s.tick_type as i32,
            value: s.size,
        }],
        T::PriceSize(ps) => vec![
            Tick::Price {
                tick_type: ps.price_tick_type as i32,
                value: ps.price,
            },
            Tick::Size {
                tick_type: ps.size_tick_type as i32,
                value: ps.size,
            },
        ],
        T::OptionComputation(oc) => vec![Tick::Option(OptionTick {
            tick_type: oc.field as i32,
            implied_vol: oc.implied_volatility,
            delta: oc.delta,
            gamma: oc.gamma,
            vega: oc.vega,
            theta: oc.theta,
            underlying_price: oc.underlying_price,
        })],
        _ => Vec::new(),
    }
}

/// Folds the ticks of one snapshot into a [`Quote`]. Real-time and delayed
/// tick types both count; the model option computation (13 / 83) wins over
/// bid/ask/last computations for greeks, and a bid/ask computation is used
/// when no model one arrives.
#[derive(Debug, Clone, Default)]
pub struct QuoteAccumulator {
    bid: Option<Price>,
    ask: Option<Price>,
    last: Option<Price>,
    close: Option<Price>,
    bid_size: Option<i64>,
    ask_size: Option<i64>,
    volume: Option<i64>,
    open_interest: Option<i64>,
    model: Option<OptionTick>,
    other: Option<OptionTick>,
    ticks: usize,
}

impl QuoteAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, tick: Tick) {
        self.ticks += 1;
        match tick {
            Tick::Price { tick_type, value } => {
                let p = price(value).filter(|p| p.raw() > 0 || tick_type == 1 || tick_type == 66);
                match tick_type {
                    1 | 66 => self.bid = p.or(self.bid),
                    2 | 67 => self.ask = p.or(self.ask),
                    4 | 68 => self.last = p.or(self.last),
                    9 | 75 => self.close = p.or(self.close),
                    _ => {}
                }
            }
            Tick::Size { tick_type, value } => {
                let q = quantity(value).filter(|q| *q >= 0);
                match tick_type {
                    0 | 69 => self.bid_size = q.or(self.bid_size),
                    3 | 70 => self.ask_size = q.or(self.ask_size),
                    8 | 74 => self.volume = q.or(self.volume),
                    22 | 27 | 28 | 86 => self.open_interest = q.or(self.open_interest),
                    _ => {}
                }
            }
            Tick::Option(o) => match o.tick_type {
                13 | 83 => self.model = Some(o),
                10..=12 | 80..=82
                    if self.other.is_none() || o.tick_type == 10 || o.tick_type == 80 =>
                {
                    self.other = Some(o)
                }
                _ => {}
            },
        }
    }

    /// Whether an option's streaming request has what a snapshot would
    /// give plus its open interest: bid, ask, the model computation.
    pub fn option_priced(&self) -> bool {
        self.bid.is_some() && self.ask.is_some() && self.model.is_some()
    }

    /// Whether the open interest (generic tick 101) arrived.
    pub fn has_open_interest(&self) -> bool {
        self.open_interest.is_some()
    }

    /// Whether any price arrived (a contract with none is left out).
    pub fn has_price(&self) -> bool {
        self.bid.is_some() || self.ask.is_some() || self.last.is_some()
    }

    pub fn into_quote(self, contract: Contract, time: DateTime<Utc>) -> Quote {
        let computation = self.model.or(self.other);
        let greeks = computation.and_then(|c| {
            let delta = c.delta.filter(|v| v.is_finite() && v.abs() <= 1.0)?;
            Some(Greeks {
                delta,
                gamma: finite(c.gamma).unwrap_or(0.0),
                // IBKR: vega per 1 vol point, theta per day; the domain
                // keeps vega per 1.00 of vol and theta per year.
                vega: finite(c.vega).map(|v| v * 100.0).unwrap_or(0.0),
                theta: finite(c.theta).map(|t| t * 365.0).unwrap_or(0.0),
                rho: 0.0,
            })
        });
        let implied_vol = computation
            .and_then(|c| finite(c.implied_vol))
            .filter(|v| *v >= 0.0 && *v < 100.0);
        let underlying_price = computation.and_then(|c| c.underlying_price).and_then(price);
        Quote {
            contract,
            bid: self.bid,
            ask: self.ask,
            last: self.last.or(self.close),
            bid_size: self.bid_size,
            ask_size: self.ask_size,
            time,
            implied_vol,
            greeks,
            underlying_price,
            open_interest: self.open_interest,
            volume: self.volume,
        }
    }
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && x.abs() < 1e300)
}

/// Maps the `MarketDataType` a subscription reports.
pub(crate) fn kind_from_ib(t: ibapi::market_data::MarketDataType) -> Option<MarketDataKind> {
    use ibapi::market_data::MarketDataType as T;
    match t {
        T::Realtime => Some(MarketDataKind::Realtime),
        T::Frozen => Some(MarketDataKind::Frozen),
        T::Delayed => Some(MarketDataKind::Delayed),
        T::DelayedFrozen => Some(MarketDataKind::DelayedFrozen),
        T::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_domain::{StockContract, Symbol};

    #[test]
    fn realtime_falls_back_to_delayed_on_each_advisory() {
        for code in [10089, 10167, 10168, 354] {
            let mut mode = MarketDataMode::new(MarketDataKind::Realtime);
            assert_eq!(mode.on_code(code), Some(MarketDataKind::Delayed), "{code}");
            assert_eq!(mode.current(), MarketDataKind::Delayed);
            assert_eq!(mode.on_code(code), None, "falls back once");
            assert_eq!(mode.preference(), MarketDataKind::Realtime);
        }
    }

    #[test]
    fn other_codes_do_not_switch() {
        let mut mode = MarketDataMode::new(MarketDataKind::Realtime);
        for code in [200, 2104, 162, 321, 10197] {
            assert_eq!(mode.on_code(code), None);
        }
        assert_eq!(mode.current(), MarketDataKind::Realtime);
    }

    #[test]
    fn frozen_falls_back_to_delayed_frozen() {
        let mut mode = MarketDataMode::new(MarketDataKind::Frozen);
        assert_eq!(mode.on_code(10167), Some(MarketDataKind::DelayedFrozen));
    }

    #[test]
    fn a_delayed_preference_never_switches() {
        let mut mode = MarketDataMode::new(MarketDataKind::Delayed);
        assert_eq!(mode.on_code(10089), None);
        assert_eq!(mode.current().code(), 3);
    }

    #[test]
    fn reported_delayed_type_is_remembered() {
        let mut mode = MarketDataMode::new(MarketDataKind::Realtime);
        mode.on_reported(MarketDataKind::Realtime);
        assert_eq!(mode.current(), MarketDataKind::Realtime);
        mode.on_reported(MarketDataKind::Delayed);
        assert_eq!(mode.current(), MarketDataKind::Delayed);
    }

    #[test]
    fn parse_config_values() {
        assert_eq!(
            MarketDataKind::parse("realtime"),
            Some(MarketDataKind::Realtime)
        );
        assert_eq!(
            MarketDataKind::parse("Delayed"),
            Some(MarketDataKind::Delayed)
        );
        assert_eq!(
            MarketDataKind::parse("delayed-frozen"),
            Some(MarketDataKind::DelayedFrozen)
        );
        assert_eq!(MarketDataKind::parse("3"), Some(MarketDataKind::Delayed));
        assert_eq!(MarketDataKind::parse("fast"), None);
    }

    fn stock() -> Result<Contract, core_domain::DomainError> {
        Ok(Contract::Stock(StockContract::us(Symbol::new("AAPL")?)))
    }

    #[test]
    fn delayed_ticks_fill_a_quote_like_realtime_ones() -> Result<(), core_domain::DomainError> {
        let now = Utc::now();
        let mut rt = QuoteAccumulator::new();
        let mut dl = QuoteAccumulator::new();
        for (r, d, v) in [(1, 66, 1.10), (2, 67, 1.20), (4, 68, 1.15)] {
            rt.push(Tick::Price {
                tick_type: r,
                value: v,
            });
            dl.push(Tick::Price {
                tick_type: d,
                value: v,
            });
        }
        for (r, d, v) in [(0, 69, 10.0), (3, 70, 12.0)] {
            rt.push(Tick::Size {
                tick_type: r,
                value: v,
            });
            dl.push(Tick::Size {
                tick_type: d,
                value: v,
            });
        }
        let oc = |t| {
            Tick::Option(OptionTick {
                tick_type: t,
                implied_vol: Some(0.25),
                delta: Some(-0.3),
                gamma: Some(0.05),
                vega: Some(0.12),
                theta: Some(-0.02),
                underlying_price: Some(150.0),
            })
        };
        rt.push(oc(13));
        dl.push(oc(83));
        let a = rt.into_quote(stock()?, now);
        let b = dl.into_quote(stock()?, now);
        assert_eq!(a, b);
        assert_eq!(a.bid, Some(Price::from_cents(110)));
        assert_eq!(a.ask, Some(Price::from_cents(120)));
        assert_eq!(a.bid_size, Some(10));
        assert_eq!(a.implied_vol, Some(0.25));
        let g = a
            .greeks
            .ok_or(core_domain::DomainError::Invalid("greeks".into()))?;
        assert_eq!(g.delta, -0.3);
        assert!((g.vega - 12.0).abs() < 1e-9);
        assert!((g.theta + 7.3).abs() < 1e-9);
        assert_eq!(a.underlying_price, Some(Price::from_cents(15_000)));
        Ok(())
    }

    #[test]
    fn model_computation_wins_and_unset_values_are_dropped() -> Result<(), core_domain::DomainError>
    {
        let mut acc = QuoteAccumulator::new();
        acc.push(Tick::Option(OptionTick {
            tick_type: 13,
            implied_vol: Some(0.3),
            delta: Some(-0.2),
            ..OptionTick::default()
        }));
        acc.push(Tick::Option(OptionTick {
            tick_type: 10,
            implied_vol: Some(0.9),
            delta: Some(-0.9),
            ..OptionTick::default()
        }));
        acc.push(Tick::Price {
            tick_type: 2,
            value: -1.0,
        });
        assert!(!acc.has_price(), "IB's -1 is no price");
        let q = acc.into_quote(stock()?, Utc::now());
        assert_eq!(q.implied_vol, Some(0.3));
        assert_eq!(q.ask, None);
        Ok(())
    }

    #[test]
    fn a_zero_bid_is_a_price_for_worthless_options() {
        let mut acc = QuoteAccumulator::new();
        acc.push(Tick::Price {
            tick_type: 1,
            value: 0.0,
        });
        assert!(acc.has_price());
    }
}
