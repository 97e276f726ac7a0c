//! # learning
//!
//! **Owns:** the statistical tests, pattern detection, shadow trades, A/B
//! experiments with governed adoption, and the parameter optimizer. Usable
//! on its own by researchers.
//!
//! **Must not:** change a live parameter except through an adopted
//! experiment, or count shadow trades as P&L.
//!
//! Status: filled by the learning issue (#7); empty until then.
#![deny(unsafe_code)]
