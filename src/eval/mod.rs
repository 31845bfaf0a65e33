//! Runs a BlockDrop model over a dataset the way the reference's `test.py` does (threshold the
//! keep probabilities, run the base network with dropped blocks skipped), one record per image,
//! and summarises the run in the reference's four lines.

pub mod tradeoff;

use std::collections::HashSet;
use std::fmt;

use candle_core::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::forward_batch;
use crate::model::blockdrop::{policy_bits, policy_string};
use crate::model::{BlockDrop, BlockDropFlops};

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
            batch: 32,
            threshold: crate::model::DEFAULT_THRESHOLD,
            keep_logits: false,
        }
    }
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub index: u32,
    pub label: u32,
    pub pred: u32,
    pub correct: bool,
    pub keep: Vec<bool>,
    pub blocks: u32,
    pub flops: f64,
    pub probs: Vec<f32>,
    pub logits: Option<Vec<f32>>,
}

impl Record {
    /// The policy as the reference prints it, one '0'/'1' per block.
    pub fn policy(&self) -> String {
        policy_string(&self.keep)
    }
}

/// Index of the largest value; the first one on ties, as `torch.max`.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
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
        let probs = model.agent.keep_probs(&x, false)?.to_vec2::<f32>()?;
        let keep = policy_bits(&probs, options.threshold);
        let logits = forward_batch(&model.resnet, &x, &keep)?.to_vec2::<f32>()?;
        for (((&i, probs), keep), logits) in chunk.iter().zip(probs).zip(keep).zip(logits) {
            let label = dataset.labels()[i];
            let pred = argmax(&logits);
            records.push(Record {
                index: i as u32,
                label,
                pred,
                correct: pred == label,
                blocks: keep.iter().filter(|&&k| k).count() as u32,
                flops: flops.per_image(&keep) as f64,
                keep,
                probs,
                logits: options.keep_logits.then_some(logits),
            });
        }
        progress(records.len(), total);
        crate::cancel::check()?;
    }
    Ok(records)
}

/// The reference's summary of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub images: usize,
    pub accuracy: f64,
    pub block_usage_mean: f64,
    /// Sample standard deviation (n − 1), as `torch.std`.
    pub block_usage_std: f64,
    pub flops_mean: f64,
    /// Population standard deviation (n), as `np.std`.
    pub flops_std: f64,
    pub unique_policies: usize,
}

impl Summary {
    pub fn of(records: &[Record]) -> Summary {
        let n = records.len() as f64;
        let mean = |f: &dyn Fn(&Record) -> f64| records.iter().map(f).sum::<f64>() / n;
        let blocks = |r: &Record| r.blocks as f64;
        let flops = |r: &Record| r.flops;
        let block_mean = mean(&blocks);
        let flops_mean = mean(&flops);
        let squares = |f: &dyn Fn(&Record) -> f64, m: f64| {
            records.iter().map(|r| (f(r) - m).powi(2)).sum::<f64>()
        };
        let policies: HashSet<&[bool]> = records.iter().map(|r| r.keep.as_slice()).collect();
        Summary {
            images: records.len(),
            accuracy: mean(&|r| r.correct as u8 as f64),
            block_usage_mean: block_mean,
            block_usage_std: (squares(&blocks, block_mean) / (n - 1.0)).sqrt(),
            flops_mean,
            flops_std: (squares(&flops, flops_mean) / n).sqrt(),
            unique_policies: policies.len(),
        }
    }
}

/// Python's `'%.3f'` (NaN as `nan`).
fn fixed3(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        format!("{x:.3}")
    }
}

/// Python's `'%.2E'`: two decimals, a signed exponent of at least two digits (`1.81E+08`).
pub fn sci2(x: f64) -> String {
    if x.is_nan() {
        return "NAN".into();
    }
    let s = format!("{x:.2E}");
    let (mantissa, exponent) = s.split_once('E').unwrap_or((&s, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}E{sign}{:02}", exponent.abs())
}

impl fmt::Display for Summary {
    /// The four lines of the reference's `test.py`, exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Accuracy: {}", fixed3(self.accuracy))?;
        writeln!(
            f,
            "Block Usage: {} \u{b1} {}",
            fixed3(self.block_usage_mean),
            fixed3(self.block_usage_std)
        )?;
        writeln!(
            f,
            "FLOPs/img: {} \u{b1} {}",
            sci2(self.flops_mean),
            sci2(self.flops_std)
        )?;
        write!(f, "Unique Policies: {}", self.unique_policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scientific_format_matches_python() {
        assert_eq!(sci2(1.81e8), "1.81E+08");
        assert_eq!(sci2(3.4349e7), "3.43E+07");
        assert_eq!(sci2(1.25e10), "1.25E+10");
        assert_eq!(sci2(0.0), "0.00E+00");
        assert_eq!(sci2(4.2e-3), "4.20E-03");
    }

    #[test]
    fn summary_uses_sample_std_for_blocks_and_population_std_for_flops() {
        let record = |blocks: u32, flops: f64, keep: Vec<bool>| Record {
            index: 0,
            label: 0,
            pred: 0,
            correct: blocks == 1,
            keep,
            blocks,
            flops,
            probs: vec![],
            logits: None,
        };
        let s = Summary::of(&[
            record(1, 1.0, vec![true, false]),
            record(2, 3.0, vec![true, true]),
        ]);
        assert_eq!(s.block_usage_std, (0.5f64).sqrt());
        assert_eq!(s.flops_std, 1.0);
        assert_eq!(s.unique_policies, 2);
        assert_eq!(s.to_string().lines().next(), Some("Accuracy: 0.500"));
    }
}
