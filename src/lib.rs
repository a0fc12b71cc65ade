//! vggserve: transfer learning on small image datasets, served over HTTP.
//!
//! Layers, from the outside in, each importing only those below it: `api` (axum routes,
//! errors) → `jobs` (queue, the worker thread that owns training, events) and `predict`
//! (the inference thread) → `train` (recipes) → `model` (VGG16, head, weights, saved
//! models) and `data` (images, datasets) → `tensor_io`; `store` (behind the `Store` trait)
//! and `domain` (the shared nouns) sit at the bottom. docs/ARCHITECTURE.md draws it.

#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is our chosen backend.

pub mod api;
pub mod artifacts;
pub mod commands;
pub mod configuration;
pub mod data;
pub mod device;
pub mod domain;
pub mod jobs;
pub mod model;
pub mod predict;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tensor_io;
pub mod train;
