//! A rumqttc 5.0 client for these tests: a task drives its event loop and hands every
//! incoming packet over a channel, which the test waits on with a time limit.

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::WAIT;

/// What the node sent, or how the connection ended.
#[derive(Debug)]
pub(crate) enum Got {
    Packet(Box<Packet>),
    /// Refused at CONNECT with this reason (rumqttc's name for it).
    Refused(String),
    Ended(String),
}

pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) client: AsyncClient,
    events: mpsc::UnboundedReceiver<Got>,
    driver: JoinHandle<()>,
}

impl Client {
    /// Starts connecting to `addr` (`127.0.0.1:port`) as `id`, with `credentials`.
    pub(crate) fn start(id: &str, addr: &str, credentials: Option<(&str, &str)>) -> Client {
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {addr}"));
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                let got = match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => Got::Packet(Box::new(packet)),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(ConnectionError::ConnectionRefused(code)) => {
                        Got::Refused(format!("{code:?}"))
                    }
                    Err(e) => Got::Ended(e.to_string()),
                };
                let end = matches!(got, Got::Refused(_) | Got::Ended(_));
                if tx.send(got).is_err() || end {
                    return;
                }
            }
        });
        Client {
            id: id.to_string(),
            client,
            events,
            driver,
        }
    }

    /// Connects; panics unless the CONNACK is a success.
    pub(crate) async fn connect(id: &str, addr: &str) -> Client {
        let mut client = Client::start(id, addr, None);
        match client.next().await {
            Got::Packet(packet) if matches!(*packet, Packet::ConnAck(_)) => client,
            other => panic!("{id}: expected CONNACK, got {other:?}"),
        }
    }

    /// The next thing from the node within [`WAIT`].
    pub(crate) async fn next(&mut self) -> Got {
        match tokio::time::timeout(WAIT, self.events.recv()).await {
            Ok(Some(got)) => got,
            Ok(None) => Got::Ended("event loop gone".into()),
            Err(_) => panic!("{}: nothing from the node within {WAIT:?}", self.id),
        }
    }

    /// Waits for the next packet; panics if the connection ends first.
    pub(crate) async fn next_packet(&mut self) -> Packet {
        match self.next().await {
            Got::Packet(packet) => *packet,
            other => panic!("{}: expected a packet, got {other:?}", self.id),
        }
    }

    /// Subscribes to `filter` at QoS 1 and waits for the SUBACK; its reason codes.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> Packet {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap_or_else(|e| panic!("{}: SUBSCRIBE not queued: {e}", self.id));
        loop {
            let packet = self.next_packet().await;
            if matches!(packet, Packet::SubAck(_)) {
                return packet;
            }
        }
    }

    /// Publishes `payload` to `topic` at `qos`.
    pub(crate) async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: &str) {
        self.client
            .publish(topic, qos, retain, payload.to_string())
            .await
            .unwrap_or_else(|e| panic!("{}: PUBLISH not queued: {e}", self.id));
    }

    /// Sends DISCONNECT and waits until the connection is gone.
    pub(crate) async fn disconnect(mut self) {
        self.client
            .disconnect()
            .await
            .unwrap_or_else(|e| panic!("{}: DISCONNECT not queued: {e}", self.id));
        loop {
            match self.next().await {
                Got::Packet(_) => {}
                Got::Ended(why) => {
                    assert!(!why.is_empty(), "{}: ended without a reason", self.id);
                    return;
                }
                Got::Refused(why) => panic!("{}: refused after CONNACK: {why}", self.id),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
