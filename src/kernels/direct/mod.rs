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

use super::geometry::{band_rows, band_window, padded, ConvGeom, Epilogue, Nhw};
use super::isa::Isa;
use super::paths::{self, DirectKernels};

/// Whether [`forward_on`] has a kernel for `g` on `isa`: the path's table entry says which
/// layers its kernel beats the GEMM on (`kernels/avx2`, `kernels/avx512`). On AVX2 the 3×3
/// stride-1 layers take [`super::winograd`] first, so this kernel runs the stems and the
/// strided layers there.
pub fn supported_on(g: &ConvGeom, isa: Isa) -> bool {
    kernels_with(isa, g, |k| k.forward).is_some()
}

/// Whether [`backward_weight_on`] has a kernel for `g` on `isa` (where it beats the GEMM,
/// as the path's table entry says).
pub fn supports_weight_grad_on(g: &ConvGeom, isa: Isa) -> bool {
    kernels_with(isa, g, |k| k.weight_grad).is_some()
}

/// The direct kernels of `isa` when the layers that `runs` names for them include `g`.
fn kernels_with(
    isa: Isa,
    g: &ConvGeom,
    runs: fn(&DirectKernels) -> fn(&ConvGeom) -> bool,
) -> Option<DirectKernels> {
    paths::of(isa).direct.filter(|k| runs(k)(g))
}

/// [`supported_on`] the active path.
pub fn supported(g: &ConvGeom) -> bool {
    supported_on(g, Isa::active())
}

/// [`supports_weight_grad_on`] the active path.
pub fn supports_weight_grad(g: &ConvGeom) -> bool {
    supports_weight_grad_on(g, Isa::active())
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
    let kernels = kernels_with(isa, g, |k| k.forward)
        .filter(|_| isa.available())
        .unwrap_or_else(|| panic!("no direct kernel for {g:?} on {isa}"));
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
        let group = (kernels.group)(g.cout);
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
            // SAFETY: the CPU has `isa` and `isa` runs `g` (checked above); the weights and
            // bias hold what `g` needs (asserted above), `image` the padded rows `oy` reads,
            // and `dst` one output row.
            unsafe { (kernels.row)(group, &job, dst) };
        }
    };
    if kernels.whole_padded_input {
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

/// Gradient with respect to the weights, `[kh·kw·cin, cout]`, as
/// [`super::conv::backward_weight`]; call only when [`supports_weight_grad`]. Images are shared out in
/// ranges; each task sums its images into its own copy, and the copies are added at the end.
pub fn backward_weight(g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    backward_weight_on(Isa::active(), g, input, x, dy)
}

/// [`backward_weight`] on `isa`, which this CPU must have and which must support `g`.
pub fn backward_weight_on(isa: Isa, g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let kernels = kernels_with(isa, g, |k| k.weight_grad)
        .filter(|_| isa.available())
        .unwrap_or_else(|| panic!("no direct weight-gradient kernel for {g:?} on {isa}"));
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
        // SAFETY: the CPU has `isa` and `isa` runs `g` (checked above); the operands'
        // lengths are asserted above, and `images` lie within the batch.
        unsafe { (kernels.weight)(&job, images, dw) };
    })
}

/// The operands of [`backward_weight`].
pub(in crate::kernels) struct WeightJob<'a> {
    pub(in crate::kernels) g: &'a ConvGeom,
    pub(in crate::kernels) input: Nhw,
    pub(in crate::kernels) out: Nhw,
    /// The unpadded input, NHWC.
    pub(in crate::kernels) x: &'a [f32],
    /// The output gradient, NHWC.
    pub(in crate::kernels) dy: &'a [f32],
}

impl WeightJob<'_> {
    /// Output positions along one axis whose input position `o·stride + tap − pad` lies inside
    /// `0 .. len` (the rest read padding, which contributes nothing).
    pub(in crate::kernels) fn valid(
        &self,
        tap: usize,
        len: usize,
        out_len: usize,
    ) -> std::ops::Range<usize> {
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
pub(in crate::kernels) struct RowJob<'a> {
    pub(in crate::kernels) g: &'a ConvGeom,
    /// Zero-padded input rows `[.., in_w, cin]` from which output row `oy` reads rows
    /// `oy·stride .. oy·stride + kernel`: the whole padded image (AVX-512), or the rows of the
    /// task's band (AVX2, `oy` counted from the band's first row).
    pub(in crate::kernels) image: &'a [f32],
    pub(in crate::kernels) in_w: usize,
    pub(in crate::kernels) oy: usize,
    /// The first output channel of this group (`16·CV` channels from here).
    pub(in crate::kernels) co0: usize,
    pub(in crate::kernels) weight: &'a [f32],
    pub(in crate::kernels) bias: Option<&'a [f32]>,
    pub(in crate::kernels) residual: Option<&'a [f32]>,
    pub(in crate::kernels) relu: bool,
}
