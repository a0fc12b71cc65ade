//! `GET /openapi.json`: the API contract, kept beside the routes it describes.

use axum::http::header;
use axum::response::IntoResponse;

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}
