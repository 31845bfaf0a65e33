//! Runs a BlockDrop model over a dataset the way the reference's `test.py` does (threshold the
//! keep probabilities, run the base network with dropped blocks skipped), one record per image,
//! and summarises the run in the reference's four lines.

pub mod adaptivity;
pub mod baselines;
pub mod part;
pub mod tradeoff;

use candle_core::Device;

use crate::data::prefetch::{self, Prefetch};
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
    /// Images are decoded this far ahead of the network, on threads of their own.
    pub prefetch: Prefetch,
    /// The first this many decisions are kept whatever the policy says: the curriculum's
    /// per-epoch test forces them, as the reference's `test()` does (0: the policy as it is).
    pub forced_first: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            limit: None,
            batch: DEFAULT_BATCH,
            threshold: crate::model::DEFAULT_THRESHOLD,
            keep_logits: false,
            prefetch: Prefetch::default_for_machine(),
            forced_first: 0,
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
    let probs = model.keep_probs(x, false)?.to_vec2::<f32>()?;
    let mut keep = policy_bits(&probs, options.threshold);
    for bits in &mut keep {
        let forced = options.forced_first.min(bits.len());
        bits[..forced].fill(true);
    }
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
    let total = options
        .limit
        .map_or(dataset.len(), |l| l.min(dataset.len()));
    let mut records = Vec::with_capacity(total);
    evaluate_range(model, dataset, 0..total, options, device, |batch| {
        records.extend_from_slice(batch);
        progress(records.len(), total);
        Ok(())
    })?;
    Ok(records)
}

/// Evaluates the images `range` of `dataset` (`options.limit` aside), in order, a batch at a
/// time: `on_batch` receives each batch's records (it may save them, as `eval --resume`
/// does). An empty range evaluates nothing; `range` must lie within the first images the
/// caller checked.
pub fn evaluate_range(
    model: &BlockDrop,
    dataset: &Dataset,
    range: std::ops::Range<usize>,
    options: &EvalOptions,
    device: &Device,
    mut on_batch: impl FnMut(&[Record]) -> Result<()>,
) -> Result<()> {
    if options.batch == 0 {
        return Err(Error::BadUsage("--batch must be at least 1".into()));
    }
    if !(0.0..=1.0).contains(&options.threshold) {
        return Err(Error::BadUsage(format!(
            "--threshold {} is not a probability",
            options.threshold
        )));
    }
    if range.end > dataset.len() || range.start > range.end {
        return Err(Error::BadUsage(format!(
            "images {}..{} are beyond the {} split's {} images",
            range.start,
            range.end,
            dataset.split,
            dataset.len()
        )));
    }
    if range.is_empty() && range.start == 0 {
        return Err(Error::bad_input(
            &dataset.path,
            format!("the {} split holds no images", dataset.split),
        ));
    }
    dataset.check_labels(&model.config, range.end)?;
    let flops = BlockDropFlops::of(model);
    let indices: Vec<usize> = range.collect();
    let batches: Vec<&[usize]> = indices.chunks(options.batch).collect();
    prefetch::for_each_batch(
        dataset,
        &batches,
        &model.config,
        device,
        options.prefetch,
        |chunk, x| {
            on_batch(&evaluate_batch(
                model,
                &x,
                chunk,
                dataset.labels(),
                &flops,
                options,
            )?)?;
            crate::cancel::check()
        },
    )
}
