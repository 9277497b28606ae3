//! The PROXY protocol on the TCP listener: what the balancer says about the client (its
//! address, and with v2 the certificate it verified) is what `/clients` shows, and only
//! connections from trusted balancers that start with a header get an MQTT session.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use raftmq::local_cluster::LocalCluster;
use raftmq::mqtt::{Protocol, ReasonCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::broker_support::proxy_header::{source, ssl_tlv, v1_header, v2_header};
use crate::broker_support::{TEST_NODE_ARGS, raftmq_binary};
use crate::http::wait_client;
use crate::wire::{self, Wire, connect_packet};
use crate::{WAIT, unique};

/// A TCP connection to `addr` from `from` (any 127.0.0.0/8 address is on loopback) that
/// has sent `header`; its local address is what the node sees as the balancer.
async fn behind_balancer(addr: &str, from: Ipv4Addr, header: &[u8]) -> (Wire, SocketAddr) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    let target: SocketAddr = addr.parse().expect("node address");
    let mut stream: TcpStream = tokio::time::timeout(WAIT, socket.connect(target))
        .await
        .expect("TCP connect in time")
        .expect("TCP connect");
    let balancer = wire::local_addr(&stream);
    stream
        .write_all(header)
        .await
        .expect("send the PROXY header");
    (Wire::new(stream, Protocol::V5), balancer)
}

/// Connects `client_id` through a PROXY `header` sent from `from`: the CONNACK, or None
/// when the node closed the connection without one.
async fn connect_behind(
    addr: &str,
    from: Ipv4Addr,
    header: &[u8],
    client_id: &str,
) -> (Wire, SocketAddr, Option<raftmq::mqtt::ConnAck>) {
    let (mut wire, balancer) = behind_balancer(addr, from, header).await;
    let connack = wire
        .try_connect(connect_packet(Protocol::V5, client_id, None))
        .await;
    (wire, balancer, connack)
}

/// A node whose TCP listener expects a PROXY header, serving once a client behind a
/// balancer at `balancer` (which the node must trust) gets a session.
async fn proxy_node(extra: &[&str], balancer: Ipv4Addr) -> LocalCluster {
    let args: Vec<String> = TEST_NODE_ARGS
        .iter()
        .chain(["--mqtt-proxy-protocol=true"].iter())
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    let cluster = LocalCluster::start(&raftmq_binary(), 1, &args)
        .await
        .expect("start a node");
    // `broker_support::wait_serving` speaks plain MQTT, which this listener refuses.
    let addr = &cluster.nodes[0].mqtt_addr;
    let header = v1_header(source([192, 0, 2, 1], 1));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let id = unique("probe");
        let (_, _, connack) = connect_behind(addr, balancer, &header, &id).await;
        match connack {
            Some(ack) if ack.reason == ReasonCode::Success => return cluster,
            other => assert!(
                Instant::now() < deadline,
                "{addr} gave no session behind a PROXY header within 30 s: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn proxy_headers_name_the_real_client() {
    let cluster = proxy_node(&[], Ipv4Addr::LOCALHOST).await;
    let node = &cluster.nodes[0];
    let cases = [
        (
            "v2",
            v2_header(source([203, 0, 113, 7], 40000), None),
            "203.0.113.7:40000",
        ),
        (
            "v1",
            v1_header(source([198, 51, 100, 9], 5555)),
            "198.51.100.9:5555",
        ),
    ];
    let mut sessions = Vec::new();
    for (version, header, peer) in cases {
        let id = unique(version);
        let (mut wire, balancer, connack) =
            connect_behind(&node.mqtt_addr, Ipv4Addr::LOCALHOST, &header, &id).await;
        let connack = connack.unwrap_or_else(|| panic!("{version}: closed without CONNACK"));
        assert_eq!(
            connack.reason,
            ReasonCode::Success,
            "{version}: {connack:?}"
        );
        wire.ping().await;
        let listed = wait_client(node, &id).await;
        assert_eq!(listed["peer"], peer, "{version}: {listed}");
        assert_eq!(listed["via"], balancer.to_string(), "{version}: {listed}");
        assert_eq!(listed["listener"], "tcp", "{version}: {listed}");
        assert_eq!(listed["identity"], Value::Null, "{version}: {listed}");
        sessions.push(wire);
    }

    // The balancer ended TLS and verified the client's certificate: its CN is the identity.
    // A certificate it could not verify names no one.
    for (cn, verify, identity) in [
        ("lb-device", 0, Value::from("lb-device")),
        ("lb-forged", 1, Value::Null),
    ] {
        let id = unique(cn);
        let header = v2_header(source([203, 0, 113, 8], 40001), Some(&ssl_tlv(cn, verify)));
        let (wire, _, connack) =
            connect_behind(&node.mqtt_addr, Ipv4Addr::LOCALHOST, &header, &id).await;
        assert_eq!(connack.map(|c| c.reason), Some(ReasonCode::Success), "{cn}");
        let listed = wait_client(node, &id).await;
        assert_eq!(listed["identity"], identity, "{cn}: {listed}");
        assert_eq!(listed["peer"], "203.0.113.8:40001", "{cn}: {listed}");
        sessions.push(wire);
    }

    // A client that bypasses the balancer is refused, not trusted with its own address.
    let mut direct = Wire::new(wire::tcp(&node.mqtt_addr).await, Protocol::V5);
    let connack = direct
        .try_connect(connect_packet(Protocol::V5, &unique("direct"), None))
        .await;
    assert!(
        connack.is_none(),
        "CONNECT without a PROXY header: {connack:?}"
    );
}

#[tokio::test]
async fn only_trusted_balancers_may_send_a_header() {
    // 127.0.0.2 stands for the balancer; 127.0.0.1 is outside the trusted networks.
    let balancer = Ipv4Addr::new(127, 0, 0, 2);
    let cluster = proxy_node(&["--proxy-trusted", "10.0.0.0/8,127.0.0.2"], balancer).await;
    let node = &cluster.nodes[0];
    let header = v2_header(source([203, 0, 113, 7], 40000), None);

    let id = unique("trusted");
    let (_trusted, from, connack) = connect_behind(&node.mqtt_addr, balancer, &header, &id).await;
    assert_eq!(connack.map(|c| c.reason), Some(ReasonCode::Success));
    let listed = wait_client(node, &id).await;
    assert_eq!(listed["peer"], "203.0.113.7:40000", "{listed}");
    assert_eq!(listed["via"], from.to_string(), "{listed}");

    for header in [header, v1_header(source([198, 51, 100, 9], 5555))] {
        let (_, _, connack) = connect_behind(
            &node.mqtt_addr,
            Ipv4Addr::LOCALHOST,
            &header,
            &unique("untrusted"),
        )
        .await;
        assert!(connack.is_none(), "a header from 127.0.0.1: {connack:?}");
    }
}
