//! The runs a sweep scores: each scenario (a threshold, FirstK, Random, a static policy) is
//! a keep decision per image, run through the base network with its blocks skipped.

use candle_core::Device;

use super::{ChosenSubsets, Method, TradeoffOptions, TradeoffPoint};
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::adaptivity::{StaticKind, StaticRun};
use crate::eval::baselines;
use crate::exec::forward_batch;
use crate::model::blockdrop::{kept_blocks, policy_bits};
use crate::model::{BlockDrop, BlockDropFlops};
use crate::stats::argmax;

/// A deterministic coin per (seed, image, block), uniform in [0, 1).
pub(super) fn coin(seed: u64, image: usize, block: usize) -> f64 {
    let z = crate::rng::mix64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add((image as u64) << 20)
            .wrapping_add(block as u64),
    );
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A way of choosing each image's blocks.
pub(super) struct Scenario {
    pub(super) method: Method,
    pub(super) parameter: f64,
    pub(super) seed: Option<u64>,
    pub(super) include_policy_flops: bool,
    /// Every image's policy; a static baseline has one for all.
    pub(super) keep: Keep,
}

pub(super) enum Keep {
    PerImage(Vec<Vec<bool>>),
    Fixed(Vec<bool>),
}

impl Scenario {
    pub(super) fn fixed(method: Method, policy: Vec<bool>) -> Scenario {
        Scenario {
            method,
            parameter: kept_blocks(&policy) as f64,
            seed: None,
            include_policy_flops: false,
            keep: Keep::Fixed(policy),
        }
    }

    /// The policies of images `range` (positions in the scored images).
    fn policies(&self, range: std::ops::Range<usize>) -> Vec<Vec<bool>> {
        match &self.keep {
            Keep::PerImage(keep) => keep[range].to_vec(),
            Keep::Fixed(policy) => vec![policy.clone(); range.len()],
        }
    }

    fn policy_of(&self, image: usize) -> &[bool] {
        match &self.keep {
            Keep::PerImage(keep) => &keep[image],
            Keep::Fixed(policy) => policy,
        }
    }
}

/// The static baselines: the model's most frequent policies in `learned_keep`, the best
/// subsets, and the full network.
pub(super) fn static_scenarios(
    learned_keep: &[Vec<bool>],
    subsets: &ChosenSubsets,
    used: usize,
) -> Vec<Scenario> {
    let blocks = learned_keep.first().map_or(0, Vec::len);
    baselines::used_policies(learned_keep, used)
        .into_iter()
        .map(|(policy, _)| Scenario::fixed(Method::UsedPolicy, policy))
        .chain(
            subsets
                .subsets
                .iter()
                .map(|s| Scenario::fixed(Method::BestSubset, s.clone())),
        )
        .chain([Scenario::fixed(Method::Full, vec![true; blocks])])
        .collect()
}

/// The static scenarios' outcomes as the adaptivity's input.
pub(super) fn static_runs(
    scenarios: &[Scenario],
    correct: &[Vec<bool>],
    learned_keep: &[Vec<bool>],
) -> Vec<StaticRun> {
    scenarios
        .iter()
        .zip(correct)
        .map(|(s, correct)| {
            let policy = s.policy_of(0).to_vec();
            let kind = match s.method {
                Method::UsedPolicy => StaticKind::Used {
                    images: learned_keep.iter().filter(|k| **k == policy).count(),
                },
                Method::Full => StaticKind::Full,
                _ => StaticKind::BestSubset,
            };
            StaticRun {
                kind,
                policy,
                correct: correct.clone(),
            }
        })
        .collect()
}

/// A scenario's point from its per-image outcomes.
pub(super) fn point(s: &Scenario, correct: &[bool], flops: &BlockDropFlops) -> TradeoffPoint {
    let n = correct.len().max(1) as f64;
    let (mut blocks, mut base) = (0usize, 0f64);
    let mut kept = vec![0usize; flops.base.blocks.len()];
    for i in 0..correct.len() {
        let keep = s.policy_of(i);
        blocks += kept_blocks(keep);
        base += flops.base.with_policy(keep) as f64;
        for (count, &k) in kept.iter_mut().zip(keep) {
            *count += k as usize;
        }
    }
    let policy = if s.include_policy_flops {
        flops.policy as f64 * correct.len() as f64
    } else {
        0.0
    };
    TradeoffPoint {
        method: s.method,
        parameter: s.parameter,
        policy: match &s.keep {
            Keep::Fixed(p) => Some(p.clone()),
            Keep::PerImage(_) => None,
        },
        seed: s.seed,
        accuracy: correct.iter().filter(|&&c| c).count() as f64 / n,
        mean_blocks: blocks as f64 / n,
        mean_flops: (base + policy) / n,
        keep_rates: kept.iter().map(|&c| c as f64 / n).collect(),
        runs_policy: s.include_policy_flops,
    }
}

/// The policy at each threshold, and FirstK and Random at the policy's (rounded) mean block
/// budgets, for images whose keep probabilities are `probs` (the full network is among
/// [`static_scenarios`]).
pub(super) fn scenarios(
    probs: &[Vec<f32>],
    blocks: usize,
    options: &TradeoffOptions,
) -> Vec<Scenario> {
    let n = probs.len();
    let mut scenarios: Vec<Scenario> = options
        .thresholds
        .iter()
        .map(|&t| Scenario {
            method: Method::BlockDrop,
            parameter: t as f64,
            seed: None,
            include_policy_flops: true,
            keep: Keep::PerImage(policy_bits(probs, t)),
        })
        .collect();
    let mut budgets: Vec<usize> = scenarios
        .iter()
        .map(|s| {
            let kept: usize = (0..n).map(|i| kept_blocks(s.policy_of(i))).sum();
            (kept as f64 / n as f64).round() as usize
        })
        .collect();
    budgets.sort_unstable();
    budgets.dedup();
    if !options.matched_baselines {
        budgets.clear();
    }
    for &k in &budgets {
        let mut first_k = Scenario::fixed(Method::FirstK, (0..blocks).map(|b| b < k).collect());
        first_k.parameter = k as f64;
        scenarios.push(first_k);
        for seed in 0..options.random_seeds {
            let p = k as f64 / blocks as f64;
            scenarios.push(Scenario {
                method: Method::Random,
                parameter: k as f64,
                seed: Some(seed),
                include_policy_flops: false,
                keep: Keep::PerImage(
                    (0..n)
                        .map(|i| (0..blocks).map(|b| coin(seed, i, b) < p).collect())
                        .collect(),
                ),
            });
        }
    }
    scenarios
}

/// Which images each scenario classifies correctly: each batch of `indices` is prepared once
/// and run under every scenario's policies.
pub(super) fn score(
    model: &BlockDrop,
    dataset: &Dataset,
    indices: &[usize],
    scenarios: &[Scenario],
    batch: usize,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Vec<bool>>> {
    let labels = dataset.labels();
    let mut correct = vec![Vec::with_capacity(indices.len()); scenarios.len()];
    let total_work = indices.len() * scenarios.len();
    let mut start = 0;
    for chunk in indices.chunks(batch) {
        let x = dataset.batch(chunk, &model.config, device)?;
        for (s, scenario) in scenarios.iter().enumerate() {
            let keep = scenario.policies(start..start + chunk.len());
            let logits = forward_batch(&model.resnet, &x, &keep)?.to_vec2::<f32>()?;
            correct[s].extend(
                logits
                    .iter()
                    .zip(chunk)
                    .map(|(l, &i)| argmax(l) == labels[i]),
            );
        }
        start += chunk.len();
        progress(start * scenarios.len(), total_work);
        crate::cancel::check()?;
    }
    Ok(correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coins_are_uniform_enough_and_repeatable() {
        let mean = (0..10_000).map(|i| coin(3, i, 7)).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_eq!(coin(1, 2, 3), coin(1, 2, 3));
        assert_ne!(coin(1, 2, 3), coin(2, 2, 3));
    }
}
