//! Choosing where tensors live (`--device cpu|cuda|cuda:N`, CUDA by default when present),
//! and naming the hardware behind a device (what a speed measurement holds for).

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

/// What a measurement on `device` holds for: the CPU's model and core count, or the GPU's
/// name as the NVIDIA driver gives it.
pub fn hardware(device: &Device) -> String {
    match describe(device).as_str() {
        "cpu" => format!("cpu {}", cpu_model()),
        cuda => format!("{cuda} {}", gpu_model()),
    }
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{model} ×{}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )
}

/// The NVIDIA driver's name for the first GPU ("unknown" without one).
fn gpu_model() -> String {
    let dir = std::path::Path::new("/proc/driver/nvidia/gpus");
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
        .first()
        .and_then(|gpu| std::fs::read_to_string(gpu.join("information")).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Model:").map(|m| m.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".into())
}
