//! The interface's colours, in one place.

use ratatui::style::{Color, Modifier, Style};

pub const KEPT: Color = Color::Rgb(31, 119, 180);
pub const DROPPED: Color = Color::Rgb(60, 60, 60);
pub const ACCENT: Color = Color::Rgb(255, 127, 14);
pub const GOOD: Color = Color::Rgb(44, 160, 44);
pub const BAD: Color = Color::Rgb(214, 39, 40);
/// The static baselines and the oracle bound.
pub const STATIC: Color = Color::Rgb(148, 103, 189);
pub const USED: Color = Color::Rgb(140, 86, 75);
pub const ORACLE: Color = Color::Rgb(227, 119, 194);

pub fn title() -> Style {
    Style::new().fg(ACCENT).add_modifier(Modifier::BOLD)
}

pub fn selected() -> Style {
    Style::new()
        .bg(Color::Rgb(50, 50, 80))
        .add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::Gray)
}
