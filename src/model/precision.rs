//! The number format the frozen conv base computes in at inference time.
//!
//! `f32` matches PyTorch's output (the golden test). `bf16` halves the bytes per weight and
//! activation; where the hardware runs bf16 at full rate (AMD's AVX-512 BF16, CUDA GPUs) the
//! convolutions run about twice as fast, elsewhere slower, so `--conv-precision auto` (the
//! default) measures rather than guesses (`autotune.rs`). bf16 outputs differ from f32 by
//! bf16 rounding (about 1% relative). `int8` quantises the frozen conv layers (`model::int8`),
//! calibrated on the photos a job trains on; where the CPU runs LibTorch's int8 kernels fast
//! it is about twice f32. Training always keeps the weights it updates in f32: only frozen,
//! no-grad passes use bf16 or int8, and the predictor runs int8 servers' models in f32 (their
//! calibration is a job's, not the predictor's).

use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    Int8,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The float format of the base's burn weights: int8 passes run in `model::int8`, beside
    /// an f32 network.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 | Self::Int8 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

/// `--conv-precision`: a fixed format, or `auto`, measured on the device at start-up
/// (`model::autotune`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum ConvPrecision {
    Auto,
    F32,
    Bf16,
    Int8,
}
