//! Walking a zip archive into the staging folder: entry count and duplicate names checked
//! up front from the central directory, symlinks and special files told apart by their
//! unix mode, and each entry's compressed size passed on to bound its expansion.

use std::fs::File;
use std::io::BufReader;

use super::{corrupt, ArchiveError, EntryKind, Staging};

pub(super) fn extract_zip(file: File, staging: &mut Staging) -> Result<(), ArchiveError> {
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(corrupt)?;
    if zip.len() > staging.limits.max_files {
        return Err(ArchiveError::TooManyFiles(staging.limits.max_files));
    }
    if zip.has_duplicate_names() {
        return Err(ArchiveError::Duplicate(
            "(a name the zip lists twice)".into(),
        ));
    }
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(corrupt)?;
        let name = entry.name().map_err(corrupt)?.into_owned();
        let kind = match entry.unix_mode().map(|m| m & 0o170000) {
            _ if entry.is_symlink() => EntryKind::Symlink,
            Some(0o120000) => EntryKind::Symlink,
            Some(0o010000 | 0o020000 | 0o060000 | 0o140000) => EntryKind::Special,
            _ if entry.is_dir() => EntryKind::Dir,
            _ => EntryKind::File,
        };
        let compressed = entry.compressed_size().max(1);
        staging.entry(&name, kind, &mut entry, Some(compressed))?;
    }
    Ok(())
}
