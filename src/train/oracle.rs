//! Oracle-guided warm start (ours, `train curriculum --oracle-warm-start E`; docs/method.md,
//! "Oracle-guided warm start"): before REINFORCE, the policy network learns, per training
//! image, the cheapest of a ladder of nested static subsets from which the frozen base stays
//! right, by cross-entropy over the blocks.
//!
//! The ladder is the best static subsets at every budget (backward elimination, the static
//! baselines' search), chosen on training images only, then the full network.

use candle_core::{Device, Tensor};

use crate::data::Dataset;
use crate::error::Result;
use crate::eval::baselines::best_subsets;
use crate::exec::forward_batch;
use crate::model::{BlockDrop, FlatResNet};
use crate::train::policy::{PolicyOptions, Step};
use crate::train::reward::{self, keep_tensor};

/// Training images the ladder is chosen on, spread evenly over the training split.
pub const DEFAULT_LADDER_IMAGES: usize = 512;
/// Images per batch in the ladder's search.
const SEARCH_BATCH: usize = 128;

/// Nested subsets from one kept block to all of them: `ladder[k - 1]` keeps `k` blocks.
#[derive(Debug, Clone)]
pub struct Ladder(Vec<Vec<bool>>);

impl Ladder {
    /// The best static subsets of `model`'s base (BatchNorm folded or in eval mode) at each
    /// budget, chosen on `images` images of `train`, then every block. Reports
    /// `progress(done, total)` as the search goes.
    pub fn choose(
        model: &BlockDrop,
        train: &Dataset,
        images: usize,
        device: &Device,
        progress: impl FnMut(usize, usize),
    ) -> Result<Self> {
        let mut rungs = best_subsets(model, train, images, SEARCH_BATCH, device, progress)?;
        rungs.push(vec![true; model.num_blocks()]);
        Ok(Self(rungs))
    }

    /// A ladder of the given rungs (nested, the last keeping every block).
    pub fn new(rungs: Vec<Vec<bool>>) -> Self {
        Self(rungs)
    }

    pub fn rungs(&self) -> &[Vec<bool>] {
        &self.0
    }

    /// Per image of `x`, the lowest rung from which `base` is right on every rung above
    /// (the top rung when the full network is wrong), then `margin` rungs higher (at most the
    /// top), with whether that rung is right. Stable rather than the cheapest right rung: a
    /// small subset right by chance on one image, wrong on the rungs above it, is no sign the
    /// image is easy.
    pub fn targets(
        &self,
        base: &FlatResNet,
        x: &Tensor,
        labels: &[u32],
        margin: usize,
    ) -> Result<Vec<(usize, bool)>> {
        let n = labels.len();
        let top = self.0.len() - 1;
        let mut target: Vec<(usize, bool)> = vec![(top, false); n];
        let mut settled = vec![false; n];
        for (rung, keep) in self.0.iter().enumerate().rev() {
            if settled.iter().all(|&s| s) {
                break;
            }
            let logits = forward_batch(base, x, &vec![keep.clone(); n])?;
            let correct = reward::correct(&logits, labels)?;
            for i in 0..n {
                if settled[i] {
                    continue;
                }
                if correct[i] {
                    target[i] = (rung, true);
                } else {
                    settled[i] = true;
                }
            }
        }
        for t in &mut target {
            // Every rung above a right target is right too.
            t.0 = t.0.saturating_add(margin).min(top);
        }
        Ok(target)
    }
}

/// One warm-start batch: bounded keep probabilities p' (agent in train mode) against the
/// ladder's targets, loss `Σ_k −[t_k log p'_k + (1 − t_k) log(1 − p'_k)] / N`. The reported outcome is
/// the targets' (their blocks, rightness and reward).
pub fn step(
    model: &BlockDrop,
    base: &FlatResNet,
    ladder: &Ladder,
    x: &Tensor,
    labels: &[u32],
    options: &PolicyOptions,
) -> Result<Step> {
    let targets = ladder.targets(base, x, labels, options.oracle_margin)?;
    let keep: Vec<Vec<bool>> = targets
        .iter()
        .map(|&(rung, _)| ladder.rungs()[rung].clone())
        .collect();
    let target = keep_tensor(&keep, x.device())?;
    let probs = model.policy()?.keep_probs(x, true)?;
    // On the bounded p' of REINFORCE (never 0 or 1, so the log stays finite in f32; the
    // greedy policy's p ≥ ½ is p' ≥ ½): the same parameter the later epochs move.
    let p_bounded = reward::bounded(&probs, options.alpha)?;
    let loss = (reward::log_prob(&p_bounded, &target)?.sum_all()?.neg()? / labels.len() as f64)?;
    let correct: Vec<bool> = targets.iter().map(|&(_, right)| right).collect();
    let sampled_reward = reward::reward(&correct, &target, &options.cost, options.penalty)?;
    Ok(Step {
        loss,
        sampled: target,
        correct,
        sampled_reward,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use candle_nn::VarMap;

    /// The target is the lowest rung from which every rung above is right, whatever a lower
    /// rung says; an image the full network gets wrong targets the top rung.
    #[test]
    fn targets_are_the_lowest_rung_with_every_rung_above_right() {
        let config = Config::by_name("R32_FMNIST").unwrap();
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = crate::train::init::seeded(&varmap, 3, &device);
        let model = BlockDrop::new(&config, vb).unwrap();
        let k = model.num_blocks();
        let ladder = Ladder((1..=k).map(|r| (0..k).map(|b| b < r).collect()).collect());
        let x = Tensor::randn(0f32, 1.0, (6, 1, 28, 28), &device).unwrap();
        // The labels each rung predicts, by running the rungs themselves.
        let predicted: Vec<Vec<u32>> = ladder
            .rungs()
            .iter()
            .map(|keep| {
                let logits = forward_batch(&model.resnet, &x, &vec![keep.clone(); 6]).unwrap();
                logits.argmax(1).unwrap().to_vec1::<u32>().unwrap()
            })
            .collect();
        let labels: Vec<u32> = predicted[k - 1].clone();
        let targets = ladder.targets(&model.resnet, &x, &labels, 0).unwrap();
        for (i, &(rung, right)) in targets.iter().enumerate() {
            assert!(right);
            assert!((rung..k).all(|r| predicted[r][i] == labels[i]), "image {i}");
            assert!(
                rung == 0 || predicted[rung - 1][i] != labels[i],
                "image {i}"
            );
        }
        // A margin moves every target up as many rungs, never past the top.
        let raised = ladder.targets(&model.resnet, &x, &labels, 2).unwrap();
        for (t, r) in targets.iter().zip(&raised) {
            assert_eq!(r.0, (t.0 + 2).min(k - 1));
            assert!(r.1);
        }
        let wrong: Vec<u32> = labels.iter().map(|&l| (l + 1) % 10).collect();
        let targets = ladder.targets(&model.resnet, &x, &wrong, 1).unwrap();
        assert!(targets.iter().all(|&t| t == (k - 1, false)));
    }
}
