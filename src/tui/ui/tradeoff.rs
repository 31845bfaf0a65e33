use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::ui::theme;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(a) = &app.analysis else { return };
    let [head, chart_area] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    let current = (a.summary.flops_mean / 1e6, a.summary.accuracy);
    frame.render_widget(
        Paragraph::new(Line::from(format!(
            "threshold {:.2} (← → moves it and re-evaluates) — accuracy {:.3}, {:.2} blocks, {:.1} MFLOPs per image",
            app.threshold, current.1, a.summary.block_usage_mean, current.0
        )))
        .block(Block::default().borders(Borders::ALL).title(" Trade-off ")),
        head,
    );
    let Some(points) = &app.tradeoff else {
        frame.render_widget(
            Paragraph::new("computing the trade-off sweep…")
                .block(Block::default().borders(Borders::ALL)),
            chart_area,
        );
        return;
    };
    let series = |method: &str| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.method == method)
            .map(|p| (p.mean_flops / 1e6, p.accuracy))
            .collect();
        v.sort_by(|x, y| x.0.total_cmp(&y.0));
        v
    };
    let (sweep, first_k, random, full) = (
        series("BlockDrop"),
        series("FirstK"),
        series("Random"),
        series("Full"),
    );
    let current = [current];
    let all = sweep
        .iter()
        .chain(&first_k)
        .chain(&random)
        .chain(&full)
        .chain(&current);
    let (x_max, y_min, y_max) = all.fold((0.0f64, 1.0f64, 0.0f64), |(x, lo, hi), p| {
        (x.max(p.0), lo.min(p.1), hi.max(p.1))
    });
    let (y_lo, y_hi) = ((y_min - 0.02).max(0.0), (y_max + 0.02).min(1.0));
    let datasets = vec![
        Dataset::default()
            .name("BlockDrop thresholds")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme::KEPT))
            .data(&sweep),
        Dataset::default()
            .name("FirstK")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme::ACCENT))
            .data(&first_k),
        Dataset::default()
            .name("Random")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(theme::GOOD))
            .data(&random),
        Dataset::default()
            .name("full network")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .data(&full),
        Dataset::default()
            .name("current threshold")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(theme::BAD))
            .data(&current),
    ];
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" accuracy vs MFLOPs per image (first 500 images) "),
        )
        .x_axis(
            Axis::default()
                .title("MFLOPs")
                .bounds([0.0, x_max * 1.05])
                .labels(vec![
                    Line::from("0"),
                    Line::from(format!("{:.0}", x_max / 2.0)),
                    Line::from(format!("{:.0}", x_max)),
                ]),
        )
        .y_axis(
            Axis::default()
                .title("accuracy")
                .bounds([y_lo, y_hi])
                .labels(vec![
                    Line::from(format!("{y_lo:.2}")),
                    Line::from(format!("{y_hi:.2}")),
                ]),
        );
    frame.render_widget(chart, chart_area);
}
