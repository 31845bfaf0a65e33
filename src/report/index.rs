//! `index.md`: the summary, every figure with its caption, the adaptivity, per-class and
//! policy tables, and the Models section.

use std::fmt::Write as _;

use super::{models, Figure, ReportData};
use crate::analysis::Analysis;
use crate::eval::adaptivity::{signed, Adaptivity};
use crate::model::blockdrop::policy_string;
use crate::records::Summary;

/// The report's Models section: the shipped models side by side.
pub(super) fn models_markdown(models: &crate::compare::Comparison, figures: &[Figure]) -> String {
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
pub(super) fn index_markdown(
    data: &ReportData,
    summary: &Summary,
    analysis: &Analysis,
    figures: &[Figure],
) -> String {
    let names = data.study.model.config.class_set;
    let mut index = format!(
        "# BlockDrop report: {}\n\n```\n{summary}\n```\n\n",
        data.study.title
    );
    if !data.study.model.has_policy() {
        index.push_str(
            "This model is a base network alone: it has no policy network, so every image runs \
             every block. The policy's figures (block usage, keep rates, policy and class heat \
             maps, clusters, the trade-off and the adaptivity) are left out.\n\n",
        );
    }
    if let Some(p) = &data.study.profile {
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
    if let Some(p) = &data.study.predicted {
        let _ = writeln!(index, "{}.\n", p.line());
    }
    for f in figures {
        let _ = writeln!(index, "![{}]({})\n\n{}\n", f.file, f.file, f.caption);
    }
    let adaptivity = data.study.tradeoff.as_ref().map(|t| &t.adaptivity);
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
    let tradeoff_csv = if data.study.tradeoff.is_some() {
        ", [tradeoff.csv](tradeoff.csv)"
    } else {
        ""
    };
    let _ = writeln!(index, "Data: [records.parquet](records.parquet) (one row per image), [clusters.parquet](clusters.parquet){tradeoff_csv}, [summary.json](summary.json).");
    index
}
