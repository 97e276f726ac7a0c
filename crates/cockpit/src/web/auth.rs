//! Authentication: the bearer token (`TRADER_DASHBOARD_TOKEN`) for every
//! state-changing request — in the `Authorization` header only, which a
//! cross-site form or image cannot send, so no CSRF token is needed — and
//! for reads when the dashboard is bound off loopback (there a browser may
//! hold a session cookie derived from the token instead, set by `/login`).
//! Failures are rate-limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The session cookie's name.
pub const COOKIE: &str = "trader_session";

/// Failed attempts per address in a one-minute window.
pub struct AuthLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthLimiter {
    pub fn new(max_per_minute: u32) -> Self {
        AuthLimiter {
            max: max_per_minute.max(1),
            window: Duration::from_secs(60),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        match self.failures.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether `ip` used up its failures for the current window.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let mut map = self.lock();
        match map.get(&ip) {
            Some((start, _)) if start.elapsed() >= self.window => {
                map.remove(&ip);
                false
            }
            Some((_, n)) => *n >= self.max,
            None => false,
        }
    }

    /// Counts a failure of `ip`.
    pub fn fail(&self, ip: IpAddr) {
        let mut map = self.lock();
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// Equal in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The session cookie's value for `token`: an HMAC of a fixed label, so
/// the token itself is never stored in the browser.
pub fn session_value(token: &str) -> String {
    let mut mac = match Hmac::<Sha1>::new_from_slice(token.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"trader-dashboard-session");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The session cookie's value in `headers`.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limiter_blocks_after_the_allowed_failures() {
        let l = AuthLimiter::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(!l.blocked(ip));
        l.fail(ip);
        assert!(!l.blocked(ip));
        l.fail(ip);
        assert!(l.blocked(ip));
        assert!(!l.blocked([127, 0, 0, 2].into()));
    }

    #[test]
    fn test_tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_ne!(session_value("a"), session_value("b"));
        assert_eq!(session_value("a").len(), 40);
    }
}
