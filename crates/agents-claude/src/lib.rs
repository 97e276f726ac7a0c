//! # agents-claude
//!
//! **Owns:** the Claude analyst and advisor: a typed client of the
//! Anthropic Messages API written on `reqwest` + serde ([`client`],
//! [`api`]: headers, structured output, tools, prompt caching, retries as
//! the official SDKs do them); the analysis ([`stats`]: the statistics
//! computed locally with corrected p-values; [`analysis`]: the prompt, the
//! answer's schema, the grounding checks, the statistical fallback
//! report); the [`analyst`] that runs it, records tokens and cost and
//! stores reports with their accepted recommendations as proposals for
//! experiments; the optional [`reasoner`] that lets the model choose among
//! the engine's actions; and [`fake`], a loopback Messages API for tests.
//!
//! **Must not:** change parameters or place orders: it proposes, only the
//! statistics adopt (an accepted recommendation is a `proposal_received`
//! learning event, never a parameter change); send anything but statistics
//! and parameters (no account number, no key, no trade ids); print or store
//! the API key (read only from `ANTHROPIC_API_KEY`, redacted in `Debug`).
#![deny(unsafe_code)]

pub mod analysis;
pub mod analyst;
pub mod api;
pub mod client;
pub mod fake;
pub mod reasoner;
pub mod stats;

pub use analysis::{AnalysisInput, Report, Source, Status};
pub use analyst::{AgentConfig, Analyst, AnalystError, Pricing};
pub use client::{
    API_KEY_ENV, ApiError, ApiKey, BASE_URL_ENV, ClientConfig, MessagesClient, RetryPolicy,
};
