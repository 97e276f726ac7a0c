#!/usr/bin/env python3
"""Held-out reference values for the `pricing` crate, made with QuantLib and scipy.

The golden files copied from ../shared/golden (bsm_european.json,
american_put.json, short_put_margin.json) are what the crate was written
against. This script makes a larger set *of the same kind* that the code was
not tuned on, with the same conventions, and writes it next to them:

    crates/pricing/tests/golden/holdout_bsm_european.json   European price and greeks
    crates/pricing/tests/golden/holdout_american_put.json   American puts
    crates/pricing/tests/golden/holdout_short_put_margin.json  Reg-T short put margin
    crates/pricing/tests/golden/holdout_bsm_deep_otm.json   deep out-of-the-money prices to 50 digits
                                                            (mpmath: QuantLib computes Φ(−d) as
                                                            1 − Φ(d) and loses them, see below)
    crates/pricing/tests/golden/holdout_normal_cdf.json     the normal CDF, far tails included
                                                            (mpmath at 50 digits: scipy's ndtr
                                                            itself is off by up to 1e-13
                                                            relative below z = -20)

Conventions (as in the originals): t_years = days/365 (Actual/365 Fixed);
rates and dividend yield continuously compounded; vega per 1.00 vol, theta
per year, rho per 1.00 rate; prices per share.

American puts carry two references: `price` from QuantLib's
FdBlackScholesVanillaEngine with 1000 time steps x 1000 space points (exactly
how the original american_put.json was made), and `price_high_precision`
from QuantLib's QdFpAmericanEngine (Andersen-Lake-Offengenden) with its
high-precision scheme. The 1000x1000 grid is itself off by up to a few 1e-3
on long-dated, high-priced puts; `fd1000_error` (= price -
price_high_precision) records by how much, so a test can tell the reference's
error from its own.

Margin cases are computed here from the formula with exact decimal
arithmetic: premium + max(20% x underlying - OTM amount, 10% x strike), per
share x 100 x contracts, OTM amount = max(underlying - strike, 0), rounded UP
to the cent where the exact result is not a whole cent.

Usage (from the repository root; deterministic, same output every run):

    python3 -m venv /tmp/golden-venv
    /tmp/golden-venv/bin/pip install QuantLib==1.44 scipy==1.17.1 mpmath
    /tmp/golden-venv/bin/python tools/golden/make_pricing_holdout.py

Other QuantLib/scipy versions work too; the meta block records which made a file.
scipy's closed form cross-checks every QuantLib European price (the script
stops on a disagreement).
"""

from __future__ import annotations

import json
import math
import random
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import mpmath
import QuantLib as ql
import scipy
from scipy.special import ndtr

SEED = 20240601
OUT_DIR = Path(__file__).resolve().parents[2] / "crates" / "pricing" / "tests" / "golden"
CONVENTIONS = (
    "t_years = days/365 (Actual/365 Fixed); rates and dividend yield continuously "
    "compounded; vega per 1.00 vol, theta per year, rho per 1.00 rate; option prices "
    "per share."
)
GENERATED_BY = f"QuantLib {ql.__version__}, scipy {scipy.__version__}, mpmath {mpmath.__version__}; tools/golden/make_pricing_holdout.py seed {SEED}"

TODAY = ql.Date(2, 1, 2024)
DAY_COUNT = ql.Actual365Fixed()


def process(spot: float, rate: float, dividend_yield: float, vol: float):
    ql.Settings.instance().evaluationDate = TODAY
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, dividend_yield, DAY_COUNT)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DAY_COUNT)),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DAY_COUNT)
        ),
    )


def european_case(spot, strike, rate, dividend_yield, vol, days, right, category):
    proc = process(spot, rate, dividend_yield, vol)
    option_type = ql.Option.Put if right == "P" else ql.Option.Call
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(option_type, strike), ql.EuropeanExercise(TODAY + days)
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
    check_against_scipy(option.NPV(), spot, strike, rate, dividend_yield, vol, days, right)
    return {
        "category": category,
        "spot": spot,
        "strike": strike,
        "rate": rate,
        "dividend_yield": dividend_yield,
        "vol": vol,
        "days": days,
        "t_years": days / 365.0,
        "right": right,
        "price": option.NPV(),
        "delta": option.delta(),
        "gamma": option.gamma(),
        "vega": option.vega(),
        "theta": option.theta(),
        "rho": option.rho(),
    }


def check_against_scipy(price, spot, strike, rate, dividend_yield, vol, days, right):
    """The closed form with scipy's normal CDF must agree with QuantLib: a
    guard against a convention slip (day count, compounding) in this script."""
    t = days / 365.0
    sd = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - dividend_yield) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    df_r, df_q = math.exp(-rate * t), math.exp(-dividend_yield * t)
    if right == "C":
        expected = spot * df_q * ndtr(d1) - strike * df_r * ndtr(d2)
    else:
        expected = strike * df_r * ndtr(-d2) - spot * df_q * ndtr(-d1)
    if abs(price - expected) > max(1e-9 * abs(expected), 1e-11):
        raise SystemExit(f"QuantLib {price} and scipy {expected} disagree for {locals()}")


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def bsm_cases(rng: random.Random) -> list[dict]:
    """Pairs of put and call on the same inputs, in five families."""
    day_choices = [1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365, 548, 730]
    params = []

    def add(category, n, spot_range, moneyness, days, vol_range, rate_range, div_range):
        for _ in range(n):
            spot = round(log_uniform(rng, *spot_range), 2)
            strike = round(spot * rng.uniform(*moneyness), 1 if spot > 20 else 2)
            strike = max(strike, 0.01)
            params.append(
                (
                    category,
                    spot,
                    strike,
                    round(rng.uniform(*rate_range), 4),
                    round(rng.uniform(*div_range), 4) if div_range[1] > 0 else 0.0,
                    round(rng.uniform(*vol_range), 4),
                    rng.choice(days) if isinstance(days, list) else days,
                )
            )

    add("general", 80, (1.0, 1000.0), (0.5, 1.6), day_choices, (0.05, 1.2), (-0.01, 0.1), (0.0, 0.0))
    add("dividends", 40, (5.0, 800.0), (0.6, 1.5), day_choices, (0.1, 0.9), (0.0, 0.08), (0.005, 0.1))
    add("near_expiry", 40, (5.0, 800.0), (0.85, 1.15), [1, 2, 3], (0.08, 1.5), (-0.01, 0.1), (0.0, 0.05))
    add("high_vol", 30, (2.0, 600.0), (0.4, 2.5), day_choices, (1.2, 3.0), (0.0, 0.08), (0.0, 0.06))
    # Deep out of the money: puts far below, calls far above the spot, with
    # enough vol and time that the price is tiny but not zero.
    for _ in range(30):
        spot = round(log_uniform(rng, 10.0, 900.0), 2)
        days = rng.choice([1, 2, 3, 7, 14, 30, 60])
        vol = round(rng.uniform(0.3, 2.0), 4)
        sd = vol * math.sqrt(days / 365.0)
        k = rng.uniform(3.0, 7.0)  # standard deviations out of the money
        below = round(spot * math.exp(-k * sd), 2)
        above = round(spot * math.exp(k * sd), 2)
        rate = round(rng.uniform(0.0, 0.08), 4)
        div = round(rng.uniform(0.0, 0.04), 4)
        params.append(("deep_otm", spot, max(below, 0.01), rate, div, vol, days))
        params.append(("deep_otm", spot, above, rate, div, vol, days))

    cases = []
    for category, spot, strike, rate, div, vol, days in params:
        for right in ("P", "C"):
            cases.append(european_case(spot, strike, rate, div, vol, days, right, category))
    return cases


def american_put_cases(rng: random.Random) -> list[dict]:
    day_choices = [1, 2, 3, 7, 14, 30, 45, 60, 90, 180, 365, 730]
    cases = []
    for i in range(50):
        spot = round(rng.uniform(20.0, 500.0), 2)
        strike = round(spot * rng.uniform(0.75, 1.3), 1)
        rate = round(rng.uniform(0.0, 0.08), 4)
        div = 0.0 if i % 3 == 0 else round(rng.uniform(0.0, 0.05), 4)
        vol = round(rng.uniform(0.1, 1.0), 4)
        days = rng.choice(day_choices)
        proc = process(spot, rate, div, vol)
        payoff = ql.PlainVanillaPayoff(ql.Option.Put, strike)
        american = ql.VanillaOption(payoff, ql.AmericanExercise(TODAY, TODAY + days))
        american.setPricingEngine(ql.FdBlackScholesVanillaEngine(proc, 1000, 1000))
        fd1000 = american.NPV()
        american.setPricingEngine(
            ql.QdFpAmericanEngine(proc, ql.QdFpAmericanEngine.highPrecisionScheme())
        )
        high_precision = american.NPV()
        european = ql.VanillaOption(payoff, ql.EuropeanExercise(TODAY + days))
        european.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
        cases.append(
            {
                "spot": spot,
                "strike": strike,
                "rate": rate,
                "dividend_yield": div,
                "vol": vol,
                "days": days,
                "t_years": days / 365.0,
                "price": fd1000,
                "price_high_precision": high_precision,
                "fd1000_error": fd1000 - high_precision,
                "european_price": european.NPV(),
            }
        )
    return cases


def margin_requirement(underlying: Decimal, strike: Decimal, premium: Decimal, contracts: int):
    otm = max(underlying - strike, Decimal(0))
    per_share = premium + max(Decimal("0.2") * underlying - otm, Decimal("0.1") * strike)
    dollars = per_share * 100 * contracts
    return dollars.quantize(Decimal("0.01"), rounding=ROUND_CEILING)


def margin_cases(rng: random.Random) -> list[dict]:
    cases = []
    for i in range(100):
        four_decimals = i % 8 == 7  # sub-cent prices exercise the round-up
        places = 4 if four_decimals else 2
        underlying = round(log_uniform(rng, 0.5 if four_decimals else 5.0, 600.0), places)
        strike = round(underlying * rng.uniform(0.6, 1.3), places)
        strike = max(strike, 0.5)
        premium = round(max(strike - underlying, 0.0) + rng.uniform(0.01, 0.08) * strike, places)
        contracts = rng.choice([1, 1, 2, 3, 5, 10, 20, 50])
        u, k, p = (Decimal(str(v)) for v in (underlying, strike, premium))
        requirement = margin_requirement(u, k, p, contracts)
        cases.append(
            {
                "underlying": underlying,
                "strike": strike,
                "premium": premium,
                "contracts": contracts,
                "requirement": float(requirement),
                "requirement_cents": int(requirement * 100),
            }
        )
    return cases


def deep_otm_cases(rng: random.Random) -> list[dict]:
    """Options 4 to 25 standard deviations out of the money, priced with
    mpmath at 50 digits. QuantLib's AnalyticEuropeanEngine is only accurate
    to a few ulp of the strike here (a put worth 5.97e-15 comes out as
    5.56e-15), so these values test relative accuracy where it cannot."""
    mpmath.mp.dps = 50
    cases = []
    for i in range(60):
        right = "P" if i % 2 == 0 else "C"
        spot = round(log_uniform(rng, 5.0, 900.0), 2)
        days = rng.choice([1, 2, 3, 7, 14, 30, 60, 182])
        vol = round(rng.uniform(0.05, 2.0), 4)
        rate = round(rng.uniform(-0.01, 0.08), 4)
        div = round(rng.uniform(0.0, 0.05), 4)
        k = rng.uniform(4.0, 25.0)
        sd = vol * math.sqrt(days / 365.0)
        strike = spot * math.exp(-k * sd if right == "P" else k * sd)
        strike = float(f"{strike:.6g}")
        s, kk, r, q, v = (mpmath.mpf(str(x)) for x in (spot, strike, rate, div, vol))
        t = mpmath.mpf(days) / 365
        std = v * mpmath.sqrt(t)
        d1 = (mpmath.log(s / kk) + (r - q) * t) / std + std / 2
        d2 = d1 - std
        spot_pv, strike_pv = s * mpmath.exp(-q * t), kk * mpmath.exp(-r * t)
        if right == "C":
            price = spot_pv * mpmath.ncdf(d1) - strike_pv * mpmath.ncdf(d2)
            delta = mpmath.exp(-q * t) * mpmath.ncdf(d1)
        else:
            price = strike_pv * mpmath.ncdf(-d2) - spot_pv * mpmath.ncdf(-d1)
            delta = -mpmath.exp(-q * t) * mpmath.ncdf(-d1)
        vega = spot_pv * mpmath.npdf(d1) * mpmath.sqrt(t)
        cases.append(
            {
                "spot": spot,
                "strike": strike,
                "rate": rate,
                "dividend_yield": div,
                "vol": vol,
                "days": days,
                "t_years": days / 365.0,
                "right": right,
                "standard_deviations_out": k,
                "price": float(price),
                "delta": float(delta),
                "vega": float(vega),
            }
        )
    return cases


def normal_cdf_cases() -> list[dict]:
    zs = [-38.0, -37.5, -35.0, -30.0, -26.0, -20.0, -15.0, -12.0, -10.0, -8.0, -7.0]
    zs += [round(-6.0 + 0.25 * i, 2) for i in range(61)]  # -6 .. 9
    zs += [1e-10, -1e-10, 1e-5, -1e-5]
    mpmath.mp.dps = 50
    return [{"z": z, "cdf": float(mpmath.ncdf(z))} for z in sorted(set(zs))]


def write(name: str, meta_extra: str, cases: list[dict]) -> None:
    meta = {
        "generated_by": GENERATED_BY,
        "conventions": CONVENTIONS + " " + meta_extra,
    }
    path = OUT_DIR / name
    path.write_text(json.dumps({"meta": meta, "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


def main() -> None:
    rng = random.Random(SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write(
        "holdout_bsm_european.json",
        "European put and call, QuantLib AnalyticEuropeanEngine; categories general, "
        "dividends, near_expiry (1-3 days), high_vol (1.2-3.0), deep_otm (3-7 sd out).",
        bsm_cases(rng),
    )
    write(
        "holdout_american_put.json",
        "American puts: price = QuantLib FdBlackScholesVanillaEngine 1000 time steps x 1000 "
        "points (as american_put.json); price_high_precision = QdFpAmericanEngine "
        "highPrecisionScheme; fd1000_error = price - price_high_precision; european_price "
        "= AnalyticEuropeanEngine.",
        american_put_cases(rng),
    )
    write(
        "holdout_short_put_margin.json",
        "Margin: Reg-T/Cboe short put formula premium + max(20% underlying - OTM amount, "
        "10% strike), per share x 100 x contracts, exact decimal arithmetic, rounded up "
        "to the cent where not a whole cent (requirement_cents is exact).",
        margin_cases(rng),
    )
    write(
        "holdout_bsm_deep_otm.json",
        "European options 4-25 standard deviations out of the money: price, delta and vega "
        "from the closed form evaluated with mpmath at 50 digits, rounded to the nearest double.",
        deep_otm_cases(rng),
    )
    write(
        "holdout_normal_cdf.json",
        "Standard normal CDF from mpmath.ncdf at 50 digits, rounded to the nearest double.",
        normal_cdf_cases(),
    )


if __name__ == "__main__":
    main()
