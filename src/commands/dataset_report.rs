//! `vggserve dataset-report <datasets-dir> <name>`: the checks the server runs before
//! training (`data::report`), from the command line: a summary and the findings, or the
//! whole report as JSON, and how long it took.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::data::dataset::Dataset;
use crate::data::decode::DEFAULT_MAX_PIXELS;
use crate::data::report::{self, DatasetReport};

#[derive(Debug, clap::Args)]
pub struct DatasetReportArgs {
    /// The folder holding the datasets (serve's --datasets-dir).
    pub datasets_dir: PathBuf,
    /// The dataset: a folder in it with train/, validation/ and test/.
    pub name: String,
    /// Refuse images whose header declares more pixels than this (serve's --max-pixels).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Read and write the cached report under this data dir (serve's --data-dir); without
    /// it the report is computed afresh and not stored.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the whole report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DatasetReportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let dataset = Dataset::index(&args.datasets_dir, &args.name)
        .with_context(|| format!("opening {}", args.datasets_dir.display()))?;
    let (report, hit) = match &args.data_dir {
        Some(dir) => {
            let cached = report::cached(&dataset, dir, args.max_pixels);
            (cached.report, cached.hit)
        }
        None => (report::compute(&dataset, args.max_pixels), false),
    };
    let elapsed = started.elapsed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&args.name, &report));
    }
    eprintln!(
        "{} in {:.1} s ({} threads)",
        if hit {
            "read from the cache"
        } else {
            "computed"
        },
        elapsed.as_secs_f64(),
        rayon::current_num_threads()
    );
    Ok(())
}

fn summary(name: &str, report: &DatasetReport) -> String {
    let mut out = format!("dataset {name} (key {})\n", &report.key[..16]);
    for (split, data) in &report.splits {
        let classes: Vec<String> = data
            .classes
            .iter()
            .map(|(class, c)| format!("{class} {}", c.images))
            .collect();
        let imbalance = data.imbalance.map_or("-".to_owned(), |r| format!("{r:.2}"));
        out.push_str(&format!(
            "  {split}: {} images ({}), {} unreadable, imbalance {imbalance}",
            data.images,
            classes.join(", "),
            data.unreadable,
        ));
        if let Some(s) = data.image_size {
            out.push_str(&format!(
                ", width {}–{}, height {}–{}",
                s.min_width, s.max_width, s.min_height, s.max_height
            ));
        }
        out.push('\n');
    }
    let within: usize = report
        .duplicate_groups
        .iter()
        .filter(|g| {
            let splits: std::collections::BTreeSet<&str> =
                g.files.iter().filter_map(|f| f.split('/').next()).collect();
            splits.len() < g.files.len()
        })
        .count();
    out.push_str(&format!(
        "  unreadable files: {}\n  identical-file groups: {} ({within} with two or more in one split)\n  \
         cross-split identical pairs: {}\n  cross-split near-duplicate pairs (dHash ≤ {}): {}\n",
        report.unreadable.len(),
        report.duplicate_groups.len(),
        report.cross_split_duplicates.len(),
        report.thresholds.near_duplicate_max_distance,
        report.near_duplicates.len(),
    ));
    for error in &report.errors {
        out.push_str(&format!("error: {error}\n"));
    }
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}
