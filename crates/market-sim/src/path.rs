//! Intraday checkpoints between daily closes: the data has closes only, so
//! the path from one close to the next is modelled as a Brownian bridge in
//! log price, pinned at both closes. A share of the day's variance happens
//! overnight (the gap at the open); the rest is spread evenly over the
//! session. Draws come from a ChaCha8 stream seeded by (seed, symbol,
//! session), so a path does not depend on what else was asked before.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::chain::mix;

/// Variance-time of each checkpoint of a session: the open is at
/// `overnight_share`, the close at 1, the checkpoints between evenly spaced
/// in clock time (so in variance time too).
pub fn variance_times(checkpoints: usize, overnight_share: f64) -> Vec<f64> {
    let n = checkpoints.max(2);
    (0..n)
        .map(|k| overnight_share + (1.0 - overnight_share) * k as f64 / (n - 1) as f64)
        .collect()
}

/// Prices at each variance-time `v` (ascending, last = 1) between the
/// previous close `p0` and this close `p1`, with daily volatility
/// `daily_vol` (a fraction, e.g. 0.02). The last value is exactly `p1`.
pub fn bridge(
    p0: f64,
    p1: f64,
    daily_vol: f64,
    times: &[f64],
    seed: u64,
    symbol: usize,
    session: usize,
) -> Vec<f64> {
    let key = mix(mix(mix(seed) ^ symbol as u64) ^ session as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    let (x0, x1) = (p0.ln(), p1.ln());
    let mut x = x0;
    let mut t_prev = 0.0_f64;
    let mut out = Vec::with_capacity(times.len());
    for &t in times {
        let t = t.clamp(t_prev, 1.0);
        if t >= 1.0 {
            out.push(p1);
            x = x1;
            t_prev = 1.0;
            continue;
        }
        let remaining = 1.0 - t_prev;
        let dt = t - t_prev;
        let mean = x + (x1 - x) * dt / remaining;
        let var = daily_vol * daily_vol * dt * (1.0 - t) / remaining;
        let z: f64 = StandardNormal.sample(&mut rng);
        x = mean + var.max(0.0).sqrt() * z;
        out.push(x.exp());
        t_prev = t;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bridge_ends_exactly_at_the_close_and_is_reproducible() {
        let times = variance_times(27, 0.2);
        let a = bridge(100.0, 103.0, 0.02, &times, 7, 3, 1000);
        let b = bridge(100.0, 103.0, 0.02, &times, 7, 3, 1000);
        assert_eq!(a, b);
        assert_eq!(a.len(), 27);
        assert_eq!(*a.last().unwrap(), 103.0);
        assert!(a.iter().all(|p| p.is_finite() && *p > 0.0));
        let c = bridge(100.0, 103.0, 0.02, &times, 8, 3, 1000);
        assert_ne!(a, c, "another seed, another path");
    }

    #[test]
    fn test_bridge_variance_matches_the_brownian_bridge_at_midday() {
        // Var of log price at t is σ²·t·(1−t) for a bridge from 0 to 1.
        let times = [0.5, 1.0];
        let n = 4000;
        let mut sum_sq = 0.0;
        for session in 0..n {
            let p = bridge(100.0, 100.0, 0.02, &times, 1, 0, session);
            sum_sq += (p[0] / 100.0).ln().powi(2);
        }
        let var = sum_sq / n as f64;
        let expected = 0.02 * 0.02 * 0.25;
        assert!((var / expected - 1.0).abs() < 0.1, "{var} vs {expected}");
    }
}
