//! A prefetching loader: it decodes the next batches of image files on other threads while
//! the current one runs through the network. Images come out as HWC bytes; turning them
//! into tensors is the model's business (`model::input`).

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use rayon::prelude::*;

use super::decode::{load_image, ImageSpec};

/// A file that could not be decoded, and why.
#[derive(Debug, Clone)]
pub struct BadFile {
    pub path: PathBuf,
    pub reason: String,
}

/// One decoded batch: images (HWC bytes) in file order, with the files' indices.
pub struct DecodedBatch {
    pub indices: Vec<usize>,
    pub images: Vec<Vec<u8>>,
    pub bad: Vec<BadFile>,
}

/// Decode `paths` in batches of `batch_size` on a background thread, at most `ahead`
/// batches in flight (bounded memory). Iterating yields batches in order.
pub fn prefetch(
    paths: Vec<PathBuf>,
    batch_size: usize,
    spec: ImageSpec,
    ahead: usize,
) -> impl Iterator<Item = DecodedBatch> {
    let (tx, rx) = mpsc::sync_channel(ahead.max(1));
    thread::spawn(move || {
        let total = paths.len();
        for start in (0..total).step_by(batch_size.max(1)) {
            let end = (start + batch_size).min(total);
            let decoded: Vec<(usize, Result<Vec<u8>, BadFile>)> = (start..end)
                .into_par_iter()
                .map(|i| (i, read_and_decode(&paths[i], &spec)))
                .collect();
            let mut batch = DecodedBatch {
                indices: Vec::new(),
                images: Vec::new(),
                bad: Vec::new(),
            };
            for (i, result) in decoded {
                match result {
                    Ok(image) => {
                        batch.indices.push(i);
                        batch.images.push(image);
                    }
                    Err(bad) => batch.bad.push(bad),
                }
            }
            if tx.send(batch).is_err() {
                return; // the consumer stopped (cancelled job): stop decoding.
            }
        }
    });
    rx.into_iter()
}

fn read_and_decode(path: &PathBuf, spec: &ImageSpec) -> Result<Vec<u8>, BadFile> {
    let bad = |reason: String| BadFile {
        path: path.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    load_image(&bytes, spec).map_err(|e| bad(e.to_string()))
}
