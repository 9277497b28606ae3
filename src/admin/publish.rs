//! `POST /api/v1/publish`: a message published by the broker itself, by the path a
//! client's PUBLISH takes (see `BrokerHandle::publish`): QoS 1 and 2 are answered once the
//! log has committed them, QoS 0 once routed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use super::paging::body;
use crate::cluster::command::{Message, Outcome};
use crate::mqtt::topic::validate_topic_name;

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum PayloadEncoding {
    #[default]
    Plain,
    Base64,
}

/// The v5 properties a published message may carry.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Properties {
    message_expiry_interval: Option<u32>,
    payload_format_indicator: Option<bool>,
    content_type: Option<String>,
    response_topic: Option<String>,
    /// Correlation data in base64.
    correlation_data: Option<String>,
    #[serde(default)]
    user_properties: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishRequest {
    topic: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    payload_encoding: PayloadEncoding,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    properties: Option<Properties>,
}

fn base64(field: &str, text: &str) -> Result<bytes::Bytes, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(bytes::Bytes::from)
        .map_err(|e| ApiError::bad_request("bad_request", format!("{field} is not base64: {e}")))
}

/// The request as a message, or what is wrong with it.
fn message(request: PublishRequest) -> Result<Message, ApiError> {
    validate_topic_name(&request.topic).map_err(|e| {
        ApiError::bad_request("invalid_topic", format!("topic {:?}: {e}", request.topic))
    })?;
    if request.qos > 2 {
        return Err(ApiError::bad_request("bad_request", "qos is 0, 1 or 2"));
    }
    let payload = match request.payload_encoding {
        PayloadEncoding::Plain => bytes::Bytes::from(request.payload),
        PayloadEncoding::Base64 => base64("payload", &request.payload)?,
    };
    let mut message = Message::new(request.topic, payload, request.qos, request.retain);
    if let Some(p) = request.properties {
        if let Some(response_topic) = &p.response_topic {
            validate_topic_name(response_topic).map_err(|e| {
                ApiError::bad_request("invalid_topic", format!("response_topic: {e}"))
            })?;
        }
        if p.payload_format_indicator == Some(true)
            && std::str::from_utf8(&message.payload).is_err()
        {
            return Err(ApiError::bad_request(
                "bad_request",
                "payload_format_indicator says UTF-8 but the payload is not",
            ));
        }
        message.expiry_interval = p.message_expiry_interval;
        message.payload_format_utf8 = p.payload_format_indicator;
        message.content_type = p.content_type;
        message.response_topic = p.response_topic;
        message.correlation_data = p
            .correlation_data
            .map(|data| base64("correlation_data", &data))
            .transpose()?;
        message.user_properties = p.user_properties;
    }
    Ok(message)
}

pub(super) async fn publish(
    State(state): State<Arc<AdminState>>,
    request: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let message = message(body(request)?)?;
    let (topic, qos, retain, size) = (
        message.topic.clone(),
        message.qos,
        message.retain,
        message.payload.len(),
    );
    let matched = match state.broker.publish(message).await? {
        None => None,
        Some(Outcome::Published { matched, .. }) => Some(matched),
        Some(Outcome::Rejected { reason }) => {
            return Err(ApiError::bad_request(
                "bad_request",
                format!("refused: {reason:?}"),
            ));
        }
        Some(other) => return Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    };
    tracing::info!(%topic, qos, retain, size, "API: message published");
    Ok(Json(json!({
        "topic": topic,
        "qos": qos,
        "retain": retain,
        // Subscriptions the log routed it to (QoS 1 and 2, or retained); QoS 0 is routed
        // without the log and has no count.
        "matched": matched,
    })))
}
