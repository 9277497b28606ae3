//! Half-open connections: TCP connections that never send CONNECT, opened until a node
//! whose open-file limit is 1,024 (soft and hard, set with prlimit(2) on the running
//! process) can accept no more and its listen backlog is full. Meanwhile the witness,
//! connected before, keeps publishing and receiving; the node's accept loop backs off
//! instead of spinning; the node closes the half-open connections after its 10 s CONNECT
//! timeout; and once the test closes the rest, a new client connects in bounded time, the
//! node's open files return to what they were, and `/health/live` answers.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::broker_support::{cluster_with, port_of, wait_serving};
use crate::node::{NodeProcess, assert_live, log_lines_with};
use crate::witness::Witness;
use crate::{WAIT, unique};

/// The node's open-file limit for the test.
const NODE_FILES: u64 = 1024;
/// The most connections the test opens: far more than the node's files and its backlog.
const MAX_CONNECTIONS: usize = 6000;
/// How long a TCP connect may take before the listener counts as full.
const CONNECT_WAIT: Duration = Duration::from_millis(1500);
/// The node's CONNECT timeout (`broker::connection::CONNECT_TIMEOUT`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What the node logs when accept(2) fails.
const ACCEPT_FAILED: &str = "accept failed";
/// Kernel clock ticks per second (`getconf CLK_TCK`: 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;
/// The window over which the node's CPU use is measured while it is out of files.
const CPU_WINDOW: Duration = Duration::from_secs(2);

#[tokio::test]
async fn half_open_connections_up_to_the_file_limit_do_not_take_the_node_down() {
    // Every connection comes from 127.0.0.1: the per-address limit would stop them first.
    let cluster = cluster_with(1, &["--max-connections-per-address", "0"]).await;
    let node = &cluster.nodes[0];
    let process = NodeProcess::of(node);
    let tag = unique("halfopen");
    let witness = Witness::start(port_of(&node.mqtt_addr), &tag).await;
    process.limit_open_files(NODE_FILES);
    let files_before = process.open_files();

    // The flood: connect until a connect does not complete (the node can accept no more
    // and its backlog is full).
    let mut flood: Vec<TcpStream> = Vec::new();
    let first_opened = Instant::now();
    let mut refused = None;
    while flood.len() < MAX_CONNECTIONS {
        match timeout(CONNECT_WAIT, TcpStream::connect(&node.mqtt_addr)).await {
            Ok(Ok(stream)) => flood.push(stream),
            Ok(Err(e)) => {
                refused = Some(e.to_string());
                break;
            }
            Err(_) => {
                refused = Some("timed out".to_string());
                break;
            }
        }
    }
    let opened = flood.len();
    assert!(
        refused.is_some(),
        "{opened} connections and the node still accepts: is its file limit in force?"
    );
    assert!(
        opened as u64 > NODE_FILES,
        "only {opened} connections before the listener was full ({refused:?})"
    );
    eprintln!("half-open: {opened} connections, then {refused:?}");

    // The node is out of files and says so, without spinning.
    let deadline = Instant::now() + WAIT;
    while log_lines_with(&node.log_path, ACCEPT_FAILED) == 0 {
        assert!(Instant::now() < deadline, "no accept failure logged");
        sleep(Duration::from_millis(50)).await;
    }
    assert!(
        process.open_files() as u64 >= NODE_FILES - 8,
        "the node holds {} files",
        process.open_files()
    );
    let (ticks, failures) = (
        process.cpu_ticks(),
        log_lines_with(&node.log_path, ACCEPT_FAILED),
    );
    sleep(CPU_WINDOW).await;
    let used = process.cpu_ticks() - ticks;
    let failed = log_lines_with(&node.log_path, ACCEPT_FAILED) - failures;
    let window_ticks = CPU_WINDOW.as_secs() * TICKS_PER_SECOND;
    assert!(
        used * 2 < window_ticks,
        "the node used {used} of {window_ticks} ticks while out of files"
    );
    // One failure per 100 ms back-off at most, with slack for the window's edges.
    assert!(
        failed as u64 <= CPU_WINDOW.as_secs() * 10 + 5,
        "{failed} accept failures in {CPU_WINDOW:?}: the accept loop does not back off"
    );

    eprintln!(
        "half-open: out of files, the node used {used} of {window_ticks} CPU ticks and \
         logged {failed} accept failures in {CPU_WINDOW:?}"
    );
    // The witness, connected before the flood, is still served.
    witness.served().await;

    // The node ends the first half-open connections after its CONNECT timeout.
    let mut first = flood.remove(0);
    let mut byte = [0u8; 1];
    let read = timeout(CONNECT_TIMEOUT + WAIT, first.read(&mut byte)).await;
    let closed_after = first_opened.elapsed();
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a connection without CONNECT is closed by the node: {read:?}"
    );
    assert!(
        closed_after >= CONNECT_TIMEOUT - Duration::from_secs(1),
        "closed after {closed_after:?}, before the CONNECT timeout"
    );
    witness.served().await;

    // The test closes the rest: a new client gets in, the files are given back.
    drop(first);
    drop(flood);
    let back = Instant::now();
    wait_serving(&node.mqtt_addr, CONNECT_TIMEOUT + WAIT).await;
    eprintln!(
        "half-open: a new client connected {:?} after the close",
        back.elapsed()
    );
    assert_live(&node.http_addr).await;
    let deadline = Instant::now() + WAIT;
    while process.open_files() > files_before + 16 {
        assert!(
            Instant::now() < deadline,
            "the node still holds {} files, {files_before} before the flood",
            process.open_files()
        );
        sleep(Duration::from_millis(100)).await;
    }
    assert!(process.is_running(), "the node is alive");
    let (published, slowest) = witness.finish().await;
    eprintln!("half-open: witness {published} messages, slowest PUBACK {slowest:?}");
}
