//! The Models view: every loaded model side by side (the `compare` table) and their
//! threshold sweeps as one accuracy-against-FLOPs chart; `m` or Enter shows another model
//! in every view.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Row, Table};
use ratatui::Frame;

use crate::report::models::model_series;
use crate::tui::app::App;
use crate::tui::ui::theme;

const COLOURS: [ratatui::style::Color; 6] = [
    theme::KEPT,
    theme::ACCENT,
    theme::GOOD,
    theme::BAD,
    theme::STATIC,
    theme::ORACLE,
];

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let [table_area, chart_area] = Layout::vertical([
        Constraint::Length(app.models.len() as u16 + 4),
        Constraint::Min(0),
    ])
    .areas(area);
    draw_table(frame, app, table_area);
    draw_chart(frame, app, chart_area);
}

fn draw_table(frame: &mut Frame, app: &App, area: Rect) {
    let header = Row::new(vec![
        "",
        "model",
        "Accuracy",
        "blocks",
        "FLOPs share",
        "full acc",
        "gain",
        "path µs",
        "full µs",
    ])
    .style(theme::dim());
    let rows = app.models.iter().enumerate().map(|(m, info)| {
        let marker = if m == app.current { "▶" } else { " " };
        let mut cells = vec![marker.to_string(), info.model_path.clone()];
        match app.comparison.as_ref().and_then(|c| c.rows.get(m)) {
            Some(Ok(c)) => {
                let latency = c.latency();
                let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
                cells.extend([
                    format!("{:.3}", c.summary.accuracy),
                    format!("{:.2}", c.summary.block_usage_mean),
                    format!("{:.0}%", 100.0 * c.flops_share()),
                    format!("{:.3}", c.full_accuracy),
                    c.gain().map_or("n/a".into(), |g| format!("{g:+.4}")),
                    us(latency.as_ref().map(|l| l.median_path_us)),
                    us(latency.as_ref().map(|l| l.median_full_us)),
                ]);
            }
            // The reason replaces the name, where there is room for it.
            Some(Err(f)) => cells[1] = format!("{}: failed: {}", info.model_path, f.error),
            None if app.busy.is_some_and(|(t, _, _)| t.phase().is_comparison()) => {
                cells.push("comparing…".into())
            }
            None => cells.push("waiting for the worker…".into()),
        }
        let row = Row::new(cells);
        if m == app.models_view.selected {
            row.style(theme::selected())
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(1),
        Constraint::Min(20),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    frame.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::default().borders(Borders::ALL).title(format!(
                " {} models on the same images (↑↓ select, Enter or m shows one in every view) ",
                app.models.len()
            )),
        ),
        area,
    );
}

fn draw_chart(frame: &mut Frame, app: &App, area: Rect) {
    let Some(comparison) = &app.comparison else {
        frame.render_widget(
            Paragraph::new("the comparison (every model's evaluation, sweep, static baselines and latency) starts once the worker is free; progress on the status line")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let series: Vec<_> = comparison.compared().map(model_series).collect();
    let points: Vec<[(f64, f64); 1]> = series.iter().map(|s| [s.point]).collect();
    let mut datasets = Vec::new();
    for (i, (s, point)) in series.iter().zip(&points).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        datasets.push(
            Dataset::default()
                .name(crate::runs::display_name(std::path::Path::new(&s.name)))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(colour))
                .data(&s.sweep),
        );
        datasets.push(
            Dataset::default()
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(colour))
                .data(point),
        );
    }
    if series.is_empty() {
        frame.render_widget(
            Paragraph::new("no model could be compared: the table says why")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    }
    let all = series
        .iter()
        .flat_map(|s| s.sweep.iter().copied().chain([s.point]));
    let (x_lo, x_hi, y_lo, y_hi) = all.fold((f64::MAX, 0.0f64, 1.0f64, 0.0f64), |b, p| {
        (b.0.min(p.0), b.1.max(p.0), b.2.min(p.1), b.3.max(p.1))
    });
    let (x_lo, y_lo, y_hi) = (
        (x_lo * 0.95).max(0.0),
        (y_lo - 0.005).max(0.0),
        (y_hi + 0.005).min(1.0),
    );
    let chart = Chart::new(datasets)
        .legend_position(Some(ratatui::widgets::LegendPosition::BottomRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" accuracy vs MFLOPs: each model's threshold sweep, ■ at its threshold "),
        )
        .x_axis(
            Axis::default()
                .title("MFLOPs")
                .bounds([x_lo, x_hi * 1.02])
                .labels(vec![
                    Line::from(format!("{x_lo:.0}")),
                    Line::from(format!("{:.0}", x_hi * 1.02)),
                ]),
        )
        .y_axis(
            Axis::default()
                .title("accuracy")
                .bounds([y_lo, y_hi])
                .labels(vec![
                    Line::from(format!("{y_lo:.3}")),
                    Line::from(format!("{y_hi:.3}")),
                ]),
        );
    frame.render_widget(chart, area);
}
