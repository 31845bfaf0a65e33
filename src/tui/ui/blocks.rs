use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Row, Table, TableState};
use ratatui::Frame;

use crate::tui::app::{App, BlockSort};
use crate::tui::ui::theme;

/// A bar of `width` cells for `fraction` (0..=1).
fn bar(fraction: f64, width: usize) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), " ".repeat(width - filled))
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(a) = &app.analysis else { return };
    let flops = &app.info.flops.base;
    let max_flops = flops.blocks.iter().copied().max().unwrap_or(1).max(1) as f64;
    let max_time = (0..a.keep_rates.len())
        .filter_map(|k| app.block_time(k))
        .fold(0.0, f64::max)
        .max(1e-9);
    let rows = app.block_rows().into_iter().map(|k| {
        let t = app.block_time(k);
        Row::new(vec![
            Line::from(k.to_string()),
            Line::from(format!("{:5.1}%", 100.0 * a.keep_rates[k])),
            Line::from(Span::styled(
                bar(a.keep_rates[k], 16),
                Style::new().fg(theme::KEPT),
            )),
            Line::from(format!("{:8.2}", flops.blocks[k] as f64 / 1e6)),
            Line::from(Span::styled(
                bar(flops.blocks[k] as f64 / max_flops, 12),
                Style::new().fg(theme::ACCENT),
            )),
            Line::from(t.map_or("—".into(), |t| format!("{t:9.1}"))),
            Line::from(Span::styled(
                t.map_or(String::new(), |t| bar(t / max_time, 12)),
                Style::new().fg(theme::GOOD),
            )),
        ])
    });
    let sorted = match app.blocks_view.sort {
        BlockSort::Index => "block",
        BlockSort::KeepRate => "keep rate",
        BlockSort::Flops => "FLOPs",
        BlockSort::Time => "time",
    };
    let hint = if app.profile.is_some() {
        ""
    } else {
        " — press p to profile"
    };
    let header =
        Row::new(vec!["block", "keep", "", "MFLOPs", "", "median µs", ""]).style(theme::title());
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(17),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Length(10),
            Constraint::Length(13),
        ],
    )
    .header(header)
    .row_highlight_style(theme::selected())
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" Blocks, sorted by {sorted} (s to change){hint} ")),
    );
    let mut state = TableState::default().with_selected(Some(app.blocks_view.selected));
    frame.render_stateful_widget(table, area, &mut state);
}
