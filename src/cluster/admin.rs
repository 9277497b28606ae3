//! `raftmq cluster status|join|leave`: the command-line side of the cluster service.

use std::time::Duration;

use thiserror::Error;

use super::network::{ClusterAccess, ClusterNetwork, describe};
use super::proto::pb;

/// Why a cluster command failed.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("node {node}: {message}")]
    Node { node: String, message: String },
}

fn failed(node: &str) -> impl Fn(tonic::Status) -> AdminError + '_ {
    move |status| AdminError::Node {
        node: node.to_string(),
        message: format!("{} ({:?})", describe(&status), status.code()),
    }
}

fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The status of the node at `node`.
pub async fn status(node: &str, access: &ClusterAccess) -> Result<pb::StatusResponse, AdminError> {
    let mut client = ClusterNetwork::new(None, access.clone())
        .client(node)
        .map_err(failed(node))?;
    let reply = client
        .status(request(pb::StatusRequest {}, Duration::from_secs(5)))
        .await
        .map_err(failed(node))?;
    Ok(reply.into_inner())
}

/// Asks the node at `node` to join the cluster of `seed`; returns the members after.
pub async fn join(
    node: &str,
    seed: &str,
    access: &ClusterAccess,
) -> Result<Vec<pb::Member>, AdminError> {
    let mut client = ClusterNetwork::new(None, access.clone())
        .client(node)
        .map_err(failed(node))?;
    // Joining waits for the new node to catch up before it becomes a voter.
    let message = pb::JoinRequest {
        seed: seed.to_string(),
    };
    let reply = client
        .join(request(message, Duration::from_secs(120)))
        .await
        .map_err(failed(node))?;
    Ok(reply.into_inner().members)
}

/// Removes the node at `node` from its cluster; returns the members after.
pub async fn leave(node: &str, access: &ClusterAccess) -> Result<Vec<pb::Member>, AdminError> {
    let id = status(node, access).await?.node_id;
    let mut client = ClusterNetwork::new(None, access.clone())
        .client(node)
        .map_err(failed(node))?;
    let reply = client
        .remove_node(request(
            pb::RemoveNodeRequest { node_id: id },
            Duration::from_secs(30),
        ))
        .await
        .map_err(failed(node))?;
    Ok(reply.into_inner().members)
}

fn opt(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The status as a table for people.
pub fn format_status(s: &pb::StatusResponse) -> String {
    let mut out = format!(
        "node      {}\naddress   {}\nrole      {}\nterm      {}\nleader    {}\nlast log  {}\ncommitted {}\napplied   {}\nsnapshot  {}\ndigest    {:08x}\nmembers\n",
        s.node_id,
        s.addr,
        s.role,
        s.term,
        opt(s.leader),
        opt(s.last_log_index),
        opt(s.committed),
        opt(s.applied),
        opt(s.snapshot_index),
        s.state_digest
    );
    for m in &s.members {
        out.push_str(&format!(
            "  {:<20} {:<22} {}\n",
            m.node_id,
            m.addr,
            if m.voter { "voter" } else { "learner" }
        ));
    }
    out
}

/// The status as one JSON object for scripts (hand-written: a handful of plain fields).
pub fn status_json(s: &pb::StatusResponse) -> String {
    let json_opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    let members: Vec<String> = s
        .members
        .iter()
        .map(|m| {
            format!(
                "{{\"node_id\":{},\"addr\":{:?},\"voter\":{}}}",
                m.node_id, m.addr, m.voter
            )
        })
        .collect();
    format!(
        "{{\"node_id\":{},\"addr\":{:?},\"role\":{:?},\"term\":{},\"leader\":{},\"last_log_index\":{},\"committed\":{},\"applied\":{},\"snapshot_index\":{},\"state_digest\":{},\"members\":[{}]}}",
        s.node_id,
        s.addr,
        s.role,
        s.term,
        json_opt(s.leader),
        json_opt(s.last_log_index),
        json_opt(s.committed),
        json_opt(s.applied),
        json_opt(s.snapshot_index),
        s.state_digest,
        members.join(",")
    )
}
