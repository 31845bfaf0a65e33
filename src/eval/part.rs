//! One part of a sharded or resumable evaluation (`eval --shard K/N`, `eval --resume`): the
//! part's images not yet in its records file are evaluated, and the file is saved as it goes,
//! so a kill costs seconds of work (docs/formats.md, "Per-image records").

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::Device;

use crate::data::Dataset;
use crate::error::Result;
use crate::eval::{evaluate_range, EvalOptions};
use crate::model::BlockDrop;
use crate::records::provenance::{write_part, Provenance};
use crate::records::Record;

/// How often a part being evaluated is saved: what a kill can cost.
pub const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Evaluates the images of `provenance`'s range after the `records` already saved, saving the
/// file at `path` every [`SAVE_EVERY`] or so (marked unfinished) and once more at the end
/// (marked complete). `progress(done)` counts the part's images done.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_part(
    model: &BlockDrop,
    dataset: &Dataset,
    provenance: &Provenance,
    path: &Path,
    mut records: Vec<Record>,
    options: &EvalOptions,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Record>> {
    let range = provenance.range();
    let todo = range.start + records.len()..range.end;
    if !todo.is_empty() {
        // Each save rewrites the file: saving at most a tenth of the time keeps that linear.
        let (mut saved_at, mut interval) = (Instant::now(), SAVE_EVERY);
        evaluate_range(model, dataset, todo, options, device, |batch| {
            records.extend_from_slice(batch);
            progress(records.len());
            if saved_at.elapsed() >= interval {
                let started = Instant::now();
                write_part(&records, path, provenance, false)?;
                interval = SAVE_EVERY.max(started.elapsed() * 10);
                saved_at = Instant::now();
            }
            Ok(())
        })?;
    }
    write_part(&records, path, provenance, true)?;
    Ok(records)
}
