//! Stage 2: policy and base network trained jointly (the reference's `finetune`): base in
//! train mode, loss = Σ_images (−Σ_k log P(u_k))·advantage + cross-entropy of the base's
//! prediction under the sampled policy, Adam over both networks. The base runs the masked
//! executor's sparse variant ([`forward_masked_sparse`]): a block runs on the images whose
//! sampled policy keeps it when that is under three quarters of the batch (`masked` keeps the
//! reference's executor).

use std::path::{Path, PathBuf};

use candle_core::Tensor;

use crate::checkpoint::ModelStage;
use crate::error::Result;
use crate::exec::{forward_batch, forward_masked, forward_masked_sparse};
use crate::model::BlockDrop;
use crate::train::policy::{self, PolicyOptions, Step, Trainer};
use crate::train::reward::{self, bounded, greedy, keep_bits, repeat_rows, sample};
use crate::train::run::{Run, BEST, LAST};
use crate::train::{load_model_file, LoopDefaults, Progress, Setting, DEFAULT_LR_DECAY_RATIO};

/// The reference's finetuning: 10 epochs of Adam at lr 1e-4 over both networks, batch 256,
/// the step schedule never firing, γ = −10.
pub const DEFAULTS: LoopDefaults = LoopDefaults {
    epochs: 10,
    batch_size: 256,
    lr: 1e-4,
    epoch_step: Some(policy::REFERENCE_EPOCH_STEP),
};
pub const DEFAULT_PENALTY: f64 = -10.0;

/// The defaults as `train finetune --help` states them.
pub fn defaults_help() -> String {
    format!(
        "Defaults (the reference's): Adam lr {:e} over both networks, batch {}, α {}, γ {DEFAULT_PENALTY}, \
LR ×{DEFAULT_LR_DECAY_RATIO} every {} epochs; {} epochs.",
        DEFAULTS.lr,
        DEFAULTS.batch_size,
        policy::DEFAULT_ALPHA,
        policy::REFERENCE_EPOCH_STEP,
        DEFAULTS.epochs
    )
}

/// The model file a `--from` names: a run folder's best model (else its last), or a file.
pub fn model_of(from: &Path) -> PathBuf {
    if from.is_dir() {
        let best = from.join(BEST);
        if best.exists() {
            return best;
        }
        return from.join(LAST);
    }
    from.to_path_buf()
}

/// Trains policy and base network jointly from `options.init` into `run`.
pub fn train(
    setting: &Setting<PolicyOptions>,
    run: &mut Run,
    progress: &mut dyn Progress,
) -> Result<()> {
    let (options, device) = (setting.options, setting.device);
    let trained = ["agent.", "resnet."];
    let trainer = Trainer::start(ModelStage::Finetuned, setting, run, &trained, |varmap| {
        load_model_file(varmap, &model_of(&options.init), false)
    })?;
    trainer.run_epochs(
        setting,
        run,
        progress,
        |_| 0,
        |model, _, x, labels, rng| {
            let y = Tensor::new(labels, device)?;
            step(model, x, labels, &y, options, |p| sample(p, rng))
        },
    )
}

/// One finetuning batch: keep probabilities (agent in train mode), `draw`'s sample from the
/// bounded probabilities, the greedy baseline through the base in eval mode (blocks skipped,
/// no gradient), the sampled policies through the base in train mode (masked executor), and
/// [`joint_loss`].
pub fn step(
    model: &BlockDrop,
    x: &Tensor,
    labels: &[u32],
    y: &Tensor,
    options: &PolicyOptions,
    draw: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Step> {
    let (n, draws) = (labels.len(), options.samples.max(1));
    let probs = model.policy()?.keep_probs(x, true)?;
    let p_bounded = bounded(&probs, options.alpha)?;
    let p_draws = repeat_rows(&p_bounded, draws)?;
    let sampled = draw(&p_draws)?;
    let (x_draws, all_labels) = (repeat_rows(x, draws)?, labels.repeat(draws));
    let logits = if options.masked {
        forward_masked(&model.resnet, &x_draws, &sampled, true)?
    } else {
        forward_masked_sparse(&model.resnet, &x_draws, &keep_bits(&sampled)?, true)?
    };
    let correct = reward::correct(&logits, &all_labels)?;
    let sampled_reward = reward::reward(&correct, &sampled, &options.cost, options.penalty)?;
    let (mut loss, sampled_reward) = if draws == 1 {
        let baseline = greedy(&probs)?;
        let baseline_logits = forward_batch(&model.resnet, x, &keep_bits(&baseline)?)?.detach();
        let baseline_reward = reward::reward(
            &reward::correct(&baseline_logits, labels)?,
            &baseline,
            &options.cost,
            options.penalty,
        )?;
        let advantage = reward::over_baseline(&sampled_reward, &baseline_reward);
        let loss = joint_loss(&p_bounded, &sampled, &advantage, &logits, y)?;
        (loss, sampled_reward)
    } else {
        // The policy term averaged over the draws (each advantage divided by their number);
        // the cross-entropy is a mean already.
        let advantage: Vec<f32> = reward::leave_one_out(&sampled_reward, n)
            .iter()
            .map(|a| a / draws as f32)
            .collect();
        let y_draws = repeat_rows(y, draws)?;
        let loss = joint_loss(&p_draws, &sampled, &advantage, &logits, &y_draws)?;
        (loss, sampled_reward)
    };
    if options.finetune_beta > 0.0 {
        // Summed over images like the policy-gradient term, so β weighs the two as in the
        // curriculum's loss; the Bernoulli entropy, which does not favour dropping blocks.
        let entropy = reward::bernoulli_entropy_sum(&p_bounded)?;
        loss = (loss - (entropy * options.finetune_beta)?)?;
    }
    Ok(Step::first_draw(
        loss,
        &sampled,
        correct,
        sampled_reward,
        n,
    )?)
}

/// The finetuning loss: the policy-gradient term summed over images (no entropy bonus) plus
/// the mean cross-entropy of the base network under the sampled policies.
pub fn joint_loss(
    p_bounded: &Tensor,
    sampled: &Tensor,
    advantage: &[f32],
    logits: &Tensor,
    y: &Tensor,
) -> Result<Tensor> {
    Ok(
        (reward::policy_gradient_sum(p_bounded, sampled, advantage, None)?
            + candle_nn::loss::cross_entropy(logits, y)?)?,
    )
}
