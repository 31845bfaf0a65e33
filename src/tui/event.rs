//! Keys → actions. `?` lists them all (see `ui::help`).

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::tui::app::{App, Tab};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextTab,
    PrevTab,
    Tab(usize),
    Up,
    Down,
    PageUp,
    PageDown,
    Left,
    Right,
    Sort,
    Filter,
    Type(char),
    Backspace,
    EndTyping,
    Profile,
    Export,
    /// Show the next loaded model in every view.
    NextModel,
    /// Enter: in the Models view, show the highlighted model.
    Choose,
    /// Stop the task in progress.
    Cancel,
}

/// Every key and what it does, for the help overlay.
pub const KEYS: [(&str, &str); 13] = [
    ("q / Ctrl-C", "quit"),
    ("?", "show or hide this help"),
    ("Tab / Shift-Tab, 1-8", "next / previous / n-th view"),
    ("↑↓ or j k", "select a row"),
    ("PgUp PgDn", "move ten rows"),
    (
        "← → or h l",
        "Trade-off: move the threshold (re-evaluates); Clusters: page members",
    ),
    (
        "s",
        "Blocks: cycle the sort column; Policies: order by blocks or class",
    ),
    (
        "/",
        "Policies: filter by class name (Enter or Esc ends typing)",
    ),
    ("p", "profile the model (Blocks view shows the times)"),
    (
        "m, Enter",
        "show the next loaded model in every view; Models: show the highlighted one",
    ),
    ("e", "export the report (same as --export)"),
    (
        "Enter / Esc",
        "end typing a filter; Esc also closes this help, or cancels the task in progress",
    ),
    (
        "mouse",
        "click a tab to open it; the wheel moves the selection",
    ),
];

pub fn action_for(key: KeyEvent, app: &App) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.policies_view.typing_filter {
        return match key.code {
            KeyCode::Enter | KeyCode::Esc => Some(Action::EndTyping),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) => Some(Action::Type(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Tab => Action::NextTab,
        KeyCode::BackTab => Action::PrevTab,
        KeyCode::Char(c @ '1'..='8') => Action::Tab(c as usize - '1' as usize),
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::Char('s') => Action::Sort,
        KeyCode::Char('/') => Action::Filter,
        KeyCode::Char('p') => Action::Profile,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('m') => Action::NextModel,
        KeyCode::Enter => Action::Choose,
        KeyCode::Esc if app.show_help => Action::Help,
        KeyCode::Esc if app.busy.is_some() => Action::Cancel,
        _ => return None,
    })
}

/// Mouse → action: a click on the tab bar's titles opens that tab; the wheel scrolls.
pub fn mouse_action(mouse: MouseEvent) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::ScrollDown => Some(Action::Down),
        MouseEventKind::Down(MouseButton::Left) if mouse.row == 1 => {
            tab_at(mouse.column).map(Action::Tab)
        }
        _ => None,
    }
}

/// Which tab title covers `column` in the tab bar (as `ui::draw` lays it out: a border, then
/// " {n} {title} " separated by "│").
fn tab_at(column: u16) -> Option<usize> {
    let mut x = 1u16;
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let width = format!(" {} {} ", i + 1, tab.title()).chars().count() as u16;
        if (x..x + width).contains(&column) {
            return Some(i);
        }
        x += width + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_on_tab_titles_open_them() {
        // " 1 Overview " spans columns 1..13, then "│", then " 2 Blocks " from 14.
        assert_eq!(tab_at(3), Some(0));
        assert_eq!(tab_at(15), Some(1));
        assert_eq!(tab_at(0), None);
        assert_eq!(tab_at(500), None);
    }
}
