//! `/api/v1/acl`: the ACL as this node applies it (file rules, then the cluster's, then the
//! default), and replacing the cluster's rules through the log.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use crate::auth::acl::{self, AclRule};
use crate::cluster::command::{Command, Outcome};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rules {
    rules: Vec<AclRule>,
}

pub(super) async fn show(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let current = state.acl.current();
    Json(json!({
        "default": current.default_permission(),
        "file": current.local_rules(),
        "cluster": current.cluster_rules(),
    }))
}

pub(super) async fn replace(
    State(state): State<Arc<AdminState>>,
    Json(body): Json<Rules>,
) -> Result<Json<Value>, ApiError> {
    acl::validate(&body.rules).map_err(|e| ApiError::bad_request("invalid_rule", e.to_string()))?;
    let count = body.rules.len();
    let command = Command::SetAcl { rules: body.rules };
    match state.cluster.proposer().propose(command).await? {
        Outcome::AclSet => {
            tracing::info!(rules = count, "API: cluster ACL replaced");
            Ok(Json(json!({ "rules": count })))
        }
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}
