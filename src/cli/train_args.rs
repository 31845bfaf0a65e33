//! `train`'s flags (clap definitions only): the stage subcommands, the flags every stage
//! takes, and the policy stages' reference flags. Defaults are the library's constants.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::DeviceArg;
use super::values::{count, finite, fraction, non_negative, positive, training_batch};
use blockdrop::train::{base, curriculum, finetune, policy, DEFAULT_LR_DECAY_RATIO, DEFAULT_SEED};

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// The base flat ResNet with cross-entropy (SGD with momentum, weight decay, crop+flip).
    Base(TrainBaseArgs),
    /// The policy network with REINFORCE over a curriculum, the base network frozen.
    Curriculum(TrainCurriculumArgs),
    /// Policy and base network jointly, from a curriculum run or model.
    Finetune(TrainFinetuneArgs),
}

/// The reference's policy-training flags (cl_training.py / finetune.py).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Probability bound α: samples use p' = α·p + (1 − α)·(1 − p).
    #[arg(long, default_value_t = policy::DEFAULT_ALPHA, value_parser = fraction)]
    pub alpha: f64,

    /// Entropy bonus weight β (curriculum only; finetuning has none).
    #[arg(long, default_value_t = policy::DEFAULT_BETA, value_parser = non_negative)]
    pub beta: f64,

    /// Finetuning: an entropy bonus β·Σ H(p') in the loss, H the Bernoulli entropy (highest
    /// at p' = ½), against policies collapsing to a few (not the reference's: it has none, the
    /// default 0).
    #[arg(long, value_name = "BETA", default_value_t = 0.0, value_parser = non_negative)]
    pub finetune_beta: f64,

    /// γ, the reward of a wrong prediction (negative). Default: the stage's (see below).
    #[arg(long, allow_hyphen_values = true, value_parser = finite)]
    pub penalty: Option<f64>,

    /// Decisions added to the curriculum per epoch (epoch e trains the last cl_step·(e+1)).
    #[arg(long, default_value_t = policy::DEFAULT_CL_STEP, value_parser = count)]
    pub cl_step: usize,

    /// Train without random crops and flips.
    #[arg(long)]
    pub no_augment: bool,

    /// What a kept block costs in the reward: `blocks` (the reference: every block the same),
    /// `flops` (each block's FLOPs), `network` (ours: the FLOPs of the whole network, the
    /// policy network, stem, shortcuts and head included, as the comparison at equal FLOPs
    /// counts them), or a cost table FILE.json from `profile --cost` (each block's measured
    /// time on a device). A correct image earns 1 − (cost kept / cost of all blocks)². Fixed
    /// when the run starts; the run folder keeps the table as cost.json.
    #[arg(long, value_name = "blocks|flops|network|FILE.json", conflicts_with = "resume", value_parser = reward_cost)]
    pub cost: Option<RewardCostArg>,

    /// Policy samples per image (ours; 1 = the reference). Above 1, each sample's advantage is
    /// its reward minus the mean reward of the image's other samples (the leave-one-out
    /// baseline) instead of the greedy policy's; the base network runs once per sample.
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = count)]
    pub samples: usize,

    /// Finetuning: run every kept block on the whole batch and blend (the reference's masked
    /// executor, BatchNorm over the whole batch) instead of running a block only on the images
    /// that keep it.
    #[arg(long)]
    pub masked: bool,
}

#[derive(Debug, Args)]
#[command(after_help = curriculum::defaults_help())]
pub struct TrainCurriculumArgs {
    #[command(flatten)]
    pub run: TrainLoopArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// The trained base network (a `train base` run's best.safetensors, or any model file or
    /// reference checkpoint holding one).
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    pub base: Option<PathBuf>,

    /// The policy network sees the image average-pooled by N (2: a 16x16 CIFAR image, a
    /// quarter of the policy's FLOPs), after zero-padding a side that is not a multiple of
    /// 4·N up to one (Fashion-MNIST at 2: 32, pooled to 16x16). Ours, for CIFAR and
    /// Fashion-MNIST; the reference's ImageNet policy already sees a half-size image.
    /// Recorded in the model files, which every command then runs the same way.
    #[arg(long, value_name = "N", conflicts_with = "resume", value_parser = count)]
    pub policy_input_pool: Option<usize>,

    /// Epochs of oracle-guided warm start before REINFORCE (ours; 0 = the reference): the
    /// policy learns, per training image, the cheapest of the best static subsets (a nested
    /// ladder chosen on --oracle-images training images) from which the base stays right.
    /// Added to the default epochs. With --cl-step at the block count REINFORCE then trains
    /// every decision from its first epoch.
    #[arg(long, value_name = "E", default_value_t = 0, conflicts_with = "resume")]
    pub oracle_warm_start: usize,

    /// Training images the warm start's ladder of static subsets is chosen on.
    #[arg(long, value_name = "N", default_value_t = blockdrop::train::oracle::DEFAULT_LADDER_IMAGES, value_parser = count)]
    pub oracle_images: usize,

    /// The warm start targets this many rungs of the ladder above each image's lowest stable
    /// right one (at most every block): a policy that starts with more blocks than the median
    /// image needs, nearer the accuracy wanted, for REINFORCE to trade down from.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 0,
        requires = "oracle_warm_start",
        conflicts_with = "resume"
    )]
    pub oracle_margin: usize,
}

#[derive(Debug, Args)]
#[command(after_help = finetune::defaults_help())]
pub struct TrainFinetuneArgs {
    #[command(flatten)]
    pub run: TrainLoopArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Where to start: a curriculum run folder (its best model) or a model file.
    #[arg(long, value_name = "RUN_OR_MODEL", required_unless_present = "resume")]
    pub from: Option<PathBuf>,
}

/// `--cost`: what a kept block costs in the policy stages' reward.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardCostArg {
    Blocks,
    Flops,
    Network,
    Table(PathBuf),
}

fn reward_cost(s: &str) -> Result<RewardCostArg, String> {
    match s {
        "blocks" => Ok(RewardCostArg::Blocks),
        "flops" => Ok(RewardCostArg::Flops),
        "network" => Ok(RewardCostArg::Network),
        "" => Err("give `blocks`, `flops`, `network` or a cost table's path".into()),
        path => Ok(RewardCostArg::Table(PathBuf::from(path))),
    }
}

/// Flags every training stage takes. Defaults that differ by stage are given per stage.
#[derive(Debug, Args)]
pub struct TrainLoopArgs {
    /// Configuration name (e.g. R32_FMNIST, R110_C10). Default for the policy stages: the
    /// starting model's.
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,

    /// Training data (the test split is evaluated after each epoch).
    #[arg(long, value_name = "PATH", required_unless_present = "resume")]
    pub data: Option<PathBuf>,

    /// The run folder to create: config.json, metrics.csv, last/best.safetensors, state.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "resume",
        conflicts_with = "resume"
    )]
    pub out: Option<PathBuf>,

    /// Continue the run in DIR from its last finished epoch, with the flags it was started
    /// with (--epochs may extend it).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,

    /// Epochs in all (counting those already done when resuming).
    #[arg(long, visible_alias = "max-epochs", value_parser = count)]
    pub epochs: Option<usize>,

    /// Images per optimiser step (at least 2).
    #[arg(long, value_parser = training_batch)]
    pub batch_size: Option<usize>,

    /// Base learning rate.
    #[arg(long, value_parser = positive)]
    pub lr: Option<f64>,

    /// Multiply the learning rate by --lr-decay-ratio every --epoch-step epochs (the
    /// reference's schedule; the policy stages' default is below). The base stage defaults to
    /// a cosine schedule instead.
    #[arg(long, value_parser = count)]
    pub epoch_step: Option<usize>,

    #[arg(long, default_value_t = DEFAULT_LR_DECAY_RATIO, value_parser = positive)]
    pub lr_decay_ratio: f64,

    /// Seeds data order, augmentation and sampling (a run is reproducible from it).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Train on this many images per epoch, drawn afresh each epoch (default: all).
    #[arg(long, value_name = "N", value_parser = count)]
    pub images_per_epoch: Option<usize>,

    /// Evaluate on the first N test images after each epoch (default: all).
    #[arg(long, value_name = "N", value_parser = count)]
    pub test_images: Option<usize>,

    /// Hold N training images out (drawn by --seed) and evaluate on them after each epoch
    /// instead of the test split: the best epoch (best.safetensors) is then chosen without
    /// seeing a test image. metrics.csv's test_accuracy column holds the validation accuracy.
    #[arg(long, value_name = "N", value_parser = count, conflicts_with = "test_images")]
    pub validation: Option<usize>,

    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
#[command(after_help = base::defaults_help())]
pub struct TrainBaseArgs {
    #[command(flatten)]
    pub run: TrainLoopArgs,

    #[arg(long, default_value_t = base::DEFAULT_MOMENTUM, value_parser = fraction)]
    pub momentum: f64,

    #[arg(long, default_value_t = base::DEFAULT_WEIGHT_DECAY, value_parser = non_negative)]
    pub weight_decay: f64,

    /// Train without random crops and flips.
    #[arg(long)]
    pub no_augment: bool,
}
