//! rumqttc 0.25 clients (3.1.1 and 5.0) driven from a test: the event loop runs in a task
//! that forwards every event to the test, which waits for the ones it needs with a time
//! limit. Dropping a client (or [`C4::kill`] / [`C5::kill`]) closes the socket without a
//! DISCONNECT, as a crashed client would; `disconnect` sends one first.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use crate::broker_support::Broker;

/// How long a test waits for something that must happen.
pub(crate) const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to show that something does *not* happen.
pub(crate) const QUIET: Duration = Duration::from_millis(700);

/// Options for a 3.1.1 client of `broker`: keep alive 30 s, clean session.
pub(crate) fn v4_options(broker: &Broker, client_id: &str) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", broker.port(0));
    options.set_keep_alive(Duration::from_secs(30));
    options
}

/// Options for a 5.0 client of `broker`: keep alive 30 s, clean start, session expiry 0.
pub(crate) fn v5_options(broker: &Broker, client_id: &str) -> v5::MqttOptions {
    let mut options = v5::MqttOptions::new(client_id, "127.0.0.1", broker.port(0));
    options.set_keep_alive(Duration::from_secs(30));
    options
}

/// The topic of a received 5.0 PUBLISH as text.
pub(crate) fn topic5(publish: &p5::Publish) -> String {
    String::from_utf8(publish.topic.to_vec()).expect("topic is UTF-8")
}

/// A 3.1.1 rumqttc client and the events of its connection.
pub(crate) struct C4 {
    pub(crate) client: rumqttc::AsyncClient,
    pub(crate) connack: rumqttc::ConnAck,
    events: mpsc::UnboundedReceiver<Result<rumqttc::Event, String>>,
    backlog: VecDeque<rumqttc::Publish>,
    task: JoinHandle<()>,
}

impl C4 {
    /// Connects; panics unless the broker accepts.
    pub(crate) async fn connect(options: rumqttc::MqttOptions) -> C4 {
        let id = options.client_id();
        C4::try_connect(options)
            .await
            .unwrap_or_else(|e| panic!("3.1.1 client {id:?} could not connect: {e}"))
    }

    /// Connects and returns the client, or the error the event loop reported.
    pub(crate) async fn try_connect(options: rumqttc::MqttOptions) -> Result<C4, String> {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
        let (tx, mut events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(event) => {
                        let last = matches!(
                            event,
                            rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)
                        );
                        if tx.send(Ok(event)).is_err() || last {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        let first = match timeout_at(Instant::now() + WAIT, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => Err("event loop ended".to_string()),
            Err(_) => Err("no CONNACK in time".to_string()),
        };
        match first {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(connack))) => Ok(C4 {
                client,
                connack,
                events,
                backlog: VecDeque::new(),
                task,
            }),
            Ok(other) => {
                task.abort();
                Err(format!("expected CONNACK, got {other:?}"))
            }
            Err(e) => {
                task.abort();
                Err(e)
            }
        }
    }

    /// The next event; PUBLISHes are kept in the backlog when `keep_publishes`.
    async fn event(&mut self, deadline: Instant, what: &str) -> rumqttc::Event {
        match timeout_at(deadline, self.events.recv()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(e))) => panic!("connection failed while waiting for {what}: {e}"),
            Ok(None) => panic!("event loop ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }

    /// Waits for an incoming packet matching `pick`, keeping PUBLISHes seen meanwhile.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&rumqttc::Packet) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let rumqttc::Event::Incoming(packet) = self.event(deadline, what).await {
                if let Some(found) = pick(&packet) {
                    return found;
                }
                if let rumqttc::Packet::Publish(publish) = packet {
                    self.backlog.push_back(publish);
                }
            }
        }
    }

    /// Subscribes and returns the granted QoS, or `None` when the broker refused.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
        qos: rumqttc::QoS,
    ) -> Option<rumqttc::QoS> {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("queue SUBSCRIBE");
        self.wait_for("SUBACK", |p| match p {
            rumqttc::Packet::SubAck(ack) => Some(match ack.return_codes[0] {
                rumqttc::SubscribeReasonCode::Success(q) => Some(q),
                rumqttc::SubscribeReasonCode::Failure => None,
            }),
            _ => None,
        })
        .await
    }

    /// Publishes and waits until the broker has acknowledged (QoS 1: PUBACK; QoS 2: PUBCOMP;
    /// QoS 0: until it is written).
    pub(crate) async fn publish(
        &mut self,
        topic: &str,
        qos: rumqttc::QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .expect("queue PUBLISH");
        match qos {
            rumqttc::QoS::AtMostOnce => {
                let deadline = Instant::now() + WAIT;
                loop {
                    match self.event(deadline, "outgoing PUBLISH").await {
                        rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_)) => return,
                        rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                            self.backlog.push_back(p)
                        }
                        _ => {}
                    }
                }
            }
            rumqttc::QoS::AtLeastOnce => {
                self.wait_for("PUBACK", |p| {
                    matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
                })
                .await
            }
            rumqttc::QoS::ExactlyOnce => {
                self.wait_for("PUBCOMP", |p| {
                    matches!(p, rumqttc::Packet::PubComp(_)).then_some(())
                })
                .await
            }
        }
    }

    /// The next PUBLISH received, within [`WAIT`].
    pub(crate) async fn next_publish(&mut self) -> rumqttc::Publish {
        if let Some(publish) = self.backlog.pop_front() {
            return publish;
        }
        self.wait_for("PUBLISH", |p| match p {
            rumqttc::Packet::Publish(publish) => Some(publish.clone()),
            _ => None,
        })
        .await
    }

    /// The next PUBLISH if one arrives within `within`.
    pub(crate) async fn try_next_publish(&mut self, within: Duration) -> Option<rumqttc::Publish> {
        if let Some(publish) = self.backlog.pop_front() {
            return Some(publish);
        }
        let deadline = Instant::now() + within;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => return None,
                Ok(Some(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))))) => {
                    return Some(p);
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("connection failed while waiting for PUBLISH: {e}"),
                Ok(None) => panic!("event loop ended while waiting for PUBLISH"),
            }
        }
    }

    /// Fails if a PUBLISH arrives within `quiet` (or the connection fails).
    pub(crate) async fn expect_no_publish(&mut self, quiet: Duration, why: &str) {
        if let Some(publish) = self.backlog.pop_front() {
            panic!("{why}: unexpected {publish:?}");
        }
        let deadline = Instant::now() + quiet;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => return,
                Ok(Some(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))))) => {
                    panic!("{why}: unexpected {p:?}")
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("{why}: connection failed: {e}"),
                Ok(None) => panic!("{why}: event loop ended"),
            }
        }
    }

    /// Acknowledges a PUBLISH (with manual acks).
    pub(crate) async fn ack(&self, publish: &rumqttc::Publish) {
        self.client.ack(publish).await.expect("queue ack");
    }

    /// Sends DISCONNECT and waits until the connection is closed.
    pub(crate) async fn disconnect(mut self) {
        self.client.disconnect().await.expect("queue DISCONNECT");
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("DISCONNECT not sent within {WAIT:?}"),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("connection failed before DISCONNECT: {e}"),
                Ok(None) => break,
            }
        }
        let _ = (&mut self.task).await;
    }

    /// Closes the socket without DISCONNECT (a crash, as far as the broker can tell).
    pub(crate) async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for C4 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A 5.0 rumqttc client and the events of its connection.
pub(crate) struct C5 {
    pub(crate) client: v5::AsyncClient,
    pub(crate) connack: p5::ConnAck,
    events: mpsc::UnboundedReceiver<Result<v5::Event, String>>,
    backlog: VecDeque<p5::Publish>,
    task: JoinHandle<()>,
}

impl C5 {
    /// Connects; panics unless the broker accepts.
    pub(crate) async fn connect(options: v5::MqttOptions) -> C5 {
        let id = options.client_id();
        C5::try_connect(options)
            .await
            .unwrap_or_else(|e| panic!("5.0 client {id:?} could not connect: {e}"))
    }

    /// Connects and returns the client, or the error the event loop reported.
    pub(crate) async fn try_connect(options: v5::MqttOptions) -> Result<C5, String> {
        let (client, mut eventloop) = v5::AsyncClient::new(options, 100);
        let (tx, mut events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(event) => {
                        let last =
                            matches!(event, v5::Event::Outgoing(rumqttc::Outgoing::Disconnect));
                        if tx.send(Ok(event)).is_err() || last {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        let first = match timeout_at(Instant::now() + WAIT, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => Err("event loop ended".to_string()),
            Err(_) => Err("no CONNACK in time".to_string()),
        };
        match first {
            Ok(v5::Event::Incoming(p5::Packet::ConnAck(connack))) => Ok(C5 {
                client,
                connack,
                events,
                backlog: VecDeque::new(),
                task,
            }),
            Ok(other) => {
                task.abort();
                Err(format!("expected CONNACK, got {other:?}"))
            }
            Err(e) => {
                task.abort();
                Err(e)
            }
        }
    }

    async fn event(&mut self, deadline: Instant, what: &str) -> v5::Event {
        match timeout_at(deadline, self.events.recv()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(e))) => panic!("connection failed while waiting for {what}: {e}"),
            Ok(None) => panic!("event loop ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }

    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&p5::Packet) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let v5::Event::Incoming(packet) = self.event(deadline, what).await {
                if let Some(found) = pick(&packet) {
                    return found;
                }
                if let p5::Packet::Publish(publish) = packet {
                    self.backlog.push_back(publish);
                }
            }
        }
    }

    /// Subscribes with full options and returns the SUBACK's reason codes.
    pub(crate) async fn subscribe_filters(
        &mut self,
        filters: Vec<p5::Filter>,
        properties: Option<p5::SubscribeProperties>,
    ) -> Vec<p5::SubscribeReasonCode> {
        match properties {
            Some(props) => self
                .client
                .subscribe_many_with_properties(filters, props)
                .await
                .expect("queue SUBSCRIBE"),
            None => self
                .client
                .subscribe_many(filters)
                .await
                .expect("queue SUBSCRIBE"),
        }
        self.wait_for("SUBACK", |p| match p {
            p5::Packet::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes to one filter; panics unless granted.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: v5::mqttbytes::QoS) {
        let codes = self
            .subscribe_filters(vec![p5::Filter::new(filter, qos)], None)
            .await;
        assert!(
            matches!(codes[0], p5::SubscribeReasonCode::Success(_)),
            "SUBSCRIBE {filter} refused: {codes:?}"
        );
    }

    /// Publishes and waits until the broker has acknowledged (QoS 1: PUBACK; QoS 2: PUBCOMP;
    /// QoS 0: until it is written).
    pub(crate) async fn publish(
        &mut self,
        topic: &str,
        qos: v5::mqttbytes::QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) {
        self.publish_with(
            topic,
            qos,
            retain,
            payload,
            p5::PublishProperties::default(),
        )
        .await
    }

    /// [`C5::publish`] with properties.
    pub(crate) async fn publish_with(
        &mut self,
        topic: &str,
        qos: v5::mqttbytes::QoS,
        retain: bool,
        payload: impl Into<Bytes>,
        properties: p5::PublishProperties,
    ) {
        self.client
            .publish_with_properties(topic, qos, retain, payload.into(), properties)
            .await
            .expect("queue PUBLISH");
        match qos {
            v5::mqttbytes::QoS::AtMostOnce => {
                let deadline = Instant::now() + WAIT;
                loop {
                    match self.event(deadline, "outgoing PUBLISH").await {
                        v5::Event::Outgoing(rumqttc::Outgoing::Publish(_)) => return,
                        v5::Event::Incoming(p5::Packet::Publish(p)) => self.backlog.push_back(p),
                        _ => {}
                    }
                }
            }
            v5::mqttbytes::QoS::AtLeastOnce => {
                self.wait_for("PUBACK", |p| {
                    matches!(p, p5::Packet::PubAck(_)).then_some(())
                })
                .await
            }
            v5::mqttbytes::QoS::ExactlyOnce => {
                self.wait_for("PUBCOMP", |p| {
                    matches!(p, p5::Packet::PubComp(_)).then_some(())
                })
                .await
            }
        }
    }

    /// The next PUBLISH received, within [`WAIT`].
    pub(crate) async fn next_publish(&mut self) -> p5::Publish {
        if let Some(publish) = self.backlog.pop_front() {
            return publish;
        }
        self.wait_for("PUBLISH", |p| match p {
            p5::Packet::Publish(publish) => Some(publish.clone()),
            _ => None,
        })
        .await
    }

    /// The next PUBLISH if one arrives within `within`.
    pub(crate) async fn try_next_publish(&mut self, within: Duration) -> Option<p5::Publish> {
        if let Some(publish) = self.backlog.pop_front() {
            return Some(publish);
        }
        let deadline = Instant::now() + within;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => return None,
                Ok(Some(Ok(v5::Event::Incoming(p5::Packet::Publish(p))))) => return Some(p),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("connection failed while waiting for PUBLISH: {e}"),
                Ok(None) => panic!("event loop ended while waiting for PUBLISH"),
            }
        }
    }

    /// Fails if a PUBLISH arrives within `quiet` (or the connection fails).
    pub(crate) async fn expect_no_publish(&mut self, quiet: Duration, why: &str) {
        if let Some(publish) = self.backlog.pop_front() {
            panic!("{why}: unexpected {publish:?}");
        }
        let deadline = Instant::now() + quiet;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => return,
                Ok(Some(Ok(v5::Event::Incoming(p5::Packet::Publish(p))))) => {
                    panic!("{why}: unexpected {p:?}")
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("{why}: connection failed: {e}"),
                Ok(None) => panic!("{why}: event loop ended"),
            }
        }
    }

    /// Acknowledges a PUBLISH (with manual acks).
    pub(crate) async fn ack(&self, publish: &p5::Publish) {
        self.client.ack(publish).await.expect("queue ack");
    }

    /// Sends DISCONNECT (normal disconnection) and waits until the connection is closed.
    pub(crate) async fn disconnect(mut self) {
        self.client.disconnect().await.expect("queue DISCONNECT");
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("DISCONNECT not sent within {WAIT:?}"),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("connection failed before DISCONNECT: {e}"),
                Ok(None) => break,
            }
        }
        let _ = (&mut self.task).await;
    }

    /// Closes the socket without DISCONNECT (a crash, as far as the broker can tell).
    pub(crate) async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for C5 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// For tests of raftmq's own settings (or where Mosquitto knowingly departs from the spec):
/// true, after saying so on stderr, when the broker under test is Mosquitto.
pub(crate) fn skip_on_mosquitto(broker: &Broker, why: &str) -> bool {
    if broker.is_mosquitto() {
        eprintln!("not checked against Mosquitto: {why}");
    }
    broker.is_mosquitto()
}

/// A rumqttc client that subscribes to `filter` and can check that it is still served.
pub(crate) async fn bystander(broker: &Broker, id: &str, filter: &str) -> C5 {
    let mut client = C5::connect(v5_options(broker, id)).await;
    client.subscribe(filter, Q5::AtLeastOnce).await;
    client
}

/// The bystander publishes to itself and gets it back, skipping messages of others.
pub(crate) async fn still_served(client: &mut C5, topic: &str) {
    client
        .publish(topic, Q5::AtLeastOnce, false, "still here")
        .await;
    loop {
        let got = client.next_publish().await;
        if got.payload.as_ref() == b"still here" {
            return;
        }
    }
}
