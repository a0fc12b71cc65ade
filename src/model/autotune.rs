//! `--conv-precision auto`: the number format of frozen conv-base passes chosen by measuring
//! them on the device at hand, not by what the CPU claims to support. bf16 doubles the conv
//! base on some CPUs that report AVX-512 BF16 and slows it down on others (issue 15), so
//! every candidate (f32, bf16, and int8 on a CPU) runs a built-in reference input: its
//! features are compared with f32's, one image is timed, and a candidate not clearly slower
//! than f32 on it gets a batch timed (a few passes, a few seconds at most). The fastest
//! candidate whose features stay within its [`tolerance`] of f32's and that beats f32 by
//! [`MARGIN`] is chosen, else f32, so `auto` is never slower than f32 by more than the
//! measurement's noise. int8 is calibrated on the other reference images than the one its
//! features are compared on. The choice is kept in the data dir, keyed by the hardware,
//! the LibTorch version, the weights, this program's version and the candidates, so a
//! restart does not measure again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reference::{reference_images, BATCH, SIDE};
use super::{ConvBase, Precision};
use crate::tensor_io::tensor_to_vec;

/// Largest |candidate − f32| of the reference features, relative to f32's largest
/// magnitude, that a candidate may show: bf16 rounds every value to 8 bits of mantissa;
/// int8 quantises each layer's activations to 127 or 255 levels, and its error compounds
/// over 13 layers (PyTorch's own int8 base shows 1.4% on photos).
pub fn tolerance(precision: Precision) -> f64 {
    match precision {
        Precision::F32 => 0.0,
        Precision::Bf16 => 0.02,
        Precision::Int8 => 0.05,
    }
}
/// How much faster than f32 another precision must run to be chosen.
pub const MARGIN: f64 = 1.05;
/// Timed batch passes per candidate (after one untimed), fewer when the budget runs out.
const PASSES: usize = 3;
const BUDGET: Duration = Duration::from_secs(3);
/// A candidate this much slower than f32 on one image is not timed further.
const SLOWER: f64 = 1.25;

/// What was measured and what was chosen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    pub chosen: Precision,
    /// Conv-base images per second at batch 4, 150×150, per candidate (from one image
    /// for a candidate already clearly slower than f32 on it).
    pub rates: BTreeMap<Precision, f64>,
    /// Largest feature error relative to f32, per candidate.
    pub errors: BTreeMap<Precision, f64>,
    /// What the measurement holds for: hardware, LibTorch, weights, vggserve.
    pub key: String,
    /// Read from the data dir rather than measured now.
    #[serde(default)]
    pub cached: bool,
}

/// The base in the precision `auto` picks for it (measured, or as measured before and kept
/// under `cache_dir`).
pub fn choose(base: ConvBase, cache_dir: Option<&Path>) -> anyhow::Result<(ConvBase, Choice)> {
    let key = key(&base);
    let file =
        cache_dir.map(|dir| dir.join(format!("{}.json", hex::encode(&Sha256::digest(&key)[..8]))));
    if let Some(kept) = file.as_deref().and_then(read_kept) {
        if kept.key == key {
            let precision = kept.chosen;
            return Ok((
                base.with_precision(precision)?,
                Choice {
                    cached: true,
                    ..kept
                },
            ));
        }
    }
    let choice = measure(&base, key)?;
    if let Some(file) = &file {
        if let Err(error) = keep(file, &choice) {
            tracing::warn!(%error, file = %file.display(), "cannot keep the precision measurement");
        }
    }
    Ok((base.with_precision(choice.chosen)?, choice))
}

fn measure(base: &ConvBase, key: String) -> anyhow::Result<Choice> {
    let images = reference_images();
    let mut rates = BTreeMap::new();
    let mut errors = BTreeMap::new();
    // f32's features and single-image time, which the others are held to.
    let mut reference: Option<(Vec<f32>, f64)> = None;
    for precision in candidates(base) {
        let run = || figures(base, precision, &images, reference.as_ref());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
        let (rate, error, features, single) = match outcome {
            Ok(Ok(figures)) => figures,
            // f32 is what the server ran before `auto`: its failure is the server's.
            Ok(Err(error)) if precision == Precision::F32 => return Err(error),
            Err(panic) if precision == Precision::F32 => std::panic::resume_unwind(panic),
            // A candidate the device cannot run is not a candidate.
            Ok(Err(error)) => {
                tracing::warn!(%precision, error = format!("{error:#}"), "conv precision cannot run here");
                continue;
            }
            Err(_) => {
                tracing::warn!(%precision, "conv precision panicked here");
                continue;
            }
        };
        rates.insert(precision, rate);
        errors.insert(precision, error);
        reference.get_or_insert((features, single));
    }
    Ok(Choice {
        chosen: pick(&rates, &errors),
        rates,
        errors,
        key,
        cached: false,
    })
}

/// One candidate's rate (images/s) and feature error against `reference` (f32's features
/// and single-image time; none when measuring f32 itself), with its own features and
/// single-image time.
fn figures(
    base: &ConvBase,
    precision: Precision,
    images: &[Vec<u8>],
    reference: Option<&(Vec<f32>, f64)>,
) -> anyhow::Result<(f64, f64, Vec<f32>, f64)> {
    let candidate = base.clone().with_precision(precision)?;
    let one = &images[..1];
    // An untimed first pass (one-time set-up) gives the features the guard compares.
    let features = tensor_to_vec(candidate.features(one, SIDE)?)?;
    let single = timed(|| candidate.features(one, SIDE))?;
    let error = reference.map_or(0.0, |(f32s, _)| relative_error(f32s, &features));
    // Clearly slower than f32 on one image: not worth timing a batch.
    if reference.is_some_and(|(_, f32_single)| single > f32_single * SLOWER) {
        return Ok((1.0 / single, error, features, single));
    }
    candidate.features(images, SIDE)?;
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < PASSES && (times.is_empty() || started.elapsed() < BUDGET) {
        times.push(timed(|| candidate.features(images, SIDE))?);
    }
    times.sort_by(f64::total_cmp);
    Ok((
        BATCH as f64 / times[times.len() / 2],
        error,
        features,
        single,
    ))
}

/// The fastest candidate within its [`tolerance`] of f32 and [`MARGIN`] faster than it, else
/// f32.
fn pick(rates: &BTreeMap<Precision, f64>, errors: &BTreeMap<Precision, f64>) -> Precision {
    let f32_rate = rates.get(&Precision::F32).copied().unwrap_or(0.0);
    rates
        .iter()
        .filter(|(p, rate)| {
            **p == Precision::F32
                || (errors.get(p).is_some_and(|e| *e <= tolerance(**p))
                    && **rate >= f32_rate * MARGIN)
        })
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(Precision::F32, |(p, _)| *p)
}

/// Seconds one pass takes, its result read back (LibTorch may run lazily on a GPU).
fn timed(pass: impl Fn() -> anyhow::Result<burn::prelude::Tensor<4>>) -> anyhow::Result<f64> {
    let started = Instant::now();
    tensor_to_vec(pass()?)?;
    Ok(started.elapsed().as_secs_f64())
}

/// Max |b − a| over max |a|.
fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let scale = a
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    f64::from(worst / scale)
}

/// What runs on `base`'s device: int8 runs LibTorch's CPU kernels only.
fn candidates(base: &ConvBase) -> Vec<Precision> {
    let int8 = (crate::device::describe(&base.device) == "cpu").then_some(Precision::Int8);
    [Precision::F32, Precision::Bf16]
        .into_iter()
        .chain(int8)
        .collect()
}

/// The hardware (CPU model, or the GPU's), LibTorch, the weights, vggserve and the
/// candidates (a measurement from before int8 existed does not stand for one with it).
fn key(base: &ConvBase) -> String {
    let hardware = crate::device::hardware(&base.device);
    let candidates: Vec<&str> = candidates(base)
        .into_iter()
        .map(Precision::as_str)
        .collect();
    format!(
        "{hardware} | libtorch {} | weights {} | vggserve {} | candidates {}",
        env!("VGGSERVE_LIBTORCH_VERSION"),
        base.weights_sha256,
        env!("CARGO_PKG_VERSION"),
        candidates.join(" ")
    )
}

fn read_kept(file: &Path) -> Option<Choice> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

fn keep(file: &Path, choice: &Choice) -> anyhow::Result<()> {
    let dir = file.parent().ok_or_else(|| anyhow::anyhow!("no folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(tmp.as_file(), choice)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_relative_to_the_largest_reference_value() {
        assert_eq!(relative_error(&[2.0, -4.0], &[2.0, -4.0]), 0.0);
        assert!((relative_error(&[2.0, -4.0], &[2.2, -4.0]) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn the_fastest_accurate_candidate_wins_and_f32_otherwise() {
        let pick_from = |bf16_rate: f64, bf16_error: f64| {
            let rates = BTreeMap::from([(Precision::F32, 10.0), (Precision::Bf16, bf16_rate)]);
            let errors = BTreeMap::from([(Precision::F32, 0.0), (Precision::Bf16, bf16_error)]);
            pick(&rates, &errors)
        };
        assert_eq!(
            pick_from(20.0, 0.004),
            Precision::Bf16,
            "twice as fast, accurate"
        );
        assert_eq!(pick_from(20.0, 0.05), Precision::F32, "fast but off by 5%");
        assert_eq!(
            pick_from(10.3, 0.004),
            Precision::F32,
            "within the noise margin"
        );
        assert_eq!(
            pick_from(1.5, 0.004),
            Precision::F32,
            "slower (an Intel without AMX)"
        );
    }

    #[test]
    fn int8_has_its_own_tolerance_and_the_fastest_wins() {
        let pick_from = |int8_rate: f64, int8_error: f64| {
            let rates = BTreeMap::from([
                (Precision::F32, 10.0),
                (Precision::Bf16, 15.0),
                (Precision::Int8, int8_rate),
            ]);
            let errors = BTreeMap::from([
                (Precision::F32, 0.0),
                (Precision::Bf16, 0.004),
                (Precision::Int8, int8_error),
            ]);
            pick(&rates, &errors)
        };
        assert_eq!(
            pick_from(20.0, 0.03),
            Precision::Int8,
            "3% is within int8's 5%"
        );
        assert_eq!(pick_from(20.0, 0.08), Precision::Bf16, "int8 off by 8%");
        assert_eq!(pick_from(14.0, 0.01), Precision::Bf16, "bf16 is the faster");
    }
}
