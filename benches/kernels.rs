//! The fast NHWC kernels against candle's stock ops and against the other engines, as ratios
//! measured in one run with the same thread count (absolute times on shared machines mean
//! little):
//!
//! - full-network forward (every block, BatchNorm folded, random weights) of R110_C10 and
//!   R32_FMNIST at batch 1 and 64: stock, fast, PyTorch eager, PyTorch with conv+BN fused, and
//!   ONNX Runtime with all graph optimisations;
//! - the policy network of R32_FMNIST at batch 1, hot and right after the base network;
//! - one training step of R32_FMNIST at batch 128 (forward in train mode, cross-entropy,
//!   backward, SGD update): stock, fast, PyTorch eager;
//! - each convolution shape of the CIFAR ResNets at batch 64 on its own, in GFLOP/s, on the
//!   GEMM, on each direct and Winograd path the CPU has, forward and weight
//!   gradient, next to the CPU's measured FMA peak (Winograd's GFLOP/s count the direct
//!   convolution's work).
//!
//! `cargo bench --bench kernels` (`-- convs` for the convolution table alone). It prints the
//! kernel path; `BLOCKDROP_ISA=avx2 cargo bench --bench kernels` measures the AVX2 path on an
//! AVX-512 machine (the `gemm` crate and the other engines still pick their own). The PyTorch and ONNX Runtime columns need the fixture venv
//! (tests/fixtures/setup_venv.sh installs both); they are measured in three rounds, each ours
//! then theirs, and each ratio is the median over the rounds.

#[path = "support/convs.rs"]
mod convs;
#[path = "support/engines.rs"]
mod engines;
#[path = "support/timing.rs"]
mod timing;

use std::collections::HashMap;

use blockdrop::config::Config;
use blockdrop::kernels::isa::{self, Isa};
use blockdrop::kernels::Kernels;
use blockdrop::model::{BlockDrop, BlockDropFlops};
use blockdrop::stats::median;
use blockdrop::train::optim::{params, Kind, Optimizer};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use timing::time_ms;

const MODELS: [&str; 2] = ["R110_C10", "R32_FMNIST"];
const TRAIN_BATCH: usize = 128;
/// Rounds of (ours, engines) measurements; ratios are medians over rounds.
const ROUNDS: usize = 3;

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
    model.set_kernels(kernels)?;
    if fold {
        model.fold_batchnorm()?;
    }
    Ok((model, varmap))
}

fn input(config: &Config, batch: usize) -> candle_core::Result<Tensor> {
    let (c, h, w) = config.input;
    Tensor::randn(0f32, 1.0, (batch, c, h, w), &Device::Cpu)
}

/// Full-network forward, ms per image, on the given kernel path.
fn forward_ms(config: &Config, batch: usize, kernels: Kernels) -> anyhow::Result<f64> {
    let x = input(config, batch)?;
    let (model, _) = random_model(config, kernels, true)?;
    Ok(time_ms(|| model.resnet.forward_full(&x, false))? / batch as f64)
}

/// One SGD training step of the base network, ms, on the given kernel path, with the
/// optimiser `train base` uses (plain SGD here, as PyTorch's side of the comparison runs).
fn train_step_ms(config: &Config, kernels: Kernels) -> anyhow::Result<f64> {
    let x = input(config, TRAIN_BATCH)?;
    let labels: Vec<u32> = (0..TRAIN_BATCH as u32).map(|i| i % 10).collect();
    let y = Tensor::new(labels.as_slice(), &Device::Cpu)?;
    let (model, varmap) = random_model(config, kernels, false)?;
    let sgd = Kind::Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    let mut optimizer = Optimizer::new(sgd, params(&varmap, &["resnet."]));
    time_ms(|| {
        let logits = model.resnet.forward_full(&x, true)?;
        let grads = candle_nn::loss::cross_entropy(&logits, &y)?.backward()?;
        optimizer.step(&grads, 0.01)
    })
}

/// The policy network of `config` at batch 1 (folded, as inference runs it), ms: hot (run
/// again and again), and after the full base network (as a BlockDrop path meets it: the base
/// evicted its weights from the caches).
fn policy_ms(config: &Config) -> anyhow::Result<(f64, f64)> {
    let x = input(config, 1)?;
    let (model, _) = random_model(config, Kernels::Fast, true)?;
    let (mut hot, mut after_base) = (Vec::new(), Vec::new());
    for run in 0..400 {
        let base_first = run % 2 == 1;
        if base_first {
            model.resnet.forward_full(&x, false)?;
        }
        let start = std::time::Instant::now();
        std::hint::black_box(model.keep_probs(&x, false)?);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if base_first {
            &mut after_base
        } else {
            &mut hot
        }
        .push(ms);
    }
    Ok((median(&hot), median(&after_base)))
}

/// Our fast path on every workload, by the engines' keys (`R110_C10 b64`, `R32_FMNIST
/// train128`); with `stock`, also candle's stock ops, printed side by side.
fn measure_ours(stock: bool) -> anyhow::Result<HashMap<String, f64>> {
    let mut ours = HashMap::new();
    for name in MODELS {
        let config = Config::by_name(name)?;
        let gflop = BlockDropFlops::for_config(&config).base.full() as f64 / 1e9;
        for batch in [1, 64] {
            let fast = forward_ms(&config, batch, Kernels::Fast)?;
            if stock {
                let stock = forward_ms(&config, batch, Kernels::Stock)?;
                println!(
                    "{name} forward b{batch:<2}  stock {stock:7.3} ms/img ({:5.1} GFLOP/s) | fast {fast:7.3} ms/img ({:5.1} GFLOP/s) | fast/stock {:.3}",
                    gflop / stock * 1e3,
                    gflop / fast * 1e3,
                    fast / stock
                );
            }
            ours.insert(format!("{name} b{batch}"), fast);
        }
    }
    let config = Config::by_name("R32_FMNIST")?;
    if stock {
        let (hot, after_base) = policy_ms(&config)?;
        println!(
            "R32_FMNIST policy network b1  fast {:7.1} µs hot | {:7.1} µs after the base network",
            hot * 1e3,
            after_base * 1e3
        );
    }
    let fast = train_step_ms(&config, Kernels::Fast)?;
    if stock {
        let stock = train_step_ms(&config, Kernels::Stock)?;
        println!(
            "R32_FMNIST train step b{TRAIN_BATCH}  stock {stock:7.1} ms | fast {fast:7.1} ms | fast/stock {:.3}",
            fast / stock
        );
    }
    ours.insert(format!("R32_FMNIST train{TRAIN_BATCH}"), fast);
    Ok(ours)
}

fn main() -> anyhow::Result<()> {
    blockdrop::process::tune();
    // As the binary runs its commands: on rayon's pool.
    blockdrop::process::on_pool(run)
}

fn run() -> anyhow::Result<()> {
    let threads = candle_core::utils::get_num_threads();
    println!("threads: {threads}");
    println!(
        "kernel path: {} (CPU: {}; BLOCKDROP_ISA={} forces one)",
        Isa::active(),
        Isa::detected(),
        std::env::var(isa::ENV).unwrap_or_else(|_| "unset".into())
    );
    println!("\neach convolution alone (CIFAR ResNet shapes):");
    convs::print_table();
    if std::env::args().any(|a| a == "convs") {
        return Ok(());
    }
    let first = measure_ours(true)?;
    let Some(engines) = engines::run()? else {
        return Ok(());
    };
    // Rounds of (ours, then the engines): shared machines drift over minutes, so each ratio
    // pairs measurements taken close together, and the median over rounds is reported.
    let mut rounds = vec![(first, engines)];
    for _ in 1..ROUNDS {
        let ours = measure_ours(false)?;
        if let Some(engines) = engines::run()? {
            rounds.push((ours, engines));
        }
    }
    let ratio = |key: &str, engine: &str| -> String {
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|(ours, theirs)| {
                Some(ours.get(key)? / theirs.get(&format!("{engine} {key}"))?)
            })
            .collect();
        if ratios.is_empty() {
            "-".into()
        } else {
            format!("{:.2}", median(&ratios))
        }
    };
    println!(
        "\nours (fast) as a time ratio to each engine, {threads} threads, median of {} rounds (< 1: we are faster):",
        rounds.len()
    );
    println!(
        "  {:<26} {:>8} {:>13} {:>12}",
        "", "PyTorch", "PyTorch fused", "ONNX Runtime"
    );
    for name in MODELS {
        for batch in [1, 64] {
            let key = format!("{name} b{batch}");
            println!(
                "  {:<26} {:>8} {:>13} {:>12}",
                format!("{name} forward b{batch}"),
                ratio(&key, "torch"),
                ratio(&key, "torch-fused"),
                ratio(&key, "onnxruntime")
            );
        }
    }
    let key = format!("R32_FMNIST train{TRAIN_BATCH}");
    println!(
        "  {:<26} {:>8}",
        format!("R32_FMNIST train step b{TRAIN_BATCH}"),
        ratio(&key, "torch")
    );
    println!("\neach round's figures (ours: ms/img, train: ms/step; engines likewise):");
    for (round, (ours, engines)) in rounds.iter().enumerate() {
        let mut keys: Vec<_> = ours.keys().collect();
        keys.sort();
        for key in keys {
            println!("  round {round} ours {key:<28} {:8.3}", ours[key]);
        }
        let mut keys: Vec<_> = engines.keys().collect();
        keys.sort();
        for key in keys {
            println!("  round {round} {key:<33} {:8.3}", engines[key]);
        }
    }
    Ok(())
}
