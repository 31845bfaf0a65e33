//! The fast NHWC kernels against candle's stock ops and against the other engines, as ratios
//! measured in one run with the same thread count (absolute times on shared machines mean
//! little):
//!
//! - full-network forward (every block, BatchNorm folded, random weights) of R110_C10 and
//!   R32_FMNIST at batch 1 and 64: stock, fast, PyTorch eager, PyTorch with conv+BN fused, and
//!   ONNX Runtime with all graph optimisations;
//! - one training step of R32_FMNIST at batch 128 (forward in train mode, cross-entropy,
//!   backward, SGD update): stock, fast, PyTorch eager;
//! - each convolution shape of ResNet-110 at batch 64 on its own, in GFLOP/s.
//!
//! `cargo bench --bench kernels`. The PyTorch and ONNX Runtime columns need the fixture venv
//! (tests/fixtures/setup_venv.sh installs both).

#[path = "support/engines.rs"]
mod engines;
#[path = "support/timing.rs"]
mod timing;

use std::collections::HashMap;

use blockdrop::config::Config;
use blockdrop::kernels::{ops, ConvGeom, Kernels};
use blockdrop::model::{BlockDrop, BlockDropFlops};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap, SGD};
use timing::time_ms;

const MODELS: [&str; 2] = ["R110_C10", "R32_FMNIST"];
const TRAIN_BATCH: usize = 128;

fn random_model(
    config: &Config,
    kernels: Kernels,
    fold: bool,
) -> anyhow::Result<(BlockDrop, VarMap)> {
    let varmap = VarMap::new();
    let mut model = BlockDrop::new(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    model.set_kernels(kernels);
    if fold {
        model.fold_batchnorm()?;
    }
    Ok((model, varmap))
}

fn input(config: &Config, batch: usize) -> candle_core::Result<Tensor> {
    let (c, h, w) = config.input;
    Tensor::randn(0f32, 1.0, (batch, c, h, w), &Device::Cpu)
}

/// Full-network forward, ms per image, for each kernel path.
fn forward_ms(config: &Config, batch: usize) -> anyhow::Result<[f64; 2]> {
    let x = input(config, batch)?;
    let mut out = [0.0; 2];
    for (slot, kernels) in out.iter_mut().zip([Kernels::Stock, Kernels::Fast]) {
        let (model, _) = random_model(config, kernels, true)?;
        *slot = time_ms(|| model.resnet.forward_full(&x, false))? / batch as f64;
    }
    Ok(out)
}

/// One SGD training step of the base network, ms, for each kernel path.
fn train_step_ms(config: &Config) -> anyhow::Result<[f64; 2]> {
    let x = input(config, TRAIN_BATCH)?;
    let labels: Vec<u32> = (0..TRAIN_BATCH as u32).map(|i| i % 10).collect();
    let y = Tensor::new(labels.as_slice(), &Device::Cpu)?;
    let mut out = [0.0; 2];
    for (slot, kernels) in out.iter_mut().zip([Kernels::Stock, Kernels::Fast]) {
        let (model, varmap) = random_model(config, kernels, false)?;
        let mut sgd = SGD::new(varmap.all_vars(), 0.01)?;
        *slot = time_ms(|| {
            let logits = model.resnet.forward_full(&x, true)?;
            sgd.backward_step(&candle_nn::loss::cross_entropy(&logits, &y)?)
        })?;
    }
    Ok(out)
}

/// The fused inference kernel alone on one shape at batch 64: GFLOP/s.
fn kernel_gflops(geom: ConvGeom, side: usize) -> anyhow::Result<f64> {
    let x = Tensor::randn(0f32, 1.0, (64, side, side, geom.cin), &Device::Cpu)?;
    let packed = Tensor::randn(0f32, 0.1, (geom.patch_len() + 1, geom.cout), &Device::Cpu)?;
    let out_side = (side + 2 * geom.pad - geom.kernel) / geom.stride + 1;
    let flops = 2.0 * (64 * out_side * out_side * geom.patch_len() * geom.cout) as f64;
    let ms = time_ms(|| ops::fused_conv2d(&x, &packed, None, geom, true))?;
    Ok(flops / (ms * 1e6))
}

fn ratio(ours: f64, theirs: Option<&f64>) -> String {
    theirs.map_or("-".into(), |t| format!("{:.2}", ours / t))
}

fn main() -> anyhow::Result<()> {
    blockdrop::kernels::process::tune();
    // As the binary runs its commands: on rayon's pool.
    blockdrop::kernels::process::on_pool(run)
}

fn run() -> anyhow::Result<()> {
    let threads = candle_core::utils::get_num_threads();
    println!("threads: {threads}");
    let mut ours = HashMap::new();
    for name in MODELS {
        let config = Config::by_name(name)?;
        let gflop = BlockDropFlops::for_config(&config).base.full() as f64 / 1e9;
        for batch in [1, 64] {
            let [stock, fast] = forward_ms(&config, batch)?;
            println!(
                "{name} forward b{batch:<2}  stock {stock:7.3} ms/img ({:5.1} GFLOP/s) | fast {fast:7.3} ms/img ({:5.1} GFLOP/s) | fast/stock {:.3}",
                gflop / stock * 1e3,
                gflop / fast * 1e3,
                fast / stock
            );
            ours.insert(format!("{name} b{batch}"), fast);
        }
    }
    let config = Config::by_name("R32_FMNIST")?;
    let [stock, fast] = train_step_ms(&config)?;
    println!(
        "R32_FMNIST train step b{TRAIN_BATCH}  stock {stock:7.1} ms | fast {fast:7.1} ms | fast/stock {:.3}",
        fast / stock
    );
    ours.insert(format!("R32_FMNIST train{TRAIN_BATCH}"), fast);

    println!("\nfused kernel alone, batch 64 (ResNet-110 shapes):");
    for (what, geom, side) in [
        (
            "stem 3x3 3→16 @32",
            ConvGeom {
                kernel: 3,
                stride: 1,
                pad: 1,
                cin: 3,
                cout: 16,
            },
            32,
        ),
        (
            "3x3 16→16 @32",
            ConvGeom {
                kernel: 3,
                stride: 1,
                pad: 1,
                cin: 16,
                cout: 16,
            },
            32,
        ),
        (
            "3x3/2 16→32 @32",
            ConvGeom {
                kernel: 3,
                stride: 2,
                pad: 1,
                cin: 16,
                cout: 32,
            },
            32,
        ),
        (
            "3x3 32→32 @16",
            ConvGeom {
                kernel: 3,
                stride: 1,
                pad: 1,
                cin: 32,
                cout: 32,
            },
            16,
        ),
        (
            "3x3/2 32→64 @16",
            ConvGeom {
                kernel: 3,
                stride: 2,
                pad: 1,
                cin: 32,
                cout: 64,
            },
            16,
        ),
        (
            "3x3 64→64 @8",
            ConvGeom {
                kernel: 3,
                stride: 1,
                pad: 1,
                cin: 64,
                cout: 64,
            },
            8,
        ),
    ] {
        println!("  {what:<20} {:6.1} GFLOP/s", kernel_gflops(geom, side)?);
    }

    let Some(engines) = engines::run()? else {
        return Ok(());
    };
    println!(
        "\nours (fast) as a time ratio to each engine, {threads} threads (< 1: we are faster):"
    );
    println!(
        "  {:<26} {:>8} {:>13} {:>12}",
        "", "PyTorch", "PyTorch fused", "ONNX Runtime"
    );
    for name in MODELS {
        for batch in [1, 64] {
            let key = format!("{name} b{batch}");
            let ms = ours[&key];
            println!(
                "  {:<26} {:>8} {:>13} {:>12}",
                format!("{name} forward b{batch}"),
                ratio(ms, engines.get(&format!("torch {key}"))),
                ratio(ms, engines.get(&format!("torch-fused {key}"))),
                ratio(ms, engines.get(&format!("onnxruntime {key}")))
            );
        }
    }
    let key = format!("R32_FMNIST train{TRAIN_BATCH}");
    println!(
        "  {:<26} {:>8}",
        format!("R32_FMNIST train step b{TRAIN_BATCH}"),
        ratio(ours[&key], engines.get(&format!("torch {key}")))
    );
    println!("\nengines' own figures (ms/img; train: ms/step):");
    let mut keys: Vec<_> = engines.keys().collect();
    keys.sort();
    for key in keys {
        println!("  {key:<32} {:8.3}", engines[key]);
    }
    Ok(())
}
