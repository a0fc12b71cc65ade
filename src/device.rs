//! Choosing where tensors live: `--device cpu|cuda|cuda:N`, CUDA by default when present.

#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is our chosen backend.

use anyhow::{bail, Context};
use burn::prelude::Device;

/// Parse a device name; `None` or `"auto"` picks CUDA when LibTorch sees a GPU, else CPU.
pub fn parse(name: Option<&str>) -> anyhow::Result<Device> {
    let name = name.unwrap_or("auto");
    match name {
        "auto" if tch::Cuda::is_available() => Ok(Device::libtorch_cuda(0)),
        "auto" | "cpu" => Ok(Device::libtorch()),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:") {
            Some(index) => cuda(
                index
                    .parse()
                    .with_context(|| format!("invalid device {other:?}: bad CUDA index"))?,
            ),
            None => bail!("invalid device {other:?}: expected cpu, cuda or cuda:N"),
        },
    }
}

fn cuda(index: usize) -> anyhow::Result<Device> {
    let count = tch::Cuda::device_count();
    if index as i64 >= count {
        bail!("device cuda:{index} requested, but LibTorch sees {count} CUDA device(s)");
    }
    Ok(Device::libtorch_cuda(index))
}

/// A short name for logs and JSON ("cpu", "cuda:0").
pub fn describe(device: &Device) -> String {
    let text = format!("{device:?}");
    if text.contains("Cuda") {
        let index: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
        format!("cuda:{}", if index.is_empty() { "0" } else { &index })
    } else {
        "cpu".into()
    }
}
