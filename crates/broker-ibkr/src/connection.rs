//! Connecting: exponential backoff and the messages that say what to check.

use std::time::Duration;

/// Exponential backoff: `initial`, doubling, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            next: initial,
            attempts: 0,
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts += 1;
        d
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }
}

/// What to check when TWS / IB Gateway cannot be reached.
pub fn connect_hint(host: &str, port: u16) -> String {
    format!(
        "cannot connect to TWS / IB Gateway at {host}:{port}: check that TWS or IB Gateway is \
         running and logged in; that the API is enabled (Configure > Settings > API > Settings: \
         'Enable ActiveX and Socket Clients'); that the socket port is {port} (IB Gateway paper \
         4002 / live 4001, TWS paper 7497 / live 7496); that {host} is allowed ('Trusted IPs', \
         or accept the connection prompt); and that 'Read-Only API' is off for trading \
         (broker.ibkr.host / broker.ibkr.port)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn backoff_tolerates_odd_settings() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(b.next_delay() > Duration::ZERO);
    }

    #[test]
    fn hint_names_the_address_and_what_to_check() {
        let h = connect_hint("127.0.0.1", 4002);
        for needle in [
            "127.0.0.1:4002",
            "Enable ActiveX and Socket Clients",
            "4002",
            "7497",
            "Trusted IPs",
        ] {
            assert!(h.contains(needle), "{needle}");
        }
    }
}
