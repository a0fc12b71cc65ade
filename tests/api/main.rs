//! HTTP tests against a real server process: every job kind, SSE replay and resume,
//! predictions, cancellation, restarts and invalid requests.

#[path = "../common/shared.rs"]
mod shared;

mod datasets;
mod errors;
mod health;
mod helpers;
mod lifecycle;
mod recipes;
mod security;
