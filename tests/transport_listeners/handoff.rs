//! Draining the Raft leader hands leadership to another node before the drained one goes:
//! the cluster is not left to notice a missing leader by election timeout. Drained by
//! `POST /drain`, the node keeps running, so without the hand-off it would lead forever.
//! Proposals in flight meanwhile wait and go to the new leader: no client is disconnected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

use crate::broker_support::cluster_with;
use crate::wire::{self, Wire};
use crate::{WAIT, unique};

/// Two election timeouts of the test nodes (`--raft-election-max-ms 1500`).
const TWO_ELECTIONS: Duration = Duration::from_millis(3000);

#[tokio::test]
async fn draining_the_leader_moves_leadership_and_keeps_it_away() {
    let cluster = cluster_with(3, &["--drain-grace-ms", "60000"]).await;
    let old = wait_leader(&cluster, None).await;

    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let topic = unique("handoff");
    let mut subscriber = Wire::connected(
        wire::tcp(&cluster.nodes[others[0]].mqtt_addr).await,
        &unique("sub"),
    )
    .await;
    subscriber.subscribe(&format!("{topic}/#")).await;
    // Publishers on both followers keep proposing through the hand-off: their batches
    // held by the old leader are sent again to the new one, so no connection is closed
    // (a closed one fails its task).
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = others
        .iter()
        .map(|&i| {
            let (addr, topic, stop) = (
                cluster.nodes[i].mqtt_addr.clone(),
                format!("{topic}/{i}"),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut publisher = Wire::connected(wire::tcp(&addr).await, &unique("pub")).await;
                let mut sent = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let payload = format!("{topic} {}", sent.len());
                    publisher.publish(&topic, payload.as_bytes()).await;
                    sent.push(payload);
                }
                sent
            })
        })
        .collect();
    sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let body = cluster.nodes[old]
        .api()
        .expect("the node's API token")
        .post("/drain")
        .await
        .expect("POST /drain with the token");
    assert!(body.contains("\"draining\":true"), "{body}");
    let new = wait_leader(&cluster, Some(old)).await;
    let moved_after = started.elapsed();
    println!("leadership moved from node {old} to node {new} in {moved_after:?}");
    sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for publisher in publishers {
        acked.push(
            timeout(WAIT, publisher)
                .await
                .expect("publisher stops")
                .expect("no publisher was disconnected by the hand-off"),
        );
    }
    let total: usize = acked.iter().map(Vec::len).sum();
    let mut received: Vec<Vec<String>> = vec![Vec::new(); acked.len()];
    for _ in 0..total {
        let publish = subscriber.expect_publish().await;
        let slot = others
            .iter()
            .position(|i| publish.topic == format!("{topic}/{i}"))
            .expect("a publisher's topic");
        received[slot].push(String::from_utf8_lossy(&publish.payload).into_owned());
    }
    assert_eq!(
        received, acked,
        "every acknowledged message, once, in order"
    );
    println!("{total} messages acknowledged across the hand-off");

    // The drained node is still up, follows the new leader, and stays a follower: it no
    // longer campaigns, so leadership does not come back.
    let new_id = cluster.status(new).await.expect("status").node_id;
    let term = cluster.status(new).await.expect("status").term;
    sleep(TWO_ELECTIONS).await;
    let drained = cluster.status(old).await.expect("the drained node answers");
    assert_eq!(drained.role, "Follower", "{drained:?}");
    assert_eq!(drained.leader, Some(new_id), "{drained:?}");
    let now = cluster.status(new).await.expect("status");
    assert_eq!(now.role, "Leader", "the new leader kept its place: {now:?}");
    assert_eq!(now.term, term, "no election after the hand-off: {now:?}");

    // The cluster still commits through the others.
    let mut publisher = Wire::connected(
        wire::tcp(&cluster.nodes[others[1]].mqtt_addr).await,
        &unique("pub"),
    )
    .await;
    publisher
        .publish(&format!("{topic}/after"), b"after the hand-off")
        .await;
    assert_eq!(
        subscriber.expect_publish().await.payload.as_ref(),
        b"after the hand-off"
    );
}

/// The index of the node that leads, other than `not`, waiting up to `WAIT`.
async fn wait_leader(cluster: &raftmq::local_cluster::LocalCluster, not: Option<usize>) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(leader) = cluster.leader().await
            && Some(leader) != not
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "no leader other than {not:?} within {WAIT:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}
