//! Time saved by skipping blocks, as ratios measured in one run (absolute times on shared
//! machines mean little):
//!
//! - batch 1: the BlockDrop path (policy network + kept blocks) against the full network,
//!   next to the FLOP-predicted ratio;
//! - batch 64 with per-image policies: each executor against the full network;
//! - with the fixture venv present (tests/fixtures/setup_venv.sh), PyTorch eager on the same
//!   architecture, batch sizes and thread count (benches/engines.py), as ours/PyTorch.
//!
//! `cargo bench --bench executors` — R110_C10 with random weights and per-image policies
//! keeping about 30% of the blocks, then the bundled default model and the shipped CIFAR-10
//! model (assets/cifar10.safetensors on assets/cifar10-sample) on their own policies; three
//! rounds of each, and a summary of the median over rounds.

#[path = "support/engines.rs"]
mod engines;
#[path = "support/timing.rs"]
mod timing;

use blockdrop::exec::{
    forward_batch, forward_gather, forward_grouped, forward_masked, forward_skip,
};
use blockdrop::model::blockdrop::{policy_bits, policy_tensor};
use blockdrop::model::{BlockDrop, BlockDropFlops};
use blockdrop::stats::median;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use timing::time_ms;

/// Rounds of every measurement; the summary reports medians over rounds.
const ROUNDS: usize = 3;

/// Deterministic policies keeping each block with probability `p` (a small LCG, no RNG crate).
fn random_policies(n: usize, blocks: usize, p: f64, seed: u64) -> Vec<Vec<bool>> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| (0..blocks).map(|_| next() < p).collect())
        .collect()
}

fn kept_fraction(keep: &[Vec<bool>]) -> f64 {
    let total: usize = keep.iter().map(Vec::len).sum();
    keep.iter().flatten().filter(|&&k| k).count() as f64 / total as f64
}

/// Prints the batch-1 and batch-64 comparisons; returns full-network ms/img at batch 1.
/// Measured speed-up ÷ FLOP-predicted speed-up, per "model: batch executor", one per round.
type Shares = std::collections::BTreeMap<String, Vec<f64>>;

#[allow(clippy::too_many_arguments)]
fn report(
    shares: &mut Shares,
    name: &str,
    model: &BlockDrop,
    x1: &[Tensor],
    keep1: &[Vec<bool>],
    x64: &Tensor,
    keep64: &[Vec<bool>],
) -> anyhow::Result<f64> {
    let net = &model.resnet;
    let flops = BlockDropFlops::for_config(&model.config);
    let all = vec![true; model.num_blocks()];
    println!(
        "\n{name}: {:.0}% of blocks kept at batch 1, {:.0}% at batch 64",
        100.0 * kept_fraction(keep1),
        100.0 * kept_fraction(keep64)
    );

    let (mut full1, mut path1, mut flop_ratio) = (0.0, 0.0, 0.0);
    for (x, keep) in x1.iter().zip(keep1) {
        full1 += time_ms(|| forward_skip(net, x, &all))?;
        path1 += time_ms(|| {
            model.keep_probs(x, false)?;
            forward_skip(net, x, keep)
        })?;
        flop_ratio += flops.per_image(keep) as f64 / flops.base.full() as f64;
    }
    let n = x1.len() as f64;
    let (full1, path1, flop_ratio) = (full1 / n, path1 / n, flop_ratio / n);
    let ratio1 = path1 / full1;
    println!(
        "  batch 1   full {full1:7.2} ms/img | BlockDrop path {path1:7.2} ms/img | time ratio {ratio1:.3}, FLOP ratio {flop_ratio:.3} | speed-up {:.2}x of predicted {:.2}x ({:.2})",
        1.0 / ratio1,
        1.0 / flop_ratio,
        flop_ratio / ratio1
    );
    shares
        .entry(format!("{name}: batch 1 skip"))
        .or_default()
        .push(flop_ratio / ratio1);

    let b = keep64.len() as f64;
    let flop64 = keep64
        .iter()
        .map(|k| flops.per_image(k) as f64)
        .sum::<f64>()
        / (b * flops.base.full() as f64);
    let full64 = time_ms(|| forward_skip(net, x64, &all))?;
    let mask = policy_tensor(keep64, x64.device())?;
    let policy = time_ms(|| model.keep_probs(x64, false))?;
    println!(
        "  batch 64  full {:7.2} ms/img | FLOP ratio {flop64:.3} (policy included)",
        full64 / b
    );
    for (executor, ms) in [
        ("grouped", time_ms(|| forward_grouped(net, x64, keep64))?),
        ("gather", time_ms(|| forward_gather(net, x64, keep64))?),
        (
            "masked",
            time_ms(|| forward_masked(net, x64, &mask, false))?,
        ),
        ("auto", time_ms(|| forward_batch(net, x64, keep64))?),
    ] {
        let ratio = (ms + policy) / full64;
        println!(
            "  batch 64  {executor:<7} {:7.2} ms/img with policy | time ratio {ratio:.3} | speed-up {:.2}x of predicted {:.2}x ({:.2})",
            (ms + policy) / b,
            1.0 / ratio,
            1.0 / flop64,
            flop64 / ratio
        );
        shares
            .entry(format!("{name}: batch 64 {executor}"))
            .or_default()
            .push(flop64 / ratio);
    }
    Ok(full1)
}

/// A model on its own images: four at batch 1 and 64 at once, with the policies it chooses.
struct OnItsImages {
    model: BlockDrop,
    x1: Vec<Tensor>,
    keep1: Vec<Vec<bool>>,
    x64: Tensor,
    keep64: Vec<Vec<bool>>,
}

/// The shipped CIFAR-10 model (assets/cifar10.safetensors) on the bundled CIFAR-10 sample.
fn shipped_cifar10(device: &Device) -> anyhow::Result<OnItsImages> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut loaded =
        blockdrop::checkpoint::load_model(&root.join("cifar10.safetensors"), None, None, device)?;
    loaded.model.fold_batchnorm()?;
    let model = loaded.model;
    let sample = blockdrop::data::Dataset::open_for(
        &root.join("cifar10-sample"),
        blockdrop::data::Split::Test,
        &model.config,
    )?;
    // Images spread over the classes (the sample's folders are class by class).
    let x1: Vec<Tensor> = (0..4)
        .map(|i| sample.batch(&[i * 250], &model.config, device))
        .collect::<blockdrop::Result<_>>()?;
    let keep1 = x1
        .iter()
        .map(|x| Ok(policy_bits(&model.keep_probs(x, false)?.to_vec2::<f32>()?, 0.5).remove(0)))
        .collect::<anyhow::Result<_>>()?;
    let spread: Vec<usize> = (0..64).map(|i| i * 15).collect();
    let x64 = sample.batch(&spread, &model.config, device)?;
    let keep64 = policy_bits(&model.keep_probs(&x64, false)?.to_vec2::<f32>()?, 0.5);
    Ok(OnItsImages {
        model,
        x1,
        keep1,
        x64,
        keep64,
    })
}

fn random_model(config: &str, device: &Device) -> anyhow::Result<BlockDrop> {
    let varmap = VarMap::new();
    let config = blockdrop::config::Config::by_name(config)?;
    let mut model = BlockDrop::new(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    model.fold_batchnorm()?;
    Ok(model)
}

fn main() -> anyhow::Result<()> {
    blockdrop::process::tune();
    // As the binary runs its commands: on rayon's pool.
    blockdrop::process::on_pool(run)
}

fn run() -> anyhow::Result<()> {
    let device = Device::Cpu;
    println!("threads: {}", candle_core::utils::get_num_threads());

    let model = random_model("R110_C10", &device)?;
    let x1: Vec<Tensor> = (0..4)
        .map(|_| Tensor::randn(0f32, 1.0, (1, 3, 32, 32), &device))
        .collect::<candle_core::Result<_>>()?;
    let x64 = Tensor::randn(0f32, 1.0, (64, 3, 32, 32), &device)?;
    let (keep1, keep64) = (
        random_policies(4, 54, 0.3, 1),
        random_policies(64, 54, 0.3, 2),
    );
    let mut loaded = blockdrop::bundled::default_model(&device)?;
    loaded.model.fold_batchnorm()?;
    let sample = blockdrop::bundled::sample_dataset()?;
    let bx1: Vec<Tensor> = (0..4)
        .map(|i| sample.batch(&[i], &loaded.model.config, &device))
        .collect::<blockdrop::Result<_>>()?;
    let bkeep1: Vec<Vec<bool>> = bx1
        .iter()
        .map(|x| {
            Ok(policy_bits(&loaded.model.keep_probs(x, false)?.to_vec2::<f32>()?, 0.5).remove(0))
        })
        .collect::<anyhow::Result<_>>()?;
    let bx64 = sample.batch(&(0..64).collect::<Vec<_>>(), &loaded.model.config, &device)?;
    let bkeep64 = policy_bits(
        &loaded.model.keep_probs(&bx64, false)?.to_vec2::<f32>()?,
        0.5,
    );
    let cifar = shipped_cifar10(&device)?;

    // Rounds of both reports: shared machines drift over minutes, so each share is the median
    // over the rounds.
    let mut shares = Shares::new();
    let mut full1 = Vec::new();
    for round in 0..ROUNDS {
        println!("\n-- round {round}");
        let name = "R110_C10, random weights";
        full1.push(report(
            &mut shares,
            name,
            &model,
            &x1,
            &keep1,
            &x64,
            &keep64,
        )?);
        let name = "bundled default";
        report(
            &mut shares,
            name,
            &loaded.model,
            &bx1,
            &bkeep1,
            &bx64,
            &bkeep64,
        )?;
        let c = &cifar;
        report(
            &mut shares,
            "shipped CIFAR-10",
            &c.model,
            &c.x1,
            &c.keep1,
            &c.x64,
            &c.keep64,
        )?;
    }
    println!("\nmeasured speed-up / FLOP-predicted speed-up, median of {ROUNDS} rounds:");
    for (key, values) in &shares {
        println!("  {key:<42} {:.2}", median(values));
    }
    let full1 = median(&full1);
    let full64 = time_ms(|| forward_skip(&model.resnet, &x64, &[true; 54]))? / 64.0;

    torch_side_by_side(full1, full64)
}

/// Ours next to PyTorch eager on the full R110_C10 (benches/engines.py).
fn torch_side_by_side(ours1: f64, ours64: f64) -> anyhow::Result<()> {
    let Some(engines) = engines::run()? else {
        return Ok(());
    };
    let (torch1, torch64) = (engines["torch R110_C10 b1"], engines["torch R110_C10 b64"]);
    println!(
        "\nfull R110_C10 forward, {} threads: ours / PyTorch eager = {:.2} at batch 1 ({ours1:.2} vs {torch1:.2} ms/img), {:.2} at batch 64 ({ours64:.2} vs {torch64:.2} ms/img)",
        candle_core::utils::get_num_threads(),
        ours1 / torch1,
        ours64 / torch64
    );
    Ok(())
}
