//! Parity with PyTorch on fixtures written by real PyTorch (tests/fixtures/make_fixtures.py):
//! probabilities, policies, logits, FLOPs and the reference's four summary lines.

mod common;

use std::collections::HashMap;

use blockdrop::checkpoint::{self, checked::build_checked};
use blockdrop::config::{BlockKind, Config, Family, ResNetSpec, Transform};
use blockdrop::data::{Dataset, Split};
use blockdrop::eval::{evaluate, EvalOptions};
use blockdrop::exec::{forward_masked, forward_skip};
use blockdrop::model::blockdrop::policy_tensor;
use blockdrop::model::{BlockDrop, BlockDropFlops};
use blockdrop::records::Summary;
use candle_core::{Device, Tensor};
use common::*;

/// Checks every record against the fixture's; returns how many images were decided.
fn check_records(records: &[blockdrop::records::Record], expected: &serde_json::Value) -> usize {
    let expected = expected["records"].as_array().expect("records");
    assert_eq!(records.len(), expected.len());
    let mut decided_images = 0;
    for (r, e) in records.iter().zip(expected) {
        let probs = floats(&e["probs"]);
        assert_close(
            &r.probs,
            &probs,
            &format!("image {} keep probabilities", r.index),
        );
        if !decided(&probs) {
            continue;
        }
        decided_images += 1;
        assert_eq!(
            r.policy(),
            e["policy"].as_str().unwrap(),
            "image {} policy",
            r.index
        );
        assert_close(
            r.logits.as_deref().unwrap(),
            &floats(&e["logits"]),
            &format!("image {} logits", r.index),
        );
        assert_eq!(
            r.pred as u64,
            e["pred"].as_u64().unwrap(),
            "image {} prediction",
            r.index
        );
        assert_eq!(
            r.flops,
            e["flops"].as_f64().unwrap(),
            "image {} FLOPs",
            r.index
        );
    }
    decided_images
}

#[test]
fn zip_checkpoint_infers_r32_c10_from_its_tensors() {
    assert_eq!(r32_model().config.name, "R32_C10");
}

#[test]
fn r32_c10_matches_pytorch_image_by_image_and_in_the_summary() {
    let expected = json("r32_c10_expected.json");
    for (kernels, model) in kernel_variants(r32_model) {
        for data in ["cifar-10-batches-bin", "cifar-10-batches-py"] {
            let dataset = Dataset::open(&fixture(data), Split::Test).unwrap();
            for batch in [1, 7, 64] {
                let options = EvalOptions {
                    batch,
                    keep_logits: true,
                    ..EvalOptions::default()
                };
                let records =
                    evaluate(&model, &dataset, &options, &Device::Cpu, |_, _| {}).unwrap();
                assert_eq!(
                    check_records(&records, &expected),
                    records.len(),
                    "the fixture keeps every decision clear"
                );
                assert_eq!(
                    Summary::of(&records).to_string(),
                    summary_lines(&expected).join("\n"),
                    "{data}, batch {batch}, {kernels} kernels"
                );
            }
        }
    }
}

#[test]
fn skip_executor_matches_forward_single_for_fixed_policies() {
    let expected = json("r32_c10_expected.json");
    let dataset = Dataset::open(&fixture("cifar-10-batches-bin"), Split::Test).unwrap();
    for (kernels, model) in kernel_variants(r32_model) {
        let x = dataset.batch(&[0, 1], &model.config, &Device::Cpu).unwrap();
        for (name, case) in expected["fixed_policies"].as_object().unwrap() {
            let keep: Vec<bool> = case["policy"]
                .as_str()
                .unwrap()
                .chars()
                .map(|c| c == '1')
                .collect();
            let logits = forward_skip(&model.resnet, &x, &keep)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let reference: Vec<f32> = case["logits"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(floats)
                .collect();
            assert_close(&logits, &reference, &format!("{name}, {kernels} kernels"));
        }
    }
}

#[test]
fn masked_executor_matches_the_reference_training_forward() {
    for (kernels, model) in kernel_variants(r32_model) {
        let expected = json("r32_c10_expected.json");
        let dataset = Dataset::open(&fixture("cifar-10-batches-bin"), Split::Test).unwrap();
        let x = dataset
            .batch(&[0, 1, 2, 3], &model.config, &Device::Cpu)
            .unwrap();
        let keep: Vec<Vec<bool>> = expected["masked"]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().chars().map(|c| c == '1').collect())
            .collect();
        let mask = policy_tensor(&keep, &Device::Cpu).unwrap();
        let logits = forward_masked(&model.resnet, &x, &mask, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let reference: Vec<f32> = expected["masked"]["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_close(
            &logits,
            &reference,
            &format!("masked forward, {kernels} kernels"),
        );
        let full = model
            .resnet
            .forward_full(&x, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let reference: Vec<f32> = expected["full_logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_close(
            &full,
            &reference,
            &format!("full forward, {kernels} kernels"),
        );
    }
}

#[test]
fn train_mode_batchnorm_matches_pytorch_and_updates_running_statistics() {
    for (kernels, model) in kernel_variants(r32_model) {
        let expected = &json("r32_c10_expected.json")["train_mode"];
        let dataset = Dataset::open(&fixture("cifar-10-batches-bin"), Split::Test).unwrap();
        let x = dataset
            .batch(&(0..8).collect::<Vec<_>>(), &model.config, &Device::Cpu)
            .unwrap();
        let logits = model
            .resnet
            .forward_full(&x, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let reference: Vec<f32> = expected["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_close(
            &logits,
            &reference,
            &format!("train-mode logits, {kernels} kernels"),
        );
        let bn = model.resnet.stem.batch_norm().unwrap();
        assert_close(
            &bn.running_mean().to_vec1::<f32>().unwrap(),
            &floats(&expected["bn1_running_mean"]),
            "running mean",
        );
        assert_close(
            &bn.running_var().to_vec1::<f32>().unwrap(),
            &floats(&expected["bn1_running_var"]),
            "running var",
        );
    }
}

/// The ImageNet family at reduced widths: 7x7 stem + max-pool, Bottleneck blocks, conv+BN
/// shortcuts, and the policy on the 2x average-pooled input.
fn tiny_imagenet_config() -> Config {
    let spec = |block, classes| ResNetSpec {
        family: Family::ImageNet,
        block,
        layers: vec![1, 1, 1, 1],
        widths: vec![8, 16, 32, 64],
        in_channels: 3,
        classes,
    };
    Config {
        name: "tiny_imagenet".into(),
        base: spec(BlockKind::Bottleneck, Some(10)),
        policy: spec(BlockKind::Basic, None),
        policy_input_pool: 2,
        input: (3, 64, 64),
        transform: Transform {
            resize_crop: None,
            normalize: None,
        },
        class_set: blockdrop::config::ClassSet::ImageNet,
    }
}

#[test]
fn imagenet_family_matches_pytorch() {
    let config = tiny_imagenet_config();
    let path = fixture("tiny_imagenet.pth");
    let (tensors, _) = checkpoint::read_tensors(&path, &std::fs::read(&path).unwrap()).unwrap();
    let make = || {
        build_checked(tensors.clone(), &Device::Cpu, |vb| {
            BlockDrop::new(&config, vb)
        })
        .unwrap()
    };
    for (kernels, model) in kernel_variants(make) {
        let io: HashMap<String, Tensor> =
            candle_core::pickle::read_all(fixture("tiny_imagenet_io.pth"))
                .unwrap()
                .into_iter()
                .collect();
        let x = &io["input"];
        let probs = model.keep_probs(x, false).unwrap();
        assert_close(
            &probs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &io["probs"].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &format!("keep probabilities, {kernels} kernels"),
        );
        let policies = io["policy"].to_vec2::<i64>().unwrap();
        let flops = BlockDropFlops::for_config(&config);
        let expected_flops = io["flops"].to_vec1::<i64>().unwrap();
        let expected_logits = io["logits"].to_vec2::<f32>().unwrap();
        for (i, policy) in policies.iter().enumerate() {
            let keep: Vec<bool> = policy.iter().map(|&b| b == 1).collect();
            let xi = x.narrow(0, i, 1).unwrap();
            let logits = forward_skip(&model.resnet, &xi, &keep)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_close(
                &logits,
                &expected_logits[i],
                &format!("image {i} logits, {kernels} kernels"),
            );
            assert_eq!(
                flops.per_image(&keep) as i64,
                expected_flops[i],
                "image {i} FLOPs"
            );
        }
        let full = model
            .resnet
            .forward_full(x, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_close(
            &full,
            &io["full_logits"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            &format!("full forward, {kernels} kernels"),
        );
    }
}

#[test]
fn bundled_default_model_matches_pytorch_on_fashion_mnist() {
    let expected = json("fmnist_default_expected.json");
    let make = || {
        blockdrop::bundled::default_model(&Device::Cpu)
            .unwrap()
            .model
    };
    for (_, model) in kernel_variants(make) {
        let dataset = Dataset::open(&fixture("fmnist-idx"), Split::Test).unwrap();
        let options = EvalOptions {
            keep_logits: true,
            ..EvalOptions::default()
        };
        let records = evaluate(&model, &dataset, &options, &Device::Cpu, |_, _| {}).unwrap();
        let decided_images = check_records(&records, &expected);
        // The fixture is generated so that every image's policy is decided (no probability
        // within 1e-3 of the threshold) and the summary is separated from rounding: whoever
        // regenerates it must keep that, or this test checks less than its name says.
        assert_eq!(
            decided_images,
            records.len(),
            "only {decided_images} of {} images decided: regenerate the fixture with decided policies",
            records.len()
        );
        assert_eq!(
            expected["separated"].as_bool(),
            Some(true),
            "the fixture's summary is not separated from rounding: regenerate it"
        );
        assert_eq!(
            Summary::of(&records).to_string(),
            summary_lines(&expected).join("\n")
        );
    }
}

#[test]
fn flops_match_pytorch_hook_counts() {
    let expected = json("flops_reference.json");
    let r110 = BlockDropFlops::for_config(&Config::by_name("R110_C10").unwrap());
    assert_eq!(
        r110.base.full(),
        expected["R110_C10_base_full"].as_u64().unwrap()
    );
    assert_eq!(r110.policy, expected["R110_C10_policy"].as_u64().unwrap());
    let r101 = BlockDropFlops::for_config(&Config::by_name("R101_ImgNet").unwrap());
    assert_eq!(
        r101.base.full(),
        expected["R101_ImgNet_base_full"].as_u64().unwrap()
    );
    assert_eq!(
        r101.policy,
        expected["R101_ImgNet_policy"].as_u64().unwrap()
    );
}

#[test]
fn the_forced_instruction_set_path_is_the_one_in_use() {
    assert_forced_isa();
}
