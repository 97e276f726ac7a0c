//! The governor: checks every order and runs the circuit breakers.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use core_domain::{
    Contract, Criterion, DecisionKind, DecisionRecord, Money, OptionContract, OrderIntent, Right,
    Side,
};

use crate::measures::{
    RATIO_TOLERANCE, VarPosition, correlation, daily_change, historical_var_95, reg_t_margin,
    sizing_loss,
};
use crate::{
    BreakerAction, RiskApproved, RiskContext, RiskLimits, RiskRefusal, RiskRefused, StateChange,
    TradingState,
};

/// Sector bucket of positions whose sector is not known.
pub const UNKNOWN_SECTOR: &str = "UNKNOWN";

/// The actor name of transitions the governor makes itself.
pub const RISK_ACTOR: &str = "risk";

/// Checks every order against the limits and keeps the trading state.
///
/// Holds no clock and does no I/O: every time is an argument, every fact
/// comes in a [`RiskContext`]. The caller appends the returned
/// [`StateChange`]s and decision records to the audit log.
#[derive(Debug, Clone)]
pub struct RiskGovernor {
    limits: RiskLimits,
    state: TradingState,
    history: Vec<StateChange>,
}

impl RiskGovernor {
    /// A governor in the `Active` state.
    pub fn new(limits: RiskLimits) -> Self {
        Self::with_state(limits, TradingState::Active)
    }

    /// A governor restored in `state` (from the store, after a restart).
    pub fn with_state(limits: RiskLimits, state: TradingState) -> Self {
        RiskGovernor {
            limits,
            state,
            history: Vec::new(),
        }
    }

    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    pub fn state(&self) -> TradingState {
        self.state
    }

    /// Every transition since this governor was made, oldest first.
    pub fn history(&self) -> &[StateChange] {
        &self.history
    }

    /// Whether `intent` reduces risk: its purpose is `Close` or `Liquidate`,
    /// or it buys back at most the contracts held short of an option in
    /// `ctx.positions`. The purpose is trusted: the executor sets it from
    /// the position it closes.
    pub fn reduces_risk(intent: &OrderIntent, ctx: &RiskContext) -> bool {
        if intent.purpose.reduces_risk() {
            return true;
        }
        match (&intent.contract, intent.side) {
            (Contract::Option(o), Side::Buy) => ctx
                .positions
                .iter()
                .any(|p| &p.contract == o && intent.quantity > 0 && intent.quantity <= p.contracts),
            _ => false,
        }
    }

    /// Checks one order. Risk-reducing orders are approved in every state
    /// and never meet an entry limit. Opening orders first run the circuit
    /// breakers (so a breach halts within this call), then must pass every
    /// limit; every limit is evaluated and recorded, the refusal lists all
    /// that failed.
    // The refusal hands the intent back by value (as barter's RiskRefused);
    // the approval is as large, so boxing the error would gain nothing.
    #[allow(clippy::result_large_err)]
    pub fn check(
        &mut self,
        intent: OrderIntent,
        ctx: &RiskContext,
        time: DateTime<Utc>,
    ) -> Result<RiskApproved<OrderIntent>, RiskRefused> {
        if Self::reduces_risk(&intent, ctx) {
            let decision = DecisionRecord::new(
                time,
                DecisionKind::Exit,
                intent.contract.key(),
                "risk_approved",
                format!(
                    "{} order reduces risk: approved in every state (now {})",
                    purpose_name(&intent),
                    self.state
                ),
            )
            .with_criteria(vec![
                Criterion::text("reduces_risk", "true", "true", true),
                Criterion::text("trading_state", self.state.as_str(), "any", true),
            ])
            .with_context(order_context(&intent));
            return Ok(RiskApproved::new(intent, decision));
        }

        let state_changes: Vec<StateChange> = self.run_breakers(ctx, time).into_iter().collect();
        let mut eval = Evaluation::default();
        let state_ok = self.state == TradingState::Active;
        eval.push(
            Criterion::text("trading_state", self.state.as_str(), "active", state_ok),
            match self.state {
                TradingState::Active => None,
                TradingState::ReduceOnly => Some(RiskRefusal::ReduceOnly),
                TradingState::Halted => Some(RiskRefusal::TradingHalted),
            },
        );
        self.breaker_criteria(ctx, &mut eval);
        match opening_put(&intent) {
            Ok(option) => self.entry_limits(&intent, option, ctx, time, &mut eval),
            Err(why) => eval.push(
                Criterion::text("order_shape", why.clone(), "sell to open a put", false),
                Some(RiskRefusal::UnsupportedOrder { why }),
            ),
        }

        let subject = intent.contract.key();
        if eval.refusals.is_empty() {
            let decision = DecisionRecord::new(
                time,
                DecisionKind::Entry,
                subject,
                "risk_approved",
                "opening order passes every risk limit",
            )
            .with_criteria(eval.criteria)
            .with_context(order_context(&intent));
            Ok(RiskApproved::new(intent, decision))
        } else {
            let failed: Vec<&str> = eval
                .criteria
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name.as_str())
                .collect();
            let decision = DecisionRecord::new(
                time,
                DecisionKind::RiskRefusal,
                subject,
                "risk_refused",
                format!("opening order refused: {}", failed.join(", ")),
            )
            .with_criteria(eval.criteria)
            .with_context(order_context(&intent));
            Err(RiskRefused {
                intent,
                reasons: eval.refusals,
                decision: Box::new(decision),
                state_changes,
            })
        }
    }

    /// Runs the circuit breakers once (call every engine cycle): the daily
    /// loss breaker trips when net liquidation has changed by
    /// `max_daily_loss` or worse since the session's start; the API error
    /// breaker when `api_errors_last_hour ≥ max_api_errors_per_hour`.
    /// Breakers only escalate (`Active → ReduceOnly → Halted`); the returned
    /// change (at most one) is also kept in [`history`](Self::history).
    pub fn on_cycle(&mut self, ctx: &RiskContext, time: DateTime<Utc>) -> Vec<StateChange> {
        self.run_breakers(ctx, time).into_iter().collect()
    }

    /// Back to `Active` (an operator's decision). Breakers are not latched
    /// beyond their condition: if the loss or the errors are still at the
    /// threshold, the next cycle trips again. `None` if already active.
    pub fn resume(&mut self, time: DateTime<Utc>, actor: &str, cause: &str) -> Option<StateChange> {
        self.transition(TradingState::Active, time, actor, cause.to_string())
    }

    /// Only risk-reducing orders from now on. `None` if already reduce-only.
    pub fn reduce_only(
        &mut self,
        time: DateTime<Utc>,
        actor: &str,
        cause: &str,
    ) -> Option<StateChange> {
        self.transition(TradingState::ReduceOnly, time, actor, cause.to_string())
    }

    /// The emergency stop: `Halted` at once. `None` if already halted.
    pub fn emergency_halt(
        &mut self,
        time: DateTime<Utc>,
        actor: &str,
        cause: &str,
    ) -> Option<StateChange> {
        self.transition(
            TradingState::Halted,
            time,
            actor,
            format!("emergency stop: {cause}"),
        )
    }

    fn transition(
        &mut self,
        to: TradingState,
        time: DateTime<Utc>,
        actor: &str,
        cause: String,
    ) -> Option<StateChange> {
        if to == self.state {
            return None;
        }
        let change = StateChange {
            from: self.state,
            to,
            cause,
            actor: actor.to_string(),
            time,
        };
        self.state = to;
        self.history.push(change.clone());
        Some(change)
    }

    /// The state the breakers demand and why; `None` when none trips.
    fn breaker_verdict(&self, ctx: &RiskContext) -> Option<(TradingState, String)> {
        let mut target = TradingState::Active;
        let mut causes = Vec::new();
        let change = daily_change(
            ctx.session_start.net_liquidation,
            ctx.account.net_liquidation,
        );
        if daily_loss_trips(change, self.limits.max_daily_loss) {
            target = target.max(action_state(self.limits.daily_loss_action));
            causes.push(format!(
                "daily loss breaker: net liquidation {} -> {} ({:.4}%) <= {:.4}%",
                ctx.session_start.net_liquidation,
                ctx.account.net_liquidation,
                change * 100.0,
                self.limits.max_daily_loss * 100.0
            ));
        }
        if ctx.api_errors_last_hour >= self.limits.max_api_errors_per_hour {
            target = target.max(action_state(self.limits.api_errors_action));
            causes.push(format!(
                "API error breaker: {} errors in the last hour >= {}",
                ctx.api_errors_last_hour, self.limits.max_api_errors_per_hour
            ));
        }
        (target != TradingState::Active).then(|| (target, causes.join("; ")))
    }

    fn run_breakers(&mut self, ctx: &RiskContext, time: DateTime<Utc>) -> Option<StateChange> {
        let (target, cause) = self.breaker_verdict(ctx)?;
        if target > self.state {
            self.transition(target, time, RISK_ACTOR, cause)
        } else {
            None
        }
    }

    fn breaker_criteria(&self, ctx: &RiskContext, eval: &mut Evaluation) {
        let change = daily_change(
            ctx.session_start.net_liquidation,
            ctx.account.net_liquidation,
        );
        let tripped = daily_loss_trips(change, self.limits.max_daily_loss);
        eval.push(
            Criterion::number(
                "daily_loss",
                change,
                format!("> {}", self.limits.max_daily_loss),
                !tripped,
            ),
            tripped.then_some(RiskRefusal::DailyLossBreaker {
                change,
                threshold: self.limits.max_daily_loss,
            }),
        );
        let errors = ctx.api_errors_last_hour;
        let max = self.limits.max_api_errors_per_hour;
        eval.push(
            Criterion::number(
                "api_errors_last_hour",
                f64::from(errors),
                format!("< {max}"),
                errors < max,
            ),
            (errors >= max).then_some(RiskRefusal::ApiErrorBreaker { errors, max }),
        );
    }

    fn entry_limits(
        &self,
        intent: &OrderIntent,
        option: &OptionContract,
        ctx: &RiskContext,
        time: DateTime<Utc>,
        eval: &mut Evaluation,
    ) {
        let l = &self.limits;
        let net_liq = ctx.account.net_liquidation;

        let after = ctx.positions.len() as i64 + 1;
        eval.push(
            Criterion::number(
                "open_positions_after",
                after as f64,
                format!("<= {}", l.max_open_positions),
                after <= l.max_open_positions,
            ),
            (after > l.max_open_positions).then_some(RiskRefusal::MaxPositions {
                after,
                max: l.max_open_positions,
            }),
        );

        let today_after = ctx.opened_today + 1;
        eval.push(
            Criterion::number(
                "new_positions_today_after",
                today_after as f64,
                format!("<= {}", l.max_positions_per_day),
                today_after <= l.max_positions_per_day,
            ),
            (today_after > l.max_positions_per_day).then_some(RiskRefusal::MaxNewPerDay {
                after: today_after,
                max: l.max_positions_per_day,
            }),
        );

        let max_loss = sizing_loss(
            intent.limit_price,
            intent.quantity,
            option.multiplier,
            l.stop_loss_multiple,
        );
        let loss_limit = dollars(l.max_position_loss.abs());
        eval.push(
            Criterion::number(
                "position_max_loss",
                max_loss.to_f64(),
                format!("<= {loss_limit}"),
                max_loss <= loss_limit,
            ),
            (max_loss > loss_limit).then_some(RiskRefusal::PositionLossSizing {
                max_loss,
                limit: loss_limit,
            }),
        );

        let Some(market) = &ctx.order_market else {
            for limit in [
                "margin_utilization",
                "correlation",
                "sector_concentration",
                "var_95",
            ] {
                eval.missing(
                    limit,
                    "market facts of the order's underlying (order_market)",
                );
            }
            return;
        };
        let new_margin = reg_t_margin(
            market.underlying_price,
            option.strike,
            intent.limit_price,
            intent.quantity,
        );

        // Margin utilization after the trade.
        let margin_after = match (ctx.what_if_initial_margin_after, &new_margin) {
            (Some(m), _) => Ok(m),
            (None, Ok(m)) => Ok(ctx.account.initial_margin + *m),
            (None, Err(e)) => Err(e.to_string()),
        };
        match margin_after {
            Ok(m) => {
                let utilization = ratio(m, net_liq);
                let ok = utilization <= l.max_margin_utilization + RATIO_TOLERANCE;
                eval.push(
                    Criterion::number(
                        "margin_utilization_after",
                        utilization,
                        format!("<= {}", l.max_margin_utilization),
                        ok,
                    ),
                    (!ok).then_some(RiskRefusal::MarginUtilization {
                        utilization,
                        max: l.max_margin_utilization,
                    }),
                );
            }
            Err(e) => eval.missing("margin_utilization", &e),
        }

        // Correlation with each held underlying (the same one counts as 1).
        let held: BTreeSet<_> = ctx
            .positions
            .iter()
            .map(|p| &p.contract.underlying)
            .collect();
        for symbol in held {
            let rho = if symbol == &option.underlying {
                Ok(1.0)
            } else {
                match (ctx.returns.get(&option.underlying), ctx.returns.get(symbol)) {
                    (Some(a), Some(b)) => correlation(
                        symbol,
                        a,
                        b,
                        l.correlation_lookback_days,
                        l.min_history_days,
                    )
                    .map_err(|e| e.to_string()),
                    _ => Err(format!(
                        "daily returns of {} and {symbol}",
                        option.underlying
                    )),
                }
            };
            match rho {
                Ok(rho) => {
                    let ok = rho <= l.max_correlation + RATIO_TOLERANCE;
                    eval.push(
                        Criterion::number(
                            &format!("correlation_{symbol}"),
                            rho,
                            format!("<= {}", l.max_correlation),
                            ok,
                        ),
                        (!ok).then(|| RiskRefusal::Correlation {
                            with: symbol.clone(),
                            correlation: rho,
                            max: l.max_correlation,
                        }),
                    );
                }
                Err(e) => eval.missing(&format!("correlation_{symbol}"), &e),
            }
        }

        // Sector concentration: the sector's Reg-T margin after the trade
        // over the larger of the total Reg-T margin after and the margin
        // budget (max utilization × net liquidation).
        let sector = sector_name(market.sector.as_deref());
        let concentration = new_margin
            .map_err(|e| e.to_string())
            .and_then(|new_margin| {
                let mut total = new_margin;
                let mut in_sector = new_margin;
                for p in &ctx.positions {
                    let m =
                        reg_t_margin(p.underlying_price, p.contract.strike, p.mark, p.contracts)
                            .map_err(|e| format!("{}: {e}", p.contract.key()))?;
                    total += m;
                    if sector_name(p.sector.as_deref()) == sector {
                        in_sector += m;
                    }
                }
                let budget = net_liq.cents().max(0) as f64 * l.max_margin_utilization;
                let base = (total.cents() as f64).max(budget);
                Ok(if base > 0.0 {
                    in_sector.cents() as f64 / base
                } else {
                    f64::INFINITY
                })
            });
        match concentration {
            Ok(share) => {
                let ok = share <= l.max_sector_concentration + RATIO_TOLERANCE;
                eval.push(
                    Criterion::number(
                        "sector_concentration_after",
                        share,
                        format!("<= {} ({sector})", l.max_sector_concentration),
                        ok,
                    ),
                    (!ok).then(|| RiskRefusal::SectorConcentration {
                        sector: sector.to_string(),
                        share,
                        max: l.max_sector_concentration,
                    }),
                );
            }
            Err(e) => eval.missing("sector_concentration", &e),
        }

        // Historical VaR of the book with the new position.
        let mut book: Vec<VarPosition> = ctx
            .positions
            .iter()
            .map(|p| VarPosition {
                contract: p.contract.clone(),
                contracts: p.contracts,
                underlying_price: p.underlying_price,
                implied_vol: p.implied_vol,
            })
            .collect();
        book.push(VarPosition {
            contract: option.clone(),
            contracts: intent.quantity,
            underlying_price: market.underlying_price,
            implied_vol: market.implied_vol,
        });
        match historical_var_95(
            &book,
            &ctx.returns,
            time.date_naive(),
            ctx.risk_free_rate,
            l.var_lookback_days,
            l.min_history_days,
        ) {
            Ok(var_95) => {
                let share = ratio(var_95, net_liq);
                let ok = share <= l.max_portfolio_var_95 + RATIO_TOLERANCE;
                let limit = Money::from_cents(
                    (net_liq.cents().max(0) as f64 * l.max_portfolio_var_95).floor() as i64,
                );
                eval.push(
                    Criterion::number(
                        "var_95_after",
                        var_95.to_f64(),
                        format!("<= {limit} ({} of net liquidation)", l.max_portfolio_var_95),
                        ok,
                    ),
                    (!ok).then_some(RiskRefusal::VarLimit { var_95, limit }),
                );
            }
            Err(e) => eval.missing("var_95", &e.to_string()),
        }
    }
}

/// Criteria and refusals collected while checking one order.
#[derive(Default)]
struct Evaluation {
    criteria: Vec<Criterion>,
    refusals: Vec<RiskRefusal>,
}

impl Evaluation {
    fn push(&mut self, criterion: Criterion, refusal: Option<RiskRefusal>) {
        self.criteria.push(criterion);
        self.refusals.extend(refusal);
    }

    fn missing(&mut self, limit: &str, what: &str) {
        self.push(
            Criterion::text(
                limit,
                format!("unavailable: {what}"),
                "data to check",
                false,
            ),
            Some(RiskRefusal::MissingData {
                limit: limit.to_string(),
                what: what.to_string(),
            }),
        );
    }
}

/// Trips at the threshold (within [`RATIO_TOLERANCE`]) or beyond.
fn daily_loss_trips(change: f64, threshold: f64) -> bool {
    change <= threshold + RATIO_TOLERANCE
}

fn action_state(action: BreakerAction) -> TradingState {
    match action {
        BreakerAction::HaltTrading => TradingState::Halted,
        BreakerAction::ReduceOnly => TradingState::ReduceOnly,
    }
}

/// `part / whole`; infinite when `whole ≤ 0` (fail closed).
fn ratio(part: Money, whole: Money) -> f64 {
    if whole.cents() <= 0 {
        f64::INFINITY
    } else {
        part.cents() as f64 / whole.cents() as f64
    }
}

fn dollars(d: f64) -> Money {
    Money::from_f64_dollars(d).unwrap_or(Money::ZERO)
}

fn sector_name(sector: Option<&str>) -> &str {
    match sector.map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => UNKNOWN_SECTOR,
    }
}

/// The option of a sell-to-open put order, or why it is not one.
fn opening_put(intent: &OrderIntent) -> Result<&OptionContract, String> {
    intent.validate().map_err(|e| e.to_string())?;
    match (&intent.contract, intent.side) {
        (Contract::Option(o), Side::Sell) if o.right == Right::Put => Ok(o),
        (Contract::Option(o), Side::Sell) => Err(format!("{} is not a put", o.key())),
        (c, side) => Err(format!("{side} {c} does not open a short put")),
    }
}

fn purpose_name(intent: &OrderIntent) -> &'static str {
    match intent.purpose {
        core_domain::OrderPurpose::Open => "buy-back",
        core_domain::OrderPurpose::Close => "closing",
        core_domain::OrderPurpose::Liquidate => "liquidating",
    }
}

fn order_context(intent: &OrderIntent) -> serde_json::Value {
    serde_json::json!({
        "order_ref": intent.order_ref,
        "side": intent.side.to_string(),
        "quantity": intent.quantity,
        "limit_price": intent.limit_price.to_string(),
        "purpose": intent.purpose,
    })
}
