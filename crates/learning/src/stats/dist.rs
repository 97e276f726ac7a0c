//! Tail probabilities and quantiles, written directly on statrs' special
//! functions (regularized incomplete beta, erfc, ln-binomial) so that small
//! tail probabilities keep their relative accuracy (no `1 − cdf`).

use statrs::function::{beta, erf, factorial};

/// P(Z > z) for a standard normal Z.
pub(crate) fn normal_sf(z: f64) -> f64 {
    0.5 * erf::erfc(z / std::f64::consts::SQRT_2)
}

/// P(Z ≤ z) for a standard normal Z.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * erf::erfc(-z / std::f64::consts::SQRT_2)
}

/// The z with P(Z > z) = `upper` (0 < `upper` < 1).
pub(crate) fn normal_upper_quantile(upper: f64) -> f64 {
    std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * upper)
}

/// Two-sided p-value P(|T| ≥ |t|) of Student's t with `df` degrees of
/// freedom: I_{df/(df+t²)}(df/2, 1/2).
pub(crate) fn t_two_sided_p(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    beta::beta_reg(0.5 * df, 0.5, x).clamp(0.0, 1.0)
}

/// The c > 0 with P(|T| ≥ c) = `two_sided` for Student's t with `df`
/// degrees of freedom (the two-sided critical value).
pub(crate) fn t_two_sided_critical(two_sided: f64, df: f64) -> f64 {
    let y = beta::inv_beta_reg(0.5 * df, 0.5, two_sided);
    (df * (1.0 - y) / y).sqrt()
}

/// Binomial probability P(X = k) for X ~ Binomial(n, p), 0 < p < 1.
pub(crate) fn binomial_pmf(k: u64, n: u64, p: f64) -> f64 {
    let ln = factorial::ln_binomial(n, k) + k as f64 * p.ln() + (n - k) as f64 * (-p).ln_1p();
    ln.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    // References from mpmath at 30 digits (betainc / findroot, ncdf).
    #[test]
    fn t_critical_matches_mpmath() {
        let cases = [
            (126.0, 0.05, 1.978_970_601_990_63),
            (48.0, 0.01, 2.682_204_026_950_216),
            (4.0, 0.05, 2.776_445_105_197_79),
            (98.0, 0.1, 1.660_551_217_065_73),
        ];
        for (df, alpha, want) in cases {
            let got = t_two_sided_critical(alpha, df);
            assert!(
                (got - want).abs() < 1e-9,
                "df {df} alpha {alpha}: {got} vs {want}"
            );
            let back = t_two_sided_p(got, df);
            assert!((back - alpha).abs() < 1e-12, "round trip {back} vs {alpha}");
        }
    }

    #[test]
    fn normal_quantile_round_trips() {
        // statrs' erfc_inv is good to about 1e-10 relative in p (1e-11 in z)
        for p in [1e-300, 1e-12, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.9] {
            let z = normal_upper_quantile(p);
            assert!((normal_sf(z) / p - 1.0).abs() < 1e-9, "p {p}");
        }
        assert!((normal_upper_quantile(0.025) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-16);
    }

    #[test]
    fn binomial_pmf_sums_to_one() {
        let total: f64 = (0..=40).map(|k| binomial_pmf(k, 40, 0.3)).sum();
        assert!((total - 1.0).abs() < 1e-13);
        assert!((binomial_pmf(25, 25, 0.5) - 0.5_f64.powi(25)).abs() < 1e-20);
    }
}
