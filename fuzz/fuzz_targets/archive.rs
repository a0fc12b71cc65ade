//! Fuzz target over the dataset archive reader: the bytes of an uploaded archive →
//! `archive::extract` (zip, tar or tar.gz) into a staging folder with small limits.
//!
//! Input: first byte picks how the format is chosen (sniffed from the bytes, as an upload
//! without a Content-Type is, or forced to zip, tar or tar.gz, as a declared type is); the
//! rest is the archive. Must hold for any input: no panic and no hang; nothing is written
//! outside the staging folder; on success, every staged file exists under it as a regular
//! file, and the counts stay within the limits; on failure, the error is one of the
//! archive's own (the caller then removes the staging folder).

#![no_main]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vggserve::data::archive::{extract, ArchiveKind, Limits, Staging};

const LIMITS: Limits = Limits {
    max_bytes: 4 << 20,
    max_files: 64,
    max_pixels: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, archive)) = data.split_first() else {
        return;
    };
    let kind = match selector % 4 {
        0 => match ArchiveKind::sniff(archive) {
            Some(kind) => kind,
            None => return,
        },
        1 => ArchiveKind::Zip,
        2 => ArchiveKind::Tar,
        _ => ArchiveKind::TarGz,
    };
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, archive).unwrap();
    let root = dir.path().join("staging");
    let mut staging = Staging::new(&root, LIMITS, Arc::new(AtomicBool::new(false))).unwrap();
    let result = extract(&upload, kind, &mut staging);

    // Nothing beside the upload and the staging folder, whatever happened.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["staging", "upload.bin"], "{result:?}");
    let written = walk(&root);
    if result.is_err() {
        return;
    }
    let staged = staging.finish();
    assert!(staged.files.len() <= LIMITS.max_files);
    let mut bytes = 0;
    for segments in &staged.files {
        assert!((1..=4).contains(&segments.len()), "{segments:?}");
        let path = segments.iter().fold(root.clone(), |p, s| p.join(s));
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "{path:?}");
        bytes += meta.len();
    }
    assert!(bytes <= LIMITS.max_bytes);
    // Every regular file under the root is one the staging recorded.
    let files = written.iter().filter(|(_, is_file)| *is_file).count();
    assert_eq!(files, staged.files.len());
});

/// Every path under `root`, and whether it is a regular file; panics on a symlink.
fn walk(root: &Path) -> Vec<(std::path::PathBuf, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            assert!(!kind.is_symlink(), "symlink written: {path:?}");
            if kind.is_dir() {
                stack.push(path.clone());
            }
            out.push((path, kind.is_file()));
        }
    }
    out
}
