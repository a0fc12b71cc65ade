//! The command line: `serve`, `worker`, `features`, `weights`, `bench` and `dataset-report`.

mod bench;
mod dataset_report;
mod features;
mod weights;

use clap::{Parser, Subcommand};

use crate::configuration::{BaseArgs, Settings, WorkerSettings};

#[derive(Debug, Parser)]
#[command(
    name = "vggserve",
    version,
    about = "Transfer learning with VGG16, served over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(Box<Settings>),
    /// Claim and run jobs from a shared database (no public API; health and metrics on
    /// --health-addr). Start as many as there are machines to train on.
    Worker(Box<WorkerSettings>),
    /// Write conv-base features (block5_pool) for images, folders or a ready tensor.
    Features(features::FeaturesArgs),
    /// Fetch or convert pretrained weights.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
    /// Measure conv-base throughput and end-to-end feature extraction; writes JSON.
    Bench(bench::BenchArgs),
    /// Check a dataset as the server does before training: unreadable files, duplicates
    /// within and across splits, near-duplicates, imbalance, sizes.
    DatasetReport(dataset_report::DatasetReportArgs),
}

/// Flags shared by the commands that load the conv base outside the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub base: BaseArgs,
    /// Square input size in pixels.
    #[arg(long, default_value_t = 150)]
    pub image_size: u32,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(settings) => crate::startup::run_blocking(*settings),
        Command::Worker(settings) => crate::startup::run_worker_blocking(*settings),
        Command::Features(args) => features::run(args),
        Command::Weights(command) => weights::run(command),
        Command::Bench(args) => bench::run(args),
        Command::DatasetReport(args) => dataset_report::run(args),
    }
}
