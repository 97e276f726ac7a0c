//! Shadow trades: every put an entry scan evaluated, recorded once at its
//! first evaluation with what became of it (taken, skipped with the
//! strategy's reason, refused by risk, the other experiment arm's, or
//! quoted only to explore beyond the range), then followed by the exit
//! rules at the touch (`learning::shadow`) — evidence for the learning
//! engine, never P&L.

use chrono::{DateTime, NaiveDate, Utc};
use core_domain::{
    Broker, LearningRepository, MarketData, OptionContract, Right, Strategy, Symbol, TradeStatus,
};

use super::entries::Scan;
use super::{Engine, put_of};
use crate::EngineError;
use crate::hook::LearningHook;

/// The reason of a shadow trade quoted only to explore beyond the range.
pub const EXPLORED_REASON: &str =
    "outside the search range: quoted to learn what widening the range would do";

/// How an evaluated opportunity is recorded as a shadow trade.
#[derive(Debug, Clone)]
pub(super) struct ShadowTag {
    pub(super) origin: core_domain::ShadowOrigin,
    pub(super) reason: String,
    pub(super) experiment: Option<(String, String)>,
}

impl<B, S, L> Engine<B, S, L>
where
    B: Broker + MarketData,
    S: Strategy,
    L: LearningHook,
{
    /// A shadow trade for every put the strategy evaluated in this scan
    /// (the snapshot's quotes of its search range, with a bid): taken,
    /// refused, or skipped with the strategy's reason; one per contract
    /// (its first evaluation: later ones of the same contract are the same
    /// opportunity at another price and are not recorded again). Puts
    /// quoted only to explore (not in `in_range`) are skipped with the
    /// reason "outside the search range".
    pub(super) fn record_shadows(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        scan: &Scan,
    ) -> Result<(), EngineError> {
        let Scan {
            snapshot,
            prices,
            skip_reasons,
            outcomes,
            in_range,
        } = scan;
        let held: Vec<String> = self
            .open_cache
            .as_ref()
            .map(|t| t.iter().map(|t| put_of(t).key()).collect())
            .unwrap_or_default();
        let mut shadows = Vec::new();
        for q in &snapshot.option_quotes {
            let c = &q.contract;
            let key = c.key();
            if c.right != Right::Put || held.contains(&key) {
                continue;
            }
            let (Some(bid), Some(underlying)) = (
                q.quote.bid.filter(|b| b.is_positive()),
                prices.get(&c.underlying).copied(),
            ) else {
                continue;
            };
            let tag = outcomes.get(&key).cloned().unwrap_or_else(|| {
                if !in_range.contains(&key) {
                    return ShadowTag {
                        origin: core_domain::ShadowOrigin::Skipped,
                        reason: EXPLORED_REASON.into(),
                        experiment: None,
                    };
                }
                let why = skip_reasons
                    .get(&key)
                    .or_else(|| skip_reasons.get(c.underlying.as_str()))
                    .cloned()
                    .unwrap_or_else(|| "not proposed".into());
                ShadowTag {
                    origin: core_domain::ShadowOrigin::Skipped,
                    reason: why,
                    experiment: None,
                }
            });
            let (origin, reason) = (tag.origin, tag.reason);
            let (experiment_id, experiment_arm) = match tag.experiment {
                Some((i, a)) => (Some(i), Some(a)),
                None => (None, None),
            };
            let s = underlying.to_f64();
            shadows.push(core_domain::ShadowTrade {
                shadow_id: format!("S-{key}"),
                created_at: now,
                symbol: c.underlying.clone(),
                sector: self.sector_of(&c.underlying),
                strike: c.strike,
                expiration: c.expiry,
                entry_premium: bid,
                entry_underlying_price: underlying,
                otm_pct: if s > 0.0 {
                    (s - c.strike.to_f64()) / s
                } else {
                    0.0
                },
                dte: (c.expiry - today).num_days(),
                margin_at_entry: pricing::short_put_margin(underlying, c.strike, bid, 1)
                    .unwrap_or(core_domain::Money::ZERO),
                origin,
                reason,
                experiment_id,
                experiment_arm,
                vix_at_entry: self.memory.vix,
                status: TradeStatus::Open,
                exit_time: None,
                exit_premium: None,
                exit_reason: None,
                profit_loss: None,
                roi: None,
            });
        }
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for s in &shadows {
                tx.insert_shadow(s)?;
            }
            Ok(())
        })
    }

    /// Follows the open shadow trades (see `learning::shadow`): quotes
    /// them, applies the exit rules, closes those that exit.
    pub(super) async fn follow_shadows(
        &mut self,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<usize, EngineError> {
        let open = self.store.open_shadows()?;
        if open.is_empty() {
            return Ok(0);
        }
        let contracts: Vec<OptionContract> = open
            .iter()
            .filter(|s| s.expiration >= today)
            .map(|s| OptionContract::us(s.symbol.clone(), Right::Put, s.strike, s.expiration))
            .collect();
        let quotes = if contracts.is_empty() {
            Vec::new()
        } else {
            self.broker()
                .option_quotes(&contracts)
                .await
                .unwrap_or_default()
        };
        let mut symbols: Vec<Symbol> = open.iter().map(|s| s.symbol.clone()).collect();
        symbols.sort();
        symbols.dedup();
        let prices = self.stock_prices(&symbols).await;
        let mut closed = Vec::new();
        for mut s in open {
            let key =
                OptionContract::us(s.symbol.clone(), Right::Put, s.strike, s.expiration).key();
            let ask = quotes
                .iter()
                .find(|q| q.contract.key() == key)
                .and_then(|q| q.quote.ask);
            if let Some((reason, price)) = learning::shadow::follow(
                &s,
                ask,
                prices.get(&s.symbol).copied(),
                today,
                &self.params.shadow_rules,
            ) {
                learning::shadow::close(&mut s, reason, price, now);
                closed.push(s);
            }
        }
        self.store.atomically(|tx| -> Result<(), EngineError> {
            for s in &closed {
                tx.update_shadow(s)?;
            }
            Ok(())
        })?;
        Ok(closed.len())
    }
}
