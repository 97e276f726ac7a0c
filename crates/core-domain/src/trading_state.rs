//! The trading state: whether new risk may be taken.

use crate::macros::string_enum;

string_enum! {
    /// Whether new risk may be taken. Ordered by severity:
    /// `Active < ReduceOnly < Halted`; circuit breakers only ever escalate.
    /// Stored as its text (`active`, `reduce_only`, `halted`); any other
    /// text is an error, never a state.
    #[derive(PartialOrd, Ord, Default)]
    TradingState {
        /// Opening orders pass if they pass every limit.
        #[default]
        Active => "active",
        /// Only orders that reduce risk pass.
        ReduceOnly => "reduce_only",
        /// Only orders that reduce risk pass, until an operator resumes.
        Halted => "halted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_text_round_trips_and_unknown_text_is_an_error() {
        for s in TradingState::ALL {
            assert_eq!(s.as_str().parse::<TradingState>().ok(), Some(*s));
        }
        assert!("paused".parse::<TradingState>().is_err());
        assert!("Active".parse::<TradingState>().is_err());
        assert!(TradingState::Active < TradingState::ReduceOnly);
        assert!(TradingState::ReduceOnly < TradingState::Halted);
        assert_eq!(TradingState::default(), TradingState::Active);
    }
}
