//! Learning metrics: is the system getting better? Progress over time
//! (win rate and mean ROI per year against the baseline), the experiments
//! run, adopted, rejected and rolled back, and the parameter history.
//!
//! The **baseline** is the trades entered before the first adopted change
//! (all trades when nothing was adopted): what the configured rules did on
//! their own.

use core_domain::{
    Experiment, ExperimentStatus, LearningEvent, LearningEventType, Trade, TradeStatus,
};
use serde::{Deserialize, Serialize};

/// Outcomes of a group of closed trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// What the group is (a year, "baseline").
    pub label: String,
    /// Closed trades.
    pub trades: usize,
    /// Share with P&L > 0; `None` without trades.
    pub win_rate: Option<f64>,
    /// Mean ROI; `None` without trades with a ROI.
    pub mean_roi: Option<f64>,
}

/// Experiments by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentCounts {
    /// Every experiment ever started.
    pub run: usize,
    /// Still taking opportunities.
    pub active: usize,
    /// Decided for adoption, waiting on the governance limits.
    pub complete: usize,
    /// Adopted (and not rolled back).
    pub adopted: usize,
    /// Rejected.
    pub rejected: usize,
    /// Adopted, then rolled back.
    pub rolled_back: usize,
}

/// One parameter change on record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterEvent {
    /// When.
    pub date: chrono::DateTime<chrono::Utc>,
    /// `parameter_adopted` or `parameter_rolled_back`.
    pub event: String,
    /// The parameter.
    pub parameter: Option<String>,
    /// Its value before.
    pub from: Option<String>,
    /// Its value after.
    pub to: Option<String>,
    /// Why.
    pub reasoning: String,
}

/// The learning metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningMetrics {
    /// The configured rules on their own (see the module docs).
    pub baseline: Outcomes,
    /// Since the first adoption (`None` when nothing was adopted).
    pub since_first_adoption: Option<Outcomes>,
    /// By calendar year of the exit.
    pub by_year: Vec<Outcomes>,
    /// Experiments by status.
    pub experiments: ExperimentCounts,
    /// Adoptions and rollbacks, oldest first.
    pub parameter_history: Vec<ParameterEvent>,
}

fn outcomes(label: impl Into<String>, trades: &[&Trade]) -> Outcomes {
    let wins = trades
        .iter()
        .filter(|t| t.profit_loss.is_some_and(|p| p.cents() > 0))
        .count();
    let rois: Vec<f64> = trades.iter().filter_map(|t| t.roi).collect();
    Outcomes {
        label: label.into(),
        trades: trades.len(),
        win_rate: (!trades.is_empty()).then(|| wins as f64 / trades.len() as f64),
        mean_roi: (!rois.is_empty()).then(|| rois.iter().sum::<f64>() / rois.len() as f64),
    }
}

/// The metrics of `trades` (closed ones count), `experiments` and the
/// learning `history` (any order).
pub fn learning_metrics(
    trades: &[Trade],
    experiments: &[Experiment],
    history: &[LearningEvent],
) -> LearningMetrics {
    let closed: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.status == TradeStatus::Closed)
        .collect();
    let mut changes: Vec<&LearningEvent> = history
        .iter()
        .filter(|e| {
            matches!(
                e.event_type,
                LearningEventType::ParameterAdopted | LearningEventType::ParameterRolledBack
            )
        })
        .collect();
    changes.sort_by_key(|e| e.event_date);
    let first_adoption = changes
        .iter()
        .find(|e| e.event_type == LearningEventType::ParameterAdopted)
        .map(|e| e.event_date);
    let (before, after): (Vec<&Trade>, Vec<&Trade>) = match first_adoption {
        Some(t) => closed.iter().partition(|x| x.entry_time < t),
        None => (closed.clone(), Vec::new()),
    };
    let mut years: Vec<i32> = closed
        .iter()
        .filter_map(|t| t.exit_date.map(|d| chrono::Datelike::year(&d)))
        .collect();
    years.sort_unstable();
    years.dedup();
    let by_year = years
        .iter()
        .map(|y| {
            let in_year: Vec<&Trade> = closed
                .iter()
                .filter(|t| t.exit_date.map(|d| chrono::Datelike::year(&d)) == Some(*y))
                .copied()
                .collect();
            outcomes(y.to_string(), &in_year)
        })
        .collect();
    let mut counts = ExperimentCounts {
        run: experiments.len(),
        ..ExperimentCounts::default()
    };
    for e in experiments {
        match e.status {
            ExperimentStatus::Active => counts.active += 1,
            ExperimentStatus::Complete => counts.complete += 1,
            ExperimentStatus::Adopted => counts.adopted += 1,
            ExperimentStatus::Rejected => counts.rejected += 1,
            ExperimentStatus::RolledBack => counts.rolled_back += 1,
        }
    }
    LearningMetrics {
        baseline: outcomes("baseline", &before),
        since_first_adoption: first_adoption.map(|_| outcomes("since the first adoption", &after)),
        by_year,
        experiments: counts,
        parameter_history: changes
            .iter()
            .map(|e| ParameterEvent {
                date: e.event_date,
                event: e.event_type.as_str().to_string(),
                parameter: e.parameter_changed.clone(),
                from: e.old_value.clone(),
                to: e.new_value.clone(),
                reasoning: e.reasoning.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use core_domain::{ExitReason, Money, Price, Symbol, TradeExit};

    fn trade(id: &str, y: i32, pl_exit: f64) -> Trade {
        let t0 = Utc.with_ymd_and_hms(y, 3, 2, 15, 0, 0).unwrap();
        let d0 = NaiveDate::from_ymd_opt(y, 3, 2).unwrap();
        let mut t = Trade::opened(
            id,
            Symbol::new("XYZ").unwrap(),
            Price::from_cents(8_500),
            NaiveDate::from_ymd_opt(y, 3, 13).unwrap(),
            t0,
            d0,
            Price::from_cents(40),
            1,
        );
        t.margin_at_entry = Money::from_cents(170_000);
        t.close(TradeExit {
            time: t0 + chrono::Duration::days(3),
            date: d0 + chrono::Duration::days(3),
            exit_premium: Price::from_f64(pl_exit).unwrap(),
            reason: ExitReason::ProfitTarget,
            commission: Money::ZERO,
        })
        .unwrap();
        t
    }

    #[test]
    fn baseline_is_everything_before_the_first_adoption() {
        let trades = vec![
            trade("a", 2019, 0.20),
            trade("b", 2019, 1.20),
            trade("c", 2021, 0.10),
        ];
        let adoption = LearningEvent {
            event_type: LearningEventType::ParameterAdopted,
            event_date: Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap(),
            pattern_name: None,
            confidence: None,
            sample_size: None,
            parameter_changed: Some("otm_min".into()),
            old_value: Some("0.15".into()),
            new_value: Some("0.17".into()),
            reasoning: "adopted".into(),
        };
        let m = learning_metrics(&trades, &[], &[adoption]);
        assert_eq!(m.baseline.trades, 2);
        assert_eq!(m.baseline.win_rate, Some(0.5));
        let after = m.since_first_adoption.unwrap();
        assert_eq!((after.trades, after.win_rate), (1, Some(1.0)));
        assert_eq!(m.by_year.len(), 2);
        assert_eq!(m.parameter_history.len(), 1);
        assert_eq!(m.experiments.run, 0);
        let none = learning_metrics(&trades, &[], &[]);
        assert_eq!(none.baseline.trades, 3);
        assert!(none.since_first_adoption.is_none());
    }
}
