//! The report's figures: which are drawn, under which file names and captions.

use std::path::{Path, PathBuf};

use super::{charts, grids, Figure, ReportData};
use crate::analysis::Analysis;
use crate::error::Result;
use crate::eval::tradeoff::CostAxis;
use crate::profile::cost::CostTable;
use crate::records::{Record, Summary};
use crate::study::Options;

/// The figures written so far, with their captions, and the folder they go to.
pub(super) struct Figures<'d> {
    pub(super) dir: &'d Path,
    pub(super) list: Vec<Figure>,
}

impl Figures<'_> {
    /// Adds a figure to the list; returns the path to draw it at.
    fn add(&mut self, file: &str, caption: String) -> PathBuf {
        self.list.push(Figure {
            file: file.to_string(),
            caption,
        });
        self.dir.join(file)
    }
}

/// The plotted figures: the trade-off, per-stage latency, block usage and keep rates.
pub(super) fn chart_figures(
    data: &ReportData,
    options: &Options,
    summary: &Summary,
    analysis: &Analysis,
    figures: &mut Figures,
) -> Result<()> {
    let records = &data.study.records;
    let mut figure = |file: &str, caption: String| figures.add(file, caption);
    let sweep_images = options
        .tradeoff
        .limit
        .map_or(data.study.dataset.len(), |l| {
            l.min(data.study.dataset.len())
        });
    // The latency axis: the user's cost table, else one from this report's profile.
    let profiled = data
        .study
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
    if let Some(tradeoff) = &data.study.tradeoff {
        charts::tradeoff(
            &tradeoff.points,
            axis,
            learned,
            &figure("tradeoff.png", format!("Accuracy against {cost} on the first {sweep_images} images: the policy at thresholds 0.1–0.9, FirstK and Random at the same block budgets, the static baselines (the model's most frequent policies and the best subset at each budget, {}, each run on every image), the oracle bound, the full network, and this model at threshold {} on all {} images.", tradeoff.adaptivity.subsets_from, options.eval.threshold, records.len())),
        )?;
    }
    if let Some(p) = &data.study.profile {
        charts::latency(p, &figure("latency.png", format!("Median time per stage on {} with FLOPs overlaid; the profiler's overhead was {:+.1}%.", p.device, 100.0 * p.overhead())))?;
    }
    if !data.study.model.has_policy() {
        return Ok(());
    }
    let blocks: Vec<u32> = records.iter().map(|r| r.blocks).collect();
    charts::usage_histogram(
        &blocks,
        data.study.model.num_blocks(),
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
pub(super) fn grid_figures(
    data: &ReportData,
    options: &Options,
    analysis: &Analysis,
    figures: &mut Figures,
) -> Result<()> {
    let records = &data.study.records;
    let names = data.study.model.config.class_set;
    let mut figure = |file: &str, caption: String| figures.add(file, caption);
    let policy = data.study.model.has_policy();
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
        data.study.dataset,
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
        data.study.dataset,
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
            data.study.dataset,
            names,
            Some(&cluster.medoid),
            &figure(&file, caption),
        )?;
    }

    Ok(())
}
