use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

use crate::analysis::confidence;
use crate::eval::sci2;
use crate::report::grids::class_name;
use crate::tui::app::{App, PolicyOrder};
use crate::tui::ui::images::Images;
use crate::tui::ui::{theme, widgets};

pub fn draw(frame: &mut Frame, app: &App, area: Rect, images: &mut Images) {
    let Some(a) = &app.analysis else { return };
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let rows = app.policy_rows();
    let names = &app.info.class_names;
    let table_rows = rows.iter().map(|&i| {
        let r = &a.records[i];
        Row::new(vec![
            Line::from(r.index.to_string()),
            Line::from(class_name(names, r.label)),
            Line::from(r.blocks.to_string()),
            widgets::policy_line(&r.keep),
        ])
    });
    let order = match app.policy_order {
        PolicyOrder::Blocks => "blocks used",
        PolicyOrder::Class => "class",
    };
    let filter = if app.typing_filter || !app.filter.is_empty() {
        format!(
            ", class filter: {}{}",
            app.filter,
            if app.typing_filter { "▏" } else { "" }
        )
    } else {
        String::new()
    };
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
    .block(Block::default().borders(Borders::ALL).title(format!(
        " {} images by {order}{filter} (s order, / filter) ",
        rows.len()
    )));
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, list, &mut state);

    let Some(&i) = rows.get(app.selected) else {
        return;
    };
    let r = &a.records[i];
    let [text, probs, image] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Min(0),
    ])
    .areas(detail);
    let verdict = if r.correct {
        Span::styled("correct", Style::new().fg(theme::GOOD))
    } else {
        Span::styled("wrong", Style::new().fg(theme::BAD))
    };
    let lines = vec![
        Line::from(format!("image {}", r.index)),
        Line::from(format!(
            "label {}  prediction {}",
            class_name(names, r.label),
            class_name(names, r.pred)
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
    ];
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" selected image "),
        ),
        text,
    );
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
        probs,
    );
    images.draw_framed(frame, &app.dataset, r.index as usize, image);
}
