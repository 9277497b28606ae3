//! One bench client connection on the crate's own codec: opening it (source address,
//! TCP_NODELAY, TLS, CONNECT/CONNACK, all within one deadline), and a loop step that
//! reads, writes what was queued and wakes on a timer or the coordinator's signal.
//!
//! Packets are queued into one buffer and written together at the next step, so a batch
//! of PUBLISHes or of acknowledgements costs one write; nothing is allocated per message.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_rustls::TlsConnector;

use super::BenchError;
use super::args::ClientArgs;
use super::limits::is_open_file_limit;
use crate::mqtt::{
    Codec, ConnAck, Connect, DecodeError, Disconnect, EncodeError, Packet, PacketType, Properties,
    Protocol, ReasonCode,
};
use crate::transport::Stream;

/// Seconds of keep-alive every client asks for; it pings after half of it without
/// writing (idle connections and QoS 0 subscribers write nothing else).
const KEEP_ALIVE: u16 = 60;

/// Session expiry a persistent 5.0 session asks for.
const PERSISTENT_EXPIRY: u32 = 3600;

/// The largest packet a client accepts: room for the largest payload the bench sends.
const MAX_INCOMING_PACKET: usize = 65 * 1024 * 1024;

/// What the coordinator tells every connection's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Clients are connecting; publishers wait.
    Setup,
    /// Publishers send until the deadline.
    Run { deadline: Instant },
    /// Every connection disconnects.
    Stop,
}

/// Why a client failed; [`ClientError::label`] groups them in the summary.
#[derive(Debug, Error)]
pub(crate) enum ClientError {
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
    #[error("no {0} before the deadline")]
    Timeout(&'static str),
    #[error("CONNECT refused: {0:?}")]
    Refused(ReasonCode),
    #[error("SUBSCRIBE refused: {0:?}")]
    SubscribeRefused(ReasonCode),
    #[error("the server sent DISCONNECT: {0:?}")]
    Disconnected(ReasonCode),
    #[error("the server closed the connection")]
    Closed,
    #[error("undecodable packet from the server: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    #[error("unexpected {0} from the server")]
    Unexpected(PacketType),
}

fn code(reason: ReasonCode) -> String {
    format!("{reason:?} (0x{:02x})", reason.as_u8())
}

impl ClientError {
    /// The reason under which the summary counts this failure.
    pub(crate) fn label(&self) -> String {
        match self {
            ClientError::Io(e) | ClientError::Tls(e) if is_open_file_limit(e) => {
                "open-file limit (EMFILE/ENFILE)".to_string()
            }
            ClientError::Io(e) => format!("I/O {:?}", e.kind()),
            ClientError::Tls(e) => format!("TLS: {e}"),
            ClientError::Timeout(step) => format!("timeout: {step}"),
            ClientError::Refused(r) => format!("CONNACK {}", code(*r)),
            ClientError::SubscribeRefused(r) => format!("SUBACK {}", code(*r)),
            ClientError::Disconnected(r) => format!("DISCONNECT {}", code(*r)),
            ClientError::Closed => "closed by the server".to_string(),
            ClientError::Decode(_) => "malformed packet from the server".to_string(),
            ClientError::Encode(_) => "cannot encode".to_string(),
            ClientError::Unexpected(t) => format!("unexpected {t}"),
        }
    }

    pub(crate) fn is_open_file_limit(&self) -> bool {
        matches!(self, ClientError::Io(e) | ClientError::Tls(e) if is_open_file_limit(e))
    }
}

/// Where clients connect, resolved and loaded once for all of them.
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    source_ips: u32,
    pub(crate) timeout: Duration,
    pub(crate) protocol: Protocol,
    clean: bool,
    prefix: String,
}

impl Endpoint {
    pub(crate) async fn new(args: &ClientArgs) -> Result<Endpoint, BenchError> {
        let timeout = Duration::from_secs_f64(args.connect_timeout);
        let lookup = tokio::net::lookup_host((args.host.as_str(), args.port));
        let addr = tokio::time::timeout(timeout, lookup)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
            .map_err(|source| BenchError::Resolve {
                host: args.host.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| BenchError::Resolve {
                host: args.host.clone(),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
        if args.source_ips > 1 && !matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
            return Err(BenchError::Option {
                option: "source-ips",
                reason: format!("only for an IPv4 loopback broker, not {}", addr.ip()),
            });
        }
        let tls = match &args.ca {
            Some(ca) if args.tls => Some(tls_connector(ca, &args.host)?),
            _ => None,
        };
        Ok(Endpoint {
            addr,
            tls,
            source_ips: args.source_ips,
            timeout,
            protocol: args.mqtt_version.protocol(),
            clean: !args.persistent,
            prefix: args.client_prefix.clone(),
        })
    }

    /// The CONNECT of client `name` (`pub-3`, `conn-17`).
    pub(crate) fn connect_packet(&self, name: &str) -> Packet {
        let mut properties = Properties::default();
        if self.protocol == Protocol::V5 && !self.clean {
            properties.session_expiry_interval = Some(PERSISTENT_EXPIRY);
        }
        Packet::Connect(Box::new(Connect {
            protocol: self.protocol,
            clean_start: self.clean,
            keep_alive: KEEP_ALIVE,
            client_id: format!("{}-{name}", self.prefix),
            will: None,
            username: None,
            password: None,
            properties,
        }))
    }

    /// Opens the byte stream of the `index`th client: its source address, TCP, then TLS.
    async fn open(
        &self,
        index: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Stream, ClientError> {
        let socket = match self.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if self.source_ips > 1 {
            // 127.0.0.1 ..= 127.0.0.N, crossing into 127.0.1.x past 255.
            let offset = 1 + (index as u32 % self.source_ips);
            let source = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + offset);
            socket.bind(SocketAddr::new(source.into(), 0))?;
        }
        let stream = tokio::time::timeout_at(deadline, socket.connect(self.addr))
            .await
            .map_err(|_| ClientError::Timeout("TCP connection"))??;
        stream.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(stream)),
            Some((connector, name)) => {
                let tls =
                    tokio::time::timeout_at(deadline, connector.connect(name.clone(), stream))
                        .await
                        .map_err(|_| ClientError::Timeout("TLS handshake"))?
                        .map_err(ClientError::Tls)?;
                Ok(Box::new(tls))
            }
        }
    }
}

fn tls_connector(
    ca: &std::path::Path,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), BenchError> {
    let error = |message: String| BenchError::Ca {
        path: ca.to_path_buf(),
        message,
    };
    let pem = std::fs::read(ca).map_err(|e| error(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| error(format!("not PEM certificates: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| error(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(error("no certificate in the file".to_string()));
    }
    // One provider named here, as on the node: rustls refuses to guess between two.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| BenchError::Option {
        option: "host",
        reason: format!("{host:?} cannot be a TLS server name: {e}"),
    })?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// Why [`Connection::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Bytes arrived: take the packets with [`Connection::next_packet`].
    Input,
    /// Some of the queued bytes went out.
    Output,
    /// The time given to `wait` came.
    Timer,
    /// The phase changed (and is not [`Phase::Stop`]).
    Phase,
    /// [`Phase::Stop`], or the coordinator is gone.
    Stop,
}

/// An open MQTT connection, after its CONNACK.
pub(crate) struct Connection {
    reader: ReadHalf<Stream>,
    writer: WriteHalf<Stream>,
    codec: Codec,
    inbox: BytesMut,
    outbox: BytesMut,
    /// Bytes were written since the last flush (TLS keeps records until flushed).
    unflushed: bool,
    read_chunk: usize,
    keep_alive: Option<Duration>,
    /// When something was last queued: a PINGREQ is due half a keep-alive later.
    last_queued: Instant,
    timer: Pin<Box<Sleep>>,
    /// The wake-up time of a `wait` given none: one fixed instant, so the timer is not
    /// re-armed on every call.
    far_future: Instant,
}

impl Connection {
    /// Connects client `index` (named `name`), sends its CONNECT and waits for a
    /// successful CONNACK, all within the endpoint's timeout. `read_chunk` is how much the
    /// read buffer grows by: small for idle connections, large for busy ones.
    pub(crate) async fn establish(
        endpoint: &Endpoint,
        index: usize,
        name: &str,
        read_chunk: usize,
    ) -> Result<(Connection, ConnAck), ClientError> {
        let deadline = tokio::time::Instant::now() + endpoint.timeout;
        let stream = endpoint.open(index, deadline).await?;
        let (reader, writer) = tokio::io::split(stream);
        let mut conn = Connection {
            reader,
            writer,
            codec: Codec::for_protocol(endpoint.protocol, MAX_INCOMING_PACKET),
            inbox: BytesMut::new(),
            outbox: BytesMut::new(),
            unflushed: false,
            read_chunk,
            keep_alive: Some(Duration::from_secs(u64::from(KEEP_ALIVE) / 2)),
            last_queued: Instant::now(),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            far_future: Instant::now() + Duration::from_secs(30 * 24 * 3600),
        };
        conn.queue(&endpoint.connect_packet(name))?;
        let connack = tokio::time::timeout_at(deadline, conn.read_connack())
            .await
            .map_err(|_| ClientError::Timeout("CONNACK"))??;
        if connack.reason.is_error() {
            return Err(ClientError::Refused(connack.reason));
        }
        // A 5.0 server may impose its own keep-alive (0: none).
        if let Some(seconds) = connack.properties.server_keep_alive {
            conn.keep_alive = (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)) / 2);
        }
        Ok((conn, connack))
    }

    async fn read_connack(&mut self) -> Result<ConnAck, ClientError> {
        self.write_all().await?;
        loop {
            if let Some(packet) = self.next_packet()? {
                return match packet {
                    Packet::ConnAck(connack) => Ok(connack),
                    Packet::Disconnect(d) => Err(ClientError::Disconnected(d.reason)),
                    other => Err(ClientError::Unexpected(other.packet_type())),
                };
            }
            self.inbox.reserve(self.read_chunk);
            if self.reader.read_buf(&mut self.inbox).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    async fn write_all(&mut self) -> io::Result<()> {
        self.writer.write_all_buf(&mut self.outbox).await?;
        self.writer.flush().await?;
        self.unflushed = false;
        Ok(())
    }

    /// Queues `packet` for the next write.
    pub(crate) fn queue(&mut self, packet: &Packet) -> Result<(), ClientError> {
        self.codec.encode(packet, &mut self.outbox)?;
        self.last_queued = Instant::now();
        Ok(())
    }

    /// Queues `packet` and hands back its last `tail` bytes (a PUBLISH's payload is last)
    /// to be written over in place.
    pub(crate) fn queue_with_tail(
        &mut self,
        packet: &Packet,
        tail: usize,
    ) -> Result<&mut [u8], ClientError> {
        self.queue(packet)?;
        let end = self.outbox.len();
        Ok(&mut self.outbox[end.saturating_sub(tail)..])
    }

    /// Bytes queued and not yet written.
    pub(crate) fn backlog(&self) -> usize {
        self.outbox.len()
    }

    /// The next whole packet read, if one is buffered.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>, ClientError> {
        Ok(self.codec.decode(&mut self.inbox)?)
    }

    /// Reads, writes what is queued, or sleeps until `until`, whichever comes first; also
    /// wakes on a change of `phase`. Queues a PINGREQ when the keep-alive asks for one.
    pub(crate) async fn wait(
        &mut self,
        until: Option<Instant>,
        phase: &mut watch::Receiver<Phase>,
    ) -> Result<Wake, ClientError> {
        let mut wake_at = until.unwrap_or(self.far_future);
        // A connection with bytes still to write needs no ping: they are traffic.
        if let Some(every) = self.keep_alive
            && self.outbox.is_empty()
            && !self.unflushed
        {
            let ping_at = self.last_queued + every;
            if ping_at <= Instant::now() {
                self.queue(&Packet::PingReq)?;
            } else {
                wake_at = wake_at.min(ping_at);
            }
        }
        let wake_at = tokio::time::Instant::from_std(wake_at);
        if self.timer.deadline() != wake_at {
            self.timer.as_mut().reset(wake_at);
        }
        if self.inbox.capacity() - self.inbox.len() < self.read_chunk / 4 {
            self.inbox.reserve(self.read_chunk);
        }
        let writing = !self.outbox.is_empty() || self.unflushed;
        // Not biased: a flooded subscriber must still get its acknowledgements out, and a
        // publisher that always has more to write must still read.
        tokio::select! {
            read = self.reader.read_buf(&mut self.inbox) => match read? {
                0 => Err(ClientError::Closed),
                _ => Ok(Wake::Input),
            },
            written = write_some(&mut self.writer, &mut self.outbox, &mut self.unflushed), if writing => {
                written?;
                Ok(Wake::Output)
            }
            changed = phase.changed() => match changed {
                Ok(()) if *phase.borrow() != Phase::Stop => Ok(Wake::Phase),
                _ => Ok(Wake::Stop),
            },
            () = &mut self.timer => Ok(Wake::Timer),
        }
    }

    /// Sends DISCONNECT (normal) after what is queued and closes, giving up after
    /// `within`: the bench must end even when the server stopped reading.
    pub(crate) async fn close(mut self, within: Duration) {
        if self
            .queue(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .is_err()
        {
            return;
        }
        let _ = tokio::time::timeout(within, async {
            self.write_all().await?;
            self.writer.shutdown().await
        })
        .await;
    }
}

/// One write of the queued bytes, then a flush once they are all out. Cancel-safe: what
/// was written is gone from `outbox`, and `unflushed` says whether a flush is owed.
async fn write_some(
    writer: &mut WriteHalf<Stream>,
    outbox: &mut BytesMut,
    unflushed: &mut bool,
) -> io::Result<()> {
    if !outbox.is_empty() {
        if writer.write_buf(outbox).await? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        *unflushed = true;
    }
    if outbox.is_empty() && *unflushed {
        writer.flush().await?;
        *unflushed = false;
    }
    Ok(())
}
