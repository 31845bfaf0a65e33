//! Static baselines: one fixed subset of blocks run on every image. The model's own most
//! frequent policies, and a best subset at each budget, chosen greedily on a split other than
//! the one reported (docs/method.md, "Adaptivity").

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::blockdrop::{kept_blocks, policy_string};
use crate::model::{BlockDrop, BlockDropFlops};
use crate::stats::argmax;

/// The model's most frequent policies that become static baselines.
pub const MAX_USED_POLICIES: usize = 8;
/// Images `eval` measures the static baselines and the adaptivity gain on (the first ones).
pub const ADAPTIVITY_IMAGES: usize = 1000;
/// Images of the selection split the greedy search scores each candidate on.
pub const SELECTION_IMAGES: usize = 128;
/// Above this many FLOPs the best-subset search is skipped unless asked for explicitly: the
/// search grows with the cube of the block count (R32: 0.6 TFLOP on 128 images; R110: about 33;
/// R101 on ImageNet: ~370).
pub const SEARCH_FLOP_BUDGET: f64 = 2e12;
/// The prefix activations the greedy search keeps per batch stay under this many bytes.
const PREFIX_BUDGET_BYTES: usize = 256 << 20;

/// Where the best static subsets are chosen: a split that is not the one reported, or why
/// there is none (then only the model's own policies and the full network are baselines).
pub enum Selection<'a> {
    Split(&'a Dataset),
    Unavailable(String),
}

impl<'a> Selection<'a> {
    /// `selection` for a report on `reported`, refused when it is the same split of the same
    /// data: subsets chosen on the images they are scored on would flatter the baseline.
    pub fn new(reported: &Dataset, selection: &'a Dataset) -> Result<Self> {
        if selection.split == reported.split && selection.path == reported.path {
            return Err(Error::BadUsage(format!(
                "the best static subsets must be chosen on another split than the reported {} split of {}",
                reported.split,
                reported.path.display()
            )));
        }
        Ok(Selection::Split(selection))
    }
}

impl<'a> Selection<'a> {
    /// The selection for `reported` from `crate::study::selection_split`'s answer.
    pub fn of(reported: &Dataset, other: &'a std::result::Result<Dataset, String>) -> Result<Self> {
        match other {
            Ok(data) => Selection::new(reported, data),
            Err(why) => Ok(Selection::Unavailable(why.clone())),
        }
    }
}

/// The `max` most frequent policies in `keep`, with how many images use each; ties go to
/// fewer blocks, then the policy string.
pub fn used_policies(keep: &[Vec<bool>], max: usize) -> Vec<(Vec<bool>, usize)> {
    let mut counts: HashMap<&[bool], usize> = HashMap::new();
    for k in keep {
        *counts.entry(k.as_slice()).or_default() += 1;
    }
    let mut used: Vec<(Vec<bool>, usize)> =
        counts.into_iter().map(|(k, c)| (k.to_vec(), c)).collect();
    used.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(kept_blocks(&a.0).cmp(&kept_blocks(&b.0)))
            .then(policy_string(&a.0).cmp(&policy_string(&b.0)))
    });
    used.truncate(max);
    used
}

/// The FLOPs [`best_subsets`] spends on `images` images: each step runs the blocks kept so
/// far once, and each candidate from its block onwards (blocks at their mean FLOPs).
pub fn search_flops(model: &BlockDrop, images: usize) -> f64 {
    let flops = BlockDropFlops::of(model);
    let blocks = flops.base.blocks.len();
    let mean_block = flops.base.blocks.iter().sum::<u64>() as f64 / blocks.max(1) as f64;
    let block_runs: usize = (2..=blocks).map(|k| k + k * (k - 1) / 2).sum();
    images as f64 * block_runs as f64 * mean_block
}

/// `count` indices spread evenly over `0..len` (all of them when `count >= len`), so a
/// split stored class by class is still sampled across its classes.
pub fn spread(len: usize, count: usize) -> Vec<usize> {
    if count >= len {
        return (0..len).collect();
    }
    (0..count).map(|i| i * len / count).collect()
}

/// The best static subsets found by backward elimination: starting from the full network,
/// drop the block whose removal leaves the most images of `selection` correct (ties: the
/// higher summed log-probability of the true labels, then the block with more FLOPs, then
/// the later one), and repeat. Returns one subset per budget,
/// `result[k - 1]` keeping `k` blocks, for k = 1..K-1. Calls `progress(done, total)` per step.
pub fn best_subsets(
    model: &BlockDrop,
    selection: &Dataset,
    images: usize,
    batch: usize,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Vec<bool>>> {
    let net = &model.resnet;
    let blocks = model.num_blocks();
    let indices = spread(selection.len(), images);
    if indices.is_empty() || batch == 0 {
        return Err(Error::bad_input(
            &selection.path,
            format!(
                "the {} split has no images to choose static subsets on",
                selection.split
            ),
        ));
    }
    let classes = model.config.classes();
    if let Some(&i) = indices
        .iter()
        .find(|&&i| selection.labels()[i] as usize >= classes)
    {
        return Err(Error::bad_input(
            selection.image_path(i),
            format!(
                "image {i} of the {} split has label {}; config {} has {classes} classes",
                selection.split,
                selection.labels()[i],
                model.config.name
            ),
        ));
    }
    let batch = prefix_batch(model, selection, &indices, batch, device)?;
    let inputs = indices
        .chunks(batch)
        .map(|chunk| selection.batch(chunk, &model.config, device))
        .collect::<Result<Vec<Tensor>>>()?;
    let labels: Vec<u32> = indices.iter().map(|&i| selection.labels()[i]).collect();
    let flops = BlockDropFlops::of(model);
    let mut current = vec![true; blocks];
    let mut subsets = Vec::with_capacity(blocks.saturating_sub(1));
    let total: usize = (2..=blocks).sum::<usize>() * indices.len();
    let mut done = 0;
    for _ in 1..blocks {
        let mut correct = vec![0usize; blocks];
        let mut likelihood = vec![0f64; blocks];
        for (x, labels) in inputs.iter().zip(labels.chunks(batch)) {
            // What enters each block under `current`, computed once for every candidate.
            let mut entering = Vec::with_capacity(blocks);
            let mut h = net.stem(x, false)?;
            for (k, &kept) in current.iter().enumerate() {
                let next = step(model, k, kept, &h)?;
                entering.push(h);
                h = next;
            }
            for b in (0..blocks).filter(|&b| current[b]) {
                let mut h = net.residual(b, &entering[b], false)?;
                for (k, &kept) in current.iter().enumerate().skip(b + 1) {
                    h = step(model, k, kept, &h)?;
                }
                let logits = net.head(&h)?.to_vec2::<f32>()?;
                for (l, &label) in logits.iter().zip(labels) {
                    correct[b] += (argmax(l) == label) as usize;
                    likelihood[b] += log_probability(l, label as usize);
                }
            }
            crate::cancel::check()?;
        }
        let saving = |b: usize| {
            let mut without = current.clone();
            without[b] = false;
            flops.base.with_policy(&current) - flops.base.with_policy(&without)
        };
        let drop = (0..blocks)
            .filter(|&b| current[b])
            .max_by(|&a, &b| {
                correct[a]
                    .cmp(&correct[b])
                    .then(likelihood[a].total_cmp(&likelihood[b]))
                    .then(saving(a).cmp(&saving(b)))
                    .then(a.cmp(&b))
            })
            .expect("a budget above one block has a block to drop");
        done += kept_blocks(&current) * indices.len();
        current[drop] = false;
        subsets.push(current.clone());
        progress(done, total);
    }
    subsets.reverse();
    Ok(subsets)
}

/// log softmax(`logits`)[`label`], computed stably.
fn log_probability(logits: &[f32], label: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logits
        .get(label)
        .map_or(f64::NEG_INFINITY, |&l| l as f64 - max - sum.ln())
}

/// Block `k` on `h`: run when kept, its residual (shortcut or identity) when dropped.
fn step(model: &BlockDrop, k: usize, kept: bool, h: &Tensor) -> Result<Tensor> {
    Ok(if kept {
        model.resnet.run_block(k, h, false)?
    } else {
        model.resnet.residual(k, h, false)?
    })
}

/// A batch size at most `batch` whose prefix activations (one per block) stay within
/// [`PREFIX_BUDGET_BYTES`], measured from one image's stem output.
fn prefix_batch(
    model: &BlockDrop,
    selection: &Dataset,
    indices: &[usize],
    batch: usize,
    device: &Device,
) -> Result<usize> {
    let one = selection.batch(&indices[..1], &model.config, device)?;
    let per_image = model.resnet.stem(&one, false)?.elem_count() * 4 * model.num_blocks();
    Ok((PREFIX_BUDGET_BYTES / per_image.max(1)).clamp(1, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probabilities_are_stable_and_sum_to_one() {
        let logits = [1000.0f32, 999.0, -5.0];
        let total: f64 = (0..3).map(|i| log_probability(&logits, i).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        assert!(log_probability(&logits, 0).is_finite());
    }

    #[test]
    fn spread_covers_the_split_evenly() {
        assert_eq!(spread(10, 4), vec![0, 2, 5, 7]);
        assert_eq!(spread(3, 5), vec![0, 1, 2]);
        assert!(spread(0, 5).is_empty());
    }

    #[test]
    fn used_policies_are_the_most_frequent_first() {
        let a = vec![true, false];
        let b = vec![false, true];
        let c = vec![true, true];
        let keep = vec![
            c.clone(),
            a.clone(),
            b.clone(),
            a.clone(),
            b.clone(),
            c.clone(),
        ];
        let used = used_policies(&keep, 2);
        // Three policies used twice each: fewer blocks first, then by string.
        assert_eq!(used, vec![(b, 2), (a, 2)]);
    }
}
