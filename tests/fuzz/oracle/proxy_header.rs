//! The checks of the `proxy_header` fuzz target, kept in their own file so that the workspace
//! test `tests/fuzz_regressions.rs` includes this very file by path and replays kept inputs
//! under exactly the same checks, on stable.
//!
//! An input is `[split_hi, split_lo, stream...]`: the stream is what a trusted balancer sent
//! on a PROXY listener, and it reaches `raftmq::transport::proxy::accept` in two reads, cut
//! where the first two bytes say (modulo the stream's length + 1). The checks are:
//!
//! - `accept` never panics, and fails only with the errors bytes can cause (never
//!   `Untrusted`, `Timeout` or `Io`: the peer is trusted and the in-memory stream neither
//!   waits nor fails);
//! - an accepted header is where an independent reading of the spec puts it (v2: 16 bytes
//!   plus the declared length; v1: up to the first CRLF, at most 107 bytes), and the peer it
//!   yields is the one the header's bytes name, with the TLS details of its SSL TLV;
//! - the bytes after the header are handed on unchanged: what the returned stream reads is
//!   exactly the input minus the header;
//! - a refusal fits the bytes: `Missing` only if they cannot start a header, `Closed` only
//!   if they are the start of one cut short, a too-long v1 line only without a CRLF in 107
//!   bytes, any other refusal only once the header is whole (or, for v2, from its fixed
//!   part).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use raftmq::transport::proxy::{self, ProxiedPeer, ProxyConfig, ProxyError, ProxyTls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::runtime::Runtime;

/// Bytes at the front of an input that set up the run instead of being sent.
pub(crate) const HEADER_LEN: usize = 2;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_SIGNATURE: &[u8] = b"PROXY ";
const V1_MAX_LEN: usize = 107;

/// The balancer as the socket sees it; inside the trusted network below.
const BALANCER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 40000);

thread_local! {
    // Built once per thread: a runtime per input would cost more than the parsing. Time is
    // enabled because `accept` wraps its reads in a timeout (which never fires here: the
    // in-memory stream is always ready).
    static RUNTIME: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// A connection whose bytes are all there already, handed out in the given parts: one read
/// never crosses from one part into the next, so the reader sees the bytes arrive in pieces.
/// Writes are swallowed (`accept` writes nothing; it needs the trait only).
struct Wire<'a> {
    parts: [&'a [u8]; 2],
}

impl AsyncRead for Wire<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // An empty part would read as end of stream; skip it.
        let Some(part) = this.parts.iter_mut().find(|p| !p.is_empty()) else {
            return Poll::Ready(Ok(()));
        };
        let n = part.len().min(buf.remaining());
        buf.put_slice(&part[..n]);
        *part = &part[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Whether `bytes` and `signature` agree on their common length.
fn agrees(bytes: &[u8], signature: &[u8]) -> bool {
    let n = bytes.len().min(signature.len());
    bytes[..n] == signature[..n]
}

/// Where the spec says the header at the start of `stream` ends: `Some(len)` once it is all
/// there, `None` while it may still be arriving. Only for streams that agree with a signature.
fn header_end(stream: &[u8]) -> Option<usize> {
    if agrees(stream, V2_SIGNATURE) {
        let len = stream.get(14..16)?;
        let end = 16 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        return (end <= stream.len()).then_some(end);
    }
    let window = &stream[..stream.len().min(V1_MAX_LEN)];
    window
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|cr| cr + 2)
}

/// A v1 port: decimal digits, no leading zero (the spec's grammar, stricter than `u16`'s
/// `FromStr`, which takes a leading '+').
fn v1_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    if digits && canonical {
        text.parse().ok()
    } else {
        None
    }
}

/// The peer a v1 line (between "PROXY " and "\r\n") names, read from the spec.
fn v1_peer(line: &[u8]) -> ProxiedPeer {
    let line = std::str::from_utf8(line).expect("an accepted v1 line is UTF-8");
    assert!(
        !line.contains(['\r', '\n']),
        "accepted a v1 line with a CR or LF inside"
    );
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields[..] {
        ["UNKNOWN", ..] => BALANCER,
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |text: &str| -> IpAddr {
                let ip = if family == "TCP4" {
                    text.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    text.parse::<Ipv6Addr>().map(IpAddr::V6)
                };
                ip.unwrap_or_else(|_| panic!("accepted {family} address {text:?}"))
            };
            let port =
                |text: &str| v1_port(text).unwrap_or_else(|| panic!("accepted v1 port {text:?}"));
            let (_, _) = (ip(dst), port(dport));
            SocketAddr::new(ip(src), port(sport))
        }
        _ => panic!("accepted v1 line {line:?}"),
    };
    ProxiedPeer { source, tls: None }
}

/// The TLVs in `bytes`: (type, value) pairs. An accepted header has only well-formed ones.
fn tlvs(mut bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(
            bytes.len() >= 3,
            "accepted {} bytes left over after TLVs",
            bytes.len()
        );
        let len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        assert!(
            bytes.len() >= 3 + len,
            "accepted a TLV longer than what holds it"
        );
        out.push((bytes[0], &bytes[3..3 + len]));
        bytes = &bytes[3 + len..];
    }
    out
}

/// The TLS details a PP2_TYPE_SSL value gives (spec section 2.2.5): `client` bits, `verify`,
/// then sub-TLVs, of which the last version and the last CN count.
fn ssl_details(value: &[u8]) -> ProxyTls {
    assert!(
        value.len() >= 5,
        "accepted an SSL TLV of {} bytes",
        value.len()
    );
    let client = value[0];
    let verified = u32::from_be_bytes([value[1], value[2], value[3], value[4]]) == 0;
    let text =
        |v: &[u8]| String::from_utf8(v.to_vec()).expect("an accepted SSL sub-TLV text is UTF-8");
    let mut tls = ProxyTls {
        ssl: client & 0x01 != 0,
        client_cert_verified: client & 0x06 != 0 && verified,
        client_cn: None,
        version: None,
    };
    for (kind, sub) in tlvs(&value[5..]) {
        match kind {
            0x21 => tls.version = Some(text(sub)),
            0x22 => tls.client_cn = Some(text(sub)),
            _ => {}
        }
    }
    tls
}

/// The peer a whole v2 header names, read from the spec.
fn v2_peer(header: &[u8]) -> ProxiedPeer {
    let local = ProxiedPeer {
        source: BALANCER,
        tls: None,
    };
    assert_eq!(header[12] >> 4, 2, "accepted v2 version {:#x}", header[12]);
    match header[12] & 0x0f {
        0 => return local,
        1 => {}
        command => panic!("accepted v2 command {command:#x}"),
    }
    assert!(
        header[13] & 0x0f <= 1,
        "accepted transport {:#x} on TCP",
        header[13]
    );
    let body = &header[16..];
    let (source, rest) = match header[13] >> 4 {
        // UNSPEC: the whole block is addresses of unknown shape, to be ignored.
        0 => return local,
        1 => {
            assert!(body.len() >= 12, "accepted a short IPv4 address block");
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            (SocketAddr::from((ip, port)), &body[12..])
        }
        2 => {
            assert!(body.len() >= 36, "accepted a short IPv6 address block");
            let ip: [u8; 16] = body[..16].try_into().expect("16 bytes");
            let port = u16::from_be_bytes([body[32], body[33]]);
            (SocketAddr::from((Ipv6Addr::from(ip), port)), &body[36..])
        }
        3 => {
            assert!(body.len() >= 216, "accepted a short Unix address block");
            (BALANCER, &body[216..])
        }
        family => panic!("accepted v2 address family {family:#x}"),
    };
    let tls = tlvs(rest)
        .into_iter()
        .rfind(|&(kind, _)| kind == 0x20)
        .map(|(_, value)| ssl_details(value));
    ProxiedPeer { source, tls }
}

/// Runs every check on one fuzz input (see the module documentation for its layout).
pub(crate) fn check(data: &[u8]) {
    let Some((head, stream)) = data.split_first_chunk::<HEADER_LEN>() else {
        return;
    };
    let at = usize::from(u16::from_be_bytes(*head)) % (stream.len() + 1);
    let config = ProxyConfig {
        trusted: vec!["10.0.0.0/8".parse().expect("a network")],
        // Never reached: the wire never makes `accept` wait.
        timeout: Duration::from_secs(3600),
    };
    let wire = Wire {
        parts: [&stream[..at], &stream[at..]],
    };
    let outcome = RUNTIME.with(|rt| {
        rt.block_on(async {
            let (mut rest, peer) = proxy::accept(wire, BALANCER, &config).await?;
            let mut after = Vec::new();
            rest.read_to_end(&mut after)
                .await
                .expect("an in-memory stream does not fail");
            Ok::<_, ProxyError>((peer, after))
        })
    });
    let is_v2 = agrees(stream, V2_SIGNATURE);
    let is_v1 = !is_v2 && agrees(stream, V1_SIGNATURE);
    match outcome {
        Ok((peer, after)) => {
            assert!(
                is_v1 || is_v2,
                "accepted a stream that starts with no signature"
            );
            let end = header_end(stream).expect("accepted a header that is not all there");
            let header = &stream[..end];
            let expected = if is_v2 {
                v2_peer(header)
            } else {
                v1_peer(&header[V1_SIGNATURE.len()..end - 2])
            };
            assert_eq!(
                peer, expected,
                "the peer differs from what the header names"
            );
            assert_eq!(after, &stream[end..], "the bytes after the header changed");
        }
        Err(ProxyError::Missing) => {
            assert!(
                !is_v1 && !is_v2,
                "refused as no header: a stream that may start one"
            );
        }
        Err(ProxyError::Closed) => {
            assert!(
                is_v1 || is_v2,
                "waited for more of a stream that starts no header"
            );
            assert!(
                header_end(stream).is_none(),
                "waited for more of a complete header"
            );
            assert!(
                is_v2 || stream.len() < V1_MAX_LEN,
                "waited past 107 bytes of v1"
            );
        }
        Err(ProxyError::V1(_)) => {
            assert!(is_v1, "a v1 error for a stream that is not v1");
            assert!(
                header_end(stream).is_some(),
                "a v1 error before the line was whole"
            );
        }
        Err(ProxyError::V2(_)) => assert!(is_v2, "a v2 error for a stream that is not v2"),
        Err(ProxyError::Malformed(_)) => {
            let complete = header_end(stream).is_some();
            let too_long_v1 = is_v1 && !complete && stream.len() >= V1_MAX_LEN;
            assert!(
                too_long_v1 || complete,
                "refused as malformed before it was whole"
            );
        }
        Err(e @ (ProxyError::Untrusted(_) | ProxyError::Timeout(_) | ProxyError::Io(_))) => {
            panic!("an error bytes cannot cause: {e:?}")
        }
    }
}
