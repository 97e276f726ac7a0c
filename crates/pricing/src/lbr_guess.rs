//! The initial guess of Peter Jäckel's "Let's Be Rational" (Wilmott, January
//! 2015, pp 40-53; www.jaeckel.org/LetsBeRational.pdf), as translated in the
//! `implied-vol` crate (MIT, © 2025-2026 Hikaru Nakashima): four branches in
//! the normalised price, each a rational cubic interpolation (in the price
//! itself in the two middle branches, in transformed coordinates at the two
//! ends) that is already close to the root everywhere.
//!
//! Only the guess is taken from there. The iteration that follows, its
//! objectives, safeguards and the counting of price evaluations are this
//! crate's own (see `implied.rs`).
//!
//! Cost: the normalised price at the branch point `s_c = √(2|x|)` by a
//! closed form (one `erfcx`; counted as one price evaluation by the caller),
//! the prices at `s_l` and `s_u` by fitted rational functions (no special
//! function, not counted), vegas (one `exp`, not counted: a vega is not a
//! price), and one `erfc` plus one inverse normal CDF in the outer branches
//! (coordinate maps, not prices).
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

use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};

use crate::normal::{SQRT_2PI, erfc, erfcx, inverse_normal_cdf};

const SQRT_PI_OVER_2: f64 = 1.253_314_137_315_500_3;
const SQRT_3: f64 = 1.732_050_807_568_877_2;
const FRAC_1_SQRT_3: f64 = 0.577_350_269_189_625_8;
/// `2π/√27`
const FRAC_2_PI_SQRT_27: f64 = 1.209_199_576_156_145_2;
/// `√3/∛(2π)`
const FRAC_SQRT_3_CUBIC_ROOT_2_PI: f64 = 0.938_643_487_427_383_6;
const SQRT_DBL_MAX: f64 = 1.340_780_792_994_259_6e154;
const MIN_CONTROL: f64 = -(1.0 - 0.000_000_014_901_161_193_847_656);
const MAX_CONTROL: f64 = 2.0 / (f64::EPSILON * f64::EPSILON);

/// Which objective the iteration should use from this guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Branch {
    /// Far below the branch point: iterate on `ln b`.
    Lowest,
    /// Around the branch point: iterate on `b`.
    Middle,
    /// Near the supremum `b_max` (and above `b_max/2`): iterate on
    /// `−ln(b_max − b)`.
    Highest,
}

/// The guess: total volatility `s = σ√t`, the branch, and whether the
/// closed-form price at `s_c` was evaluated (it is not when `x = 0`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guess {
    pub s: f64,
    pub branch: Branch,
    pub evaluated_b_c: bool,
}

/// `1/b'(s)` with `h = x/s`, `t = s/2`.
#[inline]
pub(crate) fn inv_normalised_vega(h: f64, t: f64) -> f64 {
    SQRT_2PI * (0.5 * (t * t + h * h)).exp()
}

#[inline]
fn one_minus_erfcx(x: f64) -> f64 {
    if (-1.0 / 5.0..=1.0 / 3.0).contains(&x) {
        let num = (((1.406_928_571_363_456_5E-2 * x + 1.406_918_874_460_965E-1) * x
            + 5.768_900_120_887_374E-1)
            * x
            + 1.151_496_718_178_475_6)
            * x
            + 1.000_000_000_000_000_2;
        let den = ((((1.246_332_072_834_634_7E-2 * x + 1.358_008_134_514_386E-1) * x
            + 6.248_608_165_864_026E-1)
            * x
            + 1.508_990_859_374_272_3)
            * x
            + 1.903_749_496_242_156_3)
            * x
            + 1.0;
        x * (std::f64::consts::FRAC_2_SQRT_PI - x * (num / den))
    } else {
        1.0 - erfcx(x)
    }
}

/// Horner for a polynomial with coefficients highest degree first.
#[inline]
fn poly(x: f64, c: &[f64]) -> f64 {
    c.iter().fold(0.0, |acc, &k| acc * x + k)
}

/// `b(x, s_u)/b_max` as a function of `s_c` (Jäckel's fit).
#[inline]
fn b_u_over_b_max(s_c: f64) -> f64 {
    if s_c >= 2.449_489_742_783_178 {
        let y = s_c.recip();
        let g = poly(
            y,
            &[
                -1.229_189_712_271_654_4,
                6.589_280_957_677_407E2,
                6.169_692_835_129_17E2,
                2.983_680_162_805_663E2,
                8.488_089_220_080_239E1,
                1.455_319_886_249_397_7E1,
                1.375_163_082_077_259_1,
                -4.605_394_817_212_609E-2,
            ],
        ) / poly(
            y,
            &[
                5.206_084_752_279_256E2,
                8.881_238_333_960_678E2,
                8.698_830_313_690_185E2,
                5.079_647_179_123_228E2,
                2.030_420_459_952_177_3E2,
                5.436_378_146_588_073E1,
                9.327_034_903_790_405,
                1.0,
            ],
        );
        (y * g - 1.253_314_137_315_500_3) * (0.113_984_531_941_499_06 * y) + 0.894_954_297_278_031_3
    } else {
        let g = poly(
            s_c,
            &[
                -3.386_756_817_001_176_5E-9,
                -8.733_991_026_156_887E-4,
                -8.143_812_878_548_491E-3,
                -3.512_133_741_041_69E-2,
                -8.976_383_086_137_545E-2,
                -1.416_368_116_424_721E-1,
                -1.344_864_378_589_371E-1,
                -6.063_099_880_334_851E-2,
            ],
        ) / poly(
            s_c,
            &[
                1.421_206_743_529_177_8E-2,
                1.324_801_623_892_073E-1,
                5.959_161_649_351_221E-1,
                1.652_734_794_196_848_7,
                3.018_638_953_766_389_6,
                3.650_335_036_015_884_6,
                2.722_003_340_655_505_5,
                1.0,
            ],
        );
        (s_c * g + 0.061_461_680_580_514_74) * (s_c * s_c) + 0.789_908_594_556_062_8
    }
}

/// `b(x, s_l)/b_max` as a function of `s_c` (Jäckel's fit).
#[inline]
fn b_l_over_b_max(s_c: f64) -> f64 {
    if s_c < 0.709_929_573_971_953_9 {
        let g = poly(
            s_c,
            &[
                4.542_510_209_361_606_4E-7,
                -6.403_639_934_147_98E-6,
                5.971_692_845_958_919E-3,
                3.976_063_144_567_705_5E-2,
                9.807_891_178_635_89E-2,
                8.074_107_237_288_286E-2,
            ],
        ) / poly(
            s_c,
            &[
                6.125_459_704_983_172E-2,
                4.613_270_710_865_565E-1,
                1.365_880_147_571_179,
                1.859_497_767_228_766_5,
                1.0,
            ],
        );
        (s_c * s_c) * (s_c * (s_c * g - 0.096_727_192_813_394_37) + 0.075_609_966_402_963_62)
    } else if s_c < 2.626_785_107_312_739_5 {
        poly(
            s_c,
            &[
                6.971_140_063_983_471E-4,
                6.584_925_270_230_231E-3,
                2.953_705_895_096_301_8E-2,
                6.917_130_174_466_835E-2,
                7.561_014_227_254_904E-2,
                -2.708_128_856_468_558_7E-8,
                1.979_573_792_759_858E-9,
            ],
        ) / poly(
            s_c,
            &[
                6.636_197_582_786_12E-3,
                7.171_486_244_882_935E-2,
                3.783_162_225_306_046E-1,
                1.157_148_318_717_978_3,
                2.129_710_354_999_518,
                2.194_144_852_558_658,
                1.0,
            ],
        )
    } else if s_c < 7.348_469_228_349_534 {
        poly(
            s_c,
            &[
                1.701_257_940_724_605_5E-3,
                1.002_291_337_825_409E-2,
                3.922_517_740_768_760_6E-2,
                7.403_965_818_682_282E-2,
                7.411_485_544_834_501E-2,
                5.311_803_397_279_465E-4,
                -9.332_511_535_483_788E-5,
            ],
        ) / poly(
            s_c,
            &[
                1.619_540_589_593_093_7E-2,
                1.174_400_591_971_610_1E-1,
                5.323_125_844_350_184E-1,
                1.391_232_364_627_114,
                2.344_181_670_708_740_4,
                2.221_723_813_222_813_4,
                1.0,
            ],
        )
    } else {
        poly(
            s_c,
            &[
                1.693_020_807_842_147_5E-3,
                5.183_252_617_163_152E-3,
                2.934_240_565_862_844_5E-2,
                3.921_610_857_820_463_6E-2,
                7.168_217_831_093_633E-2,
                -1.511_669_248_501_119_6E-3,
                1.450_007_229_724_060_4E-3,
            ],
        ) / poly(
            s_c,
            &[
                1.611_699_254_678_867_7E-2,
                7.126_137_099_644_303E-2,
                3.754_374_213_737_579E-1,
                8.487_830_756_737_222E-1,
                1.682_315_917_528_153_2,
                1.617_631_350_230_541_5,
                1.0,
            ],
        )
    }
}

#[inline]
fn rational_cubic_interpolation(
    x_minus_x_l: f64,
    h: f64,
    y: (f64, f64),
    d: (f64, f64),
    r: f64,
) -> f64 {
    if h == 0.0 {
        return 0.5 * (y.0 + y.1);
    }
    let t = x_minus_x_l / h;
    if r < MAX_CONTROL {
        let omt = 1.0 - t;
        let t2 = t * t;
        let omt2 = omt * omt;
        return (y.1 * t2 * t
            + (r * y.1 - h * d.1) * t2 * omt
            + (r * y.0 + h * d.0) * t * omt2
            + y.0 * omt2 * omt)
            / (1.0 + (r - 3.0) * t * omt);
    }
    (1.0 - t) * y.0 + y.1 * t
}

#[inline]
fn control_for_second_derivative_left(h: f64, y_diff: f64, d: (f64, f64), d2_l: f64) -> f64 {
    let numerator = d2_l * 0.5 * h + (d.1 - d.0);
    if numerator == 0.0 {
        return 0.0;
    }
    let denominator = y_diff / h - d.0;
    if denominator == 0.0 {
        if numerator > 0.0 {
            MAX_CONTROL
        } else {
            MIN_CONTROL
        }
    } else {
        numerator / denominator
    }
}

#[inline]
fn control_for_second_derivative_right(h: f64, y_diff: f64, d: (f64, f64), d2_r: f64) -> f64 {
    let numerator = d2_r * 0.5 * h + (d.1 - d.0);
    if numerator == 0.0 {
        return 0.0;
    }
    let denominator = d.1 - y_diff / h;
    if denominator == 0.0 {
        if numerator > 0.0 {
            MAX_CONTROL
        } else {
            MIN_CONTROL
        }
    } else {
        numerator / denominator
    }
}

#[inline]
fn is_zero(x: f64) -> bool {
    x.abs() < f64::MIN_POSITIVE
}

#[inline]
fn minimum_control(d: (f64, f64), s: f64, prefer_shape: bool) -> f64 {
    let monotonic = d.0 * s >= 0.0 && d.1 * s >= 0.0;
    let convex = d.0 <= s && s <= d.1;
    let concave = d.0 >= s && s >= d.1;
    if !monotonic && !convex && !concave {
        return MIN_CONTROL;
    }
    let d_r_m_d_l = d.1 - d.0;
    let d_r_m_s = d.1 - s;
    let s_m_d_l = s - d.0;
    let mut r1 = -f64::MAX;
    let mut r2 = r1;
    if monotonic {
        if !is_zero(s) {
            r1 = (d.1 + d.0) / s;
        } else if prefer_shape {
            r1 = MAX_CONTROL;
        }
    }
    if convex || concave {
        if !(is_zero(s_m_d_l) || is_zero(d_r_m_s)) {
            r2 = (d_r_m_d_l / d_r_m_s).abs().max((d_r_m_d_l / s_m_d_l).abs());
        } else if prefer_shape {
            r2 = MAX_CONTROL;
        }
    } else if monotonic && prefer_shape {
        r2 = MAX_CONTROL;
    }
    MIN_CONTROL.max(r1.max(r2))
}

#[inline]
fn convex_control_left(h: f64, y_diff: f64, d: (f64, f64), d2_l: f64, prefer_shape: bool) -> f64 {
    let r = control_for_second_derivative_left(h, y_diff, d, d2_l);
    r.max(minimum_control(d, y_diff / h, prefer_shape))
}

#[inline]
fn convex_control_right(h: f64, y_diff: f64, d: (f64, f64), d2_r: f64, prefer_shape: bool) -> f64 {
    let r = control_for_second_derivative_right(h, y_diff, d, d2_r);
    r.max(minimum_control(d, y_diff / h, prefer_shape))
}

/// Jäckel's lower map `f(s)` and its first two derivatives with respect to
/// the price.
#[inline]
fn f_lower_map_and_derivatives(theta_x: f64, s: f64) -> (f64, f64, f64) {
    let z = -FRAC_1_SQRT_3 * theta_x / s;
    let y = z * z;
    let s2 = s * s;
    let phi_m = 0.5 * erfc(FRAC_1_SQRT_2 * z);
    let phi2 = phi_m * phi_m;
    let inv_norm_pdf_y = SQRT_2PI * (0.5 * y).exp();
    (
        -FRAC_2_PI_SQRT_27 * theta_x * (phi2 * phi_m),
        std::f64::consts::TAU * y * phi2 * (0.125 * s2 + y).exp(),
        std::f64::consts::FRAC_PI_6 * y / (s2 * s)
            * phi_m
            * (-8.0 * SQRT_3 * s * theta_x
                + (3.0 * s2 * (s2 - 8.0) - 8.0 * theta_x * theta_x) * phi_m * inv_norm_pdf_y)
            * (2.0 * y + 0.25 * s2).exp(),
    )
}

#[inline]
fn inverse_f_lower_map(theta_x: f64, f: f64) -> f64 {
    (theta_x * FRAC_1_SQRT_3
        / inverse_normal_cdf(FRAC_SQRT_3_CUBIC_ROOT_2_PI * f.cbrt() / theta_x.abs().cbrt()))
    .abs()
}

/// Jäckel's upper map `f(s) = Φ(−s/2)` and its first two derivatives with
/// respect to the price.
#[inline]
fn f_upper_map_and_derivatives(theta_x: f64, s: f64) -> (f64, f64, f64) {
    let w = (theta_x / s).powi(2);
    (
        0.5 * erfc((0.5 * FRAC_1_SQRT_2) * s),
        -0.5 * (0.5 * w).exp(),
        SQRT_PI_OVER_2 * (0.125 * s * s + w).exp() * w / s,
    )
}

/// The initial guess for the total volatility `s` whose normalised OTM
/// price `b(θx, s)` is `beta`, with `theta_x = −|ln(F/K)| ≤ 0` and
/// `0 < beta < b_max = e^(θx/2)`.
pub(crate) fn initial_guess(beta: f64, theta_x: f64) -> Guess {
    let b_max = (0.5 * theta_x).exp();
    let sqrt_ax = (-theta_x).sqrt();
    let s_c = SQRT_2 * sqrt_ax;
    let ome = one_minus_erfcx(sqrt_ax);
    let b_c = 0.5 * b_max * ome;
    let evaluated_b_c = theta_x != 0.0;
    let guess = |s, branch| Guess {
        s,
        branch,
        evaluated_b_c,
    };

    if beta < b_c {
        let s_l = s_c - SQRT_PI_OVER_2 * ome;
        let b_l = b_l_over_b_max(s_c) * b_max;
        if beta < b_l {
            let (f_l, d_f_l, d2_f_l) = f_lower_map_and_derivatives(theta_x, s_l);
            let r2 = convex_control_right(b_l, f_l, (1.0, d_f_l), d2_f_l, true);
            let mut f = rational_cubic_interpolation(beta, b_l, (0.0, f_l), (1.0, d_f_l), r2);
            if f.is_nan() || f <= 0.0 {
                let t = beta / b_l;
                f = (f_l * t + b_l * (1.0 - t)) * t;
            }
            return guess(inverse_f_lower_map(theta_x, f), Branch::Lowest);
        }
        let inv_v = (
            inv_normalised_vega(theta_x / s_l, 0.5 * s_l),
            SQRT_2PI / b_max,
        );
        let h = b_c - b_l;
        let r = convex_control_right(h, s_c - s_l, inv_v, 0.0, false);
        let s = rational_cubic_interpolation(beta - b_l, h, (s_l, s_c), inv_v, r);
        return guess(s, Branch::Middle);
    }

    let s_u = s_c + SQRT_PI_OVER_2 * (2.0 - ome);
    let b_u = b_u_over_b_max(s_c) * b_max;
    if beta <= b_u {
        let inv_v = (
            SQRT_2PI / b_max,
            inv_normalised_vega(theta_x / s_u, 0.5 * s_u),
        );
        let h = b_u - b_c;
        let r = convex_control_left(h, s_u - s_c, inv_v, 0.0, false);
        let s = rational_cubic_interpolation(beta - b_c, h, (s_c, s_u), inv_v, r);
        return guess(s, Branch::Middle);
    }

    let (f_u, d_f_u, d2_f_u) = f_upper_map_and_derivatives(theta_x, s_u);
    let h = b_max - b_u;
    let mut f = if (-SQRT_DBL_MAX..SQRT_DBL_MAX).contains(&d2_f_u) {
        let r = convex_control_left(h, -f_u, (d_f_u, -0.5), d2_f_u, true);
        rational_cubic_interpolation(beta - b_u, h, (f_u, 0.0), (d_f_u, -0.5), r)
    } else {
        f64::MIN
    };
    if f.is_nan() || f <= 0.0 {
        let t = (beta - b_u) / h;
        f = (f_u * (1.0 - t) + 0.5 * h * t) * (1.0 - t);
    }
    let s = -2.0 * inverse_normal_cdf(f);
    let branch = if beta > 0.5 * b_max {
        Branch::Highest
    } else {
        Branch::Middle
    };
    guess(s, branch)
}
