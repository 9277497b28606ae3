//! A bare MQTT client over any byte stream, for what a library client cannot do here:
//! speak after a PROXY header, show which TLS certificate the node presented, and read the
//! reason of the DISCONNECT a draining node sends. Packets are encoded and decoded with the
//! crate's own codec, which is checked against the specs and rumqttc elsewhere.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use raftmq::mqtt::{
    Ack, Codec, ConnAck, Connect, MAX_REMAINING_LENGTH, Packet, Properties, Protocol, Publish, QoS,
    ReasonCode, RetainHandling, Subscribe, SubscriptionOptions,
};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::WAIT;

/// A connection's byte stream, whatever it goes through.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// What one read from the node gave.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Recv {
    Packet(Packet),
    /// The node closed the connection (end of stream, reset, or a TLS alert).
    Closed,
    /// Nothing within the time asked.
    Timeout,
}

/// A TCP connection to `addr`, nothing sent yet.
pub(crate) async fn tcp(addr: &str) -> TcpStream {
    let stream = timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("TCP connect in time")
        .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    stream
}

/// A TLS connection to the node at `addr` (verified as 127.0.0.1), or the handshake error.
pub(crate) async fn tls(
    addr: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = tcp(addr).await;
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .unwrap_or_else(|_| panic!("TLS handshake with {addr} neither done nor failed"))
}

/// The certificate the node presented on `stream`.
pub(crate) fn server_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presented a certificate")
        .clone()
        .into_owned()
}

/// A CONNECT with keep alive 60 s; `session_expiry` makes a 5.0 session persistent (and
/// turns clean start off).
pub(crate) fn connect_packet(
    protocol: Protocol,
    client_id: &str,
    session_expiry: Option<u32>,
) -> Connect {
    Connect {
        protocol,
        clean_start: session_expiry.is_none(),
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties {
            session_expiry_interval: session_expiry,
            ..Properties::default()
        },
    }
}

/// One MQTT connection, driven packet by packet.
pub(crate) struct Wire {
    stream: Box<dyn Io>,
    codec: Codec,
    buf: BytesMut,
    next_id: u16,
    /// PUBLISHes that arrived while the test waited for something else.
    backlog: VecDeque<Publish>,
}

impl Wire {
    /// A client on `stream` (already through any PROXY header or TLS handshake) that will
    /// speak `protocol`.
    pub(crate) fn new(stream: impl Io + 'static, protocol: Protocol) -> Wire {
        Wire {
            stream: Box::new(stream),
            codec: Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5),
            buf: BytesMut::new(),
            next_id: 0,
            backlog: VecDeque::new(),
        }
    }

    /// Sends `connect` and returns what came back: a CONNACK, or the close (no CONNACK).
    pub(crate) async fn try_connect(&mut self, connect: Connect) -> Option<ConnAck> {
        // A node that refuses the connection may already have closed it.
        if self
            .write(&Packet::Connect(Box::new(connect)))
            .await
            .is_err()
        {
            return None;
        }
        match self.recv(WAIT).await {
            Recv::Packet(Packet::ConnAck(connack)) => Some(connack),
            Recv::Closed => None,
            other => panic!("expected CONNACK or a close, got {other:?}"),
        }
    }

    /// Connects; panics unless the CONNACK is a success.
    pub(crate) async fn connect(&mut self, connect: Connect) -> ConnAck {
        let id = connect.client_id.clone();
        let connack = self
            .try_connect(connect)
            .await
            .unwrap_or_else(|| panic!("{id}: closed without CONNACK"));
        assert_eq!(connack.reason, ReasonCode::Success, "{id}: {connack:?}");
        connack
    }

    /// A connected client on `stream`, clean start.
    pub(crate) async fn connected(stream: impl Io + 'static, client_id: &str) -> Wire {
        let mut wire = Wire::new(stream, Protocol::V5);
        wire.connect(connect_packet(Protocol::V5, client_id, None))
            .await;
        wire
    }

    async fn write(&mut self, packet: &Packet) -> std::io::Result<()> {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(packet, &mut bytes)
            .unwrap_or_else(|e| panic!("encode {packet:?}: {e}"));
        self.stream.write_all(&bytes).await?;
        self.stream.flush().await
    }

    async fn send(&mut self, packet: &Packet) {
        self.write(packet)
            .await
            .unwrap_or_else(|e| panic!("send {packet:?}: {e}"));
    }

    fn next_id(&mut self) -> NonZeroU16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        NonZeroU16::new(self.next_id).expect("never zero")
    }

    /// Reads the next packet, waiting at most `within`.
    pub(crate) async fn recv(&mut self, within: Duration) -> Recv {
        let deadline = Instant::now() + within;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => panic!("the node sent an undecodable packet: {e}"),
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Recv::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Recv::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next packet other than a PUBLISH (those go to the backlog).
    async fn expect_control(&mut self, what: &str) -> Packet {
        loop {
            match self.recv(WAIT).await {
                Recv::Packet(Packet::Publish(publish)) => self.backlog.push_back(publish),
                Recv::Packet(packet) => return packet,
                other => panic!("expected {what}, got {other:?}"),
            }
        }
    }

    /// Subscribes to `filter` at QoS 1; panics unless granted.
    pub(crate) async fn subscribe(&mut self, filter: &str) {
        let packet_id = self.next_id();
        let options = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        };
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            filters: vec![(filter.to_string(), options)],
            properties: Properties::default(),
        }))
        .await;
        match self.expect_control("SUBACK").await {
            Packet::SubAck(ack) if ack.packet_id == packet_id => assert!(
                ack.reasons.iter().all(|r| !r.is_error()),
                "SUBSCRIBE {filter} refused: {ack:?}"
            ),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes at QoS 1 and waits for a successful PUBACK.
    pub(crate) async fn publish(&mut self, topic: &str, payload: &[u8]) {
        let packet_id = self.next_id();
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.to_string(),
            packet_id: Some(packet_id),
            properties: Properties::default(),
            payload: Bytes::copy_from_slice(payload),
        }))
        .await;
        match self.expect_control("PUBACK").await {
            Packet::PubAck(ack) if ack.packet_id == packet_id => assert!(
                !ack.reason.is_error(),
                "PUBLISH to {topic} refused: {ack:?}"
            ),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// The next PUBLISH within [`WAIT`], acknowledged if QoS 1.
    pub(crate) async fn expect_publish(&mut self) -> Publish {
        let publish = match self.backlog.pop_front() {
            Some(publish) => publish,
            None => match self.recv(WAIT).await {
                Recv::Packet(Packet::Publish(publish)) => publish,
                other => panic!("expected PUBLISH, got {other:?}"),
            },
        };
        if let Some(id) = publish.packet_id {
            self.send(&Packet::PubAck(Ack::new(id))).await;
        }
        publish
    }

    /// Fails if any packet arrives (or the connection closes) within `quiet`.
    pub(crate) async fn expect_silence(&mut self, quiet: Duration, why: &str) {
        assert!(self.backlog.is_empty(), "{why}: got {:?}", self.backlog);
        match self.recv(quiet).await {
            Recv::Timeout => {}
            other => panic!("{why}: expected nothing for {quiet:?}, got {other:?}"),
        }
    }

    /// Round trip: PINGREQ answered by PINGRESP shows the connection is alive and served.
    pub(crate) async fn ping(&mut self) {
        self.send(&Packet::PingReq).await;
        match self.expect_control("PINGRESP").await {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Waits up to `within` for the node to close the connection; returns the reason of a
    /// DISCONNECT that came first, if any. Any other packet fails the test.
    pub(crate) async fn expect_closed_within(&mut self, within: Duration) -> Option<ReasonCode> {
        let deadline = Instant::now() + within;
        let mut reason = None;
        loop {
            match self
                .recv(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Recv::Closed => return reason,
                Recv::Packet(Packet::Disconnect(d)) if reason.is_none() => reason = Some(d.reason),
                Recv::Packet(other) => panic!("expected the connection to close, got {other:?}"),
                Recv::Timeout => panic!("the connection stayed open for {within:?}"),
            }
        }
    }
}

/// The local address of a stream, to compare with the `via` the node reports.
pub(crate) fn local_addr(stream: &TcpStream) -> SocketAddr {
    stream.local_addr().expect("local address")
}
