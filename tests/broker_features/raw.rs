//! A bare MQTT client over a tokio `TcpStream`, for what rumqttc 0.25 cannot express: not
//! answering a packet, choosing packet identifiers and DUP flags, Topic Aliases from the
//! client, reading every DISCONNECT form (rumqttc cannot read a DISCONNECT of remaining
//! length 0 or 1), keep alives under 5 s in 5.0, and packets that break the rules.
//!
//! Well-formed packets are encoded and every received packet is decoded with the crate's
//! own codec (`raftmq::mqtt`), which is checked against the specs and rumqttc elsewhere;
//! ill-formed input is written as raw bytes with [`Raw::write_bytes`].

use std::num::NonZeroU16;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use raftmq::mqtt::{
    Ack, Codec, ConnAck, Connect, Disconnect, MAX_REMAINING_LENGTH, Packet, PacketId, Properties,
    Protocol, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions,
    Will,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::client::WAIT;

/// What one read from the broker gave. Returned by value once per read in a test, so the
/// size of a packet inline does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Recv {
    Packet(Packet),
    /// The broker closed the connection (end of stream or reset).
    Closed,
    /// Nothing within the time asked.
    Timeout,
}

/// One connection to the broker, driven packet by packet.
pub(crate) struct Raw {
    stream: TcpStream,
    codec: Codec,
    buf: BytesMut,
    next_id: u16,
}

/// A packet identifier from a non-zero literal.
pub(crate) fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).expect("packet identifiers are non-zero")
}

/// A CONNECT with a clean start, keep alive 60 s and nothing else.
pub(crate) fn connect_packet(protocol: Protocol, client_id: &str) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// A will message without properties.
pub(crate) fn will(topic: &str, payload: &str, qos: QoS) -> Will {
    Will {
        topic: topic.to_string(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain: false,
        properties: Properties::default(),
    }
}

/// A PUBLISH without properties; `id` is used for QoS 1 and 2 only (0 there: any, for
/// [`Raw::publish_complete`] to choose).
pub(crate) fn publish(topic: &str, qos: QoS, id: u16, payload: &[u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_string(),
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(id.max(1))),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// Subscription options with this QoS and the defaults otherwise.
pub(crate) fn sub_options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: RetainHandling::SendAtSubscribe,
    }
}

/// The bytes of a packet in `protocol`, as the codec encodes it.
pub(crate) fn encode(protocol: Protocol, packet: &Packet) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5)
        .encode(packet, &mut bytes)
        .unwrap_or_else(|e| panic!("encode {packet:?}: {e}"));
    bytes.to_vec()
}

/// A frame built by hand (for what the codec refuses to encode): the first byte, the
/// remaining length, the body.
pub(crate) fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(body);
    out
}

/// A UTF-8 string field (or any bytes in its place): two length bytes, then the bytes.
pub(crate) fn string_field(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("a string field is at most 65535 bytes");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

impl Raw {
    /// A TCP connection on which nothing has been sent yet. `protocol` is what the client
    /// will speak (it decides how the broker's packets are decoded).
    pub(crate) async fn open(addr: &str, protocol: Protocol) -> Raw {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("TCP connect in time")
            .expect("TCP connect to the broker");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Raw {
            stream,
            codec: Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5),
            buf: BytesMut::new(),
            next_id: 0,
        }
    }

    /// Opens a connection, sends `connect` and returns the CONNACK, whatever its reason.
    pub(crate) async fn connect_with(addr: &str, connect: Connect) -> (Raw, ConnAck) {
        let mut raw = Raw::open(addr, connect.protocol).await;
        raw.send(&Packet::Connect(Box::new(connect))).await;
        match raw.recv(WAIT).await {
            Recv::Packet(Packet::ConnAck(connack)) => (raw, connack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Opens a connection and connects; panics unless the CONNACK is a success.
    pub(crate) async fn connect(addr: &str, connect: Connect) -> (Raw, ConnAck) {
        let (raw, connack) = Raw::connect_with(addr, connect).await;
        assert_eq!(connack.reason, ReasonCode::Success, "CONNACK: {connack:?}");
        (raw, connack)
    }

    /// A clean-start connection with default settings.
    pub(crate) async fn connect_simple(addr: &str, protocol: Protocol, client_id: &str) -> Raw {
        Raw::connect(addr, connect_packet(protocol, client_id))
            .await
            .0
    }

    /// The next packet identifier this client has not used yet (1, 2, ...).
    pub(crate) fn next_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    pub(crate) async fn send(&mut self, packet: &Packet) {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(packet, &mut bytes)
            .unwrap_or_else(|e| panic!("encode {packet:?}: {e}"));
        self.write_bytes(&bytes)
            .await
            .unwrap_or_else(|e| panic!("send {packet:?}: {e}"));
    }

    /// Writes bytes as they are; fails when the broker has already closed the connection.
    pub(crate) async fn write_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads the next packet, waiting at most `within`. A packet the codec cannot decode
    /// fails the test: the broker must only send well-formed packets.
    pub(crate) async fn recv(&mut self, within: Duration) -> Recv {
        let deadline = Instant::now() + within;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => panic!(
                    "the broker sent an undecodable packet: {e} ({:?})",
                    self.buf
                ),
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Recv::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(
                        self.buf.is_empty(),
                        "connection closed inside a packet: {:?}",
                        self.buf
                    );
                    return Recv::Closed;
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next packet, which must come within [`WAIT`].
    pub(crate) async fn expect_packet(&mut self, what: &str) -> Packet {
        match self.recv(WAIT).await {
            Recv::Packet(packet) => packet,
            other => panic!("expected {what}, got {other:?}"),
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub(crate) async fn expect_publish(&mut self) -> Publish {
        match self.expect_packet("PUBLISH").await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Waits `quiet` and fails if any packet arrives or the connection closes meanwhile:
    /// the way to show that something is *not* sent.
    pub(crate) async fn expect_silence(&mut self, quiet: Duration, why: &str) {
        match self.recv(quiet).await {
            Recv::Timeout => {}
            other => panic!("{why}: expected nothing for {quiet:?}, got {other:?}"),
        }
    }

    /// Subscribes to each filter with the options given and returns the SUBACK.
    pub(crate) async fn subscribe_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        properties: Properties,
    ) -> SubAck {
        let id = self.next_id();
        let subscribe = Subscribe {
            packet_id: pid(id),
            filters: filters.iter().map(|(f, o)| (f.to_string(), *o)).collect(),
            properties,
        };
        self.send(&Packet::Subscribe(subscribe)).await;
        match self.expect_packet("SUBACK").await {
            Packet::SubAck(suback) => {
                assert_eq!(suback.packet_id, pid(id), "SUBACK for our SUBSCRIBE");
                suback
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Subscribes to one filter; panics unless granted.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let suback = self
            .subscribe_with(&[(filter, sub_options(qos))], Properties::default())
            .await;
        assert!(
            !suback.reasons[0].is_error(),
            "SUBSCRIBE {filter} refused: {suback:?}"
        );
    }

    /// Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP); returns the
    /// reason code of the PUBACK or PUBREC.
    pub(crate) async fn publish_complete(&mut self, mut publish: Publish) -> ReasonCode {
        if publish.qos != QoS::AtMostOnce {
            publish.packet_id = Some(pid(self.next_id()));
        }
        let id = publish.packet_id;
        let qos = publish.qos;
        self.send(&Packet::Publish(publish)).await;
        match qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => match self.expect_packet("PUBACK").await {
                Packet::PubAck(ack) if Some(ack.packet_id) == id => ack.reason,
                other => panic!("expected PUBACK {id:?}, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                let rec = match self.expect_packet("PUBREC").await {
                    Packet::PubRec(ack) if Some(ack.packet_id) == id => ack,
                    other => panic!("expected PUBREC {id:?}, got {other:?}"),
                };
                if rec.reason.is_error() {
                    return rec.reason;
                }
                self.send(&Packet::PubRel(Ack::new(rec.packet_id))).await;
                match self.expect_packet("PUBCOMP").await {
                    Packet::PubComp(ack) if ack.packet_id == rec.packet_id => {}
                    other => panic!("expected PUBCOMP {id:?}, got {other:?}"),
                }
                rec.reason
            }
        }
    }

    /// Acknowledges a received QoS 1 PUBLISH.
    pub(crate) async fn puback(&mut self, publish: &Publish) {
        let id = publish
            .packet_id
            .expect("a QoS 1 PUBLISH has a packet identifier");
        self.send(&Packet::PubAck(Ack::new(id))).await;
    }

    /// Round trip through the broker: PINGREQ must be answered by PINGRESP (any PUBLISH
    /// arriving first fails the test). Shows that the connection is alive and served.
    pub(crate) async fn ping(&mut self) {
        self.send(&Packet::PingReq).await;
        match self.expect_packet("PINGRESP").await {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Sends a DISCONNECT (normal disconnection in 3.1.1; `reason` in 5.0) and closes.
    pub(crate) async fn disconnect(mut self, reason: ReasonCode) {
        self.send(&Packet::Disconnect(Disconnect::new(reason)))
            .await;
        let _ = self.stream.shutdown().await;
    }

    /// Waits for the broker to close the connection, reading what it sends first. Returns
    /// the reason of the DISCONNECT that came before the close, if any; any other packet
    /// fails the test.
    pub(crate) async fn expect_closed(&mut self, why: &str) -> Option<ReasonCode> {
        self.expect_closed_within(WAIT, why).await
    }

    /// [`Raw::expect_closed`] with a time limit of `within`.
    pub(crate) async fn expect_closed_within(
        &mut self,
        within: Duration,
        why: &str,
    ) -> Option<ReasonCode> {
        let deadline = Instant::now() + within;
        let mut reason = None;
        loop {
            match self
                .recv(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Recv::Closed => return reason,
                Recv::Packet(Packet::Disconnect(d)) if reason.is_none() => reason = Some(d.reason),
                Recv::Packet(other) => {
                    panic!("{why}: expected the connection to close, got {other:?}")
                }
                Recv::Timeout => panic!("{why}: the connection stayed open for {within:?}"),
            }
        }
    }

    /// 5.0: the broker must send DISCONNECT with `reason` and then close.
    pub(crate) async fn expect_disconnect(&mut self, reason: ReasonCode, why: &str) {
        let got = self.expect_closed(why).await;
        assert_eq!(
            got,
            Some(reason),
            "{why}: DISCONNECT reason before the close"
        );
    }
}
