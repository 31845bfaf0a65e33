//! `train base|curriculum|finetune`: a run folder, new from the flags (stage defaults filled
//! in) or the one `--resume` names with the options it was started with, then the stage's
//! epoch loop with a progress bar per epoch.

use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::args::{
    PolicyArgs, RewardCostArg, TrainBaseArgs, TrainCurriculumArgs, TrainFinetuneArgs, TrainLoopArgs,
};
use blockdrop::checkpoint;
use blockdrop::config::Config;
use blockdrop::data::{Dataset, Split};
use blockdrop::device::DeviceKind;
use blockdrop::profile::cost::CostTable;
use blockdrop::train::cost::BlockCost;
use blockdrop::train::policy::{PolicyOptions, StageFn};
use blockdrop::train::run::{EpochMetrics, Run, RunConfig, BEST, COST_TABLE, LAST};
use blockdrop::train::schedule::Schedule;
use blockdrop::train::{
    self, base, curriculum, finetune, LoopDefaults, LoopOptions, Setting, StageOptions, TrainStage,
};
use blockdrop::Error;

/// Progress bars for training: one per epoch, then the epoch's line.
struct TrainProgress {
    bar: Option<ProgressBar>,
    epochs: usize,
    /// What the epoch's evaluation ran on: `test` or `val`.
    evaluated_on: &'static str,
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
        out!(
            "epoch {:>3}/{}  lr {:.2e} | train loss {:.4} acc {:.4} | {} acc {:.4}{policy} | {:.0} img/s | {:.0} s",
            m.epoch + 1,
            self.epochs,
            m.lr,
            m.train_loss,
            m.train_accuracy,
            self.evaluated_on,
            m.test_accuracy,
            m.images_per_s,
            m.wall_s
        );
    }
}

/// The loop options from the flags, the stage's defaults where a flag was left out.
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
        validation: args.validation,
    }
}

/// The run folder a training command works in: the one `--resume` names, or one created only
/// once the data has opened (a bad flag or dataset never leaves a folder behind).
enum RunFolder<O> {
    Existing(Run),
    New {
        out: std::path::PathBuf,
        config: RunConfig<O>,
    },
}

/// What a training command has found to train, before anything is created.
struct Plan<O> {
    folder: RunFolder<O>,
    config: Config,
    data: std::path::PathBuf,
    options: O,
    /// Files a new run folder keeps beside its config (name, bytes): the reward's cost table.
    extra_files: Vec<(&'static str, Vec<u8>)>,
}

/// A run to train: new from the flags, or the one `--resume` names with the options it was
/// started with (`--epochs` may extend it). `config` and `fresh` (the options for that
/// configuration) are asked only for a new run.
fn plan<O: Serialize + DeserializeOwned + Clone + StageOptions>(
    args: &TrainLoopArgs,
    stage: TrainStage,
    config: impl FnOnce() -> anyhow::Result<Config>,
    fresh: impl FnOnce(&Config) -> anyhow::Result<O>,
) -> anyhow::Result<Plan<O>> {
    if let Some(dir) = &args.resume {
        let (run, saved) = Run::open(dir)?;
        let saved = RunConfig::<O>::from_saved(saved, dir, stage)?;
        let mut options = saved.options;
        if let Some(epochs) = args.epochs {
            options.common_mut().extend_to(epochs);
        }
        let bad = |what: String| Error::bad_input(dir.join(train::run::CONFIG), what);
        options
            .common()
            .validate()
            .map_err(|e| bad(format!("options: {e}")))?;
        let mut config = Config::by_name(&saved.config).map_err(|e| bad(e.to_string()))?;
        if let Some(pool) = saved.policy_input_pool {
            config = config
                .with_policy_input_pool(pool)
                .map_err(|e| bad(e.to_string()))?;
        }
        return Ok(Plan {
            folder: RunFolder::Existing(run),
            config,
            data: saved.data,
            options,
            extra_files: Vec::new(),
        });
    }
    let (Some(data), Some(out)) = (&args.data, &args.out) else {
        return Err(
            Error::BadUsage("--data and --out are required (or --resume DIR)".into()).into(),
        );
    };
    let config = config()?;
    let options = fresh(&config)?;
    let run_config = RunConfig::new(stage, &config, data, options.clone());
    Ok(Plan {
        folder: RunFolder::New {
            out: out.clone(),
            config: run_config,
        },
        config,
        data: data.clone(),
        options,
        extra_files: Vec::new(),
    })
}

/// What a stage trains on: the device and both splits, opened and checked, and the run folder,
/// created last, once everything else checked out.
struct Training {
    data: TrainingData,
    run: Run,
    progress: TrainProgress,
}

struct TrainingData {
    device: candle_core::Device,
    train_data: Dataset,
    test_data: Dataset,
}

impl TrainingData {
    /// What the stage trains with.
    fn setting<'a, O>(&'a self, config: &'a Config, options: &'a O) -> Setting<'a, O> {
        Setting {
            config,
            train_data: &self.train_data,
            test_data: &self.test_data,
            options,
            device: &self.device,
        }
    }
}

fn open_training<O: Serialize>(
    args: &TrainLoopArgs,
    what: &str,
    plan: Plan<O>,
    options: &LoopOptions,
) -> anyhow::Result<(Training, Config)> {
    let device = DeviceKind::from(args.device).open()?;
    let train_data = Dataset::open_for(&plan.data, Split::Train, &plan.config)?;
    // With --validation the test split is never opened: nothing in training sees it.
    let (train_data, test_data, evaluated_on) = match options.validation {
        Some(count) => {
            let (train, validation) = train::hold_out(&train_data, count)?;
            (train, validation, "val")
        }
        None => {
            let test_data = Dataset::open_for(&plan.data, Split::Test, &plan.config)?;
            (train_data, test_data, "test")
        }
    };
    for split in [&train_data, &test_data] {
        split.check_labels(&plan.config, split.len())?;
    }
    options
        .check_batches(train_data.len())
        .map_err(Error::BadUsage)?;
    let run = match plan.folder {
        RunFolder::Existing(run) => run,
        RunFolder::New { out, config } => {
            let run = Run::create(&out, &config)?;
            for (name, bytes) in &plan.extra_files {
                blockdrop::atomic::write_bytes_atomic(&run.dir.join(name), bytes)?;
            }
            run
        }
    };
    let evaluation = match evaluated_on {
        "val" => "validation images held out of the training split",
        _ => "test images",
    };
    out!(
        "training the {what} of {} on {} ({} training, {} {evaluation}) into {}",
        plan.config.name,
        plan.data.display(),
        train_data.len(),
        test_data.len(),
        run.dir.display()
    );
    let progress = TrainProgress {
        bar: None,
        epochs: options.epochs,
        evaluated_on,
    };
    let training = Training {
        data: TrainingData {
            device,
            train_data,
            test_data,
        },
        run,
        progress,
    };
    Ok((training, plan.config))
}

pub fn base(args: &TrainBaseArgs) -> anyhow::Result<()> {
    let plan = plan(
        &args.run,
        TrainStage::Base,
        || match &args.run.config {
            Some(name) => Ok(Config::by_name(name)?),
            None => Err(Error::BadUsage("--config is required".into()).into()),
        },
        |_| {
            Ok(base::BaseOptions {
                common: loop_options(&args.run, base::DEFAULTS),
                momentum: args.momentum,
                weight_decay: args.weight_decay,
                augment: !args.no_augment,
            })
        },
    )?;
    run_stage(&args.run, "base network", plan, base::train, LAST)
}

/// Opens the data and the run folder of `plan`, trains the stage, and names the model file it
/// leaves (`done`).
fn run_stage<O: Serialize + Clone + StageOptions>(
    args: &TrainLoopArgs,
    what: &str,
    plan: Plan<O>,
    train: fn(&Setting<O>, &mut Run, &mut dyn train::Progress) -> blockdrop::Result<()>,
    done: &str,
) -> anyhow::Result<()> {
    // From here a SIGTERM (preemption), SIGUSR1 or Ctrl-C saves the run at its first or next
    // batch boundary and exits 75 (docs/scale-out.md), also one that comes while the data
    // load: a job's early time-limit warning must not kill it.
    blockdrop::cancel::stop_on_signals()
        .map_err(|e| anyhow::anyhow!("cannot install the stop-signal handlers: {e}"))?;
    let options = plan.options.clone();
    let (mut t, config) = open_training(args, what, plan, options.common())?;
    train(
        &t.data.setting(&config, &options),
        &mut t.run,
        &mut t.progress,
    )?;
    out!("done: {}", t.run.dir.join(done).display());
    Ok(())
}

/// What tells the two policy stages apart on the command line.
struct PolicyStage<'a> {
    stage: TrainStage,
    /// What the progress line says is trained.
    what: &'static str,
    /// What the stage starts from (`--base` / `--from`), and the model file that holds it.
    init: &'a std::path::Path,
    model_file: std::path::PathBuf,
    defaults: LoopDefaults,
    penalty: f64,
    train: StageFn,
    /// `--policy-input-pool` (the curriculum, which makes the policy network).
    policy_input_pool: Option<usize>,
    /// `--oracle-warm-start` and `--oracle-images` (the curriculum; 0 elsewhere).
    oracle_warm_start: usize,
    oracle_images: usize,
    oracle_margin: usize,
}

fn train_policy(
    run_args: &TrainLoopArgs,
    policy: &PolicyArgs,
    stage: PolicyStage,
) -> anyhow::Result<()> {
    let table = match &policy.cost {
        Some(RewardCostArg::Table(path)) => Some((path, CostTable::read(path)?)),
        _ => None,
    };
    let mut plan = plan(
        run_args,
        stage.stage,
        || {
            let config = match &run_args.config {
                // The policy the file holds was trained on the input it records.
                Some(name) => checkpoint::config_with_recorded_pool(
                    &stage.model_file,
                    Config::by_name(name)?,
                )?,
                None => checkpoint::config_of_file(&stage.model_file)?,
            };
            Ok(match stage.policy_input_pool {
                Some(pool) => config.with_policy_input_pool(pool)?,
                None => config,
            })
        },
        |config| {
            let cost = match (&policy.cost, &table) {
                (Some(RewardCostArg::Flops), _) => BlockCost::flops(config),
                (Some(RewardCostArg::Network), _) => BlockCost::network(config),
                (_, Some((path, table))) => BlockCost::measured(table, path, config)?,
                _ => BlockCost::Blocks,
            };
            Ok(PolicyOptions {
                common: loop_options(run_args, stage.defaults),
                alpha: policy.alpha,
                beta: policy.beta,
                penalty: policy.penalty.unwrap_or(stage.penalty),
                cl_step: policy.cl_step,
                augment: !policy.no_augment,
                masked: policy.masked,
                init: stage.init.to_path_buf(),
                cost,
                finetune_beta: policy.finetune_beta,
                samples: policy.samples,
                oracle_warm_start: stage.oracle_warm_start,
                oracle_images: stage.oracle_images,
                oracle_margin: stage.oracle_margin,
            })
        },
    )?;
    if let Some((_, table)) = &table {
        let json = serde_json::to_vec_pretty(table)?;
        plan.extra_files.push((COST_TABLE, json));
    }
    if !matches!(plan.options.cost, BlockCost::Blocks) {
        out!("reward cost: {}", plan.options.cost.describe());
    }
    if let Some(dir) = &run_args.resume {
        // A config.json edited by hand is checked as the flag would have been.
        let blocks = plan.config.num_blocks();
        plan.options.cost.check(blocks).map_err(|e| {
            Error::bad_input(dir.join(train::run::CONFIG), format!("options: cost {e}"))
        })?;
    }
    run_stage(run_args, stage.what, plan, stage.train, BEST)
}

pub fn curriculum(args: &TrainCurriculumArgs) -> anyhow::Result<()> {
    let base = args.base.clone().unwrap_or_default();
    // Epochs: the curriculum reaches every block, then a few more.
    let blocks = match &args.run.config {
        Some(name) => Config::by_name(name)?.num_blocks(),
        None if args.run.resume.is_some() => 0,
        None => checkpoint::config_of_file(&base)?.num_blocks(),
    };
    let stage = PolicyStage {
        stage: TrainStage::Curriculum,
        what: "policy (curriculum)",
        init: &base,
        model_file: base.clone(),
        defaults: curriculum::defaults(blocks, args.policy.cl_step, args.oracle_warm_start),
        penalty: curriculum::DEFAULT_PENALTY,
        train: curriculum::train,
        policy_input_pool: args.policy_input_pool,
        oracle_warm_start: args.oracle_warm_start,
        oracle_images: args.oracle_images,
        oracle_margin: args.oracle_margin,
    };
    train_policy(&args.run, &args.policy, stage)
}

pub fn finetune(args: &TrainFinetuneArgs) -> anyhow::Result<()> {
    let from = args.from.clone().unwrap_or_default();
    if args.run.resume.is_none() {
        train::require_policy(&finetune::model_of(&from))?;
    }
    let stage = PolicyStage {
        stage: TrainStage::Finetune,
        what: "policy and base (finetuning)",
        init: &from,
        model_file: finetune::model_of(&from),
        defaults: finetune::DEFAULTS,
        penalty: finetune::DEFAULT_PENALTY,
        train: finetune::train,
        policy_input_pool: None,
        oracle_warm_start: 0,
        oracle_images: blockdrop::train::oracle::DEFAULT_LADDER_IMAGES,
        oracle_margin: 0,
    };
    train_policy(&args.run, &args.policy, stage)
}
