//! The summary a run ends with: one struct, printed for a person or as one JSON object.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::limits::OpenFiles;
use super::stats::Latency;

/// Everything a run measured. `messages` is absent for `conn`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    /// The broker's address, as resolved.
    pub broker: String,
    /// 3 (3.1.1) or 5.
    pub mqtt_version: u8,
    pub tls: bool,
    pub clean_sessions: bool,
    pub open_files: OpenFiles,
    pub connections: Connections,
    pub messages: Option<Messages>,
    /// Failures after connecting (a connection lost, an acknowledgement with an error
    /// reason), by reason.
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    pub attempted: u64,
    pub established: u64,
    pub failed: u64,
    /// Connect failures by reason: the CONNACK reason code, the I/O error kind, the
    /// step that timed out.
    pub failures: BTreeMap<String, u64>,
    /// Seconds from the first connection attempt until the last one ended.
    pub opening_s: f64,
    /// Established connections per second over `opening_s`.
    pub per_second: f64,
    /// From the TCP connect to the CONNACK.
    pub latency_ms: Option<Latency>,
    /// `conn`: seconds the connections were held, and how many the server ended then.
    pub held_s: Option<f64>,
    pub dropped: u64,
    /// Set when opening stopped at the open-file limit.
    pub open_file_limit_hit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    pub qos: u8,
    pub publishers: usize,
    pub subscribers: usize,
    pub topics: usize,
    pub payload_size: usize,
    /// Messages per second per publisher; 0 for no limit.
    pub rate: f64,
    /// The publishers' window: `--inflight`, or the broker's Receive Maximum if lower.
    pub inflight: u16,
    /// Seconds the publishers sent (`sub`: listened).
    pub duration_s: f64,
    pub published: u64,
    /// PUBACK (QoS 1) or PUBREC (QoS 2) without an error reason.
    pub acked: u64,
    /// Deliveries to every subscriber together, foreign ones included.
    pub received: u64,
    pub published_per_s: f64,
    pub acked_per_s: f64,
    /// Received over the time from the start to the last delivery.
    pub received_per_s: f64,
    /// Deliveries owed: each acknowledged message (every sent one for QoS 0) times the
    /// subscribers of its topic. Absent for `sub`, which does not know the publishers.
    pub expected: Option<u64>,
    /// Owed deliveries that never came (`sub`: gaps between the first and last
    /// sequence number seen of each publisher).
    pub lost: u64,
    /// The same publisher's sequence number delivered twice to one subscriber.
    pub duplicates: u64,
    /// Deliveries without this run's stamp (an earlier run's queued messages, another
    /// client's).
    pub foreign: u64,
    /// Publish to delivery, over the first delivery of every message.
    pub latency_ms: Option<Latency>,
    /// Publish to PUBACK/PUBREC.
    pub ack_latency_ms: Option<Latency>,
    /// Seconds the subscribers kept reading after the publishers stopped.
    pub drain_s: f64,
}

impl Summary {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn latency_line(latency: &Option<Latency>) -> String {
    match latency {
        None => "no samples".to_string(),
        Some(l) => format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} samples)",
            l.p50, l.p90, l.p99, l.p999, l.max, l.samples
        ),
    }
}

fn reasons(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_string();
    }
    map.iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench {} against {} (MQTT {}{}, {} sessions)",
            self.scenario,
            self.broker,
            if self.mqtt_version == 3 {
                "3.1.1"
            } else {
                "5.0"
            },
            if self.tls { " over TLS" } else { "" },
            if self.clean_sessions {
                "clean"
            } else {
                "persistent"
            },
        )?;
        if let Some(m) = &self.messages {
            let mut roles = Vec::new();
            if m.publishers > 0 {
                roles.push(plural(m.publishers, "publisher"));
            }
            if m.subscribers > 0 {
                roles.push(plural(m.subscribers, "subscriber"));
            }
            write!(
                f,
                "  {} over {}, QoS {}",
                roles.join(" -> "),
                plural(m.topics, "topic"),
                m.qos
            )?;
            if m.publishers > 0 {
                let rate = if m.rate > 0.0 {
                    format!("{} msg/s each", m.rate)
                } else {
                    "unlimited rate".to_string()
                };
                write!(f, ", {}-byte payloads, {rate}", m.payload_size)?;
                if m.qos > 0 {
                    write!(f, ", inflight {}", m.inflight)?;
                }
            }
            writeln!(f)?;
            if m.publishers > 0 {
                write!(
                    f,
                    "  published      {} in {:.2} s: {:.0}/s",
                    m.published, m.duration_s, m.published_per_s
                )?;
                if m.qos > 0 {
                    writeln!(f, "; acknowledged {}: {:.0}/s", m.acked, m.acked_per_s)?;
                    writeln!(f, "  ack latency ms {}", latency_line(&m.ack_latency_ms))?;
                } else {
                    writeln!(f)?;
                }
            }
            if m.subscribers > 0 {
                let expected = m
                    .expected
                    .map(|e| format!(" (expected {e})"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "  received       {}: {:.0}/s{expected}; lost {}; duplicates {}; foreign {}; drained {:.2} s",
                    m.received, m.received_per_s, m.lost, m.duplicates, m.foreign, m.drain_s
                )?;
                writeln!(f, "  latency ms     {}", latency_line(&m.latency_ms))?;
            }
        }
        let c = &self.connections;
        writeln!(
            f,
            "  connections    {} of {} in {:.2} s: {:.0}/s; failures: {}",
            c.established,
            c.attempted,
            c.opening_s,
            c.per_second,
            reasons(&c.failures)
        )?;
        writeln!(f, "  connect ms     {}", latency_line(&c.latency_ms))?;
        if let Some(held) = c.held_s {
            writeln!(
                f,
                "  held           {held:.1} s; ended by the server meanwhile: {}",
                c.dropped
            )?;
        }
        if let Some(hit) = &c.open_file_limit_hit {
            writeln!(f, "  STOPPED: {hit}")?;
        }
        let show = |limit: Option<u64>| limit.map_or("unlimited".to_string(), |n| n.to_string());
        writeln!(
            f,
            "  open files     limit {} (hard {}, was {})",
            show(self.open_files.limit),
            show(self.open_files.hard),
            show(self.open_files.was)
        )?;
        write!(f, "  errors         {}", reasons(&self.errors))
    }
}
