//! Exits: the exit manager's closes for the open trades (the strategy's
//! rules — a test-arm trade's by the test arm's — the loss limit, assigned
//! stock, or the emergency flatten), priced by the cancel/replace policy,
//! approved by the governor and sent by the executor with their context.

use chrono::{DateTime, Utc};
use core_domain::{
    AuditRepository, Broker, Contract, DecisionRecord, MarketData, MarketSnapshot, OptionQuote,
    OrderPurpose, OrderRepository, OrderStatus, Position, Strategy, Symbol, Trade,
    UnderlyingSnapshot,
};
use execution::{ExitOrder, ExitPlan, OrderContext};
use risk::{RiskContext, TradingState};
use serde_json::json;

use super::Engine;
use crate::EngineError;
use crate::hook::LearningHook;

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    pub(super) async fn manage_exits(
        &mut self,
        now: DateTime<Utc>,
        open_trades: &[Trade],
        quotes: &[OptionQuote],
        positions: &[Position],
        ctx: &RiskContext,
    ) -> Result<usize, EngineError> {
        let working: Vec<String> = self
            .store
            .open_orders()?
            .into_iter()
            .filter(|o| o.intent.purpose != OrderPurpose::Open)
            .map(|o| o.intent.order_ref)
            .collect();
        let snapshot = self
            .exit_snapshot(now, open_trades, positions, quotes.to_vec())
            .await;
        let plan = self.exit_plan(now, &snapshot, open_trades, positions, &working);
        let mut sent = 0;
        let mut records: Vec<DecisionRecord> = Vec::new();
        for mut order in plan.exits {
            let attempt = self.price_exit(&mut order, &snapshot)?;
            let context = self.exit_context(&order, &snapshot, attempt);
            records.push(order.decision.clone());
            let order_ref = order.intent.order_ref.clone();
            match self.governor.check(order.intent, ctx, now) {
                Ok(approved) => match self
                    .executor
                    .submit_with_context(approved, context, now)
                    .await
                {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        self.audit(
                            now,
                            "exit.not_sent",
                            json!({ "order_ref": order_ref, "error": e.to_string() }),
                            None,
                        )?;
                    }
                },
                Err(refused) => {
                    // Never expected: closing orders reduce risk.
                    self.store.append_decision(&refused.decision)?;
                }
            }
        }
        for r in records {
            self.store.append_decision(&r)?;
        }
        Ok(sent)
    }

    /// The exits due: while halted after an emergency stop with flatten,
    /// every position's; otherwise the strategy's (a test-arm trade's by
    /// the test arm's rules) and the exit manager's own.
    fn exit_plan(
        &mut self,
        now: DateTime<Utc>,
        snapshot: &MarketSnapshot,
        open_trades: &[Trade],
        positions: &[Position],
        working: &[String],
    ) -> ExitPlan {
        // Forget assigned trades whose stock is gone.
        self.memory.assigned.retain(|t| {
            positions.iter().any(|p| {
                matches!(&p.contract, Contract::Stock(s) if s.symbol == t.symbol) && p.quantity > 0
            })
        });
        // After an emergency stop with flatten, while halted: every
        // position is closed, whatever the strategy says.
        if self.memory.flatten && self.governor.state() == TradingState::Halted {
            self.exits
                .emergency_exits(snapshot, open_trades, positions, working, now)
        } else if let Some((exp, test)) = self.experiment_strategy() {
            // Trades of the test arm exit by the test arm's rules.
            let in_test = |t: &&Trade| {
                t.experiment_id.as_deref() == Some(exp.experiment_id.as_str())
                    && t.experiment_arm.as_deref() == Some("test")
            };
            let test_trades: Vec<Trade> = open_trades.iter().filter(in_test).cloned().collect();
            let control_trades: Vec<Trade> = open_trades
                .iter()
                .filter(|t| !in_test(t))
                .cloned()
                .collect();
            let mut plan = self.exits.evaluate(
                &self.strategy,
                snapshot,
                &control_trades,
                positions,
                &self.memory.assigned,
                working,
            );
            if !test_trades.is_empty() {
                let t = self
                    .exits
                    .evaluate(&test, snapshot, &test_trades, positions, &[], working);
                plan.exits.extend(t.exits);
                plan.holds.extend(t.holds);
            }
            plan
        } else {
            self.exits.evaluate(
                &self.strategy,
                snapshot,
                open_trades,
                positions,
                &self.memory.assigned,
                working,
            )
        }
    }

    /// Prices an exit by the reprice policy when its contract has a quote
    /// (urgent exits at the touch, chasing one step per earlier unfilled
    /// attempt; patient ones between the mid and the touch); returns the
    /// attempt number.
    pub(super) fn price_exit(
        &self,
        order: &mut ExitOrder,
        snapshot: &MarketSnapshot,
    ) -> Result<u32, EngineError> {
        let attempt = self.previous_attempts(order)?;
        let quote = quote_in(snapshot, &order.intent.contract);
        if let Some(q) = &quote
            && let Some(limit) = self
                .exits
                .repriced_limit(order, q, attempt, &self.params.reprice)
        {
            order.intent.limit_price = limit;
        }
        Ok(attempt)
    }

    pub(super) async fn exit_snapshot(
        &self,
        now: DateTime<Utc>,
        open_trades: &[Trade],
        positions: &[Position],
        quotes: Vec<OptionQuote>,
    ) -> MarketSnapshot {
        let mut symbols: Vec<Symbol> = open_trades.iter().map(|t| t.symbol.clone()).collect();
        for p in positions {
            if let Contract::Stock(s) = &p.contract {
                symbols.push(s.symbol.clone());
            }
        }
        symbols.sort();
        symbols.dedup();
        let mut underlyings = Vec::new();
        for s in symbols {
            if let Ok(q) = self.broker().stock_quote(&s).await {
                underlyings.push(UnderlyingSnapshot {
                    sector: self.sector_of(&s),
                    symbol: s,
                    quote: q,
                    closes: Vec::new(),
                });
            }
        }
        MarketSnapshot {
            time: now,
            underlyings,
            option_quotes: quotes,
            vix: self.memory.vix,
        }
    }

    pub(super) fn exit_context(
        &self,
        order: &ExitOrder,
        snapshot: &MarketSnapshot,
        attempt: u32,
    ) -> OrderContext {
        let quote = quote_in(snapshot, &order.intent.contract);
        let mut context = quote
            .as_ref()
            .map(OrderContext::with_quote)
            .unwrap_or_default();
        context.exit_reason = Some(order.reason);
        context.attempt = attempt;
        context.note = json!({ "decision": order.decision.reason });
        context
    }

    /// Earlier attempts of the same exit: closing orders of the trade (or
    /// liquidations of the symbol) that ended unfilled.
    fn previous_attempts(&self, order: &ExitOrder) -> Result<u32, EngineError> {
        let Some(trade_id) = &order.intent.trade_id else {
            return Ok(0);
        };
        let n = self
            .store
            .orders_for_trade(trade_id)?
            .iter()
            .filter(|o| {
                o.intent.purpose == order.intent.purpose
                    && matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired)
                    && o.filled_quantity == 0
            })
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

/// The quote of `contract` in `snapshot` (an option's, or a stock's).
fn quote_in(snapshot: &MarketSnapshot, contract: &Contract) -> Option<core_domain::Quote> {
    match contract {
        Contract::Option(c) => snapshot
            .option_quotes
            .iter()
            .find(|q| q.contract.key() == c.key())
            .map(|q| q.quote.clone()),
        Contract::Stock(s) => snapshot
            .underlyings
            .iter()
            .find(|u| u.symbol == s.symbol)
            .map(|u| u.quote.clone()),
    }
}
