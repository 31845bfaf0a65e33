//! Stage 0: the base flat ResNet with cross-entropy, SGD with momentum and weight decay, and
//! the reference's CIFAR augmentation. No pretrained ResNet can be downloaded here, and a user
//! with a new data set needs one too.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::{BlockDrop, FlatResNet};
use crate::train::augment::{crop_flip, CROP_PADDING};
use crate::train::optim::{params, Kind, Optimizer};
use crate::train::rng::Rng;
use crate::train::run::{EpochMetrics, Run};
use crate::train::{epoch_order, labels, restore, tensors, test_indices, LoopOptions, Progress};

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

/// Trains the base network of `config` into `run` (continuing it when it holds a state).
pub fn train(
    config: &Config,
    train_data: &Dataset,
    test_data: &Dataset,
    run: &mut Run,
    options: &BaseOptions,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<()> {
    let varmap = VarMap::new();
    let model = BlockDrop::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    let kind = Kind::Sgd {
        momentum: options.momentum,
        weight_decay: options.weight_decay,
    };
    let mut optimizer = Optimizer::new(kind, params(&varmap, &["resnet."]));
    let (start, mut best) =
        restore(run, &varmap, &mut optimizer, device)?.unwrap_or((0, f64::NEG_INFINITY));
    let opts = &options.common;
    let test = test_indices(test_data, opts);
    for epoch in start..opts.epochs {
        let started = Instant::now();
        let lr = opts.schedule.lr(opts.lr, epoch);
        let order = epoch_order(train_data.len(), opts, epoch);
        let mut augment_rng = Rng::for_epoch(opts.seed, epoch, 1);
        let (mut seen, mut correct, mut loss_sum) = (0usize, 0usize, 0.0f64);
        // A last batch of one image cannot be batch-normalised: it is left out.
        for chunk in order.chunks(opts.batch_size).filter(|c| c.len() > 1) {
            let x = train_data.batch_with(chunk, config, device, |image| {
                if options.augment {
                    crop_flip(&image, CROP_PADDING, &mut augment_rng)
                } else {
                    image
                }
            })?;
            let y = labels(train_data, chunk, device)?;
            let logits = model.resnet.forward_full(&x, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            optimizer.step(&loss.backward()?, lr)?;
            seen += chunk.len();
            correct += count_correct(&logits, &y)?;
            loss_sum += loss.to_scalar::<f32>()? as f64 * chunk.len() as f64;
            progress.batch(
                epoch,
                seen,
                order.len(),
                &format!(
                    "loss {:.3} acc {:.3}",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64
                ),
            );
        }
        let train_s = started.elapsed().as_secs_f64();
        let test_accuracy = accuracy(&model.resnet, test_data, &test, config, device)?;
        let metrics = EpochMetrics {
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy,
            images_per_s: seen as f64 / train_s,
            wall_s: started.elapsed().as_secs_f64(),
            ..EpochMetrics::default()
        };
        let is_best = test_accuracy > best;
        best = best.max(test_accuracy);
        let metadata = BTreeMap::from([
            ("config".to_string(), config.name.clone()),
            ("stage".to_string(), "base".to_string()),
            ("epoch".to_string(), (epoch + 1).to_string()),
            ("accuracy".to_string(), format!("{test_accuracy:.4}")),
        ]);
        run.finish_epoch(
            &metrics,
            &tensors(&varmap),
            &metadata,
            optimizer.state(),
            optimizer.steps,
            best,
            is_best,
        )?;
        progress.epoch(&metrics);
    }
    Ok(())
}
