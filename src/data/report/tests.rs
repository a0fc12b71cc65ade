//! The report on datasets built here: planted duplicates (exact, within and across splits,
//! and a resized re-encoded copy), an unreadable file, an empty class, and the cache.
//! Plus an ignored experiment over the shared photos that measured the dHash threshold.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::data::decode::decode_rgb;

/// A stand-in photo: a smooth random gradient with random soft blobs; different seeds
/// give unrelated images.
fn photo(seed: u64, width: u32, height: u32) -> RgbImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let base: [f32; 3] = [rng.gen(), rng.gen(), rng.gen()];
    let slope: [f32; 2] = [rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)];
    let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..12)
        .map(|_| {
            (
                rng.gen_range(0.0..1.0),
                rng.gen_range(0.0..1.0),
                rng.gen_range(0.05..0.25),
                [rng.gen(), rng.gen(), rng.gen()],
            )
        })
        .collect();
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let mut pixel = [0u8; 3];
        for (c, out) in pixel.iter_mut().enumerate() {
            let mut value = base[c] * 0.5 + 0.25 * (slope[0] * u + slope[1] * v);
            for (bx, by, r, colour) in &blobs {
                let d2 = (u - bx).powi(2) + (v - by).powi(2);
                value += (colour[c] - 0.5) * (-d2 / (r * r)).exp();
            }
            *out = (value.clamp(0.0, 1.0) * 255.0) as u8;
        }
        Rgb(pixel)
    })
}

fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut Cursor::new(&mut out), quality)
        .encode_image(&DynamicImage::ImageRgb8(image.clone()))
        .unwrap();
    out
}

/// The same photo as a user would re-save it: 10% smaller, JPEG at another quality.
fn resaved(image: &RgbImage) -> Vec<u8> {
    let (w, h) = (image.width() * 9 / 10, image.height() * 9 / 10);
    let smaller = image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle);
    jpeg(&smaller, 60)
}

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A dataset `set` with two classes in three splits and every planted problem.
fn planted() -> (tempfile::TempDir, Dataset) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("datasets/set");
    let p = |seed| jpeg(&photo(seed, 120, 90), 92);
    for (file, seed) in [
        ("train/cats/1.jpg", 1),
        ("train/cats/2.jpg", 2),
        ("train/dogs/3.jpg", 3),
        ("train/dogs/4.jpg", 4),
        ("validation/cats/5.jpg", 5),
        ("validation/dogs/6.jpg", 6),
        ("test/dogs/7.jpg", 7),
    ] {
        write(&root, file, &p(seed));
    }
    // Exact duplicates: across splits (train ↔ test) and within train.
    write(&root, "test/cats/copy-of-1.jpg", &p(1));
    write(&root, "train/cats/2-again.jpg", &p(2));
    // A near-duplicate across splits: photo 3 resized by 10% and re-encoded.
    write(
        &root,
        "test/dogs/3-resaved.jpg",
        &resaved(&photo(3, 120, 90)),
    );
    // An unreadable file: a JPEG cut short.
    let whole = p(8);
    write(&root, "validation/dogs/cut.jpg", &whole[..whole.len() / 2]);
    let dataset = Dataset::open(&tmp.path().join("datasets"), "set").unwrap();
    (tmp, dataset)
}

#[test]
fn finds_planted_duplicates_unreadable_files_and_counts() {
    let (_tmp, dataset) = planted();
    let report = compute(&dataset, 1_000_000);

    assert_eq!(
        report.cross_split_duplicates,
        vec![FilePair {
            a: "train/cats/1.jpg".into(),
            b: "test/cats/copy-of-1.jpg".into(),
            distance: 0,
        }]
    );
    assert_eq!(
        report.duplicate_groups.len(),
        2,
        "{:?}",
        report.duplicate_groups
    );
    assert!(report
        .duplicate_groups
        .iter()
        .any(|g| g.files == ["train/cats/2-again.jpg", "train/cats/2.jpg"]));
    // Only the resaved copy is near photo 3; no two different photos are.
    assert_eq!(
        report.near_duplicates.len(),
        1,
        "{:?}",
        report.near_duplicates
    );
    let near = &report.near_duplicates[0];
    assert_eq!(
        (near.a.as_str(), near.b.as_str()),
        ("train/dogs/3.jpg", "test/dogs/3-resaved.jpg")
    );
    assert!(near.distance <= NEAR_DUPLICATE_MAX_DISTANCE);
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].file, "validation/dogs/cut.jpg");
    assert!(
        report.unreadable[0].reason.contains("truncated"),
        "{:?}",
        report.unreadable
    );

    let train = &report.splits["train"];
    assert_eq!((train.images, train.unreadable), (5, 0));
    assert_eq!(train.classes["cats"].images, 3);
    assert_eq!(train.imbalance, Some(1.5));
    assert_eq!(report.splits["validation"].classes["dogs"].unreadable, 1);
    let size = report.image_size.unwrap();
    assert_eq!((size.min_width, size.max_width), (108, 120));
    assert_eq!((size.min_height, size.max_height), (81, 90));

    // One error, naming both files; the rest are warnings.
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("train/cats/1.jpg = test/cats/copy-of-1.jpg"));
    assert!(report.blocks_training());
    let warnings = report.warnings.join("\n");
    for expected in [
        "validation/dogs/cut.jpg",
        "train/cats/2-again.jpg = train/cats/2.jpg",
        "train/dogs/3.jpg ~ test/dogs/3-resaved.jpg",
        "too few to train on",
    ] {
        assert!(warnings.contains(expected), "{expected:?} in {warnings}");
    }
}

#[test]
fn different_photos_are_far_apart_and_resaved_copies_close() {
    for seed in 0..20 {
        let original = photo(seed, 160, 120);
        let copy = decode_rgb(&resaved(&original), u64::MAX).unwrap();
        let close = (dhash(&original) ^ dhash(&copy)).count_ones();
        assert!(close <= NEAR_DUPLICATE_MAX_DISTANCE, "seed {seed}: {close}");
        let other = (dhash(&original) ^ dhash(&photo(seed + 100, 160, 120))).count_ones();
        assert!(
            other > NEAR_DUPLICATE_MAX_DISTANCE,
            "seeds {seed}, {}: {other}",
            seed + 100
        );
    }
}

#[test]
fn an_empty_class_blocks_training() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("datasets/set");
    for (i, file) in ["train/a/1.jpg", "train/b/2.jpg", "validation/a/3.jpg"]
        .iter()
        .enumerate()
    {
        write(&root, file, &jpeg(&photo(i as u64, 40, 40), 90));
    }
    // validation/b exists but holds no image; the index leaves it out, the report does not.
    std::fs::create_dir_all(root.join("validation/b")).unwrap();
    write(&root, "validation/b/notes.txt", b"not an image");
    let dataset = Dataset::index(&tmp.path().join("datasets"), "set").unwrap();
    let report = compute(&dataset, 1_000_000);
    assert_eq!(
        report.empty_classes,
        vec![EmptyClass {
            split: "validation".into(),
            class: "b".into()
        }]
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("class \"b\" has no readable images in validation/"));
    assert_eq!(report.splits["validation"].imbalance, None);
}

#[test]
fn the_cache_is_reused_until_a_file_changes() {
    let (tmp, dataset) = planted();
    let data_dir = tmp.path().join("data");
    let first = cached(&dataset, &data_dir, 1_000_000);
    assert!(!first.hit);
    let file = cache_dir(&data_dir, "set").join(format!("{}.json", first.report.key));
    assert!(file.is_file());
    let second = cached(&dataset, &data_dir, 1_000_000);
    assert!(
        second.hit,
        "the second call reads the cache instead of hashing"
    );
    assert_eq!(second.report, first.report);

    // Touching one file (same bytes, new mtime) gives a new key and a new report.
    let touched = std::fs::File::options()
        .write(true)
        .open(dataset.root.join("train/cats/1.jpg"))
        .unwrap();
    touched
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(touched);
    let third = cached(&dataset, &data_dir, 1_000_000);
    assert!(!third.hit);
    assert_ne!(third.report.key, first.report.key);
    assert!(!file.exists(), "the stale report is removed");
    assert_eq!(
        third.report.cross_split_duplicates,
        first.report.cross_split_duplicates
    );
}

/// How the near-duplicate threshold was chosen (docs/BENCHMARKS.md, "Dataset reports"):
/// on the train splits only (never a test split), the dHash distance between each photo
/// and a copy resized by 10% and re-encoded as JPEG at quality 60, and between every two
/// different photos. Run:
/// `cargo test --release --lib dhash_threshold -- --ignored --nocapture` (with ../shared beside the checkout)
#[test]
#[ignore = "an experiment over the shared photos (prints a table)"]
fn dhash_threshold_experiment() {
    let shared = std::env::var("VGGSERVE_SHARED").expect("set VGGSERVE_SHARED");
    for (name, limit) in [("cats_and_dogs_small", 2000), ("flowers_small", 400)] {
        let datasets = Path::new(&shared).join("datasets");
        let dataset = Dataset::open(&datasets, name).unwrap();
        let train = dataset.split("train").unwrap();
        let pairs: Vec<(u64, u64, [u8; 32])> = train
            .samples
            .par_iter()
            .take(limit)
            .filter_map(|s| {
                let bytes = std::fs::read(&s.path).ok()?;
                let image = decode_rgb(&bytes, DEFAULT_MAX_PIXELS_FOR_EXPERIMENT).ok()?;
                let copy = decode_rgb(&resaved(&image), u64::MAX).ok()?;
                Some((dhash(&image), dhash(&copy), Sha256::digest(&bytes).into()))
            })
            .collect();
        let mut copies = [0u64; 65];
        for (original, copy, _) in &pairs {
            copies[(original ^ copy).count_ones() as usize] += 1;
        }
        let mut distinct = [0u64; 65];
        for (n, (a, _, sha_a)) in pairs.iter().enumerate() {
            for (b, _, sha_b) in &pairs[n + 1..] {
                if sha_a != sha_b {
                    distinct[(a ^ b).count_ones() as usize] += 1;
                }
            }
        }
        let total: u64 = distinct.iter().sum();
        println!(
            "{name}: {} train photos, {total} distinct pairs",
            pairs.len()
        );
        println!("distance  resaved-copies  distinct-pairs(cumulative)");
        let mut cumulative = 0;
        for d in 0..=16 {
            cumulative += distinct[d];
            println!("{d:>8}  {:>14}  {:>14}", copies[d], cumulative);
        }
        let beyond: u64 = copies[17..].iter().sum();
        println!("     >16  {beyond:>14}");
    }
}

const DEFAULT_MAX_PIXELS_FOR_EXPERIMENT: u64 = crate::data::decode::DEFAULT_MAX_PIXELS;
