//! The control channel: a line protocol on a second TCP port that lets a
//! daemon's clock drive the gateway (lockstep mode) and inject faults.
//!
//! | request | reply |
//! |---|---|
//! | `ADVANCE <rfc3339>` | `OK <now rfc3339>` once the exchange is there and the events are pushed |
//! | `STEP` | advance to the next checkpoint: `OK <now>` |
//! | `NOW` | `OK <now>` |
//! | `FAULT <spec>` | `OK` (see [`crate::Fault::parse`]) |
//! | `QUIT` | `OK`, then the gateway stops |
//!
//! Errors are `ERR <message>`.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::server::Shared;
use crate::{Fault, GatewayError};

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) async fn serve_control(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared_stop(&shared);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "control connection");
                    tokio::spawn(control_connection(Arc::clone(&shared), stream));
                }
                Err(e) => warn!("control accept failed: {e}"),
            }
        }
    }
}

fn shared_stop(shared: &Shared) -> tokio::sync::watch::Receiver<bool> {
    shared.subscribe_stop()
}

async fn control_connection(shared: Arc<Shared>, stream: TcpStream) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (cmd, arg) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(c, a)| (c, a.trim()));
        let reply = match cmd.to_ascii_uppercase().as_str() {
            "ADVANCE" => match DateTime::parse_from_rfc3339(arg) {
                Ok(t) => match shared.advance_to(t.with_timezone(&Utc)) {
                    Ok(now) => format!("OK {}", stamp(now)),
                    Err(e) => format!("ERR {e}"),
                },
                Err(e) => format!("ERR bad time {arg:?}: {e}"),
            },
            "STEP" => match shared.step() {
                Ok(now) => format!("OK {}", stamp(now)),
                Err(e) => format!("ERR {e}"),
            },
            "NOW" => format!("OK {}", stamp(shared.exchange_now())),
            "FAULT" => match Fault::parse(arg) {
                Ok(f) => {
                    shared.inject(f);
                    "OK".to_string()
                }
                Err(e) => format!("ERR {e}"),
            },
            "QUIT" => {
                let _ = wr.write_all(b"OK\n").await;
                info!("control channel: QUIT");
                shared.stop();
                return;
            }
            other => format!("ERR unknown command {other:?} (ADVANCE, STEP, NOW, FAULT, QUIT)"),
        };
        if wr.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A client of the control channel (for a daemon's clock and for tests).
pub struct ControlClient {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    wr: OwnedWriteHalf,
}

impl ControlClient {
    pub async fn connect(addr: SocketAddr) -> Result<ControlClient, GatewayError> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        Ok(ControlClient {
            lines: BufReader::new(rd).lines(),
            wr,
        })
    }

    async fn call(&mut self, line: &str) -> Result<String, GatewayError> {
        self.wr.write_all(format!("{line}\n").as_bytes()).await?;
        let reply = self.lines.next_line().await?.ok_or_else(|| {
            GatewayError::Control("the gateway closed the control channel".into())
        })?;
        match reply.strip_prefix("OK") {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(GatewayError::Control(
                reply.strip_prefix("ERR ").unwrap_or(&reply).to_string(),
            )),
        }
    }

    fn time(s: &str) -> Result<DateTime<Utc>, GatewayError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| GatewayError::Control(format!("bad time in reply {s:?}: {e}")))
    }

    /// Moves the exchange to `t`; returns its time afterwards.
    pub async fn advance(&mut self, t: DateTime<Utc>) -> Result<DateTime<Utc>, GatewayError> {
        let r = self.call(&format!("ADVANCE {}", stamp(t))).await?;
        Self::time(&r)
    }

    /// Moves the exchange to its next checkpoint; returns the new time.
    pub async fn step(&mut self) -> Result<DateTime<Utc>, GatewayError> {
        let r = self.call("STEP").await?;
        Self::time(&r)
    }

    /// The exchange's time.
    pub async fn now(&mut self) -> Result<DateTime<Utc>, GatewayError> {
        let r = self.call("NOW").await?;
        Self::time(&r)
    }

    /// Injects a fault (see [`Fault::parse`] for the specs).
    pub async fn fault(&mut self, spec: &str) -> Result<(), GatewayError> {
        self.call(&format!("FAULT {spec}")).await.map(|_| ())
    }

    /// Stops the gateway.
    pub async fn quit(mut self) -> Result<(), GatewayError> {
        self.call("QUIT").await.map(|_| ())
    }
}
