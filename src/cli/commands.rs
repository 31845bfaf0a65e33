//! The commands that run a model: `eval`, `profile`, `export` (and `--export`), `import`, and
//! the terminal app (`tui`, and the default job without a subcommand).

use std::io::IsTerminal;
use std::path::Path;

use super::args::{
    EvalArgs, ExportArgs, ImportArgs, ProfileArgs, ReportArgs, TradeoffAxis, TuiArgs,
};
use super::open::{open, open_bundled, open_with, progress_bar, Opened};
use super::started;
use blockdrop::data::prefetch::Prefetch;
use blockdrop::eval::adaptivity::Adaptivity;
use blockdrop::eval::baselines::Selection;
use blockdrop::eval::tradeoff::TradeoffOptions;
use blockdrop::eval::{evaluate, EvalOptions};
use blockdrop::profile::cost::{CostTable, PredictedLatency};
use blockdrop::profile::ProfileOptions;
use blockdrop::records::provenance::write_part;
use blockdrop::records::{self, Summary};
use blockdrop::report::ReportData;
use blockdrop::runs::RunFolder;
use blockdrop::study::{self, Options};
use blockdrop::tui::{LoadedModel, Workbench};
use blockdrop::{checkpoint, compare, output, process, report};
use std::path::PathBuf;

/// Evaluates `opened` with `options`, with a progress bar; prints the four summary lines.
fn evaluate_printed(
    opened: &Opened,
    options: &EvalOptions,
) -> anyhow::Result<Vec<records::Record>> {
    let dataset = &opened.dataset;
    let bar = progress_bar(options.limit.unwrap_or(dataset.len()).min(dataset.len()));
    let records = evaluate(
        &opened.loaded.model,
        dataset,
        options,
        &opened.device,
        |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    out!("{}", Summary::of(&records));
    opened.print_notes();
    Ok(records)
}

pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let opened = open(&args.model)?;
    let config = &opened.loaded.model.config;
    let cost = args
        .cost
        .as_ref()
        .map(|path| CostTable::read_for(path, config))
        .transpose()?;
    let options = EvalOptions {
        limit: args.limit,
        batch: args.batch,
        threshold: args.threshold,
        keep_logits: args.logits,
        prefetch: Prefetch::with(args.decode_threads, args.prefetch),
        ..EvalOptions::default()
    };
    let part = args.shard.is_some() || args.resume;
    // A target blockdrop may not replace is refused before the work, not after it.
    if let Some(path) = args.records.as_ref().filter(|_| !part) {
        blockdrop::output::frame::check_frame_target(path)?;
    }
    let records = if part {
        super::parts::evaluate_part(&opened, &options, args)?
    } else {
        evaluate_printed(&opened, &options)?
    };
    // A base network alone has no policy to compare with static subsets of its blocks.
    if args.adaptivity && opened.loaded.model.has_policy() {
        let mut tradeoff = TradeoffOptions {
            limit: Some(args.baseline_images),
            threshold: args.threshold,
            ..TradeoffOptions::default()
        };
        args.selection.apply(&mut tradeoff);
        out!(
            "{}",
            adaptivity_printed(&opened, &records, &tradeoff)?.line()
        );
    }
    if let Some(table) = cost.as_ref().filter(|_| !records.is_empty()) {
        let keep_rates = blockdrop::analysis::keep_rates(&records)?;
        out!("{}", PredictedLatency::of(table, &keep_rates).line());
    }
    let dataset = &opened.dataset;
    out!(
        "({} {} images of {} [{}], config {}, threshold {}{})",
        records.len(),
        dataset.split,
        dataset.path.display(),
        dataset.format,
        opened.loaded.model.config.name,
        options.threshold,
        args.shard.map_or(String::new(), |s| format!(", part {s}"))
    );
    if part {
        if let Some(path) = &args.records {
            out!("records: {}", path.display());
        }
    } else if let Some(path) = &args.records {
        // Parquet records carry their provenance, so that `merge` and `--resume` can check
        // them; CSV is for reading by eye and other tools.
        if blockdrop::output::frame::is_parquet(path) {
            let provenance = super::parts::provenance(&opened, &options, args)?;
            write_part(&records, path, &provenance, true)?;
        } else {
            records::write(&records, path)?;
        }
        out!("records: {}", path.display());
    }
    Ok(())
}

/// The static baselines and the adaptivity gain of `records`, with a progress bar per phase.
fn adaptivity_printed(
    opened: &Opened,
    records: &[records::Record],
    options: &TradeoffOptions,
) -> anyhow::Result<Adaptivity> {
    let other = opened.other_split();
    let selection = Selection::of(&opened.dataset, &other)?;
    let bar = progress_bar(1);
    let adaptivity = study::adaptivity(
        &opened.loaded.model,
        &opened.dataset,
        records,
        &selection,
        options,
        &opened.device,
        |phase, done, total| show_phase(&bar, phase, done, total),
    )?;
    bar.finish_and_clear();
    Ok(adaptivity)
}

/// A study's progress on one bar: the phase as its message.
fn show_phase(bar: &indicatif::ProgressBar, phase: study::Phase, done: usize, total: usize) {
    bar.set_message(phase.to_string());
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}

pub fn profile(args: &ProfileArgs) -> anyhow::Result<()> {
    let opened = open(&args.model)?;
    let options = ProfileOptions {
        images: args.images,
        batch: args.batch,
        repeat: args.repeat,
        ..ProfileOptions::default()
    };
    let model = &opened.loaded.model;
    opened.print_notes();
    out!(
        "profiling {} ({} runs per measurement)…",
        model.config.name,
        options.repeat
    );
    let report = blockdrop::profile::profile(model, &opened.dataset, &options, &opened.device)?;
    out!("{report}");
    if let Some(path) = &args.out {
        blockdrop::profile::write(&report, path)?;
        out!("profile: {}", path.display());
    }
    if let Some(path) = &args.cost {
        CostTable::from_profile(&report, rayon::current_num_threads()).write(path)?;
        out!("cost table: {}", path.display());
    }
    Ok(())
}

/// The report preset with the flags' changes.
fn export_options(args: &ReportArgs, opened: &Opened) -> anyhow::Result<Options> {
    let mut options = Options::default();
    let config = &opened.loaded.model.config;
    options.cost = args
        .cost
        .as_ref()
        .map(|path| CostTable::read_for(path, config))
        .transpose()?;
    options.latency_axis = args.tradeoff_axis == TradeoffAxis::Latency;
    if options.latency_axis && args.no_profile && options.cost.is_none() {
        return Err(blockdrop::Error::BadUsage(
            "--tradeoff-axis latency needs a profile or --cost FILE.json (--no-profile leaves neither)".into(),
        )
        .into());
    }
    options.eval.limit = args.limit;
    options.tradeoff.limit = Some(args.tradeoff_images);
    args.selection.apply(&mut options.tradeoff);
    options.clusters = args.clusters;
    if args.no_profile {
        options.profile = None;
    }
    options.sweep = !args.no_tradeoff;
    Ok(options)
}

/// Evaluates, sweeps, profiles and writes the report, with a progress line per phase.
/// With `shipped_models`, the report adds the Models section (the bundled default's).
fn write_export(
    opened: &Opened,
    options: &Options,
    out: &Path,
    shipped_models: bool,
    records: Option<Vec<records::Record>>,
) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let bar = progress_bar(1);
    let model = &opened.loaded.model;
    let other = opened.other_split();
    let selection = Selection::of(&opened.dataset, &other)?;
    let show =
        |phase: study::Phase, done: usize, total: usize| show_phase(&bar, phase, done, total);
    let (dataset, device) = (&opened.dataset, &opened.device);
    let study = match records {
        Some(records) => {
            study::run_on_records(model, dataset, records, &selection, options, device, show)?
        }
        None => study::run(model, dataset, &selection, options, device, show)?,
    };
    let models = if shipped_models {
        Some(compare::shipped_models(dataset, device, show)?)
    } else {
        None
    };
    let data = ReportData { study, models };
    bar.finish_and_clear();
    let figures = report::write_report(&data, options, out)?;
    out!("{}", Summary::of(&data.study.records));
    opened.print_notes();
    out!(
        "report: {} ({} figures, index.md, summary.json, records.parquet, clusters.parquet{}) in {:.1} s",
        out.display(),
        figures.len(),
        if data.study.tradeoff.is_some() { ", tradeoff.csv" } else { "" },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    // The folder is checked before any work, and again when the report is moved in.
    output::check_export_target(&args.out, &args.model.data, args.model.model.as_deref())?;
    let opened = open(&args.model)?;
    let mut options = export_options(&args.report, &opened)?;
    let records = if args.records.is_empty() {
        None
    } else {
        if args.report.limit.is_some() {
            return Err(blockdrop::Error::BadUsage(
                "--limit does not apply to --records: the report covers the records' images".into(),
            )
            .into());
        }
        let (records, provenance) = blockdrop::records::merge::load_merged(&args.records, None)?;
        super::parts::check_records_of(&opened, &args.model, &provenance, &args.records[0])?;
        // The report describes the records at the threshold they were evaluated at, and the
        // sweep's operating point is that threshold too.
        let threshold = provenance
            .threshold
            .parse::<f32>()
            .ok()
            .filter(|t| (0.0..=1.0).contains(t))
            .ok_or_else(|| {
                blockdrop::Error::bad_input(
                    &args.records[0],
                    format!(
                        "`blockdrop.threshold` is {:?}, not a probability",
                        provenance.threshold
                    ),
                )
            })?;
        options.eval.threshold = threshold;
        options.tradeoff.threshold = threshold;
        Some(records)
    };
    write_export(&opened, &options, &args.out, false, records)
}

/// `--export`: the bundled default's report with the preset every report shares.
pub fn export_default(out: &Path) -> anyhow::Result<()> {
    output::check_report_target(out)?;
    let opened = open_bundled()?;
    if opened.loaded.is_untrained() {
        out!("The bundled model is UNTRAINED (random weights): the report shows its structure, not a trained policy.");
    }
    write_export(&opened, &Options::default(), out, true, None)
}

pub fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let report = checkpoint::convert::import(
        &args.torch_file,
        args.base.as_deref(),
        args.config.as_deref(),
        &args.out,
    )?;
    out!("{report}");
    Ok(())
}

pub fn tui(args: &TuiArgs) -> anyhow::Result<()> {
    // Without --model, the first MODEL is the one shown first.
    let (primary, extra) = match (&args.model.model, args.models.split_first()) {
        (None, Some((first, rest))) => (Some(first.clone()), rest.to_vec()),
        _ => (args.model.model.clone(), args.models.clone()),
    };
    let primary_file = match &primary {
        Some(path) => Some(super::compare::model_file(path)?.0),
        None => None,
    };
    let runs: Vec<PathBuf> = primary
        .iter()
        .chain(&extra)
        .filter(|p| RunFolder::is_run(p))
        .cloned()
        .collect();
    // Every model is opened as the first is (--config, --no-fold, --kernels, --device).
    let load_extra = |_: &candle_core::Device| -> anyhow::Result<Vec<LoadedModel>> {
        extra
            .iter()
            .map(|path| {
                let (file, _) = super::compare::model_file(path)?;
                let opened = open_with(&args.model, Some(&file))?;
                Ok(LoadedModel {
                    name: path.display().to_string(),
                    untrained: opened.loaded.is_untrained(),
                    model: opened.loaded.model,
                })
            })
            .collect()
    };
    workbench(
        || open_with(&args.model, primary_file.as_deref()),
        |_| {},
        load_extra,
        runs,
    )
}

/// The main job without arguments: the workbench on the bundled default model and sample.
pub fn default_job() -> anyhow::Result<()> {
    workbench(
        open_bundled,
        |opened| {
            out!(
                "Bundled default: {} on the first {} Fashion-MNIST test images",
                opened.loaded.model.config.name,
                opened.dataset.len()
            );
            if opened.loaded.is_untrained() {
                out!(
                "The bundled model is UNTRAINED (random weights): its accuracy is chance level until a trained default ships."
            );
            }
        },
        shipped_others,
        Vec::new(),
    )
}

/// The shipped models other than the default (from the binary), for the Models view.
fn shipped_others(device: &candle_core::Device) -> anyhow::Result<Vec<LoadedModel>> {
    blockdrop::bundled::shipped_models(device)
        .into_iter()
        .skip(1)
        .map(|(path, loaded)| {
            let loaded = loaded?;
            Ok(LoadedModel {
                name: path.to_string(),
                untrained: loaded.is_untrained(),
                model: loaded.model,
            })
        })
        .collect()
}

/// The terminal app on what `open` gives; when stdout is not a terminal, `intro` and the
/// evaluation the app would show, printed.
fn workbench(
    open: impl Fn() -> anyhow::Result<Opened> + Sync,
    intro: impl Fn(&Opened) + Sync,
    load_extra: impl Fn(&candle_core::Device) -> anyhow::Result<Vec<LoadedModel>>,
    runs: Vec<PathBuf>,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        return process::on_pool(|| {
            let opened = open()?;
            intro(&opened);
            evaluate_printed(&opened, &EvalOptions::default())?;
            out!(
                "({} on {} [{}]; not a terminal, so no interactive view: `blockdrop export` writes the full report, `blockdrop --help` lists the rest)",
                opened.name,
                opened.dataset.path.display(),
                opened.dataset.format
            );
            Ok(())
        });
    }
    let opened = open()?;
    let untrained = opened.loaded.is_untrained();
    let selection = opened.other_split();
    let mut models = vec![LoadedModel {
        name: opened.name,
        model: opened.loaded.model,
        untrained,
    }];
    models.extend(load_extra(&opened.device)?);
    let first_frame = blockdrop::tui::run(
        Workbench {
            models,
            runs,
            dataset: opened.dataset,
            selection,
            device: opened.device,
        },
        started(),
    )?;
    // With BLOCKDROP_TIMING set, say how long the first frame took (for measuring).
    if std::env::var_os("BLOCKDROP_TIMING").is_some() {
        eprintln!(
            "first frame after {:.1} ms",
            first_frame.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
