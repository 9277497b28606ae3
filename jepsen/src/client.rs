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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::seq::IndexedRandom;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PubRecReason, Publish};
use rumqttc::v5::{AsyncClient, EventLoop, MqttOptions};
use tokio::sync::{mpsc, watch};

/// What a session reports.
#[derive(Debug)]
pub enum Event {
    /// A connection attempt to `node` (index into the node list) begins.
    Connecting {
        conn: u64,
        node: usize,
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
}

/// How a session connects.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub client_id: String,
    pub clean_start: bool,
    /// Session expiry interval, s.
    pub expiry: u32,
    pub keep_alive: Duration,
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
    /// Drop the connection and connect to this node (generation counter, node index).
    MoveTo(u64, usize),
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
    /// Starts a session on node `first` of `nodes`.
    pub fn start(options: SessionOptions, nodes: Arc<Vec<SocketAddr>>, first: usize) -> Session {
        let (client, eventloop) = AsyncClient::new(mqtt_options(&options, nodes[first]), 256);
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

    /// Drops the connection and connects to node `node` with the same session state.
    pub fn move_to(&self, node: usize) {
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
    mut eventloop: EventLoop,
    client: AsyncClient,
    options: SessionOptions,
    nodes: Arc<Vec<SocketAddr>>,
    first: usize,
    tx: mpsc::UnboundedSender<Event>,
    mut control: watch::Receiver<Control>,
) {
    let mut conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let _ = tx.send(Event::Connecting { conn, node: first });
    // QoS 2 packet ids received and not yet released, for this session.
    let mut unreleased: HashSet<u16> = HashSet::new();
    // Released ones whose PUBCOMP may not have reached the broker: it may send PUBREL again.
    let mut released: HashSet<u16> = HashSet::new();
    let mut connected = false;
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => Some(polled),
            changed = control.changed() => {
                if changed.is_err() {
                    return;
                }
                None
            }
        };
        let Some(polled) = polled else {
            match *control.borrow_and_update() {
                Control::Stop => return,
                Control::MoveTo(_, node) => {
                    if connected {
                        let _ = tx.send(Event::Closed {
                            conn,
                            error: "moved by the harness".into(),
                        });
                    }
                    eventloop.clean();
                    restore_unreleased(&mut eventloop, unreleased.union(&released));
                    eventloop.options = mqtt_options(&options, nodes[node]);
                    connected = false;
                    conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send(Event::Connecting { conn, node });
                }
                Control::Run => {}
            }
            continue;
        };
        match polled {
            Ok(rumqttc::v5::Event::Incoming(packet)) => match packet {
                Packet::ConnAck(ack) => {
                    let ok = ack.code == rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success;
                    // A refused CONNECT says nothing about the session.
                    if ok && !ack.session_present {
                        unreleased.clear();
                        released.clear();
                    }
                    connected = ok;
                    let _ = tx.send(Event::ConnAck {
                        conn,
                        session_present: ack.session_present,
                        ok,
                    });
                }
                Packet::Publish(publish) => {
                    released.remove(&publish.pkid);
                    let discard = publish.qos == QoS::ExactlyOnce
                        && !unreleased.insert(publish.pkid)
                        && publish.dup;
                    let _ = client.ack(&publish).await;
                    if !discard {
                        let _ = tx.send(Event::Delivery { conn, publish });
                    }
                }
                Packet::PubRel(rel) => {
                    unreleased.remove(&rel.pkid);
                    released.insert(rel.pkid);
                }
                Packet::PubAck(ack) => {
                    let ok = matches!(
                        ack.reason,
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                    );
                    let _ = tx.send(Event::PubAck { pkid: ack.pkid, ok });
                }
                Packet::PubRec(rec) => {
                    let ok = matches!(
                        rec.reason,
                        PubRecReason::Success | PubRecReason::NoMatchingSubscribers
                    );
                    let _ = tx.send(Event::PubRec { pkid: rec.pkid, ok });
                }
                Packet::PubComp(comp) => {
                    let _ = tx.send(Event::PubComp { pkid: comp.pkid });
                }
                Packet::SubAck(ack) => {
                    let ok = ack.return_codes.iter().all(|code| {
                        matches!(
                            code,
                            rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                        )
                    });
                    let _ = tx.send(Event::SubAck { ok });
                }
                Packet::Disconnect(disconnect) => {
                    let _ = tx.send(Event::Closed {
                        conn,
                        error: format!("DISCONNECT {:?}", disconnect.reason_code),
                    });
                    connected = false;
                }
                _ => {}
            },
            Ok(rumqttc::v5::Event::Outgoing(Outgoing::Publish(pkid))) => {
                let _ = tx.send(Event::Sent { pkid });
            }
            Ok(rumqttc::v5::Event::Outgoing(_)) => {}
            Err(error) => {
                if connected {
                    let _ = tx.send(Event::Closed {
                        conn,
                        error: error.to_string(),
                    });
                } else {
                    let _ = tx.send(Event::ConnAck {
                        conn,
                        session_present: false,
                        ok: false,
                    });
                }
                connected = false;
                if matches!(*control.borrow(), Control::Stop) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let node = (0..nodes.len())
                    .collect::<Vec<_>>()
                    .choose(&mut rand::rng())
                    .copied()
                    .unwrap_or(0);
                eventloop.clean();
                restore_unreleased(&mut eventloop, unreleased.union(&released));
                eventloop.options = mqtt_options(&options, nodes[node]);
                conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(Event::Connecting { conn, node });
            }
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
