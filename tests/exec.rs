//! Executors agree with running each image alone; the profiler times every stage once per
//! run; folding BatchNorm leaves the outputs alone.

mod common;

use blockdrop::exec::{
    choose_strategy, forward_batch, forward_gather, forward_grouped, forward_masked,
    forward_masked_sparse, forward_skip, forward_skip_hooked, Stage, Strategy,
};
use blockdrop::model::blockdrop::policy_tensor;
use blockdrop::profile::timer::StageTimer;
use blockdrop::profile::{profile, ProfileOptions};
use candle_core::{Device, Tensor};
use common::*;

/// Mixed policies: all kept, all dropped, segment-opening blocks dropped, and scattered ones.
fn mixed_policies(n: usize) -> Vec<Vec<bool>> {
    (0..n)
        .map(|i| match i % 4 {
            0 => vec![true; 15],
            1 => vec![false; 15],
            2 => (0..15).map(|k| k % 5 != 0).collect(),
            _ => (0..15).map(|k| (k * 7 + i) % 3 == 0).collect(),
        })
        .collect()
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

#[test]
fn every_executor_matches_running_each_image_alone() {
    let model = r32_model();
    let n = 12;
    let x = cifar_bin()
        .batch(&(0..n).collect::<Vec<_>>(), &model.config, &Device::Cpu)
        .unwrap();
    let keep = mixed_policies(n);
    let alone: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            rows(&forward_skip(&model.resnet, &x.narrow(0, i, 1).unwrap(), &keep[i]).unwrap())
                .remove(0)
        })
        .collect();
    let mask = policy_tensor(&keep, &Device::Cpu).unwrap();
    let outputs = [
        (
            "grouped",
            forward_grouped(&model.resnet, &x, &keep).unwrap(),
        ),
        ("gather", forward_gather(&model.resnet, &x, &keep).unwrap()),
        (
            "masked",
            forward_masked(&model.resnet, &x, &mask, false).unwrap(),
        ),
        (
            "masked, sparse",
            forward_masked_sparse(&model.resnet, &x, &keep, false).unwrap(),
        ),
        ("auto", forward_batch(&model.resnet, &x, &keep).unwrap()),
    ];
    for (name, out) in outputs {
        let got_rows = rows(&out);
        assert_eq!(got_rows.len(), alone.len(), "{name}: one row per image");
        for (i, (got, want)) in got_rows.iter().zip(&alone).enumerate() {
            let err = rel_err(got, want);
            assert!(
                err < 1e-6,
                "{name}, image {i} (policy {:?}): relative error {err:.2e}",
                keep[i]
            );
        }
    }
}

#[test]
fn strategy_follows_policy_diversity() {
    assert_eq!(
        choose_strategy(&vec![vec![true, false]; 64]),
        Strategy::Skip
    );
    let two: Vec<Vec<bool>> = (0..64).map(|i| vec![i % 2 == 0, true]).collect();
    assert_eq!(choose_strategy(&two), Strategy::Grouped);
    let many: Vec<Vec<bool>> = (0..16)
        .map(|i| (0..8).map(|k| (i >> (k % 4)) & 1 == 1).collect())
        .collect();
    assert_eq!(choose_strategy(&many), Strategy::Gather);
}

#[test]
fn the_timer_sees_every_stage_exactly_once_per_run() {
    let model = r32_model();
    let x = cifar_bin()
        .batch(&[0, 1], &model.config, &Device::Cpu)
        .unwrap();
    let mut timer = StageTimer::new(&Device::Cpu);
    let keep: Vec<bool> = (0..15).map(|k| k % 2 == 0).collect();
    for _ in 0..3 {
        forward_skip_hooked(&model.resnet, &x, &keep, &mut timer).unwrap();
    }
    let stages: Vec<Stage> = timer.samples.keys().copied().collect();
    let mut expected = vec![Stage::Stem];
    expected.extend((0..15).map(Stage::Block));
    expected.push(Stage::Head);
    assert_eq!(stages, expected);
    assert!(timer.samples.values().all(|s| s.len() == 3));
}

#[test]
fn the_profile_covers_policy_stem_every_block_and_head() {
    let model = r32_model();
    let options = ProfileOptions {
        images: 2,
        batch: 2,
        repeat: 2,
        warmup: 1,
    };
    let report = profile(&model, &cifar_bin(), &options, &Device::Cpu).unwrap();
    assert_eq!(report.stages.len(), 1 + 1 + 15 + 1);
    assert_eq!(report.stages[0].stage, Stage::Policy);
    assert_eq!(report.stages[17].stage, Stage::Head);
    assert_eq!(
        (report.stages[6].segment, report.stages[7].segment),
        (Some(0), Some(1))
    );
    // Block 5 opens segment 2: its FLOPs (batch 2) are its two convolutions at 16x16.
    assert_eq!(
        report.stages[7].flops,
        2 * 2 * (16 * 32 + 32 * 32) * 9 * 16 * 16
    );
    assert_eq!(report.images.len(), 2);
    assert!(report
        .images
        .iter()
        .all(|i| i.path_us > 0.0 && i.flop_ratio > 0.0 && i.flop_ratio < 1.0));
    let dir = tempfile::tempdir().unwrap();
    for name in ["profile.json", "profile.parquet"] {
        blockdrop::profile::write(&report, &dir.path().join(name)).unwrap();
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("profile.json")).unwrap())
            .unwrap();
    assert_eq!(json["stages"].as_array().unwrap().len(), 18);
    // The report names the operators and instruction-set path that were timed.
    let kernels = format!("fast ({})", blockdrop::kernels::isa::Isa::active());
    assert_eq!(json["kernels"], kernels.as_str());
    assert!(report
        .to_string()
        .contains(&format!("with {kernels} kernels")));
    assert_eq!(
        blockdrop::output::frame::read_parquet(&dir.path().join("profile.parquet"))
            .unwrap()
            .height(),
        18
    );
}

#[test]
fn folding_batchnorm_changes_logits_by_less_than_1e_5() {
    let plain = r32_model();
    let mut folded = r32_model();
    folded.fold_batchnorm().unwrap();
    let x = cifar_bin()
        .batch(&(0..8).collect::<Vec<_>>(), &plain.config, &Device::Cpu)
        .unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let err = rel_err(
        &flat(folded.resnet.forward_full(&x, false).unwrap()),
        &flat(plain.resnet.forward_full(&x, false).unwrap()),
    );
    assert!(err < 1e-5, "base network: {err:.2e}");
    let err = rel_err(
        &flat(folded.keep_probs(&x, false).unwrap()),
        &flat(plain.keep_probs(&x, false).unwrap()),
    );
    assert!(err < 1e-5, "policy network: {err:.2e}");
    // Training mode ignores the fold: batch statistics, as before.
    let err = rel_err(
        &flat(folded.resnet.forward_full(&x, true).unwrap()),
        &flat(plain.resnet.forward_full(&x, true).unwrap()),
    );
    assert!(err < 1e-6, "train mode: {err:.2e}");
}

#[test]
fn the_forced_instruction_set_path_is_the_one_in_use() {
    assert_forced_isa();
}
