//! Grid figures: the policy heat map (images × blocks), the per-class keep-rate heat map, and
//! image galleries (easy/hard, one per cluster) with the medoid policy drawn as a strip.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analysis::{ClassRow, Cluster};
use crate::config::ClassSet;
use crate::data::Dataset;
use crate::error::Result;
use crate::records::Record;
use crate::report::style::{
    drawing_error, ensure_font, intensity, ACCENT, DROPPED, FAMILY, KEPT, THIRD,
};

/// Images sorted by blocks used (fewest at the top), one row each; a filled cell is a kept block.
pub fn policy_heatmap(records: &[Record], path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let k = records.first().map_or(0, |r| r.keep.len());
    let mut order: Vec<&Record> = records.iter().collect();
    order.sort_by_key(|r| (r.blocks, r.index));
    let root = BitMapBackend::new(path, (700, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Policies: {} images (rows, sorted by blocks used) × {k} blocks",
                records.len()
            ),
            (FAMILY, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..k as f64 - 0.5, 0.0..order.len() as f64)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("block (blue: kept)")
        .y_desc("image, fewest blocks at the bottom")
        .x_labels(2 * k + 2)
        .x_label_formatter(&block_tick)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(&err)?;
    chart
        .draw_series(order.iter().enumerate().flat_map(|(row, r)| {
            r.keep.iter().enumerate().map(move |(b, &kept)| {
                let colour = if kept { KEPT } else { DROPPED };
                let (x, y) = (b as f64, row as f64);
                Rectangle::new([(x - 0.5, y), (x + 0.5, y + 1.0)], colour.filled())
            })
        }))
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Classes × blocks, colour = fraction of the class's images keeping the block.
pub fn class_heatmap(classes: &[ClassRow], names: ClassSet, path: &Path) -> Result<()> {
    let rows: Vec<(String, Vec<f64>)> = classes
        .iter()
        .map(|c| {
            (
                format!(
                    "{} ({:.0}% acc, {:.1} blk)",
                    names.name(c.label),
                    100.0 * c.accuracy,
                    c.mean_blocks
                ),
                c.keep_rates.clone(),
            )
        })
        .collect();
    keep_rate_heatmap(
        &rows,
        "Keep rate per class and block (darker: kept more often)",
        path,
    )
}

/// One row of cells per `(label, keep rate per block)`, darker for higher rates.
pub fn keep_rate_heatmap(rows: &[(String, Vec<f64>)], title: &str, path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let k = rows.first().map_or(0, |r| r.1.len());
    let root = BitMapBackend::new(path, (900, 120 + 40 * rows.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(230)
        .build_cartesian_2d(-0.5..k as f64 - 0.5, -0.5..rows.len() as f64 - 0.5)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("block")
        .x_labels(2 * k + 2)
        .x_label_formatter(&block_tick)
        .y_labels(2 * rows.len() + 2)
        .y_label_formatter(&|y| match integer(*y) {
            Some(i) => rows.get(i).map(|r| r.0.clone()).unwrap_or_default(),
            None => String::new(),
        })
        .label_style((FAMILY, 13))
        .draw()
        .map_err(&err)?;
    chart
        .draw_series(rows.iter().enumerate().flat_map(|(row, r)| {
            r.1.iter().enumerate().map(move |(b, &rate)| {
                let (x, y) = (b as f64, row as f64);
                Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    intensity(rate).filled(),
                )
            })
        }))
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// `Some(i)` when a tick sits on the integer `i ≥ 0`.
pub fn integer(x: f64) -> Option<usize> {
    let i = x.round();
    ((x - i).abs() < 1e-6 && i >= 0.0).then_some(i as usize)
}

/// Block numbers on integer ticks only (cells are centred on them).
pub fn block_tick(x: &f64) -> String {
    integer(*x).map_or(String::new(), |i| i.to_string())
}

const THUMB: u32 = 84;
const CELL_W: u32 = 150;
const CELL_H: u32 = THUMB + 58;

/// Draws image `index` of `dataset` as a THUMB×THUMB thumbnail (nearest-neighbour) at `at`.
fn thumbnail(
    area: &DrawingArea<BitMapBackend, Shift>,
    dataset: &Dataset,
    index: usize,
    at: (i32, i32),
) -> Result<()> {
    let image = dataset.image(index)?;
    for ty in 0..THUMB {
        for tx in 0..THUMB {
            let (sx, sy) = (
                tx as usize * image.width / THUMB as usize,
                ty as usize * image.height / THUMB as usize,
            );
            let [r, g, b] = image.rgb(sx, sy);
            let colour = RGBColor(r, g, b);
            let _ = area.draw_pixel((at.0 + tx as i32, at.1 + ty as i32), &colour);
        }
    }
    Ok(())
}

/// Draws a keep/drop strip of `policy` from `at`, `width` pixels wide.
fn strip(
    area: &DrawingArea<BitMapBackend, Shift>,
    policy: &[bool],
    at: (i32, i32),
    width: i32,
    height: i32,
    path: &Path,
) -> Result<()> {
    let err = drawing_error(path);
    let n = policy.len().max(1) as i32;
    for (b, &kept) in policy.iter().enumerate() {
        let x0 = at.0 + b as i32 * width / n;
        let x1 = at.0 + (b as i32 + 1) * width / n - 1;
        let colour = if kept { KEPT } else { DROPPED };
        area.draw(&Rectangle::new(
            [(x0, at.1), (x1.max(x0), at.1 + height)],
            colour.filled(),
        ))
        .map_err(&err)?;
    }
    Ok(())
}

/// A grid of images with label, prediction and blocks used, and each one's policy strip.
pub fn gallery(
    title: &str,
    members: &[&Record],
    dataset: &Dataset,
    names: ClassSet,
    medoid: Option<&[bool]>,
    path: &Path,
) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let columns = 6u32;
    let rows = (members.len() as u32).div_ceil(columns).max(1);
    let header = if medoid.is_some() { 90 } else { 50 };
    let root = BitMapBackend::new(path, (columns * CELL_W + 20, header + rows * CELL_H + 10))
        .into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    root.draw(&Text::new(title.to_string(), (12, 12), (FAMILY, 20)))
        .map_err(&err)?;
    if let Some(policy) = medoid {
        root.draw(&Text::new(
            "medoid policy (blue: kept):".to_string(),
            (12, 46),
            (FAMILY, 14),
        ))
        .map_err(&err)?;
        strip(
            &root,
            policy,
            (220, 44),
            (columns * CELL_W) as i32 - 220,
            18,
            path,
        )?;
    }
    for (i, r) in members.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let x = 10 + (col * CELL_W) as i32 + ((CELL_W - THUMB) / 2) as i32;
        let y = header as i32 + (row * CELL_H) as i32;
        thumbnail(&root, dataset, r.index as usize, (x, y))?;
        let colour = if r.correct { THIRD } else { ACCENT };
        let text = format!("{} → {}", names.name(r.label), names.name(r.pred));
        let cell_x = 10 + (col * CELL_W) as i32 + 4;
        root.draw(&Text::new(
            text,
            (cell_x, y + THUMB as i32 + 4),
            (FAMILY, 12).into_font().color(&colour),
        ))
        .map_err(&err)?;
        root.draw(&Text::new(
            format!("{} blocks", r.blocks),
            (cell_x, y + THUMB as i32 + 20),
            (FAMILY, 12),
        ))
        .map_err(&err)?;
        strip(
            &root,
            &r.keep,
            (cell_x, y + THUMB as i32 + 37),
            CELL_W as i32 - 16,
            8,
            path,
        )?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// The members of `cluster` to show (at most `limit`), in record order.
pub fn cluster_members<'r>(
    cluster: &Cluster,
    records: &'r [Record],
    limit: usize,
) -> Vec<&'r Record> {
    cluster
        .members
        .iter()
        .take(limit)
        .map(|&i| &records[i])
        .collect()
}
