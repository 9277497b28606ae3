//! A bare MQTT client over TCP for the attackers, and packets built byte by byte (the
//! crate's codec refuses to encode most of what the attacks send). The broker's answers
//! are decoded with the crate's codec: an undecodable answer fails the test.

use std::num::NonZeroU16;
use std::time::Duration;

use bytes::BytesMut;
use raftmq::mqtt::{
    Ack, Codec, ConnAck, Connect, MAX_REMAINING_LENGTH, Packet, PacketId, Properties, Protocol,
    Publish, ReasonCode, RetainHandling, Subscribe, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use crate::WAIT;

/// Property identifiers used by the attacks (5.0 table 2-4).
pub(crate) mod prop {
    pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
    pub(crate) const TOPIC_ALIAS: u8 = 0x23;
    pub(crate) const USER_PROPERTY: u8 = 0x26;
}

/// A variable byte integer (§1.5.5).
pub(crate) fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A frame: first byte, remaining length, body.
pub(crate) fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    [&[first][..], &varint(body.len()), body].concat()
}

/// A length-prefixed string or binary field holding any bytes.
pub(crate) fn field(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("a field holds at most 65535 bytes");
    [&len.to_be_bytes()[..], bytes].concat()
}

/// A property list with its length in front.
pub(crate) fn props(list: &[u8]) -> Vec<u8> {
    [&varint(list.len())[..], list].concat()
}

pub(crate) fn prop_u16(id: u8, value: u16) -> Vec<u8> {
    [&[id][..], &value.to_be_bytes()].concat()
}

pub(crate) fn prop_u32(id: u8, value: u32) -> Vec<u8> {
    [&[id][..], &value.to_be_bytes()].concat()
}

pub(crate) fn user_property(key: &[u8], value: &[u8]) -> Vec<u8> {
    [&[prop::USER_PROPERTY][..], &field(key), &field(value)].concat()
}

/// The parts of a CONNECT; `properties` and each will's `properties` are the raw bytes of
/// the property section, length included (5.0 only: ignored in 3.1.1).
pub(crate) struct RawConnect {
    pub(crate) protocol: Protocol,
    pub(crate) client_id: Vec<u8>,
    pub(crate) properties: Vec<u8>,
    /// Topic, payload, will property section.
    pub(crate) will: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    pub(crate) username: Option<Vec<u8>>,
}

impl RawConnect {
    /// Clean start, no properties, no will, no user name.
    pub(crate) fn new(protocol: Protocol, client_id: Vec<u8>) -> Self {
        RawConnect {
            protocol,
            client_id,
            properties: props(&[]),
            will: None,
            username: None,
        }
    }

    /// The CONNECT frame: clean start, keep alive 60 s, a QoS 0 will if any.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let v5 = self.protocol == Protocol::V5;
        let mut flags = 0x02;
        if self.will.is_some() {
            flags |= 0x04;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        let mut body = field(b"MQTT");
        body.extend([self.protocol.level(), flags, 0, 60]);
        if v5 {
            body.extend(&self.properties);
        }
        body.extend(field(&self.client_id));
        if let Some((topic, payload, properties)) = &self.will {
            if v5 {
                body.extend(properties);
            }
            body.extend(field(topic));
            body.extend(field(payload));
        }
        if let Some(username) = &self.username {
            body.extend(field(username));
        }
        frame(0x10, &body)
    }
}

/// A PUBLISH built by hand: QoS from `flags` (bits 1–2), a packet id when QoS > 0, the raw
/// property section (length included) in 5.0.
pub(crate) fn publish_bytes(
    protocol: Protocol,
    flags: u8,
    topic: &[u8],
    id: u16,
    properties: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut body = field(topic);
    if flags & 0b0110 != 0 {
        body.extend(id.to_be_bytes());
    }
    if protocol == Protocol::V5 {
        body.extend(properties);
    }
    body.extend(payload);
    frame(0x30 | flags, &body)
}

pub(crate) fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).expect("packet identifiers are non-zero")
}

/// A well-formed CONNECT: clean start or not, keep alive 60 s; a 5.0 session that is not
/// clean lives for 5 minutes after the connection.
pub(crate) fn connect_packet(protocol: Protocol, client_id: &str, clean: bool) -> Connect {
    let mut properties = Properties::default();
    if protocol == Protocol::V5 && !clean {
        properties.session_expiry_interval = Some(300);
    }
    Connect {
        protocol,
        clean_start: clean,
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties,
    }
}

/// What one read from the broker gave.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Recv {
    Packet(Packet),
    /// End of stream or reset.
    Closed,
    Timeout,
}

/// One connection to the broker.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    codec: Codec,
    buf: BytesMut,
}

impl Raw {
    pub(crate) async fn open(addr: &str, protocol: Protocol) -> Raw {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("TCP connect in time")
            .expect("TCP connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Raw {
            stream,
            codec: Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5),
            buf: BytesMut::new(),
        }
    }

    /// Opens and connects; returns the CONNACK, which must accept.
    pub(crate) async fn connect_with(addr: &str, connect: Connect) -> (Raw, ConnAck) {
        let mut raw = Raw::open(addr, connect.protocol).await;
        raw.send(&Packet::Connect(Box::new(connect))).await;
        match raw.recv(WAIT).await {
            Recv::Packet(Packet::ConnAck(ack)) if ack.reason == ReasonCode::Success => (raw, ack),
            other => panic!("expected a successful CONNACK, got {other:?}"),
        }
    }

    /// A clean-start connection.
    pub(crate) async fn connect(addr: &str, protocol: Protocol, client_id: &str) -> Raw {
        Raw::connect_with(addr, connect_packet(protocol, client_id, true))
            .await
            .0
    }

    /// Writes bytes as they are. A broker that already closed makes this fail, which the
    /// attacks ignore: what counts is what the broker answered.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub(crate) async fn send(&mut self, packet: &Packet) {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(packet, &mut bytes)
            .unwrap_or_else(|e| panic!("encode {packet:?}: {e}"));
        self.write(&bytes)
            .await
            .unwrap_or_else(|e| panic!("send {packet:?}: {e}"));
    }

    /// The next packet within `within`.
    pub(crate) async fn recv(&mut self, within: Duration) -> Recv {
        let deadline = Instant::now() + within;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => panic!("the broker sent an undecodable packet: {e}"),
            }
            self.buf.reserve(64 * 1024);
            match timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Recv::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Recv::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet, which must come within [`WAIT`].
    pub(crate) async fn expect(&mut self, what: &str) -> Packet {
        match self.recv(WAIT).await {
            Recv::Packet(packet) => packet,
            other => panic!("expected {what}, got {other:?}"),
        }
    }

    pub(crate) async fn expect_publish(&mut self) -> Publish {
        match self.expect("PUBLISH").await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Reads until the broker closes the connection, which it must within [`WAIT`];
    /// returns the reason of the DISCONNECT it sent first, if any.
    pub(crate) async fn end(&mut self, why: &str) -> Option<ReasonCode> {
        let mut reason = None;
        loop {
            match self.recv(WAIT).await {
                Recv::Closed => return reason,
                Recv::Packet(Packet::Disconnect(d)) if reason.is_none() => reason = Some(d.reason),
                other => panic!("{why}: expected the connection to end, got {other:?}"),
            }
        }
    }

    /// For a refused CONNECT: the reason of the CONNACK sent before the close, if any.
    pub(crate) async fn refused_connect(&mut self, why: &str) -> Option<ReasonCode> {
        let mut reason = None;
        loop {
            match self.recv(WAIT).await {
                Recv::Closed => return reason,
                Recv::Packet(Packet::ConnAck(ack)) if reason.is_none() => {
                    assert!(ack.reason.is_error(), "{why}: CONNECT accepted: {ack:?}");
                    reason = Some(ack.reason);
                }
                other => panic!("{why}: expected the connection to end, got {other:?}"),
            }
        }
    }

    /// PINGREQ answered by PINGRESP, and nothing else first.
    pub(crate) async fn ping(&mut self) {
        self.send(&Packet::PingReq).await;
        match self.expect("PINGRESP").await {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Subscribes to `filters` at QoS 1 with packet id 1; the SUBACK.
    pub(crate) async fn subscribe(&mut self, filters: &[String]) -> Vec<ReasonCode> {
        let options = SubscriptionOptions {
            qos: raftmq::mqtt::QoS::AtLeastOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        };
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            filters: filters.iter().map(|f| (f.clone(), options)).collect(),
            properties: Properties::default(),
        }))
        .await;
        match self.expect("SUBACK").await {
            Packet::SubAck(ack) if ack.packet_id == pid(1) => ack.reasons,
            other => panic!("expected SUBACK 1, got {other:?}"),
        }
    }

    pub(crate) async fn puback(&mut self, id: PacketId) {
        self.send(&Packet::PubAck(Ack::new(id))).await;
    }
}
