//! The nftables backend against real sockets, in a network namespace of the test's own:
//! the test binary runs itself again under `unshare --net` and the checks run there. Not
//! root, or a command missing: the test says so and skips (CI runs as root).

use super::*;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

/// Bound on every wait that should succeed.
const T: Duration = Duration::from_secs(5);
/// How long a connect or a read is given when packets should be dropped.
const DROPPED: Duration = Duration::from_millis(700);

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 12);
const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

#[derive(Debug, PartialEq, Eq)]
enum Connect {
    Connected,
    Failed(String),
    TimedOut,
}

/// A connection attempt from `from` to `to`.
async fn connect(from: Ipv4Addr, to: std::net::SocketAddr) -> Connect {
    match timeout(DROPPED, connect_from(from, to)).await {
        Err(_) => Connect::TimedOut,
        Ok(Ok(_)) => Connect::Connected,
        Ok(Err(e)) => Connect::Failed(e.to_string()),
    }
}

async fn connect_from(from: Ipv4Addr, to: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    socket.connect(to).await
}

/// Whether `reader` gets `msg` within `within`.
async fn arrives(reader: &mut TcpStream, msg: &[u8], within: Duration) -> bool {
    let mut buf = vec![0; msg.len()];
    match timeout(within, reader.read_exact(&mut buf)).await {
        Ok(Ok(_)) => buf == msg,
        _ => false,
    }
}

async fn links_cut_and_healed() {
    loopback_up().unwrap();
    let netfilter = Netfilter::create().unwrap();
    let listen_a = TcpListener::bind((A, 0)).await.unwrap();
    let listen_b = TcpListener::bind((B, 0)).await.unwrap();
    let (addr_a, addr_b) = (
        listen_a.local_addr().unwrap(),
        listen_b.local_addr().unwrap(),
    );
    // One connection from a to b opened before any rule, for the one-way check.
    let mut at_a = connect_from(A, addr_b).await.unwrap();
    let (mut at_b, peer) = timeout(T, listen_b.accept()).await.unwrap().unwrap();
    assert_eq!(peer.ip(), A, "the connection leaves from a's address");
    assert_eq!(connect(A, addr_b).await, Connect::Connected);
    assert_eq!(connect(B, addr_a).await, Connect::Connected);

    // Both directions: connects time out (dropped, neither refused nor reset).
    netfilter.block(A, B).unwrap();
    netfilter.block(B, A).unwrap();
    assert_eq!(connect(A, addr_b).await, Connect::TimedOut);
    assert_eq!(connect(B, addr_a).await, Connect::TimedOut);
    // Other sources are not matched: a client reaches both.
    assert_eq!(connect(CLIENT, addr_a).await, Connect::Connected);
    assert_eq!(connect(CLIENT, addr_b).await, Connect::Connected);

    netfilter.heal().unwrap();
    assert_eq!(connect(A, addr_b).await, Connect::Connected);
    assert_eq!(connect(B, addr_a).await, Connect::Connected);

    // One way, a to b: on the open connection b's bytes still reach a, a's never reach b
    // (b's would stall too once unacknowledged data filled the window).
    netfilter.block(A, B).unwrap();
    at_b.write_all(b"from b").await.unwrap();
    assert!(arrives(&mut at_a, b"from b", T).await, "b to a is open");
    at_a.write_all(b"from a").await.unwrap();
    assert!(
        !arrives(&mut at_b, b"from a", DROPPED).await,
        "a to b is blocked"
    );
    assert_eq!(connect(A, addr_b).await, Connect::TimedOut);

    // Healed: a's bytes arrive with a retransmission, on the same connection.
    netfilter.heal().unwrap();
    assert!(
        arrives(&mut at_b, b"from a", T).await,
        "retransmitted after the heal"
    );
    assert_eq!(connect(A, addr_b).await, Connect::Connected);
}

#[test]
fn cuts_one_or_both_directions_of_a_link_and_heals() {
    if in_namespace() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(links_cut_and_healed());
        return;
    }
    if let Some(why) = unavailable() {
        println!("skipped: the nftables backend test needs a network namespace: {why}");
        return;
    }
    // This very test again, alone, in a namespace of its own.
    let status = run_in_namespace(
        &std::env::current_exe().unwrap(),
        &alone("cuts_one_or_both_directions_of_a_link_and_heals"),
    )
    .unwrap();
    assert!(
        status.success(),
        "the test in the namespace failed: {status}"
    );
}

/// The arguments that run test `name` of this module alone.
fn alone(name: &str) -> Vec<OsString> {
    let module = module_path!();
    // Test names leave out the crate.
    let module = module.split_once("::").map_or(module, |(_, path)| path);
    [
        format!("{module}::{name}"),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

#[test]
fn a_marker_naming_this_namespace_or_none_is_not_a_namespace() {
    if marked() {
        // Run again below, with the marker set but in this very namespace.
        assert!(!in_namespace(), "a wrong marker passed for a namespace");
        assert!(Netfilter::create().is_err());
        assert!(
            run_in_namespace(Path::new("/bin/true"), &[]).is_err(),
            "a marked process starts no namespace"
        );
        return;
    }
    let Ok(own) = network_namespace() else {
        println!("skipped: no /proc/self/ns/net here");
        return;
    };
    for marker in [own.as_str(), "1"] {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(alone(
                "a_marker_naming_this_namespace_or_none_is_not_a_namespace",
            ))
            .env(IN_NAMESPACE, marker)
            .status()
            .unwrap();
        assert!(status.success(), "with the marker {marker:?}: {status}");
    }
}

#[test]
fn not_root_or_a_missing_command_is_explained() {
    let text = Unavailable::NotRoot(1000).to_string();
    assert!(text.contains("root") && text.contains("1000"), "{text}");
    let text = Unavailable::Missing {
        command: "nft",
        package: "nftables",
    }
    .to_string();
    assert!(
        text.contains("`nft`") && text.contains("nftables"),
        "{text}"
    );
    // Outside the namespace nothing is touched.
    if !in_namespace() {
        assert!(Netfilter::create().is_err());
        assert!(loopback_up().is_err());
    }
}
