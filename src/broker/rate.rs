//! Per-client publish rate limits (messages/s and bytes/s) as token buckets. A client over
//! its rate is slowed, not dropped: its connection stops reading the socket until the
//! bucket refills, so TCP flow control pushes back on the client and nothing it was
//! promised (a PUBACK) is ever taken back.

use std::time::Duration;

use tokio::time::Instant;

/// One bucket: `rate` tokens a second, holding at most one second's worth.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Self {
        Bucket {
            rate: rate as f64,
            tokens: rate as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.at = now;
    }

    /// When the debt is paid off, if the bucket is in debt.
    fn ready_at(&self) -> Option<Instant> {
        (self.tokens < 0.0).then(|| self.at + Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

/// The limits of one connection; `None` buckets are unlimited.
#[derive(Debug, Clone)]
pub(crate) struct PublishRate {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl PublishRate {
    /// `None` when neither limit is set (0).
    pub(crate) fn new(messages_per_sec: u32, bytes_per_sec: u64, now: Instant) -> Option<Self> {
        let messages = (messages_per_sec > 0).then(|| Bucket::new(messages_per_sec.into(), now));
        let bytes = (bytes_per_sec > 0).then(|| Bucket::new(bytes_per_sec, now));
        (messages.is_some() || bytes.is_some()).then_some(PublishRate { messages, bytes })
    }

    /// Takes one publish of `size` bytes from the buckets (they may go into debt).
    pub(crate) fn charge(&mut self, size: usize, now: Instant) {
        for (bucket, cost) in [(&mut self.messages, 1.0), (&mut self.bytes, size as f64)] {
            if let Some(bucket) = bucket {
                bucket.refill(now);
                bucket.tokens -= cost;
            }
        }
    }

    /// Until when the socket must not be read (the later of the buckets' debts), as of
    /// `now`: `None` once the debts are paid.
    pub(crate) fn hold_until(&mut self, now: Instant) -> Option<Instant> {
        [&mut self.messages, &mut self.bytes]
            .into_iter()
            .flatten()
            .filter_map(|bucket| {
                bucket.refill(now);
                bucket.ready_at()
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_rate_is_held_for_the_debt() {
        let start = Instant::now();
        assert!(PublishRate::new(0, 0, start).is_none());
        let mut rate = PublishRate::new(10, 0, start).unwrap();
        for _ in 0..10 {
            rate.charge(100, start);
        }
        assert_eq!(rate.hold_until(start), None, "a second's burst is free");
        for _ in 0..5 {
            rate.charge(100, start);
        }
        assert_eq!(
            rate.hold_until(start),
            Some(start + Duration::from_millis(500))
        );
        let later = start + Duration::from_millis(200);
        assert_eq!(
            rate.hold_until(later),
            Some(start + Duration::from_millis(500))
        );
        // Half a second later the debt is paid: the hold is over, not a time in the past.
        assert_eq!(rate.hold_until(start + Duration::from_millis(501)), None);
    }

    #[test]
    fn bytes_are_limited_on_their_own() {
        let start = Instant::now();
        let mut rate = PublishRate::new(0, 1000, start).unwrap();
        rate.charge(3000, start);
        assert_eq!(rate.hold_until(start), Some(start + Duration::from_secs(2)));
    }
}
