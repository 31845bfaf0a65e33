//! Test-time input transforms: decoded 8-bit pixels → the float tensor a configuration expects
//! (resize + centre crop as torchvision, `ToTensor`'s /255, per-channel normalisation).

use image::imageops::FilterType;
use image::RgbImage;

use crate::config::Transform;

/// An 8-bit image in planar (channel, row, column) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

impl Image {
    pub fn from_rgb(rgb: &RgbImage) -> Self {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut pixels = vec![0u8; 3 * h * w];
        for (x, y, p) in rgb.enumerate_pixels() {
            for c in 0..3 {
                pixels[c * h * w + y as usize * w + x as usize] = p[c];
            }
        }
        Self {
            channels: 3,
            height: h,
            width: w,
            pixels,
        }
    }

    /// The colour at `(x, y)`; a grey image repeats its one channel.
    pub fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let plane = self.height * self.width;
        let at = |c: usize| self.pixels[(c % self.channels) * plane + y * self.width + x];
        [at(0), at(1), at(2)]
    }

    /// The image as an interleaved RGB image (grey repeated on the three channels).
    pub fn to_rgb_image(&self) -> RgbImage {
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            image::Rgb(self.rgb(x as usize, y as usize))
        })
    }
}

/// torchvision's `Resize(short)` then `CenterCrop(crop)`: the short side becomes `short`, the
/// long side `int(short · long / short_side)`; the crop's offset is `round((size − crop) / 2)`.
fn resize_and_crop(image: &Image, short: u32, crop: u32) -> Image {
    // The ImageNet-style resize applies to colour images only.
    if image.channels != 3 {
        return image.clone();
    }
    let rgb = image.to_rgb_image();
    let (w, h) = (rgb.width(), rgb.height());
    let (nw, nh) = if w <= h {
        (short, (short as u64 * h as u64 / w.max(1) as u64) as u32)
    } else {
        ((short as u64 * w as u64 / h.max(1) as u64) as u32, short)
    };
    // A triangle filter widened by the scale factor is PIL's antialiased bilinear resampling.
    let resized = image::imageops::resize(&rgb, nw, nh, FilterType::Triangle);
    let left = ((nw.saturating_sub(crop)) as f64 / 2.0).round() as u32;
    let top = ((nh.saturating_sub(crop)) as f64 / 2.0).round() as u32;
    let cropped =
        image::imageops::crop_imm(&resized, left, top, crop.min(nw), crop.min(nh)).to_image();
    Image::from_rgb(&cropped)
}

/// Applies `transform` and returns the image's floats in planar order with its final shape.
pub fn apply(image: &Image, transform: &Transform) -> (Vec<f32>, (usize, usize, usize)) {
    let image = match transform.resize_crop {
        Some((short, crop)) => resize_and_crop(image, short, crop),
        None => image.clone(),
    };
    let plane = image.height * image.width;
    let mut out: Vec<f32> = image.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    if let Some((mean, std)) = &transform.normalize {
        for (c, chunk) in out.chunks_mut(plane).enumerate() {
            let (m, s) = (mean[c % mean.len()], std[c % std.len()]);
            chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
    }
    (out, (image.channels, image.height, image.width))
}
