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
use crate::train::oracle::{self, Ladder};
use crate::train::policy::{self, PolicyOptions, Step, Trainer};
use crate::train::reward::{self, bounded, force_first, greedy, keep_bits, repeat_rows, sample};
use crate::train::run::Run;
use crate::train::{load_model_file, LoopDefaults, Progress, Setting, DEFAULT_LR_DECAY_RATIO};

/// The reference's curriculum: Adam at lr 1e-3, batch 2048, the step schedule never firing,
/// γ = −1; epochs until the curriculum reaches every block, then [`EXTRA_EPOCHS`] more.
pub const BATCH_SIZE: usize = 2048;
pub const LR: f64 = 1e-3;
pub const DEFAULT_PENALTY: f64 = -1.0;
pub const EXTRA_EPOCHS: usize = 5;

/// The loop defaults for a base network of `blocks` blocks, `cl_step` decisions per epoch,
/// after `warm` epochs of oracle-guided warm start.
pub fn defaults(blocks: usize, cl_step: usize, warm: usize) -> LoopDefaults {
    LoopDefaults {
        epochs: warm + blocks.div_ceil(cl_step.max(1)) + EXTRA_EPOCHS,
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
/// `(Σ −log P(u)·advantage over trained decisions − β·Σ entropy) / N`. With S =
/// `options.samples` above 1, `draw` gets the probabilities stacked S times, the baseline is
/// the leave-one-out mean of the image's samples, and the policy term is divided by S; the
/// outcome reports the first sample.
pub fn step(
    model: &BlockDrop,
    base: &FlatResNet,
    x: &Tensor,
    labels: &[u32],
    trained: usize,
    options: &PolicyOptions,
    draw: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Step> {
    let (k, n, draws) = (model.num_blocks(), labels.len(), options.samples.max(1));
    let probs = model.policy()?.keep_probs(x, true)?;
    let p_bounded = bounded(&probs, options.alpha)?;
    let p_draws = repeat_rows(&p_bounded, draws)?;
    let (sampled, mask) = force_first(&draw(&p_draws)?, trained)?;
    let outcome = |policy: &Tensor, x: &Tensor, labels: &[u32]| -> Result<(Vec<bool>, Vec<f32>)> {
        let logits = forward_batch(base, x, &keep_bits(policy)?)?;
        let correct = reward::correct(&logits, labels)?;
        let rewards = reward::reward(&correct, policy, &options.cost, options.penalty)?;
        Ok((correct, rewards))
    };
    let (correct, sampled_reward, advantage) = if draws == 1 {
        let (baseline, _) = force_first(&greedy(&probs)?, trained)?;
        let (correct, sampled_reward) = outcome(&sampled, x, labels)?;
        let (_, baseline_reward) = outcome(&baseline, x, labels)?;
        let advantage = reward::over_baseline(&sampled_reward, &baseline_reward);
        (correct, sampled_reward, advantage)
    } else {
        let all_labels = labels.repeat(draws);
        let (correct, rewards) = outcome(&sampled, &repeat_rows(x, draws)?, &all_labels)?;
        let advantage = reward::leave_one_out(&rewards, n);
        (correct, rewards, advantage)
    };
    let mask = (trained < k).then_some(&mask);
    let mut policy_term = reward::policy_gradient_sum(&p_draws, &sampled, &advantage, mask)?;
    if draws > 1 {
        policy_term = (policy_term / draws as f64)?;
    }
    let loss = ((policy_term - (reward::entropy_sum(&p_bounded)? * options.beta)?)? / n as f64)?;
    Ok(Step::first_draw(
        loss,
        &sampled,
        correct,
        sampled_reward,
        n,
    )?)
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
    let warm = options.oracle_warm_start;
    // Chosen only while warm-start epochs remain (not when resuming after them).
    let ladder = if trainer.first_epoch() < warm {
        let mut folded = trainer.model.clone();
        folded.resnet = base.clone();
        let images = options.oracle_images;
        let report = |done: usize, total: usize| {
            progress.batch(
                0,
                done,
                total,
                "choosing the warm start's ladder of subsets",
            )
        };
        Some(Ladder::choose(
            &folded,
            setting.train_data,
            images,
            setting.device,
            report,
        )?)
    } else {
        None
    };
    // REINFORCE's curriculum starts after the warm-start epochs, which train every decision.
    let trained_at = |epoch: usize| match epoch.checked_sub(warm) {
        Some(e) => (options.cl_step.max(1) * (e + 1)).min(k),
        None => k,
    };
    let forced = |epoch: usize| k - trained_at(epoch);
    trainer.run_epochs(
        setting,
        run,
        progress,
        forced,
        |model, epoch, x, labels, rng| match &ladder {
            Some(ladder) if epoch < warm => oracle::step(model, &base, ladder, x, labels, options),
            _ => {
                let trained = trained_at(epoch);
                step(model, &base, x, labels, trained, options, |p| {
                    sample(p, rng)
                })
            }
        },
    )
}
