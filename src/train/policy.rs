//! What the two policy stages (curriculum and finetuning) share: their flags, the outcome of
//! one batch, and the epoch loop that trains, evaluates the greedy policy on the test set and
//! checkpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::BlockDrop;
use crate::train::augment::{crop_flip, CROP_PADDING};
use crate::train::optim::Optimizer;
use crate::train::rng::Rng;
use crate::train::run::{EpochMetrics, Run};
use crate::train::{epoch_order, evaluate_policy, tensors, test_indices, LoopOptions, Progress};

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
}

/// Running sums over an epoch's batches.
#[derive(Default)]
struct Running {
    pub seen: usize,
    pub correct: usize,
    pub reward: f64,
    pub loss: f64,
    pub blocks: f64,
}

impl Running {
    pub fn add(&mut self, n: usize, correct: &[bool], rewards: &[f32], loss: f64, blocks: f64) {
        self.seen += n;
        self.correct += correct.iter().filter(|&&c| c).count();
        self.reward += rewards.iter().map(|&r| r as f64).sum::<f64>();
        self.loss += loss * n as f64;
        self.blocks += blocks;
    }

    pub fn message(&self) -> String {
        let n = self.seen.max(1) as f64;
        format!(
            "reward {:.3} acc {:.3} blocks {:.2}",
            self.reward / n,
            self.correct as f64 / n,
            self.blocks / n
        )
    }
}

/// A training batch, augmented when asked.
fn training_batch(
    data: &Dataset,
    chunk: &[usize],
    config: &Config,
    device: &Device,
    augment: bool,
    rng: &mut Rng,
) -> Result<Tensor> {
    data.batch_with(chunk, config, device, |image| {
        if augment {
            crop_flip(&image, CROP_PADDING, rng)
        } else {
            image
        }
    })
}

/// One batch's outcome under the sampled policies.
pub struct Step {
    pub loss: Tensor,
    /// The sampled decisions, `[N, K]` 0/1, curriculum-forced ones set.
    pub sampled: Tensor,
    pub correct: Vec<bool>,
    pub sampled_reward: Vec<f32>,
}

/// A policy stage's entry point (curriculum or finetuning).
pub type StageFn = fn(
    &Config,
    &Dataset,
    &Dataset,
    &mut Run,
    &PolicyOptions,
    &Device,
    &mut dyn Progress,
) -> Result<()>;

/// A policy stage's training state.
pub struct Trainer<'a> {
    pub stage: &'static str,
    pub config: &'a Config,
    pub model: &'a BlockDrop,
    pub varmap: &'a VarMap,
    pub optimizer: Optimizer,
    pub options: &'a PolicyOptions,
    pub device: &'a Device,
}

impl Trainer<'_> {
    /// Epochs `start..` of the run: each batch through `step(epoch, images, labels, rng)`
    /// (the rng draws the policy samples), an optimiser update, then the epoch's evaluation
    /// and checkpoint.
    #[allow(clippy::too_many_arguments)]
    pub fn run_epochs(
        mut self,
        run: &mut Run,
        (start, mut best): (usize, f64),
        train_data: &Dataset,
        test_data: &Dataset,
        progress: &mut dyn Progress,
        mut step: impl FnMut(usize, &Tensor, &[u32], &mut Rng) -> Result<Step>,
    ) -> Result<()> {
        let opts = &self.options.common;
        let test = test_indices(test_data, opts);
        for epoch in start..opts.epochs {
            let started = Instant::now();
            let lr = opts.schedule.lr(opts.lr, epoch);
            let order = epoch_order(train_data.len(), opts, epoch);
            let mut augment_rng = Rng::for_epoch(opts.seed, epoch, 1);
            let mut sample_rng = Rng::for_epoch(opts.seed, epoch, 2);
            let mut running = Running::default();
            for chunk in order.chunks(opts.batch_size).filter(|c| c.len() > 1) {
                let x = training_batch(
                    train_data,
                    chunk,
                    self.config,
                    self.device,
                    self.options.augment,
                    &mut augment_rng,
                )?;
                let labels: Vec<u32> = chunk.iter().map(|&i| train_data.labels()[i]).collect();
                let outcome = step(epoch, &x, &labels, &mut sample_rng)?;
                self.optimizer.step(&outcome.loss.backward()?, lr)?;
                let blocks = outcome.sampled.sum_all()?.to_scalar::<f32>()? as f64;
                let loss = outcome.loss.to_scalar::<f32>()? as f64;
                running.add(
                    chunk.len(),
                    &outcome.correct,
                    &outcome.sampled_reward,
                    loss,
                    blocks,
                );
                progress.batch(epoch, running.seen, order.len(), &running.message());
            }
            let train_s = started.elapsed().as_secs_f64();
            let eval = evaluate_policy(
                self.model,
                test_data,
                &test,
                self.options.penalty,
                self.device,
            )?;
            let n = running.seen.max(1) as f64;
            let metrics = EpochMetrics {
                epoch,
                lr,
                train_loss: running.loss / n,
                train_accuracy: running.correct as f64 / n,
                test_accuracy: eval.summary.accuracy,
                reward: Some(eval.reward),
                block_usage_mean: Some(eval.summary.block_usage_mean),
                block_usage_std: Some(eval.summary.block_usage_std),
                unique_policies: Some(eval.summary.unique_policies),
                images_per_s: running.seen as f64 / train_s,
                wall_s: started.elapsed().as_secs_f64(),
            };
            let is_best = eval.reward > best;
            best = best.max(eval.reward);
            let metadata = BTreeMap::from([
                ("config".to_string(), self.config.name.clone()),
                ("stage".to_string(), self.stage.to_string()),
                ("epoch".to_string(), (epoch + 1).to_string()),
                (
                    "accuracy".to_string(),
                    format!("{:.4}", eval.summary.accuracy),
                ),
                (
                    "block_usage".to_string(),
                    format!("{:.3}", eval.summary.block_usage_mean),
                ),
                ("penalty".to_string(), self.options.penalty.to_string()),
            ]);
            run.finish_epoch(
                &metrics,
                &tensors(self.varmap),
                &metadata,
                self.optimizer.state(),
                self.optimizer.steps,
                best,
                is_best,
            )?;
            progress.epoch(&metrics);
        }
        Ok(())
    }
}
