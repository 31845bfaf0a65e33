//! Sharded evaluation: `eval --shard K/N` and `eval --resume` write a records file that
//! carries its provenance and is saved as it goes; `merge` joins the parts of one evaluation
//! (docs/formats.md, "Per-image records").

use std::path::Path;
use std::time::{Duration, Instant};

use super::args::{EvalArgs, MergeArgs, ModelArgs};
use super::open::{progress_bar, Opened};
use blockdrop::eval::{evaluate_range, EvalOptions};
use blockdrop::fingerprint::Fnv;
use blockdrop::records::provenance::{check_part_target, read_part, write_part, Provenance};
use blockdrop::records::{Record, Summary};
use blockdrop::Error;

/// How often a part being evaluated is saved: what a kill can cost.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// The model's fingerprint: its file's bytes (and its base file's), or the bundled default's.
fn model_fingerprint(args: &ModelArgs) -> anyhow::Result<String> {
    let mut hash = Fnv::default();
    match &args.model {
        Some(path) => hash.update(&blockdrop::input::read_file(path)?),
        None => hash.update(blockdrop::bundled::default_model_bytes()),
    }
    if let Some(base) = &args.base {
        hash.update(&blockdrop::input::read_file(base)?);
    }
    Ok(format!("{:016x}", hash.finish()))
}

/// The data's fingerprint: format, split, size and labels (a path may differ between the
/// machines of one cluster).
fn data_fingerprint(opened: &Opened) -> String {
    let dataset = &opened.dataset;
    let mut hash = Fnv::default();
    for label in dataset.labels() {
        hash.update(&label.to_le_bytes());
    }
    format!(
        "{}:{}:{}:{:016x}",
        dataset.format,
        dataset.split,
        dataset.len(),
        hash.finish()
    )
}

/// What `eval` with these flags evaluates, as its records file records it.
pub fn provenance(
    opened: &Opened,
    options: &EvalOptions,
    args: &EvalArgs,
) -> anyhow::Result<Provenance> {
    let dataset = &opened.dataset;
    Ok(Provenance {
        model: model_fingerprint(&args.model)?,
        model_name: opened.name.clone(),
        config: opened.loaded.model.config.name.clone(),
        data: data_fingerprint(opened),
        data_path: dataset.path.display().to_string(),
        threshold: options.threshold.to_string(),
        images: options
            .limit
            .map_or(dataset.len(), |l| l.min(dataset.len())),
        logits: options.keep_logits,
        shard: args.shard,
    })
}

/// Whether records with `provenance` (read from `path`) are of the model and data `opened`
/// from `args` (`export --records`).
pub fn check_records_of(
    opened: &Opened,
    args: &ModelArgs,
    provenance: &Provenance,
    path: &Path,
) -> anyhow::Result<()> {
    if provenance.images > opened.dataset.len() {
        return Err(Error::bad_input(
            path,
            format!(
                "covers {} images, the {} split of --data holds {}",
                provenance.images,
                opened.dataset.split,
                opened.dataset.len()
            ),
        )
        .into());
    }
    let differs = if provenance.model != model_fingerprint(args)? {
        Some(format!("the model {}", provenance.model_name))
    } else if provenance.config != opened.loaded.model.config.name {
        Some(format!("configuration {}", provenance.config))
    } else if provenance.data != data_fingerprint(opened) {
        Some(format!("the data {}", provenance.data_path))
    } else {
        None
    };
    match differs {
        Some(what) => Err(Error::bad_input(
            path,
            format!(
                "holds records of {what}, not of --model and --data as given: pass the model and data they were evaluated with"
            ),
        )
        .into()),
        None => Ok(()),
    }
}

/// `eval --shard K/N` or `--resume`: evaluates this part's images not yet in its records
/// file, saving the file every [`SAVE_EVERY`] (marked unfinished) and once more at the end
/// (marked complete); prints the four lines of the part.
pub fn evaluate_part(
    opened: &Opened,
    options: &EvalOptions,
    args: &EvalArgs,
) -> anyhow::Result<Vec<Record>> {
    let Some(path) = &args.records else {
        return Err(Error::BadUsage(
            "--shard and --resume need --records PART.parquet (the file the part is saved in)"
                .into(),
        )
        .into());
    };
    // The part's file is checked before any work (it is first saved seconds in).
    check_part_target(path)?;
    let (dataset, model) = (&opened.dataset, &opened.loaded.model);
    let provenance = provenance(opened, options, args)?;
    let mut records = Vec::new();
    if args.resume && path.exists() {
        let (saved, theirs, complete) = read_part(path)?;
        let differs = provenance.mismatch(&theirs).or_else(|| {
            (theirs.shard != provenance.shard).then(|| {
                let part = |s: Option<blockdrop::eval::shard::Shard>| {
                    s.map_or("the whole".to_string(), |s| format!("part {s}"))
                };
                format!("{} vs {}", part(provenance.shard), part(theirs.shard))
            })
        });
        if let Some(what) = differs {
            return Err(Error::bad_input(
                path,
                format!(
                    "holds records of another evaluation ({what}): resume with the flags it \
                     was started with, or write to another --records"
                ),
            )
            .into());
        }
        out!(
            "resuming {}: {} of {} images done{}",
            path.display(),
            saved.len(),
            theirs.range().len(),
            if complete { " (complete)" } else { "" }
        );
        records = saved;
    }
    let range = provenance.range();
    let todo = range.start + records.len()..range.end;
    if !todo.is_empty() {
        let bar = progress_bar(range.len());
        bar.set_position(records.len() as u64);
        // Each save rewrites the file: saving at most a tenth of the time keeps that linear.
        let (mut saved_at, mut interval) = (Instant::now(), SAVE_EVERY);
        evaluate_range(model, dataset, todo, options, &opened.device, |batch| {
            records.extend_from_slice(batch);
            bar.set_position(records.len() as u64);
            if saved_at.elapsed() >= interval {
                let started = Instant::now();
                write_part(&records, path, &provenance, false)?;
                interval = SAVE_EVERY.max(started.elapsed() * 10);
                saved_at = Instant::now();
            }
            Ok(())
        })?;
        bar.finish_and_clear();
    }
    write_part(&records, path, &provenance, true)?;
    if records.is_empty() {
        out!(
            "part {} of {} images holds none of them",
            args.shard.map_or("-".into(), |s| s.to_string()),
            provenance.images
        );
    } else {
        out!("{}", Summary::of(&records));
    }
    opened.print_notes();
    Ok(records)
}

/// `merge PART… [--records OUT]`.
pub fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let (records, provenance) = load_merged(&args.parts, args.records.as_deref())?;
    // Written before anything is printed: a closed stdout cannot cost the merged file.
    if let Some(out) = &args.records {
        write_part(&records, out, &provenance, true)?;
    }
    out!("{}", Summary::of(&records));
    out!(
        "({} images of {} from {} parts, config {}, threshold {})",
        records.len(),
        provenance.data_path,
        args.parts.len(),
        provenance.config,
        provenance.threshold
    );
    if let Some(out) = &args.records {
        out!("records: {}", out.display());
    }
    Ok(())
}

/// The records of `parts` (complete parts of one evaluation, every image once), in image
/// order, with the whole evaluation's provenance. `out`, where they will be written, must not
/// be one of the parts.
pub fn load_merged(
    parts: &[std::path::PathBuf],
    out: Option<&Path>,
) -> anyhow::Result<(Vec<Record>, Provenance)> {
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
            )
            .into());
        }
    }
    for (i, part) in parts.iter().enumerate() {
        if parts[..i].contains(part) {
            return Err(Error::bad_input(part, "is given twice").into());
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
            )
            .into());
        }
        if let Some(what) = first.as_ref().and_then(|f| f.mismatch(&provenance)) {
            return Err(Error::bad_input(
                path,
                format!(
                    "is not part of the same evaluation as {} ({what})",
                    parts[0].display()
                ),
            )
            .into());
        }
        first.get_or_insert(provenance);
        all.extend(records.into_iter().map(|r| (r, n)));
    }
    let Some(provenance) = first else {
        return Err(Error::BadUsage("merge needs at least one part".into()).into());
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
fn check_coverage(
    sorted: &[(Record, usize)],
    images: usize,
    parts: &[impl AsRef<Path>],
) -> anyhow::Result<()> {
    for (i, (record, part)) in sorted.iter().enumerate() {
        let index = record.index as usize;
        if index == i {
            continue;
        }
        if index < i {
            let other = sorted[i - 1].1;
            return Err(Error::bad_input(
                parts[*part].as_ref(),
                format!(
                    "holds image {index}, which {} holds too: the parts overlap",
                    parts[other].as_ref().display()
                ),
            )
            .into());
        }
        return Err(Error::BadUsage(format!(
            "no part holds image {i}: a part is missing (the {images} images need every part)"
        ))
        .into());
    }
    if sorted.len() < images {
        return Err(Error::BadUsage(format!(
            "the parts hold images 0..{} of {images}: a part is missing",
            sorted.len()
        ))
        .into());
    }
    Ok(())
}
