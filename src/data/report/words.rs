//! The findings in plain words: `errors` (what blocks training) and `warnings` (worth
//! reading first), each naming at most [`NAMED_IN_MESSAGES`] files or pairs.

use std::collections::BTreeSet;

use super::scan::File;
use super::{
    ClassCount, DatasetReport, IMBALANCE_WARNING_RATIO, MIN_EVAL_IMAGES_PER_CLASS,
    MIN_TRAIN_IMAGES_PER_CLASS, NEAR_DUPLICATE_MAX_DISTANCE,
};

/// How many files or pairs a warning or error names before it says "and N more" (the
/// report's lists name them all).
const NAMED_IN_MESSAGES: usize = 20;

/// The first [`NAMED_IN_MESSAGES`] items joined, and how many more there are.
fn named(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let mut text = items
        .iter()
        .take(NAMED_IN_MESSAGES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED_IN_MESSAGES {
        text.push_str(&format!(
            "; and {} more (the report lists them all)",
            items.len() - NAMED_IN_MESSAGES
        ));
    }
    text
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The findings in words: `errors` block training, `warnings` do not.
pub(super) fn words(report: &mut DatasetReport, within_split: &[Vec<&File>]) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if !report.cross_split_duplicates.is_empty() {
        errors.push(format!(
            "{} in two splits (identical bytes): a photo in both train and validation or test \
             inflates the score measured on it; remove one copy of each: {}",
            plural(
                report.cross_split_duplicates.len(),
                "file is duplicated",
                "files are duplicated"
            ),
            named(
                report
                    .cross_split_duplicates
                    .iter()
                    .map(|p| format!("{} = {}", p.a, p.b))
            )
        ));
    }
    for empty in &report.empty_classes {
        errors.push(format!(
            "class {:?} has no readable images in {}/ (every split needs every class)",
            empty.class, empty.split
        ));
    }
    for (split, data) in &report.splits {
        if data.images == data.unreadable {
            warnings.push(format!("{split}/ has no readable images"));
        }
    }
    if !report.unreadable.is_empty() {
        warnings.push(format!(
            "{} cannot be read and will be skipped: {}",
            plural(report.unreadable.len(), "file", "files"),
            named(
                report
                    .unreadable
                    .iter()
                    .map(|u| format!("{} ({})", u.file, u.reason))
            )
        ));
    }
    if !within_split.is_empty() {
        warnings.push(format!(
            "{} of identical files within a split (the same photo counted twice): {}",
            plural(within_split.len(), "set", "sets"),
            named(within_split.iter().map(|group| {
                let names: Vec<&str> = group.iter().map(|f| f.relative.as_str()).collect();
                let classes: BTreeSet<&str> = group.iter().map(|f| f.class.as_str()).collect();
                let labels = if classes.len() > 1 {
                    " (labelled as different classes)"
                } else {
                    ""
                };
                format!("{}{labels}", names.join(" = "))
            }))
        ));
    }
    if !report.near_duplicates.is_empty() {
        warnings.push(format!(
            "{} of near-identical photos in two splits (perceptual hash within {} of 64 bits: \
             likely the same photo resized or re-encoded), which would inflate the score \
             measured on them: {}",
            plural(report.near_duplicates.len(), "pair", "pairs"),
            NEAR_DUPLICATE_MAX_DISTANCE,
            named(
                report
                    .near_duplicates
                    .iter()
                    .map(|p| format!("{} ~ {} (distance {})", p.a, p.b, p.distance))
            )
        ));
    }
    for (split, data) in &report.splits {
        let readable = |c: &ClassCount| c.images - c.unreadable;
        if let Some(ratio) = data.imbalance {
            if ratio > IMBALANCE_WARNING_RATIO {
                let counts: Vec<String> = data
                    .classes
                    .iter()
                    .map(|(class, c)| format!("{} {class}", readable(c)))
                    .collect();
                warnings.push(format!(
                    "{split}/ is imbalanced: {} (largest/smallest {ratio:.1}); accuracy alone \
                     will flatter a model that favours the larger class",
                    counts.join(", ")
                ));
            }
        }
        let (minimum, purpose) = if split == "train" {
            (MIN_TRAIN_IMAGES_PER_CLASS, "to train on")
        } else {
            (MIN_EVAL_IMAGES_PER_CLASS, "to measure on")
        };
        for (class, count) in &data.classes {
            let n = readable(count);
            if n > 0 && n < minimum {
                warnings.push(format!(
                    "class {class:?} has only {n} readable images in {split}/: too few {purpose} \
                     (fewer than {minimum})"
                ));
            }
        }
    }
    report.errors = errors;
    report.warnings = warnings;
}
