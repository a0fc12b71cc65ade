//! The number format the frozen conv base computes in at inference time.
//!
//! `f32` is the default and matches PyTorch's output (the golden test). `bf16` halves the
//! bytes per weight and activation and, on CPUs with AVX-512 BF16 (or any CUDA GPU), runs
//! the convolutions about twice as fast; its outputs differ from f32 by bf16 rounding
//! (about 1% relative), measured in docs/BENCHMARKS.md for accuracy and speed. Training
//! always keeps the weights it updates in f32: only frozen, no-grad passes use bf16.

use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
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
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}
