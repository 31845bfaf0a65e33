//! Drawing: the tab bar, the current view, the status line and the help overlay. Views read
//! the app's state and draw it; they compute nothing beyond formatting.

mod blocks;
mod clusters;
mod easyhard;
pub mod images;
mod models;
mod overview;
mod policies;
mod runs;
pub mod theme;
mod tradeoff;
pub mod widgets;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph, Row, Table, Tabs};
use ratatui::Frame;

use crate::tui::app::{App, Tab};
use crate::tui::event::KEYS;
use crate::tui::worker::Task;

pub fn draw(frame: &mut Frame, app: &App, images: &mut images::Images) {
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title())))
        .collect();
    let selected = Tab::ALL.iter().position(|&t| t == app.tab).unwrap_or(0);
    let title = if app.models.len() > 1 {
        format!(
            " blockdrop — model {}/{} {} ({}) on {} ",
            app.current + 1,
            app.models.len(),
            app.info.model_path,
            app.info.config,
            app.info.data_path
        )
    } else {
        format!(
            " blockdrop — {} on {} ",
            app.info.config, app.info.data_path
        )
    };
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(theme::title())
            .block(Block::default().borders(Borders::ALL).title(title)),
        tabs,
    );
    if app.tab == Tab::Models {
        models::draw(frame, app, body);
    } else if app.tab == Tab::Runs {
        runs::draw(frame, app, body);
    } else if app.analysis.is_none() {
        draw_loading(frame, app, body);
    } else {
        match app.tab {
            Tab::Overview => overview::draw(frame, app, body),
            Tab::Blocks => blocks::draw(frame, app, body),
            Tab::Policies => policies::draw(frame, app, body, images),
            Tab::Clusters => clusters::draw(frame, app, body, images),
            Tab::Tradeoff => tradeoff::draw(frame, app, body),
            Tab::EasyHard => easyhard::draw(frame, app, body, images),
            Tab::Models | Tab::Runs => {}
        }
    }
    draw_status(frame, app, status);
    if app.show_help {
        draw_help(frame);
    }
}

fn ratio(done: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    }
}

fn draw_loading(frame: &mut Frame, app: &App, area: Rect) {
    let [_, gauge, _] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Length(3),
        Constraint::Min(0),
    ])
    .areas(area);
    let (task, done, total) =
        app.busy
            .unwrap_or((Task::Work(crate::study::Phase::Evaluating), 0, 1));
    frame.render_widget(
        Gauge::default()
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" {task} {} ", app.info.data_path)),
            )
            .gauge_style(Style::new().fg(theme::KEPT))
            .ratio(ratio(done, total))
            .label(format!("{done}/{total}")),
        gauge,
    );
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let line = match (&app.busy, &app.message) {
        (Some((task, done, total)), _) if app.analysis.is_some() => {
            let [label, gauge] =
                Layout::horizontal([Constraint::Length(28), Constraint::Min(0)]).areas(area);
            frame.render_widget(Paragraph::new(format!(" {task}… ")), label);
            frame.render_widget(
                Gauge::default()
                    .gauge_style(Style::new().fg(theme::KEPT))
                    .ratio(ratio(*done, *total)),
                gauge,
            );
            return;
        }
        (_, Some(message)) => Line::from(Span::styled(format!(" {message}"), theme::title())),
        _ => Line::from(Span::styled(
            " ? help  q quit  Tab/1-8 views  ↑↓ select  s sort  m model  p profile  e export",
            theme::dim(),
        )),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame) {
    let area = frame.area();
    let popup = Rect {
        x: area.width / 8,
        y: area.height / 6,
        width: area.width * 3 / 4,
        height: (KEYS.len() as u16 + 2).min(area.height),
    };
    frame.render_widget(Clear, popup);
    let rows = KEYS
        .iter()
        .map(|(k, what)| Row::new(vec![k.to_string(), what.to_string()]));
    frame.render_widget(
        Table::new(rows, [Constraint::Length(22), Constraint::Min(10)]).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (? or Esc closes) "),
        ),
        popup,
    );
}
