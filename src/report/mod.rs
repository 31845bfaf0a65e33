//! The headless report: figures (plotters PNGs, font embedded), `index.md`, `summary.json`,
//! `records.parquet`, `clusters.parquet` and `tradeoff.csv`, written into a temporary folder
//! and renamed into place so an interrupted export never leaves half a report.

pub mod charts;
pub mod curves;
pub mod grids;
pub mod models;
pub mod runs;
pub mod style;
pub mod table;

use std::fmt::Write as _;
use std::path::Path;

use candle_core::Device;
use polars::prelude::*;

use crate::analysis::{self, frames, Analysis, Cluster};
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::adaptivity::signed;
use crate::eval::adaptivity::Adaptivity;
use crate::eval::baselines::Selection;
use crate::eval::tradeoff::{
    choose_subsets, tradeoff, CostAxis, Tradeoff, TradeoffOptions, TradeoffPoint,
};
use crate::eval::{evaluate, EvalOptions};
use crate::model::blockdrop::policy_string;
use crate::model::BlockDrop;
use crate::profile::cost::{CostTable, PredictedLatency};
use crate::profile::{profile, ProfileOptions, ProfileReport};
use crate::records::{Record, Summary};

/// Images the report's trade-off sweep uses (each point re-runs the base network on them).
pub const TRADEOFF_IMAGES: usize = 500;
/// Images timed one by one, and timed runs per measurement, in the report's profile.
pub const PROFILE_IMAGES: usize = 8;
pub const PROFILE_REPEATS: usize = 5;

/// What a report computes. The default is the one preset that `export`, `--export` and the
/// terminal app's `e` (and its Trade-off and Profile views) share.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub eval: EvalOptions,
    pub tradeoff: TradeoffOptions,
    /// `None` skips profiling.
    pub profile: Option<ProfileOptions>,
    /// Clusters in the coarse clustering; `None` is [`analysis::DEFAULT_CLUSTERS`] (fewer when
    /// fewer policies are distinct).
    pub clusters: Option<usize>,
    /// Images per gallery.
    pub gallery: usize,
    /// A cost table for the model's configuration: the report shows the latency it predicts.
    pub cost: Option<CostTable>,
    /// The trade-off figure's x-axis: latency (from `cost`, else from this report's own
    /// profile) instead of FLOPs.
    pub latency_axis: bool,
    /// Run the threshold sweep and static baselines (`--no-tradeoff` leaves them out, with
    /// the trade-off figure, `tradeoff.csv` and the adaptivity).
    pub sweep: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            eval: EvalOptions {
                keep_logits: true,
                ..EvalOptions::default()
            },
            tradeoff: TradeoffOptions {
                limit: Some(TRADEOFF_IMAGES),
                ..TradeoffOptions::default()
            },
            profile: Some(ProfileOptions {
                images: PROFILE_IMAGES,
                batch: 1,
                repeat: PROFILE_REPEATS,
                warmup: 1,
            }),
            clusters: None,
            gallery: 12,
            cost: None,
            latency_axis: false,
            sweep: true,
        }
    }
}

/// Everything a report shows.
pub struct ReportData<'a> {
    pub title: String,
    pub model: &'a BlockDrop,
    pub dataset: &'a Dataset,
    pub records: Vec<Record>,
    /// The sweep and adaptivity; `None` when left out (`--no-tradeoff`).
    pub tradeoff: Option<Tradeoff>,
    pub profile: Option<ProfileReport>,
    /// The latency the user's cost table predicts for the records.
    pub predicted: Option<PredictedLatency>,
    /// The shipped models side by side (`--export` of the bundled default).
    pub models: Option<crate::compare::Comparison>,
}

/// A figure written into the report, with the caption `index.md` gives it.
#[derive(Debug, Clone)]
pub struct Figure {
    pub file: String,
    pub caption: String,
}

/// The parts of collecting a report, as progress names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Evaluating,
    ChoosingSubsets,
    TradeoffSweep,
    Profiling,
    Models,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Evaluating => "evaluating",
            Phase::ChoosingSubsets => "choosing static subsets",
            Phase::TradeoffSweep => "trade-off sweep",
            Phase::Profiling => "profiling",
            Phase::Models => "comparing the shipped models",
        })
    }
}

/// Runs evaluation, the choice of static subsets on `selection`, the trade-off sweep and
/// (optionally) profiling, reporting each phase's progress as `progress(phase, done, total)`.
pub fn collect<'a>(
    model: &'a BlockDrop,
    dataset: &'a Dataset,
    selection: &Selection,
    options: &ExportOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<ReportData<'a>> {
    let records = evaluate(model, dataset, &options.eval, device, |d, t| {
        progress(Phase::Evaluating, d, t)
    })?;
    collect_with_records(
        model, dataset, records, selection, options, device, progress,
    )
}

/// [`collect`] from an evaluation's `records` (`export --records`): nothing is evaluated
/// again; the sweep (on `options.tradeoff.limit` images) and the profile still run.
pub fn collect_with_records<'a>(
    model: &'a BlockDrop,
    dataset: &'a Dataset,
    records: Vec<Record>,
    selection: &Selection,
    options: &ExportOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<ReportData<'a>> {
    // A base network alone has no policy to sweep or to weigh against static subsets.
    let tradeoff = if options.sweep && model.has_policy() {
        let subsets = choose_subsets(model, selection, &options.tradeoff, device, |d, t| {
            progress(Phase::ChoosingSubsets, d, t)
        })?;
        Some(tradeoff(
            model,
            dataset,
            &subsets,
            &options.tradeoff,
            device,
            |d, t| progress(Phase::TradeoffSweep, d, t),
        )?)
    } else {
        None
    };
    let profile = match &options.profile {
        Some(p) => {
            progress(Phase::Profiling, 0, 1);
            Some(profile(model, dataset, p, device)?)
        }
        None => None,
    };
    Ok(ReportData {
        title: format!("{} on {}", model.config.name, dataset.path.display()),
        model,
        dataset,
        predicted: options
            .cost
            .as_ref()
            .map(|table| -> Result<PredictedLatency> {
                Ok(PredictedLatency::of(
                    table,
                    &analysis::keep_rates(&records)?,
                ))
            })
            .transpose()?,
        records,
        tradeoff,
        profile,
        models: None,
    })
}

/// The shipped models (the default and the other two finetuned ones, from the binary)
/// compared on `dataset`: evaluation, full network, threshold sweep and latency; their
/// adaptivity is left to `blockdrop compare`, to keep `--export` quick.
pub fn shipped_models_comparison(
    dataset: &Dataset,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<crate::compare::Comparison> {
    use crate::compare::{compare, CompareOptions, Entry};
    let entries = crate::bundled::shipped_models(device)
        .into_iter()
        .map(|(path, loaded)| Entry {
            name: crate::runs::display_name(Path::new(path)),
            model: loaded
                .and_then(|mut l| {
                    l.model.fold_for_inference()?;
                    Ok(std::sync::Arc::new(l.model))
                })
                .map_err(|e| e.to_string()),
            run: None,
        })
        .collect();
    let options = CompareOptions {
        adaptivity: false,
        ..CompareOptions::default()
    };
    compare(
        entries,
        dataset,
        &Selection::Unavailable("not measured".into()),
        &options,
        device,
        |_, d, t| progress(Phase::Models, d, t),
    )
}

fn tradeoff_frame(points: &[TradeoffPoint]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            "method".into(),
            points.iter().map(|p| p.method.name()).collect::<Vec<_>>(),
        ),
        Column::new(
            "parameter".into(),
            points.iter().map(|p| p.parameter).collect::<Vec<_>>(),
        ),
        Column::new(
            "policy".into(),
            points
                .iter()
                .map(|p| p.policy.as_deref().map(policy_string))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            points
                .iter()
                .map(|p| p.seed.map(|s| s as u32))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "accuracy".into(),
            points.iter().map(|p| p.accuracy).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_blocks".into(),
            points.iter().map(|p| p.mean_blocks).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_flops".into(),
            points.iter().map(|p| p.mean_flops).collect::<Vec<_>>(),
        ),
    ])?)
}

/// The figures written so far, with their captions, and the folder they go to.
struct Figures<'d> {
    dir: &'d Path,
    list: Vec<Figure>,
}

impl Figures<'_> {
    /// Adds a figure to the list; returns the path to draw it at.
    fn add(&mut self, file: &str, caption: String) -> std::path::PathBuf {
        self.list.push(Figure {
            file: file.to_string(),
            caption,
        });
        self.dir.join(file)
    }
}

/// Writes every file of the report into `dir` (which must exist and be empty).
pub fn write_files(data: &ReportData, options: &ExportOptions, dir: &Path) -> Result<Vec<Figure>> {
    let summary = Summary::of(&data.records);
    let analysis = Analysis::of(&data.records, options.clusters)?;
    let mut figures = Figures {
        dir,
        list: Vec::new(),
    };
    chart_figures(data, options, &summary, &analysis, &mut figures)?;
    grid_figures(data, options, &analysis, &mut figures)?;
    let model_figures = match &data.models {
        Some(models) => models::write_figures(models, dir, "models_")?,
        None => Vec::new(),
    };
    write_tables(data, &analysis.clusters, dir)?;
    let json = summary_json(data, &summary);
    crate::atomic::write_bytes_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let mut index = index_markdown(data, &summary, &analysis, &figures.list);
    if let Some(models) = &data.models {
        index.push_str(&models_markdown(models, &model_figures));
    }
    crate::atomic::write_bytes_atomic(&dir.join("index.md"), index.as_bytes())?;
    Ok(figures.list.into_iter().chain(model_figures).collect())
}

/// The plotted figures: the trade-off, per-stage latency, block usage and keep rates.
fn chart_figures(
    data: &ReportData,
    options: &ExportOptions,
    summary: &Summary,
    analysis: &Analysis,
    figures: &mut Figures,
) -> Result<()> {
    let records = &data.records;
    let mut figure = |file: &str, caption: String| figures.add(file, caption);
    let sweep_images = options
        .tradeoff
        .limit
        .map_or(data.dataset.len(), |l| l.min(data.dataset.len()));
    // The latency axis: the user's cost table, else one from this report's profile.
    let profiled = data
        .profile
        .as_ref()
        .map(|p| CostTable::from_profile(p, rayon::current_num_threads()));
    let table = options.cost.as_ref().or(profiled.as_ref());
    let (axis, learned, cost) = match table.filter(|_| options.latency_axis) {
        Some(table) => {
            let us = table.path_us(&analysis.keep_rates);
            (
                CostAxis::Latency(table),
                (us, summary.accuracy),
                format!("predicted latency per image ({})", table.measured_on()),
            )
        }
        None => (
            CostAxis::Flops,
            (summary.flops_mean / 1e6, summary.accuracy),
            "mean FLOPs per image".to_string(),
        ),
    };
    if let Some(tradeoff) = &data.tradeoff {
        charts::tradeoff(
            &tradeoff.points,
            axis,
            learned,
            &figure("tradeoff.png", format!("Accuracy against {cost} on the first {sweep_images} images: the policy at thresholds 0.1–0.9, FirstK and Random at the same block budgets, the static baselines (the model's most frequent policies and the best subset at each budget, {}, each run on every image), the oracle bound, the full network, and this model at threshold {} on all {} images.", tradeoff.adaptivity.subsets_from, options.eval.threshold, records.len())),
        )?;
    }
    if let Some(p) = &data.profile {
        charts::latency(p, &figure("latency.png", format!("Median time per stage on {} with FLOPs overlaid; the profiler's overhead was {:+.1}%.", p.device, 100.0 * p.overhead())))?;
    }
    if !data.model.has_policy() {
        return Ok(());
    }
    let blocks: Vec<u32> = records.iter().map(|r| r.blocks).collect();
    charts::usage_histogram(
        &blocks,
        data.model.num_blocks(),
        &figure(
            "usage_histogram.png",
            "How many blocks each image runs.".into(),
        ),
    )?;
    charts::keep_rates(
        &analysis.keep_rates,
        &figure(
            "keep_rates.png",
            "Fraction of images that run each block.".into(),
        ),
    )?;
    Ok(())
}

/// The figures drawn as grids: policy and class heat maps, easy/hard and cluster galleries.
fn grid_figures(
    data: &ReportData,
    options: &ExportOptions,
    analysis: &Analysis,
    figures: &mut Figures,
) -> Result<()> {
    let records = &data.records;
    let names = data.model.config.class_set;
    let mut figure = |file: &str, caption: String| figures.add(file, caption);
    let policy = data.model.has_policy();
    if policy {
        grids::policy_heatmap(
            records,
            &figure(
                "policy_heatmap.png",
                "Every image's policy, images sorted by blocks used.".into(),
            ),
        )?;
        grids::class_heatmap(
            &analysis.classes,
            names,
            &figure(
                "class_usage.png",
                "Keep rate per class and block, with each class's accuracy and mean blocks.".into(),
            ),
        )?;
    }
    let order = &analysis.easy_to_hard;
    let easy: Vec<&Record> = order
        .iter()
        .take(options.gallery)
        .map(|&i| &records[i])
        .collect();
    let hard: Vec<&Record> = order
        .iter()
        .rev()
        .take(options.gallery)
        .map(|&i| &records[i])
        .collect();
    grids::gallery(
        "Easiest images: fewest blocks, most confident first (label → prediction)",
        &easy,
        data.dataset,
        names,
        None,
        &figure(
            "easy.png",
            "The easiest images: fewest blocks used, most confident first.".into(),
        ),
    )?;
    grids::gallery(
        "Hardest images: most blocks, least confident first (label → prediction)",
        &hard,
        data.dataset,
        names,
        None,
        &figure(
            "hard.png",
            "The hardest images: most blocks used, least confident first.".into(),
        ),
    )?;
    let clusters = if policy { &analysis.clusters[..] } else { &[] };
    for (c, cluster) in clusters.iter().enumerate() {
        crate::cancel::check()?;
        let members = grids::cluster_members(cluster, records, options.gallery);
        let title = format!(
            "Cluster {c}: {} images, accuracy {:.3}, {:.1} blocks on average",
            cluster.members.len(),
            cluster.accuracy,
            cluster.mean_blocks
        );
        let file = format!("cluster_{c}.png");
        let caption = format!("Cluster {c} of {} (Hamming k-medoids over policies): {} images; its medoid policy and members.", clusters.len(), cluster.members.len());
        grids::gallery(
            &title,
            &members,
            data.dataset,
            names,
            Some(&cluster.medoid),
            &figure(&file, caption),
        )?;
    }

    Ok(())
}

/// The report's tables: records, clusters and the trade-off.
fn write_tables(data: &ReportData, clusters: &[Cluster], dir: &Path) -> Result<()> {
    let records = &data.records;
    crate::records::write(records, &dir.join("records.parquet"))?;
    crate::output::frame::write_frame(
        &mut frames::clusters_frame(clusters)?,
        &dir.join("clusters.parquet"),
    )?;
    if let Some(tradeoff) = &data.tradeoff {
        crate::output::frame::write_frame(
            &mut tradeoff_frame(&tradeoff.points)?,
            &dir.join("tradeoff.csv"),
        )?;
    }
    Ok(())
}

/// `summary.json`: the summary's numbers and lines, and the latency medians when profiled.
fn summary_json(data: &ReportData, summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "title": data.title,
        "config": data.model.config.name,
        "images": summary.images,
        "accuracy": summary.accuracy,
        "block_usage_mean": summary.block_usage_mean,
        "block_usage_std": summary.block_usage_std,
        "flops_mean": summary.flops_mean,
        "flops_std": summary.flops_std,
        "unique_policies": summary.unique_policies,
        "lines": summary.to_string().lines().collect::<Vec<_>>(),
        "adaptivity": data.tradeoff.as_ref().map(|t| adaptivity_json(&t.adaptivity)),
        "predicted_latency_us": data.predicted.as_ref().map(|p| serde_json::json!({
            "path": p.path_us,
            "full": p.full_us,
            "measured_on": p.measured_on,
        })),
        "latency_us": data.profile.as_ref().map(|p| {
            let latency = p.image_latency();
            serde_json::json!({
                "median_path": latency.median_path_us,
                "p90_path": latency.p90_path_us,
                "median_full": latency.median_full_us,
            })
        }),
    })
}

/// The report's Models section: the shipped models side by side.
fn models_markdown(models: &crate::compare::Comparison, figures: &[Figure]) -> String {
    let mut md = format!(
        "\n## Models: the shipped models side by side\n\nOn the same {} images: the four figures as `eval` prints them, FLOPs as a share of the full base network, the full network with the same weights, and batch-1 latency on this device. (Their adaptivity gain: `blockdrop compare --data assets/fashion-mnist-sample assets/*.safetensors`.)\n\n",
        models.images
    );
    md.push_str(&models::table_markdown(models));
    md.push('\n');
    for f in figures {
        let _ = writeln!(md, "![{}]({})\n\n{}\n", f.file, f.file, f.caption);
    }
    md.push_str(&models::agreement_markdown(models));
    md
}

/// The adaptivity numbers for `summary.json` (docs/formats.md).
fn adaptivity_json(a: &Adaptivity) -> serde_json::Value {
    let point = |p: &crate::eval::adaptivity::CostPoint| {
        serde_json::json!({
            "accuracy": p.accuracy,
            "mean_blocks": p.mean_blocks,
            "mean_flops": p.mean_flops,
        })
    };
    serde_json::json!({
        "images": a.images,
        "gain_blocks": a.gain.blocks,
        "gain_flops": a.gain.flops,
        "learned": point(&a.learned),
        "oracle": point(&a.oracle),
        "subsets_from": a.subsets_from,
        "static": a.statics.iter().map(|s| serde_json::json!({
            "kind": s.kind.name(),
            "policy": policy_string(&s.policy),
            "accuracy": s.point.accuracy,
            "blocks": s.point.mean_blocks,
            "flops": s.point.mean_flops,
        })).collect::<Vec<_>>(),
        "per_class": a.per_class.iter().map(|c| serde_json::json!({
            "label": c.label,
            "images": c.images,
            "gain_blocks": c.gain.blocks,
            "gain_flops": c.gain.flops,
            "off_mode_share": c.off_mode_share,
        })).collect::<Vec<_>>(),
    })
}

/// The adaptivity section of `index.md`: the gain, the oracle, and the static frontier.
fn adaptivity_markdown(a: &Adaptivity) -> String {
    let mut md = format!(
        "## Adaptivity: what choosing blocks per image buys\n\n\
         On the first {} images the learned policy reaches accuracy {:.4} at {:.2} blocks \
         ({:.1} MFLOPs) per image. The static frontier (the best fixed policy at each cost, \
         linear between neighbours; {}) reaches {} at the same mean blocks and {} at the same \
         mean FLOPs: **adaptivity gain {} at equal blocks, {} at equal FLOPs**.\n\n\
         An oracle that picks, per image, the cheapest candidate policy that is right (the \
         image's own, any static one, the full network) reaches **{:.4} at {:.2} blocks** \
         ({:.1} MFLOPs): the headroom a better policy network could reach.\n\n",
        a.images,
        a.learned.accuracy,
        a.learned.mean_blocks,
        a.learned.mean_flops / 1e6,
        a.subsets_from,
        a.frontier_text(a.gain.blocks),
        a.frontier_text(a.gain.flops),
        signed(a.gain.blocks),
        signed(a.gain.flops),
        a.oracle.accuracy,
        a.oracle.mean_blocks,
        a.oracle.mean_flops / 1e6,
    );
    md.push_str(
        "| static policy | kind | blocks | MFLOPs | accuracy |\n|---|---|---:|---:|---:|\n",
    );
    let mut statics: Vec<_> = a.statics.iter().collect();
    statics.sort_by(|x, y| x.point.mean_flops.total_cmp(&y.point.mean_flops));
    for s in statics {
        let kind = match s.kind {
            crate::eval::adaptivity::StaticKind::Used { images } => {
                format!(
                    "used by {:.1}% of images",
                    100.0 * images as f64 / a.images.max(1) as f64
                )
            }
            other => other.name().to_string(),
        };
        let _ = writeln!(
            md,
            "| `{}` | {kind} | {} | {:.1} | {:.4} |",
            policy_string(&s.policy),
            s.point.mean_blocks,
            s.point.mean_flops / 1e6,
            s.point.accuracy
        );
    }
    md.push('\n');
    md
}

/// `index.md`: the summary, the latency line, every figure with its caption, and the per-class
/// and most-common-policy tables.
fn index_markdown(
    data: &ReportData,
    summary: &Summary,
    analysis: &Analysis,
    figures: &[Figure],
) -> String {
    let names = data.model.config.class_set;
    let mut index = format!(
        "# BlockDrop report: {}\n\n```\n{summary}\n```\n\n",
        data.title
    );
    if !data.model.has_policy() {
        index.push_str(
            "This model is a base network alone: it has no policy network, so every image runs \
             every block. The policy's figures (block usage, keep rates, policy and class heat \
             maps, clusters, the trade-off and the adaptivity) are left out.\n\n",
        );
    }
    if let Some(p) = &data.profile {
        let latency = p.image_latency();
        let _ = writeln!(
            index,
            "Latency (batch 1, {} images): median {:.0} µs, p90 {:.0} µs for the BlockDrop path; full network {:.0} µs.\n",
            p.images.len(),
            latency.median_path_us,
            latency.p90_path_us,
            latency.median_full_us
        );
    }
    if let Some(p) = &data.predicted {
        let _ = writeln!(index, "{}.\n", p.line());
    }
    for f in figures {
        let _ = writeln!(index, "![{}]({})\n\n{}\n", f.file, f.file, f.caption);
    }
    let adaptivity = data.tradeoff.as_ref().map(|t| &t.adaptivity);
    if let Some(adaptivity) = adaptivity {
        index.push_str(&adaptivity_markdown(adaptivity));
    }
    let _ = writeln!(index, "## Per class\n\nGain: the class's adaptivity gain at equal blocks; off-mode: the share of its images whose policy is not the class's most common one ({}).\n\n| class | images | accuracy | mean blocks | mean MFLOPs | gain | off-mode |\n|---|---:|---:|---:|---:|---:|---:|", adaptivity.map_or("n/a: the sweep was left out".to_string(), |a| format!("both on the first {} images", a.images)));
    for c in &analysis.classes {
        let class = adaptivity.and_then(|a| a.per_class.iter().find(|a| a.label == c.label));
        let _ = writeln!(
            index,
            "| {} | {} | {:.3} | {:.2} | {:.1} | {} | {} |",
            names.name(c.label),
            c.images,
            c.accuracy,
            c.mean_blocks,
            c.mean_flops / 1e6,
            class
                .and_then(|a| a.gain.blocks)
                .map_or("n/a".into(), |g| format!("{g:+.3}")),
            class.map_or("n/a".into(), |a| format!("{:.2}", a.off_mode_share)),
        );
    }
    index.push('\n');
    let groups = &analysis.groups;
    let _ = writeln!(index, "## Most common policies ({} distinct)\n\n| images | accuracy | blocks | policy |\n|---:|---:|---:|---|", groups.len());
    for g in groups.iter().take(10) {
        let _ = writeln!(
            index,
            "| {} | {:.3} | {} | `{}` |",
            g.members.len(),
            g.accuracy,
            g.blocks(),
            crate::model::blockdrop::policy_string(&g.policy)
        );
    }
    index.push('\n');
    let tradeoff_csv = if data.tradeoff.is_some() {
        ", [tradeoff.csv](tradeoff.csv)"
    } else {
        ""
    };
    let _ = writeln!(index, "Data: [records.parquet](records.parquet) (one row per image), [clusters.parquet](clusters.parquet){tradeoff_csv}, [summary.json](summary.json).");
    index
}

/// Writes the report into `out` under the output rule ([`crate::output`]): built whole in a
/// hidden sibling folder, then moved in; a folder blockdrop did not write is refused, and in
/// one it did, only its own files are replaced.
pub fn write_report(data: &ReportData, options: &ExportOptions, out: &Path) -> Result<Vec<Figure>> {
    crate::output::Staging::build(out, |dir| write_files(data, options, dir))
}
