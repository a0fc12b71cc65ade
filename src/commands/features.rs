//! `vggserve features`: conv-base outputs for image files/folders, or for a ready tensor
//! (`--tensor X.safetensors` with key `input` [N,3,H,W], already preprocessed) to check
//! the network against PyTorch. int8 is calibrated on (up to 32 of) the photos given; a
//! tensor, which is no photo, runs in f32 then. The output's metadata names the precision.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::ModelArgs;
use crate::data::batch::prefetch;
use crate::data::decode::{load_image, ImageSpec};
use crate::model::frozen::{spread, CALIBRATION_PHOTOS};
use crate::model::input::nchw_to_tensor;
use crate::model::layers::layer_index;
use crate::model::{ConvBase, Precision};
use crate::tensor_io::{read_f32_safetensors, tensor_to_vec, write_f32_safetensors};

#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// A safetensors file whose `input` [N,3,H,W] is fed as is (no decoding, no preprocessing;
    /// in f32 when the conv precision is int8, which calibrates on photos).
    #[arg(long, conflicts_with = "paths")]
    pub tensor: Option<PathBuf>,
    /// Also write this intermediate layer (e.g. block4_pool) next to block5_pool.
    #[arg(long)]
    pub also: Vec<String>,
    #[arg(long, default_value_t = 20)]
    pub batch_size: usize,
    /// Image files or folders (searched recursively, files sorted).
    pub paths: Vec<PathBuf>,
}

pub fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let base = args.model.base.load(None)?;
    let also: Vec<(String, usize)> = args
        .also
        .iter()
        .map(|name| {
            layer_index(name)
                .map(|i| (name.clone(), i + 1))
                .with_context(|| format!("unknown layer {name:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    match &args.tensor {
        Some(tensor) => from_tensor(&base, tensor, &also, &args),
        None => from_images(&base, &args),
    }
}

fn from_tensor(
    base: &ConvBase,
    path: &Path,
    also: &[(String, usize)],
    args: &FeaturesArgs,
) -> anyhow::Result<()> {
    let (tensors, _) = read_f32_safetensors(path)?;
    let input = tensors
        .get("input")
        .with_context(|| format!("{} has no tensor named `input`", path.display()))?;
    let [n, c, h, w]: [usize; 4] = input
        .shape
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("`input` must be [N,3,H,W], found {:?}", input.shape))?;
    if c != 3 {
        bail!("`input` must have 3 channels, found {c}");
    }
    let per_image = c * h * w;
    let mut outputs: Vec<(String, usize, Vec<f32>, Vec<usize>)> = also
        .iter()
        .map(|(name, end)| (name.clone(), *end, Vec::new(), Vec::new()))
        .collect();
    outputs.push((
        "block5_pool".into(),
        crate::model::layers::LAYERS.len(),
        Vec::new(),
        Vec::new(),
    ));
    for start in (0..n).step_by(args.batch_size) {
        let count = args.batch_size.min(n - start);
        let chunk = &input.data[start * per_image..(start + count) * per_image];
        let x = nchw_to_tensor(chunk, [count, c, h, w], &base.device);
        for (_, end, data, shape) in outputs.iter_mut() {
            let y = base.inference.forward_layers(x.clone(), 0..*end);
            *shape = y.dims().to_vec();
            data.extend(tensor_to_vec(y)?);
        }
    }
    let precision = base.inference.convs[0].weight.val().dtype();
    let metadata = HashMap::from([("conv_precision".to_string(), format!("{precision:?}"))]);
    write_outputs(&args.out, outputs, n, metadata)
}

fn from_images(base: &ConvBase, args: &FeaturesArgs) -> anyhow::Result<()> {
    let files = collect_images(&args.paths)?;
    if files.is_empty() {
        bail!("no image files found in the given paths");
    }
    let spec = ImageSpec {
        size: args.model.image_size,
        filter: args.model.base.resize,
        ..Default::default()
    };
    let base = &calibrated(base.clone(), &files, &spec)?;
    let total = files.len();
    let mut data = Vec::new();
    let mut shape = Vec::new();
    let mut kept = Vec::new();
    let started = std::time::Instant::now();
    for batch in prefetch(files.clone(), args.batch_size, spec, 2) {
        for bad in &batch.bad {
            eprintln!("skipping {}: {}", bad.path.display(), bad.reason);
        }
        if !batch.images.is_empty() {
            let y = base.features(&batch.images, spec.size as usize)?;
            shape = y.dims().to_vec();
            data.extend(tensor_to_vec(y)?);
            kept.extend(
                batch
                    .indices
                    .iter()
                    .map(|&i| files[i].display().to_string()),
            );
        }
        let done = batch.indices.last().map_or(0, |i| i + 1).max(kept.len());
        eprint!(
            "\r{done}/{total} images, {:.1} images/s",
            kept.len() as f64 / started.elapsed().as_secs_f64()
        );
        std::io::stderr().flush().ok();
    }
    eprintln!();
    let metadata = HashMap::from([
        ("files".to_string(), kept.join("\n")),
        ("conv_precision".to_string(), base.features_tag()),
    ]);
    let n = kept.len();
    write_outputs(
        &args.out,
        vec![("block5_pool".into(), 0, data, shape)],
        n,
        metadata,
    )
}

/// For int8, the base calibrated on up to 32 of `files`, evenly spaced (unreadable ones
/// left out).
fn calibrated(base: ConvBase, files: &[PathBuf], spec: &ImageSpec) -> anyhow::Result<ConvBase> {
    if base.precision != Precision::Int8 {
        return Ok(base);
    }
    let photos: Vec<Vec<u8>> = spread(files, CALIBRATION_PHOTOS)
        .iter()
        .filter_map(|file| load_image(&std::fs::read(file).ok()?, spec).ok())
        .collect();
    base.calibrated_on(&photos, spec.size as usize)
}

fn write_outputs(
    out: &Path,
    outputs: Vec<(String, usize, Vec<f32>, Vec<usize>)>,
    n: usize,
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = outputs
        .into_iter()
        .map(|(name, _, data, mut shape)| {
            if let Some(first) = shape.first_mut() {
                *first = n;
            }
            (name, shape, data)
        })
        .collect();
    write_f32_safetensors(
        out,
        tensors
            .iter()
            .map(|(name, shape, data)| (name.clone(), shape.clone(), data.as_slice())),
        metadata,
    )?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Image files under `paths`, folders walked recursively, sorted for a stable order.
pub fn collect_images(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files).with_context(|| format!("reading {}", path.display()))?;
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            matches!(
                e.to_ascii_lowercase().as_str(),
                "jpg" | "jpeg" | "png" | "webp" | "gif" | "bmp"
            )
        }) {
            files.push(path);
        }
    }
    Ok(())
}
