//! The settings tree. Every field has a default equal to the value in the
//! template (`config/trader.example.toml`); a test keeps the two in step.

use serde::{Deserialize, Serialize};

/// An inclusive range `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

impl<T: PartialOrd + Copy> Range<T> {
    /// Whether `v` lies in the range, both ends included.
    pub fn contains(&self, v: T) -> bool {
        self.min <= v && v <= self.max
    }
}

impl Settings {
    /// The strategy's parameters in the form the strategy crate reads.
    /// Call on validated settings (a [`crate::Loaded`]): `trend_filter` is
    /// then "uptrend" or "none".
    pub fn strategy_params(&self) -> strategy_naked_put::NakedPutParams {
        let s = &self.strategy;
        strategy_naked_put::NakedPutParams {
            name: s.name.clone(),
            otm_min: s.otm_range.min,
            otm_max: s.otm_range.max,
            premium_min: s.premium_range.min,
            premium_max: s.premium_range.max,
            dte_min: s.dte_range.min,
            dte_max: s.dte_range.max,
            contracts: s.position_size,
            max_positions: s.max_positions,
            trend_filter: if s.trend_filter == "none" {
                strategy_naked_put::TrendFilter::None
            } else {
                strategy_naked_put::TrendFilter::Uptrend
            },
            price_min: s.underlying_price_range.min,
            price_max: s.underlying_price_range.max,
            min_avg_volume: s.min_avg_volume,
            min_open_interest: s.min_open_interest,
            max_spread_pct: s.max_spread_pct,
            profit_target: s.exits.profit_target,
            stop_loss: s.exits.stop_loss,
            time_exit_dte: s.exits.time_exit_dte,
        }
    }
}

impl Settings {
    /// The risk governor's limits from `[risk]`, `[circuit_breakers]` and the
    /// strategy's position count and stop. Where the file states a daily
    /// loss twice (`risk.max_daily_loss` and the breaker's threshold) the
    /// stricter one (closer to zero) applies. Call on validated settings.
    pub fn risk_limits(&self) -> risk::RiskLimits {
        let action = |a: &str| {
            if a == "reduce_only" {
                risk::BreakerAction::ReduceOnly
            } else {
                risk::BreakerAction::HaltTrading
            }
        };
        let r = &self.risk;
        let cb = &self.circuit_breakers;
        risk::RiskLimits {
            max_open_positions: self.strategy.max_positions,
            max_positions_per_day: r.max_positions_per_day,
            max_position_loss: r.max_position_loss.max(cb.position_loss.threshold),
            stop_loss_multiple: 1.0 - self.strategy.exits.stop_loss,
            max_daily_loss: r.max_daily_loss.max(cb.daily_loss.threshold),
            daily_loss_action: action(&cb.daily_loss.action),
            max_api_errors_per_hour: u32::try_from(cb.api_errors.max_per_hour.max(1))
                .unwrap_or(u32::MAX),
            api_errors_action: action(&cb.api_errors.action),
            max_portfolio_var_95: r.max_portfolio_var_95,
            max_sector_concentration: r.max_sector_concentration,
            max_correlation: r.max_correlation,
            max_margin_utilization: r.max_margin_utilization,
            ..risk::RiskLimits::default()
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub strategy: StrategySettings,
    pub risk: RiskSettings,
    pub circuit_breakers: CircuitBreakerSettings,
    pub learning: LearningSettings,
    pub broker: BrokerSettings,
    pub schedule: ScheduleSettings,
    pub database: DatabaseSettings,
    pub logging: LoggingSettings,
    pub agent: AgentSettings,
    pub dashboard: crate::cockpit::DashboardSettings,
    pub notifications: crate::cockpit::NotificationSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategySettings {
    pub name: String,
    /// Only "PUT" is traded.
    pub option_type: String,
    /// Out-of-the-money distance as a fraction of the underlying price.
    pub otm_range: Range<f64>,
    /// Premium per share in dollars, at the bid.
    pub premium_range: Range<f64>,
    /// Calendar days to expiry.
    pub dte_range: Range<i64>,
    /// Contracts per position.
    pub position_size: i64,
    pub max_positions: i64,
    /// "uptrend" (price > SMA20 > SMA50) or "none".
    pub trend_filter: String,
    /// Underlying price range, dollars.
    pub underlying_price_range: Range<f64>,
    /// Smallest average daily share volume of the underlying (20 sessions).
    pub min_avg_volume: f64,
    /// Smallest open interest of an option to trade.
    pub min_open_interest: i64,
    /// Widest bid/ask spread as a fraction of the mid.
    pub max_spread_pct: f64,
    pub exits: ExitSettings,
}

impl Default for StrategySettings {
    fn default() -> Self {
        StrategySettings {
            name: "Naked Put - Weekly".into(),
            option_type: "PUT".into(),
            otm_range: Range {
                min: 0.15,
                max: 0.20,
            },
            premium_range: Range {
                min: 0.30,
                max: 0.50,
            },
            dte_range: Range { min: 7, max: 14 },
            position_size: 5,
            max_positions: 10,
            trend_filter: "uptrend".into(),
            underlying_price_range: Range {
                min: 10.0,
                max: 1_000.0,
            },
            min_avg_volume: 500_000.0,
            min_open_interest: 100,
            max_spread_pct: 0.30,
            exits: ExitSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExitSettings {
    /// Take profit when this fraction of the maximum profit is captured.
    pub profit_target: f64,
    /// Stop when the loss reaches this multiple of the premium (−2.00 = −200%).
    pub stop_loss: f64,
    /// Close when days to expiry fall to this many.
    pub time_exit_dte: i64,
}

impl Default for ExitSettings {
    fn default() -> Self {
        ExitSettings {
            profit_target: 0.50,
            stop_loss: -2.00,
            time_exit_dte: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSettings {
    /// Fraction of net liquidation at the session's start.
    pub max_daily_loss: f64,
    /// Dollars per position.
    pub max_position_loss: f64,
    pub max_portfolio_var_95: f64,
    pub max_sector_concentration: f64,
    pub max_correlation: f64,
    pub max_margin_utilization: f64,
    pub max_positions_per_day: i64,
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            max_daily_loss: -0.02,
            max_position_loss: -500.0,
            max_portfolio_var_95: 0.10,
            max_sector_concentration: 0.30,
            max_correlation: 0.70,
            max_margin_utilization: 0.80,
            max_positions_per_day: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerSettings {
    pub daily_loss: DailyLossBreaker,
    pub position_loss: PositionLossBreaker,
    pub api_errors: ApiErrorBreaker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DailyLossBreaker {
    pub threshold: f64,
    /// "halt_trading" or "reduce_only".
    pub action: String,
}

impl Default for DailyLossBreaker {
    fn default() -> Self {
        DailyLossBreaker {
            threshold: -0.02,
            action: "halt_trading".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionLossBreaker {
    /// Dollars.
    pub threshold: f64,
    /// "exit_position".
    pub action: String,
}

impl Default for PositionLossBreaker {
    fn default() -> Self {
        PositionLossBreaker {
            threshold: -500.0,
            action: "exit_position".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiErrorBreaker {
    pub max_per_hour: i64,
    /// "halt_trading" or "reduce_only".
    pub action: String,
}

impl Default for ApiErrorBreaker {
    fn default() -> Self {
        ApiErrorBreaker {
            max_per_hour: 5,
            action: "halt_trading".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningSettings {
    pub min_trades_before_analysis: i64,
    pub significance_level: f64,
    pub min_effect_roi: f64,
    pub max_parameter_changes_per_month: i64,
    pub max_parameter_shift: f64,
    pub experiment_allocation: f64,
}

impl Default for LearningSettings {
    fn default() -> Self {
        LearningSettings {
            min_trades_before_analysis: 30,
            significance_level: 0.05,
            min_effect_roi: 0.005,
            max_parameter_changes_per_month: 1,
            max_parameter_shift: 0.20,
            experiment_allocation: 0.20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    /// "sim" or "ibkr".
    pub kind: String,
    /// "paper" or "live".
    pub trading_mode: String,
    pub sim: SimBrokerSettings,
    pub ibkr: IbkrSettings,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            kind: "sim".into(),
            trading_mode: "paper".into(),
            sim: SimBrokerSettings::default(),
            ibkr: IbkrSettings::default(),
        }
    }
}

/// The simulated exchange (`market-sim`): how it trades and how it models
/// option chains. Every field is documented in `docs/MARKET_MODEL.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimBrokerSettings {
    /// Which stocks the simulated market trades: "sp20" (the 20 large caps,
    /// closes only, 1990–2022) or "us421" (421 stocks with OHLCV and GICS
    /// sectors, 2005–2017; survivorship-biased, dividend-adjusted).
    pub universe: String,
    pub exchange: market_sim::ExchangeParams,
    pub chain: market_sim::ChainModelParams,
    pub replay: ReplaySettings,
}

impl Default for SimBrokerSettings {
    fn default() -> Self {
        SimBrokerSettings {
            universe: market_sim::universe::UNIVERSE_SP20.into(),
            exchange: market_sim::ExchangeParams::default(),
            chain: market_sim::ChainModelParams::default(),
            replay: ReplaySettings::default(),
        }
    }
}

/// What `traderd` replays on the simulated exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySettings {
    /// First day, "YYYY-MM-DD" (the replay opens at the first session on or
    /// after it).
    pub from: String,
    /// Last day, "YYYY-MM-DD", inclusive.
    pub to: String,
    /// Simulated minutes per wall-clock second; 0 = as fast as possible.
    pub minutes_per_second: f64,
    /// Directory of the report written at the end of the replay.
    pub report_dir: String,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            from: "2010-01-04".into(),
            to: "2022-12-28".into(),
            minutes_per_second: 0.0,
            report_dir: "reports".into(),
        }
    }
}

impl ReplaySettings {
    /// The replay window as dates (validated by `config check`).
    pub fn window(&self) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
        let from = self.from.trim().parse().ok()?;
        let to = self.to.trim().parse().ok()?;
        Some((from, to))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IbkrSettings {
    pub host: String,
    pub port: i64,
    pub client_id: i64,
    /// Empty: the first managed account the gateway reports.
    pub account: String,
    /// "realtime", "frozen", "delayed" or "delayed_frozen": the market-data
    /// type asked for first (real-time falls back to delayed on IBKR's
    /// no-subscription advisories).
    pub market_data: String,
    /// Attempts of the first connect before traderd gives up.
    pub connect_attempts: i64,
    /// Longest wait between reconnect attempts, seconds.
    pub reconnect_max_secs: i64,
    /// How long one request may wait for its answer, seconds.
    pub request_timeout_secs: i64,
    /// Messages a second to TWS (IBKR's limit: 50).
    pub messages_per_second: i64,
    /// How long an execution waits for its commission report before it is
    /// recorded with a zero commission (the late report then restates it),
    /// seconds.
    pub commission_wait_secs: i64,
    /// Market-data lines open at once (100 on a default account).
    pub max_market_data_lines: i64,
    /// Only for the project's simulated gateway (`trader-cli sim-gateway`):
    /// its control address ("127.0.0.1:4003"). When set, the daemon's
    /// clock is the gateway's simulated clock, advanced in lockstep with
    /// the engine's cycles; empty: the wall clock (a real TWS / IB Gateway).
    pub sim_control: String,
}

impl Default for IbkrSettings {
    fn default() -> Self {
        IbkrSettings {
            host: "127.0.0.1".into(),
            port: 4002,
            client_id: 1,
            account: String::new(),
            market_data: "realtime".into(),
            connect_attempts: 5,
            reconnect_max_secs: 60,
            request_timeout_secs: 30,
            messages_per_second: 50,
            commission_wait_secs: 30,
            max_market_data_lines: 100,
            sim_control: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSettings {
    pub timezone: String,
    /// "HH:MM" in `timezone`.
    pub market_open: String,
    pub market_close: String,
    pub cycle_minutes_market: i64,
    pub cycle_minutes_off_hours: i64,
    pub no_entries_last_minutes: i64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            timezone: "America/New_York".into(),
            market_open: "09:30".into(),
            market_close: "16:00".into(),
            cycle_minutes_market: 15,
            cycle_minutes_off_hours: 60,
            no_entries_last_minutes: 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
    /// When the engine commits its writes: "cycle" (each cycle's writes in
    /// one transaction: a killed cycle leaves nothing and runs again
    /// exactly — the simulated broker only), "write" (each write at once:
    /// what a live broker needs) or "auto" (cycle for the simulated
    /// broker, write for Interactive Brokers).
    pub commit: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://data/trader.db".into(),
            commit: "auto".into(),
        }
    }
}

impl DatabaseSettings {
    /// Whether a cycle's writes are committed together for a broker of
    /// kind `broker_kind` ("sim" or "ibkr").
    pub fn commit_per_cycle(&self, broker_kind: &str) -> bool {
        match self.commit.as_str() {
            "cycle" => true,
            "write" => false,
            _ => broker_kind != "ibkr",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSettings {
    /// A tracing filter: "info", "warn", "traderd=debug,info".
    pub level: String,
    /// Write a daily rolling log file too.
    pub file: bool,
    pub directory: String,
    /// JSON lines in the log file instead of text.
    pub json: bool,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: "info".into(),
            file: true,
            directory: "logs".into(),
            json: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Call the model at all (false: the statistical report only).
    pub enabled: bool,
    /// The model id (Anthropic's models page).
    pub model: String,
    pub max_tokens: i64,
    /// Base URL of the Messages API (`ANTHROPIC_BASE_URL` overrides it).
    pub base_url: String,
    /// One HTTP attempt's timeout, seconds.
    pub timeout_seconds: i64,
    /// Retries after the first attempt (408/409/429/5xx/529, connection errors).
    pub max_retries: i64,
    /// First backoff, milliseconds (doubled per retry, less up to 25% jitter).
    pub retry_base_ms: i64,
    /// Longest backoff, milliseconds.
    pub retry_max_ms: i64,
    /// No retry starts after this many seconds since the first attempt.
    pub deadline_seconds: i64,
    /// Estimated spend allowed per calendar month (UTC), US dollars; 0 = no cap.
    pub monthly_budget_usd: f64,
    /// US dollars per million input tokens (cost estimates).
    pub input_price_per_mtok: f64,
    /// US dollars per million output tokens.
    pub output_price_per_mtok: f64,
    /// Run the analysis every week inside traderd.
    pub weekly: bool,
    /// Day of the weekly run: mon, tue, wed, thu, fri, sat, sun.
    pub weekly_day: String,
    /// Time of the weekly run, HH:MM in New York.
    pub weekly_time: String,
    /// Days of closed trades the analysis reads (0 = all).
    pub window_days: i64,
    /// Let the model choose the engine's actions (falls back to the rules).
    pub decide: bool,
    /// Seconds the reasoner may take per cycle before the rules decide.
    pub decide_timeout_seconds: i64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            enabled: true,
            model: "claude-sonnet-5-5".into(),
            max_tokens: 4096,
            base_url: "https://api.anthropic.com".into(),
            timeout_seconds: 120,
            max_retries: 4,
            retry_base_ms: 500,
            retry_max_ms: 8_000,
            deadline_seconds: 300,
            monthly_budget_usd: 20.0,
            input_price_per_mtok: 2.0,
            output_price_per_mtok: 10.0,
            weekly: true,
            weekly_day: "sat".into(),
            weekly_time: "09:00".into(),
            window_days: 365,
            decide: false,
            decide_timeout_seconds: 30,
        }
    }
}

/// `mon` … `sun` (case-insensitive; full names too) as a weekday.
#[must_use]
pub fn parse_weekday(s: &str) -> Option<chrono::Weekday> {
    let s = s.trim().to_ascii_lowercase();
    let day = match s.get(..3)? {
        "mon" => chrono::Weekday::Mon,
        "tue" => chrono::Weekday::Tue,
        "wed" => chrono::Weekday::Wed,
        "thu" => chrono::Weekday::Thu,
        "fri" => chrono::Weekday::Fri,
        "sat" => chrono::Weekday::Sat,
        "sun" => chrono::Weekday::Sun,
        _ => return None,
    };
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (s.len() == 3 || full.contains(&s.as_str())).then_some(day)
}

/// `HH:MM` (24-hour) as a time of day.
#[must_use]
pub fn parse_hh_mm(s: &str) -> Option<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}
