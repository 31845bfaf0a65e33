use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::eval::tradeoff::Method;
use crate::records::sci2;
use crate::tui::app::App;
use crate::tui::ui::theme;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(a) = &app.analysis else { return };
    let info = &app.info;
    let full = info.flops.base.full() as f64;
    let mut lines = vec![
        Line::from(vec![
            Span::styled("model   ", theme::dim()),
            Span::raw(format!("{} ({})", info.model_path, info.config)),
        ]),
        Line::from(vec![
            Span::styled("data    ", theme::dim()),
            Span::raw(format!("{} ({} images)", info.data_path, a.records.len())),
        ]),
        Line::from(vec![
            Span::styled("device  ", theme::dim()),
            Span::raw(info.device.clone()),
        ]),
        Line::from(""),
    ];
    if info.untrained {
        lines.push(Line::from(Span::styled(
            "This model is UNTRAINED (random weights): accuracy is chance level.",
            theme::title(),
        )));
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        format!("threshold {:.2}", a.threshold),
        theme::dim(),
    )));
    lines.extend(
        a.summary
            .to_string()
            .lines()
            .map(|l| Line::from(l.to_string())),
    );
    lines.push(Line::from(""));
    lines.push(Line::from(format!(
        "FLOPs: full network {}  |  BlockDrop mean {} ({:.0}% of full, policy network {} included)",
        sci2(full),
        sci2(a.summary.flops_mean),
        100.0 * a.summary.flops_mean / full,
        sci2(info.flops.policy as f64)
    )));
    let base_accuracy = app
        .tradeoff
        .as_ref()
        .and_then(|t| t.iter().find(|p| p.method == Method::Full))
        .map_or("open Trade-off (5) to measure".to_string(), |p| {
            format!(
                "{:.3} (first {} images)",
                p.accuracy,
                crate::report::TRADEOFF_IMAGES
            )
        });
    lines.push(Line::from(format!(
        "accuracy: base network {base_accuracy}  |  BlockDrop {:.3}",
        a.summary.accuracy
    )));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Overview ")),
        area,
    );
}
