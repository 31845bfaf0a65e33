//! What the two policy stages (curriculum and finetuning) share: their flags, the outcome of
//! one batch, their start (restored or fresh), and the epoch loop's policy side: the greedy
//! policy evaluated on the test set after each epoch, the best model chosen by reward.

use std::path::PathBuf;

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::checkpoint::ModelStage;
use crate::error::Result;
use crate::model::BlockDrop;
use crate::rng::Rng;
use crate::train::cost::BlockCost;
use crate::train::epochs::{BatchOutcome, EpochEvaluation, EpochLoop, Start};
use crate::train::optim::{params, Kind, Optimizer};
use crate::train::run::Run;
use crate::train::{evaluate_policy, restore, LoopOptions, Progress, Setting};

/// The reference's values for the policy flags: the probability bound α, the entropy weight
/// β, decisions added to the curriculum per epoch, and the step schedule's period (so long
/// that the rate never drops in practice).
pub const DEFAULT_ALPHA: f64 = 0.8;
pub const DEFAULT_BETA: f64 = 0.1;
pub const DEFAULT_CL_STEP: usize = 1;
pub const REFERENCE_EPOCH_STEP: usize = 10_000;

/// The reference's policy-stage flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyOptions {
    #[serde(flatten)]
    pub common: LoopOptions,
    /// Probability bound: p' = α·p + (1 − α)·(1 − p).
    pub alpha: f64,
    /// Entropy bonus weight.
    pub beta: f64,
    /// γ, the reward of a wrong prediction.
    pub penalty: f64,
    /// Decisions added to the curriculum per epoch.
    pub cl_step: usize,
    /// Random crop and flip on the training images, as the reference.
    pub augment: bool,
    /// Finetuning runs the base with the reference's masked executor (every kept block on the
    /// whole batch, BatchNorm over the whole batch) instead of the sparse one.
    #[serde(default)]
    pub masked: bool,
    /// What the stage starts from: the base model (curriculum), or the curriculum's run
    /// folder or model file (finetuning).
    #[serde(with = "crate::train::run::path_json")]
    pub init: PathBuf,
    /// What a kept block costs in the reward (runs saved without it count blocks).
    #[serde(default)]
    pub cost: BlockCost,
    /// Weight of a Bernoulli entropy bonus in finetuning; 0, the reference's, adds no term (an
    /// exploration option against policies collapsing to a few, docs/method.md).
    #[serde(default)]
    pub finetune_beta: f64,
    /// Policy samples drawn per image; above 1 each sample's baseline is the mean reward of
    /// the image's other samples instead of the greedy policy's (ours, docs/method.md).
    #[serde(default = "one")]
    pub samples: usize,
    /// Curriculum: epochs of oracle-guided warm start before REINFORCE (ours, 0 = the
    /// reference), and the training images its ladder of subsets is chosen on.
    #[serde(default)]
    pub oracle_warm_start: usize,
    #[serde(default = "default_ladder_images")]
    pub oracle_images: usize,
    /// Rungs of the ladder above each image's lowest stable right rung that the warm start
    /// targets (ours, 0: the lowest).
    #[serde(default)]
    pub oracle_margin: usize,
}

fn one() -> usize {
    1
}

fn default_ladder_images() -> usize {
    crate::train::oracle::DEFAULT_LADDER_IMAGES
}

/// One batch's outcome under the sampled policies.
pub struct Step {
    pub loss: Tensor,
    /// The sampled decisions, `[N, K]` 0/1, curriculum-forced ones set.
    pub sampled: Tensor,
    pub correct: Vec<bool>,
    pub sampled_reward: Vec<f32>,
}

impl Step {
    /// A batch of `n` images drawn several times, reported as its first draw's (the first
    /// `n` rows): the progress line's figures stay per image.
    pub fn first_draw(
        loss: Tensor,
        sampled: &Tensor,
        mut correct: Vec<bool>,
        mut sampled_reward: Vec<f32>,
        n: usize,
    ) -> candle_core::Result<Self> {
        correct.truncate(n);
        sampled_reward.truncate(n);
        Ok(Step {
            loss,
            sampled: sampled.narrow(0, 0, n)?,
            correct,
            sampled_reward,
        })
    }
}

crate::train::stage_options!(PolicyOptions);

/// A policy stage's entry point (curriculum or finetuning).
pub type StageFn = fn(&Setting<PolicyOptions>, &mut Run, &mut dyn Progress) -> Result<()>;

/// A policy stage's networks and optimiser, and where its run stands.
pub struct Trainer {
    pub stage: ModelStage,
    pub varmap: VarMap,
    pub model: BlockDrop,
    optimizer: Optimizer,
    /// Where the run continues (the epoch, the best reward so far, a partial epoch).
    start: Start,
}

impl Trainer {
    /// The networks and optimiser (Adam over the variables under `trained`), restored from
    /// the run's state, or fresh with `init` setting the starting weights.
    pub fn start(
        stage: ModelStage,
        setting: &Setting<PolicyOptions>,
        run: &mut Run,
        trained: &[&str],
        init: impl FnOnce(&VarMap) -> Result<()>,
    ) -> Result<Self> {
        let device = setting.device;
        let varmap = VarMap::new();
        let vb = crate::train::init::seeded(&varmap, setting.options.common.seed, device);
        let model = BlockDrop::new(setting.config, vb)?;
        let mut optimizer =
            Optimizer::new(Kind::Adam { weight_decay: 0.0 }, params(&varmap, trained));
        let start = match restore(run, &varmap, &mut optimizer, device)? {
            Some(start) => start,
            None => {
                init(&varmap)?;
                Start::fresh()
            }
        };
        Ok(Self {
            stage,
            varmap,
            model,
            optimizer,
            start,
        })
    }

    /// The first epoch the run still has to train.
    pub fn first_epoch(&self) -> usize {
        self.start.epoch
    }

    /// The run's remaining epochs: each batch through `step(model, epoch, images, labels,
    /// rng)` (the rng draws the policy samples), then the greedy policy's evaluation.
    ///
    /// `forced(epoch)` is how many leading decisions the epoch's reported test keeps whatever
    /// the policy says (the curriculum's `test()`: `policy[:, :-cl_step] = 1`). The epoch line
    /// and metrics.csv report that masked policy; the best model is chosen by the mean reward
    /// of the policy as it is, the one a saved model runs (docs/method.md, "Curriculum").
    pub fn run_epochs(
        self,
        setting: &Setting<PolicyOptions>,
        run: &mut Run,
        progress: &mut dyn Progress,
        forced: impl Fn(usize) -> usize,
        mut step: impl FnMut(&BlockDrop, usize, &Tensor, &[u32], &mut Rng) -> Result<Step>,
    ) -> Result<()> {
        let (model, options, device) = (&self.model, setting.options, setting.device);
        let epochs = EpochLoop {
            stage: self.stage,
            setting,
            varmap: &self.varmap,
            optimizer: self.optimizer,
        };
        let batch = |epoch: usize, x: &Tensor, labels: &[u32], rng: &mut Rng| {
            let outcome = step(model, epoch, x, labels, rng)?;
            let reward: f64 = outcome.sampled_reward.iter().map(|&r| r as f64).sum();
            let blocks = outcome.sampled.sum_all()?.to_scalar::<f32>()? as f64;
            Ok(BatchOutcome {
                loss: outcome.loss,
                correct: outcome.correct.iter().filter(|&&c| c).count(),
                policy: Some((reward, blocks)),
            })
        };
        let evaluate = |epoch: usize, test: &[usize]| {
            let reward = (&options.cost, options.penalty);
            let forced_first = forced(epoch);
            let eval =
                evaluate_policy(model, setting.test_data, test, reward, forced_first, device)?;
            let score = match forced_first {
                0 => eval.reward,
                _ => evaluate_policy(model, setting.test_data, test, reward, 0, device)?.reward,
            };
            let mut metadata = vec![
                (
                    "block_usage".to_string(),
                    format!("{:.3}", eval.summary.block_usage_mean),
                ),
                ("penalty".to_string(), options.penalty.to_string()),
                ("reward_cost".to_string(), options.cost.kind().to_string()),
            ];
            if forced_first > 0 {
                metadata.push((
                    "evaluation".to_string(),
                    format!("curriculum test: first {forced_first} decisions forced to 1"),
                ));
            }
            Ok(EpochEvaluation {
                test_accuracy: eval.summary.accuracy,
                score,
                policy: Some(eval),
                metadata,
            })
        };
        epochs.run(run, self.start, progress, batch, evaluate)
    }
}
