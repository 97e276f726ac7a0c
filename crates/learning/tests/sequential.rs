//! The sequential test under continuous monitoring, by seeded simulation.
//!
//! Each simulated experiment is a stream of observations that arrive one at
//! a time into group `a` or `b`; after every observation the experiment is
//! checked, as the learning loop checks its experiments every cycle. A
//! stream counts as a false positive if any look rejects a true null.
//!
//! Invariants:
//! * under the null (normal, unequal-variance with unequal allocation, and
//!   skewed put-like returns) the mSPRT rejects at most α + 0.01 of the
//!   streams (0.01 is two standard errors of a rate near 0.05 over 2,000
//!   streams);
//! * plain Welch t-tests at the same looks reject far more than α (this is
//!   what the sequential test exists to prevent);
//! * a real effect is still found;
//! * [`SequentialMonitor`] agrees with the stateless function, its p-value
//!   never rises, and it survives a serde round trip mid-stream.
//!
//! Sizes: 2,000 streams of 200 observations under the normal null (400,000
//! looks, a few seconds in a debug build); 1,000 streams for the other
//! nulls, whose job is to show the rate is not far off, not to pin it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use learning::stats::{
    SequentialConfig, SequentialDecision, SequentialMonitor, sequential_test, welch_t_test,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const ALPHA: f64 = 0.05;
const MARGIN: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    A,
    B,
}

/// How observations are assigned to the groups.
#[derive(Debug, Clone, Copy)]
enum Allocation {
    /// a, b, a, b, …
    Alternate,
    /// Each observation goes to `a` with this probability.
    Random(f64),
}

#[derive(Debug)]
struct Rates {
    /// Share of streams where the mSPRT rejected at some look.
    sequential: f64,
    /// Share of streams where a plain Welch t-test had p < α at some look.
    repeated_t: f64,
    /// Median number of observations before the mSPRT rejected (among
    /// rejecting streams).
    median_stop: Option<usize>,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A short put's ROI: usually a small gain, sometimes a large loss.
fn put_like(rng: &mut ChaCha8Rng) -> f64 {
    if rng.random::<f64>() < 0.85 {
        0.3 + 0.05 * normal(rng)
    } else {
        -1.5 + 0.5 * normal(rng)
    }
}

fn simulate<F>(
    streams: usize,
    observations: usize,
    seed: u64,
    allocation: Allocation,
    draw: F,
) -> Rates
where
    F: Fn(&mut ChaCha8Rng, Group) -> f64,
{
    let config = SequentialConfig {
        alpha: ALPHA,
        ..SequentialConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut sequential, mut repeated_t) = (0_usize, 0_usize);
    let mut stops = Vec::new();
    for _ in 0..streams {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut seq_rejected, mut t_rejected) = (false, false);
        for i in 0..observations {
            let group = match allocation {
                Allocation::Alternate if i % 2 == 0 => Group::A,
                Allocation::Alternate => Group::B,
                Allocation::Random(p) if rng.random::<f64>() < p => Group::A,
                Allocation::Random(_) => Group::B,
            };
            let x = draw(&mut rng, group);
            match group {
                Group::A => a.push(x),
                Group::B => b.push(x),
            }
            if !seq_rejected
                && sequential_test(&a, &b, &config).unwrap().decision
                    == SequentialDecision::RejectNull
            {
                seq_rejected = true;
                stops.push(i + 1);
            }
            if !t_rejected && a.len() >= 2 && b.len() >= 2 {
                t_rejected = welch_t_test(&a, &b).unwrap().p_value < ALPHA;
            }
            if seq_rejected && t_rejected {
                break;
            }
        }
        sequential += usize::from(seq_rejected);
        repeated_t += usize::from(t_rejected);
    }
    stops.sort_unstable();
    Rates {
        sequential: sequential as f64 / streams as f64,
        repeated_t: repeated_t as f64 / streams as f64,
        median_stop: stops.get(stops.len() / 2).copied(),
    }
}

#[test]
fn normal_null_checked_after_every_observation_keeps_false_positives_below_alpha() {
    let rates = simulate(2_000, 200, 20_261_127, Allocation::Alternate, |rng, _| {
        normal(rng)
    });
    println!("normal null, 2,000 streams x 200 looks: {rates:?}");
    assert!(
        rates.sequential <= ALPHA + MARGIN,
        "mSPRT false-positive rate {} above {}",
        rates.sequential,
        ALPHA + MARGIN
    );
    assert!(
        rates.repeated_t > 3.0 * ALPHA,
        "repeated t-tests should inflate the false-positive rate, got {}",
        rates.repeated_t
    );
}

#[test]
fn unequal_variances_and_allocation_keep_false_positives_below_alpha() {
    // equal means; b is three times as noisy and gets 70% of the trades
    let rates = simulate(
        1_000,
        200,
        7,
        Allocation::Random(0.3),
        |rng, group| match group {
            Group::A => normal(rng),
            Group::B => 3.0 * normal(rng),
        },
    );
    println!("unequal variances, 1,000 streams x 200 looks: {rates:?}");
    assert!(rates.sequential <= ALPHA + MARGIN, "{rates:?}");
    assert!(rates.repeated_t > 3.0 * ALPHA, "{rates:?}");
}

#[test]
fn skewed_put_like_returns_keep_false_positives_below_alpha() {
    let rates = simulate(1_000, 200, 11, Allocation::Alternate, |rng, _| {
        put_like(rng)
    });
    println!("put-like null, 1,000 streams x 200 looks: {rates:?}");
    assert!(rates.sequential <= ALPHA + MARGIN, "{rates:?}");
}

#[test]
fn a_real_effect_is_found() {
    // a is better by 0.8 standard deviations
    let rates = simulate(
        200,
        200,
        3,
        Allocation::Alternate,
        |rng, group| match group {
            Group::A => 0.8 + normal(rng),
            Group::B => normal(rng),
        },
    );
    println!("effect d = 0.8, 200 streams x 200 looks: {rates:?}");
    assert!(rates.sequential >= 0.95, "{rates:?}");
    assert!(rates.median_stop.is_some_and(|n| n < 100), "{rates:?}");
}

#[test]
fn monitor_agrees_with_the_stateless_test_and_survives_a_restart() {
    let config = SequentialConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut monitor = SequentialMonitor::new(config).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut first_reject = None;
    let mut last_p = 1.0;
    for look in 1..=120_u64 {
        a.push(0.4 + normal(&mut rng));
        b.push(normal(&mut rng));
        if look == 60 {
            // the engine persists its working memory and restarts
            let saved = serde_json::to_string(&monitor).unwrap();
            monitor = serde_json::from_str(&saved).unwrap();
        }
        let stateless = sequential_test(&a, &b, &config).unwrap();
        let seen = monitor.look(&a, &b).unwrap();
        assert_eq!(seen, stateless);
        if stateless.decision == SequentialDecision::RejectNull && first_reject.is_none() {
            first_reject = Some(look);
        }
        assert!(
            monitor.p_value() <= last_p,
            "running p-value rose at look {look}"
        );
        assert!(monitor.p_value() <= stateless.p_value);
        last_p = monitor.p_value();
    }
    assert_eq!(monitor.looks(), 120);
    assert_eq!(monitor.rejected_at_look(), first_reject);
    assert!(
        first_reject.is_some(),
        "d = 0.4 over 120 pairs should be found"
    );
}
