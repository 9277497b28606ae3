//! Counters every connection task adds to, the live line they feed once a second on
//! stderr, and latency histograms with their percentiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::connection::ClientError;

/// Counts shared by every task of a run. Tasks add in batches (once per read or write),
/// not once per message.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) received: AtomicU64,
    /// Messages of this run a subscriber had not had before: what the drain waits for.
    pub(crate) received_new: AtomicU64,
    pub(crate) inflight: AtomicI64,
    pub(crate) attempted: AtomicU64,
    pub(crate) connected: AtomicU64,
    pub(crate) connect_failed: AtomicU64,
    /// Connections the server ended (or that failed) after they were established.
    pub(crate) dropped: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// A connection failed for want of a file descriptor: open no more.
    pub(crate) open_file_limit: AtomicBool,
    connect_failures: Mutex<BTreeMap<String, u64>>,
    error_kinds: Mutex<BTreeMap<String, u64>>,
    connect_latency: Mutex<Option<Histogram<u64>>>,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, label: String) {
    if let Ok(mut map) = map.lock() {
        *map.entry(label).or_default() += 1;
    }
}

impl Counters {
    pub(crate) fn connect_failure(&self, error: &ClientError) {
        self.connect_failed.fetch_add(1, Ordering::Relaxed);
        if error.is_open_file_limit() {
            self.open_file_limit.store(true, Ordering::Relaxed);
        }
        bump(&self.connect_failures, error.label());
    }

    pub(crate) fn connected(&self, took: Duration) {
        self.connected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut latency) = self.connect_latency.lock() {
            record(latency.get_or_insert_with(histogram), took);
        }
    }

    /// A failure after connecting: the connection is lost (`dropped`) or only one
    /// message failed (a PUBACK with an error reason).
    pub(crate) fn error(&self, label: String, dropped: bool) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        bump(&self.error_kinds, label);
    }

    pub(crate) fn connect_failures(&self) -> BTreeMap<String, u64> {
        self.connect_failures
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn error_kinds(&self) -> BTreeMap<String, u64> {
        self.error_kinds
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn connect_latency(&self) -> Option<Latency> {
        let latency = self.connect_latency.lock().ok()?;
        latency.as_ref().and_then(Latency::of)
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Prints one line a second on stderr until aborted: message rates when `messages`,
/// connection counts always.
pub(crate) fn spawn_live(counters: Arc<Counters>, messages: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last = [0u64; 4];
        loop {
            tick.tick().await;
            let now = [
                Counters::get(&counters.published),
                Counters::get(&counters.acked),
                Counters::get(&counters.received),
                Counters::get(&counters.connected),
            ];
            let rate = |i: usize| now[i].saturating_sub(last[i]);
            let mut line = format!(
                "[{:>4.0}s] conn {} (+{}/s) failed {}",
                started.elapsed().as_secs_f64(),
                now[3],
                rate(3),
                Counters::get(&counters.connect_failed),
            );
            if messages {
                line.push_str(&format!(
                    " | pub {}/s ack {}/s recv {}/s inflight {}",
                    rate(0),
                    rate(1),
                    rate(2),
                    counters.inflight.load(Ordering::Relaxed).max(0),
                ));
            }
            line.push_str(&format!(" | errors {}", Counters::get(&counters.errors)));
            eprintln!("{line}");
            last = now;
        }
    })
}

/// A histogram of microseconds, from 1 µs to one hour at three significant figures.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant, valid bounds")
}

pub(crate) fn record(histogram: &mut Histogram<u64>, took: Duration) {
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// Adds `from` into `into`; both come from [`histogram`], so the bounds agree.
pub(crate) fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Cannot fail with equal bounds; were it to, a summary missing some samples beats a
    // panic at the end of a run.
    let _ = into.add(from);
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// `None` for an empty histogram.
    pub(crate) fn of(histogram: &Histogram<u64>) -> Option<Latency> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Latency {
            samples: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut h = histogram();
        for ms in 1..=1000u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let mut other = histogram();
        record(&mut other, Duration::from_secs(2));
        merge(&mut h, &other);
        let l = Latency::of(&h).unwrap();
        assert_eq!(l.samples, 1001);
        assert!((l.p50 - 500.0).abs() < 2.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 2.0, "{l:?}");
        assert!((l.max - 2000.0).abs() < 2.0, "{l:?}");
        assert!(Latency::of(&histogram()).is_none());
    }
}
