//! The harness's MQTT client: rumqttc 0.25 (v5), a client nobody here wrote and that
//! shares nothing with the broker's codec, driven explicitly.
//!
//! A [`Session`] owns one rumqttc event loop in a task and reports what happens on it as
//! [`Event`]s. The harness chooses clean start, session expiry and manual acks; it moves
//! the session to another node (`reconnect`) by dropping the connection and pointing the
//! same event loop (same session state, same in-flight packet ids, resent with DUP) at
//! another address; after a connection error it reconnects by itself to a random node.
//! QoS 2 deliveries that the client must discard (a DUP resend of a packet id received and
//! not yet released by PUBREL) are dropped here and acknowledged again, never reported;
//! this module also keeps those packet ids across reconnections, which rumqttc forgets.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PubRecReason, Publish};
use rumqttc::v5::{AsyncClient, EventLoop, MqttOptions};
use tokio::sync::{mpsc, watch};

use crate::nodes::{NodeView, Target};

/// What a session reports.
#[derive(Debug)]
pub enum Event {
    /// A connection attempt to `node` begins.
    Connecting {
        conn: u64,
        node: Target,
    },
    ConnAck {
        conn: u64,
        session_present: bool,
        ok: bool,
    },
    /// A PUBLISH of ours went out with this packet id.
    Sent {
        pkid: u16,
    },
    /// Acknowledgements of our PUBLISHes: success or an error reason code.
    PubAck {
        pkid: u16,
        ok: bool,
    },
    PubRec {
        pkid: u16,
        ok: bool,
    },
    PubComp {
        pkid: u16,
    },
    SubAck {
        ok: bool,
    },
    /// A delivery (already acknowledged by the time it is reported).
    Delivery {
        conn: u64,
        publish: Publish,
    },
    /// The connection ended.
    Closed {
        conn: u64,
        error: String,
    },
    /// The connection ended before its CONNECT was answered: whether the broker acted on
    /// it is unknown.
    Abandoned {
        conn: u64,
        error: String,
    },
}

/// How a session connects.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub client_id: String,
    pub clean_start: bool,
    /// Session expiry interval, s.
    pub expiry: u32,
    pub keep_alive: Duration,
    /// After a connection error, connect again to a random node of the view (same
    /// session); without
    /// it, the session's task ends with the connection.
    pub reconnect: bool,
}

/// Connection numbers, unique in the test.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// One MQTT session, driven in its own task.
pub struct Session {
    pub client: AsyncClient,
    pub events: mpsc::UnboundedReceiver<Event>,
    control: watch::Sender<Control>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Run,
    /// Drop the connection and connect to this node (generation counter, node).
    MoveTo(u64, Target),
    Stop,
}

fn mqtt_options(options: &SessionOptions, addr: SocketAddr) -> MqttOptions {
    let mut mqtt = MqttOptions::new(&options.client_id, addr.ip().to_string(), addr.port());
    mqtt.set_clean_start(options.clean_start)
        .set_session_expiry_interval(Some(options.expiry))
        .set_keep_alive(options.keep_alive)
        .set_manual_acks(true)
        .set_connection_timeout(3);
    mqtt
}

impl Session {
    /// Starts a session on node `first`; reconnections pick from `nodes`.
    pub fn start(options: SessionOptions, nodes: NodeView, first: Target) -> Session {
        let (client, eventloop) = AsyncClient::new(mqtt_options(&options, first.addr), 256);
        let (tx, events) = mpsc::unbounded_channel();
        let (control, control_rx) = watch::channel(Control::Run);
        let task = tokio::spawn(drive(
            eventloop,
            client.clone(),
            options,
            nodes,
            first,
            tx,
            control_rx,
        ));
        Session {
            client,
            events,
            control,
            task,
        }
    }

    /// Drops the connection and connects to `node` with the same session state.
    pub fn move_to(&self, node: Target) {
        let generation = match *self.control.borrow() {
            Control::MoveTo(g, _) => g + 1,
            _ => 1,
        };
        let _ = self.control.send(Control::MoveTo(generation, node));
    }

    /// Stops the task (the connection is dropped without DISCONNECT).
    pub async fn stop(self) {
        let _ = self.control.send(Control::Stop);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }

    /// Publishes and returns once the request is queued.
    pub async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: Bytes) -> bool {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .is_ok()
    }
}

async fn drive(
    eventloop: EventLoop,
    client: AsyncClient,
    options: SessionOptions,
    nodes: NodeView,
    first: Target,
    tx: mpsc::UnboundedSender<Event>,
    mut control: watch::Receiver<Control>,
) {
    let mut driver = Driver {
        eventloop,
        client,
        options,
        nodes,
        tx,
        conn: 0,
        state: Conn::Connecting,
        unreleased: HashSet::new(),
        released: HashSet::new(),
    };
    driver.connecting(first);
    loop {
        let polled = tokio::select! {
            polled = driver.eventloop.poll() => Some(polled),
            changed = control.changed() => {
                if changed.is_err() {
                    return;
                }
                None
            }
        };
        let Some(polled) = polled else {
            let order = *control.borrow_and_update();
            match order {
                Control::Stop => return,
                Control::MoveTo(_, node) => driver.reconnect(node, "moved by the harness").await,
                Control::Run => {}
            }
            continue;
        };
        match polled {
            Ok(rumqttc::v5::Event::Incoming(packet)) => driver.incoming(packet).await,
            Ok(rumqttc::v5::Event::Outgoing(Outgoing::Publish(pkid))) => {
                driver.report(Event::Sent { pkid });
            }
            Ok(rumqttc::v5::Event::Outgoing(_)) => {}
            Err(error) => {
                let stopping = matches!(*control.borrow(), Control::Stop);
                if stopping {
                    return;
                }
                if let rumqttc::v5::ConnectionError::ConnectionRefused(code) = &error {
                    // rumqttc turns a refusing CONNACK into this error: a definite no.
                    driver.refused(*code);
                }
                if !driver.options.reconnect {
                    driver.ended(&error.to_string());
                    return;
                }
                let node = driver.nodes.random();
                driver.reconnect(node, &error.to_string()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Where the current connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// CONNECT sent or about to be, not answered.
    Connecting,
    /// Accepted by its CONNACK.
    Connected,
    /// Refused, or closed by the broker's DISCONNECT (already reported).
    Ended,
}

/// The state of one session's event loop between polls.
struct Driver {
    eventloop: EventLoop,
    client: AsyncClient,
    options: SessionOptions,
    nodes: NodeView,
    tx: mpsc::UnboundedSender<Event>,
    /// The current connection's number.
    conn: u64,
    state: Conn,
    /// QoS 2 packet ids received and not yet released, for this session.
    unreleased: HashSet<u16>,
    /// Released ones whose PUBCOMP may not have reached the broker: it may send PUBREL again.
    released: HashSet<u16>,
}

impl Driver {
    fn report(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// A new connection to `node` begins.
    fn connecting(&mut self, node: Target) {
        self.conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        self.state = Conn::Connecting;
        self.report(Event::Connecting {
            conn: self.conn,
            node,
        });
    }

    /// Ends the current connection (`why`) and points the event loop at `node`, same
    /// session. What rumqttc read from the old connection and has not handed out yet is
    /// reported first, as the old connection's; then the old connection is reported
    /// closed, or abandoned if its CONNECT was never answered (its outcome unknown).
    async fn reconnect(&mut self, node: Target, why: &str) {
        while let Some(event) = self.eventloop.state.events.pop_front() {
            if let rumqttc::v5::Event::Incoming(packet) = event {
                self.incoming(packet).await;
            }
        }
        self.ended(why);
        self.eventloop.clean();
        restore_unreleased(&mut self.eventloop, self.unreleased.union(&self.released));
        self.eventloop.state.events.clear();
        self.eventloop.options = mqtt_options(&self.options, node.addr);
        self.connecting(node);
    }

    fn refused(&mut self, code: rumqttc::v5::mqttbytes::v5::ConnectReturnCode) {
        if self.state == Conn::Connecting {
            tracing::debug!(conn = self.conn, ?code, "CONNECT refused");
            self.state = Conn::Ended;
            self.report(Event::ConnAck {
                conn: self.conn,
                session_present: false,
                ok: false,
            });
        }
    }

    /// Reports the end of the current connection, once.
    fn ended(&mut self, why: &str) {
        let (conn, error) = (self.conn, why.to_owned());
        match self.state {
            Conn::Connected => self.report(Event::Closed { conn, error }),
            Conn::Connecting => self.report(Event::Abandoned { conn, error }),
            Conn::Ended => {}
        }
        self.state = Conn::Ended;
    }

    async fn incoming(&mut self, packet: Packet) {
        let conn = self.conn;
        match packet {
            Packet::ConnAck(ack) => {
                let ok = ack.code == rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success;
                // A refused CONNECT says nothing about the session.
                if ok && !ack.session_present {
                    self.unreleased.clear();
                    self.released.clear();
                }
                self.state = if ok { Conn::Connected } else { Conn::Ended };
                self.report(Event::ConnAck {
                    conn,
                    session_present: ack.session_present,
                    ok,
                });
            }
            Packet::Publish(publish) => {
                self.released.remove(&publish.pkid);
                let discard = publish.qos == QoS::ExactlyOnce
                    && !self.unreleased.insert(publish.pkid)
                    && publish.dup;
                let _ = self.client.ack(&publish).await;
                if !discard {
                    self.report(Event::Delivery { conn, publish });
                }
            }
            Packet::PubRel(rel) => {
                self.unreleased.remove(&rel.pkid);
                self.released.insert(rel.pkid);
            }
            Packet::PubAck(ack) => {
                let ok = matches!(
                    ack.reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                );
                self.report(Event::PubAck { pkid: ack.pkid, ok });
            }
            Packet::PubRec(rec) => {
                let ok = matches!(
                    rec.reason,
                    PubRecReason::Success | PubRecReason::NoMatchingSubscribers
                );
                self.report(Event::PubRec { pkid: rec.pkid, ok });
            }
            Packet::PubComp(comp) => self.report(Event::PubComp { pkid: comp.pkid }),
            Packet::SubAck(ack) => {
                let ok = ack.return_codes.iter().all(|code| {
                    matches!(
                        code,
                        rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                    )
                });
                self.report(Event::SubAck { ok });
            }
            Packet::Disconnect(disconnect) => {
                // The connection ends with the error rumqttc reports next.
                self.report(Event::Closed {
                    conn,
                    error: format!("DISCONNECT {:?}", disconnect.reason_code),
                });
                self.state = Conn::Ended;
            }
            _ => {}
        }
    }
}

/// rumqttc's `clean()` forgets the QoS 2 packet ids it has received and not yet seen
/// released (and rumqttc knows none of those whose PUBCOMP may have been lost), so the
/// PUBREL a resumed session resends (MQTT 5 §4.4) would be "unsolicited" and end the
/// connection. They are put back, as if those PUBLISHes had just arrived, and the
/// made-up events are dropped.
fn restore_unreleased<'a>(eventloop: &mut EventLoop, pkids: impl Iterator<Item = &'a u16>) {
    for &pkid in pkids {
        let mut publish = Publish::new("jepsen/restore", QoS::ExactlyOnce, Bytes::new(), None);
        publish.pkid = pkid;
        let queued = eventloop.state.events.len();
        let _ = eventloop
            .state
            .handle_incoming_packet(Packet::Publish(publish));
        eventloop.state.events.truncate(queued);
    }
}
