//! The standard normal distribution, accurate to a few ulp in relative terms
//! over its whole range, far tails included.
//!
//! * `erfc` and `erfcx` are W. J. Cody's rational Chebyshev approximations
//!   (CALERF, Netlib SPECFUN; "Rational Chebyshev approximations for the error
//!   function", Math. Comp. 1969), as translated in the `implied-vol` crate
//!   (MIT, © 2025-2026 Hikaru Nakashima).
//! * [`normal_cdf`] below −0.66 is `½·erfcx(−z/√2)·e^(−z²/2)` with the
//!   exponential split so that `z²` carries no rounding: `Φ(−37)` is as
//!   accurate (relative) as `Φ(0)`. Computing `½·erfc(−z/√2)` directly would
//!   lose `z²·ε` (1e-13 at z = −37) to the rounding of `z/√2`.
//! * The inverse CDF is Peter Jäckel's "PJ-2024-Inverse-Normal", used only to
//!   seed the implied-volatility solver.
//!
//! ```text
//! Copyright © 2013-2024 Peter Jäckel.
//! Permission to use, copy, modify, and distribute this software is freely granted,
//! provided that this notice is preserved.
//! WARRANTY DISCLAIMER
//! The Software is provided "as is" without warranty of any kind, either express or implied,
//! including without limitation any implied warranties of condition, uninterrupted use,
//! merchantability, fitness for a particular purpose, or non-infringement.
//! ```
#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

use std::f64::consts::FRAC_1_SQRT_2;

/// `1/√(2π)`.
pub(crate) const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_677_9;
/// `√(2π)`.
pub(crate) const SQRT_2PI: f64 = 2.506_628_274_631_000_5;
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
const THRESHOLD: f64 = 0.46875;
const XBIG: f64 = 26.543;
const XNEG: f64 = -26.628_735_713_751_4;

/// The standard normal cumulative distribution function `Φ(z)`.
///
/// Relative error a few ulp everywhere it does not underflow (down to
/// `z ≈ −37.5`, where `Φ` falls below the smallest normal `f64`); `Φ(−∞) = 0`,
/// `Φ(+∞) = 1`; NaN in, NaN out.
#[inline]
#[must_use]
pub fn normal_cdf(z: f64) -> f64 {
    // Below −THRESHOLD·√2, the scaled complementary error function times an
    // exactly split Gaussian keeps full relative accuracy.
    if z < -0.662_912_607_362_388_2 {
        if z < -38.6 {
            return 0.0;
        }
        0.5 * erfcx(-z * FRAC_1_SQRT_2) * exp_neg_half_square(z)
    } else {
        0.5 * erfc(-z * FRAC_1_SQRT_2)
    }
}

/// The standard normal density `φ(z) = e^(−z²/2)/√(2π)`, with `z²` taken
/// without rounding so that the far tails keep full relative accuracy.
#[inline]
#[must_use]
pub fn normal_pdf(z: f64) -> f64 {
    FRAC_1_SQRT_2PI * exp_neg_half_square(z)
}

/// `e^(−z²/2)` without the `z²·ε` relative error of rounding `z²`: `z` is
/// split into a part with 4 fractional bits (whose square is exact) and a
/// small rest.
#[inline]
pub(crate) fn exp_neg_half_square(z: f64) -> f64 {
    let y = z.abs();
    if y > 38.6 {
        return 0.0;
    }
    let y_hi = (y * 16.0).trunc() * 0.0625;
    (-0.5 * y_hi * y_hi).exp() * (-0.5 * (y - y_hi) * (y + y_hi)).exp()
}

#[inline]
fn smoothened_exp_neg_square(y: f64) -> f64 {
    let y_hi = (y * 16.0).trunc() * 0.0625;
    (-(y_hi * y_hi)).exp() * (-(y - y_hi) * (y + y_hi)).exp()
}

#[inline]
fn smoothened_exp_pos_square(x: f64) -> f64 {
    let x_hi = (x * 16.0).trunc() * 0.0625;
    (x_hi * x_hi).exp() * ((x - x_hi) * (x + x_hi)).exp()
}

#[inline]
fn ab(z: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        113.864_154_151_050_156,
        377.485_237_685_302_021,
        3_209.377_589_138_469_47,
        0.185_777_706_184_603_153,
    ];
    const B: [f64; 4] = [
        23.601_290_952_344_120_9,
        244.024_637_934_444_173,
        1_282.616_526_077_372_28,
        2_844.236_833_439_170_62,
    ];
    let num = (((A[4] * z + A[0]) * z + A[1]) * z + A[2]) * z + A[3];
    let den = (((z + B[0]) * z + B[1]) * z + B[2]) * z + B[3];
    num / den
}

#[inline]
fn cd(y: f64) -> f64 {
    const C: [f64; 9] = [
        0.564_188_496_988_670_089,
        8.883_149_794_388_375_94,
        66.119_190_637_141_629_5,
        298.635_138_197_400_131,
        881.952_221_241_769_09,
        1_712.047_612_634_070_58,
        2_051.078_377_826_071_47,
        1_230.339_354_797_997_25,
        2.153_115_354_744_038_46E-8,
    ];
    const D: [f64; 8] = [
        15.744_926_110_709_834_7,
        117.693_950_891_312_499,
        537.181_101_862_009_858,
        1_621.389_574_566_690_19,
        3_290.799_235_733_459_63,
        4_362.619_090_143_247_16,
        3_439.367_674_143_721_64,
        1_230.339_354_803_749_42,
    ];
    let num = (((((((C[8] * y + C[0]) * y + C[1]) * y + C[2]) * y + C[3]) * y + C[4]) * y + C[5])
        * y
        + C[6])
        * y
        + C[7];
    let den = ((((((((y + D[0]) * y + D[1]) * y + D[2]) * y + D[3]) * y + D[4]) * y + D[5]) * y
        + D[6])
        * y)
        + D[7];
    num / den
}

#[inline]
fn pq(z: f64) -> f64 {
    const P: [f64; 6] = [
        0.305_326_634_961_232_344,
        0.360_344_899_949_804_439,
        0.125_781_726_111_229_246,
        0.016_083_785_148_742_276_6,
        6.587_491_615_298_378_03E-4,
        0.016_315_387_137_302_097_8,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822_42,
        1.872_952_849_923_460_47,
        0.527_905_102_951_428_412,
        0.060_518_341_312_441_319_1,
        0.002_335_204_976_268_691_85,
    ];
    let num = ((((P[5] * z + P[0]) * z + P[1]) * z + P[2]) * z + P[3]) * z + P[4];
    let den = ((((z + Q[0]) * z + Q[1]) * z + Q[2]) * z + Q[3]) * z + Q[4];
    z * num / den
}

/// `erfc(|x|)·e^(x²)` for `|x| > THRESHOLD`.
#[inline]
fn erfcx_above_threshold(y: f64) -> f64 {
    if y <= 4.0 {
        cd(y)
    } else {
        (FRAC_1_SQRT_PI - pq((y * y).recip())) / y
    }
}

/// The complementary error function `erfc(x) = 1 − erf(x)` (Cody).
#[inline]
#[must_use]
pub(crate) fn erfc(x: f64) -> f64 {
    let y = x.abs();
    if y <= THRESHOLD {
        return 1.0 - x * ab(y * y);
    }
    let erfc_abs = if y >= XBIG {
        0.0
    } else {
        erfcx_above_threshold(y) * smoothened_exp_neg_square(y)
    };
    if x < 0.0 { 2.0 - erfc_abs } else { erfc_abs }
}

/// The scaled complementary error function `erfcx(x) = e^(x²)·erfc(x)` (Cody).
#[inline]
#[must_use]
pub(crate) fn erfcx(x: f64) -> f64 {
    let y = x.abs();
    if y <= THRESHOLD {
        let z = y * y;
        return z.exp() * (1.0 - x * ab(z));
    }
    if x < XNEG {
        return f64::MAX;
    }
    let result = erfcx_above_threshold(y);
    if x < 0.0 {
        2.0 * smoothened_exp_pos_square(x) - result
    } else {
        result
    }
}

const U_MAX: f64 = 0.341_344_746_068_542_9;

/// `Φ⁻¹(½ + u)` for `|u| ≤ U_MAX`.
#[inline]
fn inverse_norm_cdf_midrange(u: f64) -> f64 {
    let s = U_MAX * U_MAX - u * u;
    let num = (((((-7.589_398_814_012_592_5 * s + 1.342_332_435_026_538_6E2) * s
        + 6.904_892_420_614_086E2)
        * s
        + 7.499_778_145_665_792E2)
        * s
        + 3.018_705_419_229_339E2)
        * s
        + 5.026_057_216_730_31E1)
        * s
        + 2.929_589_546_983_088;
    let den = ((((1.792_270_085_081_026E2 * s + 4.791_239_145_097_567_3E2) * s
        + 3.868_212_085_404_174_4E2)
        * s
        + 1.294_041_204_487_553E2)
        * s
        + 1.891_853_807_457_46E1)
        * s
        + 1.0;
    u * num / den
}

/// Evaluates `(a0 + a1 r + … + a5 r⁵) / (1 + b1 r + … + b5 r⁵)` with the
/// coefficients highest first.
#[inline]
fn rational5(r: f64, num: [f64; 6], den: [f64; 5]) -> f64 {
    let n = ((((num[0] * r + num[1]) * r + num[2]) * r + num[3]) * r + num[4]) * r + num[5];
    let d = ((((den[0] * r + den[1]) * r + den[2]) * r + den[3]) * r + den[4]) * r + 1.0;
    n / d
}

/// `Φ⁻¹(p)` for `p ≤ 0.1587` (Jäckel's five branches in `r = √(−ln p)`).
#[inline]
fn inverse_norm_cdf_low(p: f64) -> f64 {
    let r = (-p.ln()).sqrt();
    if r < 2.05 {
        rational5(
            r,
            [
                -13.054_072_340_494_093,
                -83.383_894_003_636_97,
                -74.594_687_726_045_93,
                65.451_292_110_261_45,
                47.170_590_600_740_69,
                3.691_562_302_945_566,
            ],
            [
                0.000_182_951_748_520_535_3,
                9.221_688_797_873_743,
                59.270_122_556_046_076,
                71.813_812_182_579_26,
                20.837_211_328_697_755,
            ],
        )
    } else if r < 3.41 {
        rational5(
            r,
            [
                -1.201_314_787_943_552_6,
                -10.059_163_395_686_461,
                -18.125_442_779_178_92,
                0.683_973_702_565_915_3,
                14.491_778_286_891_22,
                3.234_017_911_631_797,
            ],
            [
                0.000_010_957_576_098_829_594,
                0.848_848_921_991_492_5,
                7.136_981_105_610_977,
                14.656_370_665_176_8,
                8.882_093_177_330_434,
            ],
        )
    } else if r < 6.7 {
        rational5(
            r,
            [
                -1.541_431_949_401_359_8E-1,
                -2.869_906_133_588_252_8,
                -1.107_053_468_930_936_7E1,
                -5.163_392_911_552_553,
                9.948_372_431_703_657,
                3.125_223_578_008_758_3,
            ],
            [
                1.356_598_356_444_129_7E-7,
                1.089_797_223_413_183E-1,
                2.030_707_606_430_904,
                8.108_634_112_236_153,
                7.076_769_154_309_171,
            ],
        )
    } else if r < 12.9 {
        rational5(
            r,
            [
                -0.016_123_033_183_901_45,
                -0.475_951_695_467_832_17,
                -2.964_425_135_315_060_4,
                -3.688_196_041_019_692,
                2.250_881_388_987_032,
                2.616_126_495_089_728_3,
            ],
            [
                0.000_000_003_084_809_357_096_678_6,
                0.011_400_087_282_177_594,
                0.336_637_464_056_264,
                2.128_203_027_215_319,
                3.251_745_516_903_592,
            ],
        )
    } else {
        rational5(
            r,
            [
                -0.001_056_635_772_720_258_4,
                -0.065_127_593_753_781_67,
                -0.863_851_812_192_137_6,
                -2.589_445_156_846_573,
                -0.042_799_650_734_502_09,
                2.322_684_904_787_23,
            ],
            [
                0.000_000_000_023_135_343_206_304_888,
                0.000_747_144_799_216_722_6,
                0.046_054_974_512_474_44,
                0.613_208_413_291_975,
                1.936_131_611_925_441_3,
            ],
        )
    }
}

/// The inverse standard normal CDF `Φ⁻¹(p)` for `0 < p < 1` (Jäckel 2024,
/// relative accuracy about 1e-16).
#[inline]
#[must_use]
pub(crate) fn inverse_normal_cdf(p: f64) -> f64 {
    let u = p - 0.5;
    if u.abs() < U_MAX {
        inverse_norm_cdf_midrange(u)
    } else if u > 0.0 {
        -inverse_norm_cdf_low(1.0 - p)
    } else {
        inverse_norm_cdf_low(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_cody_reference_values_at_branch_edges() {
        assert_eq!(erfc(THRESHOLD + f64::EPSILON), 0.507_386_526_782_061_8);
        assert_eq!(erfc(-THRESHOLD - f64::EPSILON), 1.492_613_473_217_938_1);
        assert_eq!(erfc(4.0 + f64::EPSILON), 1.541_725_790_028_002e-8);
        assert_eq!(erfc(XBIG + f64::EPSILON), 0.0);
        assert_eq!(erfcx(4.0 + f64::EPSILON), 0.136_999_457_625_061_4);
        assert_eq!(erfcx(-4.0), 17_772_220.904_016_286);
    }

    #[test]
    fn normal_cdf_is_symmetric_and_bounded() {
        for i in -400..=400 {
            let z = f64::from(i) * 0.02;
            let sum = normal_cdf(z) + normal_cdf(-z);
            assert!((sum - 1.0).abs() < 4.0 * f64::EPSILON, "z = {z}: {sum}");
            assert!((0.0..=1.0).contains(&normal_cdf(z)));
        }
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn normal_cdf_far_tail_matches_the_asymptotic_series() {
        // Φ(z) = φ(z)/|z| · Σ (−1)^k (2k−1)!!/z^(2k) for z → −∞ (asymptotic;
        // 14 terms are far more than enough at |z| ≥ 20).
        for z in [-20.0_f64, -25.0, -30.0, -35.0, -37.0] {
            let z2 = z * z;
            let (mut term, mut series) = (1.0_f64, 1.0_f64);
            for k in 1..14 {
                term *= -f64::from(2 * k - 1) / z2;
                series += term;
            }
            let expected = normal_pdf(z) / -z * series;
            let got = normal_cdf(z);
            assert!(
                ((got - expected) / expected).abs() < 1e-14,
                "z = {z}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn inverse_normal_cdf_inverts_normal_cdf() {
        // Above z = 3 the rounding of p near 1 dominates, not the inverse.
        for i in 1..300 {
            let z = -12.0 + f64::from(i) * 0.05;
            let p = normal_cdf(z);
            let back = inverse_normal_cdf(p);
            assert!(
                (back - z).abs() < 1e-12 * (1.0 + z.abs()),
                "{z} -> {p} -> {back}"
            );
        }
    }
}
