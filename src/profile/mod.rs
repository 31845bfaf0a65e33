//! Per-block profiling on the model's device: how long the policy network, the stem, every
//! block and the head take (full network, so every block is measured), the profiler's own
//! overhead, and per image the measured latency of its BlockDrop path against the full
//! network next to the FLOP-predicted ratio.

pub mod cost;
pub mod timer;

use std::fmt;
use std::path::Path;

use candle_core::{Device, Tensor};
use polars::prelude::*;

use crate::atomic::write_atomic;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::{forward_skip, forward_skip_hooked, Direct, Stage, StageHook};
use crate::model::blockdrop::policy_bits;
use crate::model::{BlockDrop, BlockDropFlops};
use crate::stats::{median, quantile};
use timer::{time_on, StageTimer};

#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Images measured one by one for the per-image latencies.
    pub images: usize,
    /// Batch size of the per-stage profile.
    pub batch: usize,
    /// Timed runs after the warm-up runs.
    pub repeat: usize,
    pub warmup: usize,
}

impl ProfileOptions {
    /// `profile`'s defaults.
    pub const DEFAULT: ProfileOptions = ProfileOptions {
        images: 16,
        batch: 1,
        repeat: 10,
        warmup: 2,
    };
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One stage's timings.
#[derive(Debug, Clone)]
pub struct StageStats {
    pub stage: Stage,
    /// Segment of a block (`None` for the policy, stem and head).
    pub segment: Option<usize>,
    /// FLOPs of the stage for the whole batch.
    pub flops: u64,
    pub median_us: f64,
    pub p10_us: f64,
    pub p90_us: f64,
}

impl StageStats {
    pub fn gflops_per_s(&self) -> f64 {
        self.flops as f64 / (self.median_us * 1e3)
    }

    pub fn name(&self) -> String {
        self.stage.name()
    }
}

/// One image's BlockDrop path against the full network, both at batch 1.
#[derive(Debug, Clone)]
pub struct ImageLatency {
    pub index: usize,
    pub blocks: usize,
    /// Policy network + base network with dropped blocks skipped.
    pub path_us: f64,
    /// Base network with every block.
    pub full_us: f64,
    /// FLOPs of the path over FLOPs of the full base network.
    pub flop_ratio: f64,
}

impl ImageLatency {
    pub fn time_ratio(&self) -> f64 {
        self.path_us / self.full_us
    }
}

#[derive(Debug, Clone)]
pub struct ProfileReport {
    pub config: String,
    pub device: String,
    /// The operators that ran the convolutions (`fast (avx2)`, `stock`).
    pub kernels: String,
    /// How the stages were timed ([`timer::Clock::describe`]).
    pub clock: String,
    pub batch: usize,
    pub repeat: usize,
    /// Policy, stem, every block, head, in order, from instrumented full-network runs.
    pub stages: Vec<StageStats>,
    /// Median end-to-end time of the same runs, uninstrumented.
    pub end_to_end_us: f64,
    /// Median end-to-end time of the instrumented runs.
    pub instrumented_us: f64,
    pub images: Vec<ImageLatency>,
}

impl ProfileReport {
    /// The profiler's overhead: instrumented over uninstrumented end-to-end time, minus one.
    pub fn overhead(&self) -> f64 {
        self.instrumented_us / self.end_to_end_us - 1.0
    }

    pub fn stage_sum_us(&self) -> f64 {
        self.stages.iter().map(|s| s.median_us).sum()
    }

    /// Over the images timed one by one: the BlockDrop path's median and p90, and the full
    /// network's median.
    pub fn image_latency(&self) -> ImageLatencySummary {
        let paths: Vec<f64> = self.images.iter().map(|i| i.path_us).collect();
        let full: Vec<f64> = self.images.iter().map(|i| i.full_us).collect();
        ImageLatencySummary {
            median_path_us: median(&paths),
            p90_path_us: quantile(&paths, 0.9),
            median_full_us: median(&full),
        }
    }
}

/// See [`ProfileReport::image_latency`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageLatencySummary {
    pub median_path_us: f64,
    pub p90_path_us: f64,
    pub median_full_us: f64,
}

fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The policy network and the full base network, each stage through `hook`.
fn full_run(
    model: &BlockDrop,
    x: &Tensor,
    all: &[bool],
    hook: &mut dyn StageHook,
) -> candle_core::Result<Tensor> {
    hook.run(Stage::Policy, &mut || model.keep_probs(x, false))?;
    forward_skip_hooked(&model.resnet, x, all, hook)
}

/// Profiles `model` on the first images of `dataset`.
pub fn profile(
    model: &BlockDrop,
    dataset: &Dataset,
    options: &ProfileOptions,
    device: &Device,
) -> Result<ProfileReport> {
    if options.batch == 0 || options.repeat == 0 {
        return Err(Error::BadUsage(
            "--batch and --repeat must be at least 1".into(),
        ));
    }
    if dataset.len() < options.batch.max(options.images) {
        return Err(Error::bad_input(
            &dataset.path,
            format!(
                "holds {} images; the profile needs {}",
                dataset.len(),
                options.batch.max(options.images)
            ),
        ));
    }
    let flops = BlockDropFlops::of(model);
    let x = dataset.batch(
        &(0..options.batch).collect::<Vec<_>>(),
        &model.config,
        device,
    )?;
    let timed = time_stages(model, &x, options, device)?;
    let stages = timed
        .samples
        .iter()
        .map(|(&stage, samples)| stage_stats(model, &flops, stage, samples, options.batch))
        .collect();
    let images = (0..options.images)
        .map(|index| image_latency(model, dataset, index, &flops, options, device))
        .collect::<Result<Vec<_>>>()?;
    Ok(ProfileReport {
        config: model.config.name.clone(),
        device: device_name(device),
        kernels: model.resnet.kernels().describe(),
        clock: timer::Clock::for_device(device).describe().to_string(),
        batch: options.batch,
        repeat: options.repeat,
        stages,
        end_to_end_us: median(&timed.plain),
        instrumented_us: median(&timed.instrumented),
        images,
    })
}

/// Full-network runs on one batch: every stage's times, and end-to-end times of the same
/// runs with and without the timer, in µs.
struct StageTimes {
    samples: std::collections::BTreeMap<Stage, Vec<f64>>,
    instrumented: Vec<f64>,
    plain: Vec<f64>,
}

fn time_stages(
    model: &BlockDrop,
    x: &Tensor,
    options: &ProfileOptions,
    device: &Device,
) -> Result<StageTimes> {
    let all = vec![true; model.num_blocks()];
    // Instrumented and plain runs alternate, so drift on a shared machine hits both alike.
    let mut timer = StageTimer::new(device);
    let (mut instrumented, mut plain) = (Vec::new(), Vec::new());
    for run in 0..options.warmup + options.repeat {
        crate::cancel::check()?;
        // Which goes first alternates too: the second of two back-to-back runs finds warmer
        // caches and allocator free lists.
        let plain_first = run % 2 == 1;
        let t_first_plain = if plain_first {
            Some(time_on(device, || full_run(model, x, &all, &mut Direct))?.1)
        } else {
            None
        };
        let (_, t_hooked) = time_on(device, || full_run(model, x, &all, &mut timer))?;
        timer.finish_run()?;
        let t_plain = match t_first_plain {
            Some(t) => t,
            None => time_on(device, || full_run(model, x, &all, &mut Direct))?.1,
        };
        if run < options.warmup {
            timer.samples.clear();
        } else {
            instrumented.push(t_hooked.as_secs_f64() * 1e6);
            plain.push(t_plain.as_secs_f64() * 1e6);
        }
    }
    Ok(StageTimes {
        samples: timer.samples,
        instrumented,
        plain,
    })
}

/// One stage's statistics; a segment's first block counts its shortcut's FLOPs.
fn stage_stats(
    model: &BlockDrop,
    flops: &BlockDropFlops,
    stage: Stage,
    samples: &[f64],
    batch: usize,
) -> StageStats {
    let (segment, stage_flops) = match stage {
        Stage::Policy => (None, flops.policy),
        Stage::Stem => (None, flops.base.stem),
        Stage::Block(k) => {
            let located = model.config.base.locate(k);
            let segment = located.map(|(s, _)| s);
            let shortcut = match located {
                Some((s, 0)) => flops.base.shortcuts[s],
                _ => 0,
            };
            (segment, flops.base.blocks[k] + shortcut)
        }
        Stage::Head => (None, flops.base.head),
    };
    StageStats {
        stage,
        segment,
        flops: stage_flops * batch as u64,
        median_us: median(samples),
        p10_us: quantile(samples, 0.1),
        p90_us: quantile(samples, 0.9),
    }
}

/// Image `index` at batch 1: its BlockDrop path (policy network included) against the full
/// network, median times.
fn image_latency(
    model: &BlockDrop,
    dataset: &Dataset,
    index: usize,
    flops: &BlockDropFlops,
    options: &ProfileOptions,
    device: &Device,
) -> Result<ImageLatency> {
    crate::cancel::check()?;
    let all = vec![true; model.num_blocks()];
    let xi = dataset.batch(&[index], &model.config, device)?;
    let policy = || -> candle_core::Result<Vec<bool>> {
        let probs = model.keep_probs(&xi, false)?.to_vec2::<f32>()?;
        Ok(policy_bits(&probs, crate::model::DEFAULT_THRESHOLD).remove(0))
    };
    let keep = policy()?;
    let (mut path, mut full) = (Vec::new(), Vec::new());
    for run in 0..options.warmup + options.repeat {
        let (_, t_path) = time_on(device, || forward_skip(&model.resnet, &xi, &policy()?))?;
        let (_, t_full) = time_on(device, || forward_skip(&model.resnet, &xi, &all))?;
        if run >= options.warmup {
            path.push(t_path.as_secs_f64() * 1e6);
            full.push(t_full.as_secs_f64() * 1e6);
        }
    }
    Ok(ImageLatency {
        index,
        blocks: crate::model::blockdrop::kept_blocks(&keep),
        path_us: median(&path),
        full_us: median(&full),
        flop_ratio: flops.per_image(&keep) as f64 / flops.base.full() as f64,
    })
}

impl fmt::Display for ProfileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.stage_sum_us();
        writeln!(
            f,
            "{} on {} with {} kernels, batch {}, median of {} runs; stages timed by {}",
            self.config, self.device, self.kernels, self.batch, self.repeat, self.clock
        )?;
        writeln!(
            f,
            "{:<10} {:>7} {:>12} {:>11} {:>11} {:>7} {:>9}",
            "stage", "segment", "FLOPs", "median µs", "p90 µs", "share", "GFLOP/s"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<10} {:>7} {:>12} {:>11.1} {:>11.1} {:>6.1}% {:>9.2}",
                s.name(),
                s.segment.map_or("-".to_string(), |g| (g + 1).to_string()),
                crate::records::sci2(s.flops as f64),
                s.median_us,
                s.p90_us,
                100.0 * s.median_us / total,
                s.gflops_per_s()
            )?;
        }
        writeln!(
            f,
            "end to end {:.1} µs uninstrumented, {:.1} µs instrumented (profiler overhead {:+.1}%); stage medians sum to {:.1} µs ({:+.1}%)",
            self.end_to_end_us,
            self.instrumented_us,
            100.0 * self.overhead(),
            total,
            100.0 * (total / self.end_to_end_us - 1.0)
        )?;
        if !self.images.is_empty() {
            writeln!(
                f,
                "per image (batch 1): BlockDrop path (policy + kept blocks) vs full network"
            )?;
            writeln!(
                f,
                "{:>6} {:>7} {:>10} {:>10} {:>11} {:>10}",
                "image", "blocks", "path µs", "full µs", "time ratio", "FLOP ratio"
            )?;
            for i in &self.images {
                writeln!(
                    f,
                    "{:>6} {:>7} {:>10.1} {:>10.1} {:>11.3} {:>10.3}",
                    i.index,
                    i.blocks,
                    i.path_us,
                    i.full_us,
                    i.time_ratio(),
                    i.flop_ratio
                )?;
            }
            let n = self.images.len() as f64;
            let mean =
                |g: &dyn Fn(&ImageLatency) -> f64| self.images.iter().map(g).sum::<f64>() / n;
            write!(
                f,
                "mean path {:.1} µs, mean full network {:.1} µs; mean time ratio {:.3}, mean FLOP ratio {:.3}",
                mean(&|i| i.path_us),
                mean(&|i| i.full_us),
                mean(&|i| i.time_ratio()),
                mean(&|i| i.flop_ratio)
            )?;
        }
        Ok(())
    }
}

/// The per-stage table as a frame (what Parquet output holds).
pub fn stages_frame(report: &ProfileReport) -> Result<DataFrame> {
    let s = &report.stages;
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            "stage".into(),
            s.iter().map(StageStats::name).collect::<Vec<_>>(),
        ),
        Column::new(
            "segment".into(),
            s.iter()
                .map(|x| x.segment.map(|g| g as u32))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "flops".into(),
            s.iter().map(|x| x.flops as f64).collect::<Vec<_>>(),
        ),
        Column::new(
            "median_us".into(),
            s.iter().map(|x| x.median_us).collect::<Vec<_>>(),
        ),
        Column::new(
            "p10_us".into(),
            s.iter().map(|x| x.p10_us).collect::<Vec<_>>(),
        ),
        Column::new(
            "p90_us".into(),
            s.iter().map(|x| x.p90_us).collect::<Vec<_>>(),
        ),
        Column::new(
            "gflops_per_s".into(),
            s.iter().map(StageStats::gflops_per_s).collect::<Vec<_>>(),
        ),
    ])?)
}

fn to_json(report: &ProfileReport) -> serde_json::Value {
    let stages: Vec<serde_json::Value> = report
        .stages
        .iter()
        .map(|s| {
            serde_json::json!({
                "stage": s.name(), "segment": s.segment, "flops": s.flops,
                "median_us": s.median_us, "p10_us": s.p10_us, "p90_us": s.p90_us,
                "gflops_per_s": s.gflops_per_s(),
            })
        })
        .collect();
    let images: Vec<serde_json::Value> = report
        .images
        .iter()
        .map(|i| {
            serde_json::json!({
                "index": i.index, "blocks": i.blocks, "path_us": i.path_us, "full_us": i.full_us,
                "time_ratio": i.time_ratio(), "flop_ratio": i.flop_ratio,
            })
        })
        .collect();
    serde_json::json!({
        (crate::output::WRITER_KEY): crate::output::WRITER,
        "config": report.config, "device": report.device, "kernels": report.kernels,
        "clock": report.clock,
        "batch": report.batch, "repeat": report.repeat,
        "end_to_end_us": report.end_to_end_us, "instrumented_us": report.instrumented_us,
        "overhead": report.overhead(), "stage_sum_us": report.stage_sum_us(),
        "stages": stages, "images": images,
    })
}

/// Writes the report: Parquet (the per-stage table) when `path` ends in `.parquet`, else JSON
/// (everything).
pub fn write(report: &ProfileReport, path: &Path) -> Result<()> {
    if crate::output::frame::is_parquet(path) {
        return crate::output::frame::write_frame(&mut stages_frame(report)?, path);
    }
    let json = to_json(report);
    crate::output::check_replaceable(path, crate::output::json_is_ours)?;
    write_atomic(path, |file| {
        serde_json::to_writer_pretty(file, &json)
            .map_err(|e| Error::bad_input(path, format!("cannot write profile: {e}")))
    })
}
