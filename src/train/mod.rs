//! Training, in the reference's stages: the base ResNet with cross-entropy ([`base`]), the
//! policy network with REINFORCE over a curriculum ([`curriculum`]), and both jointly
//! ([`finetune`]). Each stage runs epochs into a [`run::Run`] folder and can resume it.

pub mod augment;
pub mod base;
pub mod cost;
pub mod curriculum;
pub mod epochs;
pub mod finetune;
pub mod init;
pub mod optim;
pub mod oracle;
pub mod policy;
pub mod reward;
pub mod run;
pub mod schedule;

use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::run::EpochMetrics;
use crate::train::schedule::Schedule;

/// A training stage: what a run folder trains (its `config.json` says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainStage {
    Base,
    Curriculum,
    Finetune,
}

impl TrainStage {
    pub fn name(self) -> &'static str {
        match self {
            TrainStage::Base => "base",
            TrainStage::Curriculum => "curriculum",
            TrainStage::Finetune => "finetune",
        }
    }
}

impl std::fmt::Display for TrainStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage's values for the loop flags a user leaves out (each stage's `DEFAULTS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopDefaults {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// The step schedule's period; `None`: cosine over the run.
    pub epoch_step: Option<usize>,
}

/// The step schedule's factor, and the seed, when not given.
pub const DEFAULT_LR_DECAY_RATIO: f64 = 0.1;
pub const DEFAULT_SEED: u64 = 0;

/// What every stage's loop needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub seed: u64,
    /// Train on this many images per epoch, drawn afresh each epoch (default: all).
    pub images_per_epoch: Option<usize>,
    /// Evaluate on this many test images after each epoch (default: all).
    pub test_images: Option<usize>,
    /// Hold this many training images out as the per-epoch evaluation set (model selection
    /// then never sees the test split); see [`hold_out`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
}

impl LoopOptions {
    /// What a run's saved options must satisfy (the same bounds the command line enforces):
    /// a `config.json` edited by hand or written by an older version is checked on resume.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if self.batch_size < 2 {
            return Err(format!(
                "batch_size is {}; training needs at least 2",
                self.batch_size
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "lr is {}; it must be a finite number above 0",
                self.lr
            ));
        }
        if self.images_per_epoch == Some(0)
            || self.test_images == Some(0)
            || self.validation == Some(0)
        {
            return Err("images_per_epoch, test_images and validation must be at least 1".into());
        }
        if let Schedule::Step { every, ratio } = self.schedule {
            if every == 0 || !(ratio.is_finite() && ratio > 0.0) {
                return Err(
                    "the step schedule needs a period of at least 1 and a ratio above 0".into(),
                );
            }
        }
        Ok(())
    }

    /// Runs the loop to `epochs` in all (a resumed run extended by `--epochs`); a cosine
    /// schedule stretches to the new length.
    pub fn extend_to(&mut self, epochs: usize) {
        self.epochs = epochs;
        if let Schedule::Cosine { epochs: e } = &mut self.schedule {
            *e = epochs;
        }
    }

    /// Training images per epoch, refused when fewer than one batch.
    pub fn check_batches(&self, train_images: usize) -> std::result::Result<(), String> {
        let per_epoch = self
            .images_per_epoch
            .unwrap_or(train_images)
            .min(train_images);
        if per_epoch < self.batch_size {
            return Err(format!(
                "--batch-size {} is more than the {per_epoch} training images per epoch: no step would run",
                self.batch_size
            ));
        }
        Ok(())
    }
}

/// What a stage trains with; a stage's entry point takes it with the run folder and progress.
pub struct Setting<'a, O> {
    pub config: &'a Config,
    pub train_data: &'a Dataset,
    pub test_data: &'a Dataset,
    pub options: &'a O,
    pub device: &'a Device,
}

/// A stage's options: the loop's, and whether training images are augmented.
pub trait StageOptions {
    fn common(&self) -> &LoopOptions;
    fn common_mut(&mut self) -> &mut LoopOptions;
    /// Random crop and flip on the training images, as the reference.
    fn augment(&self) -> bool;
}

/// Implements [`StageOptions`] for an options struct with `common` and `augment` fields.
macro_rules! stage_options {
    ($options:ty) => {
        impl $crate::train::StageOptions for $options {
            fn common(&self) -> &$crate::train::LoopOptions {
                &self.common
            }

            fn common_mut(&mut self) -> &mut $crate::train::LoopOptions {
                &mut self.common
            }

            fn augment(&self) -> bool {
                self.augment
            }
        }
    };
}
pub(crate) use stage_options;

/// Reports training as it goes (the binary draws progress bars from it).
pub trait Progress {
    /// `done` of `total` images of the epoch, with running figures to show.
    fn batch(&mut self, epoch: usize, done: usize, total: usize, running: &str);
    fn epoch(&mut self, metrics: &EpochMetrics);
}

/// A [`Progress`] that reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn batch(&mut self, _: usize, _: usize, _: usize, _: &str) {}
    fn epoch(&mut self, _: &EpochMetrics) {}
}

/// Splits `train` into the images trained on and `count` held out for validation. The draw
/// depends on the number of images and `count` only, not on `--seed`: every stage of a
/// pipeline (base, curriculum, finetuning runs with seeds of their own) holds out the same
/// images, so none of them ever trained on another stage's validation images. Both keep the
/// dataset's order.
pub fn hold_out(train: &Dataset, count: usize) -> Result<(Dataset, Dataset)> {
    if count >= train.len() {
        return Err(Error::BadUsage(format!(
            "--validation {count} leaves no training images: the training split holds {}",
            train.len()
        )));
    }
    let mut order: Vec<usize> = (0..train.len()).collect();
    Rng::new(crate::rng::mix64(HOLD_OUT_STREAM)).shuffle(&mut order);
    let (held, kept) = order.split_at_mut(count);
    held.sort_unstable();
    kept.sort_unstable();
    Ok((train.subset(kept)?, train.subset(held)?))
}

/// The seed of [`hold_out`]'s draw, apart from the epochs' streams.
const HOLD_OUT_STREAM: u64 = 0x7661_6c69_6461_7465;

/// The images of one epoch, in order: a fresh permutation, cut to `images_per_epoch`.
pub fn epoch_order(len: usize, options: &LoopOptions, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    Rng::for_epoch(options.seed, epoch, 0).shuffle(&mut order);
    order.truncate(options.images_per_epoch.unwrap_or(len).min(len));
    order
}

/// Every variable of `varmap` by name (a model file's tensors).
pub fn tensors(varmap: &VarMap) -> BTreeMap<String, Tensor> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    data.iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect()
}

/// Sets `varmap`'s variables from `values` (a model file); every variable must be there
/// with its shape. `what` names the source in errors.
pub fn load_into(
    varmap: &VarMap,
    values: &HashMap<String, Tensor>,
    what: &std::path::Path,
) -> Result<()> {
    load_under(varmap, values, what, "")
}

/// Sets the variables of `varmap` whose names start with `prefix` from `values`.
fn load_under(
    varmap: &VarMap,
    values: &HashMap<String, Tensor>,
    what: &std::path::Path,
    prefix: &str,
) -> Result<()> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut missing = Vec::new();
    for (name, var) in data.iter().filter(|(n, _)| n.starts_with(prefix)) {
        match values.get(name) {
            Some(t) if t.shape() == var.shape() => var.set(&t.to_device(var.device())?)?,
            Some(t) => {
                return Err(Error::bad_input(
                    what,
                    format!(
                        "tensor {name} is {:?}, the model needs {:?}",
                        t.shape(),
                        var.shape()
                    ),
                ))
            }
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(Error::bad_input(
            what,
            format!("{} tensor(s) missing, e.g. {}", missing.len(), missing[0]),
        ));
    }
    Ok(())
}

/// The labels of `indices` as a `u32` tensor.
pub fn labels(dataset: &Dataset, indices: &[usize], device: &Device) -> Result<Tensor> {
    let all = dataset.labels();
    let picked: Vec<u32> = indices.iter().map(|&i| all[i]).collect();
    Ok(Tensor::new(picked.as_slice(), device)?)
}

/// Test images to evaluate after an epoch.
pub fn test_indices(test: &Dataset, options: &LoopOptions) -> Vec<usize> {
    (0..options.test_images.unwrap_or(test.len()).min(test.len())).collect()
}

/// Sets `varmap`'s `resnet.*` variables (`base_only`) or all of them from a model file (this
/// project's safetensors or a reference PyTorch checkpoint).
pub fn load_model_file(varmap: &VarMap, path: &std::path::Path, base_only: bool) -> Result<()> {
    let bytes = crate::input::read_file(path)?;
    let parts = crate::checkpoint::read_parts(path, &bytes)?;
    if base_only {
        let resnet = parts
            .resnet
            .ok_or_else(|| Error::bad_input(path, "holds no base network"))?;
        let values: HashMap<String, Tensor> = resnet
            .into_iter()
            .map(|(name, t)| (format!("resnet.{name}"), t))
            .collect();
        return load_under(varmap, &values, path, "resnet.");
    }
    if parts.agent.is_none() {
        return Err(no_policy(path));
    }
    let (values, _) = crate::checkpoint::combine(path, parts, None)?;
    load_into(varmap, &values, path)
}

fn no_policy(path: &std::path::Path) -> Error {
    Error::bad_input(
        path,
        "holds a base network and no policy network; train one first with \
         `train curriculum --base FILE`",
    )
}

/// Refuses a model file without a policy network (what `train finetune --from` needs),
/// before any data is opened or run folder made.
pub fn require_policy(path: &std::path::Path) -> Result<()> {
    let bytes = crate::input::read_file(path)?;
    match crate::checkpoint::read_parts(path, &bytes)?.agent {
        Some(_) => Ok(()),
        None => Err(no_policy(path)),
    }
}

/// What a policy stage records per epoch on the test set, from the greedy policy.
pub struct PolicyEval {
    pub summary: crate::records::Summary,
    /// Mean reward `1 − share²` or γ of the greedy policy.
    pub reward: f64,
    /// Mean share of the block cost the greedy policy keeps (`blocks / K` without a cost).
    pub cost_share_mean: f64,
}

/// Evaluates `model` on `indices` of `test` at threshold 0.5, the first `forced_first`
/// decisions kept whatever the policy says (the curriculum's test; 0: the policy as it is).
pub fn evaluate_policy(
    model: &crate::model::BlockDrop,
    test: &Dataset,
    indices: &[usize],
    (cost, penalty): (&cost::BlockCost, f64),
    forced_first: usize,
    device: &Device,
) -> Result<PolicyEval> {
    let mut folded = model.clone();
    folded.fold_batchnorm()?;
    let options = crate::eval::EvalOptions {
        limit: Some(indices.len()),
        batch: 250,
        forced_first,
        ..crate::eval::EvalOptions::default()
    };
    let records = crate::eval::evaluate(&folded, test, &options, device, |_, _| {})?;
    let images = records.len().max(1) as f64;
    let shares: Vec<f32> = records.iter().map(|r| cost.share(&r.keep)).collect();
    let reward = records
        .iter()
        .zip(&shares)
        .map(|(r, &share)| reward::of(r.correct, share, penalty) as f64)
        .sum::<f64>()
        / images;
    Ok(PolicyEval {
        summary: crate::records::Summary::of(&records),
        reward,
        cost_share_mean: shares.iter().map(|&s| s as f64).sum::<f64>() / images,
    })
}

/// Restores a run's saved model and optimiser into `varmap` and `optimizer`; returns where
/// the epoch loop continues (the epoch, the best score so far, a partial epoch), or `None`
/// for a fresh run.
pub fn restore(
    run: &mut run::Run,
    varmap: &VarMap,
    optimizer: &mut optim::Optimizer,
    device: &Device,
) -> Result<Option<epochs::Start>> {
    let Some(resumed) = run.resume(device)? else {
        return Ok(None);
    };
    load_into(varmap, &resumed.model, &run.dir)?;
    optimizer.load_state(&resumed.optimizer, resumed.optimizer_steps)?;
    Ok(Some(epochs::Start {
        epoch: resumed.epochs_done,
        best: resumed.best,
        partial: resumed.partial,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_saved_under_its_name() {
        for stage in [
            TrainStage::Base,
            TrainStage::Curriculum,
            TrainStage::Finetune,
        ] {
            let json = serde_json::to_value(stage).unwrap();
            assert_eq!(json, stage.name());
            assert_eq!(serde_json::from_value::<TrainStage>(json).unwrap(), stage);
        }
    }
}
