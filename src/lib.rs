//! vggserve: transfer learning on small image datasets, served over HTTP.
//!
//! Layers, from the outside in: `api` (axum routes, errors) → `jobs` (durable queue,
//! the worker thread that owns training, events) and `predict` (inference thread) →
//! `train` (recipes) → `model` (VGG16, head, weights) and `data` (images, datasets);
//! `store` is the SQLite database. Only `api` and `startup` know about HTTP.

#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is our chosen backend.

pub mod api;
pub mod commands;
pub mod configuration;
pub mod data;
pub mod device;
pub mod jobs;
pub mod model;
pub mod predict;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tensor_io;
pub mod train;
