//! The staging folder being filled: every entry's name and kind checked before anything is
//! written, images written with `create_new`, and the entry, byte and ratio limits counted
//! as bytes come out (never taken from headers); each image's declared size checked.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{
    ArchiveError, EntryKind, Limits, SkipReason, Skipped, Staged, MAX_DEPTH, MAX_RATIO, RATIO_FLOOR,
};
use crate::data::dataset::has_image_extension;
use crate::data::decode::{check_declared_size, DecodeError};

/// A staging folder being filled, with the counts that bound it.
pub struct Staging {
    root: PathBuf,
    pub(super) limits: Limits,
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
    pub(super) fn entry(
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
