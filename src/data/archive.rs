//! Safe extraction of an uploaded dataset (a zip, tar or tar.gz archive, or single uploaded
//! files) into a staging folder, trusting nothing the upload declares.
//!
//! Every entry name is checked before anything is written: no `..`, no absolute path, no
//! control character or backslash, no name twice; symlinks, hard links, devices and fifos
//! are refused. Only image files (by extension) are written, each with `create_new` into a
//! fresh folder; dotfiles, `__MACOSX/` and other files are skipped and listed. Sizes are
//! counted as bytes come out of the decompressor, never taken from headers: the total is
//! capped, a zip entry may not expand more than [`MAX_RATIO`]× its compressed size (nor a
//! gzip stream more than that over the archive), and each image's header must declare at
//! most `max_pixels` (no pixel is decoded here).

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::dataset::has_image_extension;
use super::decode::{check_declared_size, DecodeError};

/// Expansion allowed per compressed byte (a zip entry, or a whole gzip stream)...
pub const MAX_RATIO: u64 = 200;
/// ...beyond this many bytes, which any entry may reach whatever its ratio.
pub const RATIO_FLOOR: u64 = 1024 * 1024;
/// Deepest accepted entry: `<wrapper>/<split>/<class>/<image>`.
const MAX_DEPTH: usize = 4;
/// Longest tar long-name or pax header (the tar reader holds them in memory).
const MAX_TAR_EXTENSION: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes written out of the archive.
    pub max_bytes: u64,
    /// Entries of any kind (files, folders, links).
    pub max_files: usize,
    /// Declared width × height of each image.
    pub max_pixels: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

impl ArchiveKind {
    /// From a Content-Type (parameters ignored); `None` for anything else.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/zip" | "application/x-zip-compressed" => Some(Self::Zip),
            "application/x-tar" => Some(Self::Tar),
            "application/gzip" | "application/x-gzip" | "application/x-compressed-tar" => {
                Some(Self::TarGz)
            }
            _ => None,
        }
    }

    /// From the first bytes: zip's `PK`, gzip's `1f 8b`, tar's `ustar` at offset 257.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Some(Self::Zip)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Some(Self::TarGz)
        } else if head.get(257..262) == Some(b"ustar") {
            Some(Self::Tar)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a zip, tar or tar.gz archive")]
    UnknownFormat,
    #[error("the archive is corrupt or unsupported: {0}")]
    Corrupt(String),
    #[error("entry {entry:?} refused: {reason}")]
    Unsafe { entry: String, reason: &'static str },
    #[error("entry {0:?} appears more than once")]
    Duplicate(String),
    #[error("entry {0:?} is nested too deep: expected <split>/<class>/<image> or <class>/<image>, optionally in one top folder")]
    TooDeep(String),
    #[error("more than {0} entries")]
    TooManyFiles(usize),
    #[error("the archive expands to more than {0} bytes")]
    TooLarge(u64),
    #[error("entry {0:?} expands more than {MAX_RATIO}× its compressed size (a zip bomb?)")]
    Ratio(String),
    #[error("image {entry:?} declares {width}x{height} pixels, over the limit of {limit}")]
    TooManyPixels {
        entry: String,
        width: u32,
        height: u32,
        limit: u64,
    },
    #[error("the upload was cancelled")]
    Cancelled,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An entry left out of the dataset, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    /// The name as the upload gave it.
    pub entry: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A dotfile or under `__MACOSX/`.
    Hidden,
    /// Not an image extension (.jpg .jpeg .png .bmp .gif .webp .ppm).
    NotAnImage,
    /// An image extension, but no readable image header.
    UnreadableImage,
}

/// What an entry is, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    HardLink,
    Special,
    Unsupported,
}

/// The images written so far (as path segments under the staging root) and the skipped.
#[derive(Debug, Default)]
pub struct Staged {
    pub files: Vec<Vec<String>>,
    pub skipped: Vec<Skipped>,
}

/// A staging folder being filled, with the counts that bound it.
pub struct Staging {
    root: PathBuf,
    limits: Limits,
    cancelled: Arc<AtomicBool>,
    entries: usize,
    bytes: u64,
    seen: HashSet<String>,
    staged: Staged,
}

impl Staging {
    pub fn new(root: &Path, limits: Limits, cancelled: Arc<AtomicBool>) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_owned(),
            limits,
            cancelled,
            entries: 0,
            bytes: 0,
            seen: HashSet::new(),
            staged: Staged::default(),
        })
    }

    pub fn finish(self) -> Staged {
        self.staged
    }

    /// One uploaded file (a multipart part), named `<class>/<file>` or `<split>/<class>/<file>`.
    pub fn add_file(&mut self, name: &str, reader: &mut dyn Read) -> Result<(), ArchiveError> {
        self.entry(name, EntryKind::File, reader, None)
    }

    /// Check one entry and write it if it is an image; `compressed` (zip) bounds its ratio.
    fn entry(
        &mut self,
        name: &str,
        kind: EntryKind,
        reader: &mut dyn Read,
        compressed: Option<u64>,
    ) -> Result<(), ArchiveError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(ArchiveError::Cancelled);
        }
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(ArchiveError::TooManyFiles(self.limits.max_files));
        }
        let unsafe_entry = |reason| ArchiveError::Unsafe {
            entry: name.to_owned(),
            reason,
        };
        let parts = segments(name).map_err(unsafe_entry)?;
        match kind {
            EntryKind::File | EntryKind::Dir => {}
            EntryKind::Symlink => return Err(unsafe_entry("symbolic link")),
            EntryKind::HardLink => return Err(unsafe_entry("hard link")),
            EntryKind::Special => return Err(unsafe_entry("device, fifo or socket")),
            EntryKind::Unsupported => return Err(unsafe_entry("unsupported entry type")),
        }
        if kind == EntryKind::Dir || parts.is_empty() {
            return Ok(());
        }
        let skip = |reason| Skipped {
            entry: name.to_owned(),
            reason,
        };
        if parts[0] == "__MACOSX" || parts.iter().any(|p| p.starts_with('.')) {
            self.staged.skipped.push(skip(SkipReason::Hidden));
            return Ok(());
        }
        if !has_image_extension(parts.last().expect("not empty")) {
            self.staged.skipped.push(skip(SkipReason::NotAnImage));
            return Ok(());
        }
        if parts.len() > MAX_DEPTH {
            return Err(ArchiveError::TooDeep(name.to_owned()));
        }
        if !self.seen.insert(parts.join("/")) {
            return Err(ArchiveError::Duplicate(name.to_owned()));
        }
        let dest = parts.iter().fold(self.root.clone(), |p, s| p.join(s));
        self.write(name, &dest, reader, compressed)?;
        match check_declared_size(&dest, self.limits.max_pixels) {
            Ok(_) => self.staged.files.push(parts),
            Err(DecodeError::TooManyPixels {
                width,
                height,
                limit,
            }) => {
                return Err(ArchiveError::TooManyPixels {
                    entry: name.to_owned(),
                    width,
                    height,
                    limit,
                })
            }
            Err(_) => {
                std::fs::remove_file(&dest)?;
                self.staged.skipped.push(skip(SkipReason::UnreadableImage));
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        name: &str,
        dest: &Path,
        reader: &mut dyn Read,
        compressed: Option<u64>,
    ) -> Result<(), ArchiveError> {
        let clash = |e: io::Error| match e.kind() {
            io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => ArchiveError::Unsafe {
                entry: name.to_owned(),
                reason: "clashes with another entry (a file and a folder of one name)",
            },
            _ => ArchiveError::Io(e),
        };
        std::fs::create_dir_all(dest.parent().expect("under the root")).map_err(clash)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(clash)?;
        let ratio_limit = compressed.map(|c| c.saturating_mul(MAX_RATIO).max(RATIO_FLOOR));
        let mut buffer = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::Corrupt(format!("entry {name:?}: {e}"))),
            };
            written += n as u64;
            self.bytes += n as u64;
            if self.bytes > self.limits.max_bytes {
                return Err(ArchiveError::TooLarge(self.limits.max_bytes));
            }
            if ratio_limit.is_some_and(|limit| written > limit) {
                return Err(ArchiveError::Ratio(name.to_owned()));
            }
            file.write_all(&buffer[..n])?;
        }
        Ok(())
    }
}

/// The path segments of an entry name, or why it is refused. Empty and `.` segments are
/// dropped (`a//b`, `./a`); a folder entry's trailing `/` leaves no empty segment.
pub fn segments(name: &str) -> Result<Vec<String>, &'static str> {
    let drive =
        name.len() >= 2 && name.as_bytes()[1] == b':' && name.as_bytes()[0].is_ascii_alphabetic();
    if name.starts_with('/') || drive {
        return Err("absolute path");
    }
    if name.len() > 1024 {
        return Err("name too long");
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("parent directory (..) in the path"),
            _ if part.chars().any(char::is_control) => return Err("control character in the name"),
            _ if part.contains('\\') => return Err("backslash in the name"),
            _ if part.len() > 255 => return Err("name too long"),
            _ => parts.push(part.to_owned()),
        }
    }
    Ok(parts)
}

/// Extract the archive at `path` into `staging`.
pub fn extract(path: &Path, kind: ArchiveKind, staging: &mut Staging) -> Result<(), ArchiveError> {
    match kind {
        ArchiveKind::Zip => extract_zip(File::open(path)?, staging),
        ArchiveKind::Tar => {
            check_tar_headers(BufReader::new(File::open(path)?))?;
            extract_tar(BufReader::new(File::open(path)?), staging)
        }
        ArchiveKind::TarGz => {
            let limit = path
                .metadata()?
                .len()
                .saturating_mul(MAX_RATIO)
                .max(RATIO_FLOOR);
            let gunzip = |tripped: &Rc<Cell<bool>>| -> io::Result<_> {
                let file = BufReader::new(File::open(path)?);
                Ok(Bounded {
                    inner: flate2::read::MultiGzDecoder::new(file),
                    left: limit,
                    tripped: tripped.clone(),
                })
            };
            let tripped = Rc::new(Cell::new(false));
            let bomb = |e: ArchiveError| match tripped.get() {
                true => ArchiveError::Ratio("(the gzip stream)".into()),
                false => e,
            };
            check_tar_headers(gunzip(&tripped)?).map_err(bomb)?;
            extract_tar(gunzip(&tripped)?, staging).map_err(bomb)
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Corrupt(e.to_string())
}

fn extract_zip(file: File, staging: &mut Staging) -> Result<(), ArchiveError> {
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

/// A first pass over the raw headers: no long-name or pax header so large that the tar
/// reader would hold it in memory (the second pass reads them whole).
fn check_tar_headers(reader: impl Read) -> Result<(), ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(corrupt)?.raw(true) {
        let entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if extension && entry.size() > MAX_TAR_EXTENSION {
            return Err(ArchiveError::Unsafe {
                entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                reason: "oversized tar long-name or pax header",
            });
        }
    }
    Ok(())
}

fn extract_tar(reader: impl Read, staging: &mut Staging) -> Result<(), ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw).map_err(|e| ArchiveError::Unsafe {
            entry: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "the name is not UTF-8",
        })?;
        use tar::EntryType as T;
        let kind = match entry.header().entry_type() {
            T::Regular | T::Continuous => EntryKind::File,
            T::Directory => EntryKind::Dir,
            T::Symlink => EntryKind::Symlink,
            T::Link => EntryKind::HardLink,
            T::Char | T::Block | T::Fifo => EntryKind::Special,
            T::XGlobalHeader => continue,
            _ => EntryKind::Unsupported,
        };
        staging.entry(&name, kind, &mut entry, None)?;
    }
    Ok(())
}

/// A reader that fails once more than `left` bytes came out of it, and says so in `tripped`
/// (the tar reader rewraps its errors, so the flag, not the error, tells a bomb apart).
struct Bounded<R> {
    inner: R,
    left: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.tripped.set(true);
            return Err(io::Error::other("decompressed size over the limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
