//! The one error shape every route answers with: an HTTP status, a stable machine code and
//! a sentence, as `{"error": {"code": "...", "message": "..."}}`.
//!
//! Codes are part of the API: scripts branch on them, so they never change meaning.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::CommandError;
use crate::store::StoreError;

/// A refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The callback already pending, for `duplicate`.
    pub existing: Option<String>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: `unauthorized`, `forbidden`, `not_found`, `invalid_request`, `bad_number`,
    /// `duplicate`, `conflict`, `taken`, `draining`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
    /// The callback already pending, for `duplicate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            existing: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is needed (Authorization: Bearer <token>)",
        )
    }

    pub fn forbidden(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token may not {what}"),
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                existing: self.existing,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::UnknownEntry { .. } | StoreError::UnknownAgent(_) => {
                Self::not_found(e.to_string())
            }
            StoreError::Rule(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            StoreError::Redis(_) | StoreError::Connect { .. } => {
                tracing::warn!(error = %e, "an API request met a Redis error");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unreachable; try again",
                )
            }
            _ => {
                tracing::error!(error = %e, "an API request failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let message = e.to_string();
        match e {
            CommandError::Store(e) => e.into(),
            CommandError::EngineGone => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            CommandError::Draining => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "draining", message)
            }
            CommandError::UnknownLine(_) => Self::not_found(message),
            CommandError::LineNotForQueue { .. } | CommandError::NoCallbacks(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
            }
            CommandError::BadNumber { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_number", message)
            }
            CommandError::Duplicate { entry } => Self {
                existing: Some(entry.to_string()),
                ..Self::new(StatusCode::CONFLICT, "duplicate", message)
            },
            CommandError::NotAnswered { .. }
            | CommandError::AlreadyAnswered { .. }
            | CommandError::OtherDaemon { .. }
            | CommandError::AgentNotFree { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", message)
            }
            CommandError::Taken { .. } => Self::new(StatusCode::CONFLICT, "taken", message),
            CommandError::ReloadRefused(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
            }
            CommandError::NotServing { .. } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            CommandError::SwitchDown => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    /// Not JSON is 400, JSON of the wrong shape (a missing or unknown field) 422, no JSON
    /// content type 415, too big 413: axum's statuses, in this API's shape.
    fn from(e: JsonRejection) -> Self {
        Self::new(e.status(), "invalid_request", e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::invalid(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::invalid(e.body_text())
    }
}
