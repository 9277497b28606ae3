//! `/api/v1/users`: the cluster's users. Passwords are hashed here (argon2id, on a
//! blocking thread) and only the hash is proposed; no password is logged or answered.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminState;
use super::error::ApiError;
use crate::auth::password;
use crate::cluster::command::{Command, Outcome, UserChange};
use crate::cluster::state::BrokerReader;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPassword {
    password: String,
}

/// MQTT carries usernames as UTF-8 strings of at most 65,535 bytes without U+0000; a name
/// with a control character would be unreadable in logs and listings.
fn check_username(username: &str) -> Result<(), ApiError> {
    if username.is_empty() || username.len() > 65_535 || username.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_username",
            "a username is 1 to 65535 bytes of UTF-8 without control characters",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.is_empty() || password.len() > 65_535 {
        return Err(ApiError::bad_request(
            "invalid_password",
            "a password is 1 to 65535 bytes",
        ));
    }
    Ok(())
}

async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(password.as_bytes()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn change(state: &AdminState, change: UserChange) -> Result<u32, ApiError> {
    match state
        .cluster
        .proposer()
        .propose(Command::User(change))
        .await?
    {
        Outcome::UsersChanged { count } => Ok(count),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

fn kind_name(hash: &str) -> &'static str {
    match password::kind(hash) {
        Ok(password::HashKind::Argon2) => "argon2id",
        Ok(password::HashKind::MosquittoPbkdf2) => "mosquitto-pbkdf2-sha512",
        Ok(password::HashKind::MosquittoSha512) => "mosquitto-sha512",
        Err(_) => "unreadable",
    }
}

pub(super) async fn list(State(state): State<Arc<AdminState>>) -> Result<Json<Value>, ApiError> {
    let users = BrokerReader::new(state.cluster.state())
        .users()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let users: Vec<Value> = users
        .iter()
        .map(|(name, record)| json!({ "username": name, "hash": kind_name(&record.hash) }))
        .collect();
    Ok(Json(json!({ "users": users })))
}

pub(super) async fn add(
    State(state): State<Arc<AdminState>>,
    Json(user): Json<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_username(&user.username)?;
    check_password(&user.password)?;
    let hash = hash(user.password).await?;
    let added = change(
        &state,
        UserChange::Add {
            username: user.username.clone(),
            hash,
        },
    )
    .await?;
    if added == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!(
                "user {:?} exists (change its password with PUT)",
                user.username
            ),
        ));
    }
    tracing::info!(user = %user.username, "API: user added");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "username": user.username })),
    ))
}

pub(super) async fn set_password(
    State(state): State<Arc<AdminState>>,
    Path(username): Path<String>,
    Json(new): Json<NewPassword>,
) -> Result<Json<Value>, ApiError> {
    check_password(&new.password)?;
    let hash = hash(new.password).await?;
    let changed = change(
        &state,
        UserChange::SetPassword {
            username: username.clone(),
            hash,
            only_if: None,
        },
    )
    .await?;
    if changed == 0 {
        return Err(no_such_user(&username));
    }
    tracing::info!(user = %username, "API: password changed");
    Ok(Json(json!({ "username": username })))
}

pub(super) async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let removed = change(
        &state,
        UserChange::Remove {
            username: username.clone(),
        },
    )
    .await?;
    if removed == 0 {
        return Err(no_such_user(&username));
    }
    tracing::info!(user = %username, "API: user removed");
    Ok(Json(json!({ "removed": username })))
}

/// A Mosquitto password file as the body: its users are added, or replace users of the
/// same name, with their hashes as they are.
pub(super) async fn import(
    State(state): State<Arc<AdminState>>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let users = password::parse_mosquitto_file(&body)
        .map_err(|e| ApiError::bad_request("invalid_password_file", e.to_string()))?;
    for (username, _) in &users {
        check_username(username)?;
    }
    let names: Vec<String> = users.iter().map(|(name, _)| name.clone()).collect();
    let imported = change(&state, UserChange::Import { users }).await?;
    tracing::info!(users = ?names, "API: users imported from a Mosquitto password file");
    Ok(Json(json!({ "imported": imported })))
}

fn no_such_user(username: &str) -> ApiError {
    ApiError::not_found("user_not_found", format!("no user {username:?}"))
}
