//! Direct convolution for narrow layers (16, 32 or 64 output channels) with AVX-512: each task
//! computes one output row, `R` neighbouring pixels at a time, with the pixels' output channels
//! (16, or a group of 32) held in registers (`R × 16` or `R × 32` accumulators, at most 16 of
//! the 32 vector registers) while it walks the kernel taps and input
//! channels, broadcasting one input value per pixel against one row of the weights. No
//! im2col: the input is read in place from a zero-padded copy. The GEMM path packs a narrow
//! (16-wide) output poorly (this runs ~2× faster there), and at 64 channels, stride 1, this
//! still edges it out.
//!
//! The weight gradient of the same layers ([`backward_weight`]) works the same way round: a
//! block of input channels × the output channels stays in registers while the task walks
//! every output pixel of its images for one kernel tap, adding `x · dyᵀ` one pixel at a time.
//!
//! Used only when the CPU has AVX-512F (checked at run time); [`super::conv`] falls back to
//! the GEMM path otherwise.

use rayon::prelude::*;

use super::conv::{ConvGeom, Epilogue, Nhw};

/// Whether [`forward`] can run `g` on this CPU: 16 or 32 output channels, or 64 (as two
/// groups of 32) at stride 1. Wider or strided 64-channel layers do better on the GEMM path.
pub fn supported(g: &ConvGeom) -> bool {
    (matches!(g.cout, 16 | 32) || (g.cout == 64 && g.stride == 1)) && has_avx512()
}

/// Whether [`backward_weight`] can run `g` on this CPU (at 64 channels the GEMM does as well).
pub fn supports_weight_grad(g: &ConvGeom) -> bool {
    matches!(g.cout, 16 | 32) && has_avx512()
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// `x` zero-padded by `pad` on both spatial sides: `[N, H + 2p, W + 2p, C]`.
fn padded(x: &[f32], input: Nhw, channels: usize, pad: usize) -> (Vec<f32>, usize, usize) {
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

/// Forward convolution as [`super::conv::forward`]; call only when [`supported`].
pub fn forward(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    let Some(out_nhw) = g.output(input) else {
        return;
    };
    let (xp, ph, pw) = padded(x, input, g.cin, g.pad);
    let row_len = out_nhw.w * g.cout;
    out.par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(row, dst)| {
            let img = row / out_nhw.h;
            let oy = row % out_nhw.h;
            let image = &xp[img * ph * pw * g.cin..(img + 1) * ph * pw * g.cin];
            let residual = epilogue
                .residual
                .map(|r| &r[row * row_len..(row + 1) * row_len]);
            // Output channels in groups of 16 (one vector) or 32 (two).
            let group = if g.cout == 16 { 16 } else { 32 };
            for co0 in (0..g.cout).step_by(group) {
                let job = RowJob {
                    g,
                    image,
                    padded_w: pw,
                    oy,
                    co0,
                    weight,
                    bias: epilogue.bias,
                    residual,
                    relu: epilogue.relu,
                };
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `supported` checked AVX-512F before this path was taken.
                unsafe {
                    // Pixels per step that divide the row: 16 or 14 (32-, 28-wide rows), 8 or
                    // 7 (16-, 14-, 8- and 7-wide).
                    match (group, out_nhw.w) {
                        (16, w) if w % 16 == 0 => avx512::row::<1, 16>(&job, dst),
                        (16, _) => avx512::row::<1, 14>(&job, dst),
                        (_, w) if w % 8 == 0 => avx512::row::<2, 8>(&job, dst),
                        _ => avx512::row::<2, 7>(&job, dst),
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("direct convolution needs AVX-512 ({job:?} {dst:?})");
            }
        });
}

/// Gradient with respect to the weights, `[kh·kw·cin, cout]`, as
/// [`super::conv::backward_weight`]; call only when [`supports_weight_grad`]. Images are shared out in
/// ranges; each task sums its images into its own copy, and the copies are added at the end.
pub fn backward_weight(g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let zeros = || vec![0.0f32; g.patch_len() * g.cout];
    let Some(out_nhw) = g.output(input) else {
        return zeros();
    };
    // The kernel reads through raw pointers: the operands must hold what the shapes say.
    assert!(x.len() >= input.pixels() * g.cin && dy.len() >= out_nhw.pixels() * g.cout);
    let images_per_task = input.n.div_ceil(4 * rayon::current_num_threads()).max(1);
    let job = WeightJob {
        g,
        input,
        out: out_nhw,
        x,
        dy,
    };
    (0..input.n.div_ceil(images_per_task))
        .into_par_iter()
        .fold(zeros, |mut dw, task| {
            let first = task * images_per_task;
            let images = first..(first + images_per_task).min(input.n);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supports_weight_grad` checked AVX-512F before this path was taken; the
            // operands' lengths are asserted above.
            unsafe {
                // Input-channel blocks of 16 (8 when the output is 32 wide: 16 accumulators
                // either way), or 1 for the stem's 1 or 3 channels.
                match (g.cout, g.cin) {
                    (16, c) if c % 16 == 0 => avx512::weight_grad::<1, 16>(&job, images, &mut dw),
                    (16, c) if c % 8 == 0 => avx512::weight_grad::<1, 8>(&job, images, &mut dw),
                    (16, _) => avx512::weight_grad::<1, 1>(&job, images, &mut dw),
                    (_, c) if c % 8 == 0 => avx512::weight_grad::<2, 8>(&job, images, &mut dw),
                    _ => avx512::weight_grad::<2, 1>(&job, images, &mut dw),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("direct convolution needs AVX-512 ({images:?} {dw:?})");
            dw
        })
        .reduce(zeros, |mut a, b| {
            for (a, b) in a.iter_mut().zip(&b) {
                *a += b;
            }
            a
        })
}

/// The operands of [`backward_weight`].
struct WeightJob<'a> {
    g: &'a ConvGeom,
    input: Nhw,
    out: Nhw,
    /// The unpadded input, NHWC.
    x: &'a [f32],
    /// The output gradient, NHWC.
    dy: &'a [f32],
}

impl WeightJob<'_> {
    /// Output positions along one axis whose input position `o·stride + tap − pad` lies inside
    /// `0 .. len` (the rest read padding, which contributes nothing).
    fn valid(&self, tap: usize, len: usize, out_len: usize) -> std::ops::Range<usize> {
        let (s, p) = (self.g.stride, self.g.pad);
        let lo = p.saturating_sub(tap).div_ceil(s);
        let hi = if len + p > tap {
            ((len + p - tap - 1) / s + 1).min(out_len)
        } else {
            0
        };
        lo..hi.max(lo)
    }
}

/// One output row's inputs.
#[derive(Debug)]
struct RowJob<'a> {
    g: &'a ConvGeom,
    /// The whole padded image `[H + 2p, W + 2p, cin]`.
    image: &'a [f32],
    padded_w: usize,
    oy: usize,
    /// The first output channel of this group (`16·CV` channels from here).
    co0: usize,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
    relu: bool,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{RowJob, WeightJob};

    /// One output row, `R` pixels per step (steps of 4, then 1, at the row's end), `CV`
    /// vectors of 16 output channels per pixel.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn row<const CV: usize, const R: usize>(job: &RowJob, dst: &mut [f32]) {
        let g = job.g;
        let ow = dst.len() / g.cout;
        let mut ox = 0;
        while ox + R <= ow {
            block::<CV, R>(job, ox, dst);
            ox += R;
        }
        while ox + 4 <= ow {
            block::<CV, 4>(job, ox, dst);
            ox += 4;
        }
        while ox < ow {
            block::<CV, 1>(job, ox, dst);
            ox += 1;
        }
    }

    /// Adds the weight gradient of `images` to `dw`: for each kernel tap and block of `CB`
    /// input channels, `CB × CV` vectors of accumulators over every valid output pixel.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weight_grad<const CV: usize, const CB: usize>(
        job: &WeightJob,
        images: std::ops::Range<usize>,
        dw: &mut [f32],
    ) {
        let (g, input, out) = (job.g, job.input, job.out);
        let (cin, cout, k, s, p) = (g.cin, g.cout, g.kernel, g.stride, g.pad);
        let x = job.x.as_ptr();
        let dy = job.dy.as_ptr();
        for ky in 0..k {
            let rows = job.valid(ky, input.h, out.h);
            for kx in 0..k {
                let cols = job.valid(kx, input.w, out.w);
                for ci0 in (0..cin).step_by(CB) {
                    let mut acc = [[_mm512_setzero_ps(); CV]; CB];
                    for img in images.clone() {
                        for oy in rows.clone() {
                            let iy = oy * s + ky - p;
                            let x_row = x.add(((img * input.h + iy) * input.w) * cin + ci0);
                            let dy_row = dy.add(((img * out.h + oy) * out.w) * cout);
                            for ox in cols.clone() {
                                let xs = x_row.add((ox * s + kx - p) * cin);
                                let mut dv = [_mm512_setzero_ps(); CV];
                                for (v, d) in dv.iter_mut().enumerate() {
                                    *d = _mm512_loadu_ps(dy_row.add(ox * cout + 16 * v));
                                }
                                for (c, a) in acc.iter_mut().enumerate() {
                                    let xv = _mm512_set1_ps(*xs.add(c));
                                    for v in 0..CV {
                                        a[v] = _mm512_fmadd_ps(xv, dv[v], a[v]);
                                    }
                                }
                            }
                        }
                    }
                    let tap = ((ky * k + kx) * cin + ci0) * cout;
                    for (c, a) in acc.iter().enumerate() {
                        for (v, &value) in a.iter().enumerate() {
                            let at = dw.as_mut_ptr().add(tap + c * cout + 16 * v);
                            _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), value));
                        }
                    }
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const CV: usize, const R: usize>(job: &RowJob, ox: usize, dst: &mut [f32]) {
        let g = job.g;
        let (cin, k, s) = (g.cin, g.kernel, g.stride);
        let mut acc = [[_mm512_setzero_ps(); CV]; R];
        let co0 = job.co0;
        if let Some(bias) = job.bias {
            for v in 0..CV {
                let b = _mm512_loadu_ps(bias.as_ptr().add(co0 + 16 * v));
                for a in acc.iter_mut() {
                    a[v] = b;
                }
            }
        }
        let image = job.image.as_ptr();
        let w = job.weight.as_ptr();
        for ky in 0..k {
            let iy = job.oy * s + ky;
            for kx in 0..k {
                // Pixel r of this block reads padded column (ox + r)·s + kx.
                let base = image.add((iy * job.padded_w + ox * s + kx) * cin);
                let tap = w.add((ky * k + kx) * cin * g.cout);
                for ci in 0..cin {
                    let mut wv = [_mm512_setzero_ps(); CV];
                    for (v, wv) in wv.iter_mut().enumerate() {
                        *wv = _mm512_loadu_ps(tap.add(ci * g.cout + co0 + 16 * v));
                    }
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*base.add(r * s * cin + ci));
                        for v in 0..CV {
                            a[v] = _mm512_fmadd_ps(xv, wv[v], a[v]);
                        }
                    }
                }
            }
        }
        let zero = _mm512_setzero_ps();
        for (r, a) in acc.iter().enumerate() {
            let at = (ox + r) * g.cout + co0;
            for (v, &value) in a.iter().enumerate() {
                let mut y = value;
                if let Some(res) = job.residual {
                    y = _mm512_add_ps(y, _mm512_loadu_ps(res.as_ptr().add(at + 16 * v)));
                }
                if job.relu {
                    y = _mm512_max_ps(y, zero);
                }
                _mm512_storeu_ps(dst.as_mut_ptr().add(at + 16 * v), y);
            }
        }
    }
}
