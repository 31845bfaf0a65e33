//! Stage 0: the base flat ResNet with cross-entropy, SGD with momentum and weight decay, and
//! the reference's CIFAR augmentation. No pretrained ResNet can be downloaded here, and a user
//! with a new data set needs one too.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::checkpoint::ModelStage;
use crate::config::Config;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::{BlockDrop, FlatResNet};
use crate::train::augment::CROP_PADDING;
use crate::train::epochs::{BatchOutcome, EpochEvaluation, EpochLoop, Start};
use crate::train::init;
use crate::train::optim::{params, Kind, Optimizer};
use crate::train::run::Run;
use crate::train::{labels, restore, LoopDefaults, LoopOptions, Progress, Setting};

/// The stage's defaults: 30 epochs of batch 128 at lr 0.1 on a cosine schedule; SGD with
/// momentum 0.9 and weight decay 5e-4.
pub const DEFAULTS: LoopDefaults = LoopDefaults {
    epochs: 30,
    batch_size: 128,
    lr: 0.1,
    epoch_step: None,
};
pub const DEFAULT_MOMENTUM: f64 = 0.9;
pub const DEFAULT_WEIGHT_DECAY: f64 = 5e-4;

/// The defaults as `train base --help` states them.
pub fn defaults_help() -> String {
    format!(
        "Defaults: {} epochs, batch {}, lr {} with a cosine schedule, momentum {DEFAULT_MOMENTUM}, \
weight decay {DEFAULT_WEIGHT_DECAY:e}, random crop (padding {CROP_PADDING}) and horizontal flip.",
        DEFAULTS.epochs, DEFAULTS.batch_size, DEFAULTS.lr
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseOptions {
    #[serde(flatten)]
    pub common: LoopOptions,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Random crop with padding 4 and horizontal flip.
    pub augment: bool,
}

/// Correct predictions of `net` (eval mode, every block) on `indices`.
pub fn accuracy(
    net: &FlatResNet,
    data: &Dataset,
    indices: &[usize],
    config: &Config,
    device: &Device,
) -> Result<f64> {
    let mut correct = 0usize;
    for chunk in indices.chunks(250) {
        crate::cancel::check()?;
        let x = data.batch(chunk, config, device)?;
        correct += count_correct(&net.forward_full(&x, false)?, &labels(data, chunk, device)?)?;
    }
    Ok(correct as f64 / indices.len().max(1) as f64)
}

pub fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<usize> {
    let pred = logits.argmax(D::Minus1)?;
    Ok(pred
        .eq(labels)?
        .to_dtype(DType::U32)?
        .sum_all()?
        .to_scalar::<u32>()? as usize)
}

crate::train::stage_options!(BaseOptions);

/// Trains the base network into `run` (continuing it when it holds a state).
pub fn train(
    setting: &Setting<BaseOptions>,
    run: &mut Run,
    progress: &mut dyn Progress,
) -> Result<()> {
    let Setting {
        config,
        test_data,
        options,
        device,
        ..
    } = *setting;
    let varmap = VarMap::new();
    // A base network alone: its model files hold no (untrained) policy network, so `eval`
    // runs them as base networks, every block kept. (Runs written before kept a random
    // agent in their state; resuming them ignores it.)
    let model = BlockDrop::base_only(config, init::seeded(&varmap, options.common.seed, device))?;
    let kind = Kind::Sgd {
        momentum: options.momentum,
        weight_decay: options.weight_decay,
    };
    let mut optimizer = Optimizer::new(kind, params(&varmap, &["resnet."]));
    let start = restore(run, &varmap, &mut optimizer, device)?.unwrap_or_else(Start::fresh);
    let epochs = EpochLoop {
        stage: ModelStage::Base,
        setting,
        varmap: &varmap,
        optimizer,
    };
    let batch = |_: usize, x: &Tensor, labels: &[u32], _: &mut crate::rng::Rng| {
        let y = Tensor::new(labels, device)?;
        let logits = model.resnet.forward_full(x, true)?;
        Ok(BatchOutcome {
            loss: candle_nn::loss::cross_entropy(&logits, &y)?,
            correct: count_correct(&logits, &y)?,
            policy: None,
        })
    };
    let evaluate = |_epoch: usize, test: &[usize]| {
        let accuracy = accuracy(&model.resnet, test_data, test, config, device)?;
        Ok(EpochEvaluation {
            test_accuracy: accuracy,
            score: accuracy,
            policy: None,
            metadata: Vec::new(),
        })
    };
    epochs.run(run, start, progress, batch, evaluate)
}
