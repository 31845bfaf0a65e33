//! Stage 1: the policy network with REINFORCE over a curriculum, base network frozen in eval
//! mode (the reference's `cl_training`). Epoch e trains the last c = min(K, cl_step·(e + 1))
//! decisions; the others are forced to 1 and leave the loss. One bounded Bernoulli sample per
//! image, the greedy policy as the self-critical baseline, an entropy bonus, Adam.
//!
//! The frozen base runs with BatchNorm folded and dropped blocks truly skipped (grouped or
//! gather executor), as at inference: it needs no gradients.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::config::Config;
use crate::data::Dataset;
use crate::error::Result;
use crate::exec::forward_batch;
use crate::model::{BlockDrop, FlatResNet};
use crate::train::optim::{params, Kind, Optimizer};
use crate::train::policy::{PolicyOptions, Step, Trainer};
use crate::train::reward::{self, bounded, force_first, greedy, keep_bits, sample};
use crate::train::run::Run;
use crate::train::{load_model_file, restore, Progress};

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
    let probs = model.agent.keep_probs(x, true)?;
    let p_bounded = bounded(&probs, options.alpha)?;
    let (sampled, mask) = force_first(&draw(&p_bounded)?, trained)?;
    let (baseline, _) = force_first(&greedy(&probs)?, trained)?;
    let outcome = |policy: &Tensor| -> Result<(Vec<bool>, Vec<f32>)> {
        let logits = forward_batch(base, x, &keep_bits(policy)?)?;
        let correct = reward::correct(&logits, labels)?;
        let rewards = reward::reward(&correct, policy, options.penalty)?;
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

/// Trains the policy of `config` over the frozen base network in `options.init` into `run`.
pub fn train(
    config: &Config,
    train_data: &Dataset,
    test_data: &Dataset,
    run: &mut Run,
    options: &PolicyOptions,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<()> {
    let varmap = VarMap::new();
    let model = BlockDrop::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    let mut optimizer = Optimizer::new(
        Kind::Adam { weight_decay: 0.0 },
        params(&varmap, &["agent."]),
    );
    let position = match restore(run, &varmap, &mut optimizer, device)? {
        Some(position) => position,
        None => {
            load_model_file(&varmap, &options.init, true)?;
            (0, f64::NEG_INFINITY)
        }
    };
    let mut base = model.resnet.clone();
    base.fold_batchnorm()?;
    let k = model.num_blocks();
    let trainer = Trainer {
        stage: "curriculum",
        config,
        model: &model,
        varmap: &varmap,
        optimizer,
        options,
        device,
    };
    trainer.run_epochs(
        run,
        position,
        train_data,
        test_data,
        progress,
        |epoch, x, labels, rng| {
            let trained = (options.cl_step.max(1) * (epoch + 1)).min(k);
            step(&model, &base, x, labels, trained, options, |p| {
                sample(p, rng)
            })
        },
    )
}
