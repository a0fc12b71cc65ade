//! Walking a tar archive (plain or gzip'd) into the staging folder: a first pass refusing
//! oversized long-name and pax headers, a second mapping each entry's type, and
//! [`Bounded`], the reader that caps what a gzip stream may expand to.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use super::{corrupt, ArchiveError, EntryKind, Staging, MAX_TAR_EXTENSION};

/// A first pass over the raw headers: no long-name or pax header so large that the tar
/// reader would hold it in memory (the second pass reads them whole).
pub(super) fn check_tar_headers(reader: impl Read) -> Result<(), ArchiveError> {
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

pub(super) fn extract_tar(reader: impl Read, staging: &mut Staging) -> Result<(), ArchiveError> {
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
pub(super) struct Bounded<R> {
    pub(super) inner: R,
    pub(super) left: u64,
    pub(super) tripped: Rc<Cell<bool>>,
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
