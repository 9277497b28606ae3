//! The proxy against real sockets on 127.0.0.1: data flow, partitions, one-way stalls,
//! delay, resets, shutdown.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use tokio::net::TcpSocket;
use tokio::time::timeout;

/// Bound on every wait that should succeed.
const T: Duration = Duration::from_secs(5);
/// How long a stalled direction is watched for leaks.
const STALL: Duration = Duration::from_millis(200);

const N1: [u8; 4] = [127, 0, 0, 11];
const N3: [u8; 4] = [127, 0, 0, 13];
const CLIENT: [u8; 4] = [127, 0, 0, 1];

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(local()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn connect_from(ip: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, 0))).unwrap();
    timeout(T, socket.connect(addr)).await.unwrap().unwrap()
}

async fn echo_ok(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).await.unwrap();
    let mut buf = vec![0; msg.len()];
    timeout(T, stream.read_exact(&mut buf))
        .await
        .expect("echo timed out")
        .unwrap();
    assert_eq!(buf, msg);
}

async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match timeout(T, stream.read(&mut buf)).await.expect("still open") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("read {n} bytes from a connection that should be closed"),
    }
}

fn stat(proxy: &Proxy, key: &str) -> u64 {
    proxy.stats()[key].as_u64().unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn source_by_ip_maps_node_addresses() {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    assert_eq!(source_by_ip(v4(127, 0, 0, 11)), Endpoint::Node(1));
    assert_eq!(source_by_ip(v4(127, 0, 0, 15)), Endpoint::Node(5));
    assert_eq!(source_by_ip(v4(127, 0, 0, 109)), Endpoint::Node(99));
    assert_eq!(source_by_ip(v4(127, 0, 0, 10)), Endpoint::Clients);
    assert_eq!(source_by_ip(v4(127, 0, 0, 110)), Endpoint::Clients);
    assert_eq!(source_by_ip(v4(127, 0, 0, 1)), Endpoint::Clients);
    assert_eq!(source_by_ip(v4(10, 0, 0, 11)), Endpoint::Clients);
    assert_eq!(source_by_ip(v4(127, 0, 1, 11)), Endpoint::Clients);
    let mapped = Ipv4Addr::new(127, 0, 0, 12).to_ipv6_mapped();
    assert_eq!(source_by_ip(IpAddr::V6(mapped)), Endpoint::Node(2));
    assert_eq!(
        source_by_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        Endpoint::Clients
    );
}

#[test]
fn endpoint_display_and_json() {
    assert_eq!(Endpoint::Node(3).to_string(), "n3");
    assert_eq!(
        serde_json::to_value(Endpoint::Clients).unwrap(),
        json!("clients")
    );
}

#[test]
fn latency_rules_apply_to_touching_links() {
    let mut s = FaultState::default();
    let ms = Duration::from_millis;
    s.delays.insert(
        Some(Endpoint::Node(3)),
        Delay {
            fixed: ms(50),
            jitter: Duration::ZERO,
        },
    );
    assert_eq!(
        s.latency(Endpoint::Node(1), Endpoint::Node(2)),
        Duration::ZERO
    );
    assert_eq!(s.latency(Endpoint::Node(3), Endpoint::Node(2)), ms(50));
    assert_eq!(s.latency(Endpoint::Clients, Endpoint::Node(3)), ms(50));
    s.delays.insert(
        None,
        Delay {
            fixed: ms(10),
            jitter: ms(5),
        },
    );
    let all = s.latency(Endpoint::Node(1), Endpoint::Node(2));
    assert!(all >= ms(10) && all < ms(15), "{all:?}");
    // The longest rule wins.
    assert_eq!(s.latency(Endpoint::Node(3), Endpoint::Node(2)), ms(50));
}

#[test]
fn describe_lists_faults() {
    let proxy = Proxy::new();
    let faults = proxy.faults();
    assert_eq!(faults.describe(), json!({"blocked": [], "delays": []}));
    faults.block(Endpoint::Node(1), Endpoint::Node(2));
    faults.delay(None, Duration::from_millis(50), Duration::from_millis(10));
    assert!(faults.is_blocked(Endpoint::Node(1), Endpoint::Node(2)));
    assert!(!faults.is_blocked(Endpoint::Node(2), Endpoint::Node(1)));
    assert_eq!(
        faults.describe(),
        json!({
            "blocked": [{"from": "n1", "to": "n2"}],
            "delays": [{"node": "all", "delay_ms": 50.0, "jitter_ms": 10.0}],
        })
    );
    faults.delay(None, Duration::ZERO, Duration::ZERO);
    faults.heal();
    assert_eq!(faults.describe(), json!({"blocked": [], "delays": []}));
}

#[tokio::test]
async fn forwards_data_and_half_close() {
    let echo = echo_server().await;
    let proxy = Proxy::new();
    let addr = proxy
        .listen(local(), echo, Endpoint::Node(2), source_by_ip)
        .await
        .unwrap();
    let mut a = connect_from(N1, addr).await;
    echo_ok(&mut a, b"hello").await;
    let big = pattern(300_000);
    let (mut r, mut w) = a.into_split();
    let sent = big.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        // Half-close: the echo server sees EOF, then closes its side.
        w.shutdown().await.unwrap();
        w
    });
    let mut got = Vec::new();
    timeout(T, r.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, big);
    drop(writer.await.unwrap());
    assert_eq!(stat(&proxy, "accepted"), 1);
    assert_eq!(stat(&proxy, "bytes"), 2 * (5 + 300_000));
    proxy.shutdown();
}

#[tokio::test]
async fn partition_resets_and_refuses_until_healed() {
    let echo = echo_server().await;
    let proxy = Proxy::new();
    let faults = proxy.faults();
    let addr = proxy
        .listen(local(), echo, Endpoint::Node(2), source_by_ip)
        .await
        .unwrap();
    let mut n1 = connect_from(N1, addr).await;
    let mut client = connect_from(CLIENT, addr).await;
    echo_ok(&mut n1, b"before").await;
    echo_ok(&mut client, b"before").await;

    faults.partition(Endpoint::Node(1), Endpoint::Node(2));
    assert_closed(&mut n1).await;
    // Other links are untouched.
    echo_ok(&mut client, b"during").await;
    let mut n3 = connect_from(N3, addr).await;
    echo_ok(&mut n3, b"during").await;
    // New connections across the partition are closed at once.
    let mut refused = connect_from(N1, addr).await;
    assert_closed(&mut refused).await;
    assert_eq!(stat(&proxy, "reset"), 1);
    assert_eq!(stat(&proxy, "refused"), 1);

    faults.heal();
    let mut again = connect_from(N1, addr).await;
    echo_ok(&mut again, b"after").await;
    proxy.shutdown();
}

#[tokio::test]
async fn block_both_ways_is_a_partition() {
    let echo = echo_server().await;
    let proxy = Proxy::new();
    let faults = proxy.faults();
    let addr = proxy
        .listen(local(), echo, Endpoint::Node(2), source_by_ip)
        .await
        .unwrap();
    let mut n1 = connect_from(N1, addr).await;
    echo_ok(&mut n1, b"x").await;
    faults.block(Endpoint::Node(2), Endpoint::Node(1));
    assert_eq!(stat(&proxy, "reset"), 0);
    faults.block(Endpoint::Node(1), Endpoint::Node(2));
    assert_closed(&mut n1).await;
    assert_eq!(stat(&proxy, "reset"), 1);
    proxy.shutdown();
}

/// A proxy for node 2 in front of a listener the test accepts on itself, so that it
/// holds both ends: (proxy, client end from node 1, server end).
async fn controlled_link() -> (Proxy, TcpStream, TcpStream) {
    let upstream = TcpListener::bind(local()).await.unwrap();
    let proxy = Proxy::new();
    let addr = proxy
        .listen(
            local(),
            upstream.local_addr().unwrap(),
            Endpoint::Node(2),
            source_by_ip,
        )
        .await
        .unwrap();
    let client = connect_from(N1, addr).await;
    let (server, _) = timeout(T, upstream.accept()).await.unwrap().unwrap();
    (proxy, client, server)
}

#[tokio::test]
async fn block_stalls_one_direction_and_heal_delivers_in_order() {
    let (proxy, client, mut server) = controlled_link().await;
    let faults = proxy.faults();
    faults.block(Endpoint::Node(1), Endpoint::Node(2));

    // The other direction still flows.
    let (mut client_r, mut client_w) = client.into_split();
    server.write_all(b"pong").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(T, client_r.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"pong");

    // The blocked one holds everything (more than fits the socket buffers).
    let payload = pattern(4 << 20);
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        client_w.write_all(&sent).await.unwrap();
        client_w
    });
    let mut one = [0u8; 1];
    assert!(
        timeout(STALL, server.read(&mut one)).await.is_err(),
        "bytes crossed a blocked direction"
    );

    faults.heal();
    let mut got = vec![0; payload.len()];
    timeout(T, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == payload, "held bytes corrupted or reordered");
    let _client_w = timeout(T, writer).await.unwrap().unwrap();
    assert_eq!(stat(&proxy, "reset"), 0);
    proxy.shutdown();
}

#[tokio::test]
async fn block_reverse_direction() {
    let (proxy, mut client, mut server) = controlled_link().await;
    let faults = proxy.faults();
    faults.block(Endpoint::Node(2), Endpoint::Node(1));
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(T, server.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"first").await.unwrap();
    server.write_all(b"second").await.unwrap();
    let mut one = [0u8; 1];
    assert!(timeout(STALL, client.read(&mut one)).await.is_err());
    faults.heal();
    let mut got = [0u8; 11];
    timeout(T, client.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"firstsecond");
    proxy.shutdown();
}

#[tokio::test]
async fn delay_adds_latency_both_ways_and_keeps_order() {
    let echo = echo_server().await;
    let proxy = Proxy::new();
    let faults = proxy.faults();
    let addr = proxy
        .listen(local(), echo, Endpoint::Node(2), source_by_ip)
        .await
        .unwrap();
    let mut a = connect_from(N1, addr).await;
    echo_ok(&mut a, b"warm").await;

    let delay = Duration::from_millis(80);
    faults.delay(Some(Endpoint::Node(2)), delay, Duration::ZERO);
    let start = Instant::now();
    echo_ok(&mut a, b"slow").await;
    let rtt = start.elapsed();
    assert!(rtt >= 2 * delay, "round trip {rtt:?}");

    // Jitter must not reorder chunks.
    faults.delay(None, Duration::from_millis(1), Duration::from_millis(15));
    let (mut r, mut w) = a.into_split();
    let writer = tokio::spawn(async move {
        for i in 0..40u8 {
            w.write_all(&[i; 25]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        w
    });
    let mut got = vec![0u8; 40 * 25];
    timeout(T, r.read_exact(&mut got)).await.unwrap().unwrap();
    let want: Vec<u8> = (0..40u8).flat_map(|i| [i; 25]).collect();
    assert!(got == want, "reordered");
    let _w = writer.await.unwrap();
    proxy.shutdown();
}

#[tokio::test]
async fn reset_closes_open_connections_once() {
    let echo = echo_server().await;
    let proxy = Proxy::new();
    let faults = proxy.faults();
    let to_n2 = proxy
        .listen(local(), echo, Endpoint::Node(2), source_by_ip)
        .await
        .unwrap();
    let to_n3 = proxy
        .listen(local(), echo, Endpoint::Node(3), source_by_ip)
        .await
        .unwrap();
    let mut a = connect_from(N1, to_n2).await;
    let mut b = connect_from(CLIENT, to_n2).await;
    let mut c = connect_from(N1, to_n3).await;
    for s in [&mut a, &mut b, &mut c] {
        echo_ok(s, b"hi").await;
    }
    faults.reset(Endpoint::Node(2));
    assert_closed(&mut a).await;
    assert_closed(&mut b).await;
    echo_ok(&mut c, b"still").await;
    assert_eq!(stat(&proxy, "reset"), 2);
    let mut d = connect_from(N1, to_n2).await;
    echo_ok(&mut d, b"new").await;
    proxy.shutdown();
}

#[tokio::test]
async fn unreachable_upstream_closes_client() {
    let gone = TcpListener::bind(local()).await.unwrap();
    let upstream = gone.local_addr().unwrap();
    drop(gone);
    let proxy = Proxy::new();
    let addr = proxy
        .listen(local(), upstream, Endpoint::Node(1), source_by_ip)
        .await
        .unwrap();
    let mut a = connect_from(CLIENT, addr).await;
    assert_closed(&mut a).await;
    assert_eq!(stat(&proxy, "upstream_failed"), 1);
    proxy.shutdown();
}

#[tokio::test]
async fn shutdown_closes_listeners_and_connections() {
    let echo = echo_server().await;
    let proxy = Proxy::new();
    let addr = proxy
        .listen(local(), echo, Endpoint::Node(2), source_by_ip)
        .await
        .unwrap();
    let mut a = connect_from(CLIENT, addr).await;
    echo_ok(&mut a, b"hi").await;
    proxy.shutdown();
    assert_closed(&mut a).await;
    // The listener goes away once its task is dropped.
    timeout(T, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        proxy
            .listen(local(), echo, Endpoint::Node(2), source_by_ip)
            .await
            .is_err()
    );
}
