//! TWS API framing: the handshake, length-prefixed frames, message ids.
//!
//! After the handshake every frame is `[u32 BE length][i32 BE id][payload]`;
//! a protobuf payload is flagged by the id being the message id + 200.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Added to a message id when its payload is protobuf.
pub const PROTOBUF_OFFSET: i32 = 200;
/// The server versions the gateway speaks (the protobuf ones).
pub const MIN_SERVER_VERSION: i32 = 213;
pub const MAX_SERVER_VERSION: i32 = 226;
/// The largest frame a client may send; anything larger is a broken stream.
pub const MAX_CLIENT_FRAME: usize = 1 << 20;

/// Client → gateway message ids.
pub mod inbound {
    pub const REQ_MKT_DATA: i32 = 1;
    pub const CANCEL_MKT_DATA: i32 = 2;
    pub const PLACE_ORDER: i32 = 3;
    pub const CANCEL_ORDER: i32 = 4;
    pub const REQ_OPEN_ORDERS: i32 = 5;
    pub const REQ_ACCOUNT_UPDATES: i32 = 6;
    pub const REQ_EXECUTIONS: i32 = 7;
    pub const REQ_IDS: i32 = 8;
    pub const REQ_CONTRACT_DATA: i32 = 9;
    pub const REQ_AUTO_OPEN_ORDERS: i32 = 15;
    pub const REQ_ALL_OPEN_ORDERS: i32 = 16;
    pub const REQ_MANAGED_ACCTS: i32 = 17;
    pub const REQ_HISTORICAL_DATA: i32 = 20;
    pub const CANCEL_HISTORICAL_DATA: i32 = 25;
    pub const REQ_CURRENT_TIME: i32 = 49;
    pub const REQ_GLOBAL_CANCEL: i32 = 58;
    pub const REQ_MARKET_DATA_TYPE: i32 = 59;
    pub const REQ_POSITIONS: i32 = 61;
    pub const REQ_ACCOUNT_SUMMARY: i32 = 62;
    pub const CANCEL_ACCOUNT_SUMMARY: i32 = 63;
    pub const CANCEL_POSITIONS: i32 = 64;
    pub const START_API: i32 = 71;
    pub const REQ_SEC_DEF_OPT_PARAMS: i32 = 78;
    pub const REQ_COMPLETED_ORDERS: i32 = 99;
    pub const REQ_CURRENT_TIME_MILLIS: i32 = 105;
    pub const CANCEL_CONTRACT_DATA: i32 = 106;
    /// The highest request id TWS knows (anything above is unknown).
    pub const MAX_KNOWN: i32 = 109;
}

/// Gateway → client message ids.
pub mod outbound {
    pub const TICK_PRICE: i32 = 1;
    pub const TICK_SIZE: i32 = 2;
    pub const ORDER_STATUS: i32 = 3;
    pub const ERROR: i32 = 4;
    pub const OPEN_ORDER: i32 = 5;
    pub const NEXT_VALID_ID: i32 = 9;
    pub const CONTRACT_DATA: i32 = 10;
    pub const EXECUTION_DATA: i32 = 11;
    pub const MANAGED_ACCOUNTS: i32 = 15;
    pub const HISTORICAL_DATA: i32 = 17;
    pub const TICK_OPTION_COMPUTATION: i32 = 21;
    pub const CURRENT_TIME: i32 = 49;
    pub const CONTRACT_DATA_END: i32 = 52;
    pub const OPEN_ORDER_END: i32 = 53;
    pub const EXECUTION_DATA_END: i32 = 55;
    pub const TICK_SNAPSHOT_END: i32 = 57;
    pub const MARKET_DATA_TYPE: i32 = 58;
    pub const COMMISSION_REPORT: i32 = 59;
    pub const POSITION: i32 = 61;
    pub const POSITION_END: i32 = 62;
    pub const ACCOUNT_SUMMARY: i32 = 63;
    pub const ACCOUNT_SUMMARY_END: i32 = 64;
    pub const SEC_DEF_OPT_PARAM: i32 = 75;
    pub const SEC_DEF_OPT_PARAM_END: i32 = 76;
    pub const COMPLETED_ORDERS_END: i32 = 102;
    pub const HISTORICAL_DATA_END: i32 = 108;
    pub const CURRENT_TIME_MILLIS: i32 = 109;
}

/// Why a client's bytes could not be read as a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame length {0} outside 4..={MAX_CLIENT_FRAME}")]
    BadLength(usize),
    #[error("bad handshake: {0}")]
    Handshake(String),
}

/// One frame from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message id with the protobuf offset removed.
    pub id: i32,
    /// Whether the payload is protobuf (the wire id was above 200).
    pub protobuf: bool,
    pub payload: Vec<u8>,
}

/// Encodes a protobuf message frame (length prefix included).
pub fn encode_proto_frame(id: i32, payload: &[u8]) -> Vec<u8> {
    let body_len = 4 + payload.len();
    let mut out = Vec::with_capacity(4 + body_len);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&(id + PROTOBUF_OFFSET).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Encodes a length-prefixed raw body (the handshake reply).
pub fn encode_raw(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits a frame body (no length prefix) into id and payload.
pub fn split_body(body: Vec<u8>) -> Result<Frame, FrameError> {
    if body.len() < 4 {
        return Err(FrameError::BadLength(body.len()));
    }
    let wire_id = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let payload = body[4..].to_vec();
    let protobuf = wire_id > PROTOBUF_OFFSET;
    let id = if protobuf {
        wire_id - PROTOBUF_OFFSET
    } else {
        wire_id
    };
    Ok(Frame {
        id,
        protobuf,
        payload,
    })
}

/// Reads one length-prefixed body; `Closed` on a clean end of stream
/// between frames.
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::BadLength(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads one client frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Frame, FrameError> {
    split_body(read_body(r, MAX_CLIENT_FRAME).await?)
}

/// Reads the client's handshake (`API\0` + length-prefixed `vMIN..MAX`,
/// maybe followed by options) and returns the server version to use.
pub async fn read_handshake<R: AsyncRead + Unpin>(r: &mut R) -> Result<i32, FrameError> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).await?;
    if &magic != b"API\0" {
        return Err(FrameError::Handshake(format!(
            "expected \"API\\0\", got {magic:?}"
        )));
    }
    let body = read_body(r, 256).await?;
    let text = String::from_utf8_lossy(&body);
    negotiate(&text)
}

/// Picks the server version for a client's `vMIN..MAX` offer.
pub fn negotiate(offer: &str) -> Result<i32, FrameError> {
    let range = offer
        .trim()
        .strip_prefix('v')
        .ok_or_else(|| FrameError::Handshake(format!("no version range in {offer:?}")))?;
    let range = range.split_whitespace().next().unwrap_or_default();
    let (lo, hi) = match range.split_once("..") {
        Some((lo, hi)) => (lo, hi),
        None => (range, range),
    };
    let parse = |s: &str| {
        s.parse::<i32>()
            .map_err(|e| FrameError::Handshake(format!("version {s:?}: {e}")))
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    let version = hi.min(MAX_SERVER_VERSION);
    if version < MIN_SERVER_VERSION || version < lo {
        return Err(FrameError::Handshake(format!(
            "client offers v{lo}..{hi}; the gateway speaks v{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}"
        )));
    }
    Ok(version)
}

/// The handshake reply: `<version>\0<YYYYMMDD HH:MM:SS zone>\0`, length-prefixed.
pub fn handshake_reply(version: i32, time: &str) -> Vec<u8> {
    encode_raw(format!("{version}\0{time}\0").as_bytes())
}

/// A frame whose length prefix no client may accept.
pub fn garbage_frame() -> Vec<u8> {
    let mut out = 0x7fff_ffffu32.to_be_bytes().to_vec();
    out.extend_from_slice(b"\xde\xad\xbe\xef garbage");
    out
}

/// A frame with a message id no TWS sends.
pub fn unknown_id_frame() -> Vec<u8> {
    encode_proto_frame(999, &[0x08, 0x01])
}

/// Corrupts an encoded protobuf frame: keeps the first field if it is
/// tag 1 as a varint (the request id the client routes by) and appends
/// tag 2 with the varint wire type, which the full decoder rejects when
/// tag 2 is a string or message. Frames that are not protobuf come back
/// unchanged.
pub fn corrupt_frame(frame: &[u8]) -> Vec<u8> {
    if frame.len() < 8 {
        return frame.to_vec();
    }
    let wire_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if wire_id <= PROTOBUF_OFFSET {
        return frame.to_vec();
    }
    let payload = &frame[8..];
    let mut kept = Vec::new();
    if payload.first() == Some(&0x08) {
        kept.push(0x08);
        for b in payload.iter().skip(1) {
            kept.push(*b);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    kept.extend_from_slice(&[0x10, 0x01]);
    encode_proto_frame(wire_id - PROTOBUF_OFFSET, &kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn versions_are_negotiated() -> Result<(), FrameError> {
        assert_eq!(negotiate("v213..226")?, 226);
        assert_eq!(negotiate("v213..230")?, 226);
        assert_eq!(negotiate("v213..220 +PACEAPI")?, 220);
        assert!(negotiate("v100..200").is_err());
        assert!(negotiate("v227..230").is_err());
        assert!(negotiate("213..226").is_err());
        Ok(())
    }

    #[test]
    fn proto_frames_round_trip() -> Result<(), FrameError> {
        let msg = crate::proto::IdEnd {
            req_id: Some(1_500_000_007),
        };
        let frame = encode_proto_frame(outbound::CONTRACT_DATA_END, &msg.encode_to_vec());
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - 4);
        let parsed = split_body(frame[4..].to_vec())?;
        assert_eq!(parsed.id, outbound::CONTRACT_DATA_END);
        assert!(parsed.protobuf);
        let back = crate::proto::IdEnd::decode(parsed.payload.as_slice())
            .map_err(|e| FrameError::Handshake(e.to_string()))?;
        assert_eq!(back, msg);
        Ok(())
    }

    #[tokio::test]
    async fn frames_are_read_and_bad_lengths_refused() {
        let mut bytes = encode_proto_frame(inbound::REQ_IDS, &[0x08, 0x01]);
        bytes.extend_from_slice(&(10_000_000u32).to_be_bytes());
        let mut r = bytes.as_slice();
        let f = read_frame(&mut r).await;
        assert!(matches!(
            f,
            Ok(Frame {
                id: inbound::REQ_IDS,
                protobuf: true,
                ..
            })
        ));
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::BadLength(_))
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut empty).await,
            Err(FrameError::Closed)
        ));
        let mut short: &[u8] = &[0, 0, 0, 2, 1, 1];
        assert!(matches!(
            read_frame(&mut short).await,
            Err(FrameError::BadLength(2))
        ));
    }

    #[tokio::test]
    async fn handshake_is_read() {
        let mut bytes = b"API\0".to_vec();
        bytes.extend_from_slice(&encode_raw(b"v213..226"));
        let mut r = bytes.as_slice();
        assert!(matches!(read_handshake(&mut r).await, Ok(226)));
        let mut wrong: &[u8] = b"HTTP/1.1";
        assert!(read_handshake(&mut wrong).await.is_err());
    }

    #[test]
    fn corrupt_frames_keep_the_request_id_and_fail_the_decode() -> Result<(), FrameError> {
        let msg = crate::proto::ContractData {
            req_id: Some(1_500_000_001),
            contract: Some(crate::proto::WireContract {
                symbol: Some("AAPL".into()),
                ..Default::default()
            }),
            details: None,
        };
        let frame = encode_proto_frame(outbound::CONTRACT_DATA, &msg.encode_to_vec());
        let bad = corrupt_frame(&frame);
        let parsed = split_body(bad[4..].to_vec())?;
        let id = crate::proto::IdEnd::decode(parsed.payload.as_slice())
            .map_err(|e| FrameError::Handshake(e.to_string()))?;
        assert_eq!(id.req_id, Some(1_500_000_001));
        assert!(crate::proto::ContractData::decode(parsed.payload.as_slice()).is_err());
        Ok(())
    }
}
