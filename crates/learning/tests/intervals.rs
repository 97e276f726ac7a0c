//! Coverage of the confidence intervals by seeded simulation: the Welch
//! interval of a difference in means and the percentile bootstrap intervals
//! should contain the true value in about `confidence` of the samples.
//!
//! 400 samples give a standard error of about 0.011 around 0.95 (the Welch
//! bounds are three of them); the bootstrap uses 300 samples of 600
//! resamples each to stay fast in a debug build, and its lower bound allows
//! for the percentile method's known slight undercoverage at n = 30.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use learning::stats::{
    BootstrapConfig, bootstrap_mean_ci, bootstrap_mean_difference_ci, mean_difference_ci,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const SAMPLES: usize = 400;

fn draw(rng: &mut ChaCha8Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            mean + sd * z
        })
        .collect()
}

#[test]
fn welch_interval_covers_the_true_difference() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut covered = 0;
    for _ in 0..SAMPLES {
        let a = draw(&mut rng, 12, 0.3, 1.0);
        let b = draw(&mut rng, 25, 0.1, 2.0);
        covered += usize::from(mean_difference_ci(&a, &b, 0.95).unwrap().contains(0.2));
    }
    let rate = covered as f64 / SAMPLES as f64;
    println!("Welch 95% interval coverage: {rate}");
    assert!((0.915..=0.985).contains(&rate), "{rate}");
}

#[test]
fn bootstrap_intervals_cover_the_true_means() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (mut one, mut two) = (0, 0);
    let samples = 300;
    for i in 0..samples {
        let config = BootstrapConfig {
            resamples: 600,
            seed: i as u64,
            ..BootstrapConfig::default()
        };
        let a = draw(&mut rng, 30, 1.0, 1.0);
        let b = draw(&mut rng, 30, 0.5, 1.0);
        one += usize::from(bootstrap_mean_ci(&a, &config).unwrap().contains(1.0));
        two += usize::from(
            bootstrap_mean_difference_ci(&a, &b, &config)
                .unwrap()
                .contains(0.5),
        );
    }
    let (one, two) = (one as f64 / samples as f64, two as f64 / samples as f64);
    println!("bootstrap 95% coverage: mean {one}, difference {two}");
    assert!((0.89..=0.985).contains(&one), "{one}");
    assert!((0.89..=0.985).contains(&two), "{two}");
}

#[test]
fn bootstrap_is_deterministic_for_a_seed() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = draw(&mut rng, 40, 0.0, 1.0);
    let b = draw(&mut rng, 35, 0.0, 1.0);
    let config = BootstrapConfig {
        seed: 42,
        ..BootstrapConfig::default()
    };
    let first = bootstrap_mean_difference_ci(&a, &b, &config).unwrap();
    let again = bootstrap_mean_difference_ci(&a, &b, &config).unwrap();
    assert_eq!(first, again);
    assert!(first.lower < first.estimate && first.estimate < first.upper);
}
