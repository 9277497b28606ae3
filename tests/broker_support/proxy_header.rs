//! PROXY protocol headers as a balancer sends them (built with the `ppp` crate, not the
//! node's parser): v1 lines, and v2 with the PP2_TYPE_SSL TLV that names a certificate.

use std::net::{Ipv4Addr, SocketAddrV4};

use ppp::v2::WriteToHeader;
use ppp::v2::{Builder, Command, IPv4, Protocol as Transport, Type, TypeLengthValue, Version};

/// A v1 header for a TCP4 client at `source`.
pub(crate) fn v1_header(source: SocketAddrV4) -> Vec<u8> {
    format!(
        "PROXY TCP4 {} 127.0.0.1 {} 1883\r\n",
        source.ip(),
        source.port()
    )
    .into_bytes()
}

/// A v2 PROXY header for a TCP4 client at `source`, with a PP2_TYPE_SSL TLV if `ssl` is
/// given.
pub(crate) fn v2_header(source: SocketAddrV4, ssl: Option<&[u8]>) -> Vec<u8> {
    let addresses = IPv4::new(*source.ip(), Ipv4Addr::LOCALHOST, source.port(), 1883);
    let mut header =
        Builder::with_addresses(Version::Two | Command::Proxy, Transport::Stream, addresses);
    if let Some(value) = ssl {
        header = header.write_tlv(Type::SSL, value).expect("SSL TLV");
    }
    header.build().expect("v2 header")
}

/// The value of a PP2_TYPE_SSL TLV: the client spoke TLS to the balancer and showed a
/// certificate named `cn`, which the balancer verified (`verify` 0) or not.
pub(crate) fn ssl_tlv(cn: &str, verify: u32) -> Vec<u8> {
    const PP2_CLIENT_SSL: u8 = 0x01;
    const PP2_CLIENT_CERT_CONN: u8 = 0x02;
    let mut value = vec![PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN];
    value.extend(verify.to_be_bytes());
    for (kind, text) in [(Type::SSLVersion, "TLSv1.3"), (Type::SSLCommonName, cn)] {
        let sub = TypeLengthValue::new(kind, text.as_bytes());
        value.extend(sub.to_bytes().expect("SSL sub-TLV"));
    }
    value
}

pub(crate) fn source(ip: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(ip), port)
}
