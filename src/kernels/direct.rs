//! Direct convolution for narrow layers (16 or 32 output channels) with AVX-512: each task
//! computes one output row, `R` neighbouring pixels at a time, with the pixels' output channels
//! held in registers (`R × cout/16` accumulators) while it walks the kernel taps and input
//! channels, broadcasting one input value per pixel against one row of the weights. No
//! im2col: the input is read in place from a zero-padded copy. The GEMM path packs a narrow
//! (16-wide) output poorly; this is where ResNet's first segment spends its time.
//!
//! Used only when the CPU has AVX-512F (checked at run time); [`super::conv`] falls back to
//! the GEMM path otherwise.

use rayon::prelude::*;

use super::conv::{ConvGeom, Epilogue, Nhw};

/// Whether [`forward`] can run `g` on this CPU.
pub fn supported(g: &ConvGeom) -> bool {
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
            let job = RowJob {
                g,
                image,
                padded_w: pw,
                oy,
                weight,
                bias: epilogue.bias,
                residual,
                relu: epilogue.relu,
            };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supported` checked AVX-512F before this path was taken.
            unsafe {
                // 14 and 7 pixels: whole steps across 28-, 14- and 7-wide rows.
                match g.cout {
                    16 => avx512::row::<1, 14>(&job, dst),
                    _ => avx512::row::<2, 7>(&job, dst),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("direct convolution needs AVX-512 ({job:?} {dst:?})");
        });
}

/// One output row's inputs.
#[derive(Debug)]
struct RowJob<'a> {
    g: &'a ConvGeom,
    /// The whole padded image `[H + 2p, W + 2p, cin]`.
    image: &'a [f32],
    padded_w: usize,
    oy: usize,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
    relu: bool,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::RowJob;

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

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const CV: usize, const R: usize>(job: &RowJob, ox: usize, dst: &mut [f32]) {
        let g = job.g;
        let (cin, k, s) = (g.cin, g.kernel, g.stride);
        let mut acc = [[_mm512_setzero_ps(); CV]; R];
        if let Some(bias) = job.bias {
            for v in 0..CV {
                let b = _mm512_loadu_ps(bias.as_ptr().add(16 * v));
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
                        *wv = _mm512_loadu_ps(tap.add(ci * g.cout + 16 * v));
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
            let at = (ox + r) * g.cout;
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
