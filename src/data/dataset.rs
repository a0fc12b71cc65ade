//! Datasets in Keras's `flow_from_directory` layout: `<datasets>/<name>/<split>/<class>/<img>`.
//!
//! Classes are the sub-folder names sorted, as Keras does, so label 0 is the first name.
//! Names are untrusted input: a dataset name is one plain path segment, and the resolved
//! folder must stay inside the datasets directory even through symlinks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// File extensions read as images (Keras's list, plus WebP and GIF which we decode too).
const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "ppm"];

pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatasetError {
    #[error(
        "invalid dataset name {0:?}: use one folder name (letters, digits, '-', '_', '.'), no path"
    )]
    InvalidName(String),
    #[error(
        "invalid class name {0:?}: one folder name of at most 128 bytes, without '/', '\\', \
         control characters, surrounding spaces or a leading '.'"
    )]
    InvalidClass(String),
    #[error("dataset {0:?} not found in the datasets directory")]
    NotFound(String),
    #[error("dataset {0:?} resolves outside the datasets directory")]
    Escapes(String),
    #[error("dataset {dataset:?} has no {split:?} split")]
    MissingSplit { dataset: String, split: String },
    #[error("dataset {dataset:?}, split {split:?}: no class folders with images")]
    EmptySplit { dataset: String, split: String },
    #[error(
        "dataset {dataset:?}: split {split:?} has classes {found:?}, but train has {expected:?}"
    )]
    ClassMismatch {
        dataset: String,
        split: String,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("cannot read dataset {dataset:?}: {message}")]
    Io { dataset: String, message: String },
}

/// One labelled image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
}

/// The images of one split, in Keras's order (class by class, files sorted).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Split {
    pub classes: Vec<String>,
    /// Shown as the number of images.
    #[serde(rename = "images")]
    #[serde(serialize_with = "count")]
    #[schema(value_type = u64)]
    pub samples: Vec<Sample>,
}

fn count<S: serde::Serializer>(samples: &[Sample], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(samples.len() as u64)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dataset {
    pub name: String,
    #[serde(skip)]
    #[schema(ignore)]
    pub root: PathBuf,
    pub splits: BTreeMap<String, Split>,
}

/// A dataset name must be a single, ordinary path segment.
pub fn validate_name(name: &str) -> Result<(), DatasetError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DatasetError::InvalidName(name.to_owned()))
    }
}

/// A class name (a folder under a split): one path segment a person would write, so
/// letters of any script, digits, spaces and punctuation, but no path separator, no control
/// character, not `.`/`..` nor starting with `.` (hidden), at most 128 bytes.
pub fn validate_class_name(name: &str) -> Result<(), DatasetError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.trim() == name
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(DatasetError::InvalidClass(name.to_owned()))
    }
}

/// Whether a file name has one of the extensions read as images.
pub fn has_image_extension(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

impl Dataset {
    /// Index `<datasets_dir>/<name>`: every split present, its classes and files; every
    /// split must have train's classes.
    pub fn open(datasets_dir: &Path, name: &str) -> Result<Self, DatasetError> {
        let dataset = Self::index(datasets_dir, name)?;
        dataset.check_classes()?;
        Ok(dataset)
    }

    /// [`Dataset::open`] without the class check, for the report (`data::report`), which
    /// says which class is missing where.
    pub fn index(datasets_dir: &Path, name: &str) -> Result<Self, DatasetError> {
        validate_name(name)?;
        let io = |e: std::io::Error| DatasetError::Io {
            dataset: name.to_owned(),
            message: e.to_string(),
        };
        let base = datasets_dir.canonicalize().map_err(io)?;
        let root = match base.join(name).canonicalize() {
            Ok(root) => root,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DatasetError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(io(e)),
        };
        if !root.starts_with(&base) {
            return Err(DatasetError::Escapes(name.to_owned()));
        }
        if !root.is_dir() {
            return Err(DatasetError::NotFound(name.to_owned()));
        }
        let mut splits = BTreeMap::new();
        for split in SPLITS {
            let dir = root.join(split);
            if dir.is_dir() {
                splits.insert(split.to_owned(), index_split(&dir).map_err(io)?);
            }
        }
        Ok(Self {
            name: name.to_owned(),
            root,
            splits,
        })
    }

    /// Every split has train's classes.
    pub fn check_classes(&self) -> Result<(), DatasetError> {
        let Some(train) = self.splits.get("train") else {
            return Ok(());
        };
        for (split, data) in &self.splits {
            if data.classes != train.classes {
                return Err(DatasetError::ClassMismatch {
                    dataset: self.name.clone(),
                    split: split.clone(),
                    expected: train.classes.clone(),
                    found: data.classes.clone(),
                });
            }
        }
        Ok(())
    }

    /// A split that must exist and hold images.
    pub fn split(&self, split: &str) -> Result<&Split, DatasetError> {
        let data = self
            .splits
            .get(split)
            .ok_or_else(|| DatasetError::MissingSplit {
                dataset: self.name.clone(),
                split: split.to_owned(),
            })?;
        if data.samples.is_empty() {
            return Err(DatasetError::EmptySplit {
                dataset: self.name.clone(),
                split: split.to_owned(),
            });
        }
        Ok(data)
    }

    /// The class names (from train, else the first split present).
    pub fn classes(&self) -> Vec<String> {
        self.splits
            .get("train")
            .or_else(|| self.splits.values().next())
            .map(|s| s.classes.clone())
            .unwrap_or_default()
    }
}

/// Every dataset folder in `datasets_dir`, indexed; unreadable ones are skipped.
pub fn list(datasets_dir: &Path) -> Vec<Dataset> {
    let Ok(entries) = std::fs::read_dir(datasets_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| validate_name(n).is_ok())
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|n| Dataset::open(datasets_dir, n).ok())
        .filter(|d| !d.splits.is_empty())
        .collect()
}

fn index_split(dir: &Path) -> std::io::Result<Split> {
    let mut classes: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    classes.sort();
    let mut samples = Vec::new();
    let mut kept = Vec::new();
    for class in classes {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(&class))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            // Symlinked images are followed: the escape check guards the dataset folder a
            // request names, while files inside it are the operator's to arrange.
            .filter(|p| is_image_file(p))
            .collect();
        if files.is_empty() {
            continue;
        }
        files.sort();
        let label = kept.len();
        kept.push(class);
        samples.extend(files.into_iter().map(|path| Sample { path, label }));
    }
    Ok(Split {
        classes: kept,
        samples,
    })
}

fn is_image_file(path: &Path) -> bool {
    path.is_file()
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(has_image_extension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in [
            "", "..", ".", "a/b", "a\\b", "../x", "a\0b", ".hidden", "/abs",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["cats_and_dogs_small", "set-2", "v1.0"] {
            assert!(validate_name(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in [
            "",
            ".",
            "..",
            ".x",
            "a/b",
            "a\\b",
            "a\nb",
            "a\0b",
            " a",
            &"x".repeat(129),
        ] {
            assert!(
                validate_class_name(bad).is_err(),
                "class {bad:?} should be refused"
            );
        }
        for good in ["cats", "golden retriever", "Äpfel", "class-1.b"] {
            assert!(
                validate_class_name(good).is_ok(),
                "class {good:?} should be accepted"
            );
        }
    }

    #[test]
    fn indexes_classes_sorted_and_refuses_symlink_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let datasets = tmp.path().join("datasets");
        for (split, class, file) in [
            ("train", "dogs", "b.jpg"),
            ("train", "cats", "a.jpg"),
            ("train", "cats", "c.png"),
            ("validation", "cats", "x.jpg"),
            ("validation", "dogs", "y.jpg"),
        ] {
            let dir = datasets.join("pets").join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), b"x").unwrap();
        }
        let ds = Dataset::open(&datasets, "pets").unwrap();
        let train = ds.split("train").unwrap();
        assert_eq!(train.classes, vec!["cats", "dogs"]);
        assert_eq!(
            train.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
            vec![0, 0, 1]
        );
        assert!(matches!(
            ds.split("test"),
            Err(DatasetError::MissingSplit { .. })
        ));
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, datasets.join("evil")).unwrap();
        assert_eq!(
            Dataset::open(&datasets, "evil").unwrap_err(),
            DatasetError::Escapes("evil".into())
        );
        assert_eq!(
            Dataset::open(&datasets, "nope").unwrap_err(),
            DatasetError::NotFound("nope".into())
        );
    }
}
