//! The pattern detector on seeded synthetic trades: a planted effect is
//! found with its name, a null set yields (almost) nothing, an effect
//! confined to the first half is rejected, small buckets are not tested,
//! shadow trades stay out of the p-values unless pooled; and the lifecycle
//! of stored patterns against a real `store::Store`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use core_domain::{
    ExitReason, LearningEventType, LearningRepository, MarketRegime, Money, PatternStatus, Price,
    Symbol, Trade, TradeExit,
};
use learning::patterns::{
    DetectionOutcome, Dimension, FeatureMap, PatternParams, RejectReason, SkipReason,
    TradeFeatures, Verdict, detect, detect_with_shadow, refresh,
};
use learning::stats::Correction;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SECTORS: [&str; 6] = [
    "Technology",
    "Health Care",
    "Financials",
    "Energy",
    "Industrials",
    "Consumer Staples",
];
const REGIMES: [MarketRegime; 4] = [
    MarketRegime::BullQuiet,
    MarketRegime::BullVolatile,
    MarketRegime::BearQuiet,
    MarketRegime::BearVolatile,
];

/// Where an extra ROI is planted.
#[derive(Clone, Copy)]
enum Effect {
    None,
    /// +`0` ROI for trades 18–20% OTM, all along.
    OtmHigh(f64),
    /// +`0` ROI for trades 18–20% OTM in the first half (by entry) only.
    OtmHighFirstHalf(f64),
}

/// A closed short put with the given context and ROI: one contract,
/// $5.00 premium, $5,000 margin, so ROI = P&L / 500,000 cents.
#[allow(clippy::too_many_arguments)]
fn closed_trade(
    id: String,
    entry_time: DateTime<Utc>,
    otm: f64,
    dte: i64,
    sector: Option<&str>,
    vix: Option<f64>,
    regime: MarketRegime,
    roi: f64,
) -> Trade {
    let entry_date = entry_time.with_timezone(&New_York).date_naive();
    let mut t = Trade::opened(
        id,
        Symbol::new("XYZ").unwrap(),
        Price::from_cents(8_000),
        entry_date + Duration::days(dte),
        entry_time,
        entry_date,
        Price::from_cents(500),
        1,
    );
    t.sector = sector.map(str::to_string);
    t.otm_pct = otm;
    t.vix_at_entry = vix;
    t.market_regime = regime;
    t.entry_underlying_price = Price::from_cents(10_000);
    t.margin_at_entry = Money::from_cents(500_000);
    // P&L = 50,000 − exit notional (cents); exit notional = exit raw price.
    let pl = (roi.min(0.099) * 500_000.0).round() as i64;
    let exit_date = entry_date + Duration::days((dte - 3).clamp(1, 5));
    t.close(TradeExit {
        time: entry_time + Duration::days((dte - 3).clamp(1, 5)),
        date: exit_date,
        exit_premium: Price::from_raw(50_000 - pl),
        reason: if pl > 0 {
            ExitReason::ProfitTarget
        } else {
            ExitReason::StopLoss
        },
        commission: Money::ZERO,
    })
    .unwrap();
    t
}

/// `n` trades on consecutive weekdays (two a day) from 2022-01-03 with
/// independent random context and a short-put-like ROI: a 75% chance of
/// a win of 0.5–4%, else a loss of 0–12%; plus the planted effect.
fn synthetic(seed: u64, n: usize, effect: Effect, id_prefix: &str) -> (Vec<Trade>, FeatureMap) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut day = NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let mut trades = Vec::with_capacity(n);
    let mut features = FeatureMap::new();
    for i in 0..n {
        if i > 0 && i % 2 == 0 {
            day += Duration::days(1);
            while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                day += Duration::days(1);
            }
        }
        let hour: u32 = rng.random_range(9..=15);
        let minute: u32 = if hour == 9 {
            rng.random_range(30..60)
        } else {
            rng.random_range(0..60)
        };
        let local = day.and_hms_opt(hour, minute, 0).unwrap();
        let entry_time = New_York
            .from_local_datetime(&local)
            .single()
            .unwrap()
            .with_timezone(&Utc);
        let otm: f64 = rng.random_range(0.15..0.20);
        let dte: i64 = rng.random_range(7..=14);
        let sector = SECTORS[rng.random_range(0..SECTORS.len())];
        let vix = rng.random_bool(0.9).then(|| rng.random_range(12.0..35.0));
        let regime = REGIMES[rng.random_range(0..REGIMES.len())];
        let mut roi = if rng.random_bool(0.75) {
            rng.random_range(0.005..0.04)
        } else {
            -rng.random_range(0.0..0.12)
        };
        let high_otm = otm >= 0.18;
        match effect {
            Effect::None => {}
            Effect::OtmHigh(e) if high_otm => roi += e,
            Effect::OtmHighFirstHalf(e) if high_otm && i < n / 2 => roi += e,
            _ => {}
        }
        let id = format!("{id_prefix}{seed}-{i:04}");
        features.insert(
            id.clone(),
            TradeFeatures {
                trend_strength: rng.random_bool(0.9).then(|| rng.random_range(0.0..0.1)),
                iv_rank: rng.random_bool(0.9).then(|| rng.random_range(0.0..100.0)),
            },
        );
        trades.push(closed_trade(
            id,
            entry_time,
            otm,
            dte,
            Some(sector),
            vix,
            regime,
            roi,
        ));
    }
    (trades, features)
}

fn names(report: &learning::patterns::DetectionReport) -> Vec<String> {
    report
        .patterns
        .iter()
        .map(|p| p.pattern_name.clone())
        .collect()
}

#[test]
fn planted_otm_effect_is_detected_with_its_name() {
    let (trades, features) = synthetic(7, 600, Effect::OtmHigh(0.02), "T");
    let report = detect(&trades, &features, &PatternParams::default()).unwrap();
    assert_eq!(report.outcome, DetectionOutcome::Ran);
    assert!(report.hypotheses >= 60, "{}", report.hypotheses);
    let found = report
        .patterns
        .iter()
        .find(|p| p.pattern_name == "18-20% OTM outperforms")
        .unwrap_or_else(|| panic!("not found; patterns: {:?}", names(&report)));
    assert_eq!(found.pattern_type, "otm_bucket");
    assert_eq!(found.status, PatternStatus::Active);
    assert!(found.p_value <= 0.05 && (found.confidence - (1.0 - found.p_value)).abs() < 1e-12);
    assert!(found.avg_roi > 0.0);
    let ctx = &found.context;
    assert_eq!(ctx["dimension"], "otm_bucket");
    assert_eq!(ctx["bucket"], "18-20% OTM");
    assert_eq!(ctx["correction"], "benjamini_hochberg");
    assert!(ctx["p_raw"].as_f64().unwrap() <= ctx["p_adjusted"].as_f64().unwrap());
    assert_eq!(ctx["persistence"]["windows"].as_array().unwrap().len(), 2);
    let n_bucket = ctx["n_bucket"].as_u64().unwrap();
    let n_rest = ctx["n_rest"].as_u64().unwrap();
    assert_eq!(n_bucket + n_rest, 600);
    assert_eq!(found.sample_size as u64, n_bucket);
    let diff = ctx["effect"]["mean_roi_difference"].as_f64().unwrap();
    assert!((0.012..0.03).contains(&diff), "{diff}");
    // Only the OTM dimension holds patterns (the other OTM buckets are,
    // correctly, worse than a rest that contains 18-20%).
    for p in &report.patterns {
        assert_eq!(p.pattern_type, "otm_bucket", "spurious: {}", p.pattern_name);
    }
    // The audit lists every comparison with a verdict.
    let otm = report
        .comparisons
        .iter()
        .filter(|c| c.dimension == Dimension::OtmBucket)
        .count();
    assert_eq!(otm, 3);
    // Deterministic: the same inputs give the same report.
    assert_eq!(
        detect(&trades, &features, &PatternParams::default()).unwrap(),
        report
    );
}

#[test]
fn holm_finds_the_planted_effect_too() {
    let (trades, features) = synthetic(11, 600, Effect::OtmHigh(0.02), "T");
    let params = PatternParams {
        correction: Correction::Holm,
        ..PatternParams::default()
    };
    let report = detect(&trades, &features, &params).unwrap();
    assert!(
        names(&report).contains(&"18-20% OTM outperforms".to_string()),
        "{:?}",
        names(&report)
    );
    assert_eq!(report.patterns[0].context["correction"], "holm");
}

/// The false-pattern rate on null data. Observed with the default
/// parameters: 1 of the 50 runs produced a pattern ("entry 12:00-13:00 ET
/// outperforms", seed 1024: Welch p 8e-8, permutation p 2e-4), with 78
/// hypotheses a run and 173 of the 3,900 raw p-values ≤ 0.05. Without the
/// exact confirmations it was 4 of 50. The bound asserted is 5 runs (10%),
/// twice α, so that a change of seeds or of the generator does not make
/// the test flaky, while a missing correction still fails it (78
/// uncorrected tests at 0.05 give some raw p ≤ 0.05 in about 98% of runs;
/// here 173 raw p-values ≤ 0.05 over 50 runs).
#[test]
fn null_data_rarely_yields_a_pattern() {
    let params = PatternParams::default();
    let mut runs_with_pattern = 0;
    let mut total = 0;
    let mut hypotheses = 0;
    let mut raw_significant = 0;
    for seed in 0..50 {
        let (trades, features) = synthetic(1_000 + seed, 300, Effect::None, "N");
        let report = detect(&trades, &features, &params).unwrap();
        hypotheses += report.hypotheses;
        raw_significant += report
            .comparisons
            .iter()
            .flat_map(|c| [c.roi_test, c.win_rate_test])
            .flatten()
            .filter(|t| t.p_raw <= 0.05)
            .count();
        if !report.patterns.is_empty() {
            runs_with_pattern += 1;
            total += report.patterns.len();
            eprintln!("seed {}: {:?}", 1_000 + seed, names(&report));
        }
    }
    eprintln!(
        "null: {runs_with_pattern} of 50 runs with a pattern ({total} patterns); \
         {hypotheses} hypotheses, {raw_significant} with raw p ≤ 0.05"
    );
    assert!(hypotheses / 50 >= 60, "too few hypotheses a run");
    // Uncorrected, about 5% of the hypotheses would pass.
    assert!(raw_significant > hypotheses / 50, "{raw_significant}");
    assert!(runs_with_pattern <= 5, "{runs_with_pattern} of 50 runs");
}

#[test]
fn an_effect_confined_to_the_first_half_is_not_persistent() {
    let (trades, features) = synthetic(21, 600, Effect::OtmHighFirstHalf(0.04), "H");
    let report = detect(&trades, &features, &PatternParams::default()).unwrap();
    assert!(
        !names(&report).contains(&"18-20% OTM outperforms".to_string()),
        "{:?}",
        names(&report)
    );
    let c = report
        .comparisons
        .iter()
        .find(|c| c.bucket == "18-20% OTM")
        .unwrap();
    // Significant over all trades, so persistence is what rejects it.
    assert!(c.roi_test.unwrap().rejected, "{c:?}");
    assert!(!c.persistent);
    let Verdict::Rejected { reasons } = &c.verdict else {
        panic!("{:?}", c.verdict)
    };
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, RejectReason::NotPersistent { .. })),
        "{reasons:?}"
    );
    let first = c.window_differences[0].unwrap();
    let second = c.window_differences[1].unwrap();
    assert!(
        first > 0.02 && second.abs() < first / 2.0,
        "{first} {second}"
    );

    // Without the persistence check the same data gives the pattern.
    let off = PatternParams {
        persistence_windows: 1,
        ..PatternParams::default()
    };
    let report = detect(&trades, &features, &off).unwrap();
    assert!(names(&report).contains(&"18-20% OTM outperforms".to_string()));
}

#[test]
fn buckets_below_the_minimum_are_not_tested_and_unknowns_are_left_out() {
    let (mut trades, features) = synthetic(3, 100, Effect::None, "S");
    // 5 utilities, 10 without a sector, 85 technology.
    for (i, t) in trades.iter_mut().enumerate() {
        t.sector = match i {
            0..5 => Some("Utilities".into()),
            5..15 => None,
            _ => Some("Technology".into()),
        };
    }
    let report = detect(&trades, &features, &PatternParams::default()).unwrap();
    let sector: Vec<_> = report
        .comparisons
        .iter()
        .filter(|c| c.dimension == Dimension::Sector)
        .collect();
    assert_eq!(sector.len(), 2);
    let tech = sector
        .iter()
        .find(|c| c.bucket == "Technology sector")
        .unwrap();
    let util = sector
        .iter()
        .find(|c| c.bucket == "Utilities sector")
        .unwrap();
    assert_eq!(util.bucket_stats.n, 5);
    assert_eq!(
        util.verdict,
        Verdict::NotTested {
            reason: SkipReason::BucketTooSmall { n: 5, min: 10 }
        }
    );
    // The 10 trades without a sector are neither bucket nor rest.
    assert_eq!(tech.bucket_stats.n, 85);
    assert_eq!(tech.rest_stats.unwrap().n, 5);
    assert_eq!(
        tech.verdict,
        Verdict::NotTested {
            reason: SkipReason::RestTooSmall { n: 5, min: 10 }
        }
    );
    assert!(util.roi_test.is_none() && tech.roi_test.is_none());
    assert!(util.win_rate_test.is_none() && tech.win_rate_test.is_none());
    // The family counts only tests that were made.
    let made = report
        .comparisons
        .iter()
        .flat_map(|c| [c.roi_test, c.win_rate_test])
        .flatten()
        .count();
    assert_eq!(made, report.hypotheses);
}

#[test]
fn two_bucket_dimensions_are_compared_once() {
    let (mut trades, features) = synthetic(5, 200, Effect::None, "M");
    for (i, t) in trades.iter_mut().enumerate() {
        t.market_regime = if i % 3 == 0 {
            MarketRegime::BearVolatile
        } else {
            MarketRegime::BullQuiet
        };
    }
    let report = detect(&trades, &features, &PatternParams::default()).unwrap();
    let regime: Vec<_> = report
        .comparisons
        .iter()
        .filter(|c| c.dimension == Dimension::MarketRegime)
        .collect();
    assert_eq!(regime.len(), 2);
    assert!(regime[0].roi_test.is_some());
    assert_eq!(
        regime[1].verdict,
        Verdict::NotTested {
            reason: SkipReason::MirrorOf {
                bucket: "bull_quiet regime".into()
            }
        }
    );
}

#[test]
fn too_few_closed_trades_yield_a_report_and_no_patterns() {
    let (mut trades, features) = synthetic(9, 35, Effect::OtmHigh(0.05), "F");
    // Reopen six: 29 closed trades remain.
    for t in trades.iter_mut().take(6) {
        t.status = core_domain::TradeStatus::Open;
    }
    let report = detect(&trades, &features, &PatternParams::default()).unwrap();
    assert_eq!(
        report.outcome,
        DetectionOutcome::TooFewTrades {
            closed: 29,
            needed: 30
        }
    );
    assert_eq!(report.excluded_trades, 6);
    assert!(report.patterns.is_empty() && report.comparisons.is_empty());
    assert!(report.summary.contains("at least 30"), "{}", report.summary);
}

#[test]
fn invalid_parameters_are_refused_by_name() {
    let params = PatternParams {
        alpha: 1.5,
        ..PatternParams::default()
    };
    let err = detect(&[], &FeatureMap::new(), &params).unwrap_err();
    assert!(err.to_string().contains("`alpha` = 1.5"), "{err}");
    let params = PatternParams {
        min_bucket: 1,
        ..PatternParams::default()
    };
    let err = detect(&[], &FeatureMap::new(), &params).unwrap_err();
    assert!(err.to_string().contains("min_bucket"), "{err}");
}

#[test]
fn shadow_trades_are_reported_apart_unless_pooled() {
    let (real, mut features) = synthetic(31, 300, Effect::None, "R");
    let (shadow, shadow_features) = synthetic(32, 900, Effect::OtmHigh(0.03), "SH");
    features.extend(shadow_features);
    let params = PatternParams::default();

    let alone = detect(&real, &features, &params).unwrap();
    let apart = detect_with_shadow(&real, &shadow, &features, &params).unwrap();
    assert_eq!(apart.shadow_trades, 900);
    assert!(!apart.shadow_pooled);
    assert_eq!(apart.tested_trades, 300);
    // Same family, same p-values, same patterns.
    assert_eq!(apart.hypotheses, alone.hypotheses);
    for (a, b) in apart.comparisons.iter().zip(&alone.comparisons) {
        assert_eq!(a.roi_test, b.roi_test);
        assert_eq!(a.win_rate_test, b.win_rate_test);
        assert_eq!(a.verdict, b.verdict);
        assert!(b.shadow.is_none());
    }
    assert_eq!(apart.patterns, alone.patterns);
    assert!(!names(&apart).contains(&"18-20% OTM outperforms".to_string()));
    // The shadow evidence is there, apart.
    let c = apart
        .comparisons
        .iter()
        .find(|c| c.bucket == "18-20% OTM")
        .unwrap();
    let s = c.shadow.unwrap();
    assert!(s.bucket.unwrap().n > 300 && s.roi_difference.unwrap() > 0.02);

    // Pooled on request: the shadow effect now drives the tests.
    let pooled = PatternParams {
        pool_shadow: true,
        ..PatternParams::default()
    };
    let report = detect_with_shadow(&real, &shadow, &features, &pooled).unwrap();
    assert!(report.shadow_pooled);
    assert_eq!(report.tested_trades, 1_200);
    assert_eq!(report.closed_trades, 300);
    let p = report
        .patterns
        .iter()
        .find(|p| p.pattern_name == "18-20% OTM outperforms")
        .unwrap_or_else(|| panic!("{:?}", names(&report)));
    assert_eq!(p.context["shadow_pooled"], true);
}

#[test]
fn trend_and_iv_rank_use_quantile_buckets_and_unknowns_are_excluded() {
    let (trades, features) = synthetic(41, 300, Effect::None, "Q");
    let report = detect(&trades, &features, &PatternParams::default()).unwrap();
    assert_eq!(report.edges.trend_strength.as_ref().unwrap().len(), 2);
    assert_eq!(report.edges.iv_rank.as_ref().unwrap().len(), 3);
    let iv: Vec<_> = report
        .comparisons
        .iter()
        .filter(|c| c.dimension == Dimension::IvRank)
        .collect();
    assert_eq!(
        iv.iter().map(|c| c.bucket.as_str()).collect::<Vec<_>>(),
        ["IV rank Q1", "IV rank Q2", "IV rank Q3", "IV rank Q4"]
    );
    let known = trades
        .iter()
        .filter(|t| features[&t.trade_id].iv_rank.is_some())
        .count();
    assert!(known < 300);
    let c = iv[0];
    assert_eq!(c.bucket_stats.n + c.rest_stats.unwrap().n, known);
    // Without features the two dimensions are simply absent.
    let report = detect(&trades, &FeatureMap::new(), &PatternParams::default()).unwrap();
    assert!(
        report
            .comparisons
            .iter()
            .all(|c| !matches!(c.dimension, Dimension::IvRank | Dimension::TrendStrength))
    );
}

fn temp_store() -> (tempfile::TempDir, store::Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trader.db");
    let store = store::Store::open_and_migrate(path.to_str().unwrap()).unwrap();
    (dir, store)
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, day, 21, 0, 0).unwrap()
}

#[test]
fn refresh_inserts_once_keeps_and_retires_with_events() {
    let (_dir, store) = temp_store();
    let params = PatternParams::default();
    let (trades, features) = synthetic(7, 600, Effect::OtmHigh(0.02), "T");

    // First run: every detected pattern is inserted with an event.
    let first = refresh(&store, &trades, &features, &params, at(3)).unwrap();
    assert!(!first.inserted.is_empty());
    assert!(first.kept.is_empty() && first.retired.is_empty());
    assert_eq!(first.events, first.inserted.len());
    let stored = store.patterns(Some(PatternStatus::Active)).unwrap();
    assert_eq!(stored.len(), first.inserted.len());
    let (id, planted) = stored
        .iter()
        .find(|(_, p)| p.pattern_name == "18-20% OTM outperforms")
        .unwrap();
    assert_eq!(planted.pattern_type, "otm_bucket");
    assert_eq!(
        planted.date_detected,
        NaiveDate::from_ymd_opt(2024, 6, 3).unwrap()
    );
    assert_eq!(planted.context["bucket"], "18-20% OTM");
    let history = store.learning_history(100).unwrap();
    assert_eq!(history.len(), first.inserted.len());
    let event = history
        .iter()
        .find(|e| e.pattern_name.as_deref() == Some("18-20% OTM outperforms"))
        .unwrap();
    assert_eq!(event.event_type, LearningEventType::PatternDetected);
    assert_eq!(event.event_date, at(3));
    assert_eq!(event.sample_size, Some(planted.sample_size));
    assert!(event.reasoning.contains("Welch") || event.reasoning.contains("win rate"));
    assert!(
        event.reasoning.contains("Benjamini-Hochberg"),
        "{}",
        event.reasoning
    );

    // Second run on the same trades: idempotent.
    let second = refresh(&store, &trades, &features, &params, at(4)).unwrap();
    assert!(second.inserted.is_empty() && second.retired.is_empty());
    assert_eq!(second.kept.len(), first.inserted.len());
    assert_eq!(second.events, 0);
    assert_eq!(store.patterns(None).unwrap().len(), first.inserted.len());
    assert_eq!(store.learning_history(100).unwrap().len(), history.len());

    // Too few trades: nothing changes.
    let few = refresh(&store, &trades[..20], &features, &params, at(5)).unwrap();
    assert!(matches!(
        few.detection.outcome,
        DetectionOutcome::TooFewTrades { .. }
    ));
    assert_eq!(
        store.patterns(Some(PatternStatus::Active)).unwrap().len(),
        first.inserted.len()
    );

    // The effect disappears: the pattern is retired, with its reason.
    let (null, null_features) = synthetic(1_003, 600, Effect::None, "N");
    let third = refresh(&store, &null, &null_features, &params, at(6)).unwrap();
    let retired = third
        .retired
        .iter()
        .find(|r| r.id == *id)
        .expect("the planted pattern is retired");
    assert!(
        retired.reason.contains("not re-detected"),
        "{}",
        retired.reason
    );
    let now_retired = store.patterns(Some(PatternStatus::Retired)).unwrap();
    assert!(now_retired.iter().any(|(rid, _)| rid == id));
    let history = store.learning_history(100).unwrap();
    let event = history
        .iter()
        .find(|e| {
            e.event_type == LearningEventType::PatternRetired
                && e.pattern_name.as_deref() == Some("18-20% OTM outperforms")
        })
        .unwrap();
    assert_eq!(event.event_date, at(6));
    assert!(
        event.reasoning.contains(&format!("pattern {id}")),
        "{}",
        event.reasoning
    );
    assert_eq!(
        third.events,
        third.inserted.len() + third.retired.len(),
        "one event per change"
    );

    // A later run that detects it again inserts a fresh row (the retired
    // one stays retired).
    let fourth = refresh(&store, &trades, &features, &params, at(7)).unwrap();
    assert!(
        fourth
            .inserted
            .iter()
            .any(|s| s.pattern.pattern_name == "18-20% OTM outperforms" && s.id != *id)
    );
}

#[test]
fn refresh_retires_a_duplicate_active_row() {
    let (_dir, store) = temp_store();
    let params = PatternParams::default();
    let (trades, features) = synthetic(7, 600, Effect::OtmHigh(0.02), "T");
    let first = refresh(&store, &trades, &features, &params, at(3)).unwrap();
    let original = &first.inserted[0];
    let dup = store.insert_pattern(&original.pattern).unwrap();
    let second = refresh(&store, &trades, &features, &params, at(4)).unwrap();
    assert!(second.inserted.is_empty());
    assert_eq!(second.retired.len(), 1);
    assert_eq!(second.retired[0].id, dup);
    assert!(second.retired[0].reason.contains("duplicate"));
    assert!(second.kept.iter().any(|k| k.id == original.id));
}
