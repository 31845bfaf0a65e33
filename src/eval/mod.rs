//! Runs a BlockDrop model over a dataset the way the reference's `test.py` does (threshold the
//! keep probabilities, run the base network with dropped blocks skipped), one record per image,
//! and summarises the run in the reference's four lines.

pub mod adaptivity;
pub mod baselines;
pub mod tradeoff;

use candle_core::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::forward_batch;
use crate::model::blockdrop::{kept_blocks, policy_bits};
use crate::model::{BlockDrop, BlockDropFlops};
use crate::records::Record;
use crate::stats::argmax;

/// Images per forward pass when not given.
pub const DEFAULT_BATCH: usize = 32;

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Evaluate only the first N images.
    pub limit: Option<usize>,
    /// Images per forward pass; per-image results do not depend on it.
    pub batch: usize,
    pub threshold: f32,
    /// Keep the base network's logits in each record.
    pub keep_logits: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            limit: None,
            batch: DEFAULT_BATCH,
            threshold: crate::model::DEFAULT_THRESHOLD,
            keep_logits: false,
        }
    }
}

/// The records of images `chunk` (dataset indices), decoded into `x`; `labels` are the
/// dataset's. `options.threshold` and `options.keep_logits` apply.
pub fn evaluate_batch(
    model: &BlockDrop,
    x: &candle_core::Tensor,
    chunk: &[usize],
    labels: &[u32],
    flops: &BlockDropFlops,
    options: &EvalOptions,
) -> Result<Vec<Record>> {
    let probs = model.agent.keep_probs(x, false)?.to_vec2::<f32>()?;
    let keep = policy_bits(&probs, options.threshold);
    let logits = forward_batch(&model.resnet, x, &keep)?.to_vec2::<f32>()?;
    Ok(chunk
        .iter()
        .zip(probs)
        .zip(keep)
        .zip(logits)
        .map(|(((&i, probs), keep), logits)| {
            let label = labels[i];
            let pred = argmax(&logits);
            Record {
                index: i as u32,
                label,
                pred,
                correct: pred == label,
                blocks: kept_blocks(&keep) as u32,
                flops: flops.per_image(&keep) as f64,
                keep,
                probs,
                logits: options.keep_logits.then_some(logits),
            }
        })
        .collect())
}

/// Evaluates `model` on `dataset`, calling `progress(done, total)` after every batch.
pub fn evaluate(
    model: &BlockDrop,
    dataset: &Dataset,
    options: &EvalOptions,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Record>> {
    if options.batch == 0 {
        return Err(Error::BadUsage("--batch must be at least 1".into()));
    }
    if !(0.0..=1.0).contains(&options.threshold) {
        return Err(Error::BadUsage(format!(
            "--threshold {} is not a probability",
            options.threshold
        )));
    }
    let total = options
        .limit
        .map_or(dataset.len(), |l| l.min(dataset.len()));
    if total == 0 {
        return Err(Error::bad_input(
            &dataset.path,
            format!("the {} split holds no images", dataset.split),
        ));
    }
    dataset.check_labels(&model.config, total)?;
    let flops = BlockDropFlops::for_config(&model.config);
    let mut records = Vec::with_capacity(total);
    let indices: Vec<usize> = (0..total).collect();
    for chunk in indices.chunks(options.batch) {
        let x = dataset.batch(chunk, &model.config, device)?;
        records.extend(evaluate_batch(
            model,
            &x,
            chunk,
            dataset.labels(),
            &flops,
            options,
        )?);
        progress(records.len(), total);
        crate::cancel::check()?;
    }
    Ok(records)
}
