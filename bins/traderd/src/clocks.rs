//! The clocks the daemon runs on besides the simulated exchange's: the
//! wall clock (a real TWS / IB Gateway) and the simulated gateway's clock,
//! advanced in lockstep with the engine's cycles.

use std::sync::Mutex;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use core_domain::Clock;
use sim_gateway::ControlClient;

/// Real time. `sleep_until` waits on the tokio timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, until: DateTime<Utc>) {
        let wait = (until - Utc::now()).to_std().unwrap_or(StdDuration::ZERO);
        tokio::time::sleep(wait).await;
    }
}

/// The simulated gateway's clock (`trader-cli sim-gateway`, lockstep
/// mode): `now` is the gateway's simulated time, `sleep_until` asks the
/// gateway to advance its exchange there over the control channel. The
/// engine therefore sees exactly the checkpoints it would see in process.
pub struct GatewayClock {
    control: tokio::sync::Mutex<ControlClient>,
    now: Mutex<DateTime<Utc>>,
    address: std::net::SocketAddr,
}

/// Attempts of one advance before the cycle proceeds without it.
const ADVANCE_ATTEMPTS: u32 = 5;

impl GatewayClock {
    /// Connects to the gateway's control channel and reads its time.
    pub async fn connect(address: std::net::SocketAddr) -> anyhow::Result<GatewayClock> {
        use anyhow::Context;
        let mut control = ControlClient::connect(address).await.with_context(|| {
            format!(
                "connecting to the simulated gateway's control channel {address} \
                 (broker.ibkr.sim_control): is `trader-cli sim-gateway` running?"
            )
        })?;
        let now = control
            .now()
            .await
            .with_context(|| format!("asking the simulated gateway at {address} for its time"))?;
        Ok(GatewayClock {
            control: tokio::sync::Mutex::new(control),
            now: Mutex::new(now),
            address,
        })
    }

    fn set(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for GatewayClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Advances the gateway; a failing control channel is retried with a
    /// growing pause, then the cycle goes ahead at the old time (its broker
    /// calls then fail and are recorded) rather than spinning.
    async fn sleep_until(&self, until: DateTime<Utc>) {
        let mut pause = StdDuration::from_millis(200);
        for attempt in 1..=ADVANCE_ATTEMPTS {
            let result = {
                let mut control = self.control.lock().await;
                match control.advance(until).await {
                    Ok(t) => Ok(t),
                    Err(e) => match ControlClient::connect(self.address).await {
                        Ok(fresh) => {
                            *control = fresh;
                            control.advance(until).await.map_err(|_| e)
                        }
                        Err(_) => Err(e),
                    },
                }
            };
            match result {
                Ok(t) => {
                    self.set(t);
                    return;
                }
                Err(e) => {
                    tracing::error!(
                        attempt,
                        "the simulated gateway at {} did not advance to {until}: {e}",
                        self.address
                    );
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
}
