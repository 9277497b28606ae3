//! A rumqttc 5.0 client for the API tests: a task drives its event loop and reports
//! messages and the end of the connection (with the server's DISCONNECT reason) on a
//! channel the test waits on.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions, StateError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::WAIT;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Got {
    SubAck,
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    /// The server's DISCONNECT, with its reason code.
    Disconnected(u8),
    /// The connection ended without a DISCONNECT.
    Ended(String),
}

pub(crate) struct Mqtt {
    pub(crate) client: AsyncClient,
    events: mpsc::UnboundedReceiver<Got>,
    driver: JoinHandle<()>,
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Mqtt {
    /// Connects `id` to the node at `addr` (clean start, and a session of `expiry`
    /// seconds); panics unless accepted.
    pub(crate) async fn connect(id: &str, addr: &str, expiry: u32) -> Mqtt {
        let port = crate::broker_support::port_of(addr);
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_start(true);
        options.set_session_expiry_interval(Some(expiry));
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (tx, mut events) = mpsc::unbounded_channel();
        let (connack_tx, connack) = tokio::sync::oneshot::channel();
        let driver = tokio::spawn(async move {
            let mut connack_tx = Some(connack_tx);
            loop {
                let got = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if let Some(tx) = connack_tx.take() {
                            let _ = tx.send(ack.code as u8);
                        }
                        continue;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => Got::Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.to_vec(),
                    },
                    Ok(Event::Incoming(Packet::SubAck(_))) => Got::SubAck,
                    Ok(Event::Incoming(Packet::Disconnect(d))) => {
                        Got::Disconnected(d.reason_code as u8)
                    }
                    Ok(_) => continue,
                    // rumqttc reports the server's DISCONNECT as the error ending the loop.
                    Err(ConnectionError::MqttState(StateError::ServerDisconnect {
                        reason_code,
                        ..
                    })) => Got::Disconnected(reason_code as u8),
                    Err(e) => Got::Ended(e.to_string()),
                };
                let end = matches!(got, Got::Disconnected(_) | Got::Ended(_));
                if tx.send(got).is_err() || end {
                    return;
                }
            }
        });
        let code = timeout(WAIT, connack)
            .await
            .unwrap_or_else(|_| panic!("{id}: no CONNACK within {WAIT:?}"));
        match code {
            Ok(0) => {}
            other => {
                let ended = events.try_recv();
                panic!("{id}: not connected: {other:?} {ended:?}")
            }
        }
        Mqtt {
            client,
            events,
            driver,
        }
    }

    /// Subscribes and waits for the SUBACK (sent once the subscription is committed).
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("SUBSCRIBE queued");
        assert_eq!(self.next().await, Got::SubAck, "SUBACK for {filter}");
    }

    /// The next event, within `WAIT`.
    pub(crate) async fn next(&mut self) -> Got {
        match timeout(WAIT, self.events.recv()).await {
            Ok(Some(got)) => got,
            Ok(None) => Got::Ended("event loop gone".into()),
            Err(_) => panic!("nothing from the node within {WAIT:?}"),
        }
    }
}
