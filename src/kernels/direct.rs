//! Direct convolution for narrow layers (16, 32 or 64 output channels) with AVX-512 or AVX2:
//! each task computes one output row, `R` neighbouring pixels at a time, with the pixels'
//! output channels (a group of 16, or of 32 on AVX-512) held in registers while it walks the
//! kernel taps and input channels, broadcasting one input value per pixel against one row of
//! the weights. No im2col. The GEMM path packs a narrow (16-wide) output poorly.
//!
//! - **AVX-512** (32 registers): `R × 16` or `R × 32` accumulators (at most 16 registers),
//!   reading a zero-padded copy of the whole input.
//! - **AVX2 + FMA** (16 registers): 6 pixels × 16 channels = 12 accumulators, leaving room
//!   for two weight vectors and the broadcast input. Each task computes a band of up to 8
//!   output rows of one image, and copies the input rows they read into a zero-padded window
//!   of its own (tens of KiB, in L1 and L2): no pass over the whole input, no border cases,
//!   and each input row copied once per band. Along a padded row a pixel's taps
//!   and their weights are one contiguous run of `kernel·cin` values, so the inner loop runs
//!   over that run rather than tap by tap (three times longer, a third of the loop overhead).
//!   Blocks of fewer pixels at a row's end split their sums over 2–4 sets of accumulators,
//!   enough independent chains to hide the FMA latency.
//!
//! The weight gradient of the same layers ([`backward_weight`]) works the same way round: a
//! block of input channels × the output channels stays in registers while the task walks
//! every output pixel of its images for one kernel tap, adding `x · dyᵀ` one pixel at a time.
//!
//! The path is the active one ([`Isa::active`]: the CPU's widest, or `BLOCKDROP_ISA`);
//! `*_on` runs a given one (tests and benches cover every path the CPU has). On the scalar
//! path, and on other architectures (aarch64 runs the `gemm` crate's NEON kernels),
//! [`super::conv`] takes the GEMM path. Which layers each path takes is measured with
//! `cargo bench --bench kernels -- convs`.

// Off x86-64 only the dispatch remains (it never selects a direct kernel).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use rayon::prelude::*;

use super::conv::{ConvGeom, Epilogue, Nhw};
use super::isa::Isa;

/// Whether [`forward_on`] has a kernel for `g` on `isa`. AVX-512: 16 or 32 output channels,
/// or 64 (as two groups of 32) at stride 1; wider or strided 64-channel layers do better on
/// the GEMM there. AVX2: 16 or 32 output channels (in groups of 16); at 64 the GEMM is as
/// fast or faster (measured with `cargo bench --bench kernels -- convs`, and with the two
/// paths interleaved call by call, which on a shared machine is the fairer comparison). On
/// AVX2 the 3×3 stride-1 layers take [`super::winograd`] first, so this kernel runs the stems
/// and the strided layers there.
pub fn supported_on(g: &ConvGeom, isa: Isa) -> bool {
    match isa {
        Isa::Avx512 => matches!(g.cout, 16 | 32) || (g.cout == 64 && g.stride == 1),
        Isa::Avx2 => matches!(g.cout, 16 | 32),
        Isa::Scalar => false,
    }
}

/// Whether [`backward_weight_on`] has a kernel for `g` on `isa`: where it beats the GEMM
/// (on AVX-512 up to 32 output channels, on AVX2 16; measured with `cargo bench --bench
/// kernels -- convs`).
pub fn supports_weight_grad_on(g: &ConvGeom, isa: Isa) -> bool {
    match isa {
        Isa::Avx512 => matches!(g.cout, 16 | 32),
        Isa::Avx2 => g.cout == 16,
        Isa::Scalar => false,
    }
}

/// [`supported_on`] the active path.
pub fn supported(g: &ConvGeom) -> bool {
    supported_on(g, Isa::active())
}

/// [`supports_weight_grad_on`] the active path.
pub fn supports_weight_grad(g: &ConvGeom) -> bool {
    supports_weight_grad_on(g, Isa::active())
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

/// Forward convolution as [`super::conv::forward`] on the active path; call only when
/// [`supported`].
pub fn forward(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    forward_on(Isa::active(), g, input, x, weight, epilogue, out)
}

/// [`forward`] on `isa`, which this CPU must have and which must support `g`.
pub fn forward_on(
    isa: Isa,
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    assert!(
        supported_on(g, isa) && isa.available(),
        "no direct kernel for {g:?} on {isa}"
    );
    // The kernels read the weights and the bias through raw pointers.
    assert!(
        weight.len() >= g.patch_len() * g.cout && epilogue.bias.is_none_or(|b| b.len() >= g.cout),
        "weights or bias shorter than {g:?} needs"
    );
    let Some(out_nhw) = g.output(input) else {
        return;
    };
    let row_len = out_nhw.w * g.cout;
    let rows = |row: usize, dst: &mut [f32], image: &[f32], in_w: usize, oy: usize| {
        let residual = epilogue
            .residual
            .map(|r| &r[row * row_len..(row + 1) * row_len]);
        // Output channels in groups of 16, or of 32 on AVX-512 (two vectors there).
        let group = if g.cout == 16 || isa == Isa::Avx2 {
            16
        } else {
            32
        };
        for co0 in (0..g.cout).step_by(group) {
            let job = RowJob {
                g,
                image,
                in_w,
                oy,
                co0,
                weight,
                bias: epilogue.bias,
                residual,
                relu: epilogue.relu,
            };
            // SAFETY: the CPU has `isa` (asserted above).
            unsafe { row_on(isa, group, &job, dst) };
        }
    };
    if isa == Isa::Avx512 {
        // A zero-padded copy of the whole input.
        let (xp, ph, pw) = padded(x, input, g.cin, g.pad);
        let image_len = ph * pw * g.cin;
        out.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(row, dst)| {
                let (img, oy) = (row / out_nhw.h, row % out_nhw.h);
                rows(
                    row,
                    dst,
                    &xp[img * image_len..(img + 1) * image_len],
                    pw,
                    oy,
                );
            });
    } else {
        // A band of an image's output rows per task, reading the input rows it needs from a
        // zero-padded window of the task's own: no pass over the whole input, no border
        // cases, and each input row copied once per band rather than once per output row.
        let band = band_rows(out_nhw);
        out.par_chunks_mut(row_len * out_nhw.h)
            .enumerate()
            .flat_map(|(img, image_out)| {
                image_out
                    .par_chunks_mut(band * row_len)
                    .enumerate()
                    .map(move |(b, dst)| (img, b * band, dst))
            })
            .for_each(|(img, oy0, dst)| {
                ROW_WINDOW.with(|cell| {
                    let mut window = cell.borrow_mut();
                    let rows_here = dst.len() / row_len;
                    let width =
                        band_window(g, input, out_nhw, x, (img, oy0), rows_here, &mut window);
                    for (r, dst) in dst.chunks_exact_mut(row_len).enumerate() {
                        rows(img * out_nhw.h + oy0 + r, dst, &window, width, r);
                    }
                })
            });
    }
}

thread_local! {
    /// Each worker's padded input rows for [`band_window`].
    static ROW_WINDOW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Output rows per task on the AVX2 path: up to 8 (the window is then 10 padded input rows,
/// or 17 at stride 2: 20–36 KiB for these layers, read from L1 and L2), fewer when that
/// would leave fewer than 8 tasks per thread (small batches), and a divisor of the image's
/// rows.
fn band_rows(out: Nhw) -> usize {
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

/// One output row's channel group on `isa`, with the pixels per step chosen to fit the
/// registers and divide the row where they can.
#[allow(unused_variables)]
unsafe fn row_on(isa: Isa, group: usize, job: &RowJob, dst: &mut [f32]) {
    let width = dst.len() / job.g.cout;
    #[cfg(target_arch = "x86_64")]
    match isa {
        // 16 or 14 pixels (32-, 28-wide rows) of one vector, 8 or 7 (16-, 14-, 8- and
        // 7-wide) of two: at most 16 of the 32 registers accumulate.
        Isa::Avx512 => match (group, width) {
            (16, w) if w % 16 == 0 => avx512::row::<1, 16>(job, dst),
            (16, _) => avx512::row::<1, 14>(job, dst),
            (_, w) if w % 8 == 0 => avx512::row::<2, 8>(job, dst),
            _ => avx512::row::<2, 7>(job, dst),
        },
        // 12 of the 16 registers accumulate 6 pixels of 16 channels (two vectors), leaving
        // room for the two weight vectors and the broadcast input.
        Isa::Avx2 => avx2::row::<2, 6>(job, dst),
        Isa::Scalar => unreachable!("no direct kernel on the scalar path"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolution needs x86-64 ({isa} {group} {width})");
}

/// Gradient with respect to the weights, `[kh·kw·cin, cout]`, as
/// [`super::conv::backward_weight`]; call only when [`supports_weight_grad`]. Images are shared out in
/// ranges; each task sums its images into its own copy, and the copies are added at the end.
pub fn backward_weight(g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    backward_weight_on(Isa::active(), g, input, x, dy)
}

/// [`backward_weight`] on `isa`, which this CPU must have and which must support `g`.
pub fn backward_weight_on(isa: Isa, g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(
        supports_weight_grad_on(g, isa) && isa.available(),
        "no direct weight-gradient kernel for {g:?} on {isa}"
    );
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
    let tasks = input.n.div_ceil(images_per_task);
    super::ordered_sum(tasks, g.patch_len() * g.cout, |task, dw: &mut [f32]| {
        let first = task * images_per_task;
        let images = first..(first + images_per_task).min(input.n);
        // SAFETY: the CPU has `isa` (asserted above); the operands' lengths are asserted
        // above too.
        unsafe { weight_grad_on(isa, &job, images, dw) };
    })
}

/// Adds the weight gradient of `images` to `dw` on `isa`, with input-channel blocks sized to
/// the registers.
#[allow(unused_variables)]
unsafe fn weight_grad_on(
    isa: Isa,
    job: &WeightJob,
    images: std::ops::Range<usize>,
    dw: &mut [f32],
) {
    let (cout, cin) = (job.g.cout, job.g.cin);
    #[cfg(target_arch = "x86_64")]
    match isa {
        // Input-channel blocks of 16 (8 when the output is 32 wide: 16 accumulators either
        // way), or 1 for the stem's 1 or 3 channels.
        Isa::Avx512 => match (cout, cin) {
            (16, c) if c % 16 == 0 => avx512::weight_grad::<1, 16>(job, images, dw),
            (16, c) if c % 8 == 0 => avx512::weight_grad::<1, 8>(job, images, dw),
            (16, _) => avx512::weight_grad::<1, 1>(job, images, dw),
            (_, c) if c % 8 == 0 => avx512::weight_grad::<2, 8>(job, images, dw),
            _ => avx512::weight_grad::<2, 1>(job, images, dw),
        },
        // 16 output channels (two vectors) by blocks of 6, 4 or 3 input channels: 8 to 12
        // accumulators of the 16 registers.
        Isa::Avx2 => match cin {
            c if c % 6 == 0 => avx2::weight_grad::<2, 6>(job, images, dw),
            c if c % 4 == 0 => avx2::weight_grad::<2, 4>(job, images, dw),
            3 => avx2::weight_grad::<2, 3>(job, images, dw),
            _ => avx2::weight_grad::<2, 1>(job, images, dw),
        },
        Isa::Scalar => unreachable!("no direct kernel on the scalar path"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolution needs x86-64 ({isa} {cout} {cin} {images:?} {dw:?})");
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

/// The AVX2 register-blocked inner loop, which the Winograd products share.
#[cfg(target_arch = "x86_64")]
pub(super) use avx2::fma_run as avx2_fma_run;

/// One output row's inputs.
#[derive(Debug)]
struct RowJob<'a> {
    g: &'a ConvGeom,
    /// Zero-padded input rows `[.., in_w, cin]` from which output row `oy` reads rows
    /// `oy·stride .. oy·stride + kernel`: the whole padded image (AVX-512), or the rows of the
    /// task's band (AVX2, `oy` counted from the band's first row).
    image: &'a [f32],
    in_w: usize,
    oy: usize,
    /// The first output channel of this group (`16·CV` channels from here).
    co0: usize,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
    relu: bool,
}

/// A block's accumulators start at its channels' bias (`start`), and end with the residual
/// added, ReLU and the store (`finish`): written once, stamped out per instruction set.
#[cfg(target_arch = "x86_64")]
macro_rules! block_ends {
    ($feature:literal, $lanes:literal, $vec:ty, $zero:ident, $load:ident, $store:ident,
     $add:ident, $max:ident) => {
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn start<const CV: usize, const R: usize>(job: &RowJob) -> [[$vec; CV]; R] {
            let mut acc = [[$zero(); CV]; R];
            if let Some(bias) = job.bias {
                for v in 0..CV {
                    let b = $load(bias.as_ptr().add(job.co0 + $lanes * v));
                    for a in acc.iter_mut() {
                        a[v] = b;
                    }
                }
            }
            acc
        }

        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn finish<const CV: usize, const R: usize>(
            job: &RowJob,
            ox: usize,
            acc: &[[$vec; CV]; R],
            dst: &mut [f32],
        ) {
            let zero = $zero();
            for (r, a) in acc.iter().enumerate() {
                let at = (ox + r) * job.g.cout + job.co0;
                for (v, &value) in a.iter().enumerate() {
                    let mut y = value;
                    if let Some(res) = job.residual {
                        y = $add(y, $load(res.as_ptr().add(at + $lanes * v)));
                    }
                    if job.relu {
                        y = $max(y, zero);
                    }
                    $store(dst.as_mut_ptr().add(at + $lanes * v), y);
                }
            }
        }
    };
}

/// The weight-gradient kernel, written once and stamped out per instruction set (the same
/// loops over that set's vectors).
#[cfg(target_arch = "x86_64")]
macro_rules! weight_grad_kernel {
    ($feature:literal, $lanes:literal, $zero:ident, $load:ident, $store:ident, $set1:ident,
     $fma:ident, $add:ident) => {
        /// Adds the weight gradient of `images` to `dw`: for each kernel tap and block of `CB`
        /// input channels, `CB × CV` vectors of accumulators over every valid output pixel.
        #[target_feature(enable = $feature)]
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
                    if rows.is_empty() || cols.is_empty() {
                        // The tap reads only padding (and pointers into `x` could leave it).
                        continue;
                    }
                    for ci0 in (0..cin).step_by(CB) {
                        let mut acc = [[$zero(); CV]; CB];
                        for img in images.clone() {
                            for oy in rows.clone() {
                                let iy = oy * s + ky - p;
                                let x_row = x.add(((img * input.h + iy) * input.w) * cin + ci0);
                                let dy_row = dy.add(((img * out.h + oy) * out.w) * cout);
                                for ox in cols.clone() {
                                    let xs = x_row.add((ox * s + kx - p) * cin);
                                    let mut dv = [$zero(); CV];
                                    for (v, d) in dv.iter_mut().enumerate() {
                                        *d = $load(dy_row.add(ox * cout + $lanes * v));
                                    }
                                    for (c, a) in acc.iter_mut().enumerate() {
                                        let xv = $set1(*xs.add(c));
                                        for v in 0..CV {
                                            a[v] = $fma(xv, dv[v], a[v]);
                                        }
                                    }
                                }
                            }
                        }
                        let tap = ((ky * k + kx) * cin + ci0) * cout;
                        for (c, a) in acc.iter().enumerate() {
                            for (v, &value) in a.iter().enumerate() {
                                let at = dw.as_mut_ptr().add(tap + c * cout + $lanes * v);
                                $store(at, $add($load(at), value));
                            }
                        }
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{RowJob, WeightJob};

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
}

/// The same kernels 8 wide for AVX2 with FMA, which has 16 vector registers: `CV` vectors of
/// 8 output channels per pixel, the register budget (at most 12 accumulators) set by the
/// callers' choice of `R` and `CB`.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{RowJob, WeightJob};

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
}
