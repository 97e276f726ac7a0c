#!/usr/bin/env python3
"""Reference values of the deflated Sharpe ratio for `learning::optimizer`.

Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio:
Correcting for Selection Bias, Backtest Overfitting, and Non-Normality",
Journal of Portfolio Management 40(5), 94-107,
https://doi.org/10.3905/jpm.2014.40.5.094 (SSRN 2460551):

    SR0 = sqrt(V) * ((1 - g) * Zinv(1 - 1/N) + g * Zinv(1 - 1/(N e)))
    DSR = Z( (SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2) )

with g the Euler-Mascheroni constant, Z the standard normal CDF, N the
number of trials, V the variance of the trials' Sharpe ratios, SR the
selected strategy's Sharpe ratio, T its number of returns, skew and kurt the
skewness and (non-excess) kurtosis of its returns. Everything is per period
(not annualized). SR0 = 0 for a single trial, and max(0, formula) for a
fractional N: the expected maximum of N >= 1 zero-mean trials is >= 0, the
asymptotic formula is not for N near 1.

Correlated trials (a parameter search's neighbours trade alike) count as
fewer independent ones: N = rho + (1 - rho) * M for M trials whose return
series have average pairwise (Pearson) correlation rho, clamped to [0, 1].
The "correlated_trials" case computes rho pair by pair with
statistics.correlation (the Rust code uses an O(M T) identity instead).

Estimators (the same as the Rust code):
    SR   = mean / sample standard deviation (n - 1)
    skew = m3 / m2^1.5, kurt = m4 / m2^2 with central moments m_k = sum((x - mean)^k) / n
           (scipy.stats.skew / kurtosis(fisher=False) with bias=True)
    V    = sample variance (n - 1) of the trial Sharpe ratios

Only the standard library (no scipy): the normal CDF from math.erfc, its
inverse from Acklam's rational approximation polished by Newton steps on
math.erfc to full double precision. The first case is the paper's own
numerical example (annualized SR 2.5, T = 1250, skew -3, kurt 10, N = 100,
annualized V = 0.5, 250 days a year), which the paper gives as DSR ~ 0.9004;
the script checks that before writing anything.

Usage (from the repository root; deterministic, same output every run):

    python3 tools/golden/deflated_sharpe.py

writes crates/learning/tests/golden/deflated_sharpe.json, which
crates/learning/tests/deflated_sharpe.rs checks to 1e-9.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "crates" / "learning" / "tests" / "golden" / "deflated_sharpe.json"
SEED = 20261115
EULER_GAMMA = 0.57721566490153286060651209008240243


def norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def norm_pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def acklam_lower(p: float) -> float:
    """x with Z(x) ~ p (relative error ~1e-9), Acklam's algorithm."""
    a = [-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00]
    b = [-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00]
    p_low = 0.02425
    if p < p_low:
        q = math.sqrt(-2.0 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    if p > 1.0 - p_low:
        q = math.sqrt(-2.0 * math.log1p(-p))
        return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)


def norm_upper_quantile(upper: float) -> float:
    """z with P(Z > z) = upper, to full double precision."""
    z = -acklam_lower(upper)
    for _ in range(4):
        z += (norm_sf(z) - upper) / norm_pdf(z)
    return z


def expected_max_sharpe(trials: float, variance: float) -> float:
    if trials == 1:
        return 0.0
    return max(0.0, math.sqrt(variance) * (
        (1.0 - EULER_GAMMA) * norm_upper_quantile(1.0 / trials)
        + EULER_GAMMA * norm_upper_quantile(1.0 / (trials * math.e))
    ))


def psr_statistic(sharpe: float, observations: int, skewness: float, kurtosis: float, benchmark: float) -> float:
    denominator = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    return (sharpe - benchmark) * math.sqrt(observations - 1.0) / math.sqrt(denominator)


def moments(returns: list[float]) -> tuple[float, float, float]:
    n = len(returns)
    mean = math.fsum(returns) / n
    sample_sd = math.sqrt(math.fsum((x - mean) ** 2 for x in returns) / (n - 1))
    m2 = math.fsum((x - mean) ** 2 for x in returns) / n
    m3 = math.fsum((x - mean) ** 3 for x in returns) / n
    m4 = math.fsum((x - mean) ** 4 for x in returns) / n
    return mean / sample_sd, m3 / m2**1.5, m4 / m2**2


def deflate(case: dict) -> dict:
    sr0 = expected_max_sharpe(case["trials"], case["trial_sharpe_variance"])
    z = psr_statistic(case["sharpe"], case["observations"], case["skewness"], case["kurtosis"], sr0)
    case["expected_max_sharpe"] = sr0
    case["statistic"] = z
    case["probability"] = norm_cdf(z)
    return case


def from_returns(name: str, returns: list[float], trial_sharpes: list[float]) -> dict:
    sharpe, skewness, kurtosis = moments(returns)
    variance = statistics.variance(trial_sharpes) if len(trial_sharpes) > 1 else 0.0
    return deflate({
        "name": name,
        "returns": returns,
        "trial_sharpes": trial_sharpes,
        "sharpe": sharpe,
        "observations": len(returns),
        "skewness": skewness,
        "kurtosis": kurtosis,
        "trials": len(trial_sharpes),
        "trial_sharpe_variance": variance,
    })


def main() -> None:
    rng = random.Random(SEED)
    cases = []

    paper = deflate({
        "name": "paper_example",
        "sharpe": 2.5 / math.sqrt(250.0),
        "observations": 1250,
        "skewness": -3.0,
        "kurtosis": 10.0,
        "trials": 100,
        "trial_sharpe_variance": 0.5 / 250.0,
    })
    if abs(paper["probability"] - 0.9004) > 5e-4:
        sys.exit(f"paper example gives DSR {paper['probability']}, the paper says 0.9004")
    cases.append(paper)

    # Moments given directly: many trials, a single trial (SR0 = 0: the
    # probabilistic Sharpe ratio against zero), a thin-tailed series.
    cases.append(deflate({"name": "many_trials", "sharpe": 0.12, "observations": 500, "skewness": -1.2,
                          "kurtosis": 7.5, "trials": 10000, "trial_sharpe_variance": 0.0004}))
    cases.append(deflate({"name": "single_trial", "sharpe": 0.08, "observations": 250, "skewness": 0.3,
                          "kurtosis": 2.5, "trials": 1, "trial_sharpe_variance": 0.0}))

    normal = [rng.gauss(0.0008, 0.01) for _ in range(750)]
    normal_trials = [rng.gauss(0.0, 0.04) for _ in range(50)]
    cases.append(from_returns("normal_returns", normal, normal_trials))

    # Short-put-like: small gains most days, rare large losses (negative
    # skew, fat tails).
    short_put = [
        0.005 * (1.0 + 0.2 * rng.gauss(0.0, 1.0)) if rng.random() < 0.92 else -0.03 * (1.0 + 0.5 * abs(rng.gauss(0.0, 1.0)))
        for _ in range(500)
    ]
    short_put_trials = [rng.gauss(0.02, 0.05) for _ in range(200)]
    cases.append(from_returns("short_put_like", short_put, short_put_trials))

    edge = [rng.gauss(0.002, 0.01) for _ in range(1000)]
    edge_trials = [rng.gauss(0.05, 0.03) for _ in range(20)]
    cases.append(from_returns("strong_edge", edge, edge_trials))

    # 25 trials of 150 returns sharing a common factor (correlation ~0.6),
    # with slightly different drifts; the candidate is the best of them.
    factor = [rng.gauss(0.0, 1.0) for _ in range(150)]
    trial_returns = [
        [0.0002 * k + 0.01 * (math.sqrt(0.6) * f + math.sqrt(0.4) * rng.gauss(0.0, 1.0)) for f in factor]
        for k in range(25)
    ]
    sharpes = [moments(r)[0] for r in trial_returns]
    best = max(range(25), key=lambda k: sharpes[k])
    pairs = [statistics.correlation(trial_returns[i], trial_returns[j]) for i in range(25) for j in range(i + 1, 25)]
    rho = math.fsum(pairs) / len(pairs)
    rho_clamped = min(1.0, max(0.0, rho))
    sharpe, skewness, kurtosis = moments(trial_returns[best])
    cases.append(deflate({
        "name": "correlated_trials",
        "trial_returns": trial_returns,
        "candidate": best,
        "average_correlation": rho,
        "sharpe": sharpe,
        "observations": 150,
        "skewness": skewness,
        "kurtosis": kurtosis,
        "trials": rho_clamped + (1.0 - rho_clamped) * 25,
        "trial_sharpe_variance": statistics.variance(sharpes),
    }))
    # Nearly identical trials: N close to 1, where the formula would go
    # negative and SR0 is held at 0.
    cases.append(deflate({"name": "nearly_one_trial", "sharpe": 0.05, "observations": 400, "skewness": -0.5,
                          "kurtosis": 4.0, "trials": 1.05, "trial_sharpe_variance": 0.0009}))

    noise = [rng.gauss(0.0, 0.01) for _ in range(300)]
    noise_trials = [rng.gauss(0.0, 1.0 / math.sqrt(300.0)) for _ in range(400)]
    cases.append(from_returns("noise_many_trials", noise, noise_trials))

    out = {
        "meta": {
            "generated_by": f"Python {sys.version.split()[0]} standard library; tools/golden/deflated_sharpe.py seed {SEED}",
            "conventions": (
                "Bailey & Lopez de Prado (2014). Per-period (not annualized) Sharpe = mean / sample sd (n-1); "
                "skewness m3/m2^1.5 and non-excess kurtosis m4/m2^2 with population (1/n) central moments; "
                "trial variance = sample variance (n-1) of trial_sharpes; SR0 = 0 for one trial and max(0, formula) otherwise; "
                "correlated trials: N = rho + (1 - rho) M with rho the mean pairwise Pearson correlation clamped to [0, 1]; "
                "statistic = (SR - SR0) sqrt(T-1) / sqrt(1 - skew SR + (kurt-1)/4 SR^2); probability = Z(statistic)."
            ),
        },
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    for case in cases:
        print(f"{case['name']:>18}: N {case['trials']:.3f}  SR0 {case['expected_max_sharpe']:.6f}  DSR {case['probability']:.6f}")


if __name__ == "__main__":
    main()
