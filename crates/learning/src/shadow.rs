//! Shadow trades: every opportunity the strategy evaluated — taken, skipped
//! by a rule, refused by risk, or priced under an experiment arm's other
//! value — followed to its outcome from market data as if one contract had
//! been sold at the bid and closed by the exit rules at the touch.
//!
//! Shadow outcomes are evidence, not money: they are stored apart from
//! trades (`shadow_trades`), reported apart (`trader-cli shadow`), never
//! enter P&L, and the experiment engine's adoption rule states how much of
//! them may count (real-trade evidence is always required).
//!
//! ## Following a shadow ([`follow`])
//! At each check (the engine follows open shadows hourly in market hours):
//! * expired (the expiration has passed): closed at the intrinsic value
//!   `max(strike − underlying, 0)` — `expired_worthless` at 0, else
//!   `assigned`;
//! * with an ask: closed at the ask when it is ≤ (1 − profit target) × the
//!   premium (`profit_target`), ≥ (1 − stop) × the premium (`stop_loss`),
//!   or when days to expiry ≤ the time exit (`time_exit`) — the same rules
//!   as real positions, filled at the touch like a marketable order;
//! * without an ask: only the time exit, at the intrinsic value.
//!
//! P&L is per contract without commissions: (premium − exit) × 100; ROI is
//! over the Reg-T margin at entry the caller computed.

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{ExitReason, Money, Price, ShadowOrigin, ShadowTrade, TradeStatus};
use serde::{Deserialize, Serialize};

/// The exit rules shadows are followed by (the strategy's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowRules {
    /// 0.5: close when the cost to close is ≤ 50% of the premium.
    pub profit_target: f64,
    /// −2.0: close when the cost to close is ≥ 3× the premium.
    pub stop_loss: f64,
    /// Close when days to expiry ≤ this.
    pub time_exit_dte: i64,
}

impl Default for ShadowRules {
    fn default() -> Self {
        ShadowRules {
            profit_target: 0.5,
            stop_loss: -2.0,
            time_exit_dte: 3,
        }
    }
}

/// Whether `shadow` exits now, why, and at what price per share.
/// `ask` is the put's ask now, `underlying` the stock's price, `today` the
/// exchange date.
pub fn follow(
    shadow: &ShadowTrade,
    ask: Option<Price>,
    underlying: Option<Price>,
    today: NaiveDate,
    rules: &ShadowRules,
) -> Option<(ExitReason, Price)> {
    if shadow.status == TradeStatus::Closed {
        return None;
    }
    let intrinsic = underlying.map(|u| Price::from_raw((shadow.strike.raw() - u.raw()).max(0)));
    let dte = (shadow.expiration - today).num_days();
    if dte < 0 {
        let value = intrinsic.unwrap_or(Price::ZERO);
        let reason = if value.raw() == 0 {
            ExitReason::ExpiredWorthless
        } else {
            ExitReason::Assigned
        };
        return Some((reason, value));
    }
    let premium = shadow.entry_premium.to_f64();
    match ask {
        Some(ask) => {
            let cost = ask.to_f64();
            let tol = 1e-9;
            if premium > 0.0 && cost <= (1.0 - rules.profit_target) * premium + tol {
                Some((ExitReason::ProfitTarget, ask))
            } else if premium > 0.0 && cost >= (1.0 - rules.stop_loss) * premium - tol {
                Some((ExitReason::StopLoss, ask))
            } else if dte <= rules.time_exit_dte {
                Some((ExitReason::TimeExit, ask))
            } else {
                None
            }
        }
        None if dte <= rules.time_exit_dte => {
            Some((ExitReason::TimeExit, intrinsic.unwrap_or(shadow.strike)))
        }
        None => None,
    }
}

/// Closes `shadow` at `price` for `reason` at `time`: P&L per contract
/// and ROI over its margin at entry.
pub fn close(shadow: &mut ShadowTrade, reason: ExitReason, price: Price, time: DateTime<Utc>) {
    let pl = shadow.entry_premium.notional(1, 100) - price.notional(1, 100);
    shadow.status = TradeStatus::Closed;
    shadow.exit_time = Some(time);
    shadow.exit_premium = Some(price);
    shadow.exit_reason = Some(reason);
    shadow.profit_loss = Some(pl);
    shadow.roi = (shadow.margin_at_entry.cents() > 0)
        .then(|| pl.cents() as f64 / shadow.margin_at_entry.cents() as f64);
}

/// A closed shadow trade as a one-contract [`Trade`] (for the pattern
/// detector's shadow evidence); `None` while it is open.
pub fn as_trade(s: &ShadowTrade) -> Option<core_domain::Trade> {
    if s.status != TradeStatus::Closed {
        return None;
    }
    let entry_date = s.created_at.date_naive();
    let mut t = core_domain::Trade::opened(
        s.shadow_id.clone(),
        s.symbol.clone(),
        s.strike,
        s.expiration,
        s.created_at,
        entry_date,
        s.entry_premium,
        1,
    );
    t.sector = s.sector.clone();
    t.entry_underlying_price = s.entry_underlying_price;
    t.margin_at_entry = s.margin_at_entry;
    t.otm_pct = s.otm_pct;
    t.dte = s.dte;
    t.vix_at_entry = s.vix_at_entry;
    t.experiment_id = s.experiment_id.clone();
    t.experiment_arm = s.experiment_arm.clone();
    t.is_experiment = s.experiment_id.is_some();
    t.exit_time = s.exit_time;
    t.exit_date = s.exit_time.map(|x| x.date_naive());
    t.exit_premium = s.exit_premium;
    t.exit_reason = s.exit_reason;
    t.profit_loss = s.profit_loss;
    t.roi = s.roi;
    t.status = TradeStatus::Closed;
    Some(t)
}

/// Shadow outcomes of one origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowSummary {
    /// Why these opportunities became shadows.
    pub origin: ShadowOrigin,
    /// Shadows of this origin, open and closed.
    pub count: usize,
    /// Those followed to an exit.
    pub closed: usize,
    /// Among closed: P&L > 0.
    pub win_rate: Option<f64>,
    /// Mean ROI over margin at entry among closed.
    pub mean_roi: Option<f64>,
    /// Hypothetical, one contract each, no commissions — never P&L.
    pub total_hypothetical: Money,
}

/// Outcomes by origin (taken, skipped, refused, arm), in that order; only
/// origins present are listed.
pub fn summarize(shadows: &[ShadowTrade]) -> Vec<ShadowSummary> {
    let origins = [
        ShadowOrigin::Taken,
        ShadowOrigin::Skipped,
        ShadowOrigin::Refused,
        ShadowOrigin::Arm,
    ];
    origins
        .iter()
        .filter_map(|o| {
            let all: Vec<&ShadowTrade> = shadows.iter().filter(|s| s.origin == *o).collect();
            if all.is_empty() {
                return None;
            }
            let closed: Vec<&&ShadowTrade> = all
                .iter()
                .filter(|s| s.status == TradeStatus::Closed)
                .collect();
            let n = closed.len();
            let wins = closed
                .iter()
                .filter(|s| s.profit_loss.is_some_and(|p| p.cents() > 0))
                .count();
            let rois: Vec<f64> = closed.iter().filter_map(|s| s.roi).collect();
            Some(ShadowSummary {
                origin: *o,
                count: all.len(),
                closed: n,
                win_rate: (n > 0).then(|| wins as f64 / n as f64),
                mean_roi: (!rois.is_empty()).then(|| rois.iter().sum::<f64>() / rois.len() as f64),
                total_hypothetical: closed
                    .iter()
                    .fold(Money::ZERO, |a, s| a + s.profit_loss.unwrap_or(Money::ZERO)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use core_domain::Symbol;

    fn shadow(premium: f64) -> ShadowTrade {
        ShadowTrade {
            shadow_id: "S-20200103-XYZ 2020-01-17 85.00 P".into(),
            created_at: DateTime::UNIX_EPOCH,
            symbol: Symbol::new("XYZ").unwrap(),
            sector: None,
            strike: Price::from_cents(8_500),
            expiration: NaiveDate::from_ymd_opt(2020, 1, 17).unwrap(),
            entry_premium: Price::from_f64(premium).unwrap(),
            entry_underlying_price: Price::from_cents(10_000),
            otm_pct: 0.15,
            dte: 14,
            margin_at_entry: Money::from_cents(170_000),
            origin: ShadowOrigin::Skipped,
            reason: "premium below the minimum".into(),
            experiment_id: None,
            experiment_arm: None,
            vix_at_entry: None,
            status: TradeStatus::Open,
            exit_time: None,
            exit_premium: None,
            exit_reason: None,
            profit_loss: None,
            roi: None,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 1, d).unwrap()
    }

    fn p(x: f64) -> Option<Price> {
        Some(Price::from_f64(x).unwrap())
    }

    #[test]
    fn exits_at_the_thresholds_not_before() {
        let s = shadow(0.40);
        let r = ShadowRules::default();
        assert_eq!(follow(&s, p(0.21), p(100.0), day(6), &r), None);
        assert_eq!(
            follow(&s, p(0.20), p(100.0), day(6), &r),
            Some((ExitReason::ProfitTarget, Price::from_cents(20)))
        );
        assert_eq!(follow(&s, p(1.19), p(100.0), day(6), &r), None);
        assert_eq!(
            follow(&s, p(1.20), p(100.0), day(6), &r).map(|x| x.0),
            Some(ExitReason::StopLoss)
        );
        // 17 − 14 = 3 days to expiry: the time exit.
        assert_eq!(
            follow(&s, p(0.30), p(100.0), day(14), &r).map(|x| x.0),
            Some(ExitReason::TimeExit)
        );
        assert_eq!(follow(&s, p(0.30), p(100.0), day(13), &r), None);
    }

    #[test]
    fn expiry_settles_at_intrinsic_value() {
        let s = shadow(0.40);
        let r = ShadowRules::default();
        assert_eq!(
            follow(&s, None, p(90.0), day(18), &r),
            Some((ExitReason::ExpiredWorthless, Price::ZERO))
        );
        assert_eq!(
            follow(&s, None, p(80.0), day(18), &r),
            Some((ExitReason::Assigned, Price::from_cents(500)))
        );
    }

    #[test]
    fn close_computes_hypothetical_pnl_and_roi_and_summary_groups_by_origin() {
        let mut a = shadow(0.40);
        close(
            &mut a,
            ExitReason::ProfitTarget,
            Price::from_cents(20),
            DateTime::UNIX_EPOCH,
        );
        assert_eq!(a.profit_loss, Some(Money::from_cents(2_000)));
        assert!((a.roi.unwrap() - 2_000.0 / 170_000.0).abs() < 1e-12);
        let mut b = shadow(0.40);
        b.origin = ShadowOrigin::Taken;
        close(
            &mut b,
            ExitReason::StopLoss,
            Price::from_cents(120),
            DateTime::UNIX_EPOCH,
        );
        let open = shadow(0.40);
        let s = summarize(&[a, b, open]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].origin, ShadowOrigin::Taken);
        assert_eq!(s[0].win_rate, Some(0.0));
        assert_eq!(s[1].origin, ShadowOrigin::Skipped);
        assert_eq!((s[1].count, s[1].closed), (2, 1));
        assert_eq!(s[1].total_hypothetical, Money::from_cents(2_000));
        assert!(follow(&s_closed(), p(0.1), None, day(6), &ShadowRules::default()).is_none());
    }

    fn s_closed() -> ShadowTrade {
        let mut s = shadow(0.40);
        close(
            &mut s,
            ExitReason::TimeExit,
            Price::from_cents(10),
            DateTime::UNIX_EPOCH,
        );
        s
    }
}
