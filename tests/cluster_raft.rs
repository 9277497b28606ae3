//! The replicated state across real node processes on loopback: a cluster formed from the
//! CLI, a leader killed mid-stream, a node catching up by snapshot, every node killed at
//! once, a node removed, wiped and re-added, and garbage from a peer.
//!
//! Each test proposes "markers" (commands whose effect can be found in the state), keeps
//! the ones acknowledged, and at the end stops the nodes cleanly and reads every node's
//! store directly: an acknowledged marker missing anywhere fails the test.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raftmq::cluster::clock;
use raftmq::cluster::command::{BatchOutcome, Command, CommandBatch, Connect, Disconnect, Outcome};
use raftmq::cluster::network::ClusterNetwork;
use raftmq::cluster::proto::{self, pb};
use raftmq::cluster::secret::ClusterSecret;
use raftmq::cluster::state::{BrokerReader, BrokerState, SessionRecord};
use raftmq::cluster::types::TypeConfig;
use raftmq::local_cluster::LocalCluster;

mod markers {
    //! The command used as a marker, a retained QoS 1 publish to `marker/<n>`, and how to
    //! find it in a node's store.
    use raftmq::cluster::command::{Command, Message, Publish};
    use raftmq::cluster::state::{BrokerReader, BrokerState};
    use raftmq::cluster::types::TypeConfig;

    pub(crate) fn marker(n: u64) -> Command {
        Command::Publish(Publish {
            from: None,
            packet_id: None,
            message: Message::new(
                format!("marker/{n}"),
                bytes::Bytes::copy_from_slice(&n.to_be_bytes()),
                1,
                true,
            ),
            now: 0,
        })
    }

    /// Every marker in `candidates` found in the store at `data_dir` (nodes stopped).
    pub(crate) fn present(data_dir: &std::path::Path, candidates: &[u64]) -> Vec<u64> {
        let storage = raftmq_storage::Storage::open(data_dir).expect("open a stopped node's store");
        let sm = storage
            .state_machine::<TypeConfig, _>(BrokerState::default())
            .expect("state machine");
        let retained = BrokerReader::new(sm.reader())
            .retained("marker/#")
            .expect("read retained");
        let found: std::collections::BTreeSet<u64> = retained
            .iter()
            .filter_map(|(topic, _)| topic.strip_prefix("marker/")?.parse().ok())
            .collect();
        candidates
            .iter()
            .copied()
            .filter(|n| found.contains(n))
            .collect()
    }
}

/// Proposes one command through the node at `addr` and returns its outcome.
async fn outcome_of(addr: &str, command: Command) -> Outcome {
    let batch = proto::encode("batch", &CommandBatch(vec![command])).unwrap();
    let mut client = ClusterNetwork::default().client(addr).unwrap();
    let request = pb::ProposeRequest {
        batch: batch.into(),
        forwarded: false,
    };
    let reply = client.propose(request).await.unwrap();
    let Some(pb::propose_response::Result::Outcome(bytes)) = reply.into_inner().result else {
        panic!("no outcome from {addr}");
    };
    let BatchOutcome(mut outcomes) = proto::decode("outcome", &bytes).unwrap();
    outcomes.remove(0)
}

/// Opens a persistent session for `client_id`, owned by `node`, and returns its epoch.
async fn connect(addr: &str, client_id: &str, node: u64, session_expiry: u32) -> u64 {
    let command = Command::Connect(Connect {
        client_id: client_id.into(),
        node,
        protocol: 5,
        clean_start: true,
        session_expiry,
        receive_maximum: 10,
        max_queue: 100,
        max_queue_bytes: 0,
        will: None,
        now: clock::now(),
    });
    match outcome_of(addr, command).await {
        Outcome::Connected { epoch, .. } => epoch,
        other => panic!("connect {client_id}: {other:?}"),
    }
}

/// The session record of `client_id` in the store at `data_dir` (node stopped).
fn stored_session(data_dir: &std::path::Path, client_id: &str) -> Option<SessionRecord> {
    let storage = raftmq_storage::Storage::open(data_dir).unwrap();
    let sm = storage
        .state_machine::<TypeConfig, _>(BrokerState::default())
        .unwrap();
    BrokerReader::new(sm.reader()).session(client_id).unwrap()
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raftmq"))
}

async fn cluster(size: usize, extra: &[&str]) -> LocalCluster {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    LocalCluster::start(&binary(), size, &extra)
        .await
        .expect("start the cluster")
}

/// Proposes marker `n` to the node at `addr`; `Some(true)` acknowledged, `Some(false)`
/// refused before proposing, `None` outcome unknown.
async fn propose(network: &ClusterNetwork, addr: &str, n: u64) -> Option<bool> {
    let batch = proto::encode("batch", &CommandBatch(vec![markers::marker(n)])).ok()?;
    let mut client = network.client(addr).ok()?;
    let mut request = tonic::Request::new(pb::ProposeRequest {
        batch: batch.into(),
        forwarded: false,
    });
    request.set_timeout(Duration::from_secs(15));
    match client.propose(request).await {
        Ok(_) => Some(true),
        Err(status) if status.code() == tonic::Code::Unavailable => Some(false),
        Err(_) => None,
    }
}

/// Acknowledged and unknown markers of a proposing run.
#[derive(Default)]
struct Proposals {
    acked: BTreeSet<u64>,
    unknown: BTreeSet<u64>,
}

/// Proposes markers `from..` round-robin to `addrs` from `workers` tasks until `stop`.
fn proposing(
    addrs: Vec<String>,
    from: u64,
    workers: u64,
    stop: Arc<Mutex<bool>>,
) -> tokio::task::JoinHandle<Proposals> {
    tokio::spawn(async move {
        let network = ClusterNetwork::default();
        let result = Arc::new(Mutex::new(Proposals::default()));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (addrs, network, result, stop) =
                (addrs.clone(), network.clone(), result.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = from + w;
                while !*stop.lock().unwrap() {
                    let addr = &addrs[(n as usize) % addrs.len()];
                    match propose(&network, addr, n).await {
                        Some(true) => drop(result.lock().unwrap().acked.insert(n)),
                        Some(false) => tokio::time::sleep(Duration::from_millis(50)).await,
                        None => drop(result.lock().unwrap().unknown.insert(n)),
                    }
                    n += workers;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        std::mem::take(&mut *result.lock().unwrap())
    })
}

async fn propose_all(cluster: &LocalCluster, markers: std::ops::Range<u64>) -> BTreeSet<u64> {
    let network = ClusterNetwork::default();
    let mut acked = BTreeSet::new();
    for n in markers {
        let addr = &cluster.nodes[n as usize % cluster.nodes.len()].cluster_addr;
        if !cluster.is_running(n as usize % cluster.nodes.len()) {
            continue;
        }
        assert_eq!(
            propose(&network, addr, n).await,
            Some(true),
            "marker {n} via {addr}"
        );
        acked.insert(n);
    }
    acked
}

/// Stops every node cleanly and checks each store holds every acknowledged marker.
fn assert_all_present(cluster: &mut LocalCluster, acked: &BTreeSet<u64>) {
    for i in 0..cluster.nodes.len() {
        cluster.stop(i).expect("stop");
    }
    let acked: Vec<u64> = acked.iter().copied().collect();
    for node in &cluster.nodes {
        let present = markers::present(&node.data_dir, &acked);
        let missing: Vec<_> = acked.iter().filter(|n| !present.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged markers missing in {}: {:?}",
            missing.len(),
            node.data_dir.display(),
            &missing[..missing.len().min(20)]
        );
    }
}

fn cli(args: &[&str]) -> String {
    let output = Process::new(binary())
        .args(args)
        .output()
        .expect("run the CLI");
    assert!(
        output.status.success(),
        "raftmq {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `raftmq cluster join SEED --node NODE`, retried while the new node is still starting.
async fn cli_join(seed: &str, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = Process::new(binary())
            .args(["cluster", "join", seed, "--node", node])
            .output()
            .unwrap();
        if output.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "join failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_formed_from_the_cli_applies_the_same_commands_in_the_same_order() {
    let mut cluster = cluster(1, &[]).await;
    let seed = cluster.nodes[0].cluster_addr.clone();
    for _ in 0..2 {
        let i = cluster.add_node(None, false).unwrap();
        let addr = cluster.nodes[i].cluster_addr.clone();
        cli_join(&seed, &addr).await;
    }
    cluster.wait_for_voters(3, CONVERGE).await.unwrap();
    let stop = Arc::new(Mutex::new(false));
    let addrs: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.cluster_addr.clone())
        .collect();
    let run = proposing(addrs, 1, 6, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    *stop.lock().unwrap() = true;
    let proposals = run.await.unwrap();
    assert!(
        proposals.acked.len() > 50,
        "only {} markers acknowledged",
        proposals.acked.len()
    );
    assert!(
        proposals.unknown.is_empty(),
        "outcomes unknown without any fault: {:?}",
        proposals.unknown
    );
    // The leader's ticks change the state every second, so digests are compared between
    // live nodes (wait_converged), never with one taken earlier.
    cluster.wait_converged(CONVERGE).await.unwrap();
    let node2 = cluster.status(2).await.unwrap().node_id;
    let json = cli(&[
        "cluster",
        "status",
        "--json",
        "--node",
        &cluster.nodes[2].cluster_addr,
    ]);
    assert!(json.contains(&format!("\"node_id\":{node2},")), "{json}");
    assert!(json.contains("\"state_digest\":"), "{json}");
    // The committed index is reported, and nothing is applied before it is committed.
    let status = cluster.status(2).await.unwrap();
    let (committed, applied) = (status.committed.unwrap(), status.applied.unwrap());
    assert!(
        committed >= applied,
        "committed {committed} < applied {applied}"
    );
    assert!(json.contains("\"committed\":"), "{json}");
    assert_eq!(json.matches("\"voter\":true").count(), 3, "{json}");
    let table = cli(&[
        "cluster",
        "status",
        "--node",
        &cluster.nodes[1].cluster_addr,
    ]);
    assert!(
        table.contains("digest") && table.contains("voter"),
        "{table}"
    );
    assert_all_present(&mut cluster, &proposals.acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_stream_loses_no_committed_command() {
    let mut cluster = cluster(3, &[]).await;
    let leader = cluster.leader().await.expect("a leader");
    let old_term = cluster.status(leader).await.unwrap().term;
    let stop = Arc::new(Mutex::new(false));
    let addrs: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.cluster_addr.clone())
        .collect();
    let run = proposing(addrs, 1, 8, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.kill(leader).unwrap();
    // Elections may split a few times before one wins: poll, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_leader = loop {
        if let Some(new_leader) = cluster.leader().await {
            break new_leader;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader among the survivors after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Keep proposing under the new leader for a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(new_leader, leader);
    assert!(cluster.status(new_leader).await.unwrap().term > old_term);
    cluster.restart(leader).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    *stop.lock().unwrap() = true;
    let proposals = run.await.unwrap();
    assert!(
        proposals.acked.len() > 50,
        "only {} markers acknowledged",
        proposals.acked.len()
    );
    cluster.wait_converged(CONVERGE).await.unwrap();
    assert_all_present(&mut cluster, &proposals.acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_far_behind_catches_up_by_snapshot() {
    let mut cluster = cluster(3, &["--snapshot-threshold", "20"]).await;
    let leader = cluster.leader().await.expect("a leader");
    let lagging = (leader + 1) % 3;
    let mut acked = propose_all(&cluster, 1..11).await;
    cluster.wait_converged(CONVERGE).await.unwrap();
    let before = cluster
        .status(lagging)
        .await
        .unwrap()
        .last_log_index
        .unwrap_or(0);
    cluster.kill(lagging).unwrap();
    // Only the two running nodes get markers: enough entries for several snapshots and
    // purges, so the lagging node's next entry is gone from the leader's log.
    acked.extend(propose_all(&cluster, 11..211).await);
    cluster.restart(lagging).unwrap();
    cluster.wait_converged(CONVERGE).await.unwrap();
    let status = cluster.status(lagging).await.unwrap();
    let snapshot = status
        .snapshot_index
        .expect("the lagging node holds a snapshot");
    assert!(
        snapshot > before + 20,
        "snapshot at {snapshot}, node was at {before}"
    );
    assert_all_present(&mut cluster, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_killed_at_once_keeps_all_committed_state() {
    let mut cluster = cluster(3, &[]).await;
    let acked = propose_all(&cluster, 1..101).await;
    cluster.wait_converged(CONVERGE).await.unwrap();
    for i in 0..3 {
        cluster.kill(i).unwrap();
    }
    for i in 0..3 {
        cluster.restart(i).unwrap();
    }
    cluster.wait_for_voters(3, CONVERGE).await.unwrap();
    cluster.wait_converged(CONVERGE).await.unwrap();
    assert_all_present(&mut cluster, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_wiped_and_re_added_node_comes_back_under_a_new_id() {
    let mut cluster = cluster(3, &[]).await;
    let mut acked = propose_all(&cluster, 1..21).await;
    let old_id = cluster.status(2).await.unwrap().node_id;
    let held = connect(
        &cluster.nodes[0].cluster_addr,
        "held-by-leaver",
        old_id,
        u32::MAX,
    )
    .await;
    cli(&[
        "cluster",
        "leave",
        "--node",
        &cluster.nodes[2].cluster_addr.clone(),
    ]);
    cluster.wait_for_voters(2, CONVERGE).await.unwrap();
    cluster.wipe(2).unwrap();
    acked.extend(propose_all(&cluster, 21..41).await);
    cluster.set_join(2, None, false);
    cluster.restart(2).unwrap();
    let (seed, addr) = (
        cluster.nodes[0].cluster_addr.clone(),
        cluster.nodes[2].cluster_addr.clone(),
    );
    cli_join(&seed, &addr).await;
    cluster.wait_for_voters(3, CONVERGE).await.unwrap();
    let new_id = cluster.status(2).await.unwrap().node_id;
    assert_ne!(new_id, old_id, "a wiped node must not reuse its old id");
    let members = cluster.status(0).await.unwrap().members;
    assert!(
        !members.iter().any(|m| m.node_id == old_id),
        "the old id is still a member: {members:?}"
    );
    cluster.wait_converged(CONVERGE).await.unwrap();
    assert_all_present(&mut cluster, &acked);
    // NodeDown was proposed for the removed node: its session went offline, and stayed.
    let session = stored_session(&cluster.nodes[0].data_dir, "held-by-leaver").expect("kept");
    assert_eq!((session.owner, session.epoch), (None, held));
}

/// A leader asked to leave hands leadership over and is removed by the new leader, which
/// takes its sessions offline: removed first, it could no longer propose `NodeDown` (it
/// once retried that for ever, and `cluster leave` timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_leader_hands_over_and_its_sessions_go_offline() {
    let cluster = cluster(3, &[]).await;
    let acked = propose_all(&cluster, 1..11).await;
    let leader = cluster.leader().await.expect("a leader");
    let old_id = cluster.status(leader).await.unwrap().node_id;
    let other = (leader + 1) % 3;
    let held = connect(
        &cluster.nodes[other].cluster_addr,
        "held-by-leaving-leader",
        old_id,
        u32::MAX,
    )
    .await;
    let started = std::time::Instant::now();
    cli(&[
        "cluster",
        "leave",
        "--node",
        &cluster.nodes[leader].cluster_addr.clone(),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "leave took {:?}",
        started.elapsed()
    );
    let status = cluster.status(other).await.unwrap();
    assert!(
        !status.members.iter().any(|m| m.node_id == old_id),
        "the old leader is still a member: {status:?}"
    );
    assert_ne!(status.leader, Some(old_id));
    let mut cluster = cluster;
    cluster.kill(leader).unwrap();
    cluster.wait_converged(CONVERGE).await.unwrap();
    assert_all_present(&mut cluster, &acked);
    // The new leader proposed NodeDown for the old one: its session went offline.
    let session =
        stored_session(&cluster.nodes[other].data_dir, "held-by-leaving-leader").expect("kept");
    assert_eq!((session.owner, session.epoch), (None, held));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_ticks_expire_an_offline_session() {
    let mut cluster = cluster(1, &[]).await;
    let addr = cluster.nodes[0].cluster_addr.clone();
    // Owned by a node that does not exist: the real node would take a session it holds no
    // connection for offline itself (an orphan), racing the test's own Disconnect.
    let node = cluster.status(0).await.unwrap().node_id + 1;
    for (client, expiry) in [("expiring", 1), ("staying", u32::MAX)] {
        let epoch = connect(&addr, client, node, expiry).await;
        let disconnect = Command::Disconnect(Disconnect {
            client_id: client.into(),
            epoch,
            publish_will: false,
            session_expiry: None,
            now: clock::now(),
        });
        let outcome = outcome_of(&addr, disconnect).await;
        assert!(
            matches!(outcome, Outcome::Disconnected { .. }),
            "{outcome:?}"
        );
    }
    // Nothing but the leader's periodic Tick can end the session.
    tokio::time::sleep(clock::TICK_INTERVAL * 4).await;
    cluster.stop(0).unwrap();
    let data_dir = &cluster.nodes[0].data_dir;
    assert!(
        stored_session(data_dir, "expiring").is_none(),
        "the session did not expire"
    );
    assert!(stored_session(data_dir, "staying").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_peer_gets_an_error_status_not_a_crash() {
    let cluster = cluster(1, &[]).await;
    let addr = cluster.nodes[0].cluster_addr.clone();
    let mut client = ClusterNetwork::default().client(&addr).unwrap();
    let missing_vote = pb::AppendEntriesRequest {
        vote: None,
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let status = client.append_entries(missing_vote).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let bad_entry = pb::AppendEntriesRequest {
        vote: Some(pb::Vote {
            term: 99,
            node_id: 5,
            committed: true,
        }),
        prev_log_id: None,
        entries: vec![pb::Entry {
            log_id: Some(pb::LogId {
                term: 99,
                node_id: 5,
                index: 1,
            }),
            payload: vec![0xff; 9].into(),
        }],
        leader_commit: None,
    };
    assert_eq!(
        client.append_entries(bad_entry).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let bad_batch = pb::ProposeRequest {
        batch: vec![0xde, 0xad, 0xbe, 0xef].into(),
        forwarded: false,
    };
    assert_eq!(
        client.propose(bad_batch).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let bad_snapshot = pb::InstallSnapshotRequest {
        vote: Some(pb::Vote {
            term: 99,
            node_id: 5,
            committed: true,
        }),
        meta: Some(pb::SnapshotMeta {
            last_log_id: None,
            last_membership: vec![1, 2, 3].into(),
            snapshot_id: "x".into(),
        }),
        offset: 0,
        data: vec![].into(),
        done: true,
    };
    assert_eq!(
        client
            .install_snapshot(bad_snapshot)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::InvalidArgument
    );
    // Not HTTP/2 at all.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    raw.write_all(b"\x10\xff\xff\xff\x7fMQTT garbage")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf)).await;
    // The node still works.
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.role, "Leader");
    assert_eq!(
        propose(&ClusterNetwork::default(), &addr, 1).await,
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cluster_secret_only_nodes_that_know_it_get_in() {
    const SECRET: &str = "a-shared-cluster-secret";
    // The nodes join and elect only if their calls to each other carry the secret.
    let cluster = cluster(3, &["--cluster-secret", SECRET]).await;
    let addr = cluster.nodes[1].cluster_addr.clone();
    let leader = cluster.leader().await.expect("a leader");
    let leader_addr = cluster.nodes[leader].cluster_addr.clone();

    for secret in [None, Some("a-wrong-cluster-secret")] {
        let stranger = ClusterNetwork::new(None, ClusterSecret::new(secret.map(str::to_string)));
        let mut client = stranger.client(&addr).unwrap();
        let status = client.status(pb::StatusRequest {}).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{secret:?}");
        // Nor can it propose, vote or append.
        assert_eq!(
            propose(&stranger, &leader_addr, 1).await,
            None,
            "{secret:?}"
        );
        let vote = pb::VoteRequest {
            vote: Some(pb::Vote {
                term: 1_000,
                node_id: 77,
                committed: false,
            }),
            last_log_id: None,
        };
        let mut client = stranger.client(&leader_addr).unwrap();
        let status = client.vote(vote).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
    assert_eq!(
        cluster.leader().await,
        Some(leader),
        "a stranger's vote request with a higher term changed nothing"
    );
    let knows = ClusterNetwork::new(None, ClusterSecret::new(Some(SECRET.into())));
    assert_eq!(propose(&knows, &leader_addr, 2).await, Some(true));

    // The command line needs it too.
    let refused = Process::new(binary())
        .args(["cluster", "status", "--node", &addr])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let status = cli(&[
        "cluster",
        "status",
        "--node",
        &addr,
        "--cluster-secret",
        SECRET,
    ]);
    assert!(status.contains("voter"), "{status}");

    // An MQTT client that finds the cluster port gets nowhere.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, b'e',
        b'v', b'i', b'l',
    ];
    stream.write_all(&connect).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the cluster port closes the connection");
    assert!(
        read.is_err() || !answer.starts_with(&[0x20]),
        "no CONNACK: {answer:?}"
    );
}
