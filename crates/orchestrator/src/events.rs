//! The event detector: what happened since the last cycle that the engine
//! (and the analyst) should know about.
//!
//! | event | rule |
//! |---|---|
//! | VIX spike | the VIX close rose ≥ `vix_spike_pct` (20%) over the previous close, or crossed above `vix_high` (30) |
//! | regime shift | the regime of the last completed session differs from the one before: index above/below its 200-session average (bull/bear) × VIX above/below `vix_elevated` (20) |
//! | profit target, stop, time exit, loss limit, expiry, assignment | a trade closed with that reason |
//! | system error | a broker error event, a failed broker call, a margin deficiency |
//!
//! Pure: it is given the closes and the trade changes; the engine fetches
//! them.

use chrono::{DateTime, Utc};
use core_domain::{ExitReason, MarketRegime, Trade};
use serde::{Deserialize, Serialize};

/// Thresholds of the detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorParams {
    pub vix_spike_pct: f64,
    pub vix_high: f64,
    pub vix_elevated: f64,
    pub regime_average_sessions: usize,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            vix_spike_pct: 0.20,
            vix_high: 30.0,
            vix_elevated: 20.0,
            regime_average_sessions: 200,
        }
    }
}

/// Something the engine noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    VixSpike {
        time: DateTime<Utc>,
        vix: f64,
        previous: f64,
    },
    RegimeShift {
        time: DateTime<Utc>,
        from: MarketRegime,
        to: MarketRegime,
    },
    TradeClosed {
        time: DateTime<Utc>,
        trade_id: String,
        reason: ExitReason,
        profit_loss_cents: i64,
    },
    SystemError {
        time: DateTime<Utc>,
        what: String,
    },
}

impl EngineEvent {
    /// A short name for the event kind (`vix_spike`, `regime_shift`,
    /// `profit_target`, `stop_loss`, ..., `system_error`).
    pub fn kind(&self) -> &str {
        match self {
            EngineEvent::VixSpike { .. } => "vix_spike",
            EngineEvent::RegimeShift { .. } => "regime_shift",
            EngineEvent::TradeClosed { reason, .. } => reason.as_str(),
            EngineEvent::SystemError { .. } => "system_error",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            EngineEvent::VixSpike { vix, previous, .. } => {
                format!("VIX spike: {previous:.2} -> {vix:.2}")
            }
            EngineEvent::RegimeShift { from, to, .. } => format!("regime shift: {from} -> {to}"),
            EngineEvent::TradeClosed {
                trade_id,
                reason,
                profit_loss_cents,
                ..
            } => format!(
                "{trade_id} closed ({reason}), P&L {:.2}",
                *profit_loss_cents as f64 / 100.0
            ),
            EngineEvent::SystemError { what, .. } => format!("system error: {what}"),
        }
    }
}

/// The market regime from the index closes (oldest first) and the VIX
/// (latest close), as recorded with each trade.
pub fn regime(index_closes: &[f64], vix: Option<f64>, p: &DetectorParams) -> MarketRegime {
    let n = p.regime_average_sessions;
    if n == 0 || index_closes.len() < n {
        return MarketRegime::Unknown;
    }
    let window = &index_closes[index_closes.len() - n..];
    let avg = window.iter().sum::<f64>() / n as f64;
    let Some(last) = index_closes.last().copied() else {
        return MarketRegime::Unknown;
    };
    let bull = last >= avg;
    // Without a VIX, volatility is judged normal.
    let elevated = vix.is_some_and(|v| v >= p.vix_elevated);
    match (bull, elevated) {
        (true, false) => MarketRegime::BullQuiet,
        (true, true) => MarketRegime::BullVolatile,
        (false, false) => MarketRegime::BearQuiet,
        (false, true) => MarketRegime::BearVolatile,
    }
}

/// Market events from the index and VIX closes of completed sessions
/// (oldest first), checked once per session.
pub fn market_events(
    time: DateTime<Utc>,
    index_closes: &[f64],
    vix_closes: &[f64],
    p: &DetectorParams,
) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    if let [.., previous, vix] = vix_closes {
        let (previous, vix) = (*previous, *vix);
        // Ratios compared with a 1e-9 tolerance (18/15 − 1 is 0.19999…).
        let spiked = previous > 0.0 && vix / previous - 1.0 >= p.vix_spike_pct - 1e-9;
        let crossed = previous < p.vix_high && vix >= p.vix_high;
        if spiked || crossed {
            out.push(EngineEvent::VixSpike {
                time,
                vix,
                previous,
            });
        }
    }
    if index_closes.len() > p.regime_average_sessions {
        let now = regime(index_closes, vix_closes.last().copied(), p);
        let before_vix = vix_closes
            .len()
            .checked_sub(2)
            .and_then(|i| vix_closes.get(i))
            .copied();
        let before = regime(&index_closes[..index_closes.len() - 1], before_vix, p);
        if now != before {
            out.push(EngineEvent::RegimeShift {
                time,
                from: before,
                to: now,
            });
        }
    }
    out
}

/// The event of a closed trade.
pub fn trade_closed(time: DateTime<Utc>, trade: &Trade) -> Option<EngineEvent> {
    Some(EngineEvent::TradeClosed {
        time,
        trade_id: trade.trade_id.clone(),
        reason: trade.exit_reason?,
        profit_loss_cents: trade.profit_loss.map_or(0, |m| m.cents()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> DetectorParams {
        DetectorParams {
            regime_average_sessions: 5,
            ..DetectorParams::default()
        }
    }

    #[test]
    fn vix_spike_at_the_threshold_not_below() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        assert!(market_events(t, &[], &[15.0, 17.99], &p()).is_empty());
        assert_eq!(market_events(t, &[], &[15.0, 18.0], &p()).len(), 1);
        // Crossing 30 counts even with a small rise.
        assert_eq!(market_events(t, &[], &[29.5, 30.0], &p()).len(), 1);
    }

    #[test]
    fn regime_follows_the_average_and_the_vix() {
        let up = [1.0, 2.0, 3.0, 4.0, 5.0];
        let down = [5.0, 4.0, 3.0, 2.0, 1.0];
        assert_eq!(regime(&up, Some(12.0), &p()), MarketRegime::BullQuiet);
        assert_eq!(regime(&up, Some(25.0), &p()), MarketRegime::BullVolatile);
        assert_eq!(regime(&down, None, &p()), MarketRegime::BearQuiet);
        assert_eq!(regime(&down[..4], None, &p()), MarketRegime::Unknown);
    }

    #[test]
    fn regime_shift_when_the_index_falls_below_its_average() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let closes = [10.0, 10.0, 10.0, 10.0, 10.0, 10.5, 9.0];
        let events = market_events(t, &closes, &[], &p());
        assert!(
            events.iter().any(|e| matches!(
                e,
                EngineEvent::RegimeShift {
                    to: MarketRegime::BearQuiet,
                    ..
                }
            )),
            "{events:?}"
        );
    }
}
