//! `vggserve weights fetch|convert`: get the official ImageNet VGG16 weights, or convert a
//! `.pth`/`.h5` file into the safetensors the service loads fastest.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::model::weights::write_safetensors;
use crate::model::{Preprocessing, WeightSet};

/// torchvision's ImageNet VGG16 (a full state dict; we keep `features.*`).
pub const OFFICIAL_URL: &str = "https://download.pytorch.org/models/vgg16-397923af.pth";
/// torchvision names its files after the first hex digits of their SHA-256 and checks that
/// prefix on download (`check_hash`); we pin the same digits, and a full digest when given.
pub const OFFICIAL_SHA256_PREFIX: &str = "397923af";

#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// Download the official torchvision VGG16, verify it, convert to safetensors.
    Fetch {
        #[arg(long, default_value = "weights/vgg16.safetensors")]
        out: PathBuf,
        #[arg(long, default_value = OFFICIAL_URL)]
        url: String,
        /// Expected SHA-256 (full hex digest or a prefix of it).
        #[arg(long, default_value = OFFICIAL_SHA256_PREFIX)]
        sha256: String,
    },
    /// Convert a weights file (.pth, .h5, .safetensors) to safetensors in torchvision names.
    Convert {
        input: PathBuf,
        out: PathBuf,
        /// Override the preprocessing recorded in the output.
        #[arg(long)]
        preprocessing: Option<Preprocessing>,
    },
}

pub fn run(command: WeightsCommand) -> anyhow::Result<()> {
    match command {
        WeightsCommand::Fetch { out, url, sha256 } => fetch(&url, &sha256, &out),
        WeightsCommand::Convert {
            input,
            out,
            preprocessing,
        } => convert(&input, &out, preprocessing),
    }
}

fn fetch(url: &str, expected: &str, out: &Path) -> anyhow::Result<()> {
    eprintln!("no weights found: fetching the official VGG16 weights from {url}");
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut download = tempfile::Builder::new()
        .suffix(".pth")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let response = match ureq::get(url).call() {
        Ok(response) => response,
        Err(e) => bail!(
            "cannot download {url} ({e}); offline? Set VGGSERVE_WEIGHTS to a local weights file (.safetensors, .pth or .h5)"
        ),
    };
    let mut reader = response.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("downloading {url}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        download.write_all(&buf[..n])?;
        total += n as u64;
    }
    let digest = hex::encode(hasher.finalize());
    if !digest.starts_with(&expected.to_ascii_lowercase()) {
        bail!("downloaded {total} bytes from {url} with SHA-256 {digest}, expected {expected}…: refusing it");
    }
    eprintln!("verified SHA-256 {digest} ({total} bytes); converting");
    let set = WeightSet::load(download.path(), Some(Preprocessing::Torch))?;
    let metadata = HashMap::from([
        ("origin".to_string(), url.to_string()),
        ("source_sha256".to_string(), digest),
    ]);
    write_safetensors(&set, out, metadata)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn convert(input: &Path, out: &Path, preprocessing: Option<Preprocessing>) -> anyhow::Result<()> {
    let set = WeightSet::load(input, preprocessing)?;
    let metadata = HashMap::from([
        ("origin".to_string(), input.display().to_string()),
        ("source_sha256".to_string(), set.sha256.clone()),
    ]);
    write_safetensors(&set, out, metadata)?;
    eprintln!(
        "wrote {} (preprocessing {})",
        out.display(),
        set.preprocessing
    );
    Ok(())
}
