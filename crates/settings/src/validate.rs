//! Range and consistency checks on a settings tree whose types are right.

use std::collections::BTreeMap;

use chrono::NaiveTime;

use crate::load::{ConfigIssue, LIVE_TRADING_ENV};
use crate::{Range, Settings};

/// IB Gateway and TWS live-trading ports.
const LIVE_PORTS: [i64; 2] = [4001, 7496];
/// IB Gateway and TWS paper-trading ports.
const PAPER_PORTS: [i64; 2] = [4002, 7497];

struct Checker {
    issues: Vec<ConfigIssue>,
}

impl Checker {
    fn fail(&mut self, key: &str, message: String) {
        self.issues.push(ConfigIssue {
            key: key.into(),
            message,
            origin: None,
        });
    }

    fn check(&mut self, ok: bool, key: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(key, message());
        }
    }

    fn fraction_open(&mut self, key: &str, v: f64, lo: f64, hi: f64, meaning: &str) {
        self.check(v > lo && v < hi, key, || {
            format!("must be between {lo} and {hi} (exclusive), {meaning}; got {v}")
        });
    }

    fn fraction_upto(&mut self, key: &str, v: f64, meaning: &str) {
        self.check(v > 0.0 && v <= 1.0, key, || {
            format!("must be above 0 and at most 1, {meaning}; got {v}")
        });
    }

    fn at_least(&mut self, key: &str, v: i64, min: i64, meaning: &str) {
        self.check(v >= min, key, || {
            format!("must be at least {min}, {meaning}; got {v}")
        });
    }

    fn one_of(&mut self, key: &str, v: &str, allowed: &[&str]) {
        self.check(allowed.contains(&v), key, || {
            format!("must be one of {}; got {v:?}", quoted(allowed))
        });
    }

    fn range_f64(&mut self, key: &str, r: &Range<f64>, lo: f64, hi: f64, unit: &str) {
        self.check(r.min <= r.max, key, || {
            format!("min ({}) must not exceed max ({})", r.min, r.max)
        });
        self.check(r.min > lo && r.max < hi, key, || {
            format!(
                "must lie between {lo} and {hi} {unit} (exclusive); got {}..={}",
                r.min, r.max
            )
        });
    }
}

fn quoted(v: &[&str]) -> String {
    v.iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// Every range and consistency rule; returns all problems found.
pub fn validate(s: &Settings, env: &BTreeMap<String, String>) -> Vec<ConfigIssue> {
    let mut c = Checker { issues: Vec::new() };

    // strategy
    let st = &s.strategy;
    c.check(!st.name.trim().is_empty(), "strategy.name", || {
        "must not be empty".into()
    });
    c.one_of("strategy.option_type", &st.option_type, &["PUT"]);
    c.range_f64(
        "strategy.otm_range",
        &st.otm_range,
        0.0,
        1.0,
        "(a fraction of the price)",
    );
    c.range_f64(
        "strategy.premium_range",
        &st.premium_range,
        0.0,
        1_000.0,
        "dollars per share",
    );
    c.check(
        st.dte_range.min <= st.dte_range.max,
        "strategy.dte_range",
        || {
            format!(
                "min ({}) must not exceed max ({})",
                st.dte_range.min, st.dte_range.max
            )
        },
    );
    c.check(
        st.dte_range.min >= 1 && st.dte_range.max <= 365,
        "strategy.dte_range",
        || {
            format!(
                "must lie within 1..=365 days; got {}..={}",
                st.dte_range.min, st.dte_range.max
            )
        },
    );
    c.check(
        (1..=100).contains(&st.position_size),
        "strategy.position_size",
        || format!("must be 1 to 100 contracts; got {}", st.position_size),
    );
    c.at_least(
        "strategy.max_positions",
        st.max_positions,
        1,
        "a count of positions",
    );
    c.one_of(
        "strategy.trend_filter",
        &st.trend_filter,
        &["uptrend", "none"],
    );
    c.range_f64(
        "strategy.underlying_price_range",
        &st.underlying_price_range,
        0.0,
        1_000_000.0,
        "dollars",
    );
    c.check(st.min_avg_volume >= 0.0, "strategy.min_avg_volume", || {
        format!(
            "must not be negative (shares a day); got {}",
            st.min_avg_volume
        )
    });
    c.at_least(
        "strategy.min_open_interest",
        st.min_open_interest,
        0,
        "a count of contracts",
    );
    c.check(
        st.max_spread_pct > 0.0 && st.max_spread_pct <= 2.0,
        "strategy.max_spread_pct",
        || {
            format!(
                "must be above 0 and at most 2 (a fraction of the mid); got {}",
                st.max_spread_pct
            )
        },
    );
    // The strategy crate's own check, as a safety net: anything it would
    // refuse at scan time is refused here.
    if let Err(e) = strategy_naked_put::check_params(&s.strategy_params())
        && c.issues.iter().all(|i| !i.key.starts_with("strategy"))
    {
        c.fail("strategy", e.to_string());
    }
    c.fraction_open(
        "strategy.exits.profit_target",
        st.exits.profit_target,
        0.0,
        1.0,
        "the fraction of maximum profit to capture",
    );
    c.check(
        st.exits.stop_loss < 0.0 && st.exits.stop_loss >= -100.0,
        "strategy.exits.stop_loss",
        || {
            format!(
                "must be a negative multiple of the premium (e.g. -2.00 for -200%); got {}",
                st.exits.stop_loss
            )
        },
    );
    c.check(
        st.exits.time_exit_dte >= 0 && st.exits.time_exit_dte < st.dte_range.min,
        "strategy.exits.time_exit_dte",
        || {
            format!(
                "must be at least 0 and below strategy.dte_range.min ({}), or every entry would exit at once; got {}",
                st.dte_range.min, st.exits.time_exit_dte
            )
        },
    );

    // risk
    let r = &s.risk;
    c.fraction_open(
        "risk.max_daily_loss",
        r.max_daily_loss,
        -1.0,
        0.0,
        "a negative fraction of net liquidation such as -0.02",
    );
    c.check(r.max_position_loss < 0.0, "risk.max_position_loss", || {
        format!(
            "must be a negative number of dollars such as -500; got {}",
            r.max_position_loss
        )
    });
    c.fraction_upto(
        "risk.max_portfolio_var_95",
        r.max_portfolio_var_95,
        "a fraction of net liquidation",
    );
    c.fraction_upto(
        "risk.max_sector_concentration",
        r.max_sector_concentration,
        "a share of margin",
    );
    c.fraction_upto("risk.max_correlation", r.max_correlation, "a correlation");
    c.fraction_upto(
        "risk.max_margin_utilization",
        r.max_margin_utilization,
        "a fraction of net liquidation",
    );
    c.at_least(
        "risk.max_positions_per_day",
        r.max_positions_per_day,
        1,
        "a count of new positions",
    );

    // the replay
    let rp = &s.broker.sim.replay;
    let from = rp.from.trim().parse::<chrono::NaiveDate>().ok();
    let to = rp.to.trim().parse::<chrono::NaiveDate>().ok();
    c.check(from.is_some(), "broker.sim.replay.from", || {
        format!("must be a date \"YYYY-MM-DD\"; got {:?}", rp.from)
    });
    c.check(to.is_some(), "broker.sim.replay.to", || {
        format!("must be a date \"YYYY-MM-DD\"; got {:?}", rp.to)
    });
    if let (Some(f), Some(t)) = (from, to) {
        c.check(f <= t, "broker.sim.replay.to", || {
            format!("must not be before broker.sim.replay.from ({f}); got {t}")
        });
    }
    c.check(
        rp.minutes_per_second.is_finite() && rp.minutes_per_second >= 0.0,
        "broker.sim.replay.minutes_per_second",
        || {
            format!(
                "must be 0 (as fast as possible) or a positive number of simulated minutes per second; got {}",
                rp.minutes_per_second
            )
        },
    );
    c.check(
        !rp.report_dir.trim().is_empty(),
        "broker.sim.replay.report_dir",
        || "must name a directory".to_string(),
    );

    // circuit breakers
    let cb = &s.circuit_breakers;
    c.fraction_open(
        "circuit_breakers.daily_loss.threshold",
        cb.daily_loss.threshold,
        -1.0,
        0.0,
        "a negative fraction of net liquidation",
    );
    c.one_of(
        "circuit_breakers.daily_loss.action",
        &cb.daily_loss.action,
        &["halt_trading", "reduce_only"],
    );
    c.check(
        cb.position_loss.threshold < 0.0,
        "circuit_breakers.position_loss.threshold",
        || {
            format!(
                "must be a negative number of dollars; got {}",
                cb.position_loss.threshold
            )
        },
    );
    c.one_of(
        "circuit_breakers.position_loss.action",
        &cb.position_loss.action,
        &["exit_position"],
    );
    c.at_least(
        "circuit_breakers.api_errors.max_per_hour",
        cb.api_errors.max_per_hour,
        1,
        "a count of errors",
    );
    c.one_of(
        "circuit_breakers.api_errors.action",
        &cb.api_errors.action,
        &["halt_trading", "reduce_only"],
    );

    // learning
    let l = &s.learning;
    c.at_least(
        "learning.min_trades_before_analysis",
        l.min_trades_before_analysis,
        1,
        "a count of closed trades",
    );
    c.check(
        l.significance_level > 0.0 && l.significance_level <= 0.10,
        "learning.significance_level",
        || {
            format!(
                "must be above 0 and at most 0.10; got {}",
                l.significance_level
            )
        },
    );
    c.check(l.min_effect_roi >= 0.0, "learning.min_effect_roi", || {
        format!("must not be negative; got {}", l.min_effect_roi)
    });
    c.at_least(
        "learning.max_parameter_changes_per_month",
        l.max_parameter_changes_per_month,
        0,
        "a count (0 freezes the parameters)",
    );
    c.fraction_upto(
        "learning.max_parameter_shift",
        l.max_parameter_shift,
        "a relative change",
    );
    c.check(
        l.experiment_allocation > 0.0 && l.experiment_allocation <= 0.5,
        "learning.experiment_allocation",
        || {
            format!(
                "must be above 0 and at most 0.5 (the test arm's share); got {}",
                l.experiment_allocation
            )
        },
    );

    // broker
    let b = &s.broker;
    c.one_of("broker.kind", &b.kind, &["sim", "ibkr"]);
    c.one_of("broker.trading_mode", &b.trading_mode, &["paper", "live"]);
    c.check(
        market_sim::universe::UNIVERSES.contains(&b.sim.universe.as_str()),
        "broker.sim.universe",
        || {
            format!(
                "must be one of {}; got {:?}",
                market_sim::universe::UNIVERSES.join(", "),
                b.sim.universe
            )
        },
    );
    for (key, message) in b.sim.exchange.problems() {
        c.fail(&format!("broker.sim.exchange.{key}"), message);
    }
    for (key, message) in b.sim.chain.problems() {
        c.fail(&format!("broker.sim.chain.{key}"), message);
    }
    c.check(!b.ibkr.host.trim().is_empty(), "broker.ibkr.host", || {
        "must not be empty".into()
    });
    c.check(
        (1..=65_535).contains(&b.ibkr.port),
        "broker.ibkr.port",
        || format!("must be a TCP port 1-65535; got {}", b.ibkr.port),
    );
    c.check(
        (0..=i64::from(i32::MAX)).contains(&b.ibkr.client_id),
        "broker.ibkr.client_id",
        || format!("must be 0 or more; got {}", b.ibkr.client_id),
    );
    c.one_of(
        "broker.ibkr.market_data",
        &b.ibkr.market_data,
        &["realtime", "frozen", "delayed", "delayed_frozen"],
    );
    for (key, value, range) in [
        (
            "broker.ibkr.connect_attempts",
            b.ibkr.connect_attempts,
            1..=100,
        ),
        (
            "broker.ibkr.reconnect_max_secs",
            b.ibkr.reconnect_max_secs,
            1..=3_600,
        ),
        (
            "broker.ibkr.request_timeout_secs",
            b.ibkr.request_timeout_secs,
            1..=600,
        ),
        (
            "broker.ibkr.messages_per_second",
            b.ibkr.messages_per_second,
            // IBKR's limit; the simulated gateway has none.
            if b.ibkr.sim_control.trim().is_empty() {
                1..=50
            } else {
                1..=100_000
            },
        ),
        (
            "broker.ibkr.commission_wait_secs",
            b.ibkr.commission_wait_secs,
            1..=3_600,
        ),
        (
            "broker.ibkr.max_market_data_lines",
            b.ibkr.max_market_data_lines,
            1..=10_000,
        ),
    ] {
        c.check(range.contains(&value), key, || {
            format!(
                "must be within {}..={}; got {value}",
                range.start(),
                range.end()
            )
        });
    }
    if !b.ibkr.sim_control.trim().is_empty() {
        c.check(
            b.ibkr
                .sim_control
                .trim()
                .parse::<std::net::SocketAddr>()
                .is_ok(),
            "broker.ibkr.sim_control",
            || {
                format!(
                    "must be the simulated gateway's control address host:port, e.g. \"127.0.0.1:4003\" \
                     (or empty for a real TWS / IB Gateway); got {:?}",
                    b.ibkr.sim_control
                )
            },
        );
        c.check(b.trading_mode == "paper", "broker.ibkr.sim_control", || {
            "the simulated gateway is for paper trading; set broker.trading_mode = \"paper\"".into()
        });
    }
    if b.trading_mode == "live" {
        c.check(b.kind == "ibkr", "broker.trading_mode", || {
            "\"live\" needs broker.kind = \"ibkr\"".into()
        });
        let env_ok = env
            .get(LIVE_TRADING_ENV)
            .is_some_and(|v| v.trim() == "enabled");
        c.check(env_ok, "broker.trading_mode", || {
            format!(
                "\"live\" also needs the environment variable {LIVE_TRADING_ENV}=enabled; \
                 without both opt-ins the trader stays on paper"
            )
        });
        c.check(
            !PAPER_PORTS.contains(&b.ibkr.port),
            "broker.ibkr.port",
            || {
                format!(
                    "{} is a paper-trading port but broker.trading_mode is \"live\"",
                    b.ibkr.port
                )
            },
        );
    } else if b.kind == "ibkr" {
        c.check(
            !LIVE_PORTS.contains(&b.ibkr.port),
            "broker.ibkr.port",
            || {
                format!(
                    "{} is a live-trading port (4001 IB Gateway, 7496 TWS) but broker.trading_mode is \"paper\"; \
                     use 4002 or 7497",
                    b.ibkr.port
                )
            },
        );
    }

    // schedule
    let sc = &s.schedule;
    c.check(
        sc.timezone.parse::<chrono_tz::Tz>().is_ok(),
        "schedule.timezone",
        || {
            format!(
                "must be an IANA time zone such as \"America/New_York\"; got {:?}",
                sc.timezone
            )
        },
    );
    let open = parse_hhmm(&sc.market_open);
    let close = parse_hhmm(&sc.market_close);
    c.check(open.is_some(), "schedule.market_open", || {
        format!("must be a time \"HH:MM\"; got {:?}", sc.market_open)
    });
    c.check(close.is_some(), "schedule.market_close", || {
        format!("must be a time \"HH:MM\"; got {:?}", sc.market_close)
    });
    if let (Some(o), Some(cl)) = (open, close) {
        c.check(o < cl, "schedule.market_close", || {
            format!(
                "must be after schedule.market_open ({}); got {}",
                sc.market_open, sc.market_close
            )
        });
    }
    c.check(
        (1..=240).contains(&sc.cycle_minutes_market),
        "schedule.cycle_minutes_market",
        || format!("must be 1 to 240 minutes; got {}", sc.cycle_minutes_market),
    );
    c.check(
        (1..=1_440).contains(&sc.cycle_minutes_off_hours),
        "schedule.cycle_minutes_off_hours",
        || {
            format!(
                "must be 1 to 1440 minutes; got {}",
                sc.cycle_minutes_off_hours
            )
        },
    );
    c.check(
        (0..=120).contains(&sc.no_entries_last_minutes),
        "schedule.no_entries_last_minutes",
        || {
            format!(
                "must be 0 to 120 minutes; got {}",
                sc.no_entries_last_minutes
            )
        },
    );

    // database
    let url = s.database.url.trim();
    let supported = url == ":memory:"
        || url.starts_with("sqlite:")
        || (!url.contains("://") && !url.is_empty());
    c.check(supported, "database.url", || {
        if url.starts_with("postgres") {
            "PostgreSQL is not supported yet; use \"sqlite://PATH\"".into()
        } else {
            format!("must be \"sqlite://PATH\", a file path or \":memory:\"; got {url:?}")
        }
    });
    c.one_of(
        "database.commit",
        &s.database.commit,
        &["auto", "cycle", "write"],
    );
    c.check(
        !(s.database.commit == "cycle" && s.broker.kind == "ibkr"),
        "database.commit",
        || {
            "\"cycle\" is for the simulated broker only: with Interactive Brokers an order's intent \
             must be on disk before the order is sent; use \"auto\" or \"write\""
                .into()
        },
    );

    // logging
    let lg = &s.logging;
    c.check(
        tracing_subscriber::EnvFilter::try_new(&lg.level).is_ok(),
        "logging.level",
        || {
            format!(
                "must be a level (error, warn, info, debug, trace) or tracing directives; got {:?}",
                lg.level
            )
        },
    );
    c.check(
        !lg.file || !lg.directory.trim().is_empty(),
        "logging.directory",
        || "must not be empty while logging.file is true".into(),
    );

    // agent
    let a = &s.agent;
    c.check(!a.model.trim().is_empty(), "agent.model", || {
        "must not be empty".into()
    });
    c.check(
        (1..=64_000).contains(&a.max_tokens),
        "agent.max_tokens",
        || format!("must be 1 to 64000; got {}", a.max_tokens),
    );
    c.check(
        a.base_url.starts_with("http://") || a.base_url.starts_with("https://"),
        "agent.base_url",
        || format!("must be an http(s) URL; got {:?}", a.base_url),
    );
    for (key, value, lo, hi) in [
        ("agent.timeout_seconds", a.timeout_seconds, 1, 3_600),
        ("agent.max_retries", a.max_retries, 0, 20),
        ("agent.retry_base_ms", a.retry_base_ms, 1, 60_000),
        ("agent.retry_max_ms", a.retry_max_ms, 1, 600_000),
        ("agent.deadline_seconds", a.deadline_seconds, 1, 3_600),
        ("agent.window_days", a.window_days, 0, 36_500),
        (
            "agent.decide_timeout_seconds",
            a.decide_timeout_seconds,
            1,
            600,
        ),
    ] {
        c.check((lo..=hi).contains(&value), key, || {
            format!("must be {lo} to {hi}; got {value}")
        });
    }
    c.check(
        a.retry_max_ms >= a.retry_base_ms,
        "agent.retry_max_ms",
        || {
            format!(
                "must be at least agent.retry_base_ms ({}); got {}",
                a.retry_base_ms, a.retry_max_ms
            )
        },
    );
    for (key, value) in [
        ("agent.monthly_budget_usd", a.monthly_budget_usd),
        ("agent.input_price_per_mtok", a.input_price_per_mtok),
        ("agent.output_price_per_mtok", a.output_price_per_mtok),
    ] {
        c.check(value.is_finite() && value >= 0.0, key, || {
            format!("must be a number >= 0; got {value}")
        });
    }
    c.check(
        crate::model::parse_weekday(&a.weekly_day).is_some(),
        "agent.weekly_day",
        || {
            format!(
                "must be one of mon, tue, wed, thu, fri, sat, sun; got {:?}",
                a.weekly_day
            )
        },
    );
    c.check(
        crate::model::parse_hh_mm(&a.weekly_time).is_some(),
        "agent.weekly_time",
        || format!("must be HH:MM (24-hour, New York); got {:?}", a.weekly_time),
    );

    crate::cockpit::check(s, env, &mut c.issues);

    // The risk crate's own check of the limits the binaries hand it.
    if let Err(e) = s.risk_limits().validate()
        && c.issues
            .iter()
            .all(|i| !i.key.starts_with("risk") && !i.key.starts_with("circuit_breakers"))
    {
        c.fail("risk", e.to_string());
    }
    c.issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &Settings, env: &[(&str, &str)]) -> Vec<String> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate(s, &env).into_iter().map(|i| i.key).collect()
    }

    #[test]
    fn test_defaults_are_valid() {
        assert!(keys(&Settings::default(), &[]).is_empty());
    }

    #[test]
    fn test_live_mode_needs_ibkr_and_the_environment_opt_in() {
        let mut s = Settings::default();
        s.broker.trading_mode = "live".into();
        s.broker.kind = "ibkr".into();
        s.broker.ibkr.port = 4001;
        assert_eq!(keys(&s, &[]), vec!["broker.trading_mode"]);
        assert!(keys(&s, &[(LIVE_TRADING_ENV, "enabled")]).is_empty());
        s.broker.ibkr.port = 4002;
        assert_eq!(
            keys(&s, &[(LIVE_TRADING_ENV, "enabled")]),
            vec!["broker.ibkr.port"]
        );
    }

    #[test]
    fn test_the_universe_and_the_iv_model_are_checked() {
        let mut s = Settings::default();
        s.broker.sim.universe = "us421".into();
        assert!(keys(&s, &[]).is_empty());
        s.broker.sim.universe = "nasdaq".into();
        s.broker.sim.chain.iv_model = "vix".into();
        s.broker.sim.chain.iv_coef_vix = f64::NAN;
        assert_eq!(
            keys(&s, &[]),
            vec![
                "broker.sim.universe",
                "broker.sim.chain.iv_model",
                "broker.sim.chain.iv_coef_vix"
            ]
        );
    }

    #[test]
    fn test_agent_keys_are_checked() {
        let mut s = Settings::default();
        s.agent.weekly_day = "caturday".into();
        s.agent.weekly_time = "25:00".into();
        s.agent.base_url = "ftp://x".into();
        s.agent.retry_base_ms = 10_000;
        s.agent.retry_max_ms = 1_000;
        s.agent.monthly_budget_usd = -1.0;
        s.agent.decide_timeout_seconds = 0;
        assert_eq!(
            keys(&s, &[]),
            vec![
                "agent.base_url",
                "agent.decide_timeout_seconds",
                "agent.retry_max_ms",
                "agent.monthly_budget_usd",
                "agent.weekly_day",
                "agent.weekly_time",
            ]
        );
        assert_eq!(
            crate::model::parse_weekday("Saturday"),
            Some(chrono::Weekday::Sat)
        );
        assert_eq!(crate::model::parse_weekday("sa"), None);
        assert_eq!(crate::model::parse_weekday("satx"), None);
    }

    #[test]
    fn test_paper_mode_refuses_a_live_port() {
        let mut s = Settings::default();
        s.broker.kind = "ibkr".into();
        s.broker.ibkr.port = 7496;
        assert_eq!(keys(&s, &[]), vec!["broker.ibkr.port"]);
    }

    #[test]
    fn test_ranges_and_boundaries() {
        let mut s = Settings::default();
        s.strategy.otm_range = Range {
            min: 0.2,
            max: 0.15,
        };
        s.strategy.exits.time_exit_dte = 7;
        s.risk.max_daily_loss = 0.0;
        s.schedule.market_close = "09:00".into();
        s.database.url = "postgres://u:p@h/db".into();
        let k = keys(&s, &[]);
        for expected in [
            "strategy.otm_range",
            "strategy.exits.time_exit_dte",
            "risk.max_daily_loss",
            "schedule.market_close",
            "database.url",
        ] {
            assert!(
                k.contains(&expected.to_string()),
                "{expected} missing from {k:?}"
            );
        }
    }
}

#[cfg(test)]
mod strategy_key_tests {
    use super::*;

    #[test]
    fn test_strategy_liquidity_and_price_keys_are_checked() {
        let mut s = Settings::default();
        s.strategy.underlying_price_range = Range {
            min: 500.0,
            max: 10.0,
        };
        s.strategy.min_open_interest = -5;
        s.strategy.max_spread_pct = -3.0;
        let keys: Vec<String> = validate(&s, &BTreeMap::new())
            .into_iter()
            .map(|i| i.key)
            .collect();
        for k in [
            "strategy.underlying_price_range",
            "strategy.min_open_interest",
            "strategy.max_spread_pct",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }
}
