//! Request pacing: IBKR disconnects or rejects clients that send more than
//! 50 messages a second (code 100), and limits snapshot requests and
//! concurrent market-data lines (100 by default).
//!
//! Two layers:
//! * every message on the wire goes through `ibapi`'s opt-in
//!   `RateLimiter` (set on the client builder from
//!   [`crate::IbkrConfig::messages_per_second`]); it counts what the crate
//!   actually writes, including the messages one call sends in a burst;
//! * this module paces the adapter's own requests: a [`TokenBucket`] per
//!   kind of request (all requests; market-data snapshots) and a
//!   semaphore bounding the market-data lines open at once. Both use
//!   `tokio::time`, so tests run on paused time.

use std::sync::Arc;
use std::time::Duration;

use core_domain::BrokerError;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    state: Mutex<BucketState>,
    rate: f64,
    burst: f64,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket refilled at `per_second` tokens a second, starting full
    /// with `burst` tokens (both at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            state: Mutex::new(BucketState {
                tokens: burst,
                last: Instant::now(),
            }),
            rate: f64::from(per_second.max(1)),
            burst,
        }
    }

    /// Waits until a token is available and takes it. Waiters are served
    /// in order (the lock is held while sleeping).
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
            state.tokens = (state.tokens + elapsed * self.rate).min(self.burst);
            state.last = now;
            if state.tokens >= 1.0 {
                state.tokens -= 1.0;
                return;
            }
            let missing = 1.0 - state.tokens;
            let wait = Duration::from_secs_f64(missing / self.rate);
            tokio::time::sleep(wait.max(Duration::from_micros(1))).await;
        }
    }
}

/// The adapter's pacing: requests, snapshots and market-data lines.
#[derive(Debug, Clone)]
pub struct Pacer {
    requests: Arc<TokenBucket>,
    snapshots: Arc<TokenBucket>,
    lines: Arc<Semaphore>,
    max_lines: usize,
}

/// A market-data line held open; dropping it frees the line.
#[derive(Debug)]
pub struct Line {
    _permit: OwnedSemaphorePermit,
}

impl Pacer {
    /// `messages_per_second` for all requests (burst of a tenth of it, as
    /// TWS tolerates short bursts), `snapshots_per_second` for market-data
    /// snapshots, `max_lines` concurrent market-data lines.
    pub fn new(messages_per_second: u32, snapshots_per_second: u32, max_lines: usize) -> Self {
        let max_lines = max_lines.max(1);
        Pacer {
            requests: Arc::new(TokenBucket::new(
                messages_per_second,
                (messages_per_second / 10).max(1),
            )),
            snapshots: Arc::new(TokenBucket::new(
                snapshots_per_second,
                (snapshots_per_second / 10).max(1),
            )),
            lines: Arc::new(Semaphore::new(max_lines)),
            max_lines,
        }
    }

    /// Before any request.
    pub async fn request(&self) {
        self.requests.acquire().await;
    }

    /// Before a market-data request: waits for a free line and for the
    /// snapshot rate, and counts as a request. Hold the returned line until
    /// the subscription is dropped.
    pub async fn market_data_line(&self) -> Result<Line, BrokerError> {
        let permit = self.lines.clone().acquire_owned().await.map_err(|_| {
            BrokerError::NotConnected(
                "the adapter is shutting down (market-data lines closed)".into(),
            )
        })?;
        self.snapshots.acquire().await;
        self.requests.acquire().await;
        Ok(Line { _permit: permit })
    }

    /// Lines free right now.
    pub fn free_lines(&self) -> usize {
        self.lines.available_permits()
    }

    pub fn max_lines(&self) -> usize {
        self.max_lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_the_burst_then_the_rate() {
        let bucket = TokenBucket::new(50, 5);
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..50 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed();
        // 50 more tokens at 50/s take one second (within rounding).
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed <= Duration::from_millis(1010),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_while_idle_up_to_the_burst() {
        let bucket = TokenBucket::new(10, 2);
        bucket.acquire().await;
        bucket.acquire().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        bucket.acquire().await;
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        bucket.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(99),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_rate_in_any_second() {
        let pacer = Pacer::new(50, 50, 100);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..200 {
            pacer.request().await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 55,
                "{in_window} requests within a second from {t:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lines_are_bounded_and_freed_on_drop() {
        let pacer = Pacer::new(1000, 1000, 2);
        let a = pacer.market_data_line().await.ok();
        let _b = pacer.market_data_line().await.ok();
        assert_eq!(pacer.free_lines(), 0);
        let p2 = pacer.clone();
        let waiter = tokio::spawn(async move {
            let _c = p2.market_data_line().await.ok();
            Instant::now()
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "a third line must wait");
        let freed_at = Instant::now();
        drop(a);
        let got = waiter.await.ok();
        assert!(got.is_some_and(|t| t >= freed_at));
    }

    #[tokio::test(start_paused = true)]
    async fn snapshots_follow_their_own_rate() {
        let pacer = Pacer::new(1000, 10, 100);
        let start = Instant::now();
        for _ in 0..21 {
            let _line = pacer.market_data_line().await.ok();
        }
        // burst of 1, then 20 at 10/s: two seconds.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2050),
            "{elapsed:?}"
        );
    }
}
