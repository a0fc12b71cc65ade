//! Extractors whose rejections are [`ApiError`]s, so a malformed path or query gets the
//! same JSON error shape as everything else.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::ApiError;

/// The `{id}` of a route, which must be a UUID (400 naming `id` otherwise).
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()).field("id"))?;
        Uuid::parse_str(&text)
            .map(PathId)
            .map_err(|_| ApiError::bad_request(format!("id {text:?} is not a UUID")).field("id"))
    }
}

/// A query string read into `T`; unknown or malformed parameters are a 400 naming them.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|e| {
                let text = e.body_text();
                let field = text
                    .split_once("unknown field `")
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(field, _)| field.to_owned());
                let error = ApiError::bad_request(format!("invalid query: {text}"));
                match field {
                    Some(field) => error.field(field),
                    None => error,
                }
            })
    }
}
