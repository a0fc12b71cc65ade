//! The command line: `serve`, `features`, `weights` and `bench`.

mod bench;
mod features;
mod weights;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::configuration::Settings;
use crate::data::decode::ResizeFilter;
use crate::model::{Precision, Preprocessing};

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
    /// Write conv-base features (block5_pool) for images, folders or a ready tensor.
    Features(features::FeaturesArgs),
    /// Fetch or convert pretrained weights.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
    /// Measure conv-base throughput and end-to-end feature extraction; writes JSON.
    Bench(bench::BenchArgs),
}

/// Flags shared by the commands that load the conv base.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Conv-base weights (.safetensors, .pth or .h5).
    #[arg(
        long,
        env = "VGGSERVE_WEIGHTS",
        default_value = "weights/vgg16.safetensors"
    )]
    pub weights: PathBuf,
    /// cpu, cuda or cuda:N (default: CUDA when available, else CPU).
    #[arg(long, env = "VGGSERVE_DEVICE")]
    pub device: Option<String>,
    /// Override the preprocessing the weights file declares.
    #[arg(long)]
    pub preprocessing: Option<Preprocessing>,
    /// Number format of the conv base: f32 (matches PyTorch) or bf16 (faster; see the README).
    #[arg(long, env = "VGGSERVE_CONV_PRECISION", default_value = "f32")]
    pub conv_precision: Precision,
    /// Square input size in pixels.
    #[arg(long, default_value_t = 150)]
    pub image_size: u32,
    #[arg(long, default_value = "nearest")]
    pub resize: ResizeFilter,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<crate::model::ConvBase> {
        let device = crate::device::parse(self.device.as_deref())?;
        Ok(
            crate::model::ConvBase::load(&self.weights, self.preprocessing, &device)?
                .with_precision(self.conv_precision),
        )
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(settings) => crate::startup::run_blocking(*settings),
        Command::Features(args) => features::run(args),
        Command::Weights(command) => weights::run(command),
        Command::Bench(args) => bench::run(args),
    }
}
