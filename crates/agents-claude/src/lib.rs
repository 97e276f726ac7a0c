//! # agents-claude
//!
//! **Owns:** the analyst that explains results and proposes experiments
//! through the Anthropic Messages API, with a statistical report as the
//! fallback when no `ANTHROPIC_API_KEY` is set.
//!
//! **Must not:** change parameters or place orders: it proposes, only the
//! statistics adopt.
//!
//! Status: filled by a later issue; empty until then.
#![deny(unsafe_code)]
