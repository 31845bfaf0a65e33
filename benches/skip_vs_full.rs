//! Skipping blocks for real: time of the full network vs a BlockDrop path at batch 1, as a
//! ratio measured in one run (absolute times on shared machines mean little).
//!
//! `cargo bench --bench skip_vs_full` — R110_C10 with random weights and a fixed policy that
//! keeps 18 of 54 blocks (a third), then the bundled default model on its own policies.

use std::time::{Duration, Instant};

use blockdrop::config::Config;
use blockdrop::exec::forward_skip;
use blockdrop::model::{BlockDrop, BlockDropFlops};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

/// Median wall time of `f` over `repeats` runs after `warmup` runs.
fn median_time(warmup: usize, repeats: usize, mut f: impl FnMut()) -> Duration {
    (0..warmup).for_each(|_| f());
    let mut times: Vec<Duration> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[repeats / 2]
}

fn compare(name: &str, model: &BlockDrop, image: &Tensor, keep: &[bool]) -> anyhow::Result<()> {
    let all = vec![true; keep.len()];
    let full = median_time(3, 21, || drop(forward_skip(&model.resnet, image, &all)));
    let path = median_time(3, 21, || drop(forward_skip(&model.resnet, image, keep)));
    let flops = BlockDropFlops::for_config(&model.config);
    println!(
        "{name}: {}/{} blocks | full {:.2} ms, BlockDrop path {:.2} ms | time ratio {:.3}, FLOP ratio {:.3}",
        keep.iter().filter(|&&k| k).count(),
        keep.len(),
        full.as_secs_f64() * 1e3,
        path.as_secs_f64() * 1e3,
        path.as_secs_f64() / full.as_secs_f64(),
        flops.base.with_policy(keep) as f64 / flops.base.full() as f64,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let device = Device::Cpu;
    let config = Config::by_name("R110_C10")?;
    let varmap = VarMap::new();
    let model = BlockDrop::new(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    let image = Tensor::randn(0f32, 1.0, (1, 3, 32, 32), &device)?;
    let keep: Vec<bool> = (0..54).map(|k| k % 10 < 3).collect();
    compare("R110_C10 (random weights)", &model, &image, &keep)?;

    let loaded = blockdrop::bundled::default_model(&device)?;
    let sample = blockdrop::bundled::sample_dataset()?;
    let x = sample.batch(&[0], &loaded.model.config, &device)?;
    let probs = loaded.model.agent.keep_probs(&x, false)?.to_vec2::<f32>()?;
    let keep: Vec<bool> = probs[0].iter().map(|&p| p >= 0.5).collect();
    compare("bundled default, sample image 0", &loaded.model, &x, &keep)
}
