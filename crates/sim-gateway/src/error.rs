//! The gateway's errors.

use thiserror::Error;

/// What can go wrong starting, running or talking to the gateway.
#[derive(Debug, Error)]
pub enum GatewayError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the simulated exchange: {0}")]
    Exchange(String),
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("bad fault spec {spec:?}: {reason}")]
    FaultSpec { spec: String, reason: String },
    #[error("control channel: {0}")]
    Control(String),
    #[error("protocol: {0}")]
    Protocol(String),
}
