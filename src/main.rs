use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use blockdrop::checkpoint::LoadedModel;
use blockdrop::cli::{
    Cli, Command, EvalArgs, ExportArgs, ImportArgs, KernelsArg, ModelArgs, ProfileArgs, ReportArgs,
};
use blockdrop::eval::{evaluate, EvalOptions, Summary};
use blockdrop::kernels::Kernels;
use blockdrop::profile::{profile, ProfileOptions};
use blockdrop::{bundled, checkpoint, data, records};

fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len}  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The device, the model (BatchNorm folded unless --no-fold) and the dataset a command runs on.
fn open(args: &ModelArgs) -> anyhow::Result<(candle_core::Device, LoadedModel, data::Dataset)> {
    let device = args.device.open()?;
    let mut loaded = checkpoint::load_model(
        &args.model,
        args.base.as_deref(),
        args.config.as_deref(),
        &device,
    )?;
    if !args.no_fold {
        loaded.model.fold_batchnorm()?;
    }
    match args.kernels {
        None => {}
        Some(KernelsArg::Stock) => loaded.model.set_kernels(Kernels::Stock),
        Some(KernelsArg::Fast) if device.is_cpu() => loaded.model.set_kernels(Kernels::Fast),
        Some(KernelsArg::Fast) => {
            return Err(blockdrop::Error::BadUsage(
                "--kernels fast runs on the CPU only; use --kernels stock on CUDA and Metal".into(),
            )
            .into())
        }
    }
    let dataset = data::Dataset::open(&args.data, args.split)?;
    if loaded.is_untrained() {
        eprintln!(
            "note: {} is an untrained model (random weights)",
            args.model.display()
        );
    }
    Ok((device, loaded, dataset))
}

fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let (device, loaded, dataset) = open(&args.model)?;
    let options = EvalOptions {
        limit: args.limit,
        batch: args.batch,
        threshold: args.threshold,
        keep_logits: args.logits,
    };
    let bar = progress_bar(options.limit.unwrap_or(dataset.len()).min(dataset.len()));
    let records = evaluate(&loaded.model, &dataset, &options, &device, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!("{}", Summary::of(&records));
    println!(
        "({} {} images of {} [{}], config {}, threshold {})",
        records.len(),
        dataset.split,
        dataset.path.display(),
        dataset.format,
        loaded.model.config.name,
        options.threshold
    );
    if let Some(path) = &args.records {
        records::write(&records, path)?;
        println!("records: {}", path.display());
    }
    Ok(())
}

fn profile_command(args: &ProfileArgs) -> anyhow::Result<()> {
    let (device, loaded, dataset) = open(&args.model)?;
    let options = ProfileOptions {
        images: args.images,
        batch: args.batch,
        repeat: args.repeat,
        ..ProfileOptions::default()
    };
    eprintln!(
        "profiling {} ({} runs per measurement)…",
        loaded.model.config.name, options.repeat
    );
    let report = profile(&loaded.model, &dataset, &options, &device)?;
    println!("{report}");
    if let Some(path) = &args.out {
        blockdrop::profile::write(&report, path)?;
        println!("profile: {}", path.display());
    }
    Ok(())
}

fn export_options(args: &ReportArgs) -> blockdrop::report::ExportOptions {
    let mut options = blockdrop::report::ExportOptions::default();
    options.eval.limit = args.limit;
    options.tradeoff.limit = Some(args.tradeoff_images);
    options.clusters = args.clusters;
    if args.no_profile {
        options.profile = None;
    }
    options
}

/// Evaluates, sweeps, profiles and writes the report, with a progress line per stage.
fn write_export(
    model: &blockdrop::model::BlockDrop,
    dataset: &data::Dataset,
    args: &ReportArgs,
    device: &candle_core::Device,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let options = export_options(args);
    let start = std::time::Instant::now();
    let bar = progress_bar(1);
    let data =
        blockdrop::report::collect(model, dataset, &options, device, |stage, done, total| {
            bar.set_message(stage.to_string());
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
    bar.finish_and_clear();
    let figures = blockdrop::report::write_report(&data, &options, out)?;
    println!("{}", Summary::of(&data.records));
    println!(
        "report: {} ({} figures, index.md, summary.json, records.parquet, clusters.parquet, tradeoff.csv) in {:.1} s",
        out.display(),
        figures.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let (device, loaded, dataset) = open(&args.model)?;
    write_export(&loaded.model, &dataset, &args.report, &device, &args.out)
}

/// The bundled default model (BatchNorm folded) and sample, on the CPU.
fn open_bundled() -> anyhow::Result<(candle_core::Device, LoadedModel, data::Dataset)> {
    let device = candle_core::Device::Cpu;
    let mut loaded =
        bundled::default_model(&device).context("loading the bundled default model")?;
    loaded.model.fold_batchnorm()?;
    let dataset = bundled::sample_dataset().context("loading the bundled Fashion-MNIST sample")?;
    Ok((device, loaded, dataset))
}

fn export_default(out: &std::path::Path) -> anyhow::Result<()> {
    let (device, loaded, dataset) = open_bundled()?;
    if loaded.is_untrained() {
        println!("The bundled model is UNTRAINED (random weights): the report shows its structure, not a trained policy.");
    }
    write_export(
        &loaded.model,
        &dataset,
        &ReportArgs {
            tradeoff_images: 500,
            ..ReportArgs::default()
        },
        &device,
        out,
    )
}

fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let report = checkpoint::convert::import(
        &args.torch_file,
        args.base.as_deref(),
        args.config.as_deref(),
        &args.out,
    )?;
    println!("{report}");
    Ok(())
}

fn tui(args: &ModelArgs) -> anyhow::Result<()> {
    let (device, loaded, dataset) = open(args)?;
    let untrained = loaded.is_untrained();
    let first_frame = blockdrop::tui::run(
        loaded.model,
        dataset,
        device,
        args.model.display().to_string(),
        untrained,
        started(),
    )?;
    report_first_frame(first_frame);
    Ok(())
}

/// When the process started (first asked for at the top of `main`).
fn started() -> std::time::Instant {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

/// With BLOCKDROP_TIMING set, says how long the first frame took (for measuring).
fn report_first_frame(first_frame: std::time::Duration) {
    if std::env::var_os("BLOCKDROP_TIMING").is_some() {
        eprintln!(
            "first frame after {:.1} ms",
            first_frame.as_secs_f64() * 1e3
        );
    }
}

/// The main job without arguments: the workbench on the bundled default model and sample,
/// or, when stdout is not a terminal, its evaluation printed.
fn default_job() -> anyhow::Result<()> {
    if std::io::stdout().is_terminal() {
        let (device, loaded, dataset) = open_bundled()?;
        let untrained = loaded.is_untrained();
        let first_frame = blockdrop::tui::run(
            loaded.model,
            dataset,
            device,
            bundled::DEFAULT_MODEL_PATH.to_string(),
            untrained,
            started(),
        )?;
        report_first_frame(first_frame);
        return Ok(());
    }
    print_default_evaluation()
}

fn print_default_evaluation() -> anyhow::Result<()> {
    let (device, loaded, dataset) = open_bundled()?;
    println!(
        "Bundled default: {} on the first {} Fashion-MNIST test images",
        loaded.model.config.name,
        dataset.len()
    );
    if loaded.is_untrained() {
        println!(
            "The bundled model is UNTRAINED (random weights): its accuracy is chance level until a trained default ships."
        );
    }
    let options = EvalOptions::default();
    let bar = progress_bar(dataset.len());
    let records = evaluate(&loaded.model, &dataset, &options, &device, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!("{}", Summary::of(&records));
    println!("(not a terminal, so no interactive view; `blockdrop --export` writes the full report, `blockdrop --help` lists the rest)");
    Ok(())
}

/// Exit code 2 for the user's input (bad flags, bad files), 1 for anything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    let user_error = error
        .chain()
        .filter_map(|e| e.downcast_ref::<blockdrop::Error>())
        .any(blockdrop::Error::is_user_error);
    if user_error {
        2
    } else {
        1
    }
}

fn main() -> ExitCode {
    started();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Eval(args)) => eval(args),
        Some(Command::Import(args)) => import(args),
        Some(Command::Tui(args)) => tui(args),
        Some(Command::Profile(args)) => profile_command(args),
        Some(Command::Export(args)) => export(args),
        None => match &cli.export {
            Some(dir) => export_default(dir),
            None => default_job(),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}
