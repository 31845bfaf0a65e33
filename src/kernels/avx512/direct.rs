//! The AVX-512 direct convolution kernels: `R` pixels × `CV` vectors of 16 output channels
//! in registers (at most 16 of the 32), broadcasting one padded input value per pixel.

use std::arch::x86_64::*;

use crate::kernels::direct::{RowJob, WeightJob};

block_ends!(
    "avx512f",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_add_ps,
    _mm512_max_ps
);

/// One output row, `R` pixels per step (steps of 4, then 1, at the row's end), `CV`
/// vectors of 16 output channels per pixel.
///
/// # Safety
///
/// As [`crate::kernels::paths::DirectKernels::row`] on this path, with the group `16·CV`.
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

weight_grad_kernel!(
    "avx512f",
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps
);

/// `R` output pixels from `ox` on.
///
/// # Safety
///
/// As [`row`], with pixels `ox .. ox + R` inside the row.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const CV: usize, const R: usize>(job: &RowJob, ox: usize, dst: &mut [f32]) {
    let g = job.g;
    let (cin, k, s) = (g.cin, g.kernel, g.stride);
    let mut acc = start::<CV, R>(job);
    let co0 = job.co0;
    let image = job.image.as_ptr();
    let w = job.weight.as_ptr();
    for ky in 0..k {
        let iy = job.oy * s + ky;
        for kx in 0..k {
            // Pixel r of this block reads padded column (ox + r)·s + kx.
            let base = image.add((iy * job.in_w + ox * s + kx) * cin);
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
    finish::<CV, R>(job, ox, &acc, dst);
}
