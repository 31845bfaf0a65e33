use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use blockdrop::checkpoint::LoadedModel;
use blockdrop::cli::{
    Cli, Command, EvalArgs, ExportArgs, ImportArgs, KernelsArg, ModelArgs, PolicyArgs, ProfileArgs,
    ReportArgs, TrainBaseArgs, TrainCommand, TrainCurriculumArgs, TrainFinetuneArgs, TrainLoopArgs,
};
use blockdrop::config::Config;
use blockdrop::eval::{evaluate, EvalOptions, Summary};
use blockdrop::kernels::{process, Kernels};
use blockdrop::profile::{profile, ProfileOptions};
use blockdrop::train::run::{EpochMetrics, Run};
use blockdrop::train::schedule::Schedule;
use blockdrop::train::{self, LoopOptions};
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
    let mut loaded = match &args.model {
        Some(path) => {
            checkpoint::load_model(path, args.base.as_deref(), args.config.as_deref(), &device)?
        }
        None if args.base.is_some() => {
            return Err(blockdrop::Error::BadUsage("--base needs --model".into()).into())
        }
        None => bundled::default_model(&device).context("loading the bundled default model")?,
    };
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
        println!(
            "note: {} is an untrained model (random weights)",
            model_name(args)
        );
    }
    Ok((device, loaded, dataset))
}

/// The model a command runs, as the user named it.
fn model_name(args: &ModelArgs) -> String {
    args.model.as_ref().map_or_else(
        || bundled::DEFAULT_MODEL_PATH.to_string(),
        |p| p.display().to_string(),
    )
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
    println!(
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
    // The folder is checked before any work, and again when the report is moved in.
    blockdrop::output::check_export_target(
        &args.out,
        &args.model.data,
        args.model.model.as_deref(),
    )?;
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
    blockdrop::output::check_report_target(out)?;
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
    if !std::io::stdout().is_terminal() {
        // As `blockdrop` without a terminal: the evaluation, printed.
        return process::on_pool(|| {
            let (device, loaded, dataset) = open(args)?;
            print_evaluation(&model_name(args), &device, &loaded, &dataset)
        });
    }
    let (device, loaded, dataset) = open(args)?;
    let untrained = loaded.is_untrained();
    let first_frame = blockdrop::tui::run(
        loaded.model,
        dataset,
        device,
        model_name(args),
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
    process::on_pool(print_default_evaluation)
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
    print_evaluation(bundled::DEFAULT_MODEL_PATH, &device, &loaded, &dataset)
}

/// The evaluation the workbench would show, printed (when there is no terminal to show it).
fn print_evaluation(
    model: &str,
    device: &candle_core::Device,
    loaded: &LoadedModel,
    dataset: &data::Dataset,
) -> anyhow::Result<()> {
    let options = EvalOptions::default();
    let bar = progress_bar(dataset.len());
    let records = evaluate(&loaded.model, dataset, &options, device, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!("{}", Summary::of(&records));
    println!(
        "({model} on {} [{}]; not a terminal, so no interactive view: `blockdrop export` writes the full report, `blockdrop --help` lists the rest)",
        dataset.path.display(),
        dataset.format
    );
    Ok(())
}

/// Help and version print as clap writes them; a bad flag is one line naming it and what is
/// allowed (clap's own message, without its usage block), exit code 2.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let rendered = error.render().to_string();
    let line = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("bad usage");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    eprintln!("error: {line} (blockdrop --help lists what is allowed)");
    ExitCode::from(2)
}

/// An error message as one line of bounded length: names and text taken from files may hold
/// newlines (which would forge further lines) or run to megabytes.
fn one_line(message: &str) -> String {
    const MAX_CHARS: usize = 1000;
    let mut line = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MAX_CHARS {
            line.push_str(" […]");
            break;
        }
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
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
    process::tune();
    started();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let run = || match &cli.command {
        Some(Command::Eval(args)) => eval(args),
        Some(Command::Import(args)) => import(args),
        Some(Command::Tui(args)) => tui(args),
        Some(Command::Profile(args)) => profile_command(args),
        Some(Command::Export(args)) => export(args),
        Some(Command::Train(TrainCommand::Base(args))) => train_base(args),
        Some(Command::Train(TrainCommand::Curriculum(args))) => train_curriculum(args),
        Some(Command::Train(TrainCommand::Finetune(args))) => train_finetune(args),
        None => match &cli.export {
            Some(dir) => export_default(dir),
            None => default_job(),
        },
    };
    // Batch work runs on rayon's pool (`on_pool`); the terminal app keeps its UI thread off it
    // and runs its worker there (`default_job` puts its non-terminal fallback on the pool).
    let interactive = matches!(cli.command, Some(Command::Tui(_)))
        || (cli.command.is_none() && cli.export.is_none());
    let result = if interactive {
        run()
    } else {
        process::on_pool(run)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&format!("{error:#}")));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// Progress bars for training: one per epoch, then the epoch's line.
struct TrainProgress {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl train::Progress for TrainProgress {
    fn batch(&mut self, epoch: usize, done: usize, total: usize, running: &str) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:30} {pos}/{len} images  {per_sec}  eta {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
            bar
        });
        bar.set_position(done as u64);
        bar.set_message(running.to_string());
    }

    fn epoch(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let policy = match (
            m.reward,
            m.block_usage_mean,
            m.block_usage_std,
            m.unique_policies,
        ) {
            (Some(r), Some(b), Some(s), Some(u)) => {
                format!(" | reward {r:.3} | blocks {b:.2} ± {s:.2} | {u} policies")
            }
            _ => String::new(),
        };
        println!(
            "epoch {:>3}/{}  lr {:.2e} | train loss {:.4} acc {:.4} | test acc {:.4}{policy} | {:.0} img/s | {:.0} s",
            m.epoch + 1,
            self.epochs,
            m.lr,
            m.train_loss,
            m.train_accuracy,
            m.test_accuracy,
            m.images_per_s,
            m.wall_s
        );
    }
}

/// Stage defaults for the loop flags a user left out.
struct LoopDefaults {
    epochs: usize,
    batch_size: usize,
    lr: f64,
    /// The step schedule's period; `None`: cosine.
    epoch_step: Option<usize>,
}

fn loop_options(args: &TrainLoopArgs, defaults: LoopDefaults) -> LoopOptions {
    let epochs = args.epochs.unwrap_or(defaults.epochs);
    LoopOptions {
        epochs,
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        lr: args.lr.unwrap_or(defaults.lr),
        schedule: match args.epoch_step.or(defaults.epoch_step) {
            Some(every) => Schedule::Step {
                every,
                ratio: args.lr_decay_ratio,
            },
            None => Schedule::Cosine { epochs },
        },
        seed: args.seed,
        images_per_epoch: args.images_per_epoch,
        test_images: args.test_images,
    }
}

/// The run folder a training command works in: the one `--resume` names, or one created only
/// once the data has opened (a bad flag or dataset never leaves a folder behind).
enum RunFolder {
    Existing(Run),
    New {
        out: std::path::PathBuf,
        config: serde_json::Value,
    },
}

impl RunFolder {
    fn open(self) -> anyhow::Result<Run> {
        Ok(match self {
            RunFolder::Existing(run) => run,
            RunFolder::New { out, config } => Run::create(&out, &config)?,
        })
    }
}

/// A run to train: new from the flags, or the one `--resume` names with the options it was
/// started with (`--epochs` may extend it). Returns the run folder, its configuration, data
/// path and options.
fn open_run<O: serde::Serialize + serde::de::DeserializeOwned>(
    args: &TrainLoopArgs,
    stage: &str,
    config: impl FnOnce() -> anyhow::Result<Config>,
    fresh: impl FnOnce() -> O,
    common: impl Fn(&mut O) -> &mut LoopOptions,
) -> anyhow::Result<(RunFolder, Config, std::path::PathBuf, O)> {
    let usage = |m: &str| blockdrop::Error::BadUsage(m.into());
    if let Some(dir) = &args.resume {
        let (run, saved) = Run::open(dir)?;
        let bad = |what: &str| {
            blockdrop::Error::bad_input(dir.join(blockdrop::train::run::CONFIG), what.to_string())
        };
        if saved["stage"] != stage {
            return Err(bad(&format!("is a {} run, not {stage}", saved["stage"])).into());
        }
        let mut options: O = serde_json::from_value(saved["options"].clone())
            .map_err(|e| bad(&format!("options: {e}")))?;
        if let Some(epochs) = args.epochs {
            let common = common(&mut options);
            common.epochs = epochs;
            if let Schedule::Cosine { epochs: e } = &mut common.schedule {
                *e = epochs;
            }
        }
        common(&mut options)
            .validate()
            .map_err(|e| bad(&format!("options: {e}")))?;
        let config = Config::by_name(saved["config"].as_str().ok_or_else(|| bad("no config"))?)
            .map_err(|e| bad(&e.to_string()))?;
        let data = blockdrop::train::run::path_json::from_value(&saved["data"])
            .ok_or_else(|| bad("no data path"))?;
        return Ok((RunFolder::Existing(run), config, data, options));
    }
    let (Some(data), Some(out)) = (&args.data, &args.out) else {
        return Err(usage("--data and --out are required (or --resume DIR)").into());
    };
    let config = config()?;
    let options = fresh();
    let run_config = train::run_config(stage, &config, data, &options);
    let folder = RunFolder::New {
        out: out.clone(),
        config: run_config,
    };
    Ok((folder, config, data.clone(), options))
}

fn train_base(args: &TrainBaseArgs) -> anyhow::Result<()> {
    let defaults = LoopDefaults {
        epochs: 30,
        batch_size: 128,
        lr: 0.1,
        epoch_step: None,
    };
    let (folder, config, data, options) = open_run(
        &args.run,
        "base",
        || match &args.run.config {
            Some(name) => Ok(Config::by_name(name)?),
            None => Err(blockdrop::Error::BadUsage("--config is required".into()).into()),
        },
        || train::base::BaseOptions {
            common: loop_options(&args.run, defaults),
            momentum: args.momentum,
            weight_decay: args.weight_decay,
            augment: !args.no_augment,
        },
        |o| &mut o.common,
    )?;
    let (device, train_data, test_data, mut progress, mut run) = open_training(
        &args.run,
        "base network",
        &config,
        &data,
        folder,
        &options.common,
    )?;
    train::base::train(
        &config,
        &train_data,
        &test_data,
        &mut run,
        &options,
        &device,
        &mut progress,
    )?;
    println!(
        "done: {}",
        run.dir.join(blockdrop::train::run::LAST).display()
    );
    Ok(())
}

/// The device, both splits of the data, the progress display and the run folder of a training
/// run; the folder is created last, once everything else checked out.
fn open_training(
    args: &TrainLoopArgs,
    what: &str,
    config: &Config,
    data: &std::path::Path,
    folder: RunFolder,
    options: &LoopOptions,
) -> anyhow::Result<(
    candle_core::Device,
    data::Dataset,
    data::Dataset,
    TrainProgress,
    Run,
)> {
    let device = args.device.open()?;
    let train_data = data::Dataset::open(data, data::Split::Train)?;
    let test_data = data::Dataset::open(data, data::Split::Test)?;
    for split in [&train_data, &test_data] {
        split.check_labels(config, split.len())?;
    }
    options
        .check_batches(train_data.len())
        .map_err(blockdrop::Error::BadUsage)?;
    let run = folder.open()?;
    println!(
        "training the {what} of {} on {} ({} training, {} test images) into {}",
        config.name,
        data.display(),
        train_data.len(),
        test_data.len(),
        run.dir.display()
    );
    Ok((
        device,
        train_data,
        test_data,
        TrainProgress {
            bar: None,
            epochs: options.epochs,
        },
        run,
    ))
}

/// The configuration a model file names in its metadata, else the one its base network fits.
fn config_of(path: &std::path::Path) -> anyhow::Result<Config> {
    let bytes = blockdrop::input::read_file(path)?;
    let parts = checkpoint::read_parts(path, &bytes)?;
    let tensors = parts
        .resnet
        .unwrap_or_default()
        .into_iter()
        .map(|(name, t)| (format!("resnet.{name}"), t))
        .collect();
    Ok(checkpoint::resolve_config(
        path,
        &tensors,
        &parts.metadata,
        None,
    )?)
}

fn named_or(name: &Option<String>, model: &std::path::Path) -> anyhow::Result<Config> {
    match name {
        Some(name) => Ok(Config::by_name(name)?),
        None => config_of(model),
    }
}

fn policy_options(
    args: &TrainLoopArgs,
    policy: &PolicyArgs,
    defaults: LoopDefaults,
    penalty: f64,
    init: &std::path::Path,
) -> train::policy::PolicyOptions {
    train::policy::PolicyOptions {
        common: loop_options(args, defaults),
        alpha: policy.alpha,
        beta: policy.beta,
        penalty: policy.penalty.unwrap_or(penalty),
        cl_step: policy.cl_step,
        augment: !policy.no_augment,
        masked: policy.masked,
        init: init.to_path_buf(),
    }
}

/// What tells the two policy stages apart on the command line.
struct PolicyStage<'a> {
    /// The run's stage name (`config.json`).
    name: &'static str,
    /// What the progress line says is trained.
    what: &'static str,
    /// What the stage starts from (`--base` / `--from`), and the model file that holds it.
    init: &'a std::path::Path,
    model_file: std::path::PathBuf,
    defaults: LoopDefaults,
    penalty: f64,
    train: train::policy::StageFn,
}

fn train_policy(
    run_args: &TrainLoopArgs,
    policy: &PolicyArgs,
    stage: PolicyStage,
) -> anyhow::Result<()> {
    let (folder, config, data, options) = open_run(
        run_args,
        stage.name,
        || named_or(&run_args.config, &stage.model_file),
        || policy_options(run_args, policy, stage.defaults, stage.penalty, stage.init),
        |o| &mut o.common,
    )?;
    let (device, train_data, test_data, mut progress, mut run) = open_training(
        run_args,
        stage.what,
        &config,
        &data,
        folder,
        &options.common,
    )?;
    (stage.train)(
        &config,
        &train_data,
        &test_data,
        &mut run,
        &options,
        &device,
        &mut progress,
    )?;
    println!(
        "done: {}",
        run.dir.join(blockdrop::train::run::BEST).display()
    );
    Ok(())
}

fn train_curriculum(args: &TrainCurriculumArgs) -> anyhow::Result<()> {
    let base = args.base.clone().unwrap_or_default();
    // Epochs: the curriculum reaches every block, then five more.
    let blocks = match &args.run.config {
        Some(name) => Config::by_name(name)?.num_blocks(),
        None if args.run.resume.is_some() => 0,
        None => config_of(&base)?.num_blocks(),
    };
    let stage = PolicyStage {
        name: "curriculum",
        what: "policy (curriculum)",
        init: &base,
        model_file: base.clone(),
        defaults: LoopDefaults {
            epochs: blocks.div_ceil(args.policy.cl_step.max(1)) + 5,
            batch_size: 2048,
            lr: 1e-3,
            epoch_step: Some(10_000),
        },
        penalty: -1.0,
        train: train::curriculum::train,
    };
    train_policy(&args.run, &args.policy, stage)
}

fn train_finetune(args: &TrainFinetuneArgs) -> anyhow::Result<()> {
    let from = args.from.clone().unwrap_or_default();
    let stage = PolicyStage {
        name: "finetune",
        what: "policy and base (finetuning)",
        init: &from,
        model_file: train::finetune::model_of(&from),
        defaults: LoopDefaults {
            epochs: 10,
            batch_size: 256,
            lr: 1e-4,
            epoch_step: Some(10_000),
        },
        penalty: -10.0,
        train: train::finetune::train,
    };
    train_policy(&args.run, &args.policy, stage)
}
