//! Accuracy against FLOPs: the learned policy at a sweep of thresholds, the paper's
//! baselines at matched budgets — FirstK (the first k blocks only) and Random (each block
//! kept with probability k/K, several seeds) — and the full network.

use candle_core::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::forward_batch;
use crate::model::blockdrop::policy_bits;
use crate::model::{BlockDrop, BlockDropFlops};

#[derive(Debug, Clone)]
pub struct TradeoffOptions {
    pub thresholds: Vec<f32>,
    /// Seeds of the Random baseline per budget.
    pub random_seeds: u64,
    /// Use only the first N images.
    pub limit: Option<usize>,
    pub batch: usize,
}

impl Default for TradeoffOptions {
    fn default() -> Self {
        Self {
            thresholds: vec![0.1, 0.3, 0.5, 0.7, 0.9],
            random_seeds: 2,
            limit: None,
            batch: 64,
        }
    }
}

/// One point of the trade-off.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeoffPoint {
    /// `BlockDrop`, `FirstK`, `Random` or `Full`.
    pub method: &'static str,
    /// The threshold (BlockDrop), k (FirstK, Random) or K (Full).
    pub parameter: f64,
    /// The Random baseline's seed.
    pub seed: Option<u64>,
    pub accuracy: f64,
    pub mean_blocks: f64,
    /// Mean FLOPs per image; BlockDrop points include the policy network.
    pub mean_flops: f64,
}

/// A deterministic coin per (seed, image, block): SplitMix64, no RNG crate needed.
fn coin(seed: u64, image: usize, block: usize) -> f64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((image as u64) << 20)
        .wrapping_add(block as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A way of choosing each image's blocks.
struct Scenario {
    method: &'static str,
    parameter: f64,
    seed: Option<u64>,
    include_policy_flops: bool,
    keep: Vec<Vec<bool>>,
}

pub fn tradeoff(
    model: &BlockDrop,
    dataset: &Dataset,
    options: &TradeoffOptions,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<TradeoffPoint>> {
    let n = options
        .limit
        .map_or(dataset.len(), |l| l.min(dataset.len()));
    if n == 0 || options.batch == 0 {
        return Err(Error::BadUsage(
            "the trade-off needs at least one image and a batch of at least 1".into(),
        ));
    }
    let blocks = model.num_blocks();
    let indices: Vec<usize> = (0..n).collect();
    let mut probs = Vec::with_capacity(n);
    for chunk in indices.chunks(options.batch) {
        let x = dataset.batch(chunk, &model.config, device)?;
        probs.extend(model.agent.keep_probs(&x, false)?.to_vec2::<f32>()?);
    }

    let mut scenarios: Vec<Scenario> = options
        .thresholds
        .iter()
        .map(|&t| Scenario {
            method: "BlockDrop",
            parameter: t as f64,
            seed: None,
            include_policy_flops: true,
            keep: policy_bits(&probs, t),
        })
        .collect();
    let mut budgets: Vec<usize> = scenarios
        .iter()
        .map(|s| {
            let kept: usize = s
                .keep
                .iter()
                .map(|k| k.iter().filter(|&&b| b).count())
                .sum();
            (kept as f64 / n as f64).round() as usize
        })
        .collect();
    budgets.sort_unstable();
    budgets.dedup();
    for &k in &budgets {
        scenarios.push(Scenario {
            method: "FirstK",
            parameter: k as f64,
            seed: None,
            include_policy_flops: false,
            keep: vec![(0..blocks).map(|b| b < k).collect(); n],
        });
        for seed in 0..options.random_seeds {
            let p = k as f64 / blocks as f64;
            scenarios.push(Scenario {
                method: "Random",
                parameter: k as f64,
                seed: Some(seed),
                include_policy_flops: false,
                keep: (0..n)
                    .map(|i| (0..blocks).map(|b| coin(seed, i, b) < p).collect())
                    .collect(),
            });
        }
    }
    scenarios.push(Scenario {
        method: "Full",
        parameter: blocks as f64,
        seed: None,
        include_policy_flops: false,
        keep: vec![vec![true; blocks]; n],
    });

    let flops = BlockDropFlops::for_config(&model.config);
    let labels = dataset.labels();
    let mut correct = vec![0usize; scenarios.len()];
    let total_work = n * scenarios.len();
    for (c, chunk) in indices.chunks(options.batch).enumerate() {
        let x = dataset.batch(chunk, &model.config, device)?;
        for (s, scenario) in scenarios.iter().enumerate() {
            let keep = &scenario.keep[chunk[0]..chunk[0] + chunk.len()];
            let logits = forward_batch(&model.resnet, &x, keep)?.to_vec2::<f32>()?;
            correct[s] += logits
                .iter()
                .zip(chunk)
                .filter(|(l, &i)| crate::eval::argmax(l) == labels[i])
                .count();
        }
        progress(
            (c * options.batch + chunk.len()) * scenarios.len(),
            total_work,
        );
        crate::cancel::check()?;
    }
    Ok(scenarios
        .iter()
        .zip(correct)
        .map(|(s, correct)| {
            let kept: usize = s
                .keep
                .iter()
                .map(|k| k.iter().filter(|&&b| b).count())
                .sum();
            let base: f64 = s
                .keep
                .iter()
                .map(|k| flops.base.with_policy(k) as f64)
                .sum();
            let policy = if s.include_policy_flops {
                flops.policy as f64 * n as f64
            } else {
                0.0
            };
            TradeoffPoint {
                method: s.method,
                parameter: s.parameter,
                seed: s.seed,
                accuracy: correct as f64 / n as f64,
                mean_blocks: kept as f64 / n as f64,
                mean_flops: (base + policy) / n as f64,
            }
        })
        .collect())
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
