//! Fault injection: what can go wrong with a real TWS, on demand.
//!
//! Faults come from three places: [`FaultConfig`] at start, the control
//! channel's `FAULT <spec>` (parsed by [`Fault::parse`]) and
//! [`crate::GatewayHandle::inject`].

use std::str::FromStr;

use serde::Deserialize;

use crate::GatewayError;

/// A malformed frame the gateway can send a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedKind {
    /// A frame whose length prefix is absurd (0x7fff_ffff) followed by junk:
    /// the client's frame reader must give up on the stream.
    Garbage,
    /// A well-formed frame with a message id no TWS sends (999), sent
    /// before the next reply; the reply follows intact.
    UnknownId,
    /// The next reply keeps its request id (tag 1) but its tag 2 has the
    /// wrong wire type, so the full decode fails: the request the reply
    /// answers must fail with a decode error.
    Corrupt,
}

impl FromStr for MalformedKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "garbage" => Ok(MalformedKind::Garbage),
            "unknown_id" => Ok(MalformedKind::UnknownId),
            "corrupt" | "truncated" => Ok(MalformedKind::Corrupt),
            other => Err(format!(
                "unknown malformed kind {other:?} (garbage, unknown_id, corrupt)"
            )),
        }
    }
}

/// Faults active from the start (all off by default).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Delay every frame the gateway sends by this many milliseconds.
    pub delay_ms: u64,
    /// Drop every connection after this many more client messages.
    pub drop_after_messages: Option<u32>,
    /// Drop every connection right after the next placeOrder the exchange
    /// accepted (before the client hears of it).
    pub drop_after_place_order: bool,
    /// Reject the next N orders with error 201.
    pub reject_orders: u32,
    /// The reason given with those rejections.
    pub reject_reason: Option<String>,
    /// Answer the next N historical-data requests with pacing error 162.
    pub pacing_historical: u32,
    /// Error 100 (and the message dropped) when a client sends more than
    /// this many messages within one second. TWS's limit is 50.
    pub max_messages_per_second: Option<u32>,
    /// Send this malformed frame with the next reply.
    pub malformed: Option<MalformedKind>,
}

/// One fault, injected at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Drop every connection now.
    DropNow,
    /// Drop every connection after N more client messages.
    DropAfterMessages(u32),
    /// Drop every connection right after the next accepted placeOrder.
    DropAfterPlaceOrder,
    /// Delay every frame sent by this many milliseconds (0 = off).
    DelayMs(u64),
    /// Reject the next N orders with error 201 and this reason.
    RejectOrders { count: u32, reason: String },
    /// Send this error frame to every client now (request id -1).
    EmitError { code: i32, message: String },
    /// Error 162 on the next N historical-data requests.
    PacingHistorical(u32),
    /// Error 100 above this many messages per second (`None` = off).
    RateLimit(Option<u32>),
    /// Send a malformed frame with the next reply.
    Malformed(MalformedKind),
    /// Clear every fault.
    Clear,
}

impl Fault {
    /// Parses a control-channel spec:
    ///
    /// | spec | fault |
    /// |---|---|
    /// | `drop` | drop all connections now |
    /// | `drop_after_messages <n>` | … after n more client messages |
    /// | `drop_after_place_order` | … right after the next accepted order |
    /// | `delay <ms>` | delay every reply |
    /// | `reject <n> [reason…]` | error 201 for the next n orders |
    /// | `error <code> <message…>` | send an error frame to every client |
    /// | `pacing_historical <n>` | error 162 on the next n historical requests |
    /// | `rate_limit <n>` / `rate_limit off` | error 100 above n messages/s |
    /// | `malformed garbage\|unknown_id\|corrupt` | a malformed frame |
    /// | `clear` | every fault off |
    pub fn parse(spec: &str) -> Result<Fault, GatewayError> {
        let bad = |reason: &str| GatewayError::FaultSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let spec_trim = spec.trim();
        let (word, rest) = match spec_trim.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (spec_trim, ""),
        };
        let number = |what: &str| -> Result<u64, GatewayError> {
            rest.split_whitespace()
                .next()
                .ok_or_else(|| bad(&format!("{what} expected")))?
                .parse::<u64>()
                .map_err(|e| bad(&format!("{what}: {e}")))
        };
        let small = |n: u64| u32::try_from(n).map_err(|_| bad("number too large"));
        match word.to_ascii_lowercase().as_str() {
            "drop" => Ok(Fault::DropNow),
            "drop_after_messages" => Ok(Fault::DropAfterMessages(small(number("count")?)?)),
            "drop_after_place_order" => Ok(Fault::DropAfterPlaceOrder),
            "delay" => Ok(Fault::DelayMs(number("milliseconds")?)),
            "reject" => {
                let count = small(number("count")?)?;
                let reason = rest
                    .split_once(char::is_whitespace)
                    .map(|(_, r)| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "rejected by fault injection".into());
                Ok(Fault::RejectOrders { count, reason })
            }
            "error" => {
                let (code, message) = rest
                    .split_once(char::is_whitespace)
                    .map_or((rest, ""), |(c, m)| (c, m.trim()));
                let code = code
                    .parse::<i32>()
                    .map_err(|e| bad(&format!("error code: {e}")))?;
                Ok(Fault::EmitError {
                    code,
                    message: message.to_string(),
                })
            }
            "pacing_historical" => Ok(Fault::PacingHistorical(small(number("count")?)?)),
            "rate_limit" => {
                if rest.eq_ignore_ascii_case("off") {
                    Ok(Fault::RateLimit(None))
                } else {
                    Ok(Fault::RateLimit(Some(small(number(
                        "messages per second",
                    )?)?)))
                }
            }
            "malformed" => Ok(Fault::Malformed(rest.parse().map_err(|e: String| bad(&e))?)),
            "clear" => Ok(Fault::Clear),
            _ => Err(bad("unknown fault")),
        }
    }
}

/// The live fault state (counters consumed as faults fire).
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub delay_ms: u64,
    pub drop_after_messages: Option<u32>,
    pub drop_after_place_order: bool,
    pub reject_orders: u32,
    pub reject_reason: String,
    pub pacing_historical: u32,
    pub max_messages_per_second: Option<u32>,
    pub malformed: Option<MalformedKind>,
}

impl FaultState {
    pub fn from_config(c: &FaultConfig) -> Self {
        FaultState {
            delay_ms: c.delay_ms,
            drop_after_messages: c.drop_after_messages,
            drop_after_place_order: c.drop_after_place_order,
            reject_orders: c.reject_orders,
            reject_reason: c
                .reject_reason
                .clone()
                .unwrap_or_else(|| "rejected by fault injection".into()),
            pacing_historical: c.pacing_historical,
            max_messages_per_second: c.max_messages_per_second,
            malformed: c.malformed,
        }
    }

    /// Applies a fault that changes state; `DropNow` and `EmitError` act
    /// at once and are handled by the caller.
    pub fn apply(&mut self, fault: &Fault) {
        match fault {
            Fault::DropNow | Fault::EmitError { .. } => {}
            Fault::DropAfterMessages(n) => self.drop_after_messages = Some(*n),
            Fault::DropAfterPlaceOrder => self.drop_after_place_order = true,
            Fault::DelayMs(ms) => self.delay_ms = *ms,
            Fault::RejectOrders { count, reason } => {
                self.reject_orders = *count;
                self.reject_reason = reason.clone();
            }
            Fault::PacingHistorical(n) => self.pacing_historical = *n,
            Fault::RateLimit(n) => self.max_messages_per_second = *n,
            Fault::Malformed(kind) => self.malformed = Some(*kind),
            Fault::Clear => *self = FaultState::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() -> Result<(), GatewayError> {
        assert_eq!(Fault::parse("drop")?, Fault::DropNow);
        assert_eq!(
            Fault::parse("drop_after_messages 3")?,
            Fault::DropAfterMessages(3)
        );
        assert_eq!(Fault::parse("DELAY 250")?, Fault::DelayMs(250));
        assert_eq!(
            Fault::parse("reject 2 no margin today")?,
            Fault::RejectOrders {
                count: 2,
                reason: "no margin today".into()
            }
        );
        assert_eq!(
            Fault::parse("error 1100 Connectivity between IB and TWS has been lost.")?,
            Fault::EmitError {
                code: 1100,
                message: "Connectivity between IB and TWS has been lost.".into()
            }
        );
        assert_eq!(Fault::parse("rate_limit off")?, Fault::RateLimit(None));
        assert_eq!(Fault::parse("rate_limit 50")?, Fault::RateLimit(Some(50)));
        assert_eq!(
            Fault::parse("malformed corrupt")?,
            Fault::Malformed(MalformedKind::Corrupt)
        );
        assert!(Fault::parse("explode").is_err());
        assert!(Fault::parse("delay soon").is_err());
        assert!(Fault::parse("malformed sideways").is_err());
        Ok(())
    }
}
