//! A bare MQTT 5.0 connection for what rumqttc 0.25 cannot read: a DISCONNECT of remaining
//! length 1 (reason code, no property length), which §3.14.2.2.1 allows and rumqttc's
//! `Disconnect::read` refuses. Packets are encoded and decoded with the crate's own codec
//! (`raftmq::mqtt`), which is checked against the spec and rumqttc in other tests.

use std::time::Duration;

use bytes::BytesMut;
use raftmq::mqtt::{
    Codec, ConnAck, Connect, DEFAULT_MAX_PACKET_SIZE, Packet, Properties, Protocol,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub(crate) struct RawV5 {
    stream: TcpStream,
    codec: Codec,
    buf: BytesMut,
}

/// What a read gave.
#[derive(Debug)]
pub(crate) enum Read {
    Packet(Box<Packet>),
    /// End of stream or reset.
    Closed,
    Timeout,
}

impl RawV5 {
    /// Connects with a clean start and returns the CONNACK.
    pub(crate) async fn connect(addr: &str, client_id: &str) -> (RawV5, ConnAck) {
        let stream = timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connecting to {addr} timed out"))
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        let mut raw = RawV5 {
            stream,
            codec: Codec::for_protocol(Protocol::V5, DEFAULT_MAX_PACKET_SIZE),
            buf: BytesMut::new(),
        };
        let connect = Connect {
            protocol: Protocol::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        let mut out = BytesMut::new();
        raw.codec
            .encode(&Packet::Connect(Box::new(connect)), &mut out)
            .expect("encode CONNECT");
        raw.stream
            .write_all(&out)
            .await
            .unwrap_or_else(|e| panic!("{client_id}: writing CONNECT: {e}"));
        match raw.read(Duration::from_secs(10)).await {
            Read::Packet(packet) => match *packet {
                Packet::ConnAck(connack) => (raw, connack),
                other => panic!("{client_id}: expected CONNACK, got {other:?}"),
            },
            other => panic!("{client_id}: no CONNACK: {other:?}"),
        }
    }

    /// The next packet from the broker, within `wait`.
    pub(crate) async fn read(&mut self, wait: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(packet)) => return Read::Packet(Box::new(packet)),
                Ok(None) => {}
                Err(e) => panic!("the broker sent an undecodable packet: {e:?}"),
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Read::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Read::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
