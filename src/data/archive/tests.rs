//! Safe extraction against real archives built here: every hostile case is refused and
//! writes nothing outside the staging folder.

use std::io::{Cursor, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use image::{DynamicImage, RgbImage};

use super::*;

pub(crate) fn png(side: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(side, side, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A tar of (name, type, data); links point at "target".
pub(crate) fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_link_name("target").unwrap();
        }
        // Written raw, so that names the builder's own checks refuse (`..`) get through.
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

fn limits() -> Limits {
    Limits {
        max_bytes: 64 * 1024 * 1024,
        max_files: 100,
        max_pixels: 10_000,
    }
}

/// Extract `bytes` as `kind` with `limits` into a fresh folder; also returns the folder.
fn run(
    bytes: &[u8],
    kind: ArchiveKind,
    limits: Limits,
) -> (tempfile::TempDir, Result<Staged, ArchiveError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload");
    std::fs::write(&path, bytes).unwrap();
    let staging_dir = dir.path().join("staging");
    let mut staging = Staging::new(&staging_dir, limits, Arc::default()).unwrap();
    let result = extract(&path, kind, &mut staging).map(|()| staging.finish());
    (dir, result)
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn names_are_split_into_plain_segments_or_refused() {
    assert_eq!(segments("a//b/./c.jpg").unwrap(), ["a", "b", "c.jpg"]);
    assert_eq!(segments("dir/").unwrap(), ["dir"]);
    for (bad, why) in [
        ("../x.jpg", "parent"),
        ("a/../../x.jpg", "parent"),
        ("/etc/x.jpg", "absolute"),
        ("C:/x.jpg", "absolute"),
        ("a\\b.jpg", "backslash"),
        ("a/\u{7}.jpg", "control"),
        ("a\0b.jpg", "control"),
    ] {
        assert!(segments(bad).unwrap_err().contains(why), "{bad:?}");
    }
}

#[test]
fn sniffs_the_three_formats() {
    let image = png(4);
    assert_eq!(
        ArchiveKind::sniff(&zip_of(&[("a.png", &image)])),
        Some(ArchiveKind::Zip)
    );
    let tar = tar_of(&[("a.png", tar::EntryType::Regular, &image)]);
    assert_eq!(ArchiveKind::sniff(&tar), Some(ArchiveKind::Tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    assert_eq!(
        ArchiveKind::sniff(&gz.finish().unwrap()),
        Some(ArchiveKind::TarGz)
    );
    assert_eq!(ArchiveKind::sniff(b"hello"), None);
    assert_eq!(
        ArchiveKind::from_content_type("application/x-tar; charset=binary"),
        Some(ArchiveKind::Tar)
    );
}

#[test]
fn images_are_written_and_everything_else_listed() {
    let image = png(8);
    let bytes = zip_of(&[
        ("set/cats/a.png", &image),
        ("set/cats/.DS_Store", b"x"),
        ("__MACOSX/set/cats/._a.png", b"x"),
        ("set/README.txt", b"hello"),
        ("set/dogs/b.jpg", b"not a jpeg"),
        ("set/dogs/c.png", &image),
    ]);
    let (dir, staged) = run(&bytes, ArchiveKind::Zip, limits());
    let staged = staged.unwrap();
    assert_eq!(
        staged.files,
        [["set", "cats", "a.png"], ["set", "dogs", "c.png"]]
    );
    let reasons: Vec<(&str, SkipReason)> = staged
        .skipped
        .iter()
        .map(|s| (s.entry.as_str(), s.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("set/cats/.DS_Store", SkipReason::Hidden),
            ("__MACOSX/set/cats/._a.png", SkipReason::Hidden),
            ("set/README.txt", SkipReason::NotAnImage),
            ("set/dogs/b.jpg", SkipReason::UnreadableImage),
        ]
    );
    assert_eq!(
        files_under(&dir.path().join("staging")),
        ["set/cats/a.png", "set/dogs/c.png"]
    );
}

/// The hostile case is refused with `check`, and nothing was written beside the staging
/// folder (the test's temp dir holds only the upload and the staging folder).
fn refused(bytes: &[u8], kind: ArchiveKind, limits: Limits, check: impl Fn(&ArchiveError) -> bool) {
    let (dir, result) = run(bytes, kind, limits);
    let error = result.expect_err("refused");
    assert!(check(&error), "unexpected error: {error}");
    let mut top: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["staging", "upload"]);
}

#[test]
fn hostile_zips_are_refused() {
    let image = png(8);
    let unsafe_entry = |e: &ArchiveError| matches!(e, ArchiveError::Unsafe { .. });
    for name in ["../evil.png", "cats/../../evil.png", "/tmp/evil.png"] {
        let bytes = zip_of(&[("cats/a.png", &image), (name, &image)]);
        refused(&bytes, ArchiveKind::Zip, limits(), unsafe_entry);
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.add_symlink("cats/link.png", "/etc/passwd", options)
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    refused(&bytes, ArchiveKind::Zip, limits(), |e| {
        e.to_string().contains("symbolic link")
    });
    // 20 MB of zeros deflate to about 20 KB: refused once past the ratio, long before 20 MB.
    let zeros = vec![0u8; 20 * 1024 * 1024];
    let bytes = zip_of(&[("cats/bomb.png", &zeros)]);
    assert!(bytes.len() < 100_000);
    refused(
        &bytes,
        ArchiveKind::Zip,
        limits(),
        |e| matches!(e, ArchiveError::Ratio(n) if n == "cats/bomb.png"),
    );
    let many: Vec<(String, Vec<u8>)> = (0..101)
        .map(|i| (format!("c/{i}.png"), image.clone()))
        .collect();
    let many: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    refused(&zip_of(&many), ArchiveKind::Zip, limits(), |e| {
        matches!(e, ArchiveError::TooManyFiles(100))
    });
    let small = Limits {
        max_bytes: 100,
        ..limits()
    };
    refused(
        &zip_of(&[("c/a.png", &image)]),
        ArchiveKind::Zip,
        small,
        |e| matches!(e, ArchiveError::TooLarge(100)),
    );
    let big = png(101);
    refused(
        &zip_of(&[("c/big.png", &big)]),
        ArchiveKind::Zip,
        limits(),
        |e| matches!(e, ArchiveError::TooManyPixels { entry, width: 101, .. } if entry == "c/big.png"),
    );
    refused(
        &zip_of(&[("c/a.png", &image), ("c//a.png", &image)]),
        ArchiveKind::Zip,
        limits(),
        |e| matches!(e, ArchiveError::Duplicate(n) if n == "c//a.png"),
    );
    refused(b"PK\x03\x04 truncated", ArchiveKind::Zip, limits(), |e| {
        matches!(e, ArchiveError::Corrupt(_))
    });
}

#[test]
fn hostile_tars_are_refused() {
    use tar::EntryType as T;
    let image = png(8);
    let ok = ("cats/a.png", T::Regular, image.as_slice());
    for (entry, reason) in [
        (("../evil.png", T::Regular, image.as_slice()), "parent"),
        (("/tmp/evil.png", T::Regular, image.as_slice()), "absolute"),
        (("cats/l.png", T::Symlink, &[][..]), "symbolic link"),
        (("cats/h.png", T::Link, &[][..]), "hard link"),
        (("cats/f.png", T::Fifo, &[][..]), "fifo"),
        (("cats/d.png", T::Char, &[][..]), "device"),
    ] {
        let bytes = tar_of(&[ok, entry]);
        refused(&bytes, ArchiveKind::Tar, limits(), |e| {
            e.to_string().contains(reason)
        });
    }
    let bytes = tar_of(&[ok, ("cats/b.png", T::Regular, &image), ok]);
    refused(
        &bytes,
        ArchiveKind::Tar,
        limits(),
        |e| matches!(e, ArchiveError::Duplicate(n) if n == "cats/a.png"),
    );
    let deep = tar_of(&[("a/b/c/d/e.png", T::Regular, &image)]);
    refused(&deep, ArchiveKind::Tar, limits(), |e| {
        matches!(e, ArchiveError::TooDeep(_))
    });
    // A tar.gz whose stream expands past the ratio: refused by the gzip bound.
    let zeros = vec![0u8; 20 * 1024 * 1024];
    let tar = tar_of(&[("cats/zeros.txt", T::Regular, &zeros)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let bytes = gz.finish().unwrap();
    refused(&bytes, ArchiveKind::TarGz, limits(), |e| {
        matches!(e, ArchiveError::Ratio(_))
    });
}

#[test]
fn a_cancelled_extraction_stops() {
    let image = png(8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload");
    std::fs::write(&path, zip_of(&[("c/a.png", &image)])).unwrap();
    let cancelled = Arc::new(AtomicBool::new(true));
    let mut staging = Staging::new(&dir.path().join("s"), limits(), cancelled).unwrap();
    assert!(matches!(
        extract(&path, ArchiveKind::Zip, &mut staging),
        Err(ArchiveError::Cancelled)
    ));
}
