//! The command line of `raftmq bench pub|sub|pubsub|conn`, and its check: every scenario
//! is turned into one [`FlowPlan`] or [`ConnPlan`] before anything connects, so a bad
//! combination of options stops the bench with a message and no half-opened run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::BenchError;
use super::pattern::TopicPattern;
use super::payload::STAMP_LEN;
use crate::mqtt::{Protocol, QoS};

/// The MQTT load generators.
#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// Publishers only: N publishers send to T topics for --duration; published and
    /// acknowledged messages per second, and the acknowledgement latency.
    Pub(PubArgs),
    /// Subscribers only: M subscribers measure for --duration what is published to their
    /// topics, e.g. by `raftmq bench pub` in another process (start the subscribers first).
    Sub(SubArgs),
    /// N publishers to M subscribers over T topics: throughput, end-to-end latency, lost
    /// and duplicate messages.
    #[command(name = "pubsub")]
    PubSub(PubSubArgs),
    /// N idle connections opened at --connect-rate and held for --duration: connect rate,
    /// failures by reason, and the open-file limit.
    Conn(ConnArgs),
}

/// Where and how every client connects.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The broker's host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The broker's MQTT port (the TLS one with --tls).
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// MQTT version: 3 (3.1.1) or 5.
    #[arg(long, value_enum, default_value = "5")]
    pub mqtt_version: MqttVersion,
    /// Persistent sessions (3.1.1 clean session 0, 5.0 session expiry of one hour) that
    /// resume the sessions of an earlier run with the same --client-prefix. They outlive
    /// the run: the broker keeps queueing what is published to their topics for them,
    /// which slows later runs on those topics until they expire.
    #[arg(long, overrides_with = "clean")]
    pub persistent: bool,
    /// Clean sessions, ended with the connection (the default).
    #[arg(long, overrides_with = "persistent")]
    pub clean: bool,
    /// Connect over TLS (rustls); the broker's certificate must chain to --ca.
    #[arg(long, requires = "ca")]
    pub tls: bool,
    /// PEM file of the CA certificates the broker's certificate is checked against.
    #[arg(long, requires = "tls")]
    pub ca: Option<PathBuf>,
    /// Spread the client sockets over the source addresses 127.0.0.1..127.0.0.N (loopback
    /// brokers only): each address has its own ephemeral ports, so tens of thousands of
    /// connections do not run out of them.
    #[arg(long, default_value_t = 1)]
    pub source_ips: u32,
    /// Client identifiers are PREFIX-pub-I, PREFIX-sub-I and PREFIX-conn-I.
    #[arg(long, default_value = "bench")]
    pub client_prefix: String,
    /// Seconds a client may take to connect (TCP, TLS and CONNACK together).
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub connect_timeout: f64,
    /// Print the summary as one JSON object on stdout (the live lines stay on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[value(name = "3", alias = "4", alias = "3.1.1")]
    V3,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

impl MqttVersion {
    pub(crate) fn protocol(self) -> Protocol {
        match self {
            MqttVersion::V3 => Protocol::V311,
            MqttVersion::V5 => Protocol::V5,
        }
    }
}

/// Which topics a run uses.
#[derive(Args, Debug, Clone)]
pub struct TopicArgs {
    /// Topics: publisher I sends to topic I mod T, subscriber J subscribes to topic J mod T.
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Topic names: %t is the topic number and %i the publisher's index; a subscriber's
    /// filter has the wildcard + for %i, which must then be a whole level.
    #[arg(long, default_value = "bench/%t")]
    pub topic: String,
    /// QoS of every PUBLISH and SUBSCRIBE.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
}

/// How publishers send.
#[derive(Args, Debug, Clone)]
pub struct PublishArgs {
    /// Publishers, one connection each.
    #[arg(long, short = 'c', default_value_t = 1)]
    pub publishers: usize,
    /// Bytes of every payload (at least 32: the stamp the subscribers read).
    #[arg(long, default_value_t = 64)]
    pub payload_size: usize,
    /// Messages per second of each publisher; 0 sends as fast as flow control allows.
    #[arg(long, default_value_t = 0.0, value_parser = seconds)]
    pub rate: f64,
    /// Unacknowledged QoS 1/2 messages each publisher may have (5.0: at most the broker's
    /// Receive Maximum).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,
}

/// How long a run lasts.
#[derive(Args, Debug, Clone)]
pub struct TimeArgs {
    /// Seconds publishers send (subscribers: listen; conn: hold the connections).
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub duration: f64,
}

/// How long subscribers keep reading after the publishers stopped.
#[derive(Args, Debug, Clone)]
pub struct DrainArgs {
    /// Seconds without a message after which subscribers stop reading and what has not
    /// arrived counts as lost (they stop sooner once everything arrived; 30 s at most).
    #[arg(long, default_value_t = 2.0, value_parser = seconds)]
    pub drain: f64,
}

#[derive(Args, Debug, Clone)]
pub struct PubArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
    #[command(flatten)]
    pub time: TimeArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SubArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Subscribers, one connection each.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    #[command(flatten)]
    pub time: TimeArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
}

#[derive(Args, Debug, Clone)]
pub struct PubSubArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Subscribers, one connection each.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    #[command(flatten)]
    pub time: TimeArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Connections to open.
    #[arg(long, short = 'c', default_value_t = 1000)]
    pub connections: usize,
    /// New connections per second; 0 opens them as fast as the handshakes go (at most
    /// 1,024 under way at once).
    #[arg(long, default_value_t = 1000.0, value_parser = seconds)]
    pub connect_rate: f64,
    #[command(flatten)]
    pub time: TimeArgs,
}

/// A non-negative, finite number (of seconds, or per second).
fn seconds(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{s} is not a non-negative number"));
    }
    Ok(value)
}

/// The largest payload the bench builds: far below MQTT's limit, well above any broker's
/// default maximum packet size.
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// A checked publish/subscribe run (the `pub`, `sub` and `pubsub` scenarios).
#[derive(Debug, Clone)]
pub(crate) struct FlowPlan {
    pub(crate) scenario: &'static str,
    pub(crate) client: ClientArgs,
    pub(crate) pattern: TopicPattern,
    pub(crate) topics: usize,
    pub(crate) qos: QoS,
    pub(crate) publishers: usize,
    pub(crate) payload_size: usize,
    /// Messages per second per publisher; 0 for no limit.
    pub(crate) rate: f64,
    pub(crate) inflight: u16,
    pub(crate) subscribers: usize,
    pub(crate) duration: Duration,
    pub(crate) drain: Duration,
}

/// A checked `conn` run.
#[derive(Debug, Clone)]
pub(crate) struct ConnPlan {
    pub(crate) client: ClientArgs,
    pub(crate) connections: usize,
    pub(crate) connect_rate: f64,
    pub(crate) duration: Duration,
}

fn invalid(option: &'static str, reason: impl Into<String>) -> BenchError {
    BenchError::Option {
        option,
        reason: reason.into(),
    }
}

impl FlowPlan {
    /// The plan of a `pub`, `sub` or `pubsub` run (`conn` is a [`ConnPlan`]).
    pub(crate) fn new(scenario: &Scenario) -> Result<FlowPlan, BenchError> {
        let (name, client, topics, publish, subscribers, time, drain) = match scenario {
            Scenario::Pub(a) => (
                "pub",
                &a.client,
                &a.topics,
                Some(&a.publish),
                0,
                &a.time,
                0.0,
            ),
            Scenario::Sub(a) => (
                "sub",
                &a.client,
                &a.topics,
                None,
                a.subscribers,
                &a.time,
                a.drain.drain,
            ),
            Scenario::PubSub(a) => (
                "pubsub",
                &a.client,
                &a.topics,
                Some(&a.publish),
                a.subscribers,
                &a.time,
                a.drain.drain,
            ),
            Scenario::Conn(_) => {
                return Err(invalid("scenario", "conn sends no messages"));
            }
        };
        check_client(client)?;
        if topics.topics == 0 {
            return Err(invalid("topics", "at least one topic"));
        }
        if name != "pub" && subscribers == 0 {
            return Err(invalid("subscribers", "at least one subscriber"));
        }
        let qos = QoS::from_bits(topics.qos).ok_or_else(|| invalid("qos", "0, 1 or 2"))?;
        let pattern = TopicPattern::parse(&topics.topic, subscribers > 0)?;
        let (publishers, payload_size, rate, inflight) = match publish {
            Some(p) => {
                if p.publishers == 0 {
                    return Err(invalid("publishers", "at least one publisher"));
                }
                if !(STAMP_LEN..=MAX_PAYLOAD).contains(&p.payload_size) {
                    return Err(invalid(
                        "payload-size",
                        format!("between {STAMP_LEN} and {MAX_PAYLOAD} bytes"),
                    ));
                }
                (p.publishers, p.payload_size, p.rate, p.inflight)
            }
            None => (0, STAMP_LEN, 0.0, 1),
        };
        Ok(FlowPlan {
            scenario: name,
            client: client.clone(),
            pattern,
            topics: topics.topics,
            qos,
            publishers,
            payload_size,
            rate,
            inflight,
            subscribers,
            duration: Duration::from_secs_f64(time.duration),
            drain: Duration::from_secs_f64(drain),
        })
    }
}

impl ConnPlan {
    pub(crate) fn new(args: &ConnArgs) -> Result<ConnPlan, BenchError> {
        check_client(&args.client)?;
        if args.connections == 0 {
            return Err(invalid("connections", "at least one connection"));
        }
        Ok(ConnPlan {
            client: args.client.clone(),
            connections: args.connections,
            connect_rate: args.connect_rate,
            duration: Duration::from_secs_f64(args.time.duration),
        })
    }
}

/// What can be checked of the client options before resolving the host.
fn check_client(client: &ClientArgs) -> Result<(), BenchError> {
    if client.source_ips == 0 || client.source_ips > 65_534 {
        return Err(invalid("source-ips", "between 1 and 65534"));
    }
    if client.client_prefix.is_empty() {
        return Err(invalid("client-prefix", "must not be empty"));
    }
    if client.connect_timeout <= 0.0 {
        return Err(invalid("connect-timeout", "must be above 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        scenario: Scenario,
    }

    fn plan(args: &[&str]) -> Result<FlowPlan, BenchError> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| invalid("parse", e.to_string()))?;
        FlowPlan::new(&cli.scenario)
    }

    #[test]
    fn defaults_make_a_runnable_plan() {
        let plan = plan(&["pubsub"]).unwrap();
        assert_eq!(plan.scenario, "pubsub");
        assert_eq!((plan.publishers, plan.subscribers, plan.topics), (1, 1, 1));
        assert_eq!(plan.qos, QoS::AtMostOnce);
        assert_eq!(plan.client.port, 1883);
        assert_eq!(plan.client.mqtt_version, MqttVersion::V5);
        assert!(!plan.client.persistent);
        assert_eq!(plan.pattern.topic(3, 0), "bench/0");
    }

    #[test]
    fn options_reach_the_plan() {
        let plan = plan(&[
            "pubsub",
            "-c",
            "4",
            "--subscribers",
            "3",
            "--topics",
            "2",
            "--topic",
            "t/%i/%t",
            "--qos",
            "2",
            "--mqtt-version",
            "3",
            "--persistent",
            "--duration",
            "1.5",
            "--rate",
            "100",
        ])
        .unwrap();
        assert_eq!((plan.publishers, plan.subscribers, plan.topics), (4, 3, 2));
        assert_eq!(plan.qos, QoS::ExactlyOnce);
        assert_eq!(plan.client.mqtt_version.protocol(), Protocol::V311);
        assert!(plan.client.persistent);
        assert_eq!(plan.duration, Duration::from_millis(1500));
        assert_eq!(plan.rate, 100.0);
        assert_eq!(plan.pattern.filter(1), "t/+/1");
    }

    #[test]
    fn bad_combinations_are_refused_before_connecting() {
        assert!(plan(&["pubsub", "--payload-size", "8"]).is_err());
        assert!(plan(&["pubsub", "--topic", "bench/c%i"]).is_err());
        assert!(plan(&["pub", "--topic", "bench/c%i"]).is_ok());
        assert!(plan(&["pubsub", "--qos", "3"]).is_err());
        assert!(plan(&["pubsub", "--tls"]).is_err(), "--tls needs --ca");
        assert!(plan(&["pubsub", "--duration", "-1"]).is_err());
        assert!(plan(&["sub", "--subscribers", "0"]).is_err());
        assert!(plan(&["conn"]).is_err());
    }
}
