//! Request deadline. A request whose handler has not answered in time (a client trickling
//! its upload, a stuck peer) gets 408 with a JSON error, and its work is dropped. Streaming
//! bodies (SSE) are not cut: the deadline covers producing the response, not sending it.
//! tower-http's `TimeoutLayer` does the same with an empty body; every error here is JSON.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

pub async fn limit(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request not completed within {} s", deadline.as_secs_f64()),
        )
        .into_response(),
    }
}
