use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

use crate::analysis::confidence;
use crate::records::{sci2, Record};
use crate::tui::app::{Analysis, App, PoliciesView, PolicyOrder};
use crate::tui::ui::images::Images;
use crate::tui::ui::{theme, widgets};

pub fn draw(frame: &mut Frame, app: &App, area: Rect, images: &mut Images) {
    let Some(a) = &app.analysis else { return };
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let rows = app.policy_rows();
    draw_list(frame, app, a, &rows, list);
    if let Some(&i) = rows.get(app.policies_view.selected) {
        draw_detail(frame, app, &a.records[i], detail, images);
    }
}

/// The list's title: how many images, in which order, and the class filter if any.
fn list_title(view: &PoliciesView, count: usize) -> String {
    let order = match view.order {
        PolicyOrder::Blocks => "blocks used",
        PolicyOrder::Class => "class",
    };
    let filter = if view.typing_filter || !view.filter.is_empty() {
        format!(
            ", class filter: {}{}",
            view.filter,
            if view.typing_filter { "▏" } else { "" }
        )
    } else {
        String::new()
    };
    format!(" {count} images by {order}{filter} (s order, / filter) ")
}

/// The images the view lists (`rows`, record positions), one row each with its policy.
fn draw_list(frame: &mut Frame, app: &App, a: &Analysis, rows: &[usize], area: Rect) {
    let names = app.info.classes;
    let table_rows = rows.iter().map(|&i| {
        let r = &a.records[i];
        Row::new(vec![
            Line::from(r.index.to_string()),
            Line::from(names.name(r.label)),
            Line::from(r.blocks.to_string()),
            widgets::policy_line(&r.keep),
        ])
    });
    let table = Table::new(
        table_rows,
        [
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(vec!["image", "label", "blocks", "policy (■ kept)"]).style(theme::title()))
    .row_highlight_style(theme::selected())
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(list_title(&app.policies_view, rows.len())),
    );
    let mut state = TableState::default().with_selected(Some(app.policies_view.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The selected image: its details, its keep probabilities and the image itself.
fn draw_detail(frame: &mut Frame, app: &App, r: &Record, area: Rect, images: &mut Images) {
    let [text, probs, image] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(detail_lines(app, r)).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" selected image "),
        ),
        text,
    );
    draw_probabilities(frame, r, probs);
    images.draw_framed(frame, &app.dataset, r.index as usize, image);
}

/// The selected image's label, prediction, blocks, policy and (once profiled) latency.
fn detail_lines(app: &App, r: &Record) -> Vec<Line<'static>> {
    let names = app.info.classes;
    let verdict = if r.correct {
        Span::styled("correct", Style::new().fg(theme::GOOD))
    } else {
        Span::styled("wrong", Style::new().fg(theme::BAD))
    };
    vec![
        Line::from(format!("image {}", r.index)),
        Line::from(format!(
            "label {}  prediction {}",
            names.name(r.label),
            names.name(r.pred)
        )),
        Line::from(vec![
            verdict,
            Span::raw(format!("  confidence {:.2}", confidence(r))),
        ]),
        Line::from(format!(
            "blocks {} of {}  FLOPs {}",
            r.blocks,
            r.keep.len(),
            sci2(r.flops)
        )),
        widgets::policy_line(&r.keep),
        Line::from(
            app.profile
                .as_ref()
                .and_then(|p| p.images.iter().find(|l| l.index == r.index as usize))
                .map_or(String::new(), |l| {
                    format!("latency {:.0} µs (full {:.0} µs)", l.path_us, l.full_us)
                }),
        ),
    ]
}

/// The policy network's keep probability per block, as a sparkline.
fn draw_probabilities(frame: &mut Frame, r: &Record, area: Rect) {
    let values: Vec<u64> = r
        .probs
        .iter()
        .map(|&p| (p * 100.0).round() as u64)
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(&values)
            .max(100)
            .style(Style::new().fg(theme::KEPT))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" keep probability per block "),
            ),
        area,
    );
}
