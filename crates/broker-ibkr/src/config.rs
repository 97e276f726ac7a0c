//! The adapter's settings (the `[broker.ibkr]` keys, see docs/IBKR_SETUP.md).

use std::time::Duration;

use crate::market_data_type::MarketDataKind;

/// How to reach TWS / IB Gateway and how hard to use it.
#[derive(Debug, Clone, PartialEq)]
pub struct IbkrConfig {
    /// TWS / IB Gateway host, e.g. `127.0.0.1`.
    pub host: String,
    /// Socket port: IB Gateway paper 4002 / live 4001, TWS paper 7497 /
    /// live 7496.
    pub port: u16,
    /// API client id; unique per connection to the same TWS (code 326
    /// otherwise). Client id 0 also sees orders placed in TWS by hand.
    pub client_id: i32,
    /// The account to trade and report; empty: the first managed account.
    pub account: String,
    /// Attempts of the first connect before giving up with an error.
    pub connect_attempts: u32,
    /// How long one connect attempt (socket and handshake) may take.
    pub connect_timeout: Duration,
    /// First wait between reconnect attempts; doubles up to `reconnect_max`.
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// How long one request may wait for its answer.
    pub request_timeout: Duration,
    /// How long a market-data snapshot may take (IBKR ends snapshots after
    /// about 11 s at most).
    pub snapshot_timeout: Duration,
    /// Messages a second to TWS (IBKR's limit is 50).
    pub messages_per_second: u32,
    /// Market-data snapshot requests a second.
    pub snapshots_per_second: u32,
    /// Market-data lines open at once (100 for a default account).
    pub max_market_data_lines: usize,
    /// The market-data type asked for first; real-time falls back to
    /// delayed on IBKR's no-subscription advisories.
    pub market_data: MarketDataKind,
    /// The gateway's clock moves in steps between the engine's polls (the
    /// project's simulated gateway in lockstep, `broker.ibkr.sim_control`):
    /// `poll_events` then first makes a round trip to the gateway (which
    /// answers after every message it sent before), re-reads its clock,
    /// drains the order stream itself and fetches the positions (for the
    /// settlements inferred from them), so it returns every event the
    /// gateway sent or implied before the poll — the same events, in the same cycle,
    /// as the in-process exchange. Off for a real TWS, whose events arrive
    /// in real time.
    pub lockstep: bool,
    /// Live trading (`broker.trading_mode = "live"`). After every connect
    /// the account in use must match the mode: a paper account (its id
    /// starts with "D": DU…, DF…) unless this is set, a live one (any
    /// other id) when it is; otherwise the adapter refuses the session
    /// (see [`check_account`]).
    pub live: bool,
    /// How long an execution waits for its commission report before it is
    /// reported with a zero commission (a later report amends it).
    pub commission_wait: Duration,
}

impl Default for IbkrConfig {
    fn default() -> Self {
        IbkrConfig {
            host: "127.0.0.1".into(),
            port: 4002,
            client_id: 1,
            account: String::new(),
            connect_attempts: 5,
            connect_timeout: Duration::from_secs(10),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            snapshot_timeout: Duration::from_secs(12),
            messages_per_second: 50,
            snapshots_per_second: 50,
            max_market_data_lines: 100,
            market_data: MarketDataKind::Realtime,
            lockstep: false,
            live: false,
            commission_wait: Duration::from_secs(30),
        }
    }
}

impl IbkrConfig {
    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The settings crate's four keys over the defaults: `port` and
    /// `client_id` out of range are errors naming the key.
    pub fn from_settings(
        host: &str,
        port: i64,
        client_id: i64,
        account: &str,
    ) -> Result<Self, String> {
        let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
            format!("broker.ibkr.port = {port}: expected 1-65535 (paper: 4002 or 7497)")
        })?;
        let client_id = i32::try_from(client_id)
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| format!("broker.ibkr.client_id = {client_id}: expected 0-2147483647"))?;
        Ok(IbkrConfig {
            host: if host.trim().is_empty() {
                "127.0.0.1".into()
            } else {
                host.trim().to_string()
            },
            port,
            client_id,
            account: account.trim().to_string(),
            ..IbkrConfig::default()
        })
    }

    /// Whether the port is one of IBKR's live-trading defaults.
    pub fn is_live_port(&self) -> bool {
        matches!(self.port, 4001 | 7496)
    }
}

/// Whether an IBKR account id is a paper account (IBKR's paper accounts
/// start with "D": DU… for individuals, DF… for advisors' paper masters).
pub fn is_paper_account(account: &str) -> bool {
    account.trim_start().starts_with('D')
}

/// The account check after connecting: the account the adapter will
/// trade (`chosen`) must be one the gateway manages (`managed`) and match
/// the trading mode. The error says which account was seen and what to
/// change.
pub fn check_account(live: bool, chosen: &str, managed: &[String]) -> Result<(), String> {
    let list = if managed.is_empty() {
        "none".to_string()
    } else {
        managed.join(", ")
    };
    if chosen.is_empty() {
        return Err(format!(
            "TWS / IB Gateway reported no managed account (managed accounts: {list}); log it in to \
             an account before starting the trader"
        ));
    }
    if !managed.is_empty() && !managed.iter().any(|a| a == chosen) {
        return Err(format!(
            "broker.ibkr.account = {chosen:?} is not an account this TWS / IB Gateway manages \
             (it manages: {list}); set broker.ibkr.account to one of them, or empty for the first"
        ));
    }
    match (live, is_paper_account(chosen)) {
        (false, false) => Err(format!(
            "refusing to trade: broker.trading_mode is \"paper\" but TWS / IB Gateway is logged in \
             to account {chosen}, which is not a paper account (paper accounts start with \"D\", \
             e.g. DU1234567). Log TWS / IB Gateway in to the paper account (the login screen's \
             \"Paper\" toggle), or point broker.ibkr.port at the paper session; live trading needs \
             broker.trading_mode = \"live\" and TRADER_LIVE_TRADING=enabled (docs/IBKR_SETUP.md)"
        )),
        (true, true) => Err(format!(
            "refusing to trade: broker.trading_mode is \"live\" but TWS / IB Gateway is logged in \
             to the paper account {chosen}. Log it in to the live account, or set \
             broker.trading_mode = \"paper\""
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)] // test code: a panic is a failure
    fn accounts_must_match_the_mode() {
        let managed = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_account(false, "DU1234567", &managed(&["DU1234567"])).is_ok());
        assert!(check_account(false, "DF77", &managed(&["DF77", "DU1"])).is_ok());
        let e = check_account(false, "U1234567", &managed(&["U1234567"])).unwrap_err();
        assert!(e.contains("U1234567") && e.contains("paper"), "{e}");
        assert!(check_account(true, "U1234567", &managed(&["U1234567"])).is_ok());
        let e = check_account(true, "DU1", &managed(&["DU1"])).unwrap_err();
        assert!(e.contains("DU1") && e.contains("live"), "{e}");
        let e = check_account(false, "DU2", &managed(&["DU1"])).unwrap_err();
        assert!(
            e.contains("broker.ibkr.account") && e.contains("DU1"),
            "{e}"
        );
        assert!(check_account(false, "", &[]).is_err());
    }

    #[test]
    fn defaults_are_the_paper_gateway() {
        let c = IbkrConfig::default();
        assert_eq!(c.address(), "127.0.0.1:4002");
        assert_eq!(c.messages_per_second, 50);
        assert_eq!(c.max_market_data_lines, 100);
        assert!(!c.is_live_port());
    }

    #[test]
    fn from_settings_validates() {
        let c = IbkrConfig::from_settings(" ", 7497, 3, " DU123 ");
        assert_eq!(
            c.as_ref().map(|c| c.address()).ok(),
            Some("127.0.0.1:7497".into())
        );
        assert_eq!(c.map(|c| c.account).ok(), Some("DU123".into()));
        assert!(
            IbkrConfig::from_settings("h", 70_000, 1, "")
                .is_err_and(|e| e.contains("broker.ibkr.port"))
        );
        assert!(
            IbkrConfig::from_settings("h", 4002, -1, "").is_err_and(|e| e.contains("client_id"))
        );
        assert!(IbkrConfig::from_settings("h", 4001, 1, "").is_ok_and(|c| c.is_live_port()));
    }
}
