//! The comparison of several models as text and as a report folder (`compare --out DIR`):
//! the table, the Pareto figure, keep rates per model and block, policy agreement, and the
//! training curves of run folders.

use std::fmt::Write as _;
use std::path::Path;

use crate::compare::{agreement, Compared, Comparison};
use crate::error::Result;
use crate::eval::adaptivity::signed;
use crate::eval::tradeoff::{series, Method};
use crate::exec::Stage;
use crate::profile::ProfileReport;
use crate::report::curves::{self, ModelSeries};
use crate::report::{grids, table, Figure};
use crate::runs::RunFolder;

/// The comparison table's header, one column per figure.
const COLUMNS: [&str; 13] = [
    "model",
    "Accuracy",
    "Block Usage",
    "FLOPs/img",
    "Unique Policies",
    "blocks per segment",
    "FLOPs share",
    "full-network accuracy",
    "adaptivity gain",
    "path µs (b1)",
    "full µs (b1)",
    "predicted µs",
    "config",
];

/// Each row's cells, in [`COLUMNS`]' order; a failed model's row says why.
fn cells(comparison: &Comparison) -> Vec<Vec<String>> {
    comparison
        .rows
        .iter()
        .map(|row| match row {
            Ok(c) => {
                let latency = c.latency();
                let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
                // The four figures exactly as `eval` prints them.
                let four = c.summary.to_string();
                let mut row = vec![c.name.clone()];
                row.extend(
                    four.lines()
                        .map(|l| l.split_once(": ").map_or(l, |(_, v)| v).to_string()),
                );
                let segments: Vec<String> = c
                    .blocks_per_segment()
                    .iter()
                    .map(|b| format!("{b:.2}"))
                    .collect();
                row.extend([
                    segments.join(" / "),
                    format!("{:.0}%", 100.0 * c.flops_share()),
                    format!("{:.3}", c.full_accuracy),
                    match (c.adaptivity, c.gain()) {
                        (true, Some(g)) => format!("{g:+.4}"),
                        (true, None) => "n/a".into(),
                        (false, _) => "-".into(),
                    },
                    us(latency.as_ref().map(|l| l.median_path_us)),
                    us(latency.as_ref().map(|l| l.median_full_us)),
                    us(c.predicted().map(|p| p.path_us)),
                    c.config.clone(),
                ]);
                row
            }
            Err(f) => {
                let mut row = vec![f.name.clone(), format!("failed: {}", f.error)];
                row.resize(COLUMNS.len(), String::new());
                row
            }
        })
        .collect()
}

/// The table for a terminal: aligned columns (a failure's reason runs on past them).
pub fn table_text(comparison: &Comparison) -> String {
    table::aligned(&COLUMNS, &cells(comparison), |r| {
        r[1].starts_with("failed: ")
    })
}

/// The table in Markdown.
pub fn table_markdown(comparison: &Comparison) -> String {
    table::markdown(&COLUMNS, &cells(comparison))
}

/// Predicted batch-1 latency of a mean-FLOPs figure from the profile's stage medians: the
/// fixed stages (policy, stem, head) as timed, the rest at the blocks' timed µs per FLOP;
/// then scaled so that the full network comes out at its measured uninstrumented latency
/// (timing each stage adds overhead of its own).
fn predicted_us(profile: &ProfileReport, mean_flops: f64) -> f64 {
    let (
        mut fixed_us,
        mut fixed_flops,
        mut block_us,
        mut block_flops,
        mut policy_us,
        mut policy_flops,
    ) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for s in &profile.stages {
        match s.stage {
            Stage::Block(_) => {
                block_us += s.median_us;
                block_flops += s.flops as f64;
            }
            Stage::Policy => {
                policy_us += s.median_us;
                policy_flops += s.flops as f64;
            }
            _ => {
                fixed_us += s.median_us;
                fixed_flops += s.flops as f64;
            }
        }
    }
    let per_flop = block_us / block_flops.max(1.0);
    let staged =
        policy_us + fixed_us + (mean_flops - policy_flops - fixed_flops).max(0.0) * per_flop;
    let full_staged = fixed_us + block_us;
    staged * profile.image_latency().median_full_us / full_staged.max(1e-9)
}

/// A model's points on the Pareto figure.
pub fn model_series(c: &Compared) -> ModelSeries {
    let points = &c.tradeoff.points;
    let sweep = series(points, Method::BlockDrop);
    let latency = c.latency();
    let mut sweep_latency: Vec<(f64, f64)> = match &c.profile {
        Some(p) => points
            .iter()
            .filter(|t| t.method == Method::BlockDrop)
            .map(|t| (predicted_us(p, t.mean_flops), t.accuracy))
            .collect(),
        None => Vec::new(),
    };
    sweep_latency.sort_by(|a, b| a.0.total_cmp(&b.0));
    ModelSeries {
        name: c.name.clone(),
        sweep,
        sweep_latency,
        point: (c.summary.flops_mean / 1e6, c.summary.accuracy),
        point_latency: latency
            .as_ref()
            .map(|l| (l.median_path_us, c.summary.accuracy)),
        full: (c.full_flops / 1e6, c.full_accuracy),
        full_latency: latency
            .as_ref()
            .map(|l| (l.median_full_us, c.full_accuracy)),
    }
}

/// Writes the comparison's figures into `dir`, each file name starting with `prefix`;
/// returns them with captions.
pub fn write_figures(comparison: &Comparison, dir: &Path, prefix: &str) -> Result<Vec<Figure>> {
    let compared: Vec<&Compared> = comparison.compared().collect();
    let mut figures = Vec::new();
    if compared.is_empty() {
        return Ok(figures);
    }
    let series: Vec<ModelSeries> = compared.iter().map(|c| model_series(c)).collect();
    let pareto = format!("{prefix}pareto.png");
    curves::pareto(&series, &dir.join(&pareto))?;
    figures.push(Figure {
        file: pareto,
        caption: format!("Accuracy against mean FLOPs (left) and batch-1 latency on this device (right). Lines: each model's threshold sweep (first {} images; latency predicted from the profile's stage times); rings: each model at its threshold on all {} images, latency measured; crosses: its full network, same weights.", compared[0].tradeoff.adaptivity.images, comparison.images),
    });
    let same_blocks = compared.windows(2).all(|w| {
        w[0].records.first().map(|r| r.keep.len()) == w[1].records.first().map(|r| r.keep.len())
    });
    if same_blocks {
        let rows: Vec<(String, Vec<f64>)> = compared
            .iter()
            .map(|c| {
                (
                    format!("{} ({:.1} blk)", c.name, c.summary.block_usage_mean),
                    c.keep_rates.clone(),
                )
            })
            .collect();
        let file = format!("{prefix}keep_rates.png");
        grids::keep_rate_heatmap(
            &rows,
            "Keep rate per model and block (darker: kept more often)",
            &dir.join(&file),
        )?;
        figures.push(Figure {
            file,
            caption: "How often each model keeps each block.".into(),
        });
    }
    let runs: Vec<RunFolder> = compared.iter().filter_map(|c| c.run.clone()).collect();
    if !runs.is_empty() {
        let file = format!("{prefix}training.png");
        curves::training_curves(&runs, &dir.join(&file))?;
        figures.push(Figure {
            file,
            caption: "Training curves of the run folders compared, one line per run.".into(),
        });
    }
    Ok(figures)
}

/// `index.md` of a comparison: the table, every figure, the agreement table.
pub fn index_markdown(title: &str, comparison: &Comparison, figures: &[Figure]) -> String {
    let mut md = format!(
        "# BlockDrop comparison: {title}\n\n{} images; Accuracy … Unique Policies as `eval` prints them; FLOPs share: mean FLOPs (policy network included) over the full base network's; adaptivity gain at equal blocks (see the method notes) on the sweep's images; latency: median of batch-1 runs on this device.\n\n",
        comparison.images
    );
    md.push_str(&table_markdown(comparison));
    md.push('\n');
    for f in figures {
        let _ = writeln!(md, "![{}]({})\n\n{}\n", f.file, f.file, f.caption);
    }
    md.push_str(&adaptivity_markdown(comparison));
    md.push_str(&agreement_markdown(comparison));
    md.push_str("\nData: [comparison.csv](comparison.csv).\n");
    md
}

/// Each model's static frontier, gain and oracle (where measured).
fn adaptivity_markdown(comparison: &Comparison) -> String {
    let measured: Vec<&Compared> = comparison.compared().filter(|c| c.adaptivity).collect();
    if measured.is_empty() {
        return String::new();
    }
    let mut md = String::from("## Adaptivity\n\nPer model, on the sweep's images: the learned policy, the static frontier (its own policies fixed, the best subset per budget, the full network) at the same mean blocks and FLOPs, and the oracle bound.\n\n| model | learned | frontier (blocks) | frontier (FLOPs) | gain (blocks) | gain (FLOPs) | oracle | oracle blocks | best subsets |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for c in measured {
        let a = &c.tradeoff.adaptivity;
        let _ = writeln!(
            md,
            "| {} | {:.4} at {:.2} blocks | {} | {} | {} | {} | {:.4} | {:.2} | {} |",
            c.name,
            a.learned.accuracy,
            a.learned.mean_blocks,
            a.frontier_text(a.gain.blocks),
            a.frontier_text(a.gain.flops),
            signed(a.gain.blocks),
            signed(a.gain.flops),
            a.oracle.accuracy,
            a.oracle.mean_blocks,
            a.subsets_from
        );
    }
    md.push('\n');
    md
}

/// The agreement of every pair of models, as a Markdown table.
pub fn agreement_markdown(comparison: &Comparison) -> String {
    let compared: Vec<&Compared> = comparison.compared().collect();
    let records: Vec<&[crate::records::Record]> =
        compared.iter().map(|c| c.records.as_slice()).collect();
    let pairs = agreement(&records);
    if pairs.is_empty() {
        return String::new();
    }
    let mut md = String::from("## Policy agreement\n\nFor each pair: the share of images given the very same policy, the mean Jaccard similarity of the kept blocks, and each model's accuracy on the images where their policies differ.\n\n| model A | model B | same policy | mean Jaccard | images differing | accuracy A there | accuracy B there |\n|---|---|---:|---:|---:|---:|---:|\n");
    let acc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.3}"));
    for p in pairs {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {:.3} | {} | {} | {} |",
            compared[p.a].name,
            compared[p.b].name,
            p.same_policy,
            p.mean_jaccard,
            p.disagreeing,
            acc(p.accuracy_a),
            acc(p.accuracy_b)
        );
    }
    md
}

/// The table as CSV (`comparison.csv`).
pub fn table_csv(comparison: &Comparison) -> String {
    table::csv(&COLUMNS, &cells(comparison))
}

/// Writes the whole comparison into `dir` (an empty staging folder).
pub fn write_files(title: &str, comparison: &Comparison, dir: &Path) -> Result<Vec<Figure>> {
    let figures = write_figures(comparison, dir, "")?;
    crate::atomic::write_bytes_atomic(
        &dir.join("comparison.csv"),
        table_csv(comparison).as_bytes(),
    )?;
    crate::atomic::write_bytes_atomic(
        &dir.join("index.md"),
        index_markdown(title, comparison, &figures).as_bytes(),
    )?;
    Ok(figures)
}

/// Writes the comparison under the output rule ([`crate::output`]), as `export` does.
pub fn write_report(title: &str, comparison: &Comparison, out: &Path) -> Result<Vec<Figure>> {
    crate::output::Staging::build(out, |dir| write_files(title, comparison, dir))
}
