//! IBKR error and notice codes mapped to what the domain understands.
//!
//! TWS reports everything through one "error" message with a numeric code:
//! real errors, order rejections, market-data advisories and farm status
//! notices alike. [`map_error`] sorts a code into one of four outcomes
//! ([`Disposition`]); the table below is the single place the adapter
//! interprets codes. Codes not in the table are real errors and become
//! [`BrokerError::Api`] with IB's text.
//!
//! | code | meaning | outcome |
//! |---|---|---|
//! | 2104, 2106, 2107, 2108, 2158, 2119 | data farm connection OK / inactive | ignored (debug log) |
//! | 2100, 2109, 2150, 2168, 2169 | informational warnings | ignored (debug log) |
//! | 10089, 10167, 10168, 354 | no market-data subscription / delayed data shown | advisory: fall back to delayed data |
//! | 1100 | TWS lost its connection to IB | connection lost |
//! | 1101, 1102 | connection to IB restored | connection restored |
//! | 326 | client id in use | `NotConnected` (choose another client id) |
//! | 502, 504, 1300 | cannot connect / not connected / socket port reset | `NotConnected` |
//! | 200 | no security definition | `UnknownContract` |
//! | 201, 203 | order rejected | `Rejected` (with IB's reason), or `InsufficientMargin` when the reason is margin |
//! | 202 | order cancelled (the confirmation of a cancel) | ignored: the `Cancelled` order status reports it |
//! | 10148 | cancel too late: the order is filled or done | ignored: its execution or status reports it |
//! | 100, 162 (pacing text), 420 | pacing violation | `Pacing` |
//! | 162 (other text) | historical data query error | `NoData` |
//! | 321 | invalid request | `Protocol` with IB's detail |
//! | 2110 | TWS lost its connection to IB servers (warning) | connection lost |
//!
//! An error whose request id is one of our orders and whose code is in
//! [`ORDER_TERMINAL_CODES`] (201 rejected, 110 price not on the tick, 103
//! duplicate order id, …) also ends that order: the adapter reports it as
//! a `Rejected` order status with IB's text as the reason, since TWS may
//! send no status at all (or only `Inactive`) for such an order.

use core_domain::BrokerError;

/// Codes that mean "you have no real-time subscription; delayed data is
/// available" (see [`crate::market_data_type`]).
pub const DELAYED_DATA_ADVISORIES: [i32; 4] = [10089, 10167, 10168, 354];

/// Notices about IB's data farms and other information that needs no action.
const INFORMATIONAL: [i32; 10] = [2100, 2104, 2106, 2107, 2108, 2109, 2119, 2150, 2158, 2168];

/// Error codes that, sent with an order's id, mean that order will not
/// work: TWS refused it (or dropped it) and nothing more will happen to it
/// but what the error says. Codes that only concern a cancel or a
/// modification (161 "cancel attempted when not in a cancellable state",
/// 10147/10148 on a cancel, 135 "cannot find order", 202 "cancelled") are
/// not here: the order may have filled meanwhile, and its status or
/// execution reports the outcome.
pub const ORDER_TERMINAL_CODES: [i32; 20] = [
    103,   // duplicate order id
    105,   // the order being modified does not match the original
    106,   // cannot transmit the order id
    107,   // cannot transmit an incomplete order
    109,   // price is out of the range defined by the percentage offset
    110,   // the price does not conform to the minimum price variation
    111,   // the TIF and the order type are incompatible
    116,   // the exchange is closed
    117,   // the security is not available or allowed for this account
    200,   // no security definition (for an order)
    201,   // order rejected
    203,   // the security is not available or allowed for this account
    312,   // account is not allowed to trade
    382,   // the order size is too large
    383,   // the order size exceeds the limit
    387,   // unsupported order type for this exchange
    388,   // order size is smaller than the minimum
    399,   // order message error (with text; not a warning when it rejects)
    434,   // the order size cannot be zero
    10006, // missing or invalid account
];

/// Whether `code`, reported for an order, ends that order (see
/// [`ORDER_TERMINAL_CODES`]). 399 is terminal only when its text says the
/// order was rejected or cancelled (it is mostly a warning, e.g. "will
/// not be placed at the exchange until …").
pub fn is_order_terminal(code: i32, message: &str) -> bool {
    if code == 399 {
        let lower = message.to_ascii_lowercase();
        return lower.contains("reject")
            || lower.contains("cancel")
            || lower.contains("not accepted");
    }
    ORDER_TERMINAL_CODES.contains(&code)
}

/// What a TWS error code means for the adapter.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Informational; log at debug and carry on.
    Ignore,
    /// No subscription for real-time data: switch to delayed data.
    DelayedDataAdvisory,
    /// TWS lost (true) or regained (false) its connection to IB's servers;
    /// the socket to TWS itself is still up.
    Connectivity { lost: bool },
    /// A real error, mapped to the domain.
    Error(BrokerError),
}

/// Maps a TWS error code and message to what it means here. `context`
/// names the request (e.g. "option quote AAPL 2025-01-17 150.00 P" or an
/// order ref) so the resulting message says what failed.
pub fn map_error(code: i32, message: &str, context: &str) -> Disposition {
    let lower = message.to_ascii_lowercase();
    let ctx = if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    };
    if INFORMATIONAL.contains(&code) {
        return Disposition::Ignore;
    }
    if DELAYED_DATA_ADVISORIES.contains(&code) {
        return Disposition::DelayedDataAdvisory;
    }
    let err = match code {
        1100 | 2110 => return Disposition::Connectivity { lost: true },
        1101 | 1102 => return Disposition::Connectivity { lost: false },
        326 => BrokerError::NotConnected(format!(
            "{ctx}client id already in use (IB code 326: {message}); another program or a \
             stale session holds it: choose another broker.ibkr.client_id or close that session"
        )),
        502 => BrokerError::NotConnected(format!(
            "{ctx}could not connect to TWS / IB Gateway (IB code 502: {message}); check that it \
             is running and logged in, that 'Enable ActiveX and Socket Clients' is on, that the \
             port matches (paper 4002 / 7497, live 4001 / 7496) and that 127.0.0.1 is a trusted IP"
        )),
        504 | 1300 => BrokerError::NotConnected(format!(
            "{ctx}not connected to TWS / IB Gateway (IB code {code}: {message}); the adapter \
             reconnects in the background, retry after the connection is restored"
        )),
        200 => BrokerError::UnknownContract(format!("{ctx}{message} (IB code 200)")),
        201 | 203 if is_margin_text(&lower) => BrokerError::InsufficientMargin {
            order_ref: context.to_string(),
            detail: format!("{message} (IB code {code})"),
        },
        201 | 203 => BrokerError::Rejected {
            order_ref: context.to_string(),
            reason: format!("{message} (IB code {code})"),
        },
        // The confirmation of a cancel (the order's `Cancelled` status
        // arrives as an order status), and a cancel that came too late:
        // the fill arrives as an execution.
        202 | 10148 => return Disposition::Ignore,
        100 | 420 => BrokerError::Pacing(format!("{ctx}{message} (IB code {code})")),
        162 if lower.contains("pacing") => {
            BrokerError::Pacing(format!("{ctx}{message} (IB code 162)"))
        }
        162 => BrokerError::NoData(format!("{ctx}{message} (IB code 162)")),
        321 => BrokerError::Protocol(format!(
            "{ctx}TWS refused the request as invalid (IB code 321): {message}"
        )),
        _ if is_margin_text(&lower) && (103..=399).contains(&code) => {
            BrokerError::InsufficientMargin {
                order_ref: context.to_string(),
                detail: format!("{message} (IB code {code})"),
            }
        }
        _ => BrokerError::Api {
            code,
            message: format!("{ctx}{message}"),
        },
    };
    Disposition::Error(err)
}

pub(crate) fn is_margin_text(lower: &str) -> bool {
    lower.contains("margin") || lower.contains("equity with loan") || lower.contains("buying power")
}

/// Maps an error of the `ibapi` crate itself (transport, decoding, a notice
/// it raised as an error) to the domain, naming the request that failed.
pub(crate) fn map_client_error(err: &ibapi::Error, request: &str) -> BrokerError {
    use ibapi::Error as E;
    if err.is_connection_lost() {
        return BrokerError::NotConnected(format!(
            "{request}: the connection to TWS / IB Gateway was reset ({err}); the adapter \
             reconnects in the background"
        ));
    }
    match err {
        E::Notice(notice) => match map_error(notice.code, &notice.message, request) {
            Disposition::Error(e) => e,
            Disposition::DelayedDataAdvisory => BrokerError::NoData(format!(
                "{request}: no real-time market data subscription (IB code {}): {}",
                notice.code, notice.message
            )),
            Disposition::Ignore | Disposition::Connectivity { .. } => BrokerError::Api {
                code: notice.code,
                message: format!("{request}: {}", notice.message),
            },
        },
        E::ClientIdInUse { client_id } => BrokerError::NotConnected(format!(
            "{request}: client id {client_id} is already in use (IB code 326); choose another \
             broker.ibkr.client_id or close the other session"
        )),
        E::ConnectionFailed | E::Shutdown | E::ConnectionRejected(_) | E::Io(_) => {
            BrokerError::NotConnected(format!("{request}: {err}"))
        }
        E::Timeout => BrokerError::Timeout(request.to_string()),
        E::Cancelled => BrokerError::Protocol(format!("{request}: the request was cancelled")),
        E::EndOfStream | E::UnexpectedEndOfStream => BrokerError::Protocol(format!(
            "{request}: TWS ended the reply before sending what was asked"
        )),
        E::BufferLimitExceeded { .. } => BrokerError::Pacing(format!(
            "{request}: replies arrived faster than they were read ({err})"
        )),
        _ => BrokerError::Protocol(format!("{request}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i32, message: &str) -> BrokerError {
        match map_error(code, message, "ctx") {
            Disposition::Error(e) => e,
            other => panic!("code {code}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn informational_codes_are_ignored() {
        for code in [2104, 2106, 2158, 2107, 2108] {
            assert_eq!(map_error(code, "farm ok", ""), Disposition::Ignore);
        }
    }

    #[test]
    fn delayed_data_advisories_trigger_fallback() {
        for code in [10089, 10167, 10168, 354] {
            assert_eq!(
                map_error(code, "Requested market data is not subscribed", ""),
                Disposition::DelayedDataAdvisory
            );
        }
    }

    #[test]
    fn connectivity_codes() {
        assert_eq!(
            map_error(1100, "Connectivity between IB and TWS has been lost", ""),
            Disposition::Connectivity { lost: true }
        );
        assert_eq!(
            map_error(1102, "restored - data maintained", ""),
            Disposition::Connectivity { lost: false }
        );
        assert_eq!(
            map_error(1101, "restored - data lost", ""),
            Disposition::Connectivity { lost: false }
        );
    }

    #[test]
    fn client_id_in_use_names_the_setting() {
        let e = err(326, "Unable to connect as the client id is already in use");
        assert!(matches!(&e, BrokerError::NotConnected(m) if m.contains("broker.ibkr.client_id")));
        assert!(e.is_transient());
    }

    #[test]
    fn not_connected_codes() {
        for code in [502, 504, 1300] {
            assert!(
                matches!(err(code, "x"), BrokerError::NotConnected(_)),
                "{code}"
            );
        }
        assert!(
            matches!(err(502, "Couldn't connect"), BrokerError::NotConnected(m) if m.contains("4002"))
        );
    }

    #[test]
    fn unknown_contract() {
        assert!(matches!(
            err(200, "No security definition has been found for the request"),
            BrokerError::UnknownContract(m) if m.contains("ctx")
        ));
    }

    #[test]
    fn order_rejections_keep_ibs_reason() {
        match err(201, "Order rejected - reason: the order size is too large") {
            BrokerError::Rejected { order_ref, reason } => {
                assert_eq!(order_ref, "ctx");
                assert!(reason.contains("too large"));
            }
            other => panic!("{other:?}"),
        }
        assert!(map_error(202, "Order Canceled - reason:", "X-1") == Disposition::Ignore);
        assert!(matches!(
            err(
                203,
                "The security is not available or allowed for this account"
            ),
            BrokerError::Rejected { .. }
        ));
    }

    #[test]
    fn order_scoped_codes_that_end_the_order() {
        for code in [201, 110, 103, 200, 203] {
            assert!(is_order_terminal(code, "x"), "{code}");
        }
        // a cancel's answers, warnings and notices do not end the order
        for code in [202, 161, 10147, 10148, 2104, 100] {
            assert!(!is_order_terminal(code, "x"), "{code}");
        }
        assert!(!is_order_terminal(
            399,
            "Order Message: Warning: your order will not be placed at the exchange until 09:30"
        ));
        assert!(is_order_terminal(399, "Order Message: order rejected"));
    }

    #[test]
    fn margin_rejections() {
        assert!(matches!(
            err(
                201,
                "Order rejected - reason: Your account has insufficient margin"
            ),
            BrokerError::InsufficientMargin { .. }
        ));
        assert!(matches!(
            err(
                399,
                "Order Message: Your order is not accepted because your Equity with Loan Value is insufficient"
            ),
            BrokerError::InsufficientMargin { .. }
        ));
    }

    #[test]
    fn pacing_codes() {
        assert!(matches!(
            err(100, "Max rate of messages per second has been exceeded"),
            BrokerError::Pacing(_)
        ));
        assert!(matches!(
            err(420, "Invalid real-time query: pacing"),
            BrokerError::Pacing(_)
        ));
        assert!(matches!(
            err(
                162,
                "Historical Market Data Service error message:Historical data request pacing violation"
            ),
            BrokerError::Pacing(_)
        ));
        assert!(matches!(
            err(
                162,
                "Historical Market Data Service error message:HMDS query returned no data"
            ),
            BrokerError::NoData(_)
        ));
    }

    #[test]
    fn invalid_request_is_protocol_with_detail() {
        assert!(matches!(
            err(321, "Error validating request:-'bX' : cause - Invalid contract id"),
            BrokerError::Protocol(m) if m.contains("Invalid contract id")
        ));
    }

    #[test]
    fn unknown_codes_keep_code_and_text() {
        assert_eq!(
            err(10_197, "No market data during competing live session"),
            BrokerError::Api {
                code: 10_197,
                message: "ctx: No market data during competing live session".into()
            }
        );
    }

    #[test]
    fn client_errors_name_the_request() {
        let e = map_client_error(&ibapi::Error::ConnectionReset, "positions");
        assert!(matches!(&e, BrokerError::NotConnected(m) if m.starts_with("positions")));
        let e = map_client_error(&ibapi::Error::Timeout, "account summary");
        assert_eq!(e, BrokerError::Timeout("account summary".into()));
        let e = map_client_error(
            &ibapi::Error::Parse(3, "x".into(), "bad".into()),
            "option chain AAPL",
        );
        assert!(matches!(&e, BrokerError::Protocol(m) if m.starts_with("option chain AAPL")));
        let e = map_client_error(&ibapi::Error::UnexpectedEndOfStream, "what-if o-1");
        assert!(matches!(e, BrokerError::Protocol(_)));
        let e = map_client_error(&ibapi::Error::ClientIdInUse { client_id: 7 }, "connect");
        assert!(matches!(&e, BrokerError::NotConnected(m) if m.contains("client id 7")));
    }
}
