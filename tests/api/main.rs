//! HTTP tests against a real server process: every job kind, SSE replay and resume,
//! predictions, cancellation, restarts, invalid requests and dataset reports.

#[path = "../common/postgres.rs"]
mod postgres;
#[path = "../common/shared.rs"]
mod shared;

mod best_epoch;
mod chains;
mod classes;
mod datasets;
mod errors;
mod export;
mod health;
mod helpers;
mod import;
mod lifecycle;
mod readme;
mod recipes;
mod reports;
mod scale_out;
mod security;
