//! Figures across models and runs: the Pareto chart of several models (accuracy against FLOPs
//! and against batch-1 latency) and training curves of run folders.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::report::charts::axis_range;
use crate::report::style::{
    drawing_error, ensure_font, ACCENT, FAMILY, GREY, KEPT, ORACLE, SECOND, STATIC, THIRD, USED,
};
use crate::runs::RunFolder;

/// The colour of the n-th model or run.
pub fn palette(n: usize) -> RGBColor {
    [KEPT, SECOND, THIRD, ACCENT, STATIC, USED, ORACLE, GREY][n % 8]
}

/// One model's points on the Pareto chart: (x, accuracy), x in MFLOPs or µs.
pub struct ModelSeries {
    pub name: String,
    /// The threshold sweep, by FLOPs.
    pub sweep: Vec<(f64, f64)>,
    /// The same sweep, by latency predicted from the profile's stage times.
    pub sweep_latency: Vec<(f64, f64)>,
    /// The model at its threshold, on all images.
    pub point: (f64, f64),
    /// Its measured batch-1 median latency, when profiled.
    pub point_latency: Option<(f64, f64)>,
    pub full: (f64, f64),
    pub full_latency: Option<(f64, f64)>,
}

/// Accuracy against mean MFLOPs (left) and against batch-1 latency (right), one colour per
/// model: its sweep as a line, its threshold point as a ring, its full network as a cross.
pub fn pareto(models: &[ModelSeries], path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let root = BitMapBackend::new(path, (1500, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (left, right) = root.split_horizontally(750);
    let flops = |m: &ModelSeries| -> Panel {
        Panel {
            line: m.sweep.clone(),
            point: Some(m.point),
            full: Some(m.full),
        }
    };
    let latency = |m: &ModelSeries| -> Panel {
        Panel {
            line: m.sweep_latency.clone(),
            point: m.point_latency,
            full: m.full_latency,
        }
    };
    let by_flops: Vec<Panel> = models.iter().map(flops).collect();
    let by_time: Vec<Panel> = models.iter().map(latency).collect();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    pareto_panel(
        &left,
        &by_flops,
        &names,
        "Accuracy vs. mean MFLOPs per image",
        "mean MFLOPs per image (policy network included)",
    )
    .map_err(&err)?;
    pareto_panel(
        &right,
        &by_time,
        &names,
        "Accuracy vs. batch-1 latency on this device",
        "µs per image: measured (ring, cross); sweep predicted from stage times",
    )
    .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// One model's points in one panel.
struct Panel {
    line: Vec<(f64, f64)>,
    point: Option<(f64, f64)>,
    full: Option<(f64, f64)>,
}

fn pareto_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panels: &[Panel],
    names: &[&str],
    title: &str,
    x_desc: &str,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let all: Vec<(f64, f64)> = panels
        .iter()
        .flat_map(|p| p.line.iter().copied().chain(p.point).chain(p.full))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(
            axis_range(all.iter().map(|p| p.0)),
            axis_range(all.iter().map(|p| p.1)),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("accuracy")
        .label_style((FAMILY, 14))
        .draw()?;
    for (m, (panel, name)) in panels.iter().zip(names).enumerate() {
        let colour = palette(m);
        chart
            .draw_series(LineSeries::new(panel.line.clone(), colour.stroke_width(2)))?
            .label(name.to_string())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(
            panel
                .point
                .into_iter()
                .map(|p| Circle::new(p, 8, colour.stroke_width(3))),
        )?;
        chart.draw_series(
            panel
                .full
                .into_iter()
                .map(|p| Cross::new(p, 7, colour.stroke_width(3))),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Training curves, one line per run: test accuracy, reward, mean blocks and learning rate
/// per epoch (a run without policy columns, a base run, has no reward or blocks line).
pub fn training_curves(runs: &[RunFolder], path: &Path) -> Result<()> {
    ensure_font()?;
    let err = drawing_error(path);
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let areas = root.split_evenly((2, 2));
    type Column = fn(&crate::train::run::EpochMetrics) -> Option<f64>;
    let panels: [(&str, Column); 4] = [
        ("test accuracy", |m| Some(m.test_accuracy)),
        ("reward (greedy policy, test images)", |m| m.reward),
        ("mean blocks (greedy policy, test images)", |m| {
            m.block_usage_mean
        }),
        ("learning rate", |m| Some(m.lr)),
    ];
    for (area, (title, column)) in areas.iter().zip(panels) {
        let lines: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .map(|r| {
                r.epochs
                    .iter()
                    .filter_map(|m| column(m).map(|v| (m.epoch as f64 + 1.0, v)))
                    .collect()
            })
            .collect();
        curves_panel(area, &lines, runs, title).map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

fn curves_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Vec<(f64, f64)>],
    runs: &[RunFolder],
    title: &str,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points = || lines.iter().flatten();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            axis_range(points().map(|p| p.0).chain([0.0])),
            axis_range(points().map(|p| p.1)),
        )?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .label_style((FAMILY, 13))
        .draw()?;
    for (r, (line, run)) in lines.iter().zip(runs).enumerate() {
        let colour = palette(r);
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(run.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    if lines.iter().any(|l| !l.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
