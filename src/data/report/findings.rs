//! From facts to findings: counts per split and class, unreadable files, empty classes,
//! imbalance, exact duplicate groups (within and across splits) and near-duplicate pairs
//! across splits, assembled into a [`DatasetReport`] (its words come from `words`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::scan::{examine, Facts, File};
use super::words::words;
use super::{
    ClassCount, DatasetReport, DuplicateGroup, EmptyClass, FilePair, SizeRange, SplitReport,
    Thresholds, UnreadableFile, NEAR_DUPLICATE_MAX_DISTANCE,
};
use crate::data::dataset::SPLITS;

pub(super) fn build(
    folders: &BTreeMap<usize, BTreeSet<String>>,
    files: &[File],
    key: String,
    max_pixels: u64,
) -> DatasetReport {
    let facts: Vec<Facts> = files
        .par_iter()
        .map(|f| examine(&f.path, max_pixels))
        .collect();
    let all_classes: BTreeSet<String> = folders.values().flatten().cloned().collect();

    // Counts, sizes and unreadable files.
    let mut splits: BTreeMap<usize, SplitReport> = folders
        .keys()
        .map(|&split| {
            let classes = all_classes
                .iter()
                .map(|c| {
                    let zero = ClassCount {
                        images: 0,
                        unreadable: 0,
                    };
                    (c.clone(), zero)
                })
                .collect();
            let report = SplitReport {
                images: 0,
                unreadable: 0,
                classes,
                imbalance: None,
                image_size: None,
            };
            (split, report)
        })
        .collect();
    let mut unreadable = Vec::new();
    let mut overall: Option<SizeRange> = None;
    for (file, fact) in files.iter().zip(&facts) {
        let Some(split) = splits.get_mut(&file.split) else {
            continue;
        };
        split.images += 1;
        let count = split
            .classes
            .entry(file.class.clone())
            .or_insert(ClassCount {
                images: 0,
                unreadable: 0,
            });
        count.images += 1;
        match &fact.decoded {
            Ok(d) => {
                grow(&mut split.image_size, d.width, d.height);
                grow(&mut overall, d.width, d.height);
            }
            Err(reason) => {
                split.unreadable += 1;
                count.unreadable += 1;
                unreadable.push(UnreadableFile {
                    file: file.relative.clone(),
                    reason: reason.clone(),
                });
            }
        }
    }
    let mut empty_classes = Vec::new();
    for (&split, report) in &mut splits {
        let readable: Vec<u64> = report
            .classes
            .values()
            .map(|c| c.images - c.unreadable)
            .collect();
        let (largest, smallest) = (
            readable.iter().copied().max().unwrap_or(0),
            readable.iter().copied().min().unwrap_or(0),
        );
        if smallest > 0 {
            report.imbalance = Some(largest as f64 / smallest as f64);
        }
        // A split without a single image is one finding (below), not one per class.
        if largest > 0 {
            for (class, count) in &report.classes {
                if count.images == count.unreadable {
                    empty_classes.push(EmptyClass {
                        split: SPLITS[split].to_owned(),
                        class: class.clone(),
                    });
                }
            }
        }
    }

    // Exact duplicates: only readable images count (training skips the others).
    let mut by_hash: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    for (i, fact) in facts.iter().enumerate() {
        if let (Some(sha), Ok(_)) = (fact.sha256, &fact.decoded) {
            by_hash.entry(sha).or_default().push(i);
        }
    }
    let mut groups: Vec<(String, Vec<usize>)> = by_hash
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(sha, members)| (hex::encode(sha), members))
        .collect();
    // Files are in split order already; sort groups by their first file.
    groups.sort_by_key(|(_, members)| members[0]);
    let mut cross_split = Vec::new();
    let mut within_split: Vec<Vec<usize>> = Vec::new();
    for (_, members) in &groups {
        for (n, &i) in members.iter().enumerate() {
            for &j in &members[n + 1..] {
                if files[i].split != files[j].split {
                    cross_split.push(pair(files, i, j, 0));
                }
            }
        }
        for split in folders.keys() {
            let here: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| files[i].split == *split)
                .collect();
            if here.len() > 1 {
                within_split.push(here);
            }
        }
    }
    let duplicate_groups = groups
        .iter()
        .map(|(sha, members)| DuplicateGroup {
            sha256: sha.clone(),
            files: members.iter().map(|&i| files[i].relative.clone()).collect(),
        })
        .collect();

    // Near-duplicates across splits: every pair of readable images in two splits within
    // the distance, except identical files (already reported).
    let hashed: Vec<(usize, u64)> = facts
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.decoded.as_ref().ok().map(|d| (i, d.dhash)))
        .collect();
    let mut near: Vec<(usize, usize, u32)> = hashed
        .par_iter()
        .enumerate()
        .flat_map_iter(|(n, &(i, hash_i))| {
            hashed[n + 1..].iter().filter_map(move |&(j, hash_j)| {
                let distance = (hash_i ^ hash_j).count_ones();
                (distance <= NEAR_DUPLICATE_MAX_DISTANCE && files[i].split != files[j].split)
                    .then_some((i, j, distance))
            })
        })
        .filter(|&(i, j, _)| facts[i].sha256 != facts[j].sha256)
        .collect();
    near.sort_unstable();
    let near_duplicates: Vec<FilePair> = near
        .into_iter()
        .map(|(i, j, distance)| pair(files, i, j, distance))
        .collect();

    let mut report = DatasetReport {
        key,
        splits: splits
            .into_iter()
            .map(|(split, report)| (SPLITS[split].to_owned(), report))
            .collect(),
        image_size: overall,
        unreadable,
        duplicate_groups,
        cross_split_duplicates: cross_split,
        near_duplicates,
        empty_classes,
        thresholds: Thresholds::new(max_pixels),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let within: Vec<Vec<&File>> = within_split
        .iter()
        .map(|group| group.iter().map(|&i| &files[i]).collect())
        .collect();
    words(&mut report, &within);
    report
}

fn grow(range: &mut Option<SizeRange>, width: u32, height: u32) {
    let r = range.get_or_insert(SizeRange {
        min_width: width,
        max_width: width,
        min_height: height,
        max_height: height,
    });
    r.min_width = r.min_width.min(width);
    r.max_width = r.max_width.max(width);
    r.min_height = r.min_height.min(height);
    r.max_height = r.max_height.max(height);
}

fn pair(files: &[File], i: usize, j: usize, distance: u32) -> FilePair {
    let (i, j) = if (files[i].split, &files[i].relative) <= (files[j].split, &files[j].relative) {
        (i, j)
    } else {
        (j, i)
    };
    FilePair {
        a: files[i].relative.clone(),
        b: files[j].relative.clone(),
        distance,
    }
}
