use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::eval::adaptivity::{signed, Adaptivity, StaticKind};
use crate::eval::tradeoff::Method;
use crate::model::blockdrop::policy_string;
use crate::records::sci2;
use crate::tui::app::{App, ModelInfo};
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
    if !info.has_policy {
        lines.push(Line::from(Span::styled(
            "A base network alone: no policy network, every image runs every block.",
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
        .and_then(|(_, t)| t.points.iter().find(|p| p.method == Method::Full))
        .map_or("measuring…".to_string(), |p| {
            format!("{:.3} (first {} images)", p.accuracy, t_images(app))
        });
    lines.push(Line::from(format!(
        "accuracy: base network {base_accuracy}  |  BlockDrop {:.3}",
        a.summary.accuracy
    )));
    lines.push(Line::from(""));
    match &app.tradeoff {
        // A base network alone has no policy to weigh against static subsets of its blocks
        // (the Trade-off view still shows what those subsets reach).
        _ if !info.has_policy => {}
        Some((threshold, t)) => lines.extend(adaptivity_lines(*threshold, &t.adaptivity, info)),
        None => lines.push(Line::from(Span::styled(
            "Adaptivity: measuring the static baselines and the oracle (Esc cancels; the Trade-off view (5) asks again)…",
            theme::dim(),
        ))),
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Overview ")),
        area,
    );
}

/// Images the sweep ran on.
fn t_images(app: &App) -> usize {
    app.tradeoff
        .as_ref()
        .map_or(0, |(_, t)| t.adaptivity.images)
}

/// What choosing blocks per image buys: the gain over the static frontier, the oracle, the
/// static policies and the classes where the policy varies most.
fn adaptivity_lines(threshold: f32, a: &Adaptivity, info: &ModelInfo) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(Span::styled(
            format!(
                "Adaptivity at threshold {threshold:.2}, first {} images ({})",
                a.images, a.subsets_from
            ),
            theme::title(),
        )),
        Line::from(format!(
            "  learned policy    {:.4} at {:.2} blocks, {:.1} MFLOPs",
            a.learned.accuracy,
            a.learned.mean_blocks,
            a.learned.mean_flops / 1e6
        )),
        Line::from(format!(
            "  static frontier   {} at the same blocks, {} at the same FLOPs",
            a.frontier_text(a.gain.blocks),
            a.frontier_text(a.gain.flops)
        )),
        Line::from(vec![
            Span::raw("  adaptivity gain   "),
            Span::styled(
                format!("{} (blocks)  {} (FLOPs)", signed(a.gain.blocks), signed(a.gain.flops)),
                theme::title(),
            ),
        ]),
        Line::from(format!(
            "  oracle bound      {:.4} at {:.2} blocks, {:.1} MFLOPs (the best per-image choice among these policies)",
            a.oracle.accuracy,
            a.oracle.mean_blocks,
            a.oracle.mean_flops / 1e6
        )),
        Line::from(""),
        Line::from(Span::styled(
            "  its own policies, each run on every image:",
            theme::dim(),
        )),
    ];
    for s in a
        .statics
        .iter()
        .filter(|s| matches!(s.kind, StaticKind::Used { .. }))
    {
        if let StaticKind::Used { images } = s.kind {
            lines.push(Line::from(format!(
                "    {}  {:>2} blocks  accuracy {:.4}  (its choice for {:.1}% of images)",
                policy_string(&s.policy),
                s.point.mean_blocks,
                s.point.accuracy,
                100.0 * images as f64 / a.images.max(1) as f64
            )));
        }
    }
    lines.push(Line::from(""));
    let per_class: Vec<String> = a
        .per_class
        .iter()
        .map(|c| {
            format!(
                "{} {} ({:.0}% off-mode)",
                info.classes.name(c.label),
                signed(c.gain.blocks),
                100.0 * c.off_mode_share
            )
        })
        .collect();
    lines.push(Line::from(Span::styled(
        "  gain per class (blocks), with the share of images off the class's most common policy:",
        theme::dim(),
    )));
    lines.push(Line::from(format!("    {}", per_class.join("  ·  "))));
    lines
}
