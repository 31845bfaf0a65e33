//! Stage 1: the policy network with REINFORCE over a curriculum, base network frozen in eval
//! mode (the reference's `cl_training`). Epoch e trains the last c = min(K, cl_step·(e + 1))
//! decisions; the others are forced to 1 and leave the loss. One bounded Bernoulli sample per
//! image, the greedy policy as the self-critical baseline, an entropy bonus, Adam.
//!
//! The frozen base runs with BatchNorm folded and dropped blocks truly skipped (grouped or
//! gather executor), as at inference: it needs no gradients.

use candle_core::Tensor;

use crate::checkpoint::ModelStage;
use crate::error::Result;
use crate::exec::forward_batch;
use crate::model::{BlockDrop, FlatResNet};
use crate::train::policy::{self, PolicyOptions, Step, Trainer};
use crate::train::reward::{self, bounded, force_first, greedy, keep_bits, sample};
use crate::train::run::Run;
use crate::train::{load_model_file, LoopDefaults, Progress, Setting, DEFAULT_LR_DECAY_RATIO};

/// The reference's curriculum: Adam at lr 1e-3, batch 2048, the step schedule never firing,
/// γ = −1; epochs until the curriculum reaches every block, then [`EXTRA_EPOCHS`] more.
pub const BATCH_SIZE: usize = 2048;
pub const LR: f64 = 1e-3;
pub const DEFAULT_PENALTY: f64 = -1.0;
pub const EXTRA_EPOCHS: usize = 5;

/// The loop defaults for a base network of `blocks` blocks, `cl_step` decisions per epoch.
pub fn defaults(blocks: usize, cl_step: usize) -> LoopDefaults {
    LoopDefaults {
        epochs: blocks.div_ceil(cl_step.max(1)) + EXTRA_EPOCHS,
        batch_size: BATCH_SIZE,
        lr: LR,
        epoch_step: Some(policy::REFERENCE_EPOCH_STEP),
    }
}

/// The defaults as `train curriculum --help` states them.
pub fn defaults_help() -> String {
    format!(
        "Defaults (the reference's): Adam lr {LR:e}, batch {BATCH_SIZE}, α {}, β {}, γ {DEFAULT_PENALTY}, \
LR ×{DEFAULT_LR_DECAY_RATIO} every {} epochs; epochs: blocks + {EXTRA_EPOCHS} (the curriculum reaches every block, then {EXTRA_EPOCHS} more).",
        policy::DEFAULT_ALPHA,
        policy::DEFAULT_BETA,
        policy::REFERENCE_EPOCH_STEP
    )
}

/// One curriculum batch: the policy's keep probabilities (agent in train mode), `draw`'s
/// sample from the bounded probabilities, the frozen `base` under the sampled and the greedy
/// policy (first K − `trained` decisions forced to 1), and the loss
/// `(Σ −log P(u)·advantage over trained decisions − β·Σ entropy) / N`.
pub fn step(
    model: &BlockDrop,
    base: &FlatResNet,
    x: &Tensor,
    labels: &[u32],
    trained: usize,
    options: &PolicyOptions,
    draw: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Step> {
    let k = model.num_blocks();
    let probs = model.policy()?.keep_probs(x, true)?;
    let p_bounded = bounded(&probs, options.alpha)?;
    let (sampled, mask) = force_first(&draw(&p_bounded)?, trained)?;
    let (baseline, _) = force_first(&greedy(&probs)?, trained)?;
    let outcome = |policy: &Tensor| -> Result<(Vec<bool>, Vec<f32>)> {
        let logits = forward_batch(base, x, &keep_bits(policy)?)?;
        let correct = reward::correct(&logits, labels)?;
        let rewards = reward::reward(&correct, policy, &options.cost, options.penalty)?;
        Ok((correct, rewards))
    };
    let (correct, sampled_reward) = outcome(&sampled)?;
    let (_, baseline_reward) = outcome(&baseline)?;
    let advantage: Vec<f32> = sampled_reward
        .iter()
        .zip(&baseline_reward)
        .map(|(s, b)| s - b)
        .collect();
    let mask = (trained < k).then_some(&mask);
    let loss = ((reward::policy_gradient_sum(&p_bounded, &sampled, &advantage, mask)?
        - (reward::entropy_sum(&p_bounded)? * options.beta)?)?
        / labels.len() as f64)?;
    Ok(Step {
        loss,
        sampled,
        correct,
        sampled_reward,
    })
}

/// Trains the policy over the frozen base network in `options.init` into `run`.
pub fn train(
    setting: &Setting<PolicyOptions>,
    run: &mut Run,
    progress: &mut dyn Progress,
) -> Result<()> {
    let options = setting.options;
    let trainer = Trainer::start(
        ModelStage::Curriculum,
        setting,
        run,
        &["agent."],
        |varmap| load_model_file(varmap, &options.init, true),
    )?;
    let mut base = trainer.model.resnet.clone();
    base.fold_batchnorm()?;
    let k = trainer.model.num_blocks();
    let trained_at = |epoch: usize| (options.cl_step.max(1) * (epoch + 1)).min(k);
    let forced = |epoch: usize| k - trained_at(epoch);
    trainer.run_epochs(
        setting,
        run,
        progress,
        forced,
        |model, epoch, x, labels, rng| {
            let trained = trained_at(epoch);
            step(model, &base, x, labels, trained, options, |p| {
                sample(p, rng)
            })
        },
    )
}
