//! The analysis of a million records on polars: `cargo bench --bench analysis [-- N]`.
//!
//! Generates N (default 1,000,000) synthetic records of 15 blocks (benches/support/records.rs),
//! then times [`Analysis::of`] (keep rates, per-class table, exact groups, k-medoids clusters,
//! easy/hard ranking), each part on its own frame, and reading the records back from Parquet
//! as `export --records` and `merge` do. Prints wall times (median of three) and the process's
//! peak resident memory, which includes the records themselves.

#[path = "support/memory.rs"]
mod memory;
#[path = "support/records.rs"]
mod records;

use std::time::Instant;

use blockdrop::analysis::{Analysis, RecordFrame, DEFAULT_CLUSTERS};
use blockdrop::stats::median;

const BLOCKS: usize = 15;
const ROUNDS: usize = 3;

/// Median seconds of `f` over [`ROUNDS`] runs.
fn seconds<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        last = Some(f()?);
        samples.push(start.elapsed().as_secs_f64());
    }
    Ok((median(&samples), last.expect("ROUNDS > 0")))
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let start = Instant::now();
    let records = records::synthetic_records(n, BLOCKS, 7);
    println!(
        "{n} synthetic records of {BLOCKS} blocks generated in {:.2} s; peak RSS {:.0} MiB",
        start.elapsed().as_secs_f64(),
        memory::peak_rss_mib()
    );
    let (total, analysis) = seconds(|| Ok(Analysis::of(&records, None)?))?;
    println!(
        "Analysis::of: {total:.2} s (median of {ROUNDS}); {} distinct policies, {} clusters, {} classes",
        analysis.groups.len(),
        analysis.clusters.len(),
        analysis.classes.len()
    );
    let (build, frame) = seconds(|| Ok(RecordFrame::of(&records)?))?;
    let (keep, _) = seconds(|| Ok(frame.keep_rates()?))?;
    let (classes, _) = seconds(|| Ok(frame.per_class()?))?;
    let (groups_s, groups) = seconds(|| Ok(frame.exact_groups()?))?;
    let (clusters, _) = seconds(|| Ok(frame.clusters(&groups, DEFAULT_CLUSTERS)?))?;
    let (ranking, _) = seconds(|| Ok(frame.easy_to_hard()?))?;
    println!(
        "  by part: frame {build:.2} s, keep rates {keep:.3} s, per class {classes:.2} s, exact groups {groups_s:.2} s, clusters {clusters:.2} s, easy/hard {ranking:.2} s"
    );
    println!(
        "peak RSS after the analysis: {:.0} MiB",
        memory::peak_rss_mib()
    );
    let dir = std::env::temp_dir().join(format!("blockdrop-bench-analysis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("records.parquet");
    let start = Instant::now();
    blockdrop::records::write(&records, &path)?;
    let wrote = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let back = blockdrop::records::load(&[&path])?;
    let read = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path)?.len();
    std::fs::remove_dir_all(&dir)?;
    assert_eq!(back.len(), records.len());
    println!(
        "Parquet: written in {wrote:.2} s ({:.0} MiB), read back in {read:.2} s",
        size as f64 / (1u64 << 20) as f64
    );
    println!(
        "peak RSS of the whole process: {:.0} MiB (goal: analysis under 5 s and 2 GiB)",
        memory::peak_rss_mib()
    );
    Ok(())
}
