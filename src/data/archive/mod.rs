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
//!
//! Here: the limits, the errors, what an entry is and what was staged, and [`extract`]. The
//! checks and writing of each entry are `staging`'s ([`Staging`]); `unzip` and `untar`
//! walk the two archive formats (and a gzip stream, bounded here) into it.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::rc::Rc;

use serde::Serialize;

mod staging;
mod untar;
mod unzip;

pub use staging::{segments, Staging};

use untar::{check_tar_headers, extract_tar, Bounded};
use unzip::extract_zip;

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

#[cfg(test)]
mod tests;
