//! `/api/v1/clients`: the connected clients of the whole cluster. Which node holds each
//! session comes from the replicated state; what only that node knows (address, listener,
//! keep-alive, username) from its `Clients` call on the cluster service, one call per
//! node. A node that does not answer leaves its clients listed with the state's fields
//! and `"details": false`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use super::paging::{Paging, query};
use super::sessions::{DETAILS_TIMEOUT, connection, detail, evict, reader, summary};
use crate::cluster::proto::pb;
use crate::cluster::types::NodeId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientFilters {
    node: Option<NodeId>,
    username: Option<String>,
    client_id_prefix: Option<String>,
    /// The client's IP address, or its address and port.
    address: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

impl ClientFilters {
    /// Whether a client with this connection (if its node answered) passes the filters
    /// that need one; a client without details passes none of them.
    fn keeps(&self, client: Option<&pb::ConnectedClient>) -> bool {
        if self.username.is_none() && self.address.is_none() {
            return true;
        }
        let Some(client) = client else {
            return false;
        };
        let username = self
            .username
            .as_deref()
            .is_none_or(|u| client.username.as_deref() == Some(u));
        let address = self.address.as_deref().is_none_or(|a| {
            client.peer == a
                || client
                    .peer
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|peer| peer.ip().to_string() == a)
        });
        username && address
    }
}

/// The connections of each node in `nodes`, by client id; a node that does not answer is
/// missing from the map.
async fn connections(
    state: &AdminState,
    nodes: &BTreeSet<NodeId>,
) -> HashMap<NodeId, HashMap<String, pb::ConnectedClient>> {
    let asked = nodes.iter().map(|node| async move {
        let answer = state
            .cluster
            .connected_clients(*node, DETAILS_TIMEOUT)
            .await;
        if let Err(e) = &answer {
            tracing::debug!(node, "client details not answered: {e}");
        }
        (*node, answer)
    });
    futures_util::future::join_all(asked)
        .await
        .into_iter()
        .filter_map(|(node, answer)| {
            let clients = answer.ok()?;
            Some((
                node,
                clients
                    .into_iter()
                    .map(|c| (c.client_id.clone(), c))
                    .collect(),
            ))
        })
        .collect()
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    filters: Result<Query<ClientFilters>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let filters = query(filters)?;
    let reader = reader(&state);
    let online: Vec<_> = reader
        .sessions()?
        .into_iter()
        .filter(|(client_id, session)| {
            session
                .owner
                .is_some_and(|owner| filters.node.is_none_or(|n| n == owner))
                && filters
                    .client_id_prefix
                    .as_deref()
                    .is_none_or(|p| client_id.starts_with(p))
        })
        .collect();
    let nodes: BTreeSet<NodeId> = online.iter().filter_map(|(_, s)| s.owner).collect();
    let details = connections(&state, &nodes).await;
    let mut items = Vec::new();
    for (client_id, session) in &online {
        let Some(node) = session.owner else {
            continue;
        };
        let client = details.get(&node).and_then(|c| c.get(client_id));
        if !filters.keeps(client) {
            continue;
        }
        let mut item = summary(&reader, client_id, session)?;
        item["details"] = json!(client.is_some());
        if let (Some(client), Some(fields)) = (client, item.as_object_mut())
            && let Value::Object(more) = connection(client)
        {
            fields.extend(more);
        }
        items.push(item);
    }
    Paging::new(filters.page, filters.limit).page(items)
}

/// A connected client's session and connection; 404 if it is not connected.
pub(super) async fn get(
    State(state): State<Arc<AdminState>>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let answer = detail(&state, &client_id).await?;
    if answer["connected"] != json!(true) {
        return Err(not_connected(&client_id));
    }
    Ok(Json(answer))
}

fn not_connected(client_id: &str) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("client {client_id:?} is not connected"),
    )
}

/// Disconnects the client wherever it is connected; its session stays if it has an expiry.
pub(super) async fn kick(
    State(state): State<Arc<AdminState>>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let connected = reader(&state)
        .session(&client_id)?
        .is_some_and(|s| s.owner.is_some());
    if !connected {
        return Err(not_connected(&client_id));
    }
    let (_, was_connected) = evict(&state, &client_id, false).await?;
    if !was_connected {
        return Err(not_connected(&client_id));
    }
    tracing::info!(client = %client_id, "API: client disconnected (administrative action)");
    Ok(Json(json!({ "disconnected": client_id })))
}
