//! `/api/v1/nodes` and `/api/v1/cluster/...`: the members with each one's own view of Raft
//! (asked with the cluster service's `Status` call; one that does not answer is listed as
//! unreachable), adding and removing members, a snapshot, moving leadership, and draining.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use super::paging::body;
use crate::cluster::handoff::HandOff;
use crate::cluster::proto::pb;
use crate::cluster::types::NodeId;

/// How long a member has to answer `Status` before it is listed as unreachable.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// A node id from the path: a positive integer.
pub(super) fn node_id(text: &str) -> Result<NodeId, ApiError> {
    match text.parse::<NodeId>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::bad_request(
            "bad_request",
            format!("{text:?} is not a node id (a positive integer)"),
        )),
    }
}

/// One member as the API shows it: its membership here, and its own status if it answered.
fn describe(member: &pb::Member, status: Option<&pb::StatusResponse>, max_lag: u64) -> Value {
    let Some(s) = status else {
        return json!({
            "id": member.node_id,
            "address": member.addr,
            "voter": member.voter,
            "reachable": false,
        });
    };
    let role = match s.role.as_str() {
        "Leader" => "leader",
        "Follower" => "follower",
        "Learner" => "learner",
        "Candidate" => "candidate",
        _ => "shutdown",
    };
    let lag = s
        .committed
        .unwrap_or(0)
        .saturating_sub(s.applied.unwrap_or(0));
    let now = crate::cluster::clock::now();
    json!({
        "id": member.node_id,
        "address": member.addr,
        "voter": member.voter,
        "reachable": true,
        "role": role,
        "term": s.term,
        "leader": s.leader,
        "last_log_index": s.last_log_index,
        "committed": s.committed,
        "applied": s.applied,
        "snapshot_index": s.snapshot_index,
        // The same rule as /health/ready's Raft checks; the broker's own (recovery done,
        // not draining) are in that node's /health/ready.
        "healthy": s.leader.is_some() && lag <= max_lag,
        "version": s.version,
        "started_at": s.started_at,
        "uptime_ms": now.saturating_sub(s.started_at),
    })
}

async fn member_status(state: &AdminState, member: &pb::Member) -> Option<pb::StatusResponse> {
    if member.node_id == state.cluster.id() {
        return state.cluster.status().ok();
    }
    state
        .cluster
        .peer_status(&member.addr, STATUS_TIMEOUT)
        .await
        .map_err(|e| tracing::debug!(node = member.node_id, "status not answered: {e}"))
        .ok()
}

pub(super) async fn list(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let members = state.cluster.members();
    let statuses =
        futures_util::future::join_all(members.iter().map(|member| member_status(&state, member)))
            .await;
    let nodes: Vec<Value> = members
        .iter()
        .zip(&statuses)
        .map(|(member, status)| describe(member, status.as_ref(), state.max_lag))
        .collect();
    Json(json!({ "nodes": nodes, "this_node": state.cluster.id() }))
}

fn member(state: &AdminState, id: NodeId) -> Result<pb::Member, ApiError> {
    state
        .cluster
        .members()
        .into_iter()
        .find(|m| m.node_id == id)
        .ok_or_else(|| ApiError::not_found("not_found", format!("node {id} is not a member")))
}

pub(super) async fn get(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let member = member(&state, node_id(&id)?)?;
    let status = member_status(&state, &member).await;
    Ok(Json(describe(&member, status.as_ref(), state.max_lag)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewNode {
    /// The id the node at `addr` must have (it is checked), if given.
    id: Option<NodeId>,
    /// The new node's cluster address (host:port).
    addr: String,
}

pub(super) async fn add(
    State(state): State<Arc<AdminState>>,
    new: Result<Json<NewNode>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = body(new)?;
    if new.addr.trim().is_empty() {
        return Err(ApiError::bad_request(
            "bad_request",
            "addr is the new node's cluster address (host:port)",
        ));
    }
    let members = state.cluster.add_member(&new.addr, new.id).await?;
    tracing::info!(addr = %new.addr, id = ?new.id, "API: node added to the cluster");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "members": members_json(&members) })),
    ))
}

pub(super) async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = node_id(&id)?;
    let members = state.cluster.remove_member(id).await?;
    tracing::info!(node = id, "API: node removed from the cluster");
    Ok(Json(
        json!({ "removed": id, "members": members_json(&members) }),
    ))
}

fn members_json(members: &[pb::Member]) -> Vec<Value> {
    members
        .iter()
        .map(|m| json!({ "id": m.node_id, "address": m.addr, "voter": m.voter }))
        .collect()
}

pub(super) async fn snapshot(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Value>, ApiError> {
    let index = state.cluster.snapshot(Duration::from_secs(30)).await?;
    tracing::info!(?index, "API: snapshot built");
    Ok(Json(
        json!({ "node": state.cluster.id(), "snapshot_index": index }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Transfer {
    /// The voter to hand leadership to; any caught-up voter if absent.
    to: Option<NodeId>,
}

/// Moves leadership away from this node, which must lead: openraft 0.9 has no leadership
/// transfer, so this is the drain's hand-off (see `cluster::handoff`) without retiring
/// the node.
pub(super) async fn leader(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: none means any caught-up voter.
    let transfer: Transfer = if body.iter().all(u8::is_ascii_whitespace) {
        Transfer::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_request", format!("the body: {e}")))?
    };
    let to = transfer.to;
    if let Some(to) = to {
        let target = member(&state, to)?;
        if !target.voter || to == state.cluster.id() {
            return Err(ApiError::bad_request(
                "bad_request",
                format!("node {to} is not another voter"),
            ));
        }
    }
    match state
        .cluster
        .transfer_leadership(to, Duration::from_secs(10))
        .await
    {
        HandOff::Moved { to, paused } => {
            tracing::info!(to, ?paused, "API: leadership handed over");
            Ok(Json(
                json!({ "leader": to, "paused_ms": paused.as_millis() as u64 }),
            ))
        }
        HandOff::NotLeader => Err(ApiError::bad_request(
            "not_leader",
            format!(
                "this node does not lead (the leader is {:?}): call the leader's API",
                state.cluster.leader()
            ),
        )),
        HandOff::Alone => Err(ApiError::bad_request(
            "bad_request",
            "no other voter to take over",
        )),
        other => Err(ApiError::unavailable(format!(
            "leadership did not move: {other:?}"
        ))),
    }
}

/// Drains this node (as `POST /drain`); another node's drain is that node's own call, since
/// only it holds its connections.
pub(super) async fn drain(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = node_id(&id)?;
    if id != state.cluster.id() {
        let addr = member(&state, id)?.addr;
        return Err(ApiError::bad_request(
            "not_local",
            format!(
                "node {id} (cluster address {addr}) drains through its own HTTP API: \
                 POST /api/v1/nodes/{id}/drain on that node"
            ),
        ));
    }
    let started = state.broker.drain(state.drain_grace);
    tracing::info!(started, "API: drain requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "draining": true, "started": started })),
    ))
}
