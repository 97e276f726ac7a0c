//! The gateway's configuration (deserializable, so the CLI can read it from
//! its settings file).

use chrono::NaiveDate;
use serde::Deserialize;

use crate::faults::FaultConfig;

/// How simulated time moves.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimeMode {
    /// Only the control channel's `ADVANCE` (or [`crate::GatewayHandle::advance_to`])
    /// moves time: a daemon's clock drives the gateway deterministically.
    #[default]
    Lockstep,
    /// The gateway advances the exchange itself, `sim_minutes_per_second`
    /// simulated minutes per wall-clock second; closed periods (nights,
    /// weekends, holidays) are skipped straight to the next open.
    Paced { sim_minutes_per_second: f64 },
}

/// The gateway's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// TWS API port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Control channel port on 127.0.0.1; `None` for no control channel,
    /// `Some(0)` picks a free one.
    pub control_port: Option<u16>,
    /// The account id reported in ManagedAccounts, positions, executions.
    pub account: String,
    /// The first session of the simulated exchange (for [`crate::build_exchange`]).
    pub from: Option<NaiveDate>,
    /// Time may not be advanced past the end of this session.
    pub to: Option<NaiveDate>,
    pub mode: TimeMode,
    /// Faults active from the start.
    pub faults: FaultConfig,
    /// When false, real-time market data is "not subscribed": a client in
    /// market-data type 1 gets advisory 10089 and no ticks, and must switch
    /// to delayed (type 3), which is served with the delayed tick types.
    pub realtime_data_available: bool,
    /// The time zone named in the handshake and in execution times.
    pub time_zone: String,
    /// The first order id handed out (NextValidId).
    pub first_order_id: i32,
    /// Where to write the journal (JSON lines): every order placed, every
    /// execution (settlements included) and, when the gateway stops, the
    /// final positions — what the exchange did, to compare a client's
    /// database with. `None`: no journal.
    pub journal: Option<std::path::PathBuf>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            port: 0,
            control_port: Some(0),
            account: "DU0000001".into(),
            from: None,
            to: None,
            mode: TimeMode::Lockstep,
            faults: FaultConfig::default(),
            realtime_data_available: true,
            time_zone: "US/Eastern".into(),
            first_order_id: 1,
            journal: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_deserializes_with_defaults() -> Result<(), serde_json::Error> {
        let c: GatewayConfig = serde_json::from_str(
            r#"{"port": 4002, "control_port": 4003, "from": "2021-03-01",
                "mode": {"kind": "paced", "sim_minutes_per_second": 60.0},
                "faults": {"delay_ms": 5, "malformed": "corrupt"},
                "realtime_data_available": false}"#,
        )?;
        assert_eq!(c.port, 4002);
        assert_eq!(c.control_port, Some(4003));
        assert_eq!(c.account, "DU0000001");
        assert_eq!(
            c.mode,
            TimeMode::Paced {
                sim_minutes_per_second: 60.0
            }
        );
        assert_eq!(c.faults.delay_ms, 5);
        assert_eq!(c.faults.malformed, Some(crate::MalformedKind::Corrupt));
        assert!(!c.realtime_data_available);
        assert!(serde_json::from_str::<GatewayConfig>(r#"{"prot": 1}"#).is_err());
        let d: GatewayConfig = serde_json::from_str("{}")?;
        assert_eq!(d, GatewayConfig::default());
        Ok(())
    }
}
