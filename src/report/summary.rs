//! `summary.json`: the summary's numbers and lines, the adaptivity and the latency
//! (docs/formats.md).

use super::ReportData;
use crate::eval::adaptivity::Adaptivity;
use crate::model::blockdrop::policy_string;
use crate::records::Summary;

/// `summary.json`: the summary's numbers and lines, and the latency medians when profiled.
pub(super) fn summary_json(data: &ReportData, summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "title": data.study.title,
        "config": data.study.model.config.name,
        "images": summary.images,
        "accuracy": summary.accuracy,
        "block_usage_mean": summary.block_usage_mean,
        "block_usage_std": summary.block_usage_std,
        "flops_mean": summary.flops_mean,
        "flops_std": summary.flops_std,
        "unique_policies": summary.unique_policies,
        "lines": summary.to_string().lines().collect::<Vec<_>>(),
        "adaptivity": data.study.tradeoff.as_ref().map(|t| adaptivity_json(&t.adaptivity)),
        "predicted_latency_us": data.study.predicted.as_ref().map(|p| serde_json::json!({
            "path": p.path_us,
            "full": p.full_us,
            "measured_on": p.measured_on,
        })),
        "latency_us": data.study.profile.as_ref().map(|p| {
            let latency = p.image_latency();
            serde_json::json!({
                "median_path": latency.median_path_us,
                "p90_path": latency.p90_path_us,
                "median_full": latency.median_full_us,
            })
        }),
    })
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
