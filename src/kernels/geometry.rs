//! The geometry every convolution path shares: the layer's shape ([`ConvGeom`]), an
//! activation's size ([`Nhw`]), the epilogue fused after the sum ([`Epilogue`]), and the
//! zero-padded input copies the direct and Winograd kernels read (a whole padded input, or
//! one task's band of padded rows).

use rayon::prelude::*;

/// Shape of one convolution: square kernel, same stride and zero padding on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub cin: usize,
    pub cout: usize,
}

/// An NHWC activation's batch and spatial size (its channels are the geometry's `cin`/`cout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nhw {
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

impl Nhw {
    pub fn pixels(&self) -> usize {
        self.n * self.h * self.w
    }
}

impl ConvGeom {
    /// Rows of the weight matrix: `kh·kw·cin`.
    pub fn patch_len(&self) -> usize {
        self.kernel * self.kernel * self.cin
    }

    /// Output size for an input of `input`, or `None` when the kernel does not fit.
    pub fn output(&self, input: Nhw) -> Option<Nhw> {
        let side = |s: usize| {
            (s + 2 * self.pad)
                .checked_sub(self.kernel)
                .map(|r| r / self.stride + 1)
        };
        Some(Nhw {
            n: input.n,
            h: side(input.h)?,
            w: side(input.w)?,
        })
    }
}

/// What the forward epilogue does to each output tile after the GEMM.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Per output channel, `[cout]`.
    pub bias: Option<&'a [f32]>,
    /// Added elementwise; the same NHWC shape as the output.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

/// `x` zero-padded by `pad` on both spatial sides: `[N, H + 2p, W + 2p, C]`.
pub(super) fn padded(
    x: &[f32],
    input: Nhw,
    channels: usize,
    pad: usize,
) -> (Vec<f32>, usize, usize) {
    let (ph, pw) = (input.h + 2 * pad, input.w + 2 * pad);
    let mut out = vec![0.0f32; input.n * ph * pw * channels];
    out.par_chunks_mut(ph * pw * channels)
        .zip(x.par_chunks(input.h * input.w * channels))
        .for_each(|(dst, src)| {
            for y in 0..input.h {
                let from = &src[y * input.w * channels..(y + 1) * input.w * channels];
                let at = ((y + pad) * pw + pad) * channels;
                dst[at..at + from.len()].copy_from_slice(from);
            }
        });
    (out, ph, pw)
}

/// Output rows per task on the AVX2 path: up to 8 (the window is then 10 padded input rows,
/// or 17 at stride 2: 20–36 KiB for these layers, read from L1 and L2), fewer when that
/// would leave fewer than 8 tasks per thread (small batches), and a divisor of the image's
/// rows.
pub(super) fn band_rows(out: Nhw) -> usize {
    let tasks_wanted = 8 * rayon::current_num_threads();
    let target = (out.pixels() / out.w.max(1) / tasks_wanted).clamp(1, 8);
    (1..=target)
        .rev()
        .find(|&b| out.h.is_multiple_of(b))
        .unwrap_or(1)
}

/// Fills `window` with the input rows that output rows `oy0 .. oy0 + rows` of image `img`
/// (of an output `out`, whose width is at least 1) read, each zero-padded to the `(ow − 1)·stride + kernel` columns the rows' pixels read;
/// returns that width. Window row `r·stride + ky` is what local output row `r` reads at tap
/// row `ky`.
pub(super) fn band_window(
    g: &ConvGeom,
    input: Nhw,
    out: Nhw,
    x: &[f32],
    (img, oy0): (usize, usize),
    rows: usize,
    window: &mut Vec<f32>,
) -> usize {
    let width = (out.w - 1) * g.stride + g.kernel;
    let row_floats = width * g.cin;
    let window_rows = (rows.max(1) - 1) * g.stride + g.kernel;
    window.resize(window_rows * row_floats, 0.0);
    // Padded column c holds input column c − pad: columns pad .. pad + in_w, clipped.
    let first = g.pad.min(width);
    let last = (g.pad + input.w).min(width);
    for (wy, dst) in window.chunks_exact_mut(row_floats).enumerate() {
        let iy = (oy0 * g.stride + wy)
            .checked_sub(g.pad)
            .filter(|&iy| iy < input.h);
        match iy {
            Some(iy) if first < last => {
                let src = ((img * input.h + iy) * input.w) * g.cin;
                let (left, rest) = dst.split_at_mut(first * g.cin);
                let (middle, right) = rest.split_at_mut((last - first) * g.cin);
                left.fill(0.0);
                middle.copy_from_slice(&x[src..src + middle.len()]);
                right.fill(0.0);
            }
            _ => dst.fill(0.0),
        }
    }
    width
}
