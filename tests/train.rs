//! Training: the policy losses and gradients against PyTorch on a fixed batch
//! (tests/fixtures/make_policy_loss.py), losses that fall on a fixed batch, and each stage run
//! from the command line on a tiny slice: checkpoints load, `--resume` continues at the right
//! epoch with the optimiser's step count, and a run killed mid-epoch resumes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use blockdrop::config::Config;
use blockdrop::model::BlockDrop;
use blockdrop::train::cost::BlockCost;
use blockdrop::train::curriculum;
use blockdrop::train::policy::PolicyOptions;
use blockdrop::train::schedule::Schedule;
use blockdrop::train::{finetune, load_model_file, reward, LoopOptions};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::*;

fn policy_options(penalty: f64) -> PolicyOptions {
    PolicyOptions {
        common: LoopOptions {
            epochs: 1,
            batch_size: 16,
            lr: 1e-3,
            schedule: Schedule::Step {
                every: 10_000,
                ratio: 0.1,
            },
            seed: 0,
            images_per_epoch: None,
            test_images: None,
            validation: None,
        },
        alpha: 0.8,
        beta: 0.1,
        penalty,
        cl_step: 1,
        augment: false,
        masked: true,
        init: fixture("r32_c10.pth"),
        cost: BlockCost::Blocks,
        finetune_beta: 0.0,
        samples: 1,
        oracle_warm_start: 0,
        oracle_images: 512,
        oracle_margin: 0,
    }
}

/// The R32_C10 fixture model as trainable variables.
fn trainable_r32() -> (BlockDrop, VarMap) {
    let varmap = VarMap::new();
    let config = Config::by_name("R32_C10").unwrap();
    let model = BlockDrop::new(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    load_model_file(&varmap, &fixture("r32_c10.pth"), false).unwrap();
    (model, varmap)
}

fn var(varmap: &VarMap, name: &str) -> Var {
    varmap.data().lock().unwrap()[name].clone()
}

fn fixed_batch(model: &BlockDrop, n: usize) -> (Tensor, Vec<u32>) {
    let data = cifar_bin();
    let indices: Vec<usize> = (0..n).collect();
    let x = data.batch(&indices, &model.config, &Device::Cpu).unwrap();
    (x, data.labels()[..n].to_vec())
}

fn policy_of(case: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f32>> = case["policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    Tensor::new(rows, &Device::Cpu).unwrap()
}

fn assert_grad(
    grads: &candle_core::backprop::GradStore,
    varmap: &VarMap,
    name: &str,
    expected: &serde_json::Value,
    what: &str,
) {
    let grad = grads.get(var(varmap, name).as_tensor()).unwrap();
    assert_close(
        &grad.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        &floats(expected),
        what,
    );
}

#[test]
fn curriculum_loss_and_logit_gradients_match_pytorch() {
    let expected = json("policy_loss_expected.json");
    let case = &expected["curriculum"];
    let (model, varmap) = trainable_r32();
    let mut base = model.resnet.clone();
    base.fold_batchnorm().unwrap();
    let (x, labels) = fixed_batch(&model, 16);
    let trained = expected["trained"].as_u64().unwrap() as usize;
    let step = curriculum::step(
        &model,
        &base,
        &x,
        &labels,
        trained,
        &policy_options(-1.0),
        |_| Ok(policy_of(case)),
    )
    .unwrap();
    let loss = step.loss.to_scalar::<f32>().unwrap();
    assert_close(
        &[loss],
        &[case["loss"].as_f64().unwrap() as f32],
        "curriculum loss",
    );
    let grads = step.loss.backward().unwrap();
    assert_grad(
        &grads,
        &varmap,
        "agent.logit.weight",
        &case["logit_weight_grad"],
        "curriculum logit weight gradient",
    );
    assert_grad(
        &grads,
        &varmap,
        "agent.logit.bias",
        &case["logit_bias_grad"],
        "curriculum logit bias gradient",
    );
}

#[test]
fn finetune_loss_and_gradients_match_pytorch() {
    let expected = json("policy_loss_expected.json");
    let case = &expected["finetune"];
    let (model, varmap) = trainable_r32();
    let (x, labels) = fixed_batch(&model, 16);
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let step = finetune::step(&model, &x, &labels, &y, &policy_options(-10.0), |_| {
        Ok(policy_of(case))
    })
    .unwrap();
    let loss = step.loss.to_scalar::<f32>().unwrap();
    assert_close(
        &[loss],
        &[case["loss"].as_f64().unwrap() as f32],
        "finetune loss",
    );
    let grads = step.loss.backward().unwrap();
    assert_grad(
        &grads,
        &varmap,
        "agent.logit.weight",
        &case["logit_weight_grad"],
        "finetune logit weight gradient",
    );
    assert_grad(
        &grads,
        &varmap,
        "agent.logit.bias",
        &case["logit_bias_grad"],
        "finetune logit bias gradient",
    );
    assert_grad(
        &grads,
        &varmap,
        "resnet.fc.weight",
        &case["fc_weight_grad"],
        "finetune fc weight gradient",
    );
    assert_grad(
        &grads,
        &varmap,
        "resnet.fc.bias",
        &case["fc_bias_grad"],
        "finetune fc bias gradient",
    );
}

/// A cost table that gives every block the same cost is the reference's block count, bit for
/// bit: the same rewards and the same loss on the fixture batch (uneven costs: the unit tests
/// of `train::cost` and `train::reward`).
#[test]
fn equal_block_costs_train_exactly_as_the_block_count() {
    let case = &json("policy_loss_expected.json")["finetune"];
    let (model, _) = trainable_r32();
    let (x, labels) = fixed_batch(&model, 16);
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let k = model.num_blocks();
    let step_with = |cost: BlockCost| {
        let mut options = policy_options(-10.0);
        options.cost = cost;
        finetune::step(&model, &x, &labels, &y, &options, |_| Ok(policy_of(case))).unwrap()
    };
    let reference = step_with(BlockCost::Blocks);
    for c in [1.0, 87.3, 7_225_344.0] {
        let uniform = step_with(BlockCost::Flops { blocks: vec![c; k] });
        assert_eq!(
            uniform.sampled_reward, reference.sampled_reward,
            "weight {c}"
        );
        assert_eq!(
            uniform.loss.to_scalar::<f32>().unwrap().to_bits(),
            reference.loss.to_scalar::<f32>().unwrap().to_bits(),
            "weight {c}"
        );
    }
}

/// `--finetune-beta β` subtracts β·Σ H(p') (the Bernoulli entropy, summed over the batch like
/// the policy term) from the reference's finetuning loss, and 0 leaves the reference's loss.
#[test]
fn the_finetune_entropy_bonus_adds_exactly_its_term() {
    let case = &json("policy_loss_expected.json")["finetune"];
    let (model, _) = trainable_r32();
    let (x, labels) = fixed_batch(&model, 16);
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let loss_with = |beta: f64| {
        let mut options = policy_options(-10.0);
        options.finetune_beta = beta;
        let step =
            finetune::step(&model, &x, &labels, &y, &options, |_| Ok(policy_of(case))).unwrap();
        step.loss.to_scalar::<f32>().unwrap() as f64
    };
    let reference = loss_with(0.0);
    assert_close(
        &[reference as f32],
        &[case["loss"].as_f64().unwrap() as f32],
        "β 0: the reference's loss",
    );
    let probs = model.policy().unwrap().keep_probs(&x, true).unwrap();
    let p = probs.to_vec2::<f32>().unwrap();
    let entropy: f64 = p
        .iter()
        .flatten()
        .map(|&p| {
            let b = (0.8 * p + 0.2 * (1.0 - p)) as f64;
            -b * b.ln() - (1.0 - b) * (1.0 - b).ln()
        })
        .sum();
    assert!(
        entropy > 1.0,
        "the fixture's policy has entropy to reward ({entropy})"
    );
    let with = loss_with(0.5);
    let expected = reference - 0.5 * entropy;
    assert!(
        (with - expected).abs() <= 1e-4 * expected.abs().max(1.0),
        "loss with β 0.5: {with}, expected {expected}"
    );
}

/// `--samples S`: each draw's baseline is the mean reward of the image's other draws. Draws
/// that are all the same policy then have no advantage: the curriculum's loss is the entropy
/// term alone, finetuning's the cross-entropy alone (the advantages' arithmetic is
/// `reward::leave_one_out`'s unit test).
#[test]
fn several_samples_are_baselined_by_the_other_samples() {
    let case = &json("policy_loss_expected.json")["finetune"];
    let (model, _) = trainable_r32();
    let mut base = model.resnet.clone();
    base.fold_batchnorm().unwrap();
    let (x, labels) = fixed_batch(&model, 16);
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let policy = policy_of(case);
    let twice = Tensor::cat(&[&policy, &policy], 0).unwrap();
    let mut options = policy_options(-1.0);
    options.samples = 2;
    let k = model.num_blocks();
    let step = curriculum::step(&model, &base, &x, &labels, k, &options, |p| {
        assert_eq!(
            p.dims2().unwrap(),
            (32, k),
            "the draws see every image twice"
        );
        Ok(twice.clone())
    })
    .unwrap();
    assert_eq!(step.correct.len(), 16, "the outcome reports the first draw");
    let probs = model.policy().unwrap().keep_probs(&x, true).unwrap();
    let bounded = reward::bounded(&probs, 0.8).unwrap();
    let entropy_only = (reward::entropy_sum(&bounded).unwrap() * (-0.1 / 16.0)).unwrap();
    assert_close(
        &[step.loss.to_scalar::<f32>().unwrap()],
        &[entropy_only.to_scalar::<f32>().unwrap()],
        "identical draws: the entropy term only",
    );
    let step = finetune::step(&model, &x, &labels, &y, &options, |_| Ok(twice.clone())).unwrap();
    let logits = blockdrop::exec::forward_masked(&model.resnet, &x, &policy, true).unwrap();
    let ce = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
    assert_close(
        &[step.loss.to_scalar::<f32>().unwrap()],
        &[ce.to_scalar::<f32>().unwrap()],
        "identical draws: the cross-entropy only",
    );
}

#[test]
fn losses_fall_on_a_fixed_batch() {
    use blockdrop::train::optim::{params, Kind, Optimizer};
    // Base: cross-entropy with SGD.
    let (model, varmap) = trainable_r32();
    let (x, labels) = fixed_batch(&model, 16);
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let mut sgd = Optimizer::new(
        Kind::Sgd {
            momentum: 0.9,
            weight_decay: 5e-4,
        },
        params(&varmap, &["resnet."]),
    );
    let ce = || {
        candle_nn::loss::cross_entropy(&model.resnet.forward_full(&x, true).unwrap(), &y).unwrap()
    };
    let first = ce().to_scalar::<f32>().unwrap();
    for _ in 0..5 {
        sgd.step(&ce().backward().unwrap(), 0.05).unwrap();
    }
    let last = ce().to_scalar::<f32>().unwrap();
    assert!(last < first, "base loss {first} → {last}");

    // The policy-gradient term with Adam, for one fixed sample and advantage (the advantage
    // itself moves with the networks, so only the surrogate with it held is a fixed objective).
    let (model, varmap) = trainable_r32();
    let mut adam = Optimizer::new(
        Kind::Adam { weight_decay: 0.0 },
        params(&varmap, &["agent."]),
    );
    let sample = policy_of(&json("policy_loss_expected.json")["finetune"]);
    let advantage: Vec<f32> = (0..16)
        .map(|i| if i % 3 == 0 { -1.0 } else { 0.5 })
        .collect();
    let surrogate = || {
        let probs = model.keep_probs(&x, true).unwrap();
        let p_bounded = reward::bounded(&probs, 0.8).unwrap();
        reward::policy_gradient_sum(&p_bounded, &sample, &advantage, None).unwrap()
    };
    let first = surrogate().to_scalar::<f32>().unwrap();
    for _ in 0..5 {
        adam.step(&surrogate().backward().unwrap(), 1e-3).unwrap();
    }
    let last = surrogate().to_scalar::<f32>().unwrap();
    assert!(last < first, "policy-gradient surrogate {first} → {last}");

    // The oracle warm start's cross-entropy against its ladder's targets, with Adam.
    let (model, varmap) = trainable_r32();
    let mut base = model.resnet.clone();
    base.fold_batchnorm().unwrap();
    let k = model.num_blocks();
    let ladder = blockdrop::train::oracle::Ladder::new(
        (1..=k).map(|r| (0..k).map(|b| b < r).collect()).collect(),
    );
    let mut adam = Optimizer::new(
        Kind::Adam { weight_decay: 0.0 },
        params(&varmap, &["agent."]),
    );
    let options = policy_options(-1.0);
    let warm = || {
        blockdrop::train::oracle::step(&model, &base, &ladder, &x, &labels, &options)
            .unwrap()
            .loss
    };
    let first = warm().to_scalar::<f32>().unwrap();
    for _ in 0..5 {
        adam.step(&warm().backward().unwrap(), 1e-3).unwrap();
    }
    let last = warm().to_scalar::<f32>().unwrap();
    assert!(last < first, "warm-start cross-entropy {first} → {last}");
}

// ------------------------------------------------------------------ the command line

fn blockdrop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A Fashion-MNIST folder whose train and test splits are both the 64 fixture images.
fn tiny_fmnist(dir: &Path) -> PathBuf {
    let data = dir.join("fmnist");
    std::fs::create_dir_all(&data).unwrap();
    for (from, to) in [
        ("t10k-images-idx3-ubyte", "train-images-idx3-ubyte"),
        ("t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte"),
        ("t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"),
    ] {
        std::fs::copy(fixture("fmnist-idx").join(from), data.join(to)).unwrap();
    }
    data
}

fn metrics_rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .count()
        - 1
}

fn state_meta(run: &Path, key: &str) -> String {
    let path = run.join("state.safetensors");
    let (_, meta) =
        blockdrop::checkpoint::native::read(&path, &std::fs::read(&path).unwrap(), &Device::Cpu)
            .unwrap();
    meta[key].clone()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TINY: [&str; 6] = [
    "--batch-size",
    "16",
    "--images-per-epoch",
    "48",
    "--test-images",
    "32",
];

/// `train base --config R32_FMNIST --data DATA --out RUN EXTRA…`.
fn new_base_run(data: &Path, run: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "base",
        "--config",
        "R32_FMNIST",
        "--data",
        s(data),
        "--out",
        s(run),
    ];
    args.extend_from_slice(extra);
    blockdrop(&args)
}

/// A base run of `epochs` epochs on the tiny data set, in `dir`/base.
fn train_base(dir: &Path, data: &Path, epochs: usize) -> PathBuf {
    let base = dir.join("base");
    let epochs = epochs.to_string();
    let mut extra = vec!["--epochs", &epochs];
    extra.extend(TINY);
    ok(new_base_run(data, &base, &extra));
    base
}

/// `train curriculum` from `base`'s best model into `out`, on the tiny settings plus `extra`.
fn train_curriculum(base: &Path, data: &Path, out: &Path, epochs: &str, extra: &[&str]) -> String {
    let best = base.join("best.safetensors");
    let mut args = vec![
        "train",
        "curriculum",
        "--base",
        s(&best),
        "--data",
        s(data),
        "--out",
        s(out),
        "--epochs",
        epochs,
    ];
    args.extend_from_slice(extra);
    args.extend(TINY);
    ok(blockdrop(&args))
}

/// `eval` loads the run's last model.
fn assert_last_model_loads(run: &Path, data: &Path) {
    ok(blockdrop(&[
        "eval",
        "--model",
        s(&run.join("last.safetensors")),
        "--data",
        s(data),
        "--limit",
        "8",
    ]));
}

#[test]
fn base_run_resumes_with_its_step_count_and_refuses_a_second_out() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_fmnist(tmp.path());
    let base = train_base(tmp.path(), &data, 2);
    assert_eq!(metrics_rows(&base), 2);
    // 48 images in batches of 16: three optimiser steps per epoch.
    assert_eq!(state_meta(&base, "optimizer_steps"), "6");
    assert_last_model_loads(&base, &data);

    // Resuming continues at epoch 3 with the step count intact; a second --out is refused.
    let out = ok(blockdrop(&[
        "train",
        "base",
        "--resume",
        s(&base),
        "--epochs",
        "3",
    ]));
    assert!(out.contains("epoch   3/3"), "{out}");
    assert!(!out.contains("epoch   1/3"), "{out}");
    assert_eq!(metrics_rows(&base), 3);
    assert_eq!(state_meta(&base, "optimizer_steps"), "9");
    let again = new_base_run(&data, &base, &[]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn a_killed_base_run_keeps_its_last_epoch_loadable_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_fmnist(tmp.path());
    let base = train_base(tmp.path(), &data, 1);
    // Killed mid-run: the last finished epoch stays loadable and the run resumes from it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(["train", "base", "--resume", s(&base), "--epochs", "40"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wall time only guards against a hang (a busy machine may be slow); the child exiting
    // before its fifth epoch fails the count below.
    let hang_guard = std::time::Instant::now() + std::time::Duration::from_secs(900);
    while metrics_rows(&base) < 5
        && child.try_wait().unwrap().is_none()
        && std::time::Instant::now() < hang_guard
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = metrics_rows(&base);
    assert!((5..40).contains(&done), "killed after {done} epochs");
    let steps: usize = state_meta(&base, "optimizer_steps").parse().unwrap();
    let epochs_done: usize = state_meta(&base, "epochs_done").parse().unwrap();
    assert_eq!(steps, 3 * epochs_done, "state and step count agree");
    assert_last_model_loads(&base, &data);
    ok(blockdrop(&[
        "train",
        "base",
        "--resume",
        s(&base),
        "--epochs",
        &(epochs_done + 1).to_string(),
    ]));
    assert_eq!(metrics_rows(&base), epochs_done + 1);
}

/// `train curriculum --policy-input-pool 2` gives the policy a half-size image: the run and its
/// model files record it, finetuning keeps it, and every loader runs the policy on the pooled
/// image (the probabilities equal the unpooled network's on an image pooled by hand), at a
/// quarter of the policy's FLOPs. A file recording an impossible pool is refused.
#[test]
fn a_half_size_policy_input_is_recorded_and_kept_by_every_stage() {
    use blockdrop::config::Config;
    use blockdrop::model::BlockDropFlops;
    let tmp = tempfile::tempdir().unwrap();
    let data = asset("cifar10-sample");
    let base = tmp.path().join("base");
    let mut args = vec![
        "train",
        "base",
        "--config",
        "R32_C10",
        "--data",
        s(&data),
        "--out",
        s(&base),
        "--epochs",
        "1",
    ];
    args.extend(TINY);
    ok(blockdrop(&args));
    // A pool beyond 4 leaves a CIFAR image a few pixels: refused.
    let refused = blockdrop(&[
        "train",
        "curriculum",
        "--base",
        s(&base.join("best.safetensors")),
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("refused")),
        "--config",
        "R32_C10",
        "--policy-input-pool",
        "5",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let cl = tmp.path().join("curriculum");
    train_curriculum(&base, &data, &cl, "1", &["--policy-input-pool", "2"]);
    let config = std::fs::read_to_string(cl.join("config.json")).unwrap();
    assert!(config.contains("\"policy_input_pool\": 2"), "{config}");
    let ft = tmp.path().join("finetune");
    let mut args = vec![
        "train",
        "finetune",
        "--from",
        s(&cl),
        "--data",
        s(&data),
        "--out",
        s(&ft),
        "--epochs",
        "1",
        "--config",
        "R32_C10",
    ];
    args.extend(TINY);
    ok(blockdrop(&args));
    let model_file = ft.join("last.safetensors");
    let loaded = blockdrop::checkpoint::load_model(&model_file, None, None, &Device::Cpu).unwrap();
    assert_eq!(loaded.metadata["policy_input_pool"], "2");
    assert_eq!(loaded.model.config.policy_input_pool, 2);
    let agent = loaded.model.policy().unwrap();
    assert_eq!(agent.input_pool, 2);
    let x = Tensor::randn(0f32, 1.0, (4, 3, 32, 32), &Device::Cpu).unwrap();
    let pooled = agent.keep_probs(&x, false).unwrap();
    let mut unpooled_net = agent.clone();
    unpooled_net.input_pool = 1;
    let by_hand = unpooled_net
        .keep_probs(&x.avg_pool2d(2).unwrap(), false)
        .unwrap();
    assert_close(
        &pooled.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        &by_hand.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        "policy on the pooled image",
    );
    let own = BlockDropFlops::for_config(&Config::by_name("R32_C10").unwrap()).policy;
    let half = BlockDropFlops::of(&loaded.model).policy;
    assert!(half * 3 < own, "policy FLOPs {half} against {own}");
    ok(blockdrop(&[
        "eval",
        "--model",
        s(&model_file),
        "--data",
        s(&data),
    ]));

    // A pool the configuration cannot take, recorded in a file: exit 2 naming it.
    let (tensors, mut meta) = blockdrop::checkpoint::native::read(
        &model_file,
        &std::fs::read(&model_file).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    meta.insert("policy_input_pool".to_string(), "9".to_string());
    let forged = tmp.path().join("forged.safetensors");
    let tensors: std::collections::BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let meta: std::collections::BTreeMap<String, String> = meta
        .into_iter()
        .filter(|(k, _)| k != "written_by")
        .collect();
    blockdrop::checkpoint::native::write(&forged, &tensors, &meta).unwrap();
    let out = blockdrop(&["eval", "--model", s(&forged), "--data", s(&data)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("forged.safetensors") && stderr.contains("policy_input_pool"),
        "{stderr}"
    );
}

#[test]
fn curriculum_and_finetune_train_from_the_previous_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_fmnist(tmp.path());
    let base = train_base(tmp.path(), &data, 1);
    let cl = tmp.path().join("curriculum");
    train_curriculum(&base, &data, &cl, "2", &[]);
    assert_eq!(metrics_rows(&cl), 2);
    // The epoch lines report the reference's curriculum test: epoch e keeps the first
    // K − (e + 1) decisions whatever the policy says (15 blocks: at least 14, then 13).
    let metrics = std::fs::read_to_string(cl.join("metrics.csv")).unwrap();
    let usage: Vec<f64> = metrics
        .lines()
        .skip(1)
        .map(|row| row.split(',').nth(6).unwrap().parse().unwrap())
        .collect();
    assert!(usage[0] >= 14.0 && usage[1] >= 13.0, "{metrics}");
    let last = cl.join("last.safetensors");
    let (_, meta) =
        blockdrop::checkpoint::native::read(&last, &std::fs::read(&last).unwrap(), &Device::Cpu)
            .unwrap();
    assert!(
        meta["evaluation"].contains("first 13 decisions forced"),
        "the model file says which policy its figures describe: {meta:?}"
    );
    let config = std::fs::read_to_string(cl.join("config.json")).unwrap();
    assert!(
        config.contains("\"penalty\": -1.0") && config.contains("\"stage\": \"curriculum\""),
        "{config}"
    );

    let ft = tmp.path().join("finetune");
    let mut args = vec![
        "train",
        "finetune",
        "--from",
        s(&cl),
        "--data",
        s(&data),
        "--out",
        s(&ft),
        "--epochs",
        "1",
        "--penalty",
        "-5",
    ];
    args.extend(TINY);
    ok(blockdrop(&args));
    let out = ok(blockdrop(&[
        "eval",
        "--model",
        s(&ft.join("best.safetensors")),
        "--data",
        s(&data),
    ]));
    assert!(out.starts_with("Accuracy: "), "{out}");
    let (_, meta) = blockdrop::checkpoint::native::read(
        &ft.join("last.safetensors"),
        &std::fs::read(ft.join("last.safetensors")).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(meta["stage"], "finetuned");
    assert_eq!(meta["penalty"], "-5");
    // The curriculum freezes the base: its tensors are the base run's, bit for bit; joint
    // finetuning trains them.
    let best_base = base.join("best.safetensors");
    let base_tensors = resnet_tensors(&best_base);
    let (all, _) = blockdrop::checkpoint::native::read(
        &best_base,
        &std::fs::read(&best_base).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        all.len(),
        base_tensors.len(),
        "a base run's model holds no policy network"
    );
    assert_eq!(
        base_tensors.len(),
        157,
        "every base tensor, BN statistics included"
    );
    assert_eq!(resnet_tensors(&cl.join("last.safetensors")), base_tensors);
    let finetuned = resnet_tensors(&ft.join("last.safetensors"));
    assert_eq!(finetuned.len(), base_tensors.len());
    assert!(
        finetuned != base_tensors,
        "finetuning changed no base tensor"
    );
}

/// The options beyond the reference (`--oracle-warm-start`, `--samples`, `--cost network`, a
/// padded `--policy-input-pool` on Fashion-MNIST's 28x28) run end to end: the warm-start
/// epoch trains every decision (its targets' figures in metrics.csv, no forced blocks), the
/// run records each option, resuming keeps them, and the model evaluates.
#[test]
fn the_options_beyond_the_reference_train_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_fmnist(tmp.path());
    let base = train_base(tmp.path(), &data, 1);
    let cl = tmp.path().join("curriculum");
    let extra = [
        "--oracle-warm-start",
        "1",
        "--oracle-images",
        "16",
        "--oracle-margin",
        "2",
        "--samples",
        "2",
        "--cost",
        "network",
        "--policy-input-pool",
        "2",
        "--cl-step",
        "15",
    ];
    train_curriculum(&base, &data, &cl, "1", &extra);
    let config = std::fs::read_to_string(cl.join("config.json")).unwrap();
    for needle in [
        "\"oracle_warm_start\": 1",
        "\"oracle_images\": 16",
        "\"oracle_margin\": 2",
        "\"samples\": 2",
        "\"kind\": \"network\"",
        "\"policy_input_pool\": 2",
    ] {
        assert!(config.contains(needle), "{needle} in {config}");
    }
    let last = cl.join("last.safetensors");
    let (_, meta) =
        blockdrop::checkpoint::native::read(&last, &std::fs::read(&last).unwrap(), &Device::Cpu)
            .unwrap();
    assert!(
        !meta.contains_key("evaluation"),
        "a warm-start epoch forces no decision: {meta:?}"
    );
    ok(blockdrop(&[
        "train",
        "curriculum",
        "--resume",
        s(&cl),
        "--epochs",
        "2",
    ]));
    assert_eq!(metrics_rows(&cl), 2);
    let config_after = std::fs::read_to_string(cl.join("config.json")).unwrap();
    assert!(config_after.contains("\"samples\": 2"), "{config_after}");
    let out = ok(blockdrop(&[
        "eval",
        "--model",
        s(&last),
        "--data",
        s(&data),
    ]));
    assert!(out.starts_with("Accuracy: "), "{out}");
    let loaded = blockdrop::checkpoint::load_model(&last, None, None, &Device::Cpu).unwrap();
    let agent = loaded.model.policy().unwrap();
    assert_eq!(
        agent.input_pad,
        ((2, 2), (2, 2)),
        "28 padded to 32 before the pool"
    );
}

/// The `resnet.*` tensors of a model file, by name, as raw values.
fn resnet_tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let (tensors, _) =
        blockdrop::checkpoint::native::read(path, &std::fs::read(path).unwrap(), &Device::Cpu)
            .unwrap();
    tensors
        .into_iter()
        .filter(|(name, _)| name.starts_with("resnet."))
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

fn blockdrop_os(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn assert_exit_2(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(needle),
        "{stderr} does not mention {needle}"
    );
}

#[test]
fn run_folders_take_any_name_one_process_and_only_sound_options() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join(OsStr::from_bytes(b"fmnist-\xff"));
    std::fs::rename(tiny_fmnist(tmp.path()), &data).unwrap();
    let run = tmp.path().join(OsStr::from_bytes(b"run-\xfe"));
    let os = |s: &str| OsStr::new(s).to_os_string();
    let mut args = vec![
        os("train"),
        os("base"),
        os("--config"),
        os("R32_FMNIST"),
        os("--data"),
        data.clone().into_os_string(),
        os("--out"),
        run.clone().into_os_string(),
        os("--epochs"),
        os("1"),
    ];
    args.extend(TINY.iter().map(|a| os(a)));
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = blockdrop_os(&refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resume = |epochs: &str| {
        blockdrop_os(&[
            OsStr::new("train"),
            OsStr::new("base"),
            OsStr::new("--resume"),
            run.as_os_str(),
            OsStr::new("--epochs"),
            OsStr::new(epochs),
        ])
    };
    let out = resume("2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(metrics_rows(&run), 2);

    // A live owner (this test holding the lock) keeps a second process out; the kernel
    // releases the lock with its holder, so a killed run leaves no stale lock.
    {
        use std::os::unix::io::AsRawFd;
        let held = std::fs::File::open(run.join(".blockdrop-lock")).unwrap();
        // SAFETY: flock on a descriptor this test owns.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        assert_exit_2(&resume("3"), "in use by another blockdrop process");
    }

    // Options edited into nonsense are refused on resume, before any epoch.
    let config_path = run.join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("\"batch_size\": 16", "\"batch_size\": 0"),
    )
    .unwrap();
    assert_exit_2(&resume("3"), "batch_size");
    std::fs::write(&config_path, config).unwrap();
    assert_eq!(metrics_rows(&run), 2);

    // A folder of the user's files is not a run folder; a batch larger than an epoch is
    // refused; neither leaves a folder or a file behind.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("metrics.csv"), "the user's").unwrap();
    let fresh = tmp.path().join("fresh");
    for (out_dir, batch, needle) in [
        (&mine, "16", "new or empty"),
        (&fresh, "64", "--batch-size"),
    ] {
        let out = blockdrop_os(&[
            OsStr::new("train"),
            OsStr::new("base"),
            OsStr::new("--config"),
            OsStr::new("R32_FMNIST"),
            OsStr::new("--data"),
            data.as_os_str(),
            OsStr::new("--out"),
            out_dir.as_os_str(),
            OsStr::new("--batch-size"),
            OsStr::new(batch),
            OsStr::new("--images-per-epoch"),
            OsStr::new("48"),
        ]);
        assert_exit_2(&out, needle);
    }
    assert_eq!(
        std::fs::read_to_string(mine.join("metrics.csv")).unwrap(),
        "the user's"
    );
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    assert!(!fresh.exists());
}

/// `--cost FILE.json`: the table from `profile --cost` weighs the reward, the run folder keeps
/// a copy, `metrics.csv` records the cost share; a table of another configuration, a resume
/// with --cost, and a run folder from before the cost column are handled.
#[test]
fn a_cost_table_weighs_the_reward_and_stays_with_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_fmnist(tmp.path());
    let table = tmp.path().join("cost.json");
    let model = asset("default.safetensors");
    ok(blockdrop(&[
        "profile",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--images",
        "2",
        "--repeat",
        "2",
        "--cost",
        s(&table),
    ]));
    let eval = ok(blockdrop(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--no-baselines",
        "--cost",
        s(&table),
    ]));
    assert!(
        eval.lines()
            .nth(4)
            .unwrap()
            .starts_with("Predicted latency: "),
        "{eval}"
    );

    let run = tmp.path().join("latency");
    let train = |run: &Path, cost: &str| {
        let mut args = vec![
            "train",
            "finetune",
            "--from",
            s(&model),
            "--data",
            s(&data),
            "--out",
            s(run),
            "--epochs",
            "1",
            "--cost",
            cost,
        ];
        args.extend(TINY);
        blockdrop(&args)
    };
    let out = ok(train(&run, s(&table)));
    assert!(out.contains("reward cost: measured time"), "{out}");
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("cost.json")).unwrap()).unwrap();
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&table).unwrap()).unwrap();
    assert_eq!(kept, original);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let cost = &config["options"]["cost"];
    assert_eq!(cost["kind"], "measured");
    assert_eq!(cost["blocks"].as_array().unwrap().len(), 15);
    assert_eq!(cost["blocks"][3], original["blocks"][3]["us"]);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(
        metrics.starts_with(blockdrop::train::run::METRICS_HEADER),
        "{metrics}"
    );
    let share: f64 = metrics
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(share > 0.0 && share <= 1.0, "{metrics}");
    assert_eq!(state_meta(&run, "epochs_done"), "1");

    // A run from before the cost column resumes: its rows gain the column, empty.
    let v1 = blockdrop::train::run::METRICS_HEADER_V1;
    let row = metrics.lines().nth(1).unwrap();
    let old_row = &row[..row.rfind(',').unwrap()];
    std::fs::write(run.join("metrics.csv"), format!("{v1}\n{old_row}\n")).unwrap();
    ok(blockdrop(&[
        "train",
        "finetune",
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert_eq!(lines[0], blockdrop::train::run::METRICS_HEADER);
    assert_eq!(lines[1], format!("{old_row},"));
    assert_eq!(lines[2].split(',').count(), 12);

    let flops = tmp.path().join("flops");
    ok(train(&flops, "flops"));
    let config = std::fs::read_to_string(flops.join("config.json")).unwrap();
    assert!(config.contains("\"kind\": \"flops\""), "{config}");
    assert!(!flops.join("cost.json").exists());

    // Refused before any folder is made: another configuration's table, a broken one.
    let other = tmp.path().join("other.json");
    std::fs::write(
        &other,
        std::fs::read_to_string(&table)
            .unwrap()
            .replace("R32_FMNIST", "R110_C10"),
    )
    .unwrap();
    let refused = tmp.path().join("refused");
    let out = train(&refused, s(&other));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other.json") && err.contains("R110_C10"),
        "{err}"
    );
    std::fs::write(&other, "{\"version\": 1, \"blocks\": [").unwrap();
    let out = train(&refused, s(&other));
    assert_eq!(out.status.code(), Some(2));
    assert!(!refused.exists());
    let out = blockdrop(&["train", "finetune", "--resume", s(&run), "--cost", "flops"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validation_images_are_held_out_of_training_and_stay_so_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_fmnist(tmp.path());
    let run = tmp.path().join("val");
    let out = ok(new_base_run(
        &data,
        &run,
        &["--epochs", "1", "--batch-size", "16", "--validation", "16"],
    ));
    assert!(
        out.contains("(48 training, 16 validation images held out of the training split)"),
        "{out}"
    );
    assert!(out.contains("| val acc "), "{out}");
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"validation\": 16"), "{config}");
    let resumed = ok(blockdrop(&[
        "train",
        "base",
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]));
    assert!(resumed.contains("48 training, 16 validation"), "{resumed}");
    // Holding out every training image leaves nothing to train on.
    let out = new_base_run(&data, &tmp.path().join("none"), &["--validation", "64"]);
    assert_exit_2(&out, "--validation 64 leaves no training images");
    assert!(!tmp.path().join("none").exists());
}

#[test]
fn hold_out_splits_the_images_in_two_the_same_way_every_time() {
    let data = cifar_bin();
    let pixels = |d: &blockdrop::data::Dataset| -> Vec<Vec<u8>> {
        (0..d.len()).map(|i| d.image(i).unwrap().pixels).collect()
    };
    let (kept, held) = blockdrop::train::hold_out(&data, 10).unwrap();
    assert_eq!((kept.len(), held.len()), (data.len() - 10, 10));
    let mut union = pixels(&kept);
    union.extend(pixels(&held));
    let mut all = pixels(&data);
    union.sort();
    all.sort();
    assert_eq!(union, all, "every image in exactly one part");
    let (_, again) = blockdrop::train::hold_out(&data, 10).unwrap();
    assert_eq!(
        pixels(&again),
        pixels(&held),
        "every stage holds out the same images"
    );
}

#[test]
fn the_forced_instruction_set_path_is_the_one_in_use() {
    assert_forced_isa();
}
