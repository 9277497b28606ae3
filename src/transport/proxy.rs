//! The PROXY protocol (HAProxy's v1 text and v2 binary headers): behind a load balancer the
//! socket's peer is the balancer, and this header is how the balancer tells us who the client
//! really is — and, with v2, whether it spoke TLS and which certificate it showed.
//!
//! Only balancers in [`ProxyConfig::trusted`] may send a header, so no client can claim an
//! address it does not have; on a PROXY listener every connection must start with one, so a
//! client that bypasses the balancer is refused rather than trusted with the balancer's
//! address. Parsing is the `ppp` crate's; this module finds where the header ends, bounds how
//! much it buffers and how long it waits, and hands on the bytes read past the header.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ppp::v2::TypeLengthValues;
use ppp::{v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The longest v1 header, "\r\n" included (the spec's worst case, a TCP6 line).
const V1_MAX_LEN: usize = 107;
const V1_SIGNATURE: &[u8] = b"PROXY ";

/// PP2_TYPE_SSL and its sub-types, from the spec's section 2.2.
const PP2_TYPE_SSL: u8 = 0x20;
const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
/// Bits of the SSL TLV's `client` byte.
const PP2_CLIENT_SSL: u8 = 0x01;
const PP2_CLIENT_CERT_CONN: u8 = 0x02;
const PP2_CLIENT_CERT_SESS: u8 = 0x04;

/// An IP network, e.g. "127.0.0.0/8", "::1/128", or a bare address (a /32 or /128).
///
/// Kept in IPv6 terms, an IPv4 network as its IPv4-mapped range (10.0.0.0/8 is
/// ::ffff:10.0.0.0/104): a dual-stack listener reports IPv4 peers as mapped addresses, and
/// this way they match IPv4 networks with one comparison. It also means ::/0 covers IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network's address, host bits cleared.
    bits: u128,
    prefix: u8,
}

/// A string that is not an address or `address/prefix`.
#[derive(Debug, thiserror::Error)]
#[error("invalid IP network {0:?}: expected an address or address/prefix-length")]
pub struct InvalidIpNet(String);

impl FromStr for IpNet {
    type Err = InvalidIpNet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidIpNet(s.to_owned());
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // `u8::from_str` takes a leading '+', which no one means in a prefix length.
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok().filter(|&p| p <= max).ok_or_else(invalid)?
            }
            Some(_) => return Err(invalid()),
        };
        let prefix = prefix + (128 - max);
        Ok(IpNet {
            bits: v6_bits(addr) & mask(prefix),
            prefix,
        })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        v6_bits(ip) & mask(self.prefix) == self.bits
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = Ipv6Addr::from_bits(self.bits);
        match addr.to_ipv4_mapped() {
            Some(v4) if self.prefix >= 96 => write!(f, "{v4}/{}", self.prefix - 96),
            _ => write!(f, "{addr}/{}", self.prefix),
        }
    }
}

fn v6_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

fn mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Networks whose connections may (and on a PROXY listener must) send a header.
    pub trusted: Vec<IpNet>,
    /// How long the header may take to arrive.
    pub timeout: Duration,
}

/// What the balancer told us about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedPeer {
    /// The client's address: from the header, or the balancer's own address for a v2 LOCAL
    /// command / v1 UNKNOWN (health checks of the balancer itself).
    pub source: SocketAddr,
    /// TLS details a v2 header carries (PP2_TYPE_SSL and its sub-TLVs), if any.
    pub tls: Option<ProxyTls>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTls {
    /// The client connected to the balancer over TLS (PP2_CLIENT_SSL).
    pub ssl: bool,
    /// The client presented a certificate (PP2_CLIENT_CERT_CONN / _SESS) and the balancer
    /// verified it (verify field == 0).
    pub client_cert_verified: bool,
    /// PP2_SUBTYPE_SSL_CN: the client certificate's common name.
    pub client_cn: Option<String>,
    /// PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3".
    pub version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0} is not a trusted proxy")]
    Untrusted(SocketAddr),
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
    #[error("connection closed before the PROXY header was complete")]
    Closed,
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("invalid PROXY v1 header")]
    V1(#[source] v1::BinaryParseError),
    #[error("invalid PROXY v2 header")]
    V2(#[source] v2::ParseError),
    #[error("invalid PROXY header: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads the PROXY header at the start of a connection from `peer` (the balancer's address as
/// the socket sees it). The peer must be trusted; the header must arrive whole within
/// `config.timeout` and be valid v1 or v2 (v2 detected by its 12-byte signature, v1 by
/// "PROXY "). Bytes read past the header are not lost: the returned stream replays them first.
pub async fn accept<S>(
    mut stream: S,
    peer: SocketAddr,
    config: &ProxyConfig,
) -> Result<(Prefixed<S>, ProxiedPeer), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !config.trusted.iter().any(|net| net.contains(peer.ip())) {
        return Err(ProxyError::Untrusted(peer));
    }
    let mut buf = BytesMut::with_capacity(512);
    let len = tokio::time::timeout(config.timeout, read_header(&mut stream, &mut buf))
        .await
        .map_err(|_| ProxyError::Timeout(config.timeout))??;
    let header = &buf[..len];
    let proxied = if header.starts_with(v2::PROTOCOL_PREFIX) {
        parse_v2(header, peer)?
    } else {
        parse_v1(header, peer)?
    };
    let rest = buf.split_off(len).freeze();
    Ok((Prefixed::new(rest, stream), proxied))
}

/// Reads until `buf` holds a whole header and returns its length; `buf` may hold more.
async fn read_header<S>(stream: &mut S, buf: &mut BytesMut) -> Result<usize, ProxyError>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(len) = header_len(buf)? {
            return Ok(len);
        }
        buf.reserve(512);
        if stream.read_buf(buf).await? == 0 {
            return Err(ProxyError::Closed);
        }
    }
}

/// The length of the header at the start of `buf`, `None` while it is incomplete, or an error
/// as soon as the bytes cannot be the start of one — so data that is not a header is refused
/// after its first byte, never buffered.
fn header_len(buf: &[u8]) -> Result<Option<usize>, ProxyError> {
    if is_prefix_of(buf, v2::PROTOCOL_PREFIX) {
        // ppp checks the fixed part and compares the declared length with what we have;
        // `Incomplete`/`Partial` just mean "read more".
        return match v2::Header::try_from(buf) {
            Ok(header) => Ok(Some(header.len())),
            Err(v2::ParseError::Incomplete(_) | v2::ParseError::Partial(..)) => Ok(None),
            Err(e) => Err(ProxyError::V2(e)),
        };
    }
    if is_prefix_of(buf, V1_SIGNATURE) {
        // Found by hand rather than with ppp's partial parse, which takes some truncated lines
        // (one ending in "1 ", say) for invalid ones instead of incomplete ones.
        let window = &buf[..buf.len().min(V1_MAX_LEN)];
        return match window.windows(2).position(|w| w == b"\r\n") {
            Some(cr) => Ok(Some(cr + 2)),
            None if buf.len() >= V1_MAX_LEN => Err(ProxyError::Malformed("v1 line too long")),
            None => Ok(None),
        };
    }
    Err(ProxyError::Missing)
}

/// Whether `buf` and `signature` agree on their common length.
fn is_prefix_of(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

fn parse_v1(header: &[u8], peer: SocketAddr) -> Result<ProxiedPeer, ProxyError> {
    // ppp parses only up to the first '\r' (plus one byte), and on an UNKNOWN line it stops
    // at any "\n" field: "PROXY UNKNOWN \n\r x\r\n" passed with "x" never looked at (found
    // by fuzzing). The spec's line holds no CR or LF before its CRLF; with none, ppp's line
    // is exactly the one `header_len` found.
    let line = header.strip_suffix(b"\r\n").unwrap_or(header);
    if line.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(ProxyError::Malformed("CR or LF inside the v1 line"));
    }
    let header = v1::Header::try_from(header).map_err(ProxyError::V1)?;
    let source = match header.addresses {
        // ppp reads ports with `u16::from_str`, which takes a leading '+' ("+51000"; found by
        // fuzzing). The spec's ports are plain decimal digits and no address holds a '+'.
        v1::Addresses::Tcp4(_) | v1::Addresses::Tcp6(_) if line.contains(&b'+') => {
            return Err(ProxyError::Malformed("signed port in the v1 line"));
        }
        v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
        v1::Addresses::Tcp6(a) => SocketAddr::from((a.source_address, a.source_port)),
        v1::Addresses::Unknown => peer,
    };
    Ok(ProxiedPeer { source, tls: None })
}

fn parse_v2(header: &[u8], peer: SocketAddr) -> Result<ProxiedPeer, ProxyError> {
    let header = v2::Header::try_from(header).map_err(ProxyError::V2)?;
    let local = ProxiedPeer {
        source: peer,
        tls: None,
    };
    match (header.command, header.protocol) {
        // The spec: a LOCAL connection is the balancer's own (a health check); its address
        // block and TLVs are to be ignored.
        (v2::Command::Local, _) => return Ok(local),
        (_, v2::Protocol::Datagram) => return Err(ProxyError::Malformed("DGRAM on TCP")),
        _ => {}
    }
    let source = match header.addresses {
        v2::Addresses::IPv4(a) => SocketAddr::from((a.source_address, a.source_port)),
        v2::Addresses::IPv6(a) => SocketAddr::from((a.source_address, a.source_port)),
        // UNSPEC: the spec says to use the connection's own endpoints. A Unix socket path is
        // no address we can report either.
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => peer,
    };
    let mut tls = None;
    for tlv in header.tlvs() {
        let tlv = tlv.map_err(ProxyError::V2)?;
        if tlv.kind == PP2_TYPE_SSL {
            tls = Some(parse_ssl_tlv(&tlv.value)?);
        }
    }
    Ok(ProxiedPeer { source, tls })
}

/// The value of a PP2_TYPE_SSL TLV. ppp iterates TLVs but does not interpret this one, so its
/// fixed part (`client` u8, `verify` u32 big-endian) is read here; the sub-TLVs after it are
/// iterated with ppp.
fn parse_ssl_tlv(value: &[u8]) -> Result<ProxyTls, ProxyError> {
    let [client, v0, v1, v2, v3, sub_tlvs @ ..] = value else {
        return Err(ProxyError::Malformed("SSL TLV shorter than 5 bytes"));
    };
    let verify = u32::from_be_bytes([*v0, *v1, *v2, *v3]);
    let cert_presented = client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS) != 0;
    let mut tls = ProxyTls {
        ssl: client & PP2_CLIENT_SSL != 0,
        client_cert_verified: cert_presented && verify == 0,
        client_cn: None,
        version: None,
    };
    for sub in TypeLengthValues::from(sub_tlvs) {
        let sub = sub.map_err(ProxyError::V2)?;
        let text = || {
            String::from_utf8(sub.value.to_vec())
                .map_err(|_| ProxyError::Malformed("SSL sub-TLV is not UTF-8"))
        };
        match sub.kind {
            PP2_SUBTYPE_SSL_VERSION => tls.version = Some(text()?),
            PP2_SUBTYPE_SSL_CN => tls.client_cn = Some(text()?),
            // Cipher, signature and key algorithms: nothing here needs them.
            _ => {}
        }
    }
    Ok(tls)
}

/// `S` with some already-read bytes in front: reads return those first, then `S`'s; writes go
/// straight to `S`.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ppp::v2::WriteToHeader;
    use ppp::v2::{Builder, Command, IPv4, IPv6, Protocol, Type, TypeLengthValue, Version};
    use tokio::io::{AsyncWriteExt, DuplexStream};

    use super::*;

    const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.1 10.0.0.1 51000 1883\r\n";
    const CONNECT: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn balancer() -> SocketAddr {
        addr("10.0.0.5:40000")
    }

    fn config() -> ProxyConfig {
        let trusted = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        ProxyConfig {
            trusted,
            timeout: Duration::from_millis(200),
        }
    }

    type Accepted = Result<(Prefixed<DuplexStream>, ProxiedPeer), ProxyError>;

    /// Runs `accept` on one end of a pipe while `chunks` are written to the other, a few
    /// milliseconds apart; returns the result and the client's end, still open.
    async fn accept_chunks(chunks: Vec<Vec<u8>>) -> (Accepted, DuplexStream) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            for chunk in chunks {
                client.write_all(&chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client
        });
        let result = accept(server, balancer(), &config()).await;
        (result, writer.await.unwrap())
    }

    async fn peer_of(bytes: &[u8]) -> Result<ProxiedPeer, ProxyError> {
        Ok(accept_chunks(vec![bytes.to_vec()]).await.0?.1)
    }

    fn without_tls(source: SocketAddr) -> ProxiedPeer {
        ProxiedPeer { source, tls: None }
    }

    /// A v2 PROXY header for a TCP4 client at 192.0.2.1:51000, with `tlvs`.
    fn v2_tcp4(tlvs: &[(Type, &[u8])]) -> Vec<u8> {
        let addresses = IPv4::new([192, 0, 2, 1], [10, 0, 0, 1], 51000, 1883);
        let mut builder =
            Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, addresses);
        for (kind, value) in tlvs {
            builder = builder.write_tlv(*kind, value).unwrap();
        }
        builder.build().unwrap()
    }

    #[tokio::test]
    async fn v1_tcp4_tcp6_and_unknown() {
        let peer = peer_of(V1_TCP4).await.unwrap();
        assert_eq!(peer, without_tls(addr("192.0.2.1:51000")));
        let peer = peer_of(b"PROXY TCP6 2001:db8::1 2001:db8::2 51000 1883\r\n").await;
        assert_eq!(peer.unwrap().source, addr("[2001:db8::1]:51000"));
        let unknown_with_addresses = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        for unknown in [&b"PROXY UNKNOWN\r\n"[..], unknown_with_addresses] {
            assert_eq!(peer_of(unknown).await.unwrap().source, balancer());
        }
    }

    #[tokio::test]
    async fn v2_proxy_tcp4_tcp6_and_local() {
        let peer = peer_of(&v2_tcp4(&[])).await.unwrap();
        assert_eq!(peer, without_tls(addr("192.0.2.1:51000")));

        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let v6 = IPv6::new(src, Ipv6Addr::LOCALHOST, 51000, 1883);
        let header = Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, v6);
        let peer = peer_of(&header.build().unwrap()).await.unwrap();
        assert_eq!(peer.source, addr("[2001:db8::1]:51000"));

        let mut local = v2_tcp4(&[]);
        local[12] = 0x20; // version 2, LOCAL
        assert_eq!(peer_of(&local).await.unwrap(), without_tls(balancer()));
    }

    #[tokio::test]
    async fn v2_ssl_tlv_with_cn_and_version() {
        let mut ssl = vec![PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN, 0, 0, 0, 0];
        ssl.extend(
            TypeLengthValue::new(Type::SSLVersion, b"TLSv1.3")
                .to_bytes()
                .unwrap(),
        );
        ssl.extend(
            TypeLengthValue::new(Type::SSLCommonName, b"dev-7")
                .to_bytes()
                .unwrap(),
        );
        let header = v2_tcp4(&[(Type::NoOp, b"pad"), (Type::SSL, &ssl)]);
        let expected = ProxyTls {
            ssl: true,
            client_cert_verified: true,
            client_cn: Some("dev-7".to_owned()),
            version: Some("TLSv1.3".to_owned()),
        };
        assert_eq!(peer_of(&header).await.unwrap().tls, Some(expected));

        // A certificate the balancer could not verify, then no certificate at all.
        let unverified = [PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS, 0, 0, 0, 1];
        for value in [unverified, [PP2_CLIENT_SSL, 0, 0, 0, 0]] {
            let peer = peer_of(&v2_tcp4(&[(Type::SSL, &value)])).await;
            let tls = peer.unwrap().tls.unwrap();
            assert!(tls.ssl && !tls.client_cert_verified && tls.client_cn.is_none());
        }

        let short = peer_of(&v2_tcp4(&[(Type::SSL, &[1, 0])])).await;
        assert!(matches!(short, Err(ProxyError::Malformed(_))));
    }

    #[tokio::test]
    async fn payload_in_the_same_write_is_replayed() {
        for header in [V1_TCP4.to_vec(), v2_tcp4(&[])] {
            let (result, mut client) = accept_chunks(vec![[&header[..], CONNECT].concat()]).await;
            let (mut stream, peer) = result.unwrap();
            assert_eq!(peer.source, addr("192.0.2.1:51000"));
            client.write_all(b"more").await.unwrap();
            drop(client);
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, [CONNECT, b"more"].concat());
        }
    }

    #[tokio::test]
    async fn header_split_across_writes() {
        let v1 = [V1_TCP4, b"payload"].concat();
        // Cut after the signature's 'P', mid-address, after a space and between '\r' and '\n'.
        let cuts = [0, 1, 14, 36, 41, v1.len()];
        let chunks = cuts.windows(2).map(|w| v1[w[0]..w[1]].to_vec()).collect();
        let (result, _client) = accept_chunks(chunks).await;
        let (mut stream, peer) = result.unwrap();
        assert_eq!(peer.source, addr("192.0.2.1:51000"));
        let mut payload = [0; 7];
        stream.read_exact(&mut payload).await.unwrap();
        assert_eq!(&payload, b"payload");

        // Five-byte pieces: the first ends inside the signature.
        let v2 = v2_tcp4(&[(Type::Authority, b"broker.example")]);
        let (result, _client) = accept_chunks(v2.chunks(5).map(<[u8]>::to_vec).collect()).await;
        assert_eq!(result.unwrap().1.source, addr("192.0.2.1:51000"));
    }

    #[tokio::test]
    async fn untrusted_peer_is_refused_before_reading() {
        let (_client, server) = tokio::io::duplex(64);
        let stranger = addr("192.0.2.9:1234");
        let result = accept(server, stranger, &config()).await;
        assert!(matches!(result, Err(ProxyError::Untrusted(p)) if p == stranger));
    }

    #[tokio::test]
    async fn nothing_sent_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let start = Instant::now();
        let result = accept(server, balancer(), &config()).await;
        assert!(matches!(result, Err(ProxyError::Timeout(_))));
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(190) && elapsed < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn data_that_is_not_a_header_is_refused() {
        for data in [CONNECT, b"GET /mqtt HTTP/1.1\r\n"] {
            assert!(matches!(peer_of(data).await, Err(ProxyError::Missing)));
        }
        let bad_v1 = peer_of(b"PROXY TCP5 a b 1 2\r\n").await;
        assert!(matches!(bad_v1, Err(ProxyError::V1(_))));
        let bad_v2 = peer_of(&[v2::PROTOCOL_PREFIX, &[0x31, 0x11, 0, 0]].concat()).await;
        assert!(matches!(bad_v2, Err(ProxyError::V2(_))));

        // A header cut short by the peer closing.
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"PROXY TCP4 1.2").await.unwrap();
        drop(client);
        let result = accept(server, balancer(), &config()).await;
        assert!(matches!(result, Err(ProxyError::Closed)));
    }

    #[tokio::test]
    async fn v1_line_without_crlf_is_bounded() {
        // Refused at 107 bytes, not left to time out (the client's end stays open).
        let long = [&b"PROXY TCP4 "[..], &[b'1'; 200]].concat();
        assert!(matches!(
            peer_of(&long).await,
            Err(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn ip_net_parsing_and_contains() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();

        let loopback = net("127.0.0.0/8");
        assert!(loopback.contains(ip("127.1.2.3")) && !loopback.contains(ip("128.0.0.1")));
        assert!(
            loopback.contains(ip("::ffff:127.0.0.1")),
            "mapped IPv4 matches"
        );
        assert!(!loopback.contains(ip("::1")));

        let host = net("192.0.2.7");
        assert_eq!(host.to_string(), "192.0.2.7/32");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        assert_eq!(
            net("10.1.2.3/8").to_string(),
            "10.0.0.0/8",
            "host bits cleared"
        );
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.1")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));

        assert!(net("::1").contains(ip("::1")) && !net("::1").contains(ip("::2")));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(net("::/0").contains(ip("fe80::1")) && net("::/0").contains(ip("10.0.0.1")));
        assert_eq!(net("::ffff:10.0.0.0/104"), net("10.0.0.0/8"));

        let bad = [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
        ];
        for bad in bad
            .into_iter()
            .chain(["x/8", "10.0.0.0/8/8", "fe80::1%eth0"])
        {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} should be refused");
        }
    }
}
