//! Training-time augmentation of the reference (CIFAR): pad with zeros (black) by 4, crop back
//! to the original size at a random offset, and flip horizontally with probability 1/2. Runs on
//! the 8-bit image before the test-time transform, as torchvision does on the PIL image.

use crate::data::transform::Image;
use crate::rng::Rng;

pub const CROP_PADDING: usize = 4;

pub fn crop_flip(image: &Image, pad: usize, rng: &mut Rng) -> Image {
    let (h, w) = (image.height, image.width);
    let dy = rng.below(2 * pad + 1);
    let dx = rng.below(2 * pad + 1);
    let flip = rng.uniform() < 0.5;
    let mut pixels = vec![0u8; image.pixels.len()];
    for c in 0..image.channels {
        let plane = c * h * w;
        for y in 0..h {
            // Output (x, y) reads padded (x + dx, y + dy), i.e. source (x + dx − pad, …).
            let Some(sy) = (y + dy).checked_sub(pad).filter(|&sy| sy < h) else {
                continue;
            };
            for x in 0..w {
                let ox = if flip { w - 1 - x } else { x };
                if let Some(sx) = (ox + dx).checked_sub(pad).filter(|&sx| sx < w) {
                    pixels[plane + y * w + x] = image.pixels[plane + sy * w + sx];
                }
            }
        }
    }
    Image {
        pixels,
        ..image.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Image {
        Image {
            channels: 1,
            height: 3,
            width: 3,
            pixels: (1..=9).collect(),
        }
    }

    #[test]
    fn no_padding_and_no_flip_is_the_identity_or_a_mirror() {
        for seed in 0..20 {
            let out = crop_flip(&ramp(), 0, &mut Rng::new(seed));
            let mirror: Vec<u8> = vec![3, 2, 1, 6, 5, 4, 9, 8, 7];
            assert!(out.pixels == ramp().pixels || out.pixels == mirror);
        }
    }

    #[test]
    fn crops_keep_the_size_and_fill_with_black() {
        let mut saw_black = false;
        for seed in 0..50 {
            let out = crop_flip(&ramp(), 2, &mut Rng::new(seed));
            assert_eq!(out.pixels.len(), 9);
            saw_black |= out.pixels.contains(&0);
            assert!(out.pixels.iter().all(|&p| p <= 9));
        }
        assert!(saw_black);
    }
}
