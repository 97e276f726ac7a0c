//! Faults: dropped connections (mid-order: no duplicate, no lost fill),
//! rejections, pacing, malformed frames both ways, delays, the control
//! channel's errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::*;
use ibapi::orders::{Action, Executions, order_builder};
use ibapi::prelude::*;
use ibapi::subscriptions::SubscriptionItem;
use prost::Message;
use sim_gateway::{proto, wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn dropped_mid_order_then_reconnect_finds_one_order_and_its_fill() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    let (put, _) = otm_put(&client, "AAPL").await;
    let (bid, _) = bid_ask(&client, &put).await;
    rig.control
        .fault("drop_after_place_order")
        .await
        .expect("fault");

    // marketable: the exchange fills it at once, while nobody listens
    let id = client.next_order_id();
    let mut order = order_builder::limit_order(Action::Sell, 1.0, bid);
    order.order_ref = "idem-1".into();
    let _ = within(client.submit_order(id, &put, &order)).await;
    let t0 = Instant::now();
    while rig.gw.connected_clients().contains(&1) && t0.elapsed() < TIMEOUT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rig.gw.exchange().all_executions().len(), 1);

    // a new session: the fill is there once
    let again = rig.client(2).await;
    let execs = within(again.executions(ExecutionFilter::default()))
        .await
        .expect("executions")
        .collect_to_end_within(TIMEOUT)
        .await
        .expect("to the end");
    let fills: Vec<_> = execs
        .iter()
        .filter_map(|e| match e {
            Executions::ExecutionData(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(fills.len(), 1, "{execs:?}");
    assert_eq!(fills[0].execution.order_reference, "idem-1");
    assert_eq!(fills[0].execution.order_id, id);
    assert_eq!(fills[0].execution.client_id, 1);
    assert!(
        execs
            .iter()
            .any(|e| matches!(e, Executions::CommissionReport(c) if c.execution_id == fills[0].execution.execution_id))
    );

    // re-sending the same orderRef (a new order id) creates no second order
    let id2 = within(again.next_valid_order_id()).await.expect("id");
    assert!(
        id2 > id,
        "order ids move past the dropped session's: {id2} {id}"
    );
    let mut sub = within(again.place_order(id2, &put, &order))
        .await
        .expect("sent");
    let reply = within(sub.next()).await.expect("reply");
    assert!(
        matches!(&reply, Err(Error::Notice(n)) if n.code == 201 && n.message.contains("duplicate orderRef")),
        "{reply:?}"
    );
    assert_eq!(rig.gw.exchange().all_executions().len(), 1);
    let positions = within(again.positions())
        .await
        .expect("positions")
        .collect_until(TIMEOUT, |v| {
            matches!(v.last(), Some(PositionUpdate::PositionEnd))
        })
        .await;
    assert_eq!(
        positions
            .iter()
            .filter(|p| matches!(p, PositionUpdate::Position(p) if p.position == -1.0))
            .count(),
        1
    );
}

#[tokio::test]
async fn rejections_pacing_and_emitted_errors() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    let (put, _) = otm_put(&client, "AAPL").await;
    let (_, ask) = bid_ask(&client, &put).await;

    rig.control
        .fault("reject 1 insufficient equity today")
        .await
        .expect("fault");
    let id = client.next_order_id();
    let order = order_builder::limit_order(Action::Sell, 1.0, ask);
    let mut sub = within(client.place_order(id, &put, &order))
        .await
        .expect("sent");
    let reply = within(sub.next()).await.expect("reply");
    assert!(
        matches!(&reply, Err(Error::Notice(n)) if n.code == 201 && n.message.contains("insufficient equity today")),
        "{reply:?}"
    );
    // the next order is accepted
    let id = client.next_order_id();
    let mut sub = within(client.place_order(id, &put, &order))
        .await
        .expect("sent");
    let reply = within(sub.next()).await.expect("reply");
    assert!(
        matches!(reply, Ok(SubscriptionItem::Data(PlaceOrder::OpenOrder(_)))),
        "{reply:?}"
    );

    rig.control
        .fault("pacing_historical 1")
        .await
        .expect("fault");
    let stock = Contract::stock("KO").build();
    let bars = within(
        client
            .historical_data(&stock, HistoricalBarSize::Day)
            .duration(5.days())
            .fetch(),
    )
    .await;
    assert!(
        matches!(&bars, Err(Error::Notice(n)) if n.code == 162),
        "{bars:?}"
    );
    let bars = within(
        client
            .historical_data(&stock, HistoricalBarSize::Day)
            .duration(5.days())
            .fetch(),
    )
    .await
    .expect("after the pacing error");
    assert_eq!(bars.bars.len(), 5);

    let mut notices = client.notice_stream().expect("notices");
    rig.control
        .fault("error 1100 Connectivity between IB and TWS has been lost.")
        .await
        .expect("fault");
    let n = within(notices.next()).await.expect("a notice");
    assert_eq!(n.code, 1100);
}

#[tokio::test]
async fn malformed_frames_to_the_client_fail_the_call_not_the_test() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    let stock = Contract::stock("AAPL").build();

    // corrupt reply: the request fails with a decode error
    rig.control.fault("malformed corrupt").await.expect("fault");
    let r = within(client.contract_details(&stock)).await;
    assert!(r.is_err(), "a corrupt ContractData decoded");
    // an unknown message id before the reply: the call still succeeds
    rig.control
        .fault("malformed unknown_id")
        .await
        .expect("fault");
    let r = within(client.contract_details(&stock)).await;
    assert!(r.is_ok(), "{:?}", r.err());
    // garbage: the client gives up on the stream; the call ends
    rig.control.fault("malformed garbage").await.expect("fault");
    let r = within(client.contract_details(&stock)).await;
    assert!(r.is_err() || r.is_ok());
    // the gateway still serves
    let fresh = rig.client(9).await;
    assert!(within(fresh.contract_details(&stock)).await.is_ok());
}

#[tokio::test]
async fn delays_and_drops_after_n_messages() {
    let mut rig = rig().await;
    let client = rig.client(1).await;
    rig.control.fault("delay 300").await.expect("fault");
    let t0 = Instant::now();
    within(client.server_time()).await.expect("time");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    rig.control.fault("clear").await.expect("fault");

    rig.control
        .fault("drop_after_messages 2")
        .await
        .expect("fault");
    let sessions = rig.gw.sessions_started();
    within(client.server_time()).await.expect("time");
    // the second message drops the connection; ibapi reconnects by itself
    // (and may retry the request on the new session)
    let _ = within(client.server_time()).await;
    let t0 = Instant::now();
    while rig.gw.sessions_started() == sessions && t0.elapsed() < TIMEOUT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rig.gw.sessions_started() > sessions, "no reconnection seen");
    within(client.server_time())
        .await
        .expect("time after the reconnect");
    let newcomer = rig.client(5).await;
    within(newcomer.server_time()).await.expect("time");
}

#[tokio::test]
async fn the_control_channel_moves_time_and_refuses_nonsense() {
    let mut rig = rig_with(sim_gateway::GatewayConfig {
        to: chrono::NaiveDate::from_ymd_opt(2021, 3, 5),
        ..config()
    })
    .await;
    let c = &mut rig.control;
    let start = c.now().await.expect("now");
    assert_eq!(start, Utc.with_ymd_and_hms(2021, 3, 1, 14, 30, 0).unwrap());
    let t = Utc.with_ymd_and_hms(2021, 3, 2, 15, 0, 0).unwrap();
    assert_eq!(c.advance(t).await.expect("advance"), t);
    // time never moves back
    assert_eq!(c.advance(start).await.expect("advance"), t);
    let next = c.step().await.expect("step");
    assert_eq!(next, Utc.with_ymd_and_hms(2021, 3, 2, 15, 15, 0).unwrap());
    assert!(
        c.advance(Utc.with_ymd_and_hms(2021, 3, 9, 15, 0, 0).unwrap())
            .await
            .is_err()
    );
    assert!(c.fault("explode").await.is_err());
    // a client sees the simulated time
    let client = rig.client(1).await;
    let now = within(client.server_time()).await.expect("time");
    assert_eq!(now.unix_timestamp(), next.timestamp());
}

// ---- raw TCP: what a broken client sends ----

async fn raw_session(addr: std::net::SocketAddr, client_id: i32) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut hello = b"API\0".to_vec();
    hello.extend_from_slice(&wire::encode_raw(b"v213..226"));
    s.write_all(&hello).await.expect("hello");
    let reply = read_raw(&mut s).await.expect("version");
    assert!(reply.starts_with(b"226\0"), "{reply:?}");
    let start = proto::StartApi {
        client_id: Some(client_id),
    };
    s.write_all(&wire::encode_proto_frame(
        wire::inbound::START_API,
        &start.encode_to_vec(),
    ))
    .await
    .expect("start");
    // NextValidId, ManagedAccounts, three data-farm notices
    for _ in 0..5 {
        read_raw(&mut s).await.expect("welcome");
    }
    s
}

async fn read_raw<R: tokio::io::AsyncRead + Unpin>(s: &mut R) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    within(s.read_exact(&mut len)).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    within(s.read_exact(&mut body)).await.ok()?;
    Some(body)
}

async fn read_error(s: &mut TcpStream) -> proto::ErrorMsg {
    let body = read_raw(s).await.expect("a frame");
    let f = wire::split_body(body).expect("frame");
    assert_eq!(f.id, wire::outbound::ERROR, "{f:?}");
    proto::ErrorMsg::decode(f.payload.as_slice()).expect("error frame")
}

#[tokio::test]
async fn malformed_frames_from_a_client_get_errors_not_a_crash() {
    let rig = rig_with(sim_gateway::GatewayConfig {
        faults: sim_gateway::FaultConfig {
            max_messages_per_second: Some(20),
            ..Default::default()
        },
        ..config()
    })
    .await;
    let addr = rig.gw.addr();
    let mut s = raw_session(addr, 11).await;

    // an unknown message id
    s.write_all(&wire::encode_proto_frame(999, &[1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(read_error(&mut s).await.code, Some(505));
    // a known id whose protobuf does not decode
    s.write_all(&wire::encode_proto_frame(
        wire::inbound::REQ_IDS,
        &[0x0a, 0xff],
    ))
    .await
    .unwrap();
    assert_eq!(read_error(&mut s).await.code, Some(320));
    // a text-framed (pre-protobuf) message
    let mut text = 12u32.to_be_bytes().to_vec();
    text.extend_from_slice(&8i32.to_be_bytes());
    text.extend_from_slice(b"1\x001\x00\x00\x00\x00\x00");
    s.write_all(&text[..16]).await.unwrap();
    assert_eq!(read_error(&mut s).await.code, Some(505));
    // a request the gateway does not implement: 321 with its request id
    s.write_all(&wire::encode_proto_frame(
        88,
        &proto::ReqIdOnly {
            req_id: Some(1_500_000_123),
        }
        .encode_to_vec(),
    ))
    .await
    .unwrap();
    let e = read_error(&mut s).await;
    assert_eq!((e.code, e.id), (Some(321), Some(1_500_000_123)));
    // over the rate limit: error 100
    let req = wire::encode_proto_frame(wire::inbound::REQ_CURRENT_TIME, &[]);
    let mut burst = Vec::new();
    for _ in 0..25 {
        burst.extend_from_slice(&req);
    }
    s.write_all(&burst).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..25 {
        let f = wire::split_body(read_raw(&mut s).await.expect("frame")).unwrap();
        if f.id == wire::outbound::ERROR {
            codes.push(proto::ErrorMsg::decode(f.payload.as_slice()).unwrap().code);
        }
    }
    assert!(codes.contains(&Some(100)), "{codes:?}");
    // an absurd length: the gateway closes the connection
    s.write_all(&0x7fff_ffffu32.to_be_bytes()).await.unwrap();
    let mut closed = false;
    for _ in 0..5 {
        if read_raw(&mut s).await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection stayed open after a bad length");

    // garbage instead of a handshake: closed
    let mut g = TcpStream::connect(addr).await.unwrap();
    g.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(read_raw(&mut g).await.is_none());

    // and the gateway still serves the real client
    let client = rig.client(12).await;
    within(client.server_time()).await.expect("time");
}

#[tokio::test]
async fn random_frames_from_a_client_never_break_the_session() {
    let rig = rig().await;
    let s = raw_session(rig.gw.addr(), 21).await;
    let (mut rd, mut wr) = s.into_split();
    // a fixed linear congruential generator: the same frames every run
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) as u32
    };
    let mut burst = Vec::new();
    for _ in 0..600 {
        let id = (next() % 112) as i32;
        let len = (next() % 64) as usize;
        let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        burst.extend_from_slice(&wire::encode_proto_frame(id, &payload));
    }
    // then a request whose answer marks the end
    const MARKER: i32 = 1_999_999_999;
    let marker = proto::ReqContractData {
        req_id: Some(MARKER),
        contract: Some(proto::WireContract {
            symbol: Some("AAPL".into()),
            sec_type: Some("STK".into()),
            ..Default::default()
        }),
    };
    burst.extend_from_slice(&wire::encode_proto_frame(
        wire::inbound::REQ_CONTRACT_DATA,
        &marker.encode_to_vec(),
    ));
    let drain = tokio::spawn(async move {
        loop {
            let Some(body) = read_raw(&mut rd).await else {
                return false;
            };
            let Ok(f) = wire::split_body(body) else {
                return false;
            };
            if f.id == wire::outbound::CONTRACT_DATA_END
                && proto::IdEnd::decode(f.payload.as_slice()).map(|e| e.req_id) == Ok(Some(MARKER))
            {
                return true;
            }
        }
    });
    wr.write_all(&burst).await.unwrap();
    assert!(
        within(drain).await.unwrap(),
        "the session died on random frames"
    );
    let client = rig.client(22).await;
    within(client.server_time())
        .await
        .expect("the gateway still serves");
}

#[tokio::test]
async fn drop_now_and_quit() {
    let rig = rig().await;
    let client = rig.client(1).await;
    within(client.server_time()).await.expect("time");
    let sessions = rig.gw.sessions_started();
    rig.gw.inject(sim_gateway::Fault::DropNow);
    // ibapi reconnects by itself
    let t0 = Instant::now();
    while rig.gw.sessions_started() == sessions && t0.elapsed() < TIMEOUT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rig.gw.sessions_started() > sessions);
    within(client.server_time())
        .await
        .expect("time after the reconnect");

    let Rig { gw, control } = rig;
    control.quit().await.expect("quit");
    within(gw.stopped()).await;
    assert!(gw.connected_clients().is_empty());
    let addr = gw.addr();
    gw.shutdown().await;
    // nobody listens any more
    assert!(TcpStream::connect(addr).await.is_err());
}
