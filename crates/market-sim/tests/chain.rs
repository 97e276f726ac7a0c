//! The chain model's no-arbitrage and shape properties on real history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, NaiveDate};
use core_domain::{OptionContract, Right};
use market_sim::calendar::NyseCalendar;
use market_sim::data::real_history;
use market_sim::{ChainModel, ChainModelParams, QuoteContext};

/// Sample (symbol, session) pairs spread over the years with a VIX and without.
fn samples() -> Vec<(usize, usize)> {
    let h = real_history().unwrap();
    let mut out = Vec::new();
    for d in (300..h.dates.len()).step_by(97) {
        for s in (0..h.symbols.len()).step_by(3) {
            out.push((s, d));
        }
    }
    out
}

fn context(model: &ChainModel, s: usize, d: usize) -> Option<QuoteContext<'static>> {
    let h = real_history().unwrap();
    let cal = NyseCalendar::new();
    let spot = h.close(s, d - 1)?;
    let vol = model.vol_state(h, s, d)?;
    Some(QuoteContext {
        now: cal.session_open(h.dates[d])? + Duration::hours(1),
        spot,
        vol,
        sector: h.symbols[s].sector.as_str(),
    })
}

#[test]
fn test_theoretical_puts_are_monotone_and_convex_in_strike_and_calls_satisfy_parity() {
    let model = ChainModel::new(ChainModelParams::default());
    let cal = NyseCalendar::new();
    let h = real_history().unwrap();
    let mut checked = 0;
    for (s, d) in samples() {
        let Some(ctx) = context(&model, s, d) else {
            continue;
        };
        let date = h.dates[d];
        for expiry in model.expirations(&cal, date).into_iter().take(6) {
            let t = ChainModel::years_to_expiry(&cal, ctx.now, expiry);
            if t <= 0.0 {
                continue;
            }
            let strikes = model.strikes(ctx.spot);
            let r = ctx.vol.rate;
            let value = |right: Right, k: f64| {
                let iv = model.implied_vol(&ctx, k, t);
                let inputs = pricing::OptionInputs {
                    right,
                    spot: ctx.spot,
                    strike: k,
                    t_years: t,
                    rate: r,
                    dividend_yield: 0.0,
                };
                pricing::european_price(&inputs, iv).unwrap()
            };
            let put = |k: f64| value(Right::Put, k);
            let call = |k: f64| value(Right::Call, k);
            let ks: Vec<f64> = strikes.iter().map(|k| k.to_f64()).collect();
            let puts: Vec<f64> = ks.iter().map(|k| put(*k)).collect();
            let scale = ctx.spot * 1e-12;
            for w in puts.windows(2) {
                assert!(
                    w[1] >= w[0] - scale,
                    "put prices fall with strike on {date}: {w:?}"
                );
            }
            for (i, w) in puts.windows(3).enumerate() {
                // Equal strike steps: butterfly = P(k-1) - 2P(k) + P(k+1) >= 0.
                let fly = w[0] - 2.0 * w[1] + w[2];
                assert!(
                    fly >= -scale * 10.0,
                    "negative butterfly {fly} at {} on {date} ({}, spot {}, {expiry}, vol {:?})",
                    ks[i + 1],
                    h.symbols[s].symbol,
                    ctx.spot,
                    ctx.vol
                );
            }
            for k in &ks {
                let parity = call(*k) - put(*k) - (ctx.spot - k * (-r * t).exp());
                assert!(
                    parity.abs() < 1e-9 * ctx.spot.max(1.0),
                    "parity off by {parity}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} chains checked");
}

#[test]
fn test_quotes_have_positive_spreads_at_listed_ticks_and_parity_holds_on_mids() {
    let model = ChainModel::new(ChainModelParams::default());
    let cal = NyseCalendar::new();
    let h = real_history().unwrap();
    let mut quotes = 0;
    for (s, d) in samples() {
        let Some(ctx) = context(&model, s, d) else {
            continue;
        };
        let date = h.dates[d];
        let sym = h.symbols[s].symbol.clone();
        for expiry in model.expirations(&cal, date).into_iter().take(3) {
            let t = ChainModel::years_to_expiry(&cal, ctx.now, expiry);
            for k in model.strikes(ctx.spot) {
                let put = model.quote(
                    &cal,
                    &ctx,
                    &OptionContract::us(sym.clone(), Right::Put, k, expiry),
                    1,
                );
                let call = model.quote(
                    &cal,
                    &ctx,
                    &OptionContract::us(sym.clone(), Right::Call, k, expiry),
                    1,
                );
                for q in [&put.quote, &call.quote] {
                    let (bid, ask) = (q.bid.unwrap(), q.ask.unwrap());
                    assert!(bid.raw() >= 0 && ask > bid, "{bid} / {ask}");
                    for side in [bid, ask] {
                        let tick = model.tick(&sym, side.to_f64());
                        // A side is on the tick of its own level ($3.00 itself
                        // may come from rounding up on the $0.01 grid).
                        let below = model.tick(&sym, side.to_f64() - 0.0001);
                        assert!(
                            side.raw() % tick.raw() == 0 || side.raw() % below.raw() == 0,
                            "{side} off tick {tick}"
                        );
                    }
                    assert!(q.open_interest.unwrap() >= 0 && q.implied_vol.unwrap() > 0.0);
                    q.validate().unwrap();
                }
                // Put-call parity on mids, within the two half-spreads (and
                // the intrinsic floor of deep in-the-money options).
                let kf = k.to_f64();
                let lhs = call.quote.mid().unwrap().to_f64() - put.quote.mid().unwrap().to_f64();
                let rhs = ctx.spot - kf * (-ctx.vol.rate * t).exp();
                let tolerance = (call.quote.spread().unwrap().to_f64()
                    + put.quote.spread().unwrap().to_f64())
                    / 2.0
                    + 0.011
                    + kf * (1.0 - (-ctx.vol.rate * t).exp());
                assert!(
                    (lhs - rhs).abs() <= tolerance,
                    "parity on mids: {lhs} vs {rhs} (±{tolerance}) {sym} {kf} {expiry} on {date}"
                );
                quotes += 2;
            }
        }
    }
    assert!(quotes > 10_000, "only {quotes} quotes checked");
}

#[test]
fn test_put_skew_rises_below_the_money_and_steepens_for_short_expiries() {
    let model = ChainModel::new(ChainModelParams::default());
    let h = real_history().unwrap();
    let d = h
        .date_index(NaiveDate::from_ymd_opt(2016, 3, 1).unwrap())
        .unwrap();
    let ctx = context(&model, 0, d).unwrap();
    let slope = |t: f64| {
        // d IV / d ln K between 90% and 100% of spot.
        let lo = model.implied_vol(&ctx, ctx.spot * 0.9, t);
        let hi = model.implied_vol(&ctx, ctx.spot, t);
        (hi - lo) / (1.0f64 / 0.9).ln()
    };
    for t in [7.0 / 365.0, 30.0 / 365.0, 90.0 / 365.0] {
        let ivs: Vec<f64> = [0.8, 0.85, 0.9, 0.95, 1.0]
            .iter()
            .map(|m| model.implied_vol(&ctx, ctx.spot * m, t))
            .collect();
        for w in ivs.windows(2) {
            assert!(w[0] >= w[1], "IV must rise as the strike falls: {ivs:?}");
        }
    }
    assert!(slope(7.0 / 365.0) < slope(30.0 / 365.0));
    assert!(slope(30.0 / 365.0) < slope(90.0 / 365.0));
    assert!(slope(90.0 / 365.0) < 0.0);
}

#[test]
fn test_expirations_are_fridays_or_thursdays_before_a_holiday_and_weeklies_start_in_2011() {
    let model = ChainModel::new(ChainModelParams::default());
    let cal = NyseCalendar::new();
    let before = model.expirations(&cal, NaiveDate::from_ymd_opt(2008, 6, 2).unwrap());
    assert_eq!(before.len(), 4, "monthlies only: {before:?}");
    let after = model.expirations(&cal, NaiveDate::from_ymd_opt(2016, 3, 21).unwrap());
    assert!(after.len() >= 8, "{after:?}");
    // Good Friday 2016-03-25: that week's expiry is Thursday the 24th.
    assert!(
        after.contains(&NaiveDate::from_ymd_opt(2016, 3, 24).unwrap()),
        "{after:?}"
    );
    for e in &after {
        assert!(cal.is_session(*e), "{e} is not a session");
    }
}

#[test]
fn test_strikes_use_the_interval_of_the_price_level() {
    let model = ChainModel::new(ChainModelParams::default());
    let intervals = |spot: f64| {
        let k = model.strikes(spot);
        k[1].raw() - k[0].raw()
    };
    assert_eq!(intervals(20.0), 10_000);
    assert_eq!(intervals(40.0), 25_000);
    assert_eq!(intervals(120.0), 50_000);
    assert_eq!(intervals(400.0), 100_000);
}

#[test]
fn test_planted_edge_raises_implied_vol_only_in_its_bucket() {
    use market_sim::synthetic::{EdgeScope, PlantedEdge};
    let plain = ChainModel::new(ChainModelParams::default());
    let edged = ChainModel::new(ChainModelParams {
        planted_edges: vec![PlantedEdge {
            scope: EdgeScope::OtmBucket {
                min: 0.18,
                max: 0.20,
            },
            extra_vol: 0.05,
        }],
        ..ChainModelParams::default()
    });
    let cal = NyseCalendar::new();
    let h = real_history().unwrap();
    let d = h
        .date_index(NaiveDate::from_ymd_opt(2016, 3, 1).unwrap())
        .unwrap();
    let ctx = context(&plain, 0, d).unwrap();
    let expiry = plain.expirations(&cal, h.dates[d])[1];
    let iv = |m: &ChainModel, otm: f64| {
        let strike = core_domain::Price::from_f64(ctx.spot * (1.0 - otm)).unwrap();
        let c = OptionContract::us(h.symbols[0].symbol.clone(), Right::Put, strike, expiry);
        m.quote(&cal, &ctx, &c, 1).quote.implied_vol.unwrap()
    };
    assert!((iv(&edged, 0.19) - iv(&plain, 0.19) - 0.05).abs() < 1e-9);
    assert_eq!(iv(&edged, 0.10), iv(&plain, 0.10));
    assert_eq!(iv(&edged, 0.25), iv(&plain, 0.25));
}

#[test]
fn test_exchange_trades_a_synthetic_market_too() {
    use market_sim::synthetic::{SyntheticConfig, generate, null_chain_params};
    let start = NaiveDate::from_ymd_opt(2031, 1, 2).unwrap();
    let h = generate(&SyntheticConfig::null_market(5, start, 300)).unwrap();
    let model = ChainModel::new(null_chain_params());
    let later = h.dates[280];
    let s = h
        .symbol_index(&core_domain::Symbol::new("SYN03").unwrap())
        .unwrap();
    let expected = model.vol_state(&h, s, 280).unwrap();
    let ex = market_sim::SimExchange::new(
        std::sync::Arc::new(h),
        model,
        market_sim::ExchangeParams::default(),
        later,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use core_domain::MarketData;
        let sym = core_domain::Symbol::new("SYN03").unwrap();
        let chain = ex.option_chain(&sym).await.unwrap();
        assert!(!chain.expirations.is_empty() && !chain.strikes.is_empty());
        for k in [
            chain.strikes[0],
            chain.strikes[chain.strikes.len() / 2],
            *chain.strikes.last().unwrap(),
        ] {
            let c = OptionContract::us(sym.clone(), Right::Put, k, chain.expirations[1]);
            let q = ex.option_quotes(&[c]).await.unwrap();
            assert_eq!(q.len(), 1);
            // No skew, no premium, a flat term structure: every strike is
            // quoted at the measured realized volatility.
            let iv = q[0].quote.implied_vol.unwrap();
            assert!(
                (iv - expected.realized.max(0.08)).abs() < 1e-12,
                "{iv} vs {expected:?}"
            );
        }
    });
}
