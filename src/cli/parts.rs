//! Sharded evaluation from the command line: `eval --shard K/N` and `eval --resume` (the
//! library's `eval::part` saves the part as it goes), `merge`, and the check that records
//! given to `export --records` are of the model and data given (docs/formats.md, "Per-image
//! records"). The rules live in `records`; this file parses and prints.

use std::path::Path;

use super::args::{EvalArgs, MergeArgs, ModelArgs};
use super::open::{progress_bar, Opened};
use blockdrop::eval::part::evaluate_part as evaluate_saved;
use blockdrop::eval::EvalOptions;
use blockdrop::records::merge::load_merged;
use blockdrop::records::provenance::{
    check_part_target, data_fingerprint, model_fingerprint, resume_part, write_part, Provenance,
};
use blockdrop::records::{Record, Summary};
use blockdrop::Error;

/// The model's fingerprint: its file's bytes (and its base file's), or the bundled default's.
fn model_fingerprint_of(args: &ModelArgs) -> anyhow::Result<String> {
    let model = match &args.model {
        Some(path) => blockdrop::input::read_file(path)?,
        None => blockdrop::bundled::default_model_bytes().to_vec(),
    };
    let base = args
        .base
        .as_ref()
        .map(|path| blockdrop::input::read_file(path))
        .transpose()?;
    let files: Vec<&[u8]> = std::iter::once(model.as_slice())
        .chain(base.as_deref())
        .collect();
    Ok(model_fingerprint(&files))
}

/// What `eval` with these flags evaluates, as its records file records it.
pub fn provenance(
    opened: &Opened,
    options: &EvalOptions,
    args: &EvalArgs,
) -> anyhow::Result<Provenance> {
    let dataset = &opened.dataset;
    Ok(Provenance {
        model: model_fingerprint_of(&args.model)?,
        model_name: opened.name.clone(),
        config: opened.loaded.model.config.name.clone(),
        data: data_fingerprint(dataset),
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
    let config = &opened.loaded.model.config.name;
    let model = model_fingerprint_of(args)?;
    Ok(provenance.check_source(&model, config, &opened.dataset, path)?)
}

/// `eval --shard K/N` or `--resume`: evaluates this part's images not yet in its records
/// file, saved as it goes; prints the four lines of the part.
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
    let provenance = provenance(opened, options, args)?;
    let mut records = Vec::new();
    if args.resume && path.exists() {
        let resumed = resume_part(path, &provenance)?;
        out!(
            "resuming {}: {} of {} images done{}",
            path.display(),
            resumed.records.len(),
            resumed.images,
            if resumed.complete { " (complete)" } else { "" }
        );
        records = resumed.records;
    }
    let bar = progress_bar(provenance.range().len());
    bar.set_position(records.len() as u64);
    let records = evaluate_saved(
        &opened.loaded.model,
        &opened.dataset,
        &provenance,
        path,
        records,
        options,
        &opened.device,
        |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
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
