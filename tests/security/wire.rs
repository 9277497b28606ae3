//! A bare MQTT client, for what the library clients cannot do here: connect from another
//! loopback address (127.0.0.2, for per-address throttling and network ACL rules) and drop
//! its socket without a DISCONNECT right after sending a will. Packets are encoded and
//! decoded with the crate's own codec, checked against the specs and rumqttc elsewhere.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU16;

use bytes::{Bytes, BytesMut};
use raftmq::mqtt::{
    Ack, Codec, ConnAck, Connect, MAX_REMAINING_LENGTH, Packet, Properties, Protocol, Publish, QoS,
    ReasonCode, Will,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::WAIT;

/// The second loopback address clients come from.
pub(crate) const OTHER_ADDRESS: &str = "127.0.0.2";

/// A CONNECT (clean start, keep alive 60 s) with optional credentials and will.
pub(crate) fn connect_packet(
    protocol: Protocol,
    client_id: &str,
    credentials: Option<(&str, &str)>,
    will: Option<(&str, &str)>,
) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: will.map(|(topic, payload)| Will {
            topic: topic.to_string(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: credentials.map(|(user, _)| user.to_string()),
        password: credentials.map(|(_, password)| Bytes::copy_from_slice(password.as_bytes())),
        properties: Properties::default(),
    }
}

/// One connection, driven packet by packet.
pub(crate) struct Wire {
    stream: TcpStream,
    codec: Codec,
    buf: BytesMut,
    next_id: u16,
}

impl Wire {
    /// A TCP connection to `addr` from `from` (any free port), nothing sent yet.
    pub(crate) async fn open(addr: &str, from: &str, protocol: Protocol) -> Wire {
        let server: SocketAddr = addr.parse().expect("host:port");
        let local = SocketAddr::new(from.parse::<IpAddr>().expect("an address"), 0);
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind(local)
            .unwrap_or_else(|e| panic!("bind {local}: {e}"));
        let stream = timeout(WAIT, socket.connect(server))
            .await
            .expect("TCP connect in time")
            .unwrap_or_else(|e| panic!("TCP connect from {local} to {server}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Wire {
            stream,
            codec: Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5),
            buf: BytesMut::new(),
            next_id: 0,
        }
    }

    /// Writes `bytes` as they are (a PROXY header before the CONNECT).
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `connect`; the CONNACK.
    pub(crate) async fn connect(&mut self, connect: Connect) -> ConnAck {
        let id = connect.client_id.clone();
        self.send(&Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Some(Packet::ConnAck(ack)) => ack,
            other => panic!("{id}: expected CONNACK, got {other:?}"),
        }
    }

    /// Opens a connection from `from` and connects; panics unless accepted.
    pub(crate) async fn connected(addr: &str, from: &str, connect: Connect) -> Wire {
        let id = connect.client_id.clone();
        let mut wire = Wire::open(addr, from, connect.protocol).await;
        let ack = wire.connect(connect).await;
        assert_eq!(ack.reason, ReasonCode::Success, "{id} from {from}: {ack:?}");
        wire
    }

    async fn send(&mut self, packet: &Packet) {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(packet, &mut bytes)
            .unwrap_or_else(|e| panic!("encode {packet:?}: {e}"));
        self.stream
            .write_all(&bytes)
            .await
            .unwrap_or_else(|e| panic!("send {packet:?}: {e}"));
    }

    /// The next packet within [`WAIT`]; `None` if the node closed the connection.
    async fn recv(&mut self) -> Option<Packet> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(e) => panic!("the node sent an undecodable packet: {e}"),
            }
            let mut chunk = [0u8; 4096];
            match timeout(WAIT, self.stream.read(&mut chunk)).await {
                Err(_) => panic!("nothing from the node within {WAIT:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Publishes at QoS 1, not retained; the PUBACK's reason.
    pub(crate) async fn publish(&mut self, topic: &str, payload: &str) -> ReasonCode {
        self.publish_with(topic, payload, QoS::AtLeastOnce, false)
            .await
    }

    /// Publishes at QoS 1 or 2 and completes the flow: the PUBACK's or PUBREC's reason.
    /// A PUBREC with an error ends a 5.0 flow; any other (3.1.1 has no error PUBREC)
    /// goes on with PUBREL, which must be answered with PUBCOMP.
    pub(crate) async fn publish_with(
        &mut self,
        topic: &str,
        payload: &str,
        qos: QoS,
        retain: bool,
    ) -> ReasonCode {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let packet_id = NonZeroU16::new(self.next_id).expect("never zero");
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.to_string(),
            packet_id: Some(packet_id),
            properties: Properties::default(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        }))
        .await;
        match (qos, self.recv().await) {
            (QoS::AtLeastOnce, Some(Packet::PubAck(ack))) if ack.packet_id == packet_id => {
                ack.reason
            }
            (QoS::ExactlyOnce, Some(Packet::PubRec(rec))) if rec.packet_id == packet_id => {
                if !rec.reason.is_error() {
                    self.send(&Packet::PubRel(Ack::new(packet_id))).await;
                    match self.recv().await {
                        Some(Packet::PubComp(comp)) if comp.packet_id == packet_id => {}
                        other => panic!("expected PUBCOMP for {topic}, got {other:?}"),
                    }
                }
                rec.reason
            }
            (_, other) => panic!("expected the {qos:?} ack for {topic}, got {other:?}"),
        }
    }

    /// Closes the socket without DISCONNECT, as the kernel does for a killed process: to
    /// the node, a lost connection.
    pub(crate) fn drop_abruptly(self) {
        drop(self.stream);
    }
}
