//! API errors: a status and a JSON body `{"error": "...", "field": ...}` naming the
//! problem ([`ErrorBody`], the one error shape of every route). Any other error converts
//! into an internal one: logged in full, answered 500 with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong, in words a user can act on.
    pub error: String,
    /// The request field, parameter or part it concerns, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// A service this one depends on (the database, the artifact store) did not answer:
    /// log the cause, answer 503 without it.
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage is unavailable; try again shortly (see the server log)",
        )
    }

    /// A dataset's folder that could not be made present: 503 if storage did not answer,
    /// else 500.
    pub fn dataset_folder(error: crate::data::catalog::FolderError) -> Self {
        use crate::data::catalog::FolderError;
        match error {
            FolderError::Unavailable(_) => Self::unavailable(error),
            FolderError::Broken(_) => Self::internal(error),
        }
    }

    /// Log the cause, answer 500 without it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (see the server log)",
        )
    }
}

/// Every error that is not already an `ApiError` is an internal one (the store, a join,
/// I/O): `?` logs it and answers 500. User-facing errors are built explicitly.
impl<E: Into<anyhow::Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self::internal(format!("{:#}", error.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            field: self.field,
        };
        (self.status, Json(body)).into_response()
    }
}
