//! The Runs view: training run folders, one row each, and the selected run's curves (test
//! accuracy and mean blocks per epoch), re-read every few seconds while a run trains.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Row, Table};
use ratatui::Frame;

use crate::runs::RunFolder;
use crate::tui::app::App;
use crate::tui::ui::theme;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    if app.runs.dirs.is_empty() {
        frame.render_widget(
            Paragraph::new(
                "No training run folders given. `blockdrop tui --data D RUN…` shows a run's curves here \
                 (a run folder also counts as a model: its best.safetensors), and re-reads them while it trains.",
            )
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Runs ")),
            area,
        );
        return;
    }
    let [list, curves] = Layout::vertical([
        Constraint::Length(app.runs.dirs.len() as u16 + 3),
        Constraint::Min(0),
    ])
    .areas(area);
    let rows = app.runs.dirs.iter().enumerate().map(|(i, dir)| {
        let cells = match app.runs.read.get(i) {
            Some(Ok(run)) => {
                let last = run.epochs.last();
                vec![
                    run.name.clone(),
                    run.stage.clone(),
                    run.epochs.len().to_string(),
                    last.map_or("-".into(), |m| format!("{:.4}", m.test_accuracy)),
                    last.and_then(|m| m.block_usage_mean)
                        .map_or("-".into(), |b| format!("{b:.2}")),
                ]
            }
            Some(Err(e)) => vec![dir.display().to_string(), format!("unreadable: {e}")],
            None => vec![dir.display().to_string(), "reading…".into()],
        };
        let row = Row::new(cells);
        if i == app.runs_view.selected {
            row.style(theme::selected())
        } else {
            row
        }
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Min(24),
                Constraint::Length(11),
                Constraint::Length(7),
                Constraint::Length(14),
                Constraint::Length(12),
            ],
        )
        .header(
            Row::new(vec![
                "run",
                "stage",
                "epochs",
                "test acc (last)",
                "blocks (last)",
            ])
            .style(theme::dim()),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" training runs (re-read every 2 s; ↑↓ select) "),
        ),
        list,
    );
    match app.runs.read.get(app.runs_view.selected) {
        Some(Ok(run)) => draw_curves(frame, run, curves),
        _ => frame.render_widget(Block::default().borders(Borders::ALL), curves),
    }
}

/// Test accuracy and mean blocks per epoch, side by side, each on its own range.
fn draw_curves(frame: &mut Frame, run: &RunFolder, area: Rect) {
    let accuracy: Vec<(f64, f64)> = run
        .epochs
        .iter()
        .map(|m| (m.epoch as f64 + 1.0, m.test_accuracy))
        .collect();
    let blocks: Vec<(f64, f64)> = run
        .epochs
        .iter()
        .filter_map(|m| m.block_usage_mean.map(|b| (m.epoch as f64 + 1.0, b)))
        .collect();
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    frame.render_widget(curve(&accuracy, "test accuracy", theme::KEPT, run), left);
    frame.render_widget(curve(&blocks, "mean blocks", theme::ACCENT, run), right);
}

fn curve<'a>(
    points: &'a [(f64, f64)],
    what: &str,
    colour: ratatui::style::Color,
    run: &RunFolder,
) -> Chart<'a> {
    let x_hi = points.last().map_or(1.0, |p| p.0).max(1.0);
    let (lo, hi) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
    let pad = ((hi - lo) * 0.1).max(1e-3);
    Chart::new(vec![Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(colour))
        .data(points)])
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} — {what} per epoch ", run.name)),
    )
    .x_axis(
        Axis::default()
            .title("epoch")
            .bounds([1.0, x_hi])
            .labels(vec![Line::from("1"), Line::from(format!("{x_hi:.0}"))]),
    )
    .y_axis(Axis::default().bounds([lo - pad, hi + pad]).labels(vec![
        Line::from(format!("{:.3}", lo - pad)),
        Line::from(format!("{:.3}", hi + pad)),
    ]))
}
