//! Failed logins counted per source address over a fixed window: past the limit, that
//! address's CONNECTs are refused without a password check (which is what a guesser
//! costs the node) until its window ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses remembered at most; past it the oldest windows are forgotten first, so a
/// flood from many addresses costs bounded memory (those addresses lose their count,
/// which only helps a guesser who owns that many addresses anyway).
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Throttle {
            limit,
            window,
            failures: HashMap::new(),
        }
    }

    /// Whether `ip` has failed `limit` times within its current window.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.limit > 0
            && self.failures.get(&ip).is_some_and(|(start, count)| {
                now.duration_since(*start) < self.window && *count >= self.limit
            })
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&ip) {
            let window = self.window;
            self.failures
                .retain(|_, (start, _)| now.duration_since(*start) < window);
            if self.failures.len() >= MAX_TRACKED {
                self.failures.clear();
            }
        }
        let entry = self.failures.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_for_the_rest_of_its_window() {
        let mut throttle = Throttle::new(2, Duration::from_secs(60));
        let start = Instant::now();
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        throttle.record_failure(ip, start);
        assert!(!throttle.blocked(ip, start));
        throttle.record_failure(ip, start + Duration::from_secs(1));
        assert!(throttle.blocked(ip, start + Duration::from_secs(59)));
        assert!(!throttle.blocked(ip, start + Duration::from_secs(60)));
        // A new window starts from the next failure.
        throttle.record_failure(ip, start + Duration::from_secs(61));
        assert!(!throttle.blocked(ip, start + Duration::from_secs(61)));
    }

    #[test]
    fn no_limit_blocks_nobody() {
        let mut throttle = Throttle::new(0, Duration::from_secs(60));
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..100 {
            throttle.record_failure(ip, now);
        }
        assert!(!throttle.blocked(ip, now));
        assert!(throttle.failures.is_empty());
    }
}
