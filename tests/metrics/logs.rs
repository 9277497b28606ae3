//! `--log-format json`: every line the node writes is a JSON object, and a client's
//! connect and disconnect lines name it, its real address (from the balancer's PROXY
//! header), the listener, the protocol and why it left.

use bytes::BytesMut;
use raftmq::local_cluster::LocalCluster;
use raftmq::mqtt::{Connect, Packet, Properties, Protocol};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant};

use crate::WAIT;
use crate::broker_support::{TEST_NODE_ARGS, raftmq_binary};

const CLIENT: &str = "json-log-client";
/// The client's address as the balancer's header gives it.
const CLIENT_ADDR: &str = "203.0.113.7:5555";

fn connect_bytes() -> BytesMut {
    let connect = Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: CLIENT.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    let mut out = BytesMut::new();
    Packet::Connect(Box::new(connect))
        .encode(Protocol::V5, &mut out)
        .expect("CONNECT encodes");
    out
}

/// The node's log lines, each parsed; panics on one that is not JSON.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// The line with this message about [`CLIENT`], if any.
fn line<'a>(lines: &'a [Value], message: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["fields"]["message"] == message && l["fields"]["client"] == CLIENT)
}

#[tokio::test]
async fn json_log_lines_parse_and_name_the_clients_real_address() {
    let args: Vec<String> = TEST_NODE_ARGS
        .iter()
        .chain(&["--log-format", "json", "--mqtt-proxy-protocol=true"])
        .map(|s| s.to_string())
        .collect();
    let cluster = LocalCluster::start(&raftmq_binary(), 1, &args)
        .await
        .expect("start a node");
    let node = &cluster.nodes[0];
    let api = node.api().expect("API");
    let deadline = Instant::now() + WAIT * 3;
    while !matches!(
        api.exchange("GET", "/health/ready", &[], None).await,
        Ok((200, _))
    ) {
        assert!(Instant::now() < deadline, "the node is not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Through a balancer that sends a PROXY v1 header.
    let mut stream = TcpStream::connect(&node.mqtt_addr).await.expect("connect");
    let (ip, port) = CLIENT_ADDR.split_once(':').expect("address");
    let header = format!("PROXY TCP4 {ip} 127.0.0.1 {port} 1883\r\n");
    stream.write_all(header.as_bytes()).await.expect("header");
    stream.write_all(&connect_bytes()).await.expect("CONNECT");
    let mut connack = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut connack))
        .await
        .expect("CONNACK in time")
        .expect("CONNACK");
    assert_eq!((connack[0], connack[3]), (0x20, 0), "CONNACK success");
    // DISCONNECT, normal (5.0: reason 0 may be left out).
    stream.write_all(&[0xE0, 0x00]).await.expect("DISCONNECT");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;

    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let text = std::fs::read_to_string(&node.log_path).expect("the node's log");
        let lines = json_lines(&text);
        if line(&lines, "disconnected").is_some() {
            break lines;
        }
        assert!(Instant::now() < deadline, "no disconnect line in:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let connected = line(&lines, "connected").expect("a connect line");
    let disconnected = line(&lines, "disconnected").expect("a disconnect line");
    for entry in [connected, disconnected] {
        assert_eq!(entry["level"], "INFO", "{entry}");
        let fields = &entry["fields"];
        assert_eq!(fields["peer"], CLIENT_ADDR, "{entry}");
        assert_eq!(fields["listener"], "tcp", "{entry}");
        assert_eq!(fields["protocol"], "V5", "{entry}");
        assert!(
            fields["via"]
                .as_str()
                .is_some_and(|via| via.contains("127.0.0.1")),
            "{entry}"
        );
    }
    assert_eq!(disconnected["fields"]["reason"], "client_disconnect");
}
