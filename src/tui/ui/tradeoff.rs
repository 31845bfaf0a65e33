use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use crate::eval::tradeoff::{series, Method, TradeoffPoint};
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
    match &app.tradeoff {
        Some((_, t)) => draw_chart(frame, &Series::new(&t.points, current), chart_area),
        None => frame.render_widget(
            Paragraph::new("computing the trade-off sweep…")
                .block(Block::default().borders(Borders::ALL)),
            chart_area,
        ),
    }
}

/// The chart's points, (MFLOPs per image, accuracy): each method's, and the current
/// threshold's.
struct Series {
    sweep: Vec<(f64, f64)>,
    first_k: Vec<(f64, f64)>,
    random: Vec<(f64, f64)>,
    full: Vec<(f64, f64)>,
    used: Vec<(f64, f64)>,
    subsets: Vec<(f64, f64)>,
    oracle: Vec<(f64, f64)>,
    current: [(f64, f64); 1],
}

impl Series {
    fn new(points: &[TradeoffPoint], current: (f64, f64)) -> Self {
        Self {
            sweep: series(points, Method::BlockDrop),
            first_k: series(points, Method::FirstK),
            random: series(points, Method::Random),
            full: series(points, Method::Full),
            used: series(points, Method::UsedPolicy),
            subsets: series(points, Method::BestSubset),
            oracle: series(points, Method::Oracle),
            current: [current],
        }
    }

    /// The largest MFLOPs, and the accuracy range with a margin of 0.02 (within 0..=1).
    fn bounds(&self) -> (f64, f64, f64) {
        let all = self
            .sweep
            .iter()
            .chain(&self.first_k)
            .chain(&self.random)
            .chain(&self.full)
            .chain(&self.used)
            .chain(&self.subsets)
            .chain(&self.oracle)
            .chain(&self.current);
        let (x_max, y_min, y_max) = all.fold((0.0f64, 1.0f64, 0.0f64), |(x, lo, hi), p| {
            (x.max(p.0), lo.min(p.1), hi.max(p.1))
        });
        (x_max, (y_min - 0.02).max(0.0), (y_max + 0.02).min(1.0))
    }

    /// One dataset per series, each in its own colour and marker.
    fn datasets(&self) -> Vec<Dataset<'_>> {
        vec![
            Dataset::default()
                .name("BlockDrop thresholds")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme::KEPT))
                .data(&self.sweep),
            Dataset::default()
                .name("FirstK")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme::ACCENT))
                .data(&self.first_k),
            Dataset::default()
                .name("Random")
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(theme::GOOD))
                .data(&self.random),
            Dataset::default()
                .name("best static subsets")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme::STATIC))
                .data(&self.subsets),
            Dataset::default()
                .name("its own policies, fixed")
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(theme::USED))
                .data(&self.used),
            Dataset::default()
                .name("oracle bound")
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(theme::ORACLE))
                .data(&self.oracle),
            Dataset::default()
                .name("full network")
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .data(&self.full),
            Dataset::default()
                .name("current threshold")
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(theme::BAD))
                .data(&self.current),
        ]
    }
}

/// Accuracy against MFLOPs per image, every series on shared axes.
fn draw_chart(frame: &mut Frame, series: &Series, area: Rect) {
    let (x_max, y_lo, y_hi) = series.bounds();
    let x_axis = Axis::default()
        .title("MFLOPs")
        .bounds([0.0, x_max * 1.05])
        .labels(vec![
            Line::from("0"),
            Line::from(format!("{:.0}", x_max / 2.0)),
            Line::from(format!("{:.0}", x_max)),
        ]);
    let y_axis = Axis::default()
        .title("accuracy")
        .bounds([y_lo, y_hi])
        .labels(vec![
            Line::from(format!("{y_lo:.2}")),
            Line::from(format!("{y_hi:.2}")),
        ]);
    let chart = Chart::new(series.datasets())
        .block(Block::default().borders(Borders::ALL).title(format!(
            " accuracy vs MFLOPs per image (first {} images) ",
            crate::study::TRADEOFF_IMAGES
        )))
        .x_axis(x_axis)
        .y_axis(y_axis);
    frame.render_widget(chart, area);
}
