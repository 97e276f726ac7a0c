//! The risk measures, as pure functions: historical VaR by full
//! revaluation, Pearson correlation, Reg-T margin of a short put, the
//! sizing loss, the daily change of net liquidation.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use core_domain::{Money, OptionContract, Price, Right, Symbol};
use pricing::{OptionInputs, european_price, short_put_margin, years_from_days};

use crate::RiskError;

/// Ratios are compared with this tolerance, so that a value that is at a
/// threshold up to float rounding counts as at it (as in the strategy's
/// rules): a "≤ limit" passes at `limit + 1e-9`, a breaker at
/// `threshold` trips at `threshold + 1e-9`.
pub const RATIO_TOLERANCE: f64 = 1e-9;

/// One short put to revalue.
#[derive(Debug, Clone, PartialEq)]
pub struct VarPosition {
    pub contract: OptionContract,
    pub contracts: i64,
    pub underlying_price: Price,
    pub implied_vol: f64,
}

/// One-day 95% value at risk of a book of short puts, by **historical
/// simulation with full revaluation**.
///
/// * Scenarios: the last `n = min(lookback, shortest history)` daily log
///   returns, aligned by position from the end (all series end on the same
///   session). Fewer than `min_history` is an error (the caller refuses).
/// * For each scenario every underlying moves to `S·e^r` with its own
///   return of that day; each put is repriced with Black-Scholes
///   ([`pricing::european_price`], the position's implied vol, no dividend,
///   `rate`) one calendar day closer to expiry, and compared with its model
///   value today (so the gap between the mark and the model is not counted
///   as a loss, and one day of time decay is a gain). Short position P&L =
///   −(value tomorrow − value today) × multiplier × contracts.
/// * VaR95 = the empirical 95th percentile of the loss: with losses sorted
///   ascending, the element at index ⌈0.95·n⌉ − 1 (for n = 250, the 13th
///   worst). Never negative.
pub fn historical_var_95(
    positions: &[VarPosition],
    returns: &BTreeMap<Symbol, Vec<f64>>,
    today: NaiveDate,
    rate: f64,
    lookback: usize,
    min_history: usize,
) -> Result<Money, RiskError> {
    if positions.is_empty() {
        return Ok(Money::ZERO);
    }
    let mut n = lookback;
    for p in positions {
        let series = returns
            .get(&p.contract.underlying)
            .ok_or_else(|| RiskError::MissingReturns(p.contract.underlying.clone()))?;
        if series.len() < min_history {
            return Err(RiskError::ShortHistory {
                symbol: p.contract.underlying.clone(),
                have: series.len(),
                need: min_history,
            });
        }
        if let Some(bad) = series.iter().find(|r| !r.is_finite()) {
            return Err(RiskError::InvalidInput(format!(
                "return {bad} of {} is not finite",
                p.contract.underlying
            )));
        }
        n = n.min(series.len());
    }
    if n < min_history || n == 0 {
        return Err(RiskError::InvalidInput(format!(
            "VaR needs at least {min_history} scenarios, lookback is {lookback}"
        )));
    }
    // Per position: (series tail, spot, inputs tomorrow, value today, size).
    let mut legs = Vec::with_capacity(positions.len());
    for p in positions {
        validate_position(p)?;
        let series = returns
            .get(&p.contract.underlying)
            .ok_or_else(|| RiskError::MissingReturns(p.contract.underlying.clone()))?;
        let tail = &series[series.len() - n..];
        let days = p.contract.days_to_expiry(today).max(0) as f64;
        let spot = p.underlying_price.to_f64();
        let today_inputs = OptionInputs {
            right: Right::Put,
            spot,
            strike: p.contract.strike.to_f64(),
            t_years: years_from_days(days),
            rate,
            dividend_yield: 0.0,
        };
        let value_today = european_price(&today_inputs, p.implied_vol)?;
        let tomorrow = OptionInputs {
            t_years: years_from_days((days - 1.0).max(0.0)),
            ..today_inputs
        };
        let size = (p.contracts * p.contract.multiplier) as f64;
        legs.push((tail, spot, tomorrow, value_today, size, p.implied_vol));
    }
    let mut losses = Vec::with_capacity(n);
    for day in 0..n {
        let mut loss = 0.0;
        for (tail, spot, tomorrow, value_today, size, vol) in &legs {
            let moved = OptionInputs {
                spot: spot * tail[day].exp(),
                ..*tomorrow
            };
            let value = european_price(&moved, *vol)?;
            // Short: a rise in the put's value is a loss.
            loss += (value - value_today) * size;
        }
        losses.push(loss);
    }
    losses.sort_by(f64::total_cmp);
    let index = ((0.95 * n as f64).ceil() as usize).clamp(1, n) - 1;
    let var = losses[index].max(0.0);
    Money::from_f64_dollars(var).map_err(|e| RiskError::InvalidInput(e.to_string()))
}

fn validate_position(p: &VarPosition) -> Result<(), RiskError> {
    if p.contract.right != Right::Put {
        return Err(RiskError::InvalidInput(format!(
            "{} is not a put",
            p.contract.key()
        )));
    }
    if p.contracts <= 0 {
        return Err(RiskError::InvalidInput(format!(
            "{}: {} contracts short, expected a positive count",
            p.contract.key(),
            p.contracts
        )));
    }
    if !p.underlying_price.is_positive() || !p.contract.strike.is_positive() {
        return Err(RiskError::InvalidInput(format!(
            "{}: underlying {} and strike must be positive",
            p.contract.key(),
            p.underlying_price
        )));
    }
    if !(p.implied_vol.is_finite() && p.implied_vol > 0.0) {
        return Err(RiskError::InvalidInput(format!(
            "{}: implied vol {} must be positive",
            p.contract.key(),
            p.implied_vol
        )));
    }
    Ok(())
}

/// Pearson correlation of the last `min(lookback, len a, len b)` returns of
/// two series aligned from the end. Errors when fewer than `min_history`
/// returns overlap or a series has no variance there.
pub fn correlation(
    symbol: &Symbol,
    a: &[f64],
    b: &[f64],
    lookback: usize,
    min_history: usize,
) -> Result<f64, RiskError> {
    let n = lookback.min(a.len()).min(b.len());
    if n < min_history.max(2) {
        return Err(RiskError::ShortHistory {
            symbol: symbol.clone(),
            have: n,
            need: min_history.max(2),
        });
    }
    pearson(&a[a.len() - n..], &b[b.len() - n..])
        .ok_or_else(|| RiskError::UndefinedCorrelation(symbol.clone()))
}

/// Pearson correlation of two equally long series; `None` when shorter
/// than 2, of different lengths, not finite, or without variance.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    let rho = sab / (saa * sbb).sqrt();
    (rho.is_finite() && saa > 0.0 && sbb > 0.0).then(|| rho.clamp(-1.0, 1.0))
}

/// Reg-T margin of `contracts` short puts at `premium`
/// ([`pricing::short_put_margin`]).
pub fn reg_t_margin(
    underlying: Price,
    strike: Price,
    premium: Price,
    contracts: i64,
) -> Result<Money, RiskError> {
    Ok(short_put_margin(underlying, strike, premium, contracts)?)
}

/// The loss a new short put is sized for: the strategy's stop closes it
/// when the cost to close reaches `stop_multiple` × the premium, so the
/// loss at the stop is `(stop_multiple − 1) × premium × multiplier ×
/// contracts` (2 × premium × 100 × contracts with the default stop of 3×),
/// rounded to the cent. Gaps through the stop are the exit manager's
/// concern (it enforces the dollar stop on the live position).
pub fn sizing_loss(premium: Price, contracts: i64, multiplier: i64, stop_multiple: f64) -> Money {
    let premium_total = premium.notional(contracts, multiplier);
    let cents = ((stop_multiple - 1.0) * premium_total.cents() as f64).round();
    Money::from_cents(cents as i64)
}

/// Change of net liquidation since the session's start as a fraction
/// (−0.02 is −2%). A start at or below zero gives −1 (fail closed).
pub fn daily_change(start: Money, now: Money) -> f64 {
    if start.cents() <= 0 {
        return -1.0;
    }
    (now.cents() - start.cents()) as f64 / start.cents() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    #[test]
    fn test_pearson_of_identical_series_is_one_and_of_opposite_is_minus_one() {
        let a = [0.01, -0.02, 0.03, 0.0, 0.005];
        let b: Vec<f64> = a.iter().map(|x| -2.0 * x).collect();
        assert!((pearson(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &b).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&a, &[0.0; 5]), None);
    }

    #[test]
    fn test_correlation_uses_only_the_most_recent_lookback() {
        // Old halves anti-correlated, recent halves identical.
        let a = [0.01, -0.01, 0.02, -0.02, 0.01, 0.03, -0.01, 0.02];
        let b = [-0.01, 0.01, -0.02, 0.02, 0.01, 0.03, -0.01, 0.02];
        let rho = correlation(&sym("A"), &a, &b, 4, 2).unwrap();
        assert!((rho - 1.0).abs() < 1e-12);
        assert!(correlation(&sym("A"), &a, &b, 4, 5).is_err());
    }

    #[test]
    fn test_sizing_loss_is_twice_the_premium_at_a_3x_stop() {
        // 5 contracts at $0.50: premium $250, loss at the stop $500.
        assert_eq!(
            sizing_loss(Price::from_cents(50), 5, 100, 3.0),
            Money::from_dollars(500)
        );
    }

    #[test]
    fn test_var_of_a_book_is_zero_when_every_scenario_gains() {
        let contract = OptionContract::us(
            sym("KO"),
            Right::Put,
            Price::from_cents(5_000),
            NaiveDate::from_ymd_opt(2024, 1, 19).unwrap(),
        );
        let p = VarPosition {
            contract,
            contracts: 1,
            underlying_price: Price::from_cents(6_000),
            implied_vol: 0.2,
        };
        let mut returns = BTreeMap::new();
        returns.insert(sym("KO"), vec![0.01; 30]);
        let today = NaiveDate::from_ymd_opt(2024, 1, 9).unwrap();
        let var =
            historical_var_95(std::slice::from_ref(&p), &returns, today, 0.0, 250, 20).unwrap();
        assert_eq!(var, Money::ZERO);
        // A crash in every scenario is a loss of at least the intrinsic
        // value gained: 60 → 40 puts the $50 put $10 in the money.
        returns.insert(sym("KO"), vec![(40.0f64 / 60.0).ln(); 30]);
        let var = historical_var_95(&[p], &returns, today, 0.0, 250, 20).unwrap();
        assert!(var >= Money::from_dollars(999), "{var}");
    }
}
