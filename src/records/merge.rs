//! Joining the parts of one sharded evaluation (`merge`, `export --records`): every part
//! complete, all of one evaluation, every image exactly once (docs/formats.md, "Per-image
//! records").

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::records::provenance::{check_part_target, read_part, Provenance};
use crate::records::Record;

/// The records of `parts` (complete parts of one evaluation, every image once), in image
/// order, with the whole evaluation's provenance. `out`, where they will be written, must not
/// be one of the parts.
pub fn load_merged(parts: &[PathBuf], out: Option<&Path>) -> Result<(Vec<Record>, Provenance)> {
    if let Some(out) = out {
        check_part_target(out)?;
        let out_resolved = std::fs::canonicalize(out).ok();
        if let Some(part) = parts
            .iter()
            .find(|p| out_resolved.is_some() && std::fs::canonicalize(p).ok() == out_resolved)
        {
            return Err(Error::bad_input(
                part,
                "is one of the parts: write the merged records to another file",
            ));
        }
    }
    for (i, part) in parts.iter().enumerate() {
        if parts[..i].contains(part) {
            return Err(Error::bad_input(part, "is given twice"));
        }
    }
    // (image index, part number) for every record, to name the parts of a duplicate.
    let mut all: Vec<(Record, usize)> = Vec::new();
    let mut first: Option<Provenance> = None;
    for (n, path) in parts.iter().enumerate() {
        let (records, provenance, complete) = read_part(path)?;
        if !complete {
            return Err(Error::bad_input(
                path,
                format!(
                    "is an unfinished part ({} of {} images): finish it with `eval --resume \
                     --records {}` and the flags it was started with",
                    records.len(),
                    provenance.range().len(),
                    path.display()
                ),
            ));
        }
        if let Some(what) = first.as_ref().and_then(|f| f.mismatch(&provenance)) {
            return Err(Error::bad_input(
                path,
                format!(
                    "is not part of the same evaluation as {} ({what})",
                    parts[0].display()
                ),
            ));
        }
        first.get_or_insert(provenance);
        all.extend(records.into_iter().map(|r| (r, n)));
    }
    let Some(provenance) = first else {
        return Err(Error::BadUsage("merge needs at least one part".into()));
    };
    all.sort_by_key(|(r, _)| r.index);
    check_coverage(&all, provenance.images, parts)?;
    let whole = Provenance {
        shard: None,
        ..provenance
    };
    Ok((all.into_iter().map(|(r, _)| r).collect(), whole))
}

/// Every image `0..images` once: names a missing image, or a duplicate and its two parts.
fn check_coverage(sorted: &[(Record, usize)], images: usize, parts: &[PathBuf]) -> Result<()> {
    for (i, (record, part)) in sorted.iter().enumerate() {
        let index = record.index as usize;
        if index == i {
            continue;
        }
        if index < i {
            let other = sorted[i - 1].1;
            return Err(Error::bad_input(
                &parts[*part],
                format!(
                    "holds image {index}, which {} holds too: the parts overlap",
                    parts[other].display()
                ),
            ));
        }
        return Err(Error::BadUsage(format!(
            "no part holds image {i}: a part is missing (the {images} images need every part)"
        )));
    }
    if sorted.len() < images {
        return Err(Error::BadUsage(format!(
            "the parts hold images 0..{} of {images}: a part is missing",
            sorted.len()
        )));
    }
    Ok(())
}
