//! The AVX2 direct convolution kernels.
//!
//! The same kernels 8 wide for AVX2 with FMA, which has 16 vector registers: `CV` vectors of
//! 8 output channels per pixel, the register budget (at most 12 accumulators) set by the
//! callers' choice of `R` and `CB`.

use std::arch::x86_64::*;

use crate::kernels::direct::{RowJob, WeightJob};

block_ends!(
    "avx2,fma",
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_max_ps
);

/// One output row, `R` pixels at a time (then 3, 2 and 1 at its end).
///
/// # Safety
///
/// As [`crate::kernels::paths::DirectKernels::row`] on this path, with the group `8·CV`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn row<const CV: usize, const R: usize>(job: &RowJob, dst: &mut [f32]) {
    let ow = dst.len() / job.g.cout;
    let mut ox = 0;
    while ox + R <= ow {
        block::<CV, R>(job, ox, dst);
        ox += R;
    }
    while ox + 3 <= ow {
        block::<CV, 3>(job, ox, dst);
        ox += 3;
    }
    while ox + 2 <= ow {
        block::<CV, 2>(job, ox, dst);
        ox += 2;
    }
    for ox in ox..ow {
        block::<CV, 1>(job, ox, dst);
    }
}

/// `R` output pixels from `ox` on.
///
/// # Safety
///
/// As [`row`], with pixels `ox .. ox + R` inside the row.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block<const CV: usize, const R: usize>(job: &RowJob, ox: usize, dst: &mut [f32]) {
    let g = job.g;
    let (cin, k, s) = (g.cin, g.kernel, g.stride);
    let mut acc = start::<CV, R>(job);
    let co0 = job.co0;
    let image = job.image.as_ptr();
    let w = job.weight.as_ptr();
    for ky in 0..k {
        // A pixel's taps along a padded row, and their weights, are one contiguous run of
        // k·cin values: one loop over them.
        let at = image.add(((job.oy * s + ky) * job.in_w + ox * s) * cin);
        let taps = w.add(ky * k * cin * g.cout + co0);
        fma_run::<CV, R>(&mut acc, at, taps, k * cin, s * cin, g.cout);
    }
    finish::<CV, R>(job, ox, &acc, dst);
}

/// `acc[r] += Σ_j x[r·pixel_step + j] · w[j]` over `len` inputs, where `w[j]` is `CV`
/// vectors at `w + j·w_step`: the register-blocked inner loop. Blocks of few pixels have
/// too few accumulators to hide the FMA latency (4 cycles, 2 per cycle: 8 chains keep the
/// units busy), so they sum every `P`-th input into one of `P` partial sets.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `x` points at `(R − 1)·pixel_step + len` readable floats and
/// `w` at `(len − 1)·w_step + 8·CV`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(in crate::kernels) unsafe fn fma_run<const CV: usize, const R: usize>(
    acc: &mut [[__m256; CV]; R],
    x: *const f32,
    w: *const f32,
    len: usize,
    pixel_step: usize,
    w_step: usize,
) {
    match R {
        1 => fma_parts::<CV, R, 4>(acc, x, w, len, pixel_step, w_step),
        2 => fma_parts::<CV, R, 3>(acc, x, w, len, pixel_step, w_step),
        3 => fma_parts::<CV, R, 2>(acc, x, w, len, pixel_step, w_step),
        _ => fma_parts::<CV, R, 1>(acc, x, w, len, pixel_step, w_step),
    }
}

/// [`fma_run`] over `P` partial sets of accumulators.
///
/// # Safety
///
/// As [`fma_run`].
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fma_parts<const CV: usize, const R: usize, const P: usize>(
    acc: &mut [[__m256; CV]; R],
    x: *const f32,
    w: *const f32,
    len: usize,
    pixel_step: usize,
    w_step: usize,
) {
    let mut parts = [[[_mm256_setzero_ps(); CV]; R]; P];
    parts[0] = *acc;
    // Input j goes to partial set j mod P; the tail to set 0. (A macro, not a closure:
    // closures do not inherit the function's target features.)
    macro_rules! step {
        ($part:expr, $j:expr) => {{
            let j = $j;
            let mut wv = [_mm256_setzero_ps(); CV];
            for (v, wv) in wv.iter_mut().enumerate() {
                *wv = _mm256_loadu_ps(w.add(j * w_step + 8 * v));
            }
            for (r, a) in $part.iter_mut().enumerate() {
                let xv = _mm256_broadcast_ss(&*x.add(r * pixel_step + j));
                for v in 0..CV {
                    a[v] = _mm256_fmadd_ps(xv, wv[v], a[v]);
                }
            }
        }};
    }
    let mut j = 0;
    while j + P <= len {
        for (p, part) in parts.iter_mut().enumerate() {
            step!(part, j + p);
        }
        j += P;
    }
    while j < len {
        step!(parts[0], j);
        j += 1;
    }
    let mut total = parts[0];
    for part in &parts[1..] {
        for (a, b) in total.iter_mut().zip(part) {
            for v in 0..CV {
                a[v] = _mm256_add_ps(a[v], b[v]);
            }
        }
    }
    *acc = total;
}

weight_grad_kernel!(
    "avx2,fma",
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
