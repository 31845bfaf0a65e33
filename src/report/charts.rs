//! Chart figures: the accuracy/FLOPs trade-off, per-block latency with FLOPs, block-usage
//! histogram and per-block keep rates.

use std::path::Path;

use plotters::chart::SeriesLabelStyle;
use plotters::prelude::*;

use crate::error::Result;
use crate::eval::tradeoff::{series_on, CostAxis, Method, TradeoffPoint};
use crate::profile::ProfileReport;
use crate::report::style::{
    drawing_error, ensure_font, ACCENT, FAMILY, GREY, KEPT, ORACLE, SECOND, STATIC, THIRD, USED,
};

/// The one legend style of every chart.
fn legend<'s, 'a, 'b, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    labels: &'s mut SeriesLabelStyle<'a, 'b, DB, CT>,
    position: SeriesLabelPosition,
) -> &'s mut SeriesLabelStyle<'a, 'b, DB, CT> {
    labels
        .position(position)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
}

/// A padded axis range over the finite `values`; `0..1` when there are none. plotters spins
/// forever on an empty or infinite range, so every chart's range comes from here.
pub(crate) fn axis_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    // At least a thousandth of the values' size, so the padding survives rounding.
    let pad = ((hi - lo) * 0.08).max(1e-3 * hi.abs().max(lo.abs()).max(1e-6));
    let (a, b) = (lo - pad, hi + pad);
    if a.is_finite() && b.is_finite() && a < b {
        a..b
    } else {
        0.0..1.0
    }
}

/// Accuracy against mean FLOPs per image: the threshold sweep, FirstK, Random (each seed),
/// the static baselines, the oracle, the full network and the model's own point (`learned`:
/// mean FLOPs, accuracy). Left, everything; right, a zoom on the region around the model,
/// where the static baselines and the policy differ by tenths of a point.
pub fn tradeoff(
    points: &[TradeoffPoint],
    axis: CostAxis,
    learned: (f64, f64),
    path: &Path,
) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let all: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((axis.of(p)?, p.accuracy)))
        .chain([learned])
        .collect();
    let (x_range, y_range) = (
        axis_range(all.iter().map(|p| p.0)),
        axis_range(all.iter().map(|p| p.1)),
    );
    // The zoom: half to one and a half times the model's cost, from 3 points below its
    // accuracy to the best point there (the oracle may lie above it); everything when the
    // model's cost gives no such range.
    let zoom_x = if learned.0.is_finite() && learned.0 > 0.0 {
        (learned.0 * 0.5)..(learned.0 * 1.5)
    } else {
        x_range.clone()
    };
    let near: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.method != Method::Oracle)
        .filter_map(|p| Some((axis.of(p)?, p.accuracy)))
        .chain([learned])
        .filter(|p| zoom_x.contains(&p.0) && p.1 >= learned.1 - 0.03)
        .collect();
    let zoom_y = axis_range(near.iter().map(|p| p.1));
    let root = BitMapBackend::new(path, (1500, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (left, right) = root.split_horizontally(860);
    tradeoff_panel(
        &left,
        points,
        axis,
        learned,
        (x_range, y_range),
        "Accuracy vs. compute: learned policy, baselines, full network",
        true,
    )
    .map_err(&err)?;
    tradeoff_panel(
        &right,
        points,
        axis,
        learned,
        (zoom_x, zoom_y),
        "Zoom: around this model",
        false,
    )
    .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// One panel of the trade-off figure over `range` (cost on `axis`, accuracy); points outside
/// it are left out.
fn tradeoff_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[TradeoffPoint],
    axis: CostAxis,
    learned: (f64, f64),
    range: (std::ops::Range<f64>, std::ops::Range<f64>),
    title: &str,
    with_legend: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x_range, y_range) = range.clone();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc(axis.label())
        .y_desc("accuracy")
        .label_style((FAMILY, 14))
        .draw()?;
    let inside = |p: &(f64, f64)| range.0.contains(&p.0) && range.1.contains(&p.1);
    let series = |method| -> Vec<(f64, f64)> {
        series_on(points, method, axis)
            .into_iter()
            .filter(inside)
            .collect()
    };
    for (method, colour, label) in [
        (Method::BlockDrop, KEPT, "BlockDrop, thresholds 0.1-0.9"),
        (Method::FirstK, SECOND, "FirstK (first k blocks)"),
        (
            Method::BestSubset,
            STATIC,
            "best static subset per budget (chosen on another split)",
        ),
    ] {
        let s = series(method);
        chart
            .draw_series(LineSeries::new(s.clone(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(s.into_iter().map(|p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .draw_series(
            series(Method::Random)
                .into_iter()
                .map(|p| TriangleMarker::new(p, 6, THIRD.filled())),
        )?
        .label("Random (matched budgets, each seed)")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, THIRD.filled()));
    let diamond = |size: i32| vec![(0, -size), (size, 0), (0, size), (-size, 0)];
    chart
        .draw_series(
            series(Method::UsedPolicy)
                .into_iter()
                .map(move |p| EmptyElement::at(p) + Polygon::new(diamond(7), USED.filled())),
        )?
        .label("its own policies, each fixed for every image")
        .legend(move |(x, y)| {
            EmptyElement::at((x + 10, y)) + Polygon::new(diamond(6), USED.filled())
        });
    chart
        .draw_series(
            series(Method::Oracle)
                .into_iter()
                .map(|p| Circle::new(p, 7, ORACLE.filled())),
        )?
        .label("oracle bound (best per-image choice)")
        .legend(|(x, y)| Circle::new((x + 10, y), 6, ORACLE.filled()));
    chart
        .draw_series(
            series(Method::Full)
                .into_iter()
                .map(|p| Cross::new(p, 8, GREY.stroke_width(3))),
        )?
        .label("full network")
        .legend(|(x, y)| Cross::new((x + 10, y), 6, GREY.stroke_width(3)));
    chart
        .draw_series(
            [learned]
                .into_iter()
                .filter(inside)
                .map(|p| Circle::new(p, 8, ACCENT.stroke_width(3))),
        )?
        .label("this model (its threshold, all images)")
        .legend(|(x, y)| Circle::new((x + 10, y), 6, ACCENT.stroke_width(3)));
    if with_legend {
        legend(
            &mut chart.configure_series_labels(),
            SeriesLabelPosition::LowerRight,
        )
        .draw()?;
    }
    Ok(())
}

/// Bars of the per-stage median latency, with each stage's FLOPs as a line on a second axis.
pub fn latency(profile: &ProfileReport, path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let n = profile.stages.len();
    let max_us = profile
        .stages
        .iter()
        .map(|s| s.p90_us.max(s.median_us))
        .fold(0.0, f64::max);
    let max_mflops = profile
        .stages
        .iter()
        .map(|s| s.flops as f64 / 1e6)
        .fold(0.0, f64::max);
    let root = BitMapBackend::new(path, (1000, 550)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Time per stage on {} (batch {}, median of {} runs; whiskers: p90)",
                profile.device, profile.batch, profile.repeat
            ),
            (FAMILY, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        // Never an empty range (plotters spins on one), whatever the profile holds.
        .build_cartesian_2d(-1.0..n as f64, 0.0..(max_us * 1.1).max(1e-3))
        .map_err(&err)?
        .set_secondary_coord(-1.0..n as f64, 0.0..(max_mflops * 1.1).max(1e-3));
    let labels: Vec<String> = profile
        .stages
        .iter()
        .map(|s| s.stage.short_name())
        .collect();
    chart
        .configure_mesh()
        .x_desc("stage (P = policy network, S = stem, H = head, numbers = blocks)")
        .y_desc("median time (µs)")
        .x_labels(2 * n + 2)
        .x_label_formatter(&|x| {
            crate::report::grids::integer(*x)
                .and_then(|i| labels.get(i).cloned())
                .unwrap_or_default()
        })
        .label_style((FAMILY, 12))
        .draw()
        .map_err(&err)?;
    chart
        .configure_secondary_axes()
        .y_desc("MFLOPs")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(&err)?;
    chart
        .draw_series(profile.stages.iter().enumerate().map(|(i, s)| {
            Rectangle::new(
                [(i as f64 - 0.38, 0.0), (i as f64 + 0.38, s.median_us)],
                KEPT.filled(),
            )
        }))
        .map_err(&err)?
        .label("median time (left axis)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], KEPT.filled()));
    chart
        .draw_series(profile.stages.iter().enumerate().map(|(i, s)| {
            PathElement::new(vec![(i as f64, s.median_us), (i as f64, s.p90_us)], BLACK)
        }))
        .map_err(&err)?;
    chart
        .draw_secondary_series(LineSeries::new(
            profile
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| (i as f64, s.flops as f64 / 1e6)),
            SECOND.stroke_width(2),
        ))
        .map_err(&err)?
        .label("FLOPs (right axis)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], SECOND.stroke_width(2)));
    legend(
        &mut chart.configure_series_labels(),
        SeriesLabelPosition::UpperRight,
    )
    .draw()
    .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// How many images use each number of blocks.
pub fn usage_histogram(blocks_per_image: &[u32], num_blocks: usize, path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let mut counts = vec![0u32; num_blocks + 1];
    for &b in blocks_per_image {
        counts[(b as usize).min(num_blocks)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Blocks used per image ({} images, {num_blocks} blocks)",
                blocks_per_image.len()
            ),
            (FAMILY, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (0u32..num_blocks as u32).into_segmented(),
            0u32..max + max / 10 + 1,
        )
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("blocks used")
        .y_desc("images")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(&err)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(KEPT.filled())
                .margin(2)
                .data(blocks_per_image.iter().map(|&b| (b, 1))),
        )
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Fraction of images that run each block.
pub fn keep_rates(rates: &[f64], path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let n = rates.len();
    let root = BitMapBackend::new(path, (900, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("How often each block runs", (FAMILY, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..1.05)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("block")
        .y_desc("fraction of images keeping it")
        .x_labels(2 * n + 2)
        .x_label_formatter(&crate::report::grids::block_tick)
        .label_style((FAMILY, 13))
        .draw()
        .map_err(&err)?;
    chart
        .draw_series(rates.iter().enumerate().map(|(k, &r)| {
            Rectangle::new([(k as f64 - 0.4, 0.0), (k as f64 + 0.4, r)], KEPT.filled())
        }))
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}
