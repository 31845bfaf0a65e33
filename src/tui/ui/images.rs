//! Images in the terminal: through a graphics protocol (Sixel, Kitty, iTerm2) where the
//! terminal answers ratatui-image's query for one, else as coloured half blocks.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use image::{imageops::FilterType, DynamicImage};
use ratatui::layout::{Rect, Size};
use ratatui::Frame;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::Resize;

use crate::data::Image;
use crate::tui::ui::widgets;

pub struct Images {
    /// `None`: half blocks drawn by [`widgets::draw_image`].
    picker: Option<Picker>,
    /// Encoded images by (image index, cell width, cell height).
    cache: HashMap<(usize, u16, u16), Protocol>,
    /// Decoded images by index (`None`: the file did not decode), so a frame redraws the
    /// selected image without reading and decoding its file again.
    decoded: HashMap<usize, Option<Image>>,
}

/// Decoded images kept at most (the views show one or two at a time).
const DECODED_KEPT: usize = 8;

impl Images {
    /// Half blocks only (tests, and terminals without a graphics protocol).
    pub fn half_blocks() -> Self {
        Self {
            picker: None,
            cache: HashMap::new(),
            decoded: HashMap::new(),
        }
    }

    /// Asks the terminal which graphics protocol it speaks, where it is likely to speak one;
    /// call after entering the alternate screen and before reading events.
    pub fn query_terminal() -> Self {
        let picker = should_query()
            .then(Picker::from_query_stdio)
            .and_then(Result::ok)
            .filter(|p| p.protocol_type() != ProtocolType::Halfblocks);
        Self {
            picker,
            cache: HashMap::new(),
            decoded: HashMap::new(),
        }
    }

    /// Draws image `index` of `dataset` inside a bordered block titled "image".
    pub fn draw_framed(
        &mut self,
        frame: &mut Frame,
        dataset: &crate::data::Dataset,
        index: usize,
        area: Rect,
    ) {
        let block = ratatui::widgets::Block::bordered().title(" image ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        self.draw_index(frame, dataset, index, inner);
    }

    /// Draws image `index` of `dataset` into `area`, decoding it only the first time.
    pub fn draw_index(
        &mut self,
        frame: &mut Frame,
        dataset: &crate::data::Dataset,
        index: usize,
        area: Rect,
    ) {
        if !self.decoded.contains_key(&index) && self.decoded.len() >= DECODED_KEPT {
            self.decoded.clear();
        }
        let image = self
            .decoded
            .entry(index)
            .or_insert_with(|| dataset.image(index).ok())
            .clone();
        if let Some(image) = image {
            self.draw(frame, index, &image, area);
        }
    }

    /// Draws image `index` (already decoded as `image`) into `area`.
    pub fn draw(&mut self, frame: &mut Frame, index: usize, image: &Image, area: Rect) {
        let Self { picker, cache, .. } = self;
        let Some(picker) = picker else {
            widgets::draw_image(image, area, frame.buffer_mut());
            return;
        };
        if cache.len() > 64 {
            cache.clear();
        }
        let protocol = match cache.entry((index, area.width, area.height)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match encode(picker, image, area) {
                Some(protocol) => entry.insert(protocol),
                None => {
                    widgets::draw_image(image, area, frame.buffer_mut());
                    return;
                }
            },
        };
        frame.render_widget(ratatui_image::Image::new(protocol), area);
    }
}

/// The image in the picker's protocol, scaled up to the area (small images such as 28x28
/// would otherwise fill a few cells), keeping its aspect ratio.
fn encode(picker: &Picker, image: &Image, area: Rect) -> Option<Protocol> {
    let font = picker.font_size();
    let (w, h) = (
        area.width as u32 * font.width as u32,
        area.height as u32 * font.height as u32,
    );
    let scaled = DynamicImage::ImageRgb8(image.to_rgb_image()).resize(
        w.max(1),
        h.max(1),
        FilterType::Nearest,
    );
    picker
        .new_protocol(
            scaled,
            Size::new(area.width, area.height),
            Resize::Fit(None),
        )
        .ok()
}

/// Whether to query the terminal for a graphics protocol. A terminal that does not answer
/// leaves the query waiting on stdin, where it swallows the user's first key (seen in tmux),
/// so only terminals known to speak one are asked; `BLOCKDROP_IMAGES=query` or `=halfblocks`
/// decides explicitly.
fn should_query() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    match var("BLOCKDROP_IMAGES").as_str() {
        "query" => return true,
        "halfblocks" => return false,
        _ => {}
    }
    if !var("TMUX").is_empty() {
        return false;
    }
    let term = var("TERM");
    !var("KITTY_WINDOW_ID").is_empty()
        || matches!(
            var("TERM_PROGRAM").as_str(),
            "iTerm.app" | "WezTerm" | "ghostty" | "mintty"
        )
        || ["kitty", "foot", "mlterm", "wezterm", "contour"]
            .iter()
            .any(|t| term.contains(t))
}
