//! What every figure shares: the embedded font, colours, sizes and error mapping.

use std::path::Path;
use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use crate::error::Error;

/// DejaVu Sans (Debian's fonts-dejavu-core; licence in assets/fonts/LICENSE), embedded so
/// figures render the same on every machine.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub const FAMILY: &str = "sans-serif";
pub const KEPT: RGBColor = RGBColor(31, 119, 180);
pub const DROPPED: RGBColor = RGBColor(235, 235, 235);
pub const ACCENT: RGBColor = RGBColor(214, 39, 40);
pub const SECOND: RGBColor = RGBColor(255, 127, 14);
pub const THIRD: RGBColor = RGBColor(44, 160, 44);
pub const GREY: RGBColor = RGBColor(110, 110, 110);
/// The static baselines and the oracle bound in the trade-off figure.
pub const STATIC: RGBColor = RGBColor(148, 103, 189);
pub const USED: RGBColor = RGBColor(140, 86, 75);
pub const ORACLE: RGBColor = RGBColor(227, 119, 194);

/// Registers the embedded font once per process.
pub fn ensure_font() -> Result<(), Error> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Report(
            "the embedded font could not be loaded".into(),
        ))
    }
}

/// Maps a drawing error to ours, naming the figure. One that came from the operating system
/// (a full or read-only disk: plotters and image keep only its text) is an I/O error on the
/// figure's file, as a failed write of any other file is.
pub fn drawing_error<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| {
        let text = format!("{e:?}");
        match os_error_code(&text) {
            Some(code) => Error::io(path, std::io::Error::from_raw_os_error(code)),
            None => Error::Report(format!("{}: drawing failed: {text}", path.display())),
        }
    }
}

/// The `N` of the last "(os error N)" in an error's text.
fn os_error_code(text: &str) -> Option<i32> {
    let at = text.rfind("(os error ")? + "(os error ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// White → `KEPT` blue, for a value in 0..=1.
pub fn intensity(v: f64) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * v).round() as u8;
    RGBColor(mix(255, 8), mix(255, 48), mix(255, 107))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawing_error_from_a_full_disk_is_an_io_error_on_the_figure() {
        let path = Path::new("out/keep_rates.png");
        let full = r#"BackendError(DrawingError(ImageError(IoError(Custom { kind: Other, error: "No space left on device (os error 28)" }))))"#;
        let error = drawing_error(path)(full);
        assert!(error.is_user_error(), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("out/keep_rates.png: No space left"),
            "{error}"
        );
        let other = drawing_error(path)("FontError");
        assert!(!other.is_user_error() && other.to_string().contains("FontError"));
    }
}
