//! Per-block profiling on the model's device: how long the policy network, the stem, every
//! block and the head take (full network, so every block is measured), the profiler's own
//! overhead, and per image the measured latency of its BlockDrop path against the full
//! network next to the FLOP-predicted ratio.

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
use timer::{median, quantile, time_on, StageTimer};

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

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            images: 16,
            batch: 1,
            repeat: 10,
            warmup: 2,
        }
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
        match self.stage {
            Stage::Policy => "policy".into(),
            Stage::Stem => "stem".into(),
            Stage::Block(k) => format!("block {k}"),
            Stage::Head => "head".into(),
        }
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
    hook.run(Stage::Policy, &mut || model.agent.keep_probs(x, false))?;
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
    let flops = BlockDropFlops::for_config(&model.config);
    let all = vec![true; model.num_blocks()];
    let x = dataset.batch(
        &(0..options.batch).collect::<Vec<_>>(),
        &model.config,
        device,
    )?;

    // Instrumented and plain runs alternate, so drift on a shared machine hits both alike.
    let mut timer = StageTimer::new(device);
    let (mut instrumented, mut plain) = (Vec::new(), Vec::new());
    for run in 0..options.warmup + options.repeat {
        crate::cancel::check()?;
        // Which goes first alternates too: the second of two back-to-back runs finds warmer
        // caches and allocator free lists.
        let plain_first = run % 2 == 1;
        let t_first_plain = if plain_first {
            Some(time_on(device, || full_run(model, &x, &all, &mut Direct))?.1)
        } else {
            None
        };
        let (_, t_hooked) = time_on(device, || full_run(model, &x, &all, &mut timer))?;
        let t_plain = match t_first_plain {
            Some(t) => t,
            None => time_on(device, || full_run(model, &x, &all, &mut Direct))?.1,
        };
        if run < options.warmup {
            timer.samples.clear();
        } else {
            instrumented.push(t_hooked.as_secs_f64() * 1e6);
            plain.push(t_plain.as_secs_f64() * 1e6);
        }
    }
    let batch = options.batch as u64;
    let stages = timer
        .samples
        .iter()
        .map(|(&stage, samples)| {
            let (segment, stage_flops) = match stage {
                Stage::Policy => (None, flops.policy),
                Stage::Stem => (None, flops.base.stem),
                Stage::Block(k) => {
                    let segment = model.config.base.locate(k).map(|(s, _)| s);
                    let first_of_segment = model.config.base.locate(k).is_some_and(|(_, b)| b == 0);
                    let shortcut = segment
                        .filter(|_| first_of_segment)
                        .map_or(0, |s| flops.base.shortcuts[s]);
                    (segment, flops.base.blocks[k] + shortcut)
                }
                Stage::Head => (None, flops.base.head),
            };
            StageStats {
                stage,
                segment,
                flops: stage_flops * batch,
                median_us: median(samples),
                p10_us: quantile(samples, 0.1),
                p90_us: quantile(samples, 0.9),
            }
        })
        .collect();

    let mut images = Vec::with_capacity(options.images);
    for index in 0..options.images {
        crate::cancel::check()?;
        let xi = dataset.batch(&[index], &model.config, device)?;
        let probs = model.agent.keep_probs(&xi, false)?.to_vec2::<f32>()?;
        let keep = policy_bits(&probs, crate::model::DEFAULT_THRESHOLD).remove(0);
        let (mut path, mut full) = (Vec::new(), Vec::new());
        for run in 0..options.warmup + options.repeat {
            let (_, t_path) = time_on(device, || {
                let probs = model.agent.keep_probs(&xi, false)?.to_vec2::<f32>()?;
                let keep = policy_bits(&probs, crate::model::DEFAULT_THRESHOLD).remove(0);
                forward_skip(&model.resnet, &xi, &keep)
            })?;
            let (_, t_full) = time_on(device, || forward_skip(&model.resnet, &xi, &all))?;
            if run >= options.warmup {
                path.push(t_path.as_secs_f64() * 1e6);
                full.push(t_full.as_secs_f64() * 1e6);
            }
        }
        images.push(ImageLatency {
            index,
            blocks: keep.iter().filter(|&&k| k).count(),
            path_us: median(&path),
            full_us: median(&full),
            flop_ratio: flops.per_image(&keep) as f64 / flops.base.full() as f64,
        });
    }
    Ok(ProfileReport {
        config: model.config.name.clone(),
        device: device_name(device),
        batch: options.batch,
        repeat: options.repeat,
        stages,
        end_to_end_us: median(&plain),
        instrumented_us: median(&instrumented),
        images,
    })
}

impl fmt::Display for ProfileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.stage_sum_us();
        writeln!(
            f,
            "{} on {}, batch {}, median of {} runs",
            self.config, self.device, self.batch, self.repeat
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
                crate::eval::sci2(s.flops as f64),
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
                "mean time ratio {:.3}, mean FLOP ratio {:.3}",
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
        "config": report.config, "device": report.device, "batch": report.batch, "repeat": report.repeat,
        "end_to_end_us": report.end_to_end_us, "instrumented_us": report.instrumented_us,
        "overhead": report.overhead(), "stage_sum_us": report.stage_sum_us(),
        "stages": stages, "images": images,
    })
}

/// Writes the report: Parquet (the per-stage table) when `path` ends in `.parquet`, else JSON
/// (everything).
pub fn write(report: &ProfileReport, path: &Path) -> Result<()> {
    if crate::records::is_parquet(path) {
        return crate::records::write_frame(&mut stages_frame(report)?, path);
    }
    let json = to_json(report);
    crate::output::check_replaceable(path, |p| {
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|old| old[crate::output::WRITER_KEY] == crate::output::WRITER)
    })?;
    write_atomic(path, |file| {
        serde_json::to_writer_pretty(file, &json)
            .map_err(|e| Error::bad_input(path, format!("cannot write profile: {e}")))
    })
}
