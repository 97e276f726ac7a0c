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
    /// IB's habits (docs/SIM_GATEWAY.md, "IB's bad habits"): an order's
    /// status is sent before its execution.
    pub status_before_execution: bool,
    /// Commission reports follow their execution after this many
    /// milliseconds (wall clock).
    pub commission_delay_ms: u64,
    /// The next N executions are each corrected (sent again with a `.02`
    /// execution id).
    pub corrections: u32,
    /// The next N accepted orders are reported `Inactive` (held) first.
    pub inactive_holds: u32,
    /// The error code of the `reject_orders` rejections (201 by default;
    /// 110 and 103 are IB's other usual ones).
    pub reject_code: Option<i32>,
    /// The next N cancels lose a race with a fill: the order fills at its
    /// limit before the cancel lands (answered with 10148).
    pub cancel_races: u32,
    /// At the next time advance, one contract of the first short option
    /// is assigned early (before its expiry).
    pub early_assignment: bool,
    /// At the next time advance with a short option position of two or
    /// more contracts, one contract of it is assigned (the rest stays).
    pub partial_assignment: bool,
    /// At the next advance that settles options (an expiry), every
    /// connection is dropped before the settlement is reported.
    pub expiry_disconnected: bool,
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
    /// Order statuses before their executions (`true`) or after (`false`).
    StatusBeforeExecution(bool),
    /// Commission reports this many milliseconds after their executions.
    CommissionDelayMs(u64),
    /// Correct the next N executions (`.02` execution ids).
    Corrections(u32),
    /// Report the next N accepted orders `Inactive` (held) first.
    InactiveHolds(u32),
    /// Reject the next N orders with this error code only (no status).
    RejectWithCode {
        count: u32,
        code: i32,
        reason: String,
    },
    /// The next N cancels lose a race with a fill.
    CancelRaces(u32),
    /// Assign one contract of the first short option at the next advance.
    EarlyAssignment,
    /// Assign one contract of a short option position of two or more.
    PartialAssignment,
    /// Drop every connection just before the next expiry is reported.
    ExpiryDisconnected,
    /// The nightly restart: every connection closed now and new ones
    /// refused for this many seconds; orders, executions and order ids
    /// continue (the gateway keeps them).
    NightlyRestart { refuse_secs: u64 },
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
    /// | `status_before_execution [off]` | order status before its execution |
    /// | `commission_delay <ms>` | commission reports late |
    /// | `corrections <n>` | the next n executions corrected (`.02` ids) |
    /// | `inactive <n>` | the next n orders reported `Inactive` (held) first |
    /// | `reject_code <n> <code> [reason…]` | the next n orders refused by error code only |
    /// | `cancel_race <n>` | the next n cancels arrive after a fill |
    /// | `early_assignment` | one short option contract assigned at the next advance |
    /// | `partial_assignment` | one contract of a short position of 2+ assigned |
    /// | `expiry_disconnected` | connections dropped as the next expiry settles |
    /// | `nightly_restart [secs]` | connections closed, refused for secs (2) |
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
            "status_before_execution" => Ok(Fault::StatusBeforeExecution(
                !rest.eq_ignore_ascii_case("off"),
            )),
            "commission_delay" => Ok(Fault::CommissionDelayMs(number("milliseconds")?)),
            "corrections" => Ok(Fault::Corrections(small(number("count")?)?)),
            "inactive" => Ok(Fault::InactiveHolds(small(number("count")?)?)),
            "reject_code" => {
                let mut words = rest.split_whitespace();
                let count = small(number("count")?)?;
                words.next();
                let code = words
                    .next()
                    .ok_or_else(|| bad("error code expected (e.g. 201, 110, 103)"))?
                    .parse::<i32>()
                    .map_err(|e| bad(&format!("error code: {e}")))?;
                let reason: Vec<&str> = words.collect();
                let reason = if reason.is_empty() {
                    default_reject_text(code).to_string()
                } else {
                    reason.join(" ")
                };
                Ok(Fault::RejectWithCode {
                    count,
                    code,
                    reason,
                })
            }
            "cancel_race" => Ok(Fault::CancelRaces(small(number("count")?)?)),
            "early_assignment" => Ok(Fault::EarlyAssignment),
            "partial_assignment" => Ok(Fault::PartialAssignment),
            "expiry_disconnected" => Ok(Fault::ExpiryDisconnected),
            "nightly_restart" => Ok(Fault::NightlyRestart {
                refuse_secs: if rest.is_empty() {
                    2
                } else {
                    number("seconds")?
                },
            }),
            "clear" => Ok(Fault::Clear),
            _ => Err(bad("unknown fault")),
        }
    }
}

/// IB's text for an order-refusing error code.
pub fn default_reject_text(code: i32) -> &'static str {
    match code {
        110 => "The price does not conform to the minimum price variation for this contract.",
        103 => "Duplicate order id",
        201 => "Order rejected - reason:rejected by fault injection",
        _ => "Order rejected by fault injection",
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
    /// The code of the `reject_orders` rejections.
    pub reject_code: i32,
    pub status_before_execution: bool,
    pub commission_delay_ms: u64,
    pub corrections: u32,
    pub inactive_holds: u32,
    pub cancel_races: u32,
    pub early_assignment: bool,
    pub partial_assignment: bool,
    pub expiry_disconnected: bool,
    /// New connections are refused until then (the nightly restart).
    pub refuse_until: Option<std::time::Instant>,
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
            reject_code: c.reject_code.unwrap_or(201),
            status_before_execution: c.status_before_execution,
            commission_delay_ms: c.commission_delay_ms,
            corrections: c.corrections,
            inactive_holds: c.inactive_holds,
            cancel_races: c.cancel_races,
            early_assignment: c.early_assignment,
            partial_assignment: c.partial_assignment,
            expiry_disconnected: c.expiry_disconnected,
            refuse_until: None,
        }
    }

    /// Applies a fault that changes state; `DropNow` and `EmitError` act
    /// at once and are handled by the caller.
    pub fn apply(&mut self, fault: &Fault) {
        match fault {
            Fault::DropNow | Fault::EmitError { .. } => {}
            Fault::NightlyRestart { refuse_secs } => {
                self.refuse_until =
                    Some(std::time::Instant::now() + std::time::Duration::from_secs(*refuse_secs));
            }
            Fault::StatusBeforeExecution(on) => self.status_before_execution = *on,
            Fault::CommissionDelayMs(ms) => self.commission_delay_ms = *ms,
            Fault::Corrections(n) => self.corrections = *n,
            Fault::InactiveHolds(n) => self.inactive_holds = *n,
            Fault::RejectWithCode {
                count,
                code,
                reason,
            } => {
                self.reject_orders = *count;
                self.reject_code = *code;
                self.reject_reason = reason.clone();
            }
            Fault::CancelRaces(n) => self.cancel_races = *n,
            Fault::EarlyAssignment => self.early_assignment = true,
            Fault::PartialAssignment => self.partial_assignment = true,
            Fault::ExpiryDisconnected => self.expiry_disconnected = true,
            Fault::DropAfterMessages(n) => self.drop_after_messages = Some(*n),
            Fault::DropAfterPlaceOrder => self.drop_after_place_order = true,
            Fault::DelayMs(ms) => self.delay_ms = *ms,
            Fault::RejectOrders { count, reason } => {
                self.reject_orders = *count;
                self.reject_code = 201;
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
        assert_eq!(
            Fault::parse("reject_code 2 110")?,
            Fault::RejectWithCode {
                count: 2,
                code: 110,
                reason: default_reject_text(110).into()
            }
        );
        assert_eq!(
            Fault::parse("reject_code 1 103 Duplicate order id")?,
            Fault::RejectWithCode {
                count: 1,
                code: 103,
                reason: "Duplicate order id".into()
            }
        );
        assert_eq!(
            Fault::parse("status_before_execution")?,
            Fault::StatusBeforeExecution(true)
        );
        assert_eq!(
            Fault::parse("commission_delay 2500")?,
            Fault::CommissionDelayMs(2500)
        );
        assert_eq!(Fault::parse("corrections 3")?, Fault::Corrections(3));
        assert_eq!(Fault::parse("inactive 1")?, Fault::InactiveHolds(1));
        assert_eq!(Fault::parse("cancel_race 1")?, Fault::CancelRaces(1));
        assert_eq!(Fault::parse("early_assignment")?, Fault::EarlyAssignment);
        assert_eq!(
            Fault::parse("partial_assignment")?,
            Fault::PartialAssignment
        );
        assert_eq!(
            Fault::parse("expiry_disconnected")?,
            Fault::ExpiryDisconnected
        );
        assert_eq!(
            Fault::parse("nightly_restart")?,
            Fault::NightlyRestart { refuse_secs: 2 }
        );
        assert_eq!(
            Fault::parse("nightly_restart 5")?,
            Fault::NightlyRestart { refuse_secs: 5 }
        );
        assert!(Fault::parse("reject_code 1").is_err());
        assert!(Fault::parse("explode").is_err());
        assert!(Fault::parse("delay soon").is_err());
        assert!(Fault::parse("malformed sideways").is_err());
        Ok(())
    }
}
