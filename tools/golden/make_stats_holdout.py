#!/usr/bin/env python3
"""Held-out reference values for `learning::stats`, made with scipy and statsmodels.

The golden files copied from ../shared/golden (two_sample_tests.json,
multiple_testing.json, binomial_tests.json) are what the statistics were
written against; they hold only a handful of cases. This script makes a
larger set *of the same kind and the same JSON shape* that the code was not
tuned on, and writes it next to them:

    crates/learning/tests/golden/holdout_two_sample_tests.json
        Welch's t (scipy.stats.ttest_ind, equal_var=False), Mann-Whitney U
        (scipy.stats.mannwhitneyu, method="asymptotic", use_continuity=True,
        two-sided) and Cohen's d (pooled sd, numpy); sizes 5-200, unequal
        variances and sizes, heavy ties, skewed and heavy-tailed data, large
        shifts (p-values far below 1e-6) and no shift (p near 1).
    crates/learning/tests/golden/holdout_binomial_tests.json
        scipy.stats.binomtest(k, n, p0).pvalue (exact, two-sided); k = 0,
        k = n, k = n*p0 exactly, n from 1 to 10000, p0 from 0.001 to 0.999.
    crates/learning/tests/golden/holdout_multiple_testing.json
        statsmodels multipletests(p, alpha, method="holm" / "fdr_bh");
        lengths 1-50, ties, p-values 0 and 1, p-values exactly on the
        rejection thresholds alpha/(m-i) and alpha*(i+1)/m.

Every reference is cross-checked before it is written, and the script stops
on a disagreement:
  * Welch's t and df against statsmodels' ttest_ind(usevar="unequal") and a
    plain-Python formula (math.fsum); the p-value against statsmodels;
  * Mann-Whitney U and p against a plain-Python rank-sum implementation
    (average ranks, tie correction, continuity correction, math.erfc);
  * Cohen's d against a plain-Python formula;
  * binomtest against the same rule evaluated with mpmath at 60 digits;
  * Holm and BH against plain-Python step-down / step-up implementations.

Usage (from the repository root; deterministic, same output every run):

    python3 -m venv /tmp/venv-golden
    /tmp/venv-golden/bin/pip install scipy numpy statsmodels mpmath
    /tmp/venv-golden/bin/python tools/golden/make_stats_holdout.py

Other scipy/statsmodels versions should work too; the meta block records
which made a file (scipy 1.17.1, numpy 2.4.6, statsmodels 0.15.0, mpmath
1.4.1 for the committed files). Then `cargo test -p learning --test
golden_holdout` checks every case.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import mpmath
import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttest_ind as sm_ttest_ind

SEED = 20240607
OUT_DIR = Path(__file__).resolve().parents[2] / "crates" / "learning" / "tests" / "golden"
GENERATED_BY = (
    f"scipy {scipy.__version__}, numpy {np.__version__}, statsmodels {statsmodels.__version__}, "
    f"mpmath {mpmath.__version__}; tools/golden/make_stats_holdout.py seed {SEED}"
)
# The same convention phrases as the shared golden files (the tests look for them).
CONVENTIONS = (
    "Welch t-test two-sided; Mann-Whitney U asymptotic with continuity, two-sided; "
    "Cohen's d with pooled sd; binomial exact two-sided (scipy binomtest). "
    "Mann-Whitney U is the statistic of the first sample a (scipy's), ties get average "
    "ranks and the tie-corrected variance. Holm and Benjamini-Hochberg as statsmodels "
    "multipletests(method='holm' / 'fdr_bh'), adjusted p-values capped at 1, reject "
    "when the step-down / step-up rule says so. Tolerance (as the shared files are "
    "checked): 1e-6 absolute and relative on every number; reject flags exact."
)


def rel_close(x: float, y: float, tol: float) -> bool:
    return x == y or abs(x - y) <= tol * max(abs(x), abs(y))


def require(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"cross-check failed: {what}")


# ---------------------------------------------------------------- two samples


def plain_welch(a: list[float], b: list[float]) -> tuple[float, float]:
    na, nb = len(a), len(b)
    ma, mb = math.fsum(a) / na, math.fsum(b) / nb
    va = math.fsum((x - ma) ** 2 for x in a) / (na - 1)
    vb = math.fsum((x - mb) ** 2 for x in b) / (nb - 1)
    sa, sb = va / na, vb / nb
    t = (ma - mb) / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa * sa / (na - 1) + sb * sb / (nb - 1))
    return t, df


def plain_cohens_d(a: list[float], b: list[float]) -> float:
    na, nb = len(a), len(b)
    ma, mb = math.fsum(a) / na, math.fsum(b) / nb
    ssa = math.fsum((x - ma) ** 2 for x in a)
    ssb = math.fsum((x - mb) ** 2 for x in b)
    return (ma - mb) / math.sqrt((ssa + ssb) / (na + nb - 2))


def plain_mann_whitney(a: list[float], b: list[float]) -> tuple[float, float]:
    pooled = sorted([(x, 0) for x in a] + [(y, 1) for y in b])
    n1, n2 = len(a), len(b)
    n = n1 + n2
    r1 = 0.0
    tie = 0
    i = 0
    while i < n:
        j = i
        while j < n and pooled[j][0] == pooled[i][0]:
            j += 1
        rank = (i + 1 + j) / 2
        r1 += rank * sum(1 for k in range(i, j) if pooled[k][1] == 0)
        t = j - i
        tie += t**3 - t
        i = j
    u1 = r1 - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))))
    z = (u - n1 * n2 / 2 - 0.5) / sd
    return u1, min(1.0, math.erfc(z / math.sqrt(2)))


def numpy_cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = len(a), len(b)
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    return float((a.mean() - b.mean()) / np.sqrt(pooled))


def two_sample_case(category: str, a: np.ndarray, b: np.ndarray, decimals: int | None) -> dict:
    if decimals is not None:
        a, b = np.round(a, decimals), np.round(b, decimals)
    a_list = [float(x) for x in a]
    b_list = [float(x) for x in b]
    a, b = np.array(a_list), np.array(b_list)
    with warnings.catch_warnings():
        # scipy warns "precision loss ... nearly identical" for the constant
        # sample of `one_sample_constant`; its variance is exactly 0 and the
        # plain-Python cross-check below agrees.
        warnings.simplefilter("ignore", RuntimeWarning)
        w = stats.ttest_ind(a, b, equal_var=False)
    welch_df = float(w.df)
    u = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True)
    case = {
        "category": category,
        "a": a_list,
        "b": b_list,
        "welch_t": float(w.statistic),
        "welch_p": float(w.pvalue),
        "welch_df": welch_df,
        "mann_whitney_u": float(u.statistic),
        "mann_whitney_p": float(u.pvalue),
        "cohens_d": numpy_cohens_d(a, b),
    }
    for key, value in case.items():
        if key not in ("category", "a", "b"):
            require(math.isfinite(value), f"{category}: {key} = {value}")

    t, df = plain_welch(a_list, b_list)
    require(rel_close(t, case["welch_t"], 1e-10), f"{category}: welch t {t} vs {case['welch_t']}")
    require(rel_close(df, welch_df, 1e-10), f"{category}: welch df {df} vs {welch_df}")
    sm_t, sm_p, sm_df = sm_ttest_ind(a, b, usevar="unequal")
    require(rel_close(sm_t, case["welch_t"], 1e-10), f"{category}: statsmodels t {sm_t}")
    require(rel_close(sm_df, welch_df, 1e-10), f"{category}: statsmodels df {sm_df}")
    require(rel_close(sm_p, case["welch_p"], 1e-9), f"{category}: statsmodels p {sm_p} vs {case['welch_p']}")
    u1, up = plain_mann_whitney(a_list, b_list)
    require(u1 == case["mann_whitney_u"], f"{category}: U {u1} vs {case['mann_whitney_u']}")
    require(rel_close(up, case["mann_whitney_p"], 1e-9), f"{category}: U p {up} vs {case['mann_whitney_p']}")
    d = plain_cohens_d(a_list, b_list)
    require(rel_close(d, case["cohens_d"], 1e-10), f"{category}: d {d} vs {case['cohens_d']}")
    return case


def two_sample_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    sizes = [5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200]

    # Normal, equal variances, small shifts (returns-like scale), sizes 5..200.
    for _ in range(10):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        shift = rng.uniform(-0.05, 0.05)
        cases.append(two_sample_case(
            "normal_equal_var",
            rng.normal(0.01 + shift, 0.1, na), rng.normal(0.01, 0.1, nb), 5))

    # Unequal variances (sd ratio up to 20) and unequal sizes.
    for _ in range(12):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        sd_a = 0.1 * 10 ** rng.uniform(-1.3, 1.3)
        cases.append(two_sample_case(
            "unequal_var",
            rng.normal(rng.uniform(-0.1, 0.1), sd_a, na), rng.normal(0.0, 0.1, nb), None))

    # Small samples on both sides, one of them nearly constant.
    for na, nb in [(5, 5), (5, 200), (200, 5), (6, 9)]:
        cases.append(two_sample_case(
            "small_or_lopsided",
            rng.normal(0.02, 0.05, na), rng.normal(-0.01, 0.5, nb), 4))
    cases.append(two_sample_case(
        "one_sample_constant",
        np.full(8, 0.25), rng.normal(0.0, 0.2, 11), 3))

    # Heavy ties: small integer scores / counts and returns rounded to a few levels.
    for _ in range(8):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        lam = rng.uniform(0.5, 4.0)
        cases.append(two_sample_case(
            "ties_counts",
            rng.poisson(lam * rng.uniform(0.7, 1.4), na).astype(float),
            rng.poisson(lam, nb).astype(float), None))
    for _ in range(5):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        cases.append(two_sample_case(
            "ties_rounded",
            rng.normal(0.05, 0.3, na), rng.normal(0.0, 0.3, nb), 1))
    for na, nb in [(10, 12), (60, 45), (200, 180)]:
        # win/loss outcomes with a few discrete payoffs (options trades: full credit
        # kept, stopped out at 2x, small partial losses)
        payoffs = np.array([1.0, 1.0, 1.0, 0.5, -1.0, -2.0])
        cases.append(two_sample_case(
            "ties_discrete_payoffs",
            rng.choice(payoffs, na), rng.choice(payoffs[:-1], nb), None))

    # Skewed: log-normal, exponential, trade-like (many small wins, rare big losses).
    for _ in range(6):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        cases.append(two_sample_case(
            "lognormal",
            rng.lognormal(0.0, rng.uniform(0.5, 1.5), na),
            rng.lognormal(rng.uniform(-0.5, 0.5), 1.0, nb), 5))
    for _ in range(4):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        cases.append(two_sample_case(
            "exponential",
            rng.exponential(1.0, na), rng.exponential(rng.uniform(0.5, 2.0), nb), 4))
    for _ in range(5):
        na, nb = rng.choice(sizes[4:]), rng.choice(sizes[4:])
        def trades(n: int, win: float, loss: float, p_loss: float) -> np.ndarray:
            lost = rng.random(n) < p_loss
            return np.where(lost, -rng.exponential(loss, n), rng.uniform(0.2, 1.0, n) * win)
        cases.append(two_sample_case(
            "skewed_trades",
            trades(na, 0.5, 3.0, 0.1), trades(nb, 0.4, 2.0, 0.12), 3))

    # Heavy tails: Student t with 2 degrees of freedom.
    for _ in range(4):
        na, nb = rng.choice(sizes), rng.choice(sizes)
        cases.append(two_sample_case(
            "heavy_tailed",
            rng.standard_t(2, na) + rng.uniform(-0.5, 0.5), rng.standard_t(2, nb), None))

    # Large shifts: p-values far below 1e-6 (relative accuracy matters).
    for na, nb, shift in [(30, 30, 1.5), (100, 100, 1.0), (200, 200, 1.2), (200, 150, 2.5),
                          (50, 200, 3.0), (20, 25, 4.0)]:
        cases.append(two_sample_case(
            "large_shift",
            rng.normal(shift, 1.0, na), rng.normal(0.0, 1.3, nb), 6))

    # Same distribution: p-values near 1, U near n1*n2/2.
    for na, nb in [(5, 5), (40, 40), (150, 200)]:
        cases.append(two_sample_case(
            "no_shift",
            rng.normal(0.0, 1.0, na), rng.normal(0.0, 1.0, nb), 2))
    # Exactly mirrored samples: t = 0, U = n1*n2/2, p = 1.
    x = rng.normal(0.0, 1.0, 9)
    cases.append(two_sample_case("mirrored", x, -x, None))

    # Scales far from 1 (dollars, basis-point returns).
    cases.append(two_sample_case(
        "scale_large", rng.normal(1500.0, 800.0, 35), rng.normal(1200.0, 400.0, 50), 2))
    cases.append(two_sample_case(
        "scale_small", rng.normal(2e-4, 1e-4, 40), rng.normal(1e-4, 3e-4, 33), None))
    return cases


# ------------------------------------------------------------------- binomial


def mp_binomtest(k: int, n: int, p0: float) -> mpmath.mpf:
    """scipy's two-sided rule (relative tolerance 1e-7) in 60-digit arithmetic."""
    with mpmath.workdps(60):
        p = mpmath.mpf(p0)
        pmf = [mpmath.binomial(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
        if k == p0 * n:
            return mpmath.mpf(1)
        d = pmf[k] * (1 + mpmath.mpf("1e-7"))
        if k < p0 * n:
            total = mpmath.fsum(pmf[: k + 1])
            total += mpmath.fsum(q for q in pmf[math.ceil(p0 * n):] if q <= d)
        else:
            total = mpmath.fsum(pmf[k:])
            total += mpmath.fsum(q for q in pmf[: math.floor(p0 * n) + 1] if q <= d)
        return min(total, mpmath.mpf(1))


def binomial_cases(rng: np.random.Generator) -> list[dict]:
    specs: list[tuple[str, int, int, float]] = []
    # Edge counts: k = 0 and k = n, small and large n, various p0.
    for n in [1, 2, 5, 13, 40, 200]:
        for p0 in [0.5, 0.1, 0.93]:
            specs.append(("k_zero", 0, n, p0))
            specs.append(("k_all", n, n, p0))
    # n = 1000: 0.5^1000 = 9e-302 is still a normal double; k = n at p0 = 0.1 and
    # k = 0 at p0 = 0.93 would underflow to 0 (no relative accuracy), so not those.
    for k, p0 in [(0, 0.5), (1000, 0.5), (0, 0.1), (1000, 0.93)]:
        specs.append(("k_zero" if k == 0 else "k_all", k, 1000, p0))
    # k exactly at the mean n*p0 (p = 1) and next to it.
    for k, n, p0 in [(5, 10, 0.5), (3, 12, 0.25), (40, 100, 0.4), (6, 10, 0.5), (4, 10, 0.5),
                     (26, 100, 0.25), (24, 100, 0.25)]:
        specs.append(("at_or_near_mean", k, n, p0))
    # Small n, asymmetric p0 (the other tail is picked count by count).
    for k, n, p0 in [(0, 10, 0.3), (1, 3, 0.2), (2, 3, 0.2), (3, 7, 0.6), (1, 4, 1 / 3),
                     (5, 9, 0.75), (2, 20, 0.01), (1, 8, 0.05), (7, 8, 0.55), (4, 6, 0.999)]:
        specs.append(("small_n", k, n, p0))
    # Win rates of strategies: n up to a few thousand trades, p0 around 0.5-0.8.
    for _ in range(14):
        n = int(rng.choice([15, 30, 60, 120, 250, 500, 1200, 3000]))
        p0 = float(rng.choice([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8]))
        k = int(min(n, max(0, round(n * (p0 + rng.normal(0.0, 0.08))))))
        specs.append(("win_rate", k, n, p0))
    # Large n and extreme p0; tiny p-values (relative accuracy matters).
    for k, n, p0 in [(5200, 10000, 0.5), (4850, 10000, 0.5), (30, 10000, 0.001),
                     (2, 10000, 0.001), (9995, 10000, 0.999), (400, 1000, 0.5),
                     (700, 1000, 0.6), (90, 5000, 0.01), (51, 5000, 0.01), (1, 200, 0.3)]:
        specs.append(("large_n", k, n, p0))

    cases = []
    seen = set()
    for category, k, n, p0 in specs:
        if (k, n, p0) in seen:
            continue
        seen.add((k, n, p0))
        p = float(stats.binomtest(k, n, p0).pvalue)
        exact = mp_binomtest(k, n, p0)
        # A p-value below the smallest normal double (2.2e-308) would carry no
        # relative accuracy; none of the cases goes there.
        require(p >= sys.float_info.min, f"binomtest({k}, {n}, {p0}) = {p} underflows")
        require(rel_close(p, float(exact), 1e-9), f"binomtest({k}, {n}, {p0}) = {p}, mpmath {exact}")
        cases.append({"category": category, "trials": n, "wins": k, "p0": p0, "p_two_sided": p})
    return cases


# ------------------------------------------------------------ multiple testing


def plain_holm(p: list[float], alpha: float) -> tuple[list[bool], list[float]]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    reject, adjusted = [False] * m, [0.0] * m
    running, going = 0.0, True
    for rank, i in enumerate(order):
        going = going and p[i] <= alpha / (m - rank)
        reject[i] = going
        running = max(running, p[i] * (m - rank))
        adjusted[i] = min(running, 1.0)
    return reject, adjusted


def plain_bh(p: list[float], alpha: float) -> tuple[list[bool], list[float]]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    last = max((r for r, i in enumerate(order) if p[i] <= (r + 1) / m * alpha), default=-1)
    reject, adjusted = [False] * m, [0.0] * m
    running = math.inf
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, p[i] / ((rank + 1) / m))
        adjusted[i] = min(running, 1.0)
        reject[i] = rank <= last
    return reject, adjusted


def multiple_case(category: str, p: list[float], alpha: float) -> dict:
    p = [float(x) for x in p]
    bh_reject, bh_adj, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    holm_reject, holm_adj, _, _ = multipletests(p, alpha=alpha, method="holm")
    case = {
        "category": category,
        "p": p,
        "alpha": alpha,
        "bh_reject": [bool(x) for x in bh_reject],
        "bh_adjusted": [float(x) for x in bh_adj],
        "holm_reject": [bool(x) for x in holm_reject],
        "holm_adjusted": [float(x) for x in holm_adj],
    }
    r, a = plain_bh(p, alpha)
    require(r == case["bh_reject"], f"{category}: BH reject {r} vs {case['bh_reject']}")
    require(all(rel_close(x, y, 1e-12) for x, y in zip(a, case["bh_adjusted"])), f"{category}: BH adjusted")
    r, a = plain_holm(p, alpha)
    require(r == case["holm_reject"], f"{category}: Holm reject {r} vs {case['holm_reject']}")
    require(all(rel_close(x, y, 1e-12) for x, y in zip(a, case["holm_adjusted"])), f"{category}: Holm adjusted")
    return case


def multiple_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    # Single p-values.
    for p, alpha in [(0.03, 0.05), (0.05, 0.05), (0.7, 0.1), (0.0, 0.05), (1.0, 0.05)]:
        cases.append(multiple_case("single", [p], alpha))
    # Mixtures of signals (beta-distributed small p) and nulls (uniform), lengths 2-50.
    for m in [2, 3, 5, 8, 12, 20, 30, 50]:
        signals = int(rng.integers(0, m + 1))
        p = np.concatenate([rng.beta(0.3, 12.0, signals), rng.uniform(0, 1, m - signals)])
        rng.shuffle(p)
        alpha = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
        cases.append(multiple_case("mixture", list(np.round(p, int(rng.integers(3, 7)))), alpha))
    # Ties: p-values on a coarse grid (e.g. from exact tests / permutations).
    for m in [6, 15, 40]:
        p = rng.choice([0.001, 0.004, 0.01, 0.02, 0.02, 0.05, 0.2, 0.5, 1.0], m)
        cases.append(multiple_case("ties", list(p), 0.05))
    cases.append(multiple_case("all_equal", [0.02] * 7, 0.05))
    cases.append(multiple_case("all_equal", [0.3] * 25, 0.1))
    # Boundaries: zeros and ones.
    cases.append(multiple_case("zeros_and_ones", [0.0, 1.0, 0.0, 0.5, 1.0, 0.01], 0.05))
    cases.append(multiple_case("zeros_and_ones", [1.0] * 10, 0.05))
    cases.append(multiple_case("zeros_and_ones", [0.0] * 4, 0.01))
    # p exactly on the rejection thresholds, computed as statsmodels does
    # (alpha / (m - i) for Holm, (i + 1) / m * alpha for BH).
    for m, alpha in [(5, 0.05), (10, 0.1), (20, 0.05)]:
        holm_edge = [alpha / (m - i) for i in range(m)]
        cases.append(multiple_case("holm_thresholds", holm_edge, alpha))
        bh_edge = [(i + 1) / m * alpha for i in range(m)]
        cases.append(multiple_case("bh_thresholds", bh_edge, alpha))
        rng.shuffle(bh_edge)
        bh_edge[0] = min(1.0, bh_edge[0] * 1.0000001)  # one just above its threshold
        cases.append(multiple_case("bh_thresholds_perturbed", bh_edge, alpha))
    # Tiny p-values (relative accuracy of adjusted values).
    cases.append(multiple_case("tiny", [1e-300, 3e-12, 2.5e-8, 1e-6, 4e-3, 0.9], 0.05))
    # Holm stops at the first failure although later ones pass unadjusted.
    cases.append(multiple_case("step_down_stop", [0.004, 0.011, 0.012, 0.013, 0.04, 0.049], 0.05))
    # BH rejects earlier ranks that fail their own threshold when a later one passes.
    cases.append(multiple_case("step_up_rescue", [0.011, 0.012, 0.03, 0.035, 0.5], 0.05))
    return cases


def write(name: str, meta_extra: str, cases: list[dict]) -> None:
    meta = {"generated_by": GENERATED_BY, "conventions": CONVENTIONS + " " + meta_extra}
    path = OUT_DIR / name
    path.write_text(json.dumps({"meta": meta, "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write(
        "holdout_two_sample_tests.json",
        "Two-sample data rounded to a few decimals where the category says so (ties); "
        "references cross-checked against statsmodels ttest_ind and plain-Python formulas.",
        two_sample_cases(rng),
    )
    write(
        "holdout_binomial_tests.json",
        "p_two_sided cross-checked against the same rule in 60-digit mpmath (1e-9 relative).",
        binomial_cases(rng),
    )
    write(
        "holdout_multiple_testing.json",
        "Cross-checked against plain-Python Holm step-down and BH step-up.",
        multiple_cases(rng),
    )


if __name__ == "__main__":
    main()
