//! `/api/v1/sessions` and `/api/v1/subscriptions`: the replicated sessions, online and
//! offline, as this node has applied them, and removing one through the log. The views of
//! a session shared with the client listing ([`super::clients`]) are here.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use super::paging::{Paging, query};
use crate::cluster::command::{Command, Evict, Outcome, RetainHandling, Stage};
use crate::cluster::proto::pb;
use crate::cluster::state::{BrokerReader, SessionRecord, SubscriptionRecord};
use crate::cluster::types::NodeId;
use crate::mqtt::topic::{matches, parse_subscription_filter, validate_topic_name};

/// How long the owner of a connection has to answer for its details.
pub(super) const DETAILS_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn reader(state: &AdminState) -> BrokerReader {
    BrokerReader::new(state.cluster.state())
}

/// A session in a listing: what the replicated state holds of it.
pub(super) fn summary(
    reader: &BrokerReader,
    client_id: &str,
    session: &SessionRecord,
) -> Result<Value, ApiError> {
    let queue = reader.queue(client_id)?.unwrap_or_default();
    let subscriptions = reader.subscriptions(client_id)?.len();
    Ok(json!({
        "client_id": client_id,
        "connected": session.owner.is_some(),
        "node": session.owner,
        "protocol": session.protocol,
        // Seconds; 4294967295 never expires, 0 ends with the connection.
        "session_expiry": session.session_expiry,
        "expires_at": session.expires_at,
        "subscriptions": subscriptions,
        "in_flight": queue.in_flight,
        "queued": queue.queued,
        "dropped": queue.dropped,
    }))
}

fn retain_handling(handling: RetainHandling) -> u8 {
    match handling {
        RetainHandling::SendAtSubscribe => 0,
        RetainHandling::SendIfNewSubscription => 1,
        RetainHandling::DoNotSend => 2,
    }
}

pub(super) fn subscription(client_id: &str, filter: &str, record: &SubscriptionRecord) -> Value {
    json!({
        "client_id": client_id,
        "filter": filter,
        "qos": record.options.qos,
        "no_local": record.options.no_local,
        "retain_as_published": record.options.retain_as_published,
        "retain_handling": retain_handling(record.options.retain_handling),
        "subscription_id": record.subscription_id,
    })
}

/// A connection as its node describes it.
pub(super) fn connection(client: &pb::ConnectedClient) -> Value {
    json!({
        "address": client.peer,
        "via": client.via,
        "listener": client.listener,
        "identity": client.identity,
        "username": client.username,
        "protocol": client.protocol,
        "keep_alive": client.keep_alive,
        "connected_at": client.connected_at,
        "session_present": client.session_present,
    })
}

/// The connection of `client_id` on `node`, if that node answers and holds it.
pub(super) async fn connection_on(
    state: &AdminState,
    node: NodeId,
    client_id: &str,
) -> Result<Option<pb::ConnectedClient>, ApiError> {
    let clients = state
        .cluster
        .connected_clients(node, DETAILS_TIMEOUT)
        .await?;
    Ok(clients.into_iter().find(|c| c.client_id == client_id))
}

/// Everything about one session: its summary, subscriptions, queue and in-flight entries,
/// and its connection as the owner node describes it (`null` if it is offline; an error
/// object if the owner does not answer).
pub(super) async fn detail(state: &AdminState, client_id: &str) -> Result<Value, ApiError> {
    let reader = reader(state);
    let session = reader
        .session(client_id)?
        .ok_or_else(|| no_such_session(client_id))?;
    let mut answer = summary(&reader, client_id, &session)?;
    let subscriptions: Vec<Value> = reader
        .subscriptions(client_id)?
        .iter()
        .map(|(filter, record)| subscription(client_id, filter, record))
        .collect();
    let mut queued_bytes = 0u64;
    for entry in reader.queued(client_id)? {
        if let Some(id) = entry.message_id
            && let Some(stored) = reader.message(id)?
        {
            queued_bytes += stored.message.payload.len() as u64;
        }
    }
    let in_flight: Vec<Value> = reader
        .in_flight(client_id)?
        .iter()
        .map(|entry| {
            json!({
                "packet_id": entry.packet_id,
                "qos": entry.qos,
                "stage": match entry.stage {
                    Stage::AwaitingAck => "awaiting_ack",
                    Stage::AwaitingComp => "awaiting_comp",
                },
            })
        })
        .collect();
    let will = reader.will(client_id)?.map(|will| {
        json!({ "topic": will.message.topic, "qos": will.message.qos,
                "retain": will.message.retain, "delay": will.delay })
    });
    let connection = match session.owner {
        None => Value::Null,
        Some(node) => match connection_on(state, node, client_id).await {
            Ok(Some(client)) => connection(&client),
            Ok(None) => json!({ "error": format!("node {node} holds no such connection now") }),
            Err(e) => json!({ "error": e.message }),
        },
    };
    answer["subscription_list"] = json!(subscriptions);
    answer["queued_bytes"] = json!(queued_bytes);
    answer["in_flight_list"] = json!(in_flight);
    answer["will"] = json!(will);
    answer["connection"] = connection;
    Ok(answer)
}

pub(super) fn no_such_session(client_id: &str) -> ApiError {
    ApiError::not_found("not_found", format!("no session of client {client_id:?}"))
}

/// Closes the client's connection wherever it is (5.0 DISCONNECT 0x98), through the log so
/// that the node holding it hears of it; with `remove_session`, ends the session too.
/// Whether such a session existed, and whether it was connected.
pub(super) async fn evict(
    state: &AdminState,
    client_id: &str,
    remove_session: bool,
) -> Result<(bool, bool), ApiError> {
    let command = Command::Evict(Evict {
        client_id: client_id.to_string(),
        remove_session,
        now: crate::cluster::clock::now(),
    });
    match state.cluster.proposer().propose(command).await? {
        Outcome::Evicted {
            existed,
            connection,
            ..
        } => Ok((existed, connection.is_some())),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionFilters {
    node: Option<NodeId>,
    client_id_prefix: Option<String>,
    connected: Option<bool>,
    page: Option<usize>,
    limit: Option<usize>,
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    filters: Result<Query<SessionFilters>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let filters = query(filters)?;
    let reader = reader(&state);
    let mut items = Vec::new();
    for (client_id, session) in reader.sessions()? {
        let keep = filters.node.is_none_or(|n| session.owner == Some(n))
            && filters
                .client_id_prefix
                .as_deref()
                .is_none_or(|p| client_id.starts_with(p))
            && filters
                .connected
                .is_none_or(|c| c == session.owner.is_some());
        if keep {
            items.push(summary(&reader, &client_id, &session)?);
        }
    }
    Paging::new(filters.page, filters.limit).page(items)
}

pub(super) async fn get(
    State(state): State<Arc<AdminState>>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(detail(&state, &client_id).await?))
}

pub(super) async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (existed, connected) = evict(&state, &client_id, true).await?;
    if !existed {
        return Err(no_such_session(&client_id));
    }
    tracing::info!(client = %client_id, connected, "API: session removed");
    Ok(Json(
        json!({ "removed": client_id, "was_connected": connected }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriptionFilters {
    client_id: Option<String>,
    /// A topic name: the subscriptions whose filter matches it.
    topic: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

/// The filter a subscription matches topics with: a shared one's without `$share/group/`.
fn matching_part(filter: &str) -> Option<&str> {
    parse_subscription_filter(filter).ok().map(|f| f.filter())
}

pub(super) async fn subscriptions(
    State(state): State<Arc<AdminState>>,
    filters: Result<Query<SubscriptionFilters>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let filters = query(filters)?;
    if let Some(topic) = &filters.topic {
        validate_topic_name(topic)
            .map_err(|e| ApiError::bad_request("invalid_topic", format!("topic: {e}")))?;
    }
    let reader = reader(&state);
    let clients: Vec<String> = match &filters.client_id {
        Some(client_id) => {
            if reader.session(client_id)?.is_none() {
                return Err(no_such_session(client_id));
            }
            vec![client_id.to_string()]
        }
        None => reader.sessions()?.into_iter().map(|(id, _)| id).collect(),
    };
    let mut items = Vec::new();
    for client_id in clients {
        for (filter, record) in reader.subscriptions(&client_id)? {
            let reaches = filters.topic.as_deref().is_none_or(|topic| {
                matching_part(&filter).is_some_and(|pattern| matches(pattern, topic))
            });
            if reaches {
                items.push(subscription(&client_id, &filter, &record));
            }
        }
    }
    Paging::new(filters.page, filters.limit).page(items)
}
