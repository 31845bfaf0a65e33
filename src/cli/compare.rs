//! `compare` (several models on the same data) and `runs` (training curves).

use std::path::{Path, PathBuf};

use super::args::{CompareArgs, RunsArgs};
use super::open::progress_bar;
use blockdrop::compare::{compare as compare_models, CompareOptions, Entry};
use blockdrop::device::DeviceKind;
use blockdrop::eval::baselines::Selection;
use blockdrop::runs::{display_name, RunFolder};
use blockdrop::{checkpoint, data, output, report, Error};

/// The model file a MODEL argument stands for (a run folder's best model), and the run.
pub fn model_file(path: &Path) -> blockdrop::Result<(PathBuf, Option<RunFolder>)> {
    if RunFolder::is_run(path) {
        let run = RunFolder::read(path)?;
        Ok((run.model_file()?, Some(run)))
    } else {
        Ok((path.to_path_buf(), None))
    }
}

/// A MODEL argument loaded, BatchNorm folded, with its run when it is a run folder.
pub fn load(
    path: &Path,
    device: &candle_core::Device,
) -> blockdrop::Result<(blockdrop::model::BlockDrop, Option<RunFolder>)> {
    let (file, run) = model_file(path)?;
    let loaded = checkpoint::open_model(&file, None, None, true, device)?;
    Ok((loaded.model, run))
}

/// A MODEL argument as a comparison entry: a model that cannot be loaded keeps its name and
/// the reason.
fn entry(path: &Path, device: &candle_core::Device) -> Entry {
    let name = display_name(path);
    match load(path, device) {
        Ok((model, run)) => Entry {
            name,
            model: Ok(std::sync::Arc::new(model)),
            run,
        },
        Err(e) => Entry {
            name,
            model: Err(e.to_string()),
            run: None,
        },
    }
}

/// The model file a MODEL argument names, for the output folder's checks.
fn model_path(path: &Path) -> PathBuf {
    if RunFolder::is_run(path) {
        path.join(blockdrop::train::run::BEST)
    } else {
        path.to_path_buf()
    }
}

/// Refuses a cost table that describes none of the models compared.
fn check_cost_table(
    path: &Path,
    table: &blockdrop::profile::cost::CostTable,
    entries: &[Entry],
) -> anyhow::Result<()> {
    let matches = entries
        .iter()
        .any(|e| e.model.as_ref().is_ok_and(|m| table.describes(&m.config)));
    if !matches {
        return Err(Error::bad_input(
            path,
            format!(
                "is a cost table of {} with {} blocks; none of the models compared is",
                table.config,
                table.blocks.len()
            ),
        )
        .into());
    }
    Ok(())
}

/// The comparison preset with the flags' changes.
fn compare_options(
    args: &CompareArgs,
    cost: Option<blockdrop::profile::cost::CostTable>,
) -> CompareOptions {
    let mut options = CompareOptions::default();
    options.eval.limit = args.limit;
    options.eval.threshold = args.threshold;
    options.tradeoff.limit = Some(args.tradeoff_images);
    args.selection.apply(&mut options.tradeoff);
    if let Some(profile) = &mut options.profile {
        profile.images = args.profile_images;
    }
    if args.no_profile {
        options.profile = None;
    }
    options.cost = cost;
    options
}

pub fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        for model in &args.models {
            output::check_export_target(out, &args.data, Some(&model_path(model)))?;
        }
    }
    let device = DeviceKind::from(args.device).open()?;
    let mut dataset = data::Dataset::open(&args.data, args.split.into())?;
    let cost = args
        .cost
        .as_ref()
        .map(|path| blockdrop::profile::cost::CostTable::read(path))
        .transpose()?;
    let entries: Vec<Entry> = args.models.iter().map(|m| entry(m, &device)).collect();
    // Class folders are labelled by the first model's configuration; a model of another
    // configuration is refused by its label check.
    if let Some(config) = entries
        .iter()
        .find_map(|e| e.model.as_ref().ok().map(|m| &m.config))
    {
        let labelling = dataset.label_for(config)?;
        if let Some(note) = super::open::labelling_note(labelling, &config.name) {
            out!("note: {note}");
        }
    }
    let other = blockdrop::study::selection_split(&dataset, false);
    let selection = Selection::of(&dataset, &other)?;
    if let (Some(path), Some(table)) = (&args.cost, &cost) {
        check_cost_table(path, table, &entries)?;
    }
    let options = compare_options(args, cost);
    let start = std::time::Instant::now();
    let bar = progress_bar(1);
    let comparison = compare_models(
        entries,
        &dataset,
        &selection,
        &options,
        &device,
        |phase, done, total| {
            bar.set_message(phase.to_string());
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    out!("{}", report::models::table_text(&comparison));
    out!(
        "({} {} images of {} [{}], threshold {}; adaptivity gain on the first {} images)",
        comparison.images,
        dataset.split,
        dataset.path.display(),
        dataset.format,
        args.threshold,
        args.tradeoff_images.min(comparison.images)
    );
    if let Some(out) = &args.out {
        let title = format!("{} models on {}", args.models.len(), dataset.path.display());
        let figures = report::models::write_report(&title, &comparison, out)?;
        out!(
            "report: {} ({} figures, index.md, comparison.csv) in {:.1} s",
            out.display(),
            figures.len(),
            start.elapsed().as_secs_f64()
        );
    }
    let failed = comparison.rows.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        return Err(Error::bad_input(
            &args.models[comparison.rows.iter().position(|r| r.is_err()).unwrap_or(0)],
            format!(
                "{failed} of {} models could not be compared (their rows say why)",
                comparison.rows.len()
            ),
        )
        .into());
    }
    Ok(())
}

pub fn runs(args: &RunsArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        output::check_report_target(out)?;
        let inputs: Vec<(&Path, &str)> = args.runs.iter().map(|r| (r.as_path(), "run")).collect();
        output::refuse_inside(out, &inputs)?;
    }
    let runs = args
        .runs
        .iter()
        .map(|r| RunFolder::read(r))
        .collect::<blockdrop::Result<Vec<_>>>()?;
    out!("{}", report::runs::summary_text(&runs));
    if let Some(out) = &args.out {
        report::runs::write_report(&runs, out)?;
        out!("report: {} (training.png, index.md)", out.display());
    }
    Ok(())
}
