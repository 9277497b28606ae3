//! `$SYS/brokers/<node id>/…`: the node's vital signs as MQTT messages, in the manner of
//! Mosquitto and EMQX, published by each node every `--sys-interval` seconds.
//!
//! They are QoS 0 and not retained, routed like any QoS 0 publish (see `qos0`), so they
//! reach the subscribers of every node without a write to the Raft log: a retained copy
//! would cost one log entry per topic per node per interval, and a new subscriber gets
//! fresh values within one interval anyway. `#` and `+` never match them (topics starting
//! with `$` are the server's, MQTT §4.7.2); `$SYS/#` does. Clients cannot publish under
//! `$SYS` (the session refuses it: 5.0 PUBACK 0x87).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::cluster::clock;
use crate::cluster::command::Message;
use crate::cluster::state::BrokerReader;

use super::Shared;

/// Who publishes, as the QoS 0 router sees it (it only uses the name to skip no-local
/// subscriptions of the publisher: no client is the broker).
const PUBLISHER: &str = "$SYS";

/// An exponentially weighted moving average of a per-minute rate over about a minute,
/// fed once per interval (as Mosquitto's `load/…/1min`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MinuteLoad {
    average: f64,
    last: u64,
    started: bool,
}

impl MinuteLoad {
    pub(crate) fn new(total: u64) -> Self {
        MinuteLoad {
            average: 0.0,
            last: total,
            started: false,
        }
    }

    /// Takes the counter's `total` after `elapsed`; the average per minute.
    pub(crate) fn update(&mut self, total: u64, elapsed: Duration) -> f64 {
        let seconds = elapsed.as_secs_f64();
        if seconds <= 0.0 {
            return self.average;
        }
        let per_minute = total.saturating_sub(self.last) as f64 * 60.0 / seconds;
        self.last = total;
        if self.started {
            let weight = 1.0 - (-seconds / 60.0).exp();
            self.average += weight * (per_minute - self.average);
        } else {
            // The first sample is the best guess there is.
            self.average = per_minute;
            self.started = true;
        }
        self.average
    }
}

/// Publishes the node's `$SYS` topics every `interval` until the task is aborted.
pub(crate) async fn publish_every(shared: Arc<Shared>, interval: Duration) {
    let started = Instant::now();
    let prefix = format!("$SYS/brokers/{}", shared.cluster.id());
    let reader = BrokerReader::new(shared.cluster.state());
    let mut load = MinuteLoad::new(shared.metrics.broker.totals().messages_received);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let totals = shared.metrics.broker.totals();
        let per_minute = load.update(totals.messages_received, now - last);
        last = now;
        let mut values = vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("uptime", started.elapsed().as_secs().to_string()),
            (
                "clients/connected",
                shared.metrics.broker.connections.get().to_string(),
            ),
            ("messages/received", totals.messages_received.to_string()),
            ("messages/sent", totals.messages_sent.to_string()),
            ("bytes/received", totals.bytes_received.to_string()),
            ("bytes/sent", totals.bytes_sent.to_string()),
            (
                "subscriptions/count",
                shared.qos0.subscription_count().to_string(),
            ),
            ("load/messages/received/1min", format!("{per_minute:.2}")),
        ];
        // Of the replicated state: left out when it cannot be read this time.
        match (reader.session_count(), reader.retained_count()) {
            (Ok(sessions), Ok(retained)) => {
                values.push(("clients/total", sessions.to_string()));
                values.push(("retained/count", retained.to_string()));
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!("$SYS: cannot read the state: {e}"),
        }
        let at = clock::now();
        for (name, value) in values {
            let message = Message::new(format!("{prefix}/{name}"), Bytes::from(value), 0, false);
            shared.qos0.route(Arc::new(message), PUBLISHER, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_starts_at_the_first_rate_and_follows_changes_over_a_minute() {
        let mut load = MinuteLoad::new(100);
        // 30 messages in 10 s: 180 a minute.
        assert_eq!(load.update(130, Duration::from_secs(10)), 180.0);
        // Silence for a minute in 6 steps: the average falls by a factor of e.
        let mut average = 0.0;
        for _ in 0..6 {
            average = load.update(130, Duration::from_secs(10));
        }
        assert!(
            (average - 180.0 / std::f64::consts::E).abs() < 0.01,
            "{average}"
        );
        // No time passed: unchanged.
        assert_eq!(load.update(500, Duration::ZERO), average);
    }
}
