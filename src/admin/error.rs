//! The API's errors: an HTTP status and a JSON body with a stable `code` for scripts and a
//! `message` for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::cluster::proposer::ProposeError;

#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(super) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(super) fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<ProposeError> for ApiError {
    /// The change did not commit (no leader, lost leadership mid-way): try again.
    fn from(e: ProposeError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_committed",
            e.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

impl From<raftmq_storage::StoreError> for ApiError {
    /// The node's own copy of the state could not be read.
    fn from(e: raftmq_storage::StoreError) -> Self {
        ApiError::internal(format!("reading the state: {e}"))
    }
}

impl From<crate::cluster::members::MemberError> for ApiError {
    fn from(e: crate::cluster::members::MemberError) -> Self {
        use crate::cluster::members::MemberError;
        match &e {
            MemberError::NotMember(_) => ApiError::not_found("not_found", e.to_string()),
            MemberError::WrongNode { .. } => ApiError::bad_request("bad_request", e.to_string()),
            MemberError::Call(status) if status.code() == tonic::Code::NotFound => {
                ApiError::not_found("not_found", e.to_string())
            }
            MemberError::Call(status)
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument
                ) =>
            {
                ApiError::bad_request("bad_request", e.to_string())
            }
            _ => ApiError::unavailable(e.to_string()),
        }
    }
}
