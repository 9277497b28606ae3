//! `/health/live` and `/health/ready` as a load balancer polls them: ready on a healthy
//! cluster, 503 on a node left without a quorum (it cannot serve sessions), ready again
//! once the cluster is whole.

use std::time::Duration;

use serde_json::Value;

use crate::broker_support::cluster_with;
use crate::http::{get_json, has_reason, ready, wait_ready_status};

/// Two election timeouts of the test settings (at most 1.5 s each), with room for a loaded
/// machine.
const LEADER_LOST_WITHIN: Duration = Duration::from_secs(10);
/// A restarted node replays its log and the cluster elects a leader.
const RECOVERED_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn readiness_follows_the_quorum() {
    let mut cluster = cluster_with(3, &[]).await;
    for node in &cluster.nodes {
        let (status, live) = get_json(&node.http_addr, "/health/live")
            .await
            .expect("/health/live");
        assert_eq!(status, 200, "/health/live on {}: {live}", node.http_addr);
        let (status, report) = ready(&node.http_addr).await;
        assert_eq!(status, 200, "/health/ready on {}: {report}", node.http_addr);
        assert_eq!(report["ready"], true, "{report}");
        assert_eq!(report["reasons"], Value::Array(vec![]), "{report}");
        assert_eq!(report["draining"], false, "{report}");
        assert!(report["leader"].is_u64(), "a leader is named: {report}");
        assert!(report["applied"].is_u64(), "{report}");
    }

    let survivor = cluster.nodes[0].http_addr.clone();
    cluster.kill(1).expect("SIGKILL node 1");
    cluster.kill(2).expect("SIGKILL node 2");
    let report = wait_ready_status(&survivor, 503, LEADER_LOST_WITHIN).await;
    assert_eq!(report["ready"], false, "{report}");
    assert!(
        has_reason(&report, "leader"),
        "the reason names the leader: {report}"
    );
    assert_eq!(report["leader"], Value::Null, "{report}");
    // Alive all the same: a liveness check must not get the process restarted for this.
    let (status, _) = get_json(&survivor, "/health/live")
        .await
        .expect("/health/live");
    assert_eq!(status, 200);

    cluster.restart(1).expect("restart node 1");
    cluster.restart(2).expect("restart node 2");
    for node in &cluster.nodes {
        let report = wait_ready_status(&node.http_addr, 200, RECOVERED_WITHIN).await;
        assert_eq!(report["ready"], true, "{}: {report}", node.http_addr);
    }
}

/// The follower's side: a follower whose leader and other follower die has nobody to
/// follow; it turns 503 as soon as its election timeout has fired (it becomes a candidate
/// and no longer names a leader), well within two election timeouts.
#[tokio::test]
async fn a_follower_left_alone_turns_unready() {
    let mut cluster = cluster_with(3, &[]).await;
    let leader = cluster.leader().await.expect("the cluster has a leader");
    let follower = (leader + 1) % 3;
    let (status, report) = ready(&cluster.nodes[follower].http_addr).await;
    assert_eq!(status, 200, "{report}");
    for i in 0..3 {
        if i != follower {
            cluster.kill(i).expect("SIGKILL a node");
        }
    }
    let report =
        wait_ready_status(&cluster.nodes[follower].http_addr, 503, LEADER_LOST_WITHIN).await;
    assert!(has_reason(&report, "leader"), "{report}");
    assert_eq!(report["leader"], Value::Null, "{report}");
}
