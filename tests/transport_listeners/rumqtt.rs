//! A rumqttc 0.25 MQTT 5.0 client over TLS with a given rustls configuration: a task
//! drives the event loop and hands each incoming packet (or the error that ended it) to
//! the test, which waits with time limits. No reconnection: a lost connection is an event.

use std::sync::Arc;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use rustls::ClientConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::WAIT;

/// An incoming packet, or why the connection ended.
type Incoming = Result<Packet, String>;

pub(crate) struct TlsClient {
    pub(crate) id: String,
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Incoming>,
    driver: JoinHandle<()>,
}

impl TlsClient {
    /// Starts connecting `id` over TLS to the node at `addr` (127.0.0.1:port).
    pub(crate) fn start(id: &str, addr: &str, config: Arc<ClientConfig>) -> TlsClient {
        let port = crate::broker_support::port_of(addr);
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (tx, events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                let incoming = match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => Ok(packet),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(e) => Err(e.to_string()),
                };
                let ended = incoming.is_err();
                if tx.send(incoming).is_err() || ended {
                    return;
                }
            }
        });
        TlsClient {
            id: id.to_string(),
            client,
            events,
            driver,
        }
    }

    async fn next(&mut self) -> Incoming {
        match timeout(WAIT, self.events.recv()).await {
            Ok(Some(incoming)) => incoming,
            Ok(None) => Err("event loop ended".into()),
            Err(_) => panic!("{}: nothing from the node within {WAIT:?}", self.id),
        }
    }

    /// Connects over TLS; panics unless the first thing to come is a successful CONNACK.
    pub(crate) async fn connected(id: &str, addr: &str, config: Arc<ClientConfig>) -> TlsClient {
        let mut client = TlsClient::start(id, addr, config);
        match client.next().await {
            Ok(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => client,
            other => panic!("{id}: expected a successful CONNACK over TLS, got {other:?}"),
        }
    }

    /// The error that ends a connection attempt that must fail (a TLS handshake).
    pub(crate) async fn refused(id: &str, addr: &str, config: Arc<ClientConfig>) -> String {
        let mut client = TlsClient::start(id, addr, config);
        match client.next().await {
            Err(e) => e,
            Ok(packet) => panic!("{id}: the connection should have failed, got {packet:?}"),
        }
    }

    pub(crate) async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap_or_else(|e| panic!("{}: SUBSCRIBE not queued: {e}", self.id));
        match self.next().await {
            Ok(Packet::SubAck(_)) => {}
            other => panic!("{}: expected SUBACK, got {other:?}", self.id),
        }
    }

    /// Publishes at QoS 1 to a topic it subscribed to; returns once the PUBACK and the
    /// message itself (QoS 1) have both come back, in either order.
    pub(crate) async fn publish_and_receive(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
            .await
            .unwrap_or_else(|e| panic!("{}: PUBLISH not queued: {e}", self.id));
        let (mut acked, mut received) = (false, false);
        while !(acked && received) {
            match self.next().await {
                Ok(Packet::PubAck(_)) => acked = true,
                Ok(Packet::Publish(p)) => {
                    assert_eq!(p.topic, topic.as_bytes(), "{}: topic", self.id);
                    assert_eq!(p.payload, payload.as_bytes(), "{}: payload", self.id);
                    assert_eq!(p.qos, QoS::AtLeastOnce, "{}: QoS", self.id);
                    received = true;
                }
                other => panic!("{}: expected PUBACK or PUBLISH, got {other:?}", self.id),
            }
        }
    }
}

impl Drop for TlsClient {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
