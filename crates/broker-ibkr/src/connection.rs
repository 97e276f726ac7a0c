//! Connecting: exponential backoff and the messages that say what to check.

use std::future::Future;
use std::time::Duration;

/// Runs `task` on the tokio runtime under supervision: if it panics, the
/// panic's message goes to `on_panic` (which logs it and rebuilds what the
/// task kept alive) instead of vanishing with the task. Returns the
/// supervisor's handle (it ends when the task does).
pub fn spawn_supervised<F, P>(task: F, on_panic: P) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
    P: FnOnce(String) + Send + 'static,
{
    let handle = tokio::spawn(task);
    tokio::spawn(async move {
        if let Err(e) = handle.await
            && e.is_panic()
        {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            on_panic(message);
        }
    })
}

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

    #[tokio::test]
    async fn a_panicking_task_is_reported_not_lost() -> Result<(), Box<dyn std::error::Error>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let supervisor = spawn_supervised(
            async {
                let v: Vec<i32> = Vec::new();
                if v.is_empty() {
                    panic!("reader broke");
                }
            },
            move |msg| {
                let _ = tx.send(msg);
            },
        );
        supervisor.await?;
        assert_eq!(rx.await?, "reader broke");
        // a task that ends normally reports nothing
        let (tx, mut rx) = tokio::sync::oneshot::channel::<String>();
        spawn_supervised(async {}, move |m| {
            let _ = tx.send(m);
        })
        .await?;
        assert!(rx.try_recv().is_err());
        Ok(())
    }

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
