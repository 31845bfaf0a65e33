//! Model structure: what a dropped block does, and the model file's checks.

mod common;

use blockdrop::config::Config;
use blockdrop::exec::forward_skip;
use blockdrop::kernels::Kernels;
use blockdrop::model::{BlockDrop, FlatResNet};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

fn random_model(config: &str) -> BlockDrop {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BlockDrop::new(&Config::by_name(config).unwrap(), vb).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap())
}

/// `net.residual(k, x)` for an NCHW `x`, whichever layout the network's kernels keep.
fn residual_nchw(net: &FlatResNet, k: usize, x: &Tensor) -> Tensor {
    match net.kernels() {
        Kernels::Stock => net.residual(k, x, false).unwrap(),
        Kernels::Fast => {
            let nhwc = x.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
            let out = net.residual(k, &nhwc, false).unwrap();
            out.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap()
        }
    }
}

#[test]
fn dropped_first_block_still_downsamples() {
    for kernels in [Kernels::Stock, Kernels::Fast] {
        let mut model = random_model("R32_C10");
        model.set_kernels(kernels).unwrap();
        let net = &model.resnet;
        let x = Tensor::randn(0f32, 1.0, (2, 16, 32, 32), &Device::Cpu).unwrap();
        // Block 5 opens segment 2 (stride 2, 16 → 32 channels): dropped, it outputs the option-A
        // shortcut, average-pooled 2x2 with 16 zero channels appended.
        let out = residual_nchw(net, 5, &x);
        assert_eq!(out.dims(), &[2, 32, 16, 16]);
        let pooled = x.avg_pool2d(2).unwrap();
        assert!(
            max_abs_diff(&out.narrow(1, 0, 16).unwrap(), &pooled) < 1e-6,
            "{kernels:?}"
        );
        assert_eq!(max_abs(&out.narrow(1, 16, 16).unwrap()), 0.0);
        // A block inside a segment passes its input through unchanged.
        assert_eq!(max_abs_diff(&residual_nchw(net, 6, &out), &out), 0.0);
    }
}

#[test]
fn everything_dropped_is_stem_shortcuts_and_head() {
    let model = random_model("R32_C10");
    let net = &model.resnet;
    let image = Tensor::randn(0f32, 1.0, (1, 3, 32, 32), &Device::Cpu).unwrap();
    let stem = net.stem(&image, false).unwrap();
    let s1 = net.shortcuts[1]
        .forward_t(&stem, false, net.kernels())
        .unwrap();
    let s2 = net.shortcuts[2]
        .forward_t(&s1, false, net.kernels())
        .unwrap();
    let expected = net.head(&s2).unwrap();
    let logits = forward_skip(net, &image, &[false; 15]).unwrap();
    assert_eq!(max_abs_diff(&logits, &expected), 0.0);
}

#[test]
fn imagenet_shortcut_of_a_dropped_block_is_the_projection() {
    let model = random_model("R101_ImgNet");
    let net = &model.resnet;
    assert_eq!(net.num_blocks(), 33);
    // Block 3 opens segment 2 (after 3 blocks): 256 → 512 channels at stride 2.
    let x = Tensor::randn(0f32, 1.0, (1, 256, 14, 14), &Device::Cpu).unwrap();
    assert_eq!(residual_nchw(net, 3, &x).dims(), &[1, 512, 7, 7]);
}

#[test]
fn a_policy_of_the_wrong_length_is_an_error() {
    let model = random_model("R32_C10");
    let image = Tensor::zeros((1, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(forward_skip(&model.resnet, &image, &[true; 14]).is_err());
}

#[test]
fn a_model_folded_for_inference_computes_the_same_and_refuses_training() {
    // The ImageNet family too: its stem's max-pool has a kernel of its own in inference.
    for config in ["R32_C10", "R101_ImgNet"] {
        let (c, h, w) = Config::by_name(config).unwrap().input;
        let size = if config == "R101_ImgNet" { 64 } else { h };
        let x = Tensor::randn(0f32, 1.0, (2, c, size, size * w / h), &Device::Cpu).unwrap();
        for kernels in [Kernels::Stock, Kernels::Fast] {
            let mut folded = random_model(config);
            folded.set_kernels(kernels).unwrap();
            let mut released = folded.clone();
            folded.fold_batchnorm().unwrap();
            released.fold_for_inference().unwrap();
            let keep = vec![true; folded.num_blocks()];
            let a = forward_skip(&folded.resnet, &x, &keep).unwrap();
            let b = forward_skip(&released.resnet, &x, &keep).unwrap();
            assert_eq!(max_abs_diff(&a, &b), 0.0, "{config}, {kernels:?}");
            // Training and other kernels need the unfolded weights: a clear error.
            let error = released.resnet.stem.forward_t(&x, true).unwrap_err();
            assert!(
                error.to_string().contains("folded for inference only"),
                "{error}"
            );
            assert!(released.resnet.stem.batch_norm().is_none());
            let other = match kernels {
                Kernels::Stock => Kernels::Fast,
                Kernels::Fast => Kernels::Stock,
            };
            assert!(released.set_kernels(other).is_err());
        }
    }
}

#[test]
fn the_forced_instruction_set_path_is_the_one_in_use() {
    common::assert_forced_isa();
}

/// Every BatchNorm of `varmap` given random statistics and affine parameters, so that a fold
/// that dropped or misplaced one shows.
fn randomise_batchnorm(varmap: &VarMap) {
    let data = varmap.data().lock().unwrap();
    for (name, var) in data.iter() {
        let shape = var.as_tensor().shape().clone();
        let uniform = |lo: f32, hi: f32| Tensor::rand(lo, hi, &shape, &Device::Cpu).unwrap();
        let is_bn = name.contains(".bn") || name.contains("ds.");
        if name.ends_with("running_var") {
            var.set(&uniform(0.5, 1.5)).unwrap();
        } else if name.ends_with("running_mean") || (is_bn && name.ends_with("bias")) {
            var.set(&uniform(-0.3, 0.3)).unwrap();
        } else if is_bn && name.ends_with("weight") {
            var.set(&uniform(0.7, 1.3)).unwrap();
        }
    }
}

/// The fused pass of a folded network (`blockdrop::model::fused`) against the operators it
/// replaces: the base with every block, with blocks dropped (segment-opening ones included)
/// and with none; the policy's features with its input padded and pooled.
#[test]
fn the_fused_pass_matches_the_operators() {
    use blockdrop::exec::{forward_skip_hooked, Direct};
    use common::rel_err;
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (name, pool) in [
        ("R32_FMNIST", 1),
        ("R32_FMNIST", 2),
        ("R32_C10", 2),
        ("R110_C10", 1),
    ] {
        let mut config = Config::by_name(name).unwrap();
        config.policy_input_pool = pool;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let mut model = BlockDrop::new(&config, vb).unwrap();
        randomise_batchnorm(&varmap);
        assert!(
            !model.resnet.fusable(),
            "an unfolded network has no fused pass"
        );
        model.set_kernels(Kernels::Fast).unwrap();
        model.fold_batchnorm().unwrap();
        assert!(model.resnet.fusable(), "{name}");
        let (c, h, w) = config.input;
        let x = Tensor::randn(0f32, 1.0, (3, c, h, w), &Device::Cpu).unwrap();
        let k = model.num_blocks();
        for keep in [
            vec![true; k],
            (0..k).map(|i| i % 5 != 0).collect(),
            (0..k).map(|i| i % 3 != 1).collect(),
            vec![false; k],
        ] {
            let fused = forward_skip(&model.resnet, &x, &keep).unwrap();
            let ops = forward_skip_hooked(&model.resnet, &x, &keep, &mut Direct).unwrap();
            let err = rel_err(&values(&fused), &values(&ops));
            assert!(err < 1e-5, "{name} {keep:?}: relative error {err:.2e}");
        }
        let full = model.resnet.forward_full(&x, false).unwrap();
        let ops = forward_skip_hooked(&model.resnet, &x, &vec![true; k], &mut Direct).unwrap();
        assert!(rel_err(&values(&full), &values(&ops)) < 1e-5, "{name}");
        // The policy: its input padded to a multiple of the pool, pooled, then the trunk.
        let policy = model.policy().unwrap();
        let fused = policy.features(&x, false).unwrap();
        let (top, bottom, _) = config.policy_input_side(h);
        let (left, right, _) = config.policy_input_side(w);
        let mut shrunk = x.pad_with_zeros(2, top, bottom).unwrap();
        shrunk = shrunk.pad_with_zeros(3, left, right).unwrap();
        if pool > 1 {
            shrunk = shrunk.avg_pool2d(pool).unwrap();
        }
        let trunk = &policy.features;
        let all = vec![true; trunk.num_blocks()];
        let ops = forward_skip_hooked(trunk, &shrunk, &all, &mut Direct).unwrap();
        assert_eq!(fused.dims(), ops.dims());
        let err = rel_err(&values(&fused), &values(&ops));
        assert!(
            err < 1e-5,
            "{name} policy at pool {pool}: relative error {err:.2e}"
        );
    }
}

/// The fused pass refuses an input with the wrong number of channels (also after a pass that
/// grew its buffers), and an empty batch gives `[0, classes]` as the operators do.
#[test]
fn the_fused_pass_checks_its_input() {
    use blockdrop::model::fused::InputPrep;
    let mut model = random_model("R32_C10");
    model.set_kernels(Kernels::Fast).unwrap();
    model.fold_batchnorm().unwrap();
    let net = &model.resnet;
    let right = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
    assert_eq!(
        net.fused_forward(&right, None, InputPrep::NONE)
            .unwrap()
            .dims(),
        &[2, 10]
    );
    for channels in [1, 4] {
        let wrong = Tensor::randn(0f32, 1.0, (2, channels, 32, 32), &Device::Cpu).unwrap();
        let err = net
            .fused_forward(&wrong, None, InputPrep::NONE)
            .unwrap_err();
        assert!(err.to_string().contains("channels"), "{err}");
    }
    let empty = Tensor::zeros((0, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let out = net.fused_forward(&empty, None, InputPrep::NONE).unwrap();
    assert_eq!(out.dims(), &[0, 10]);
}
