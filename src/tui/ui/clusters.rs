use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::ui::images::Images;
use crate::tui::ui::{theme, widgets};

pub fn draw(frame: &mut Frame, app: &App, area: Rect, images: &mut Images) {
    let Some(a) = &app.analysis else { return };
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let rows = a.clusters.iter().enumerate().map(|(c, cl)| {
        Row::new(vec![
            Line::from(c.to_string()),
            Line::from(cl.members.len().to_string()),
            Line::from(format!("{:.3}", cl.accuracy)),
            Line::from(format!("{:.1}", cl.mean_blocks)),
            widgets::policy_line(&cl.medoid),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec![
            "cluster",
            "images",
            "accuracy",
            "blocks",
            "medoid policy",
        ])
        .style(theme::title()),
    )
    .row_highlight_style(theme::selected())
    .block(Block::default().borders(Borders::ALL).title(format!(
        " {} clusters of policies (Hamming k-medoids) ",
        a.clusters.len()
    )));
    let view = &app.clusters_view;
    let mut state = TableState::default().with_selected(Some(view.selected));
    frame.render_stateful_widget(table, list, &mut state);

    let Some(cluster) = a.clusters.get(view.selected) else {
        return;
    };
    // The app keeps `member` below the cluster's member count.
    let member = view.member;
    let Some(&i) = cluster.members.get(member) else {
        return;
    };
    let r = &a.records[i];
    let [text, image] = Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(detail);
    let lines = vec![
        Line::from(format!(
            "member {} of {} (← → to page)",
            member + 1,
            cluster.members.len()
        )),
        Line::from(format!(
            "image {}: {} → {}",
            r.index,
            app.info.classes.name(r.label),
            app.info.classes.name(r.pred)
        )),
        widgets::policy_line(&r.keep),
        widgets::policy_line(&cluster.medoid),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" member / medoid "),
        ),
        text,
    );
    images.draw_framed(frame, &app.dataset, r.index as usize, image);
}
