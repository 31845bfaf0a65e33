//! Accuracy against FLOPs: the learned policy at a sweep of thresholds, the paper's
//! baselines at matched budgets — FirstK (the first k blocks only) and Random (each block
//! kept with probability k/K, several seeds) — and the full network.

use candle_core::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::forward_batch;
use crate::model::blockdrop::{kept_blocks, policy_bits};
use crate::model::{BlockDrop, BlockDropFlops};
use crate::stats::argmax;

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

/// How a trade-off point chooses each image's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The learned policy at one threshold.
    BlockDrop,
    /// The first k blocks only.
    FirstK,
    /// Each block kept with probability k/K.
    Random,
    /// Every block.
    Full,
}

impl Method {
    /// The name in `tradeoff.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Method::BlockDrop => "BlockDrop",
            Method::FirstK => "FirstK",
            Method::Random => "Random",
            Method::Full => "Full",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One point of the trade-off.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeoffPoint {
    pub method: Method,
    /// The threshold (BlockDrop), k (FirstK, Random) or K (Full).
    pub parameter: f64,
    /// The Random baseline's seed.
    pub seed: Option<u64>,
    pub accuracy: f64,
    pub mean_blocks: f64,
    /// Mean FLOPs per image; BlockDrop points include the policy network.
    pub mean_flops: f64,
}

/// One method's points as (mean MFLOPs per image, accuracy), by FLOPs: a chart's series.
pub fn series(points: &[TradeoffPoint], method: Method) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.method == method)
        .map(|p| (p.mean_flops / 1e6, p.accuracy))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// A deterministic coin per (seed, image, block), uniform in [0, 1).
fn coin(seed: u64, image: usize, block: usize) -> f64 {
    let z = crate::rng::mix64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add((image as u64) << 20)
            .wrapping_add(block as u64),
    );
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A way of choosing each image's blocks.
struct Scenario {
    method: Method,
    parameter: f64,
    seed: Option<u64>,
    include_policy_flops: bool,
    keep: Vec<Vec<bool>>,
}

impl Scenario {
    fn kept(&self) -> usize {
        self.keep.iter().map(|k| kept_blocks(k)).sum()
    }
}

/// Accuracy against FLOPs on the first `options.limit` images: every scenario of
/// [`scenarios`], each scored by running the base network with its blocks skipped.
pub fn tradeoff(
    model: &BlockDrop,
    dataset: &Dataset,
    options: &TradeoffOptions,
    device: &Device,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<TradeoffPoint>> {
    let n = options
        .limit
        .map_or(dataset.len(), |l| l.min(dataset.len()));
    if n == 0 || options.batch == 0 {
        return Err(Error::BadUsage(
            "the trade-off needs at least one image and a batch of at least 1".into(),
        ));
    }
    let indices: Vec<usize> = (0..n).collect();
    let mut probs = Vec::with_capacity(n);
    for chunk in indices.chunks(options.batch) {
        let x = dataset.batch(chunk, &model.config, device)?;
        probs.extend(model.agent.keep_probs(&x, false)?.to_vec2::<f32>()?);
    }
    let scenarios = scenarios(&probs, model.num_blocks(), options);
    let correct = score(model, dataset, &scenarios, options.batch, device, progress)?;
    let flops = BlockDropFlops::for_config(&model.config);
    Ok(scenarios
        .iter()
        .zip(correct)
        .map(|(s, correct)| {
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
                mean_blocks: s.kept() as f64 / n as f64,
                mean_flops: (base + policy) / n as f64,
            }
        })
        .collect())
}

/// The policy at each threshold, FirstK and Random at the policy's (rounded) mean block
/// budgets, and the full network, for images whose keep probabilities are `probs`.
fn scenarios(probs: &[Vec<f32>], blocks: usize, options: &TradeoffOptions) -> Vec<Scenario> {
    let n = probs.len();
    let mut scenarios: Vec<Scenario> = options
        .thresholds
        .iter()
        .map(|&t| Scenario {
            method: Method::BlockDrop,
            parameter: t as f64,
            seed: None,
            include_policy_flops: true,
            keep: policy_bits(probs, t),
        })
        .collect();
    let mut budgets: Vec<usize> = scenarios
        .iter()
        .map(|s| (s.kept() as f64 / n as f64).round() as usize)
        .collect();
    budgets.sort_unstable();
    budgets.dedup();
    for &k in &budgets {
        scenarios.push(Scenario {
            method: Method::FirstK,
            parameter: k as f64,
            seed: None,
            include_policy_flops: false,
            keep: vec![(0..blocks).map(|b| b < k).collect(); n],
        });
        for seed in 0..options.random_seeds {
            let p = k as f64 / blocks as f64;
            scenarios.push(Scenario {
                method: Method::Random,
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
        method: Method::Full,
        parameter: blocks as f64,
        seed: None,
        include_policy_flops: false,
        keep: vec![vec![true; blocks]; n],
    });
    scenarios
}

/// Correct predictions per scenario: each batch of images is prepared once and run under
/// every scenario's policies.
fn score(
    model: &BlockDrop,
    dataset: &Dataset,
    scenarios: &[Scenario],
    batch: usize,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<usize>> {
    let n = scenarios.first().map_or(0, |s| s.keep.len());
    let labels = dataset.labels();
    let indices: Vec<usize> = (0..n).collect();
    let mut correct = vec![0usize; scenarios.len()];
    let total_work = n * scenarios.len();
    for (c, chunk) in indices.chunks(batch).enumerate() {
        let x = dataset.batch(chunk, &model.config, device)?;
        for (s, scenario) in scenarios.iter().enumerate() {
            let keep = &scenario.keep[chunk[0]..chunk[0] + chunk.len()];
            let logits = forward_batch(&model.resnet, &x, keep)?.to_vec2::<f32>()?;
            correct[s] += logits
                .iter()
                .zip(chunk)
                .filter(|(l, &i)| argmax(l) == labels[i])
                .count();
        }
        progress((c * batch + chunk.len()) * scenarios.len(), total_work);
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
