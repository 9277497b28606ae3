//! `/api/v1/retained`: the retained messages as this node has applied them, and clearing
//! one through the log (a retained PUBLISH with an empty payload, as a client clears one,
//! but at QoS 0 through the log only: no subscriber receives the empty message).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use super::paging::{Paging, query};
use super::sessions::reader;
use crate::cluster::command::{Command, Message, Outcome, Publish};
use crate::cluster::state::StoredMessage;
use crate::mqtt::topic::{parse_subscription_filter, validate_topic_name};

/// A message for people and scripts: the payload as text when it is UTF-8, and always in
/// base64.
pub(super) fn message_json(topic: &str, stored: &StoredMessage) -> Value {
    let message = &stored.message;
    json!({
        "topic": topic,
        "qos": message.qos,
        "payload": std::str::from_utf8(&message.payload).ok(),
        "payload_base64": base64::engine::general_purpose::STANDARD.encode(&message.payload),
        "size": message.payload.len(),
        "expires_at": stored.expires_at,
        "content_type": message.content_type,
        "user_properties": message
            .user_properties
            .iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    filter: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    asked: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let asked = query(asked)?;
    let filter = asked.filter.unwrap_or_else(|| "#".to_string());
    match parse_subscription_filter(&filter) {
        Ok(parsed) if parsed.share_group().is_none() => {}
        _ => {
            return Err(ApiError::bad_request(
                "invalid_filter",
                format!("{filter:?} is not a topic filter (shared filters are not)"),
            ));
        }
    }
    let items: Vec<Value> = reader(&state)
        .retained(&filter)?
        .iter()
        .map(|(topic, stored)| message_json(topic, stored))
        .collect();
    Paging::new(asked.page, asked.limit).page(items)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopicQuery {
    topic: String,
}

fn topic(asked: Result<Query<TopicQuery>, QueryRejection>) -> Result<String, ApiError> {
    let topic = query(asked)?.topic;
    validate_topic_name(&topic)
        .map_err(|e| ApiError::bad_request("invalid_topic", format!("topic {topic:?}: {e}")))?;
    Ok(topic)
}

fn not_retained(topic: &str) -> ApiError {
    ApiError::not_found("not_found", format!("no retained message on {topic:?}"))
}

/// The retained message of one topic (matched as a filter, so wildcards are refused).
fn find(state: &AdminState, topic: &str) -> Result<Option<Value>, ApiError> {
    Ok(reader(state)
        .retained(topic)?
        .iter()
        .find(|(t, _)| t == topic)
        .map(|(t, stored)| message_json(t, stored)))
}

pub(super) async fn get(
    State(state): State<Arc<AdminState>>,
    asked: Result<Query<TopicQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let topic = topic(asked)?;
    find(&state, &topic)?
        .map(Json)
        .ok_or_else(|| not_retained(&topic))
}

pub(super) async fn remove(
    State(state): State<Arc<AdminState>>,
    asked: Result<Query<TopicQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let topic = topic(asked)?;
    if find(&state, &topic)?.is_none() {
        return Err(not_retained(&topic));
    }
    let command = Command::Publish(Publish {
        from: None,
        packet_id: None,
        message: Message::new(topic.clone(), bytes::Bytes::new(), 0, true),
        now: crate::cluster::clock::now(),
    });
    match state.cluster.proposer().propose(command).await? {
        Outcome::Published { .. } => {
            tracing::info!(%topic, "API: retained message cleared");
            Ok(Json(json!({ "removed": topic })))
        }
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}
