//! rumqttc 0.25 clients, MQTT 3.1.1 (`rumqttc`) and 5.0 (`rumqttc::v5`), behind one
//! interface: a task drives the event loop and turns what it yields into [`Ev`]s on a
//! channel that the test awaits with timeouts. A client can reconnect after a connection
//! loss, to the node [`Client::move_to`] names, keeping its session state as rumqttc does.
//!
//! rumqttc implements only part of the receiving side of QoS 2 (§4.3.3); the driver does the
//! rest, so that exactly-once is checked against the broker and not against rumqttc:
//! - rumqttc hands a QoS 2 PUBLISH over again when it comes again under a packet id that
//!   still awaits its PUBREL (a resend, DUP=1, after a reconnect). A receiver must not
//!   deliver it twice: the driver reports it as [`Ev::Redelivered`], not as a message.
//! - On every connection loss rumqttc forgets the packet ids that await PUBREL, and then
//!   takes the PUBREL that the broker must resend on the resumed session (§4.4) for a
//!   protocol error: it drops the connection, reconnects, gets the same PUBREL, and so on
//!   forever. Before reconnecting, the driver gives rumqttc back every QoS 2 packet id it
//!   has received, so that each resent PUBREL is answered with PUBCOMP as the spec says.
//!
//! And on the sending side: rumqttc resends its unacknowledged PUBLISHes after a reconnect
//! with the same packet ids but DUP=0 (and drops them if the CONNACK says no session);
//! [`Opts::dup_on_resend`] sets DUP=1 on those resends, as §3.3.1.1 asks.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5 as r5;
use rumqttc::v5::mqttbytes::v5 as r5p;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::broker_support::port_of;

/// How long a test waits for the next event of a client before it fails.
pub(crate) const EVENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between reconnection attempts.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    V4,
    V5,
}

#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) id: String,
    pub(crate) proto: Proto,
    /// Clean session (3.1.1) / clean start (5.0).
    pub(crate) clean: bool,
    /// 5.0 Session Expiry Interval, seconds.
    pub(crate) session_expiry: Option<u32>,
    /// Reconnect after a connection loss instead of ending.
    pub(crate) reconnect: bool,
    /// Set DUP on the PUBLISHes rumqttc resends after a reconnect.
    pub(crate) dup_on_resend: bool,
    /// At most this many QoS 1/2 publishes unacknowledged (rumqttc's default: 100 in
    /// 3.1.1, the server's Receive Maximum in 5.0).
    pub(crate) inflight: Option<u16>,
    /// Connect over TLS with this client configuration (the server name is 127.0.0.1).
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl Opts {
    pub(crate) fn new(id: &str, proto: Proto) -> Opts {
        Opts {
            id: id.to_owned(),
            proto,
            clean: true,
            session_expiry: None,
            reconnect: false,
            dup_on_resend: false,
            inflight: None,
            tls: None,
        }
    }

    // Used by the load-balancer drill, which shares this module.
    #[allow(dead_code)]
    pub(crate) fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Opts {
        self.tls = Some(config);
        self
    }

    /// Clean session 0 (3.1.1); clean start 0 and a 300 s session expiry (5.0).
    pub(crate) fn persistent(mut self) -> Opts {
        self.clean = false;
        self.session_expiry = Some(300);
        self
    }

    pub(crate) fn reconnecting(mut self) -> Opts {
        self.reconnect = true;
        self
    }

    pub(crate) fn dup_on_resend(mut self) -> Opts {
        self.dup_on_resend = true;
        self
    }

    pub(crate) fn inflight(mut self, inflight: u16) -> Opts {
        self.inflight = Some(inflight);
        self
    }
}

/// A PUBLISH the client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Msg {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: u8,
    pub(crate) pkid: u16,
    pub(crate) dup: bool,
    pub(crate) retain: bool,
}

impl Msg {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// What a client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    ConnAck {
        session_present: bool,
    },
    /// A CONNACK refusing the connection: the 3.1.1 return code or the 5.0 reason code.
    Refused {
        code: u8,
    },
    Message(Msg),
    /// A QoS 2 PUBLISH under a packet id that still awaits PUBREL: the message already
    /// reported, sent again.
    Redelivered(Msg),
    /// Granted QoS per filter; `None` for a refused filter.
    SubAck(Vec<Option<u8>>),
    /// `ok`: success (or 5.0 "no matching subscribers").
    PubAck {
        pkid: u16,
        ok: bool,
    },
    PubComp {
        pkid: u16,
        ok: bool,
    },
    /// A 5.0 DISCONNECT from the server, with its reason code.
    ServerDisconnect {
        reason: u8,
    },
    /// The connection ended or could not be made.
    Lost(String),
    /// The broker broke the protocol in a way the test must fail on.
    Violation(String),
}

#[derive(Clone)]
enum Api {
    V4(rumqttc::AsyncClient),
    V5(r5::AsyncClient),
}

/// Sends requests to a client's event loop; clonable into other tasks.
#[derive(Clone)]
pub(crate) struct Sender {
    id: String,
    api: Api,
}

impl Sender {
    pub(crate) async fn publish(&self, topic: &str, qos: u8, payload: impl Into<Vec<u8>>) {
        let payload = payload.into();
        let sent = match &self.api {
            Api::V4(c) => c
                .publish(topic, v4_qos(qos), false, payload)
                .await
                .map_err(|e| e.to_string()),
            Api::V5(c) => c
                .publish(topic, v5_qos(qos), false, payload)
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            panic!("{}: publish to {topic} not queued: {e}", self.id);
        }
    }
}

/// One rumqttc client and the task that drives it.
pub(crate) struct Client {
    pub(crate) id: String,
    sender: Sender,
    events: mpsc::UnboundedReceiver<Ev>,
    backlog: VecDeque<Ev>,
    target: Arc<Mutex<String>>,
    driver: JoinHandle<()>,
}

impl Client {
    /// Starts connecting to `addr`; the first event tells how that went.
    pub(crate) fn start(opts: Opts, addr: &str) -> Client {
        let (tx, events) = mpsc::unbounded_channel();
        let target = Arc::new(Mutex::new(addr.to_owned()));
        let (api, driver) = match opts.proto {
            Proto::V4 => {
                let (client, eventloop) = rumqttc::AsyncClient::new(v4_options(&opts, addr), 10);
                let driver = tokio::spawn(drive_v4(eventloop, opts.clone(), target.clone(), tx));
                (Api::V4(client), driver)
            }
            Proto::V5 => {
                let (client, eventloop) = r5::AsyncClient::new(v5_options(&opts, addr), 10);
                let driver = tokio::spawn(drive_v5(eventloop, opts.clone(), target.clone(), tx));
                (Api::V5(client), driver)
            }
        };
        Client {
            id: opts.id.clone(),
            sender: Sender { id: opts.id, api },
            events,
            backlog: VecDeque::new(),
            target,
            driver,
        }
    }

    /// Connects to `addr` and returns the client with the CONNACK's session present flag.
    pub(crate) async fn connect(opts: Opts, addr: &str) -> (Client, bool) {
        let mut client = Client::start(opts, addr);
        match client.next().await {
            Ev::ConnAck { session_present } => (client, session_present),
            other => panic!("{} could not connect to {addr}: {other:?}", client.id),
        }
    }

    pub(crate) fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Where the client connects the next time it (re)connects.
    pub(crate) fn move_to(&self, addr: &str) {
        *self.target.lock().expect("target lock") = addr.to_owned();
    }

    /// The next event; fails the test after [`EVENT_TIMEOUT`].
    pub(crate) async fn next(&mut self) -> Ev {
        match self.next_within(EVENT_TIMEOUT).await {
            Some(ev) => ev,
            None => panic!("{}: no event within {EVENT_TIMEOUT:?}", self.id),
        }
    }

    /// The next event, or `None` if there is none within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Option<Ev> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(ev);
        }
        match timeout(wait, self.events.recv()).await {
            Ok(Some(ev)) => Some(ev),
            Ok(None) => panic!("{}: its event loop ended", self.id),
            Err(_) => None,
        }
    }

    /// The next received message; any other event fails the test.
    pub(crate) async fn message(&mut self) -> Msg {
        match self.next().await {
            Ev::Message(msg) => msg,
            other => panic!("{}: expected a message, got {other:?}", self.id),
        }
    }

    /// Subscribes to `filter` and waits for the SUBACK granting `qos`. Other events that
    /// arrive meanwhile are kept for [`Client::next`].
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: u8) {
        let sent = match &self.sender.api {
            Api::V4(c) => c
                .subscribe(filter, v4_qos(qos))
                .await
                .map_err(|e| e.to_string()),
            Api::V5(c) => c
                .subscribe(filter, v5_qos(qos))
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            panic!("{}: subscribe to {filter} not queued: {e}", self.id);
        }
        let mut early = Vec::new();
        let granted = loop {
            let ev = match timeout(EVENT_TIMEOUT, self.events.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => panic!("{}: event loop ended before the SUBACK", self.id),
                Err(_) => panic!("{}: no SUBACK for {filter} in {EVENT_TIMEOUT:?}", self.id),
            };
            match ev {
                Ev::SubAck(granted) => break granted,
                other => early.push(other),
            }
        };
        self.backlog.extend(early);
        assert_eq!(
            granted,
            vec![Some(qos)],
            "{}: SUBACK for {filter} at QoS {qos}",
            self.id
        );
    }

    pub(crate) async fn publish(&self, topic: &str, qos: u8, payload: impl Into<Vec<u8>>) {
        self.sender.publish(topic, qos, payload).await;
    }

    /// Sends DISCONNECT (normal disconnection) and waits until the event loop has ended.
    pub(crate) async fn disconnect(mut self) {
        let sent = match &self.sender.api {
            Api::V4(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Api::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            panic!("{}: DISCONNECT not queued: {e}", self.id);
        }
        if timeout(EVENT_TIMEOUT, &mut self.driver).await.is_err() {
            panic!("{}: DISCONNECT not sent within {EVENT_TIMEOUT:?}", self.id);
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn v4_qos(qos: u8) -> rumqttc::QoS {
    rumqttc::qos(qos).expect("QoS 0, 1 or 2")
}

fn v5_qos(qos: u8) -> r5::mqttbytes::QoS {
    r5::mqttbytes::qos(qos).expect("QoS 0, 1 or 2")
}

fn v4_options(opts: &Opts, addr: &str) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(&opts.id, "127.0.0.1", port_of(addr));
    options.set_clean_session(opts.clean);
    if let Some(inflight) = opts.inflight {
        options.set_inflight(inflight);
    }
    if let Some(tls) = &opts.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    options
}

fn v5_options(opts: &Opts, addr: &str) -> r5::MqttOptions {
    let mut options = r5::MqttOptions::new(&opts.id, "127.0.0.1", port_of(addr));
    options.set_clean_start(opts.clean);
    options.set_session_expiry_interval(opts.session_expiry);
    if let Some(inflight) = opts.inflight {
        options.set_outgoing_inflight_upper_limit(inflight);
    }
    if let Some(tls) = &opts.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    options
}

/// The receiving side of QoS 2 that rumqttc leaves out (see the module doc).
#[derive(Default)]
struct Qos2Receiver {
    /// Packet id → payload of each QoS 2 message received whose PUBREL has not come.
    awaiting_release: HashMap<u16, Bytes>,
    /// Every QoS 2 packet id received on this session.
    seen: BTreeSet<u16>,
}

impl Qos2Receiver {
    fn received(&mut self, msg: Msg) -> Ev {
        if msg.qos != 2 {
            return Ev::Message(msg);
        }
        self.seen.insert(msg.pkid);
        match self.awaiting_release.get(&msg.pkid) {
            Some(payload) if *payload == msg.payload => Ev::Redelivered(msg),
            Some(payload) => Ev::Violation(format!(
                "packet id {} reused for {:?} while {:?} awaits its PUBREL",
                msg.pkid, msg.payload, payload
            )),
            None => {
                self.awaiting_release.insert(msg.pkid, msg.payload.clone());
                Ev::Message(msg)
            }
        }
    }

    fn completed(&mut self, pkid: u16) {
        self.awaiting_release.remove(&pkid);
    }
}

fn refused_v5(code: r5p::ConnectReturnCode) -> u8 {
    use r5p::ConnectReturnCode as C;
    match code {
        C::Success => 0x00,
        C::RefusedProtocolVersion => 0x01,
        C::BadClientId => 0x02,
        C::ServiceUnavailable => 0x03,
        C::UnspecifiedError => 0x80,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::UnsupportedProtocolVersion => 0x84,
        C::ClientIdentifierNotValid => 0x85,
        C::BadUserNamePassword => 0x86,
        C::NotAuthorized => 0x87,
        C::ServerUnavailable => 0x88,
        C::ServerBusy => 0x89,
        C::Banned => 0x8a,
        C::BadAuthenticationMethod => 0x8c,
        C::TopicNameInvalid => 0x90,
        C::PacketTooLarge => 0x95,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
        C::RetainNotSupported => 0x9a,
        C::QoSNotSupported => 0x9b,
        C::UseAnotherServer => 0x9c,
        C::ServerMoved => 0x9d,
        C::ConnectionRateExceeded => 0x9f,
    }
}

async fn drive_v4(
    mut eventloop: rumqttc::EventLoop,
    opts: Opts,
    target: Arc<Mutex<String>>,
    tx: mpsc::UnboundedSender<Ev>,
) {
    use rumqttc::{ConnectionError, Event, Outgoing, Packet, Request, SubscribeReasonCode};
    let mut receiver = Qos2Receiver::default();
    let mut connected_to = target.lock().expect("target lock").clone();
    loop {
        let addr = target.lock().expect("target lock").clone();
        if addr != connected_to {
            eventloop.mqtt_options = v4_options(&opts, &addr);
            connected_to = addr;
        }
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(packet)) => match packet {
                Packet::ConnAck(c) => Some(Ev::ConnAck {
                    session_present: c.session_present,
                }),
                Packet::Publish(p) => Some(receiver.received(Msg {
                    topic: p.topic,
                    payload: p.payload,
                    qos: p.qos as u8,
                    pkid: p.pkid,
                    dup: p.dup,
                    retain: p.retain,
                })),
                Packet::SubAck(s) => Some(Ev::SubAck(
                    s.return_codes
                        .iter()
                        .map(|c| match c {
                            SubscribeReasonCode::Success(q) => Some(*q as u8),
                            SubscribeReasonCode::Failure => None,
                        })
                        .collect(),
                )),
                Packet::PubAck(a) => Some(Ev::PubAck {
                    pkid: a.pkid,
                    ok: true,
                }),
                Packet::PubComp(c) => Some(Ev::PubComp {
                    pkid: c.pkid,
                    ok: true,
                }),
                _ => None,
            },
            Ok(Event::Outgoing(Outgoing::PubComp(pkid))) => {
                receiver.completed(pkid);
                None
            }
            // Written and flushed: the session ends here.
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(Event::Outgoing(_)) => None,
            Err(e) => {
                let ev = match e {
                    ConnectionError::ConnectionRefused(code) => Ev::Refused { code: code as u8 },
                    other => Ev::Lost(other.to_string()),
                };
                if tx.send(ev).is_err() || !opts.reconnect {
                    return;
                }
                // Marks each id as awaiting PUBREL again; the PUBREC this would send and
                // the events it records are dropped.
                let events = eventloop.state.events.len();
                for &pkid in &receiver.seen {
                    let mut publish =
                        rumqttc::Publish::new("restore", rumqttc::QoS::ExactlyOnce, []);
                    publish.pkid = pkid;
                    let _ = eventloop
                        .state
                        .handle_incoming_packet(Packet::Publish(publish));
                }
                eventloop.state.events.truncate(events);
                if opts.dup_on_resend {
                    for request in eventloop.pending.iter_mut() {
                        if let Request::Publish(p) = request
                            && p.pkid != 0
                        {
                            p.dup = true;
                        }
                    }
                }
                tokio::time::sleep(RECONNECT_INTERVAL).await;
                None
            }
        };
        if let Some(ev) = ev
            && tx.send(ev).is_err()
        {
            return;
        }
    }
}

async fn drive_v5(
    mut eventloop: r5::EventLoop,
    opts: Opts,
    target: Arc<Mutex<String>>,
    tx: mpsc::UnboundedSender<Ev>,
) {
    use r5::{ConnectionError, Event, Request, StateError};
    use r5p::{Packet, PubAckReason, PubCompReason, SubscribeReasonCode};
    use rumqttc::Outgoing;
    let mut receiver = Qos2Receiver::default();
    let mut connected_to = target.lock().expect("target lock").clone();
    loop {
        let addr = target.lock().expect("target lock").clone();
        if addr != connected_to {
            eventloop.options = v5_options(&opts, &addr);
            connected_to = addr;
        }
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(packet)) => match packet {
                Packet::ConnAck(c) => Some(Ev::ConnAck {
                    session_present: c.session_present,
                }),
                Packet::Publish(p) => Some(receiver.received(Msg {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                    qos: p.qos as u8,
                    pkid: p.pkid,
                    dup: p.dup,
                    retain: p.retain,
                })),
                Packet::SubAck(s) => Some(Ev::SubAck(
                    s.return_codes
                        .iter()
                        .map(|c| match c {
                            SubscribeReasonCode::Success(q) => Some(*q as u8),
                            _ => None,
                        })
                        .collect(),
                )),
                Packet::PubAck(a) => Some(Ev::PubAck {
                    pkid: a.pkid,
                    ok: matches!(
                        a.reason,
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                    ),
                }),
                Packet::PubComp(c) => Some(Ev::PubComp {
                    pkid: c.pkid,
                    ok: c.reason == PubCompReason::Success,
                }),
                _ => None,
            },
            Ok(Event::Outgoing(Outgoing::PubComp(pkid))) => {
                receiver.completed(pkid);
                None
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(Event::Outgoing(_)) => None,
            Err(e) => {
                let ev = match e {
                    ConnectionError::ConnectionRefused(code) => Ev::Refused {
                        code: refused_v5(code),
                    },
                    ConnectionError::MqttState(StateError::ServerDisconnect {
                        reason_code,
                        ..
                    }) => Ev::ServerDisconnect {
                        reason: reason_code as u8,
                    },
                    other => Ev::Lost(other.to_string()),
                };
                if tx.send(ev).is_err() || !opts.reconnect {
                    return;
                }
                let events = eventloop.state.events.len();
                for &pkid in &receiver.seen {
                    let mut publish =
                        r5p::Publish::new("restore", r5::mqttbytes::QoS::ExactlyOnce, "", None);
                    publish.pkid = pkid;
                    let _ = eventloop
                        .state
                        .handle_incoming_packet(Packet::Publish(publish));
                }
                eventloop.state.events.truncate(events);
                if opts.dup_on_resend {
                    for request in eventloop.pending.iter_mut() {
                        if let Request::Publish(p) = request
                            && p.pkid != 0
                        {
                            p.dup = true;
                        }
                    }
                }
                tokio::time::sleep(RECONNECT_INTERVAL).await;
                None
            }
        };
        if let Some(ev) = ev
            && tx.send(ev).is_err()
        {
            return;
        }
    }
}
