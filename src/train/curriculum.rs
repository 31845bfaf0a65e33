//! Stage 1: the policy network with REINFORCE over a curriculum, base network frozen in eval
//! mode (the reference's `cl_training`). Epoch e trains the last c = min(K, cl_step·(e + 1))
//! decisions; the others are forced to 1 and leave the loss. One bounded Bernoulli sample per
//! image, the greedy policy as the self-critical baseline, an entropy bonus, Adam.
//!
//! The frozen base runs with BatchNorm folded and dropped blocks truly skipped (grouped or
//! gather executor), as at inference: it needs no gradients.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::Dataset;
use crate::error::Result;
use crate::exec::forward_batch;
use crate::model::{BlockDrop, FlatResNet};
use crate::train::augment::{crop_flip, CROP_PADDING};
use crate::train::optim::{params, Kind, Optimizer};
use crate::train::reward::{self, bounded, force_first, greedy, keep_bits, sample};
use crate::train::rng::Rng;
use crate::train::run::{EpochMetrics, Run};
use crate::train::{
    epoch_order, evaluate_policy, load_into, load_model_file, tensors, test_indices, LoopOptions,
    Progress,
};

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
    pub init: PathBuf,
}

/// Running sums over an epoch's batches.
#[derive(Default)]
pub(crate) struct Running {
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

/// The model metadata and the epoch row of a policy stage, then the checkpoint.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_epoch(
    stage: &str,
    model: &BlockDrop,
    varmap: &VarMap,
    optimizer: &Optimizer,
    run: &mut Run,
    epoch: usize,
    lr: f64,
    running: &Running,
    started: Instant,
    train_s: f64,
    test: (&Dataset, &[usize]),
    penalty: f64,
    best: &mut f64,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<()> {
    let eval = evaluate_policy(model, test.0, test.1, penalty, device)?;
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
    let is_best = eval.reward > *best;
    *best = best.max(eval.reward);
    let metadata = BTreeMap::from([
        ("config".to_string(), model.config.name.clone()),
        ("stage".to_string(), stage.to_string()),
        ("epoch".to_string(), (epoch + 1).to_string()),
        (
            "accuracy".to_string(),
            format!("{:.4}", eval.summary.accuracy),
        ),
        (
            "block_usage".to_string(),
            format!("{:.3}", eval.summary.block_usage_mean),
        ),
        ("penalty".to_string(), penalty.to_string()),
    ]);
    run.finish_epoch(
        &metrics,
        &tensors(varmap),
        &metadata,
        optimizer.state(),
        optimizer.steps,
        *best,
        is_best,
    )?;
    progress.epoch(&metrics);
    Ok(())
}

/// A training batch, augmented when asked.
pub(crate) fn training_batch(
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

/// One curriculum batch: the policy's keep probabilities (agent in train mode), `draw`'s
/// sample from the bounded probabilities, the frozen `base` under the sampled and the greedy
/// policy (first K − `trained` decisions forced to 1), and the loss
/// `(Σ −log P(u)·advantage over trained decisions − β·Σ entropy) / N`.
pub fn step(
    model: &BlockDrop,
    base: &FlatResNet,
    x: &Tensor,
    labels: &[u32],
    trained: usize,
    options: &PolicyOptions,
    draw: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Step> {
    let k = model.num_blocks();
    let probs = model.agent.keep_probs(x, true)?;
    let p_bounded = bounded(&probs, options.alpha)?;
    let (sampled, mask) = force_first(&draw(&p_bounded)?, trained)?;
    let (baseline, _) = force_first(&greedy(&probs)?, trained)?;
    let outcome = |policy: &Tensor| -> Result<(Vec<bool>, Vec<f32>)> {
        let logits = forward_batch(base, x, &keep_bits(policy)?)?;
        let correct = reward::correct(&logits, labels)?;
        let rewards = reward::reward(&correct, policy, options.penalty)?;
        Ok((correct, rewards))
    };
    let (correct, sampled_reward) = outcome(&sampled)?;
    let (_, baseline_reward) = outcome(&baseline)?;
    let advantage: Vec<f32> = sampled_reward
        .iter()
        .zip(&baseline_reward)
        .map(|(s, b)| s - b)
        .collect();
    let mask = (trained < k).then_some(&mask);
    let loss = ((reward::policy_gradient_sum(&p_bounded, &sampled, &advantage, mask)?
        - (reward::entropy_sum(&p_bounded)? * options.beta)?)?
        / labels.len() as f64)?;
    Ok(Step {
        loss,
        sampled,
        correct,
        sampled_reward,
    })
}

/// Trains the policy of `config` over the frozen base network in `options.init` into `run`.
pub fn train(
    config: &Config,
    train_data: &Dataset,
    test_data: &Dataset,
    run: &mut Run,
    options: &PolicyOptions,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<()> {
    let varmap = VarMap::new();
    let model = BlockDrop::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    let mut optimizer = Optimizer::new(
        Kind::Adam { weight_decay: 0.0 },
        params(&varmap, &["agent."]),
    );
    let (mut start, mut best) = (0, f64::NEG_INFINITY);
    match run.resume(device)? {
        Some(resumed) => {
            load_into(&varmap, &resumed.model, &run.dir)?;
            optimizer.load_state(&resumed.optimizer, resumed.optimizer_steps)?;
            (start, best) = (resumed.epochs_done, resumed.best);
        }
        None => load_model_file(&varmap, &options.init, true)?,
    }
    let mut base = model.resnet.clone();
    base.fold_batchnorm()?;
    let k = model.num_blocks();
    let opts = &options.common;
    let test = test_indices(test_data, opts);
    for epoch in start..opts.epochs {
        let started = Instant::now();
        let lr = opts.schedule.lr(opts.lr, epoch);
        let trained = (options.cl_step.max(1) * (epoch + 1)).min(k);
        let order = epoch_order(train_data.len(), opts, epoch);
        let mut augment_rng = Rng::for_epoch(opts.seed, epoch, 1);
        let mut sample_rng = Rng::for_epoch(opts.seed, epoch, 2);
        let mut running = Running::default();
        for chunk in order.chunks(opts.batch_size).filter(|c| c.len() > 1) {
            let x = training_batch(
                train_data,
                chunk,
                config,
                device,
                options.augment,
                &mut augment_rng,
            )?;
            let labels: Vec<u32> = chunk.iter().map(|&i| train_data.labels()[i]).collect();
            let outcome = step(&model, &base, &x, &labels, trained, options, |p| {
                sample(p, &mut sample_rng)
            })?;
            optimizer.step(&outcome.loss.backward()?, lr)?;
            let blocks = outcome.sampled.sum_all()?.to_scalar::<f32>()? as f64;
            let loss = outcome.loss.to_scalar::<f32>()? as f64;
            running.add(
                chunk.len(),
                &outcome.correct,
                &outcome.sampled_reward,
                loss,
                blocks,
            );
            progress.batch(
                epoch,
                running.seen,
                order.len(),
                &format!("{} | c {trained}", running.message()),
            );
        }
        let train_s = started.elapsed().as_secs_f64();
        finish_epoch(
            "curriculum",
            &model,
            &varmap,
            &optimizer,
            run,
            epoch,
            lr,
            &running,
            started,
            train_s,
            (test_data, &test),
            options.penalty,
            &mut best,
            device,
            progress,
        )?;
    }
    Ok(())
}
