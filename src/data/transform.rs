//! Test-time input transforms: decoded 8-bit pixels → the float tensor a configuration expects
//! (resize + centre crop as torchvision, `ToTensor`'s /255, per-channel normalisation).

use image::imageops::FilterType;
use image::RgbImage;

use crate::config::Transform;

/// The resized image may hold at most this many times the crop's pixels: about 50:1 for
/// ImageNet's 256 → 224, far beyond any photograph, while a hostile 1x16,777,216 image would
/// otherwise ask the resize for hundreds of GB.
const MAX_RESIZE_OVER_CROP: u64 = 64;

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

/// The size torchvision's `Resize(short)` gives a `w`x`h` image, or why it is refused: an
/// empty image, or one so elongated that the resize would dwarf its crop.
pub fn resized_size(w: u32, h: u32, short: u32, crop: u32) -> Result<(u32, u32), String> {
    if w == 0 || h == 0 {
        return Err(format!("image is {w}x{h} pixels: empty"));
    }
    let (nw, nh) = if w <= h {
        (
            u64::from(short),
            u64::from(short) * u64::from(h) / u64::from(w),
        )
    } else {
        (
            u64::from(short) * u64::from(w) / u64::from(h),
            u64::from(short),
        )
    };
    let limit = MAX_RESIZE_OVER_CROP * u64::from(crop) * u64::from(crop);
    if nw.saturating_mul(nh) > limit || nw.max(nh) > u64::from(u32::MAX) {
        return Err(format!(
            "image is {w}x{h} pixels, too elongated to resize to {short} and crop {crop} \
             (the resize would be {nw}x{nh}; at most {MAX_RESIZE_OVER_CROP}x the crop's pixels)"
        ));
    }
    Ok((nw as u32, nh as u32))
}

/// Where torchvision's `CenterCrop` starts a `crop` inside `size`: `round((size − crop) / 2)`
/// with Python's rounding, half to even (125 → 62, 127 → 64), not half away from zero.
fn centre_offset(size: u32, crop: u32) -> u32 {
    let excess = size.saturating_sub(crop);
    let half = excess / 2;
    if excess % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// torchvision's `Resize(short)` then `CenterCrop(crop)`: the short side becomes `short`, the
/// long side `int(short · long / short_side)`; the crop's offset is
/// `centre_offset`'s.
fn resize_and_crop(image: &Image, short: u32, crop: u32) -> Result<Image, String> {
    // The ImageNet-style resize applies to colour images only.
    if image.channels != 3 {
        return Ok(image.clone());
    }
    let (w, h) = (
        u32::try_from(image.width).map_err(|_| "image too wide".to_string())?,
        u32::try_from(image.height).map_err(|_| "image too tall".to_string())?,
    );
    let (nw, nh) = resized_size(w, h, short, crop)?;
    let rgb = image.to_rgb_image();
    // A triangle filter widened by the scale factor is PIL's antialiased bilinear resampling.
    let resized = image::imageops::resize(&rgb, nw, nh, FilterType::Triangle);
    let (left, top) = (centre_offset(nw, crop), centre_offset(nh, crop));
    let cropped =
        image::imageops::crop_imm(&resized, left, top, crop.min(nw), crop.min(nh)).to_image();
    Ok(Image::from_rgb(&cropped))
}

/// An image's floats in planar order and its (channels, height, width).
pub type Transformed = (Vec<f32>, (usize, usize, usize));

/// Applies `transform` and returns the image's floats in planar order with its final shape,
/// or why the image cannot be transformed.
pub fn apply(image: &Image, transform: &Transform) -> Result<Transformed, String> {
    let image = match transform.resize_crop {
        Some((short, crop)) => resize_and_crop(image, short, crop)?,
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
    Ok((out, (image.channels, image.height, image.width)))
}

#[cfg(test)]
mod tests {
    use super::resized_size;

    #[test]
    fn the_centre_crop_rounds_half_to_even_as_python_does() {
        // torchvision: int(round((size - crop) / 2.0)).
        let offsets: Vec<u32> = [224, 225, 349, 351, 295, 100]
            .iter()
            .map(|&size| super::centre_offset(size, 224))
            .collect();
        assert_eq!(offsets, [0, 0, 62, 64, 36, 0]);
    }

    #[test]
    fn extreme_shapes_are_refused_before_any_resize() {
        assert_eq!(resized_size(500, 375, 256, 224), Ok((341, 256)));
        assert_eq!(resized_size(375, 500, 256, 224), Ok((256, 341)));
        for (w, h) in [
            (1, 16_777_216),
            (16_777_216, 1),
            (1_000_000, 1),
            (0, 10),
            (10, 0),
        ] {
            assert!(resized_size(w, h, 256, 224).is_err(), "{w}x{h}");
        }
        // 40:1 still resizes (within 64x the crop's pixels).
        assert!(resized_size(4000, 100, 256, 224).is_ok());
    }
}
