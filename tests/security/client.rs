//! rumqttc 0.25 clients, MQTT 5.0 and 3.1.1 behind one face: a task drives the event loop
//! and turns each incoming packet into a [`Got`] with the wire's reason codes, which the
//! test waits on with time limits. No reconnection: a lost connection is an event, so a
//! test that checks a client was not reconnected gets that for free.

use std::collections::VecDeque;
use std::sync::Arc;

use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5 as m5;
use rumqttc::{TlsConfiguration, Transport};
use rustls::ClientConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::{QUIET, WAIT};

/// What came from the node, reason codes as on the wire (3.1.1 return codes as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Got {
    ConnAck(u8),
    SubAck(Vec<u8>),
    /// The PUBACK's reason; 3.1.1 has none: 0.
    PubAck(u8),
    Publish {
        topic: String,
        payload: String,
    },
    /// The connection ended (or was refused with this code before any CONNACK event).
    Refused(u8),
    Ended(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V311,
    V5,
}

/// How a client connects.
pub(crate) struct Opts<'a> {
    pub(crate) version: Version,
    pub(crate) id: &'a str,
    pub(crate) addr: &'a str,
    pub(crate) credentials: Option<(&'a str, &'a str)>,
    pub(crate) tls: Option<Arc<ClientConfig>>,
}

impl<'a> Opts<'a> {
    pub(crate) fn new(version: Version, id: &'a str, addr: &'a str) -> Self {
        Opts {
            version,
            id,
            addr,
            credentials: None,
            tls: None,
        }
    }

    pub(crate) fn login(mut self, username: &'a str, password: &'a str) -> Self {
        self.credentials = Some((username, password));
        self
    }

    pub(crate) fn tls(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

enum Sender {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

pub(crate) struct Client {
    pub(crate) id: String,
    sender: Sender,
    events: mpsc::UnboundedReceiver<Got>,
    /// Messages that came while the test waited for an ack.
    backlog: VecDeque<(String, String)>,
    driver: JoinHandle<()>,
}

fn v5_code(code: m5::ConnectReturnCode) -> u8 {
    use m5::ConnectReturnCode as C;
    match code {
        C::Success => 0,
        C::UnspecifiedError => 0x80,
        C::BadUserNamePassword => 0x86,
        C::NotAuthorized => 0x87,
        C::ServerUnavailable => 0x88,
        C::Banned => 0x8A,
        C::ConnectionRateExceeded => 0x9F,
        other => panic!("a CONNACK reason the tests do not expect: {other:?}"),
    }
}

fn v5_got(packet: m5::Packet) -> Option<Got> {
    use m5::{PubAckReason as P, SubscribeReasonCode as S};
    Some(match packet {
        m5::Packet::ConnAck(ack) => Got::ConnAck(v5_code(ack.code)),
        m5::Packet::SubAck(ack) => Got::SubAck(
            ack.return_codes
                .iter()
                .map(|code| match code {
                    S::Success(qos) => *qos as u8,
                    S::Unspecified | S::Failure => 0x80,
                    S::NotAuthorized => 0x87,
                    other => panic!("a SUBACK reason the tests do not expect: {other:?}"),
                })
                .collect(),
        ),
        m5::Packet::PubAck(ack) => Got::PubAck(match ack.reason {
            P::Success => 0,
            P::NoMatchingSubscribers => 0x10,
            P::UnspecifiedError => 0x80,
            P::NotAuthorized => 0x87,
            other => panic!("a PUBACK reason the tests do not expect: {other:?}"),
        }),
        m5::Packet::Publish(p) => Got::Publish {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: String::from_utf8_lossy(&p.payload).into_owned(),
        },
        _ => return None,
    })
}

fn v4_got(packet: rumqttc::Packet) -> Option<Got> {
    use rumqttc::{Packet, SubscribeReasonCode as S};
    Some(match packet {
        Packet::ConnAck(ack) => Got::ConnAck(ack.code as u8),
        Packet::SubAck(ack) => Got::SubAck(
            ack.return_codes
                .iter()
                .map(|code| match code {
                    S::Success(qos) => *qos as u8,
                    S::Failure => 0x80,
                })
                .collect(),
        ),
        Packet::PubAck(_) => Got::PubAck(0),
        Packet::Publish(p) => Got::Publish {
            topic: p.topic.clone(),
            payload: String::from_utf8_lossy(&p.payload).into_owned(),
        },
        _ => return None,
    })
}

impl Client {
    /// Starts connecting; the first event tells how it went.
    pub(crate) fn start(opts: Opts<'_>) -> Client {
        let port = crate::broker_support::port_of(opts.addr);
        let transport = opts
            .tls
            .map(|config| Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        let (tx, events) = mpsc::unbounded_channel();
        let (sender, driver) = match opts.version {
            Version::V5 => {
                let mut options = rumqttc::v5::MqttOptions::new(opts.id, "127.0.0.1", port);
                if let Some((user, password)) = opts.credentials {
                    options.set_credentials(user, password);
                }
                if let Some(transport) = transport {
                    options.set_transport(transport);
                }
                let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
                let driver = tokio::spawn(async move {
                    loop {
                        let got = match eventloop.poll().await {
                            Ok(rumqttc::v5::Event::Incoming(packet)) => match v5_got(packet) {
                                Some(got) => got,
                                None => continue,
                            },
                            Ok(rumqttc::v5::Event::Outgoing(_)) => continue,
                            Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
                                Got::Refused(v5_code(code))
                            }
                            Err(e) => Got::Ended(e.to_string()),
                        };
                        let end = matches!(got, Got::Refused(_) | Got::Ended(_));
                        if tx.send(got).is_err() || end {
                            return;
                        }
                    }
                });
                (Sender::V5(client), driver)
            }
            Version::V311 => {
                let mut options = rumqttc::MqttOptions::new(opts.id, "127.0.0.1", port);
                if let Some((user, password)) = opts.credentials {
                    options.set_credentials(user, password);
                }
                if let Some(transport) = transport {
                    options.set_transport(transport);
                }
                let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
                let driver = tokio::spawn(async move {
                    loop {
                        let got = match eventloop.poll().await {
                            Ok(rumqttc::Event::Incoming(packet)) => match v4_got(packet) {
                                Some(got) => got,
                                None => continue,
                            },
                            Ok(rumqttc::Event::Outgoing(_)) => continue,
                            Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                                Got::Refused(code as u8)
                            }
                            Err(e) => Got::Ended(e.to_string()),
                        };
                        let end = matches!(got, Got::Refused(_) | Got::Ended(_));
                        if tx.send(got).is_err() || end {
                            return;
                        }
                    }
                });
                (Sender::V4(client), driver)
            }
        };
        Client {
            id: opts.id.to_string(),
            sender,
            events,
            backlog: VecDeque::new(),
            driver,
        }
    }

    /// Connects; `Ok` on a successful CONNACK, else the refusal's code (5.0 reason or
    /// 3.1.1 return code).
    pub(crate) async fn try_connect(opts: Opts<'_>) -> Result<Client, u8> {
        let mut client = Client::start(opts);
        match client.next().await {
            Got::ConnAck(0) => Ok(client),
            Got::Refused(code) => Err(code),
            other => panic!("{}: expected CONNACK, got {other:?}", client.id),
        }
    }

    /// Connects; panics unless accepted.
    pub(crate) async fn connect(opts: Opts<'_>) -> Client {
        let id = opts.id.to_string();
        Client::try_connect(opts)
            .await
            .unwrap_or_else(|code| panic!("{id}: connection refused with {code:#04x}"))
    }

    async fn next(&mut self) -> Got {
        match timeout(WAIT, self.events.recv()).await {
            Ok(Some(got)) => got,
            Ok(None) => Got::Ended("event loop gone".into()),
            Err(_) => panic!("{}: nothing from the node within {WAIT:?}", self.id),
        }
    }

    /// The next event other than a message (messages go to the backlog).
    async fn next_control(&mut self, what: &str) -> Got {
        loop {
            match self.next().await {
                Got::Publish { topic, payload } => self.backlog.push_back((topic, payload)),
                Got::Ended(e) => panic!("{}: connection ended waiting for {what}: {e}", self.id),
                got => return got,
            }
        }
    }

    /// Subscribes to `filters` (QoS 0–2) in one SUBSCRIBE; the SUBACK's codes.
    pub(crate) async fn subscribe_many(&mut self, filters: &[(&str, u8)]) -> Vec<u8> {
        let qos = |q: u8| match q {
            0 => rumqttc::QoS::AtMostOnce,
            1 => rumqttc::QoS::AtLeastOnce,
            _ => rumqttc::QoS::ExactlyOnce,
        };
        let sent = match &self.sender {
            Sender::V5(c) => {
                let filters: Vec<m5::Filter> = filters
                    .iter()
                    .map(|(f, q)| m5::Filter::new(*f, qos5(*q)))
                    .collect();
                c.subscribe_many(filters).await.map_err(|e| e.to_string())
            }
            Sender::V4(c) => {
                let filters: Vec<rumqttc::SubscribeFilter> = filters
                    .iter()
                    .map(|(f, q)| rumqttc::SubscribeFilter::new(f.to_string(), qos(*q)))
                    .collect();
                c.subscribe_many(filters).await.map_err(|e| e.to_string())
            }
        };
        sent.unwrap_or_else(|e| panic!("{}: SUBSCRIBE not queued: {e}", self.id));
        match self.next_control("SUBACK").await {
            Got::SubAck(codes) => codes,
            other => panic!("{}: expected SUBACK, got {other:?}", self.id),
        }
    }

    /// Subscribes to one filter at QoS 1; panics unless granted.
    pub(crate) async fn subscribe(&mut self, filter: &str) {
        let codes = self.subscribe_many(&[(filter, 1)]).await;
        assert_eq!(codes, [1], "{}: SUBSCRIBE {filter}", self.id);
    }

    /// Publishes at QoS 1; the PUBACK's reason (3.1.1: 0).
    pub(crate) async fn publish(&mut self, topic: &str, payload: &str) -> u8 {
        let sent = match &self.sender {
            Sender::V5(c) => c
                .publish(topic, QoS5::AtLeastOnce, false, payload.to_string())
                .await
                .map_err(|e| e.to_string()),
            Sender::V4(c) => c
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_string())
                .await
                .map_err(|e| e.to_string()),
        };
        sent.unwrap_or_else(|e| panic!("{}: PUBLISH not queued: {e}", self.id));
        match self.next_control("PUBACK").await {
            Got::PubAck(reason) => reason,
            other => panic!("{}: expected PUBACK, got {other:?}", self.id),
        }
    }

    /// Publishes at QoS 1; panics unless the PUBACK is a success (0x10, no matching
    /// subscribers, is one).
    pub(crate) async fn publish_ok(&mut self, topic: &str, payload: &str) {
        let reason = self.publish(topic, payload).await;
        assert!(
            reason == 0 || reason == 0x10,
            "{}: PUBLISH to {topic} refused with {reason:#04x}",
            self.id
        );
    }

    /// The next message within [`WAIT`]: it must be `topic` with `payload`.
    pub(crate) async fn expect_message(&mut self, topic: &str, payload: &str) {
        let got = match self.backlog.pop_front() {
            Some(message) => message,
            None => match self.next().await {
                Got::Publish { topic, payload } => (topic, payload),
                other => panic!("{}: expected {topic} {payload:?}, got {other:?}", self.id),
            },
        };
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (topic, payload),
            "{}: the next message",
            self.id
        );
    }

    /// Fails if anything arrives within [`QUIET`] (or is already waiting).
    pub(crate) async fn expect_quiet(&mut self, why: &str) {
        assert!(self.backlog.is_empty(), "{why}: got {:?}", self.backlog);
        let deadline = Instant::now() + QUIET;
        if let Ok(got) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            panic!(
                "{}: {why}: expected nothing for {QUIET:?}, got {got:?}",
                self.id
            );
        }
    }
}

fn qos5(q: u8) -> QoS5 {
    match q {
        0 => QoS5::AtMostOnce,
        1 => QoS5::AtLeastOnce,
        _ => QoS5::ExactlyOnce,
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A 5.0 client of `addr` logged in as `username`, connected.
pub(crate) async fn v5_user(id: &str, addr: &str, username: &str, password: &str) -> Client {
    Client::connect(Opts::new(Version::V5, id, addr).login(username, password)).await
}

/// An anonymous 5.0 client of `addr`, connected.
pub(crate) async fn v5_anonymous(id: &str, addr: &str) -> Client {
    Client::connect(Opts::new(Version::V5, id, addr)).await
}
