//! Small drawing pieces the views share: a policy strip, an image in half blocks.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use crate::data::Image;
use crate::tui::ui::theme;

/// One cell per block: ■ kept, · dropped.
pub fn policy_line(keep: &[bool]) -> Line<'static> {
    Line::from(
        keep.iter()
            .map(|&k| {
                if k {
                    Span::styled("■", Style::new().fg(theme::KEPT))
                } else {
                    Span::styled("·", Style::new().fg(theme::DROPPED))
                }
            })
            .collect::<Vec<_>>(),
    )
}

/// Draws `image` into `area` with upper-half blocks (two pixel rows per cell), scaled by
/// nearest neighbour; works on every terminal with true colour.
pub fn draw_image(image: &Image, area: Rect, buf: &mut Buffer) {
    if area.width == 0 || area.height == 0 || image.width == 0 || image.height == 0 {
        return;
    }
    let pixel = |x: usize, y: usize| {
        let [r, g, b] = image.rgb(x, y);
        Color::Rgb(r, g, b)
    };
    let (w, h) = (area.width as usize, area.height as usize * 2);
    // Keep the aspect ratio: terminal cells are about twice as tall as wide.
    let scale = (image.width as f64 / w as f64).max(image.height as f64 / h as f64);
    for cy in 0..area.height as usize {
        for cx in 0..w {
            let sx = (cx as f64 * scale) as usize;
            let (top, bottom) = ((2 * cy) as f64 * scale, (2 * cy + 1) as f64 * scale);
            if sx >= image.width || top as usize >= image.height {
                continue;
            }
            let fg = pixel(sx, top as usize);
            let bg = if (bottom as usize) < image.height {
                pixel(sx, bottom as usize)
            } else {
                Color::Reset
            };
            if let Some(cell) = buf.cell_mut((area.x + cx as u16, area.y + cy as u16)) {
                cell.set_symbol("▀").set_fg(fg).set_bg(bg);
            }
        }
    }
}
