use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Row, Table, TableState};
use ratatui::Frame;

use crate::analysis::confidence;
use crate::tui::app::App;
use crate::tui::ui::images::Images;
use crate::tui::ui::{theme, widgets};

const SHOWN: usize = 20;

pub fn draw(frame: &mut Frame, app: &App, area: Rect, images: &mut Images) {
    let Some(a) = &app.analysis else { return };
    let [easy, hard, image] = Layout::horizontal([
        Constraint::Percentage(37),
        Constraint::Percentage(37),
        Constraint::Percentage(26),
    ])
    .areas(area);
    let easiest: Vec<usize> = a.easy_to_hard.iter().take(SHOWN).copied().collect();
    let hardest: Vec<usize> = a.easy_to_hard.iter().rev().take(SHOWN).copied().collect();
    for (title, rows, area) in [
        (" easiest: fewest blocks, most confident ", &easiest, easy),
        (" hardest: most blocks, least confident ", &hardest, hard),
    ] {
        let table_rows = rows.iter().map(|&i| {
            let r = &a.records[i];
            Row::new(vec![
                Line::from(r.index.to_string()),
                Line::from(app.info.classes.name(r.label)),
                Line::from(format!("{:.2}", confidence(r))),
                widgets::policy_line(&r.keep),
            ])
        });
        let table = Table::new(
            table_rows,
            [
                Constraint::Length(6),
                Constraint::Length(12),
                Constraint::Length(5),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(vec!["image", "label", "conf", "policy"]).style(theme::title()))
        .row_highlight_style(theme::selected())
        .block(Block::default().borders(Borders::ALL).title(title));
        let mut state = TableState::default().with_selected(Some(app.easy_hard_view.selected));
        frame.render_stateful_widget(table, area, &mut state);
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" easy / hard ");
    let inner = block.inner(image);
    frame.render_widget(block, image);
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    for (rows, area) in [(&easiest, top), (&hardest, bottom)] {
        if let Some(&i) = rows.get(app.easy_hard_view.selected) {
            let index = a.records[i].index as usize;
            images.draw_index(frame, &app.dataset, index, area);
        }
    }
}
