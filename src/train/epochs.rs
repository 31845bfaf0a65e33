//! The epoch loop every stage runs: shuffle, augment, one optimiser step per batch, evaluate
//! on the test images, then record the epoch in the run folder (metrics, model files and the
//! resume state). A stage supplies what one batch computes and how an epoch is evaluated.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Tensor;
use candle_nn::VarMap;

use crate::checkpoint::ModelStage;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::augment::{crop_flip, CROP_PADDING};
use crate::train::optim::Optimizer;
use crate::train::run::{EpochMetrics, Partial, Position, Run};
use crate::train::{
    epoch_order, tensors, test_indices, LoopOptions, Progress, Setting, StageOptions,
};

/// What one training batch computed.
pub struct BatchOutcome {
    /// The scalar loss the optimiser steps on.
    pub loss: Tensor,
    /// Correct predictions in the batch.
    pub correct: usize,
    /// Policy stages: the sampled policies' summed reward and kept blocks.
    pub policy: Option<(f64, f64)>,
}

/// An epoch's evaluation on the test images.
pub struct EpochEvaluation {
    pub test_accuracy: f64,
    /// What `best.safetensors` maximises: accuracy (base) or mean reward (policy stages).
    pub score: f64,
    /// Policy stages: the greedy policy's reward, block usage and distinct policies.
    pub policy: Option<crate::train::PolicyEval>,
    /// Model-file metadata beyond the configuration, stage, epoch and accuracy.
    pub metadata: Vec<(String, String)>,
}

/// Where the loop starts: the first epoch to run, the best score so far and, when a stop
/// signal saved the run inside that epoch, how far it had got.
#[derive(Debug, Clone)]
pub struct Start {
    pub epoch: usize,
    pub best: f64,
    pub partial: Option<Partial>,
}

impl Start {
    pub fn fresh() -> Self {
        Self {
            epoch: 0,
            best: f64::NEG_INFINITY,
            partial: None,
        }
    }
}

/// Running sums over an epoch's batches.
#[derive(Default)]
struct Running {
    seen: usize,
    correct: usize,
    loss: f64,
    /// Policy stages: summed reward and kept blocks.
    policy: Option<(f64, f64)>,
}

impl Running {
    fn add(&mut self, n: usize, outcome: &BatchOutcome, loss: f64) {
        self.seen += n;
        self.correct += outcome.correct;
        self.loss += loss * n as f64;
        if let Some((reward, blocks)) = outcome.policy {
            let sums = self.policy.get_or_insert((0.0, 0.0));
            sums.0 += reward;
            sums.1 += blocks;
        }
    }

    fn per_image(&self, sum: f64) -> f64 {
        sum / self.seen.max(1) as f64
    }

    fn resumed(partial: &Partial) -> Self {
        Self {
            seen: partial.seen,
            correct: partial.correct,
            loss: partial.loss,
            policy: partial.policy,
        }
    }

    /// The progress line's running figures.
    fn message(&self) -> String {
        let accuracy = self.per_image(self.correct as f64);
        match self.policy {
            Some((reward, blocks)) => format!(
                "reward {:.3} acc {accuracy:.3} blocks {:.2}",
                self.per_image(reward),
                self.per_image(blocks)
            ),
            None => format!("loss {:.3} acc {accuracy:.3}", self.per_image(self.loss)),
        }
    }
}

/// A stage's training state for the loop.
pub struct EpochLoop<'a, O> {
    pub stage: ModelStage,
    pub setting: &'a Setting<'a, O>,
    pub varmap: &'a VarMap,
    pub optimizer: Optimizer,
}

impl<O: StageOptions> EpochLoop<'_, O> {
    /// Epochs `start.epoch..` of the run, `start.best` the best score so far: each batch
    /// through `batch(epoch, images, labels, rng)` (the rng draws policy samples), an optimiser
    /// step, then `evaluate(epoch, test indices)` and the epoch's checkpoint. After a stop
    /// signal ([`crate::cancel::stop_on_signals`]) it saves the position at the next batch
    /// boundary, or the finished batches when the signal came during the evaluation, and
    /// returns [`Error::Stopped`].
    pub fn run(
        mut self,
        run: &mut Run,
        start: Start,
        progress: &mut dyn Progress,
        mut batch: impl FnMut(usize, &Tensor, &[u32], &mut Rng) -> Result<BatchOutcome>,
        mut evaluate: impl FnMut(usize, &[usize]) -> Result<EpochEvaluation>,
    ) -> Result<()> {
        let Setting {
            config,
            train_data,
            test_data,
            options,
            ..
        } = self.setting;
        let opts = options.common();
        let test = test_indices(test_data, opts);
        let mut best = start.best;
        let mut partial = start.partial;
        for epoch in start.epoch..opts.epochs {
            let started = Instant::now();
            let lr = opts.schedule.lr(opts.lr, epoch);
            let order = epoch_order(train_data.len(), opts, epoch);
            let resumed = partial.take();
            let (mut augment_rng, mut sample_rng, mut running, skip, before_s) =
                epoch_start(resumed.as_ref(), opts.seed, epoch);
            // A last batch of one image cannot be batch-normalised: it is left out.
            let chunks: Vec<&[usize]> = order
                .chunks(opts.batch_size)
                .filter(|c| c.len() > 1)
                .collect();
            if let Some(p) = &resumed {
                check_resumed(p, &chunks, run, epoch)?;
            }
            let mut stop = |running: &Running, batches_done, rngs: (&Rng, &Rng), s: &mut Self| {
                let partial = Partial {
                    batches_done,
                    augment_rng: rngs.0.state(),
                    sample_rng: rngs.1.state(),
                    seen: running.seen,
                    correct: running.correct,
                    loss: running.loss,
                    policy: running.policy,
                    train_s: before_s + started.elapsed().as_secs_f64(),
                };
                let position = Position {
                    epochs_done: epoch,
                    optimizer_steps: s.optimizer.steps,
                    best,
                };
                run.save_partial(
                    &tensors(s.varmap),
                    s.optimizer.state()?,
                    &position,
                    &partial,
                )?;
                Err(Error::Stopped {
                    dir: run.dir.clone(),
                    epoch: epoch + 1,
                    batches: batches_done,
                })
            };
            for (index, chunk) in chunks.iter().enumerate().skip(skip) {
                let (x, labels) = training_batch(self.setting, chunk, &mut augment_rng)?;
                let outcome = batch(epoch, &x, &labels, &mut sample_rng)?;
                self.optimizer.step(&outcome.loss.backward()?, lr)?;
                let loss = outcome.loss.to_scalar::<f32>()? as f64;
                running.add(chunk.len(), &outcome, loss);
                progress.batch(epoch, running.seen, order.len(), &running.message());
                if crate::cancel::signalled() {
                    return stop(&running, index + 1, (&augment_rng, &sample_rng), &mut self);
                }
            }
            let train_s = before_s + started.elapsed().as_secs_f64();
            let eval = match evaluate(epoch, &test) {
                Err(Error::Cancelled) if crate::cancel::signalled() => {
                    let rngs = (&augment_rng, &sample_rng);
                    return stop(&running, chunks.len(), rngs, &mut self);
                }
                other => other?,
            };
            let wall_s = before_s + started.elapsed().as_secs_f64();
            let metrics = epoch_metrics(epoch, lr, &running, &eval, train_s, wall_s);
            let is_best = eval.score > best;
            best = best.max(eval.score);
            let mut metadata = epoch_metadata(config, self.stage, epoch, eval.test_accuracy, opts);
            metadata.extend(eval.metadata);
            run.finish_epoch(
                &metrics,
                &tensors(self.varmap),
                &metadata,
                self.optimizer.state()?,
                self.optimizer.steps,
                best,
                is_best,
            )?;
            progress.epoch(&metrics);
        }
        Ok(())
    }
}

/// The training images `chunk`, augmented unless the stage turns it off, and their labels.
fn training_batch<O: StageOptions>(
    setting: &Setting<O>,
    chunk: &[usize],
    augment_rng: &mut Rng,
) -> Result<(Tensor, Vec<u32>)> {
    let data = setting.train_data;
    let x = data.batch_with(chunk, setting.config, setting.device, |image| {
        if setting.options.augment() {
            crop_flip(&image, CROP_PADDING, augment_rng)
        } else {
            image
        }
    })?;
    let labels = chunk.iter().map(|&i| data.labels()[i]).collect();
    Ok((x, labels))
}

/// How epoch `epoch` starts: its augmentation and sampling generators, its running totals,
/// the batches already done and their training seconds (all zero unless `resumed`).
fn epoch_start(
    resumed: Option<&Partial>,
    seed: u64,
    epoch: usize,
) -> (Rng, Rng, Running, usize, f64) {
    match resumed {
        Some(p) => (
            Rng::new(p.augment_rng),
            Rng::new(p.sample_rng),
            Running::resumed(p),
            p.batches_done,
            p.train_s,
        ),
        None => (
            Rng::for_epoch(seed, epoch, 1),
            Rng::for_epoch(seed, epoch, 2),
            Running::default(),
            0,
            0.0,
        ),
    }
}

/// Whether a saved position inside epoch `epoch` fits the epoch's `chunks` (its batches).
fn check_resumed(p: &Partial, chunks: &[&[usize]], run: &Run, epoch: usize) -> Result<()> {
    let seen: usize = chunks.iter().take(p.batches_done).map(|c| c.len()).sum();
    if p.batches_done > chunks.len() || p.seen != seen {
        return Err(Error::bad_input(
            run.dir.join(crate::train::run::STATE),
            format!(
                "says {} batches ({} images) of epoch {} were done, which this run's epoch of {} batches cannot have",
                p.batches_done,
                p.seen,
                epoch + 1,
                chunks.len()
            ),
        ));
    }
    Ok(())
}

/// The row `metrics.csv` gets for an epoch.
fn epoch_metrics(
    epoch: usize,
    lr: f64,
    running: &Running,
    eval: &EpochEvaluation,
    train_s: f64,
    wall_s: f64,
) -> EpochMetrics {
    let policy = eval.policy.as_ref();
    EpochMetrics {
        epoch,
        lr,
        train_loss: running.per_image(running.loss),
        train_accuracy: running.per_image(running.correct as f64),
        test_accuracy: eval.test_accuracy,
        reward: policy.map(|p| p.reward),
        block_usage_mean: policy.map(|p| p.summary.block_usage_mean),
        block_usage_std: policy.map(|p| p.summary.block_usage_std),
        unique_policies: policy.map(|p| p.summary.unique_policies),
        images_per_s: running.seen as f64 / train_s,
        wall_s,
        cost_share_mean: policy.map(|p| p.cost_share_mean),
    }
}

/// The metadata an epoch's model files carry: configuration, stage, epoch, accuracy (and on
/// what it was measured), the policy input pool when it is not the configuration's own.
fn epoch_metadata(
    config: &Config,
    stage: ModelStage,
    epoch: usize,
    accuracy: f64,
    opts: &LoopOptions,
) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::from([
        ("config".to_string(), config.name.clone()),
        (ModelStage::KEY.to_string(), stage.name().to_string()),
        ("epoch".to_string(), (epoch + 1).to_string()),
        ("accuracy".to_string(), format!("{accuracy:.4}")),
    ]);
    if let Some(pool) = config.policy_input_pool_override() {
        let key = crate::config::POLICY_INPUT_POOL_KEY.to_string();
        metadata.insert(key, pool.to_string());
    }
    if let Some(held) = opts.validation {
        metadata.insert(
            "accuracy_on".to_string(),
            format!("validation: {held} images held out of the training split"),
        );
    }
    metadata
}
