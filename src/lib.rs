#![allow(deprecated)]
pub mod commands;
pub mod configuration;
pub mod data;
pub mod device;
pub mod jobs { pub mod spec; }
pub mod model;
pub mod store;
pub mod telemetry;
pub mod tensor_io;
pub mod train;
pub mod startup { pub fn run_blocking(_: crate::configuration::Settings) -> anyhow::Result<()> { anyhow::bail!("x") } }
