//! `vggserve bench`: conv-base throughput by batch size, and end-to-end feature extraction
//! over a folder (decode + resize + forward), written as JSON. Timings live here, never
//! in tests.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::json;

use super::features::collect_images;
use super::ModelArgs;
use crate::data::batch::prefetch;
use crate::data::decode::ImageSpec;
use crate::tensor_io::tensor_to_vec;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch sizes for the forward-only measurement.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 20, 32])]
    pub batch_sizes: Vec<usize>,
    /// Timed repeats per batch size (the median is reported), after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Folder of images for the end-to-end measurement (skipped when absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use at most this many images of `--dir`.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Batch size of the end-to-end measurement.
    #[arg(long, default_value_t = 20)]
    pub e2e_batch_size: usize,
    /// Where to write the JSON results (also printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.repeats == 0 || args.batch_sizes.contains(&0) {
        bail!("--repeats and every batch size must be at least 1");
    }
    let base = args.model.base.load(None)?;
    let size = args.model.image_size as usize;
    let mut forward = Vec::new();
    for &batch in &args.batch_sizes {
        // Deterministic pseudo-images: throughput does not depend on pixel values.
        let images: Vec<Vec<u8>> = (0..batch)
            .map(|i| {
                (0..size * size * 3)
                    .map(|j| ((i * 31 + j * 7) % 251) as u8)
                    .collect()
            })
            .collect();
        let run_once = || -> anyhow::Result<f64> {
            let started = Instant::now();
            tensor_to_vec(base.features(&images, size)?)?;
            Ok(started.elapsed().as_secs_f64())
        };
        run_once()?; // warm-up: first calls allocate and pick kernels
        let mut times: Vec<f64> = (0..args.repeats)
            .map(|_| run_once())
            .collect::<anyhow::Result<_>>()?;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let entry = json!({
            "batch_size": batch,
            "median_seconds": median,
            "images_per_second": batch as f64 / median,
            "seconds": times,
        });
        eprintln!(
            "forward batch {batch}: {:.2} images/s",
            batch as f64 / median
        );
        forward.push(entry);
    }
    let e2e = match &args.dir {
        Some(dir) => Some(end_to_end(&base, &args, dir)?),
        None => None,
    };
    let result = json!({
        "device": crate::device::describe(&base.device),
        "weights_sha256": base.weights_sha256,
        "image_size": size,
        "conv_precision": base.precision,
        "threads": tch::get_num_threads(),
        "forward": forward,
        "end_to_end": e2e,
        "date": chrono::Utc::now().to_rfc3339(),
    });
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn end_to_end(
    base: &crate::model::ConvBase,
    args: &BenchArgs,
    dir: &PathBuf,
) -> anyhow::Result<serde_json::Value> {
    let mut files = collect_images(std::slice::from_ref(dir))?;
    if let Some(limit) = args.limit {
        files.truncate(limit);
    }
    if files.is_empty() {
        bail!("no images in {}", dir.display());
    }
    let spec = ImageSpec {
        size: args.model.image_size,
        filter: args.model.base.resize,
        ..Default::default()
    };
    let started = Instant::now();
    let mut done = 0usize;
    for batch in prefetch(files.clone(), args.e2e_batch_size.max(1), spec, 2) {
        if !batch.images.is_empty() {
            tensor_to_vec(base.features(&batch.images, spec.size as usize)?)?;
        }
        done += batch.images.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "end to end: {done} images in {seconds:.1}s = {:.2} images/s",
        done as f64 / seconds
    );
    Ok(json!({
        "images": done,
        "seconds": seconds,
        "images_per_second": done as f64 / seconds,
        "batch_size": args.e2e_batch_size,
        "dir": dir,
    }))
}
