//! From staged images to a published dataset: the `.incoming` area an upload lives in (and
//! the drop guard that removes it), the two accepted layouts, the deterministic stratified
//! split, and the atomic publish into the datasets dir. No HTTP here.
//!
//! Layouts (after an optional single top folder wrapping everything, which is stripped):
//! `<split>/<class>/<image>` (splits train, validation, test), or `<class>/<image>` with a
//! [`SplitRule`]. The split is per class: the class's file names sorted, shuffled by ChaCha8
//! seeded with the seed and the class name; validation takes the first ⌊n·validation⌋, test
//! the next ⌊n·test⌋, train the rest (so train is never empty). Same files and seed, same split.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

use super::archive::{ArchiveError, Skipped, Staged};
use super::dataset::{validate_class_name, validate_name, Dataset, DatasetError, SPLITS};

/// The folder under the datasets dir where uploads are received and staged.
pub const INCOMING: &str = ".incoming";

/// One publish at a time: the "does the name exist" check and the rename go together.
static PUBLISH: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("dataset {0:?} already exists")]
    Exists(String),
    #[error("{field} {message}")]
    Fraction {
        field: &'static str,
        message: String,
    },
    #[error("no images in the upload")]
    NoImages,
    #[error("entry {0:?} does not fit a layout: use <split>/<class>/<image> (splits train, validation, test) or <class>/<image>")]
    Layout(String),
    #[error("the upload has <split>/<class>/<image> folders; validation_fraction and test_fraction apply only to <class>/<image> uploads")]
    FractionsWithSplits,
    #[error("a <class>/<image> upload needs validation_fraction and/or test_fraction to be split")]
    NoFractions,
    #[error("class {class:?} has {images} images: too few for a non-empty {split} split")]
    TooFew {
        class: String,
        split: &'static str,
        images: usize,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// How a `<class>/<image>` upload is split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRule {
    pub validation: f64,
    pub test: f64,
    pub seed: u64,
}

impl SplitRule {
    /// `None` when neither fraction is given; each in [0, 1), together below 1.
    pub fn new(
        validation: Option<f64>,
        test: Option<f64>,
        seed: Option<u64>,
    ) -> Result<Option<Self>, ImportError> {
        if validation.is_none() && test.is_none() {
            return Ok(None);
        }
        let (validation, test) = (validation.unwrap_or(0.0), test.unwrap_or(0.0));
        for (field, value) in [("validation_fraction", validation), ("test_fraction", test)] {
            if !(0.0..1.0).contains(&value) {
                return Err(ImportError::Fraction {
                    field,
                    message: format!("must be at least 0 and below 1, got {value}"),
                });
            }
        }
        if validation + test >= 1.0 {
            return Err(ImportError::Fraction {
                field: "test_fraction",
                message: format!(
                    "plus validation_fraction must be below 1, got {}",
                    validation + test
                ),
            });
        }
        Ok(Some(Self {
            validation,
            test,
            seed: seed.unwrap_or(0),
        }))
    }

    /// (validation, test) images out of `n`: ⌊n·fraction⌋ each (exact for decimal fractions).
    pub fn counts(&self, n: usize) -> (usize, usize) {
        let take = |f: f64| (n as f64 * f + 1e-9).floor() as usize;
        (take(self.validation), take(self.test))
    }
}

/// An upload's temporary files: `.incoming/<uuid>` (the body) and `.incoming/<uuid>.d/`
/// (staging). Dropping it removes both, and `.incoming` itself when empty; `cancelled`
/// stops work still running for a request that is gone.
pub struct Incoming {
    dir: PathBuf,
    body: PathBuf,
    staging: PathBuf,
    pub cancelled: Arc<AtomicBool>,
}

impl Incoming {
    pub fn new(datasets_dir: &Path) -> io::Result<Self> {
        let dir = datasets_dir.join(INCOMING);
        let id = uuid::Uuid::new_v4();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            body: dir.join(id.to_string()),
            staging: dir.join(format!("{id}.d")),
            dir,
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Where the request body (or the current multipart part) is written.
    pub fn body(&self) -> &Path {
        &self.body
    }

    /// Where the archive's images are extracted.
    pub fn raw(&self) -> PathBuf {
        self.staging.join("raw")
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.body);
        let _ = std::fs::remove_dir_all(&self.staging);
        // Fails, as it should, while another upload is under way.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Remove what uploads left in `.incoming` when the process died mid-upload (kill -9, a
/// crash): called at start-up, before any request, so nothing there belongs to a live one.
/// Returns how many entries were removed.
pub fn sweep_incoming(datasets_dir: &Path) -> io::Result<usize> {
    let dir = datasets_dir.join(INCOMING);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed += 1;
    }
    std::fs::remove_dir(&dir)?;
    Ok(removed)
}

/// The name is valid and not taken (checked before the body is read, and again at publish).
pub fn check_available(datasets_dir: &Path, name: &str) -> Result<(), ImportError> {
    validate_name(name)?;
    match datasets_dir.join(name).symlink_metadata() {
        Ok(_) => Err(ImportError::Exists(name.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Where one staged image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub from: Vec<String>,
    pub split: &'static str,
    pub class: String,
    pub file: String,
}

/// Recognise the layout of the staged images and place each one.
pub fn plan(files: &[Vec<String>], rule: Option<SplitRule>) -> Result<Vec<Placement>, ImportError> {
    let Some(first) = files.first() else {
        return Err(ImportError::NoImages);
    };
    let wrapped = !SPLITS.contains(&first[0].as_str())
        && files.iter().all(|f| f.len() >= 3 && f[0] == first[0]);
    let rel = |f: &Vec<String>| f[usize::from(wrapped)..].to_vec();
    let is_split = |r: &[String]| r.len() == 3 && SPLITS.contains(&r[0].as_str());
    if files.iter().any(|f| is_split(&rel(f))) {
        let placements = files
            .iter()
            .map(|f| {
                let r = rel(f);
                let split = SPLITS.iter().find(|s| r.len() == 3 && **s == r[0]);
                let split = split.ok_or_else(|| ImportError::Layout(f.join("/")))?;
                placement(f, split, &r[1], &r[2])
            })
            .collect::<Result<Vec<_>, _>>()?;
        if rule.is_some() {
            return Err(ImportError::FractionsWithSplits);
        }
        return Ok(placements);
    }
    if let Some(odd) = files.iter().find(|f| rel(f).len() != 2) {
        return Err(ImportError::Layout(odd.join("/")));
    }
    let rule = rule.ok_or(ImportError::NoFractions)?;
    let mut by_class: BTreeMap<String, Vec<&Vec<String>>> = BTreeMap::new();
    for f in files {
        by_class.entry(rel(f)[0].clone()).or_default().push(f);
    }
    let mut placements = Vec::new();
    for (class, mut members) in by_class {
        members.sort_by(|a, b| a.last().cmp(&b.last()));
        members.shuffle(&mut class_rng(rule.seed, &class));
        let n = members.len();
        let (validation, test) = rule.counts(n);
        for (split, fraction, count) in [
            ("validation", rule.validation, validation),
            ("test", rule.test, test),
        ] {
            if fraction > 0.0 && count == 0 {
                return Err(ImportError::TooFew {
                    class,
                    split,
                    images: n,
                });
            }
        }
        for (i, f) in members.into_iter().enumerate() {
            let split = match i {
                i if i < validation => "validation",
                i if i < validation + test => "test",
                _ => "train",
            };
            placements.push(placement(f, split, &class, f.last().expect("2 segments"))?);
        }
    }
    Ok(placements)
}

fn placement(
    from: &[String],
    split: &'static str,
    class: &str,
    file: &str,
) -> Result<Placement, ImportError> {
    validate_class_name(class)?;
    Ok(Placement {
        from: from.to_vec(),
        split,
        class: class.to_owned(),
        file: file.to_owned(),
    })
}

fn class_rng(seed: u64, class: &str) -> rand_chacha::ChaCha8Rng {
    let mut hash = Sha256::new();
    hash.update(seed.to_le_bytes());
    hash.update(class.as_bytes());
    rand_chacha::ChaCha8Rng::from_seed(hash.finalize().into())
}

/// The published dataset, as `GET /v1/datasets` lists it, and what was left out.
#[derive(Debug)]
pub struct Imported {
    pub dataset: Dataset,
    pub skipped: Vec<Skipped>,
}

/// Arrange the staged images into `<split>/<class>/<image>`, check the result is a dataset,
/// then rename it to `<datasets_dir>/<name>` in one step (refused if the name was taken
/// meanwhile, or if the request is gone).
pub fn publish(
    datasets_dir: &Path,
    incoming: &Incoming,
    staged: Staged,
    name: &str,
    rule: Option<SplitRule>,
) -> Result<Imported, ImportError> {
    validate_name(name)?;
    let placements = plan(&staged.files, rule)?;
    let raw = incoming.raw();
    // Staged under the dataset's own name, so that the checks below name it as the user does.
    let parent = incoming.staging.join("publish");
    let out = parent.join(name);
    for p in &placements {
        let dir = out.join(p.split).join(&p.class);
        std::fs::create_dir_all(&dir)?;
        let from = p.from.iter().fold(raw.clone(), |path, s| path.join(s));
        std::fs::rename(from, dir.join(&p.file))?;
    }
    // Train's classes must be every split's classes.
    Dataset::open(&parent, name)?;
    {
        let _one_at_a_time = PUBLISH.lock().unwrap_or_else(|e| e.into_inner());
        if incoming.cancelled.load(Ordering::SeqCst) {
            return Err(ArchiveError::Cancelled.into());
        }
        check_available(datasets_dir, name)?;
        std::fs::rename(&out, datasets_dir.join(name))?;
    }
    Ok(Imported {
        dataset: Dataset::open(datasets_dir, name)?,
        skipped: staged.skipped,
    })
}

/// Delete `<datasets_dir>/<name>`: a folder is first renamed into `.incoming` (so it
/// vanishes at once), then removed; a symlinked dataset loses the link only.
pub fn remove(datasets_dir: &Path, name: &str) -> Result<(), ImportError> {
    validate_name(name)?;
    let path = datasets_dir.join(name);
    let meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DatasetError::NotFound(name.to_owned()).into())
        }
        Err(e) => return Err(e.into()),
    };
    if !meta.is_dir() {
        std::fs::remove_file(&path)?;
        return Ok(());
    }
    let incoming = Incoming::new(datasets_dir)?;
    std::fs::rename(&path, &incoming.staging)?;
    drop(incoming);
    Ok(())
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
