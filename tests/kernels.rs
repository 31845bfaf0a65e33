//! The fast NHWC kernels against candle's stock ops: forward on many shapes (odd sizes
//! included), and gradients against candle's autograd on the stock path.

mod common;

use blockdrop::kernels::isa::{self, Isa};
use blockdrop::kernels::{ops, ConvGeom};
use blockdrop::model::norm::batch_norm_nhwc;
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::{BatchNorm, BatchNormConfig, ModuleT};
use common::rel_err;

const CPU: Device = Device::Cpu;

/// The seed of every test's inputs: `BLOCKDROP_TEST_SEED`, else a fixed one, so a failure
/// replays (candle's own `randn` cannot be seeded on the CPU).
fn seed() -> u64 {
    std::env::var("BLOCKDROP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

thread_local! {
    /// One stream per test thread (libtest runs each test on a thread of its own), so a
    /// test's inputs do not depend on which tests ran before it.
    static RNG: std::cell::RefCell<blockdrop::rng::Rng> = {
        let seed = seed();
        println!("inputs drawn with BLOCKDROP_TEST_SEED={seed}");
        std::cell::RefCell::new(blockdrop::rng::Rng::new(seed))
    };
}

/// Standard normal values (Box-Muller over the project's seeded generator).
fn randn(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = RNG.with(|rng| {
        let mut rng = rng.borrow_mut();
        (0..n)
            .map(|_| {
                let u1 = (rng.uniform() as f64).max(1e-12);
                let u2 = rng.uniform() as f64;
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect()
    });
    Tensor::from_vec(values, shape, &CPU).unwrap()
}

fn nchw_to_nhwc(x: &Tensor) -> Tensor {
    x.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap()
}

/// Gradients of `Σ y·probe`: a random linear functional of the output, so every output
/// element's gradient differs.
fn probe_grads(y: &Tensor, probe: &Tensor) -> GradStore {
    (y * probe).unwrap().sum_all().unwrap().backward().unwrap()
}

fn values(x: &Tensor) -> Vec<f32> {
    x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// (kernel, stride, pad, cin, cout, batch, side): every kernel shape the networks use, odd
/// sizes (Fashion-MNIST's 28, 7x7 and 9x9 maps), one and several images, odd channel counts.
const SHAPES: [(usize, usize, usize, usize, usize, usize, usize); 12] = [
    (3, 1, 1, 16, 16, 2, 28),
    (3, 2, 1, 16, 32, 3, 28),
    (3, 1, 1, 64, 64, 1, 7),
    (3, 2, 1, 5, 7, 2, 9),
    (1, 1, 0, 8, 24, 2, 7),
    (1, 2, 0, 8, 16, 3, 9),
    (7, 2, 3, 3, 8, 2, 32),
    (3, 1, 1, 1, 16, 4, 28),
    (3, 1, 0, 4, 4, 1, 5),
    (3, 1, 1, 32, 8, 65, 4),
    // Winograd on the AVX2 path (its packed transform; the input gradient's transposed layer).
    (3, 1, 1, 32, 32, 3, 16),
    (3, 1, 1, 16, 32, 2, 9),
];

fn geom(
    (kernel, stride, pad, cin, cout, _, _): (usize, usize, usize, usize, usize, usize, usize),
) -> ConvGeom {
    ConvGeom {
        kernel,
        stride,
        pad,
        cin,
        cout,
    }
}

fn stock_conv(x: &Tensor, w: &Tensor, g: ConvGeom) -> Tensor {
    x.conv2d(w, g.pad, g.stride, 1, 1).unwrap()
}

#[test]
fn fused_conv_matches_stock_conv_bias_residual_relu() {
    for shape in SHAPES {
        let g = geom(shape);
        let (batch, side) = (shape.5, shape.6);
        let x = randn(&[batch, g.cin, side, side]);
        let w = randn(&[g.cout, g.cin, g.kernel, g.kernel]);
        let b = randn(&[g.cout]);
        let y = stock_conv(&x, &w, g)
            .broadcast_add(&b.reshape((1, (), 1, 1)).unwrap())
            .unwrap();
        let residual = randn(y.dims());
        let expected = nchw_to_nhwc(&(&y + &residual).unwrap().relu().unwrap());
        let packed = ops::pack_with_bias(&w, &b, g).unwrap();
        let out = ops::fused_conv2d(
            &nchw_to_nhwc(&x),
            &packed,
            Some(&nchw_to_nhwc(&residual)),
            g,
            true,
        )
        .unwrap();
        assert_eq!(out.dims(), expected.dims(), "{g:?}");
        let err = rel_err(&values(&out), &values(&expected));
        assert!(
            err < 1e-5,
            "{g:?} batch {batch} side {side}: relative error {err:.2e}"
        );
        let plain = ops::fused_conv2d(&nchw_to_nhwc(&x), &packed, None, g, false).unwrap();
        let err = rel_err(&values(&plain), &values(&nchw_to_nhwc(&y)));
        assert!(
            err < 1e-5,
            "{g:?} without epilogue: relative error {err:.2e}"
        );
    }
}

#[test]
fn conv_gradients_match_candle_autograd_on_the_stock_path() {
    for shape in SHAPES {
        let g = geom(shape);
        let (batch, side) = (shape.5, shape.6);
        let x = Var::from_tensor(&randn(&[batch, g.cin, side, side])).unwrap();
        let w = Var::from_tensor(&randn(&[g.cout, g.cin, g.kernel, g.kernel])).unwrap();
        let y = stock_conv(&x, &w, g);
        let probe = randn(y.dims());
        let stock = probe_grads(&y, &probe);

        let x_fast = Var::from_tensor(&nchw_to_nhwc(x.as_tensor())).unwrap();
        let y_fast = ops::conv2d(&x_fast, &ops::hwio(&w).unwrap(), g).unwrap();
        let fast = probe_grads(&y_fast, &nchw_to_nhwc(&probe));

        let dx = nchw_to_nhwc(stock.get(&x).unwrap());
        let err = rel_err(&values(fast.get(&x_fast).unwrap()), &values(&dx));
        assert!(err < 1e-4, "{g:?}: input gradient relative error {err:.2e}");
        let err = rel_err(
            &values(fast.get(&w).unwrap()),
            &values(stock.get(&w).unwrap()),
        );
        assert!(
            err < 1e-4,
            "{g:?}: weight gradient relative error {err:.2e}"
        );
    }
}

fn batch_norm(channels: usize) -> (BatchNorm, Var, Var) {
    let gamma = Var::from_tensor(&randn(&[channels]).affine(0.5, 1.0).unwrap()).unwrap();
    let beta = Var::from_tensor(&randn(&[channels])).unwrap();
    let config = BatchNormConfig {
        eps: 1e-5,
        remove_mean: true,
        affine: true,
        momentum: 0.1,
    };
    let bn = BatchNorm::new(
        channels,
        Tensor::zeros(channels, candle_core::DType::F32, &CPU).unwrap(),
        Tensor::ones(channels, candle_core::DType::F32, &CPU).unwrap(),
        gamma.as_tensor().clone(),
        beta.as_tensor().clone(),
        config.eps,
    )
    .unwrap();
    (bn, gamma, beta)
}

#[test]
fn fused_train_batchnorm_matches_candle_forward_gradients_and_running_stats() {
    for (batch, side, channels, with_residual) in
        [(4, 7, 16, true), (2, 9, 5, false), (3, 28, 16, true)]
    {
        let (stock_bn, gamma, beta) = batch_norm(channels);
        // Same parameters, its own running statistics.
        let fast_bn = BatchNorm::new(
            channels,
            Tensor::zeros(channels, candle_core::DType::F32, &CPU).unwrap(),
            Tensor::ones(channels, candle_core::DType::F32, &CPU).unwrap(),
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            1e-5,
        )
        .unwrap();
        let x = Var::from_tensor(
            &randn(&[batch, channels, side, side])
                .affine(3.0, 1.0)
                .unwrap(),
        )
        .unwrap();
        let residual = Var::from_tensor(&randn(&[batch, channels, side, side])).unwrap();
        let probe = randn(&[batch, channels, side, side]);

        let mut y = stock_bn.forward_t(&x, true).unwrap();
        if with_residual {
            y = (y + residual.as_tensor()).unwrap();
        }
        let y = y.relu().unwrap();
        let stock = probe_grads(&y, &probe);

        let x_fast = Var::from_tensor(&nchw_to_nhwc(&x)).unwrap();
        let r_fast = Var::from_tensor(&nchw_to_nhwc(&residual)).unwrap();
        let y_fast = batch_norm_nhwc(
            &fast_bn,
            &x_fast,
            true,
            with_residual.then_some(r_fast.as_tensor()),
            true,
        )
        .unwrap();
        let fast = probe_grads(&y_fast, &nchw_to_nhwc(&probe));

        let what = format!("batch {batch}, {side}x{side}x{channels}");
        let close = |a: &Tensor, b: &Tensor, name: &str| {
            let err = rel_err(&values(a), &values(b));
            assert!(err < 1e-4, "{what}: {name} relative error {err:.2e}");
        };
        close(&y_fast, &nchw_to_nhwc(&y), "output");
        close(
            fast.get(&x_fast).unwrap(),
            &nchw_to_nhwc(stock.get(&x).unwrap()),
            "input gradient",
        );
        close(
            fast.get(&gamma).unwrap(),
            stock.get(&gamma).unwrap(),
            "γ gradient",
        );
        close(
            fast.get(&beta).unwrap(),
            stock.get(&beta).unwrap(),
            "β gradient",
        );
        if with_residual {
            close(
                fast.get(&r_fast).unwrap(),
                &nchw_to_nhwc(stock.get(&residual).unwrap()),
                "residual gradient",
            );
        }
        close(
            fast_bn.running_mean(),
            stock_bn.running_mean(),
            "running mean",
        );
        close(
            fast_bn.running_var(),
            stock_bn.running_var(),
            "running variance",
        );
    }
}

/// Runs `check` on the test's rayon pool, then on a one-thread pool, where each task of the
/// banded kernels takes the widest band (the band size follows the thread count); `check`
/// gets the pool's name for its messages.
fn on_each_pool(mut check: impl FnMut(&str) + Send) {
    check("the test pool");
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    one_thread.install(|| check("one thread"));
}

/// Paths `BLOCKDROP_REQUIRE_ISA` (comma-separated, as `.ci/run` sets it from
/// /proc/cpuinfo) says this machine must test: skipping one of them fails the test.
fn required(isa: Isa) -> bool {
    std::env::var("BLOCKDROP_REQUIRE_ISA").is_ok_and(|list| {
        list.split(',')
            .any(|name| name.trim().eq_ignore_ascii_case(isa.name()))
    })
}

/// Skips the `isa` path of a test, loudly: on stdout (shown with `--nocapture` and in
/// the failure of a required path) and stderr; a path that is required fails instead.
fn skip(isa: Isa, what: &str) {
    assert!(
        !required(isa),
        "{what}: the {isa} path is required (BLOCKDROP_REQUIRE_ISA) but this CPU lacks it"
    );
    println!("SKIPPED {what}: this CPU lacks the {isa} path");
    eprintln!("SKIPPED {what}: this CPU lacks the {isa} path");
}

/// The instruction-set paths with direct kernels that this CPU can run; the others are named
/// on stderr as skipped, so a run never passes by silently taking another path.
fn direct_paths() -> Vec<Isa> {
    let (have, lack): (Vec<Isa>, Vec<Isa>) = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .partition(|isa| isa.available());
    for &isa in &lack {
        skip(isa, "direct kernels");
    }
    if !lack.is_empty() {
        let names: Vec<&str> = lack.iter().map(|isa| isa.name()).collect();
        eprintln!(
            "direct kernels: skipped the {} path(s), which this CPU lacks",
            names.join(", ")
        );
    }
    have
}

#[test]
fn direct_and_gemm_paths_agree_on_narrow_layers_on_every_isa() {
    use blockdrop::kernels::conv::{self, Epilogue, Nhw};
    use blockdrop::kernels::direct;
    let paths = direct_paths();
    let mut compared = 0;
    for (kernel, stride, pad, cin, cout, side) in [
        (3, 1, 1, 16, 16, 28),
        (3, 2, 1, 16, 32, 29),
        (3, 1, 1, 1, 16, 9),
        (1, 2, 0, 16, 32, 14),
        (3, 1, 1, 32, 32, 7),
        (3, 1, 1, 8, 16, 5),
        (3, 2, 1, 3, 32, 10),
        (3, 2, 1, 32, 32, 9),
        (7, 2, 3, 3, 16, 11),
        (3, 1, 1, 64, 64, 8),
        (3, 1, 1, 64, 64, 7),
        (3, 2, 1, 32, 64, 15),
        // Bands of several output rows per task (strided too; 3 images on 2 threads).
        (3, 2, 1, 16, 32, 32),
        (3, 1, 1, 64, 64, 16),
        (3, 1, 1, 16, 16, 1),
        (3, 1, 1, 3, 16, 2),
    ] {
        let g = ConvGeom {
            kernel,
            stride,
            pad,
            cin,
            cout,
        };
        let input = Nhw {
            n: 3,
            h: side,
            w: side,
        };
        let x = values(&randn(&[3, side, side, cin]));
        let w = values(&randn(&[g.patch_len(), cout]));
        let (bias, residual_len) = (
            values(&randn(&[cout])),
            g.output(input).unwrap().pixels() * cout,
        );
        let residual = values(&randn(&[residual_len]));
        let epilogue = Epilogue {
            bias: Some(&bias),
            residual: Some(&residual),
            relu: true,
        };
        let mut gemm = vec![f32::NAN; residual_len];
        conv::forward_gemm(&g, input, &x, &w, epilogue, &mut gemm);
        let gemm_dw = conv::backward_weight_gemm(&g, input, &x, &residual);
        for &isa in &paths {
            if direct::supported_on(&g, isa) {
                on_each_pool(|pool| {
                    let mut fast = vec![f32::NAN; residual_len];
                    direct::forward_on(isa, &g, input, &x, &w, epilogue, &mut fast);
                    let err = rel_err(&fast, &gemm);
                    assert!(
                        err < 1e-5,
                        "{isa}: {g:?} at {side}x{side} ({pool}): relative error {err:.2e}"
                    );
                    compared += 1;
                });
            }
            if direct::supports_weight_grad_on(&g, isa) {
                // The weight gradient, with the residual standing in for the output gradient.
                let fast = direct::backward_weight_on(isa, &g, input, &x, &residual);
                let err = rel_err(&fast, &gemm_dw);
                assert!(
                    err < 1e-5,
                    "{isa}: {g:?} at {side}x{side}: weight gradient relative error {err:.2e}"
                );
                compared += 1;
            }
        }
    }
    assert!(
        paths.is_empty() || compared > 0,
        "no layer compared on {paths:?}"
    );
    println!("compared {compared} layers on {paths:?}");
}

/// Winograd F(2×2, 3×3) against the GEMM on every path with Winograd kernels (AVX2 and
/// AVX-512; a path this CPU lacks is named as skipped), F(2×2, 3×3) and F(4×4, 3×3), forward
/// (bias, residual and ReLU included) and weight gradient: whole and partial tiles,
/// padding 0–2, a last group of 8 input channels, bands on two threads and on one, single
/// tiles.
#[test]
fn winograd_and_gemm_agree_on_3x3_stride_1_layers() {
    use blockdrop::kernels::conv::{self, Epilogue, Nhw};
    use blockdrop::kernels::winograd::{self, Tile};
    const TILES: [Tile; 2] = [Tile::F2, Tile::F4];
    let paths: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|&isa| {
            let have = isa.available();
            if !have {
                skip(isa, "winograd");
            }
            have
        })
        .collect();
    const SHAPES: [(usize, usize, usize, usize, usize); 15] = [
        (1, 16, 16, 32, 3),
        (1, 32, 32, 16, 3),
        (1, 64, 64, 8, 3),
        (1, 64, 64, 7, 2),
        (1, 16, 16, 28, 1),
        (1, 32, 32, 14, 3),
        (1, 8, 16, 5, 3),
        (1, 16, 32, 1, 3),
        (1, 16, 16, 2, 1),
        (1, 16, 16, 3, 5),
        (0, 64, 16, 6, 2),
        (2, 16, 48, 5, 2),
        (1, 24, 32, 9, 3),
        (0, 8, 16, 3, 1),
        // More tiles than one register block of every path (14 × 32 on AVX-512, 28 × 16).
        (1, 40, 64, 30, 1),
    ];
    let mut compared = 0;
    for (pad, cin, cout, side, batch) in SHAPES {
        let g = ConvGeom {
            kernel: 3,
            stride: 1,
            pad,
            cin,
            cout,
        };
        let input = Nhw {
            n: batch,
            h: side,
            w: side,
        };
        let x = values(&randn(&[batch, side, side, cin]));
        let w = values(&randn(&[g.patch_len(), cout]));
        let out_len = g.output(input).unwrap().pixels() * cout;
        let (bias, residual) = (values(&randn(&[cout])), values(&randn(&[out_len])));
        let gemm_dw = conv::backward_weight_gemm(&g, input, &x, &residual);
        for &isa in &paths {
            for tile in TILES {
                assert!(
                    winograd::supported_on(&g, isa, tile),
                    "{isa} {tile:?}: {g:?}"
                );
            }
            for (tile, epilogue) in TILES.into_iter().flat_map(|tile| {
                [
                    Epilogue {
                        bias: Some(&bias),
                        residual: Some(&residual),
                        relu: true,
                    },
                    Epilogue::default(),
                ]
                .map(|e| (tile, e))
            }) {
                let v = winograd::transform_weights(&g, tile, &w);
                let mut gemm = vec![f32::NAN; out_len];
                conv::forward_gemm(&g, input, &x, &w, epilogue, &mut gemm);
                on_each_pool(|pool| {
                    let mut fast = vec![f32::NAN; out_len];
                    winograd::forward_on(isa, tile, &g, input, &x, &v, epilogue, &mut fast);
                    let err = rel_err(&fast, &gemm);
                    assert!(
                        err < 1e-5,
                        "{isa} {tile:?}: {g:?} at {batch}x{side}x{side} ({pool}): relative error {err:.2e}"
                    );
                    compared += 1;
                });
            }
            // The weight gradient, with the residual standing in for the output gradient.
            for tile in TILES {
                let fast_dw = winograd::backward_weight_on(isa, tile, &g, input, &x, &residual);
                let err = rel_err(&fast_dw, &gemm_dw);
                assert!(
                    err < 1e-5,
                    "{isa} {tile:?}: {g:?} at {batch}x{side}x{side}: weight gradient relative error {err:.2e}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, paths.len() * SHAPES.len() * TILES.len() * 5);
}

/// The path forced by `BLOCKDROP_ISA` in a child run of these tests (see below).
const CHILD: &str = "BLOCKDROP_KERNEL_TESTS_CHILD";

#[test]
fn every_kernel_test_passes_on_every_isa_path_of_this_cpu() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    // The elementwise loops and the convolution dispatch read the path once per process, so
    // each other path runs this whole test binary again with the path forced.
    let exe = std::env::current_exe().unwrap();
    for isa in Isa::ALL {
        if !isa.available() {
            eprintln!("kernel tests: skipped the {isa} path, which this CPU lacks");
            continue;
        }
        if isa == Isa::active() {
            continue;
        }
        let out = std::process::Command::new(&exe)
            .env(isa::ENV, isa.name())
            .env(CHILD, "1")
            .args(["--test-threads", "1"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kernel tests failed with {}={isa}:\n{}{}",
            isa::ENV,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("test result: ok"), "{stdout}");
    }
}

#[test]
fn the_forced_path_is_the_one_in_use() {
    match std::env::var(isa::ENV) {
        Ok(name) => assert_eq!(Isa::active().name(), name),
        Err(_) => assert_eq!(Isa::active(), Isa::detected()),
    }
}

#[test]
fn shortcut_and_global_pool_match_candle_forward_and_gradients() {
    use blockdrop::kernels::pool;
    // Even sides only: on odd ones candle's avg_pool2d backward upsamples by nearest neighbour
    // instead of leaving the cut-off row and column at zero as PyTorch does (ours does).
    for (batch, channels, side, stride, extra) in
        [(2, 16, 28, 2, 16), (3, 32, 14, 2, 32), (1, 4, 9, 1, 4)]
    {
        let x = Var::from_tensor(&randn(&[batch, channels, side, side])).unwrap();
        let pooled = if stride > 1 {
            x.avg_pool2d(stride).unwrap()
        } else {
            x.as_tensor().clone()
        };
        let stock = pooled.pad_with_zeros(1, 0, extra).unwrap();
        let probe = randn(stock.dims());
        let stock_grads = probe_grads(&stock, &probe);
        let x_fast = Var::from_tensor(&nchw_to_nhwc(&x)).unwrap();
        let fast = pool::shortcut_a(&x_fast, stride, extra).unwrap();
        let fast_grads = probe_grads(&fast, &nchw_to_nhwc(&probe));
        let what = format!("shortcut {batch}x{side}x{side}x{channels} /{stride} +{extra}");
        assert!(
            rel_err(&values(&fast), &values(&nchw_to_nhwc(&stock))) < 1e-6,
            "{what}"
        );
        let err = rel_err(
            &values(fast_grads.get(&x_fast).unwrap()),
            &values(&nchw_to_nhwc(stock_grads.get(&x).unwrap())),
        );
        assert!(err < 1e-6, "{what}: gradient relative error {err:.2e}");

        let stock = x.mean((2, 3)).unwrap();
        let probe = randn(stock.dims());
        let stock_grads = probe_grads(&stock, &probe);
        let fast = pool::global_avg_pool(&x_fast).unwrap();
        let fast_grads = probe_grads(&fast, &probe);
        assert!(
            rel_err(&values(&fast), &values(&stock)) < 1e-6,
            "global pool {what}"
        );
        let err = rel_err(
            &values(fast_grads.get(&x_fast).unwrap()),
            &values(&nchw_to_nhwc(stock_grads.get(&x).unwrap())),
        );
        assert!(
            err < 1e-6,
            "global pool {what}: gradient relative error {err:.2e}"
        );
    }
}

#[test]
fn replace_rows_matches_index_add_forward_and_gradients() {
    use blockdrop::kernels::rows::{replace_rows, replace_rows_in_place};
    let base = Var::from_tensor(&randn(&[6, 3, 4, 5])).unwrap();
    let rows = Var::from_tensor(&randn(&[2, 3, 4, 5])).unwrap();
    let keep = [4u32, 1];
    let index = Tensor::new(&keep, &CPU).unwrap();
    let old = base.index_select(&index, 0).unwrap();
    let expected = base
        .index_add(&index, &(rows.as_tensor() - old).unwrap(), 0)
        .unwrap();
    let probe = randn(&[6, 3, 4, 5]);
    let expected_grads = probe_grads(&expected, &probe);
    let out = replace_rows(&base, &keep, &rows).unwrap();
    let grads = probe_grads(&out, &probe);
    // index_add of a difference rounds; replacing does not.
    assert!(rel_err(&values(&out), &values(&expected)) < 1e-6);
    for var in [&base, &rows] {
        let err = rel_err(
            &values(grads.get(var).unwrap()),
            &values(expected_grads.get(var).unwrap()),
        );
        assert!(err < 1e-6, "gradient relative error {err:.2e}");
    }
    // The inference variant writes into its own copy of the base and gives the same rows.
    let before = values(base.as_tensor());
    let own = base.as_tensor().copy().unwrap();
    let in_place = replace_rows_in_place(own, &keep, &rows).unwrap();
    assert_eq!(values(&in_place), values(&out));
    assert_eq!(
        values(base.as_tensor()),
        before,
        "the original base is untouched"
    );
}

#[test]
fn pick_rows_matches_the_masked_blend_forward_and_gradients() {
    use blockdrop::kernels::rows::pick_rows;
    let kept = Var::from_tensor(&randn(&[5, 3, 2, 4])).unwrap();
    let dropped = Var::from_tensor(&randn(&[5, 3, 2, 4])).unwrap();
    let keep = [true, false, false, true, true];
    let bits: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
    let m = Tensor::from_vec(bits, (5, 1, 1, 1), &CPU).unwrap();
    let expected = (kept.broadcast_mul(&m).unwrap()
        + dropped.broadcast_mul(&(1.0 - &m).unwrap()).unwrap())
    .unwrap();
    let probe = randn(&[5, 3, 2, 4]);
    let expected_grads = probe_grads(&expected, &probe);
    let out = pick_rows(&kept, &dropped, &keep).unwrap();
    let grads = probe_grads(&out, &probe);
    assert_eq!(values(&out), values(&expected));
    for var in [&kept, &dropped] {
        assert_eq!(
            values(grads.get(var).unwrap()),
            values(expected_grads.get(var).unwrap())
        );
    }
}
