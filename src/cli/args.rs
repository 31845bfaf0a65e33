//! The command line's flags (clap definitions only). Defaults shown in `--help` are the
//! library's constants, so help and behaviour cannot drift apart.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use super::train_args::*;
use super::values::{batches_ahead, count, decode_threads, repeats, threshold};
use blockdrop::compare::COMPARE_SWEEP_IMAGES;
use blockdrop::data::Split;
use blockdrop::device::DeviceKind;
use blockdrop::eval::baselines::{ADAPTIVITY_IMAGES, SELECTION_IMAGES};
use blockdrop::eval::DEFAULT_BATCH;
use blockdrop::kernels::isa::{self, Isa};
use blockdrop::model::DEFAULT_THRESHOLD;
use blockdrop::profile::ProfileOptions;
use blockdrop::records::shard::Shard;
use blockdrop::study::TRADEOFF_IMAGES;

/// `profile`'s defaults.
const PROFILE: ProfileOptions = ProfileOptions::DEFAULT;

/// `--version`: the crate's version and the CPU kernels' instruction-set path.
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let forced =
            std::env::var_os(isa::ENV).map_or(String::new(), |_| format!(", set by {}", isa::ENV));
        format!(
            "{} (CPU kernels: {}{forced}; this CPU has {})",
            env!("CARGO_PKG_VERSION"),
            Isa::active(),
            Isa::detected()
        )
    })
}

#[derive(Debug, Parser)]
#[command(
    name = "blockdrop",
    version = version(),
    about = "BlockDrop workbench: run, evaluate and inspect learned per-image residual-block policies",
    long_about = "BlockDrop (Wu et al., CVPR 2018) learns, for each image, which residual blocks of a \
ResNet to run. This tool evaluates such models with dropped blocks truly skipped.\n\n\
Run without a subcommand to explore the bundled default model on the bundled \
Fashion-MNIST sample in the terminal (or, when output is not a terminal, to print its \
evaluation).",
    after_help = "Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input, 75 a training run stopped by a signal with its state saved (continue it with --resume)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Headless: write the full report of the bundled default model into DIR (default
    /// reports/default). DIR must be new, empty, or a report folder blockdrop wrote.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = blockdrop::output::DEFAULT_REPORT_DIR)]
    pub export: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explore a model interactively in the terminal (the default without a subcommand); with
    /// several MODELs (files or run folders), compare them and switch between them.
    Tui(TuiArgs),
    /// Evaluate a model on a dataset and print the reference's four summary lines.
    Eval(EvalArgs),
    /// Time the policy network, stem, every block and head on the device, and each image's
    /// BlockDrop path against the full network.
    Profile(ProfileArgs),
    /// Write the full report (figures, index.md, summary.json, records, clusters, trade-off) of
    /// a model on a dataset into a folder.
    Export(ExportArgs),
    /// Convert a reference PyTorch checkpoint (zip or legacy torch.save) to a .safetensors model.
    Import(ImportArgs),
    /// Compare models (files or training run folders) on the same data: one row each, and with
    /// --out a report folder (Pareto figure, keep rates, policy agreement, training curves).
    Compare(CompareArgs),
    /// Show training runs' curves: a table per run, and with --out a figure.
    Runs(RunsArgs),
    /// Join the parts of a sharded evaluation (`eval --shard K/N --records PART.parquet`):
    /// checks they belong together and cover every image once, prints the four summary lines
    /// of the whole, and writes the merged records.
    Merge(MergeArgs),
    /// Train: the base ResNet, then the policy over a curriculum, then both jointly.
    #[command(subcommand)]
    Train(TrainCommand),
}

/// Where the model comes from (shared by the commands that run one).
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model file: this project's .safetensors, or a reference PyTorch checkpoint (zip or
    /// legacy torch.save format). Default: the bundled model (R32_FMNIST, trained on
    /// Fashion-MNIST).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// The base network, when --model holds only a policy (a curriculum-stage checkpoint).
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,

    /// Dataset folder: IDX files (e.g. /usr/share/datasets/fashion-mnist), a CIFAR-10/100 folder
    /// (binary or python version), or a folder of class folders.
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,

    /// Configuration name (R32_C10, R110_C10, R32_C100, R110_C100, R101_ImgNet, R32_FMNIST,
    /// R110_FMNIST). Default: the model file's metadata, else inferred from its tensors.
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,

    /// Which split to use.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,

    /// Where to compute.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,

    /// Keep BatchNorm as a separate step instead of folding it into the convolutions (slower;
    /// for checking).
    #[arg(long)]
    pub no_fold: bool,

    /// Convolution kernels: `fast` (channels-last, fused; CPU only) or `stock` (candle's own
    /// ops, for checking). Default: fast on the CPU, stock on CUDA and Metal.
    #[arg(long, value_enum, value_name = "KIND")]
    pub kernels: Option<KernelsArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelsArg {
    Stock,
    Fast,
}

/// `--split`: which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
}

impl From<SplitArg> for Split {
    fn from(arg: SplitArg) -> Split {
        match arg {
            SplitArg::Train => Split::Train,
            SplitArg::Test => Split::Test,
        }
    }
}

/// `--device`: where to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Metal,
}

impl From<DeviceArg> for DeviceKind {
    fn from(arg: DeviceArg) -> DeviceKind {
        match arg {
            DeviceArg::Cpu => DeviceKind::Cpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
            DeviceArg::Metal => DeviceKind::Metal,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Images timed one by one (BlockDrop path vs full network).
    #[arg(long, value_name = "N", default_value_t = PROFILE.images, value_parser = count)]
    pub images: usize,

    /// Batch size of the per-stage profile.
    #[arg(long, value_name = "N", default_value_t = PROFILE.batch, value_parser = count)]
    pub batch: usize,

    /// Timed runs per measurement (after the warm-up runs); medians are reported.
    #[arg(long, value_name = "R", default_value_t = PROFILE.repeat, value_parser = repeats)]
    pub repeat: usize,

    /// Write the profile here: Parquet (per-stage table) if the name ends in .parquet, else JSON.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Write a cost table here (JSON): every block's, the stem's, the head's and the policy
    /// network's median time and FLOPs at this batch size, with the device, kernels and
    /// threads (docs/formats.md, "Cost tables").
    #[arg(long, value_name = "FILE.json")]
    pub cost: Option<PathBuf>,
}

/// Report options shared by `export` and `--export`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Skip the per-block profile (no latency figure).
    #[arg(long)]
    pub no_profile: bool,

    /// Skip the threshold sweep and the static baselines (no trade-off figure, tradeoff.csv
    /// or adaptivity): the report then needs the model for the profile only.
    #[arg(long)]
    pub no_tradeoff: bool,

    /// Evaluate only the first N images.
    #[arg(long, value_name = "N", value_parser = count)]
    pub limit: Option<usize>,

    /// Images used by the trade-off sweep (each point re-runs the base network on them).
    #[arg(long, value_name = "N", default_value_t = TRADEOFF_IMAGES, value_parser = count)]
    pub tradeoff_images: usize,

    /// Clusters of the coarse policy clustering (default: DEFAULT_CLUSTERS, or fewer distinct
    /// policies).
    #[arg(long, value_name = "K", value_parser = count)]
    pub clusters: Option<usize>,

    /// A cost table (`profile --cost`, or written by hand for another device): the report
    /// adds the latency it predicts for this model's policies, next to FLOPs.
    #[arg(long, value_name = "FILE.json")]
    pub cost: Option<PathBuf>,

    /// The trade-off figure's x-axis: `flops`, or `latency` predicted from --cost, else from
    /// this report's own per-stage profile (measured here).
    #[arg(long, value_enum, default_value_t = TradeoffAxis::Flops)]
    pub tradeoff_axis: TradeoffAxis,

    #[command(flatten)]
    pub selection: SelectionArgs,
}

/// `--tradeoff-axis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TradeoffAxis {
    Flops,
    Latency,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub report: ReportArgs,

    /// The report folder; replaced only once the new report is complete.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Build the report from these records (`eval --records X.parquet`, or the parts of a
    /// sharded evaluation, merged as `merge` does) instead of evaluating again: the four
    /// lines, clusters, galleries and per-class tables come from them. They must be of
    /// --model on --data; the sweep (--tradeoff-images) and the profile still run.
    #[arg(long, value_name = "FILE.parquet", num_args = 1..)]
    pub records: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The PyTorch checkpoint: the reference's {agent|net, resnet, epoch, reward, acc} dict, an
    /// agent-only curriculum file, or a bare / {'state_dict': …} state dict.
    #[arg(long = "torch", value_name = "FILE")]
    pub torch_file: PathBuf,

    /// The base network for an agent-only file (reference, torchvision or DataParallel names).
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,

    /// Configuration name; default: inferred from the tensors' layout.
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,

    /// Where to write the model (.safetensors); written whole or not at all.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Evaluate only the first N images.
    #[arg(long, value_name = "N", value_parser = count)]
    pub limit: Option<usize>,

    /// Images per forward pass (images sharing a policy run together, dropped blocks skipped).
    /// Per-image results do not depend on it.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH, value_parser = count)]
    pub batch: usize,

    /// Threads that read, decode and resize images ahead of the network [default: half the
    /// cores, 1 to 8]. Raise it when an image folder's decoding cannot keep up (the progress
    /// bar's images/s falls short of `profile`'s).
    #[arg(long, value_name = "N", value_parser = decode_threads)]
    pub decode_threads: Option<usize>,

    /// Batches decoded ahead of the network [default: --decode-threads]. Memory holds this many
    /// batches more than the one running.
    #[arg(long, value_name = "N", value_parser = batches_ahead)]
    pub prefetch: Option<usize>,

    /// A block runs when its keep probability is at least this.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD, value_parser = threshold)]
    pub threshold: f32,

    /// Write one row per image here: Parquet if the name ends in .parquet, else CSV.
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,

    /// Add the base network's logits to the records.
    #[arg(long)]
    pub logits: bool,

    /// Also measure the adaptivity: the static baselines (the best subsets, chosen on the other
    /// split, the model's most frequent policies, the full network) run on the evaluated
    /// images, and one more line says what choosing blocks per image gains over them at equal
    /// blocks and FLOPs. Costs several evaluations; `export`, `compare` and the workbench
    /// always show it.
    #[arg(long, conflicts_with_all = ["no_baselines", "shard", "resume"])]
    pub adaptivity: bool,

    /// Images the static baselines and the adaptivity gain are measured on (`--adaptivity`):
    /// the first N evaluated (each static policy re-runs the base network on them).
    #[arg(long, value_name = "N", default_value_t = ADAPTIVITY_IMAGES, value_parser = count)]
    pub baseline_images: usize,

    /// The reference's four lines only. The default; kept so that scripts written when the
    /// adaptivity line was the default still run.
    #[arg(long)]
    pub no_baselines: bool,

    /// Also print the latency predicted from a cost table (`profile --cost`, or written by
    /// hand for another device): policy network, stem and head plus the kept blocks' costs.
    #[arg(long, value_name = "FILE.json")]
    pub cost: Option<PathBuf>,

    /// Evaluate only part K of N: the K-th of N contiguous, disjoint ranges of the images
    /// (--limit applies first). Needs --records PART.parquet; `blockdrop merge` joins the
    /// parts. The static baselines are left out (run them on the merged evaluation).
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<Shard>,

    /// Continue the --records PART.parquet file of an interrupted run (with the same model,
    /// data, threshold, --limit and --shard) from its last saved batch; started afresh when
    /// the file does not exist. While running, the file is saved every few seconds, marked
    /// unfinished until the last image.
    #[arg(long)]
    pub resume: bool,

    #[command(flatten)]
    pub selection: SelectionArgs,
}

fn shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s)
}

/// `merge`: parts of a sharded evaluation, joined.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The parts' records files (`eval --shard K/N --records PART.parquet`), in any order.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,

    /// Write the merged records here (Parquet): one file, as one unsharded run writes.
    #[arg(long, value_name = "OUT.parquet")]
    pub records: Option<PathBuf>,
}

/// Where the best static subsets are chosen.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// Images of the other split (train when evaluating test) on which the best static subset
    /// at each budget is chosen, spread evenly over it; never the split being reported.
    /// Default: 128, and the search is skipped when it would cost over 2 TFLOP (deep
    /// networks: it grows with the cube of the block count); a number given runs it anyway.
    #[arg(long, value_name = "N", value_parser = count)]
    pub selection_images: Option<usize>,
}

impl SelectionArgs {
    /// Sets `options`' selection images, and whether the user forced the search.
    pub fn apply(&self, options: &mut blockdrop::eval::tradeoff::TradeoffOptions) {
        options.selection_images = self.selection_images.unwrap_or(SELECTION_IMAGES);
        options.selection_forced = self.selection_images.is_some();
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each MODEL is a model file (.safetensors or a PyTorch checkpoint) or a training run \
folder (its best.safetensors, else last.safetensors, with its metrics.csv). A model that cannot be \
loaded or evaluated keeps its row with the reason; the others still come out (exit code 2 \
when any failed)."
)]
pub struct CompareArgs {
    /// Model files or training run folders.
    #[arg(required = true, value_name = "MODEL")]
    pub models: Vec<PathBuf>,

    /// Dataset folder (as for eval).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,

    /// Which split to evaluate.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,

    /// Evaluate only the first N images.
    #[arg(long, value_name = "N", value_parser = count)]
    pub limit: Option<usize>,

    /// A block runs when its keep probability is at least this.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD, value_parser = threshold)]
    pub threshold: f32,

    /// Where to compute.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,

    /// Write the comparison report here (same rule as export: new, empty, or a report folder
    /// blockdrop wrote).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Skip the latency measurements.
    #[arg(long)]
    pub no_profile: bool,

    /// Images each model's batch-1 latency is measured on, one by one (BlockDrop path and
    /// full network; the columns are their medians).
    #[arg(long, value_name = "N", default_value_t = blockdrop::study::PROFILE_IMAGES, value_parser = count)]
    pub profile_images: usize,

    /// A cost table (`profile --cost`, or written by hand for another device): models of its
    /// configuration get a predicted latency column, and the Pareto figure's sweeps are
    /// predicted from it.
    #[arg(long, value_name = "FILE.json")]
    pub cost: Option<PathBuf>,

    /// Images each model's threshold sweep and static baselines use.
    #[arg(long, value_name = "N", default_value_t = COMPARE_SWEEP_IMAGES, value_parser = count)]
    pub tradeoff_images: usize,

    #[command(flatten)]
    pub selection: SelectionArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Training run folders (`train … --out RUN`).
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,

    /// Write the curves (training.png, index.md) into this folder (same rule as export).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// More models to load: model files or training run folders (a run's best model; its
    /// curves appear in the Runs view, re-read while it trains). Without --model the first
    /// is shown first.
    #[arg(value_name = "MODEL")]
    pub models: Vec<PathBuf>,
}
