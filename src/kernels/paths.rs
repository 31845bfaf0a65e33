//! The one dispatch table: which kernels each instruction-set path runs. Every path has one
//! entry in [`of`], whose match names every [`Isa`] with no catch-all arm, and each entry is
//! a [`PathKernels`] literal that must fill every field: adding a path, or a kernel to the
//! paths, is a change the compiler walks you through (docs/architecture.md, "Adding an
//! instruction-set path").

use std::ops::Range;

use super::direct::{RowJob, WeightJob};
use super::geometry::{ConvGeom, Epilogue};
use super::isa::Isa;
use super::winograd::Band;

/// What one path runs beyond the `gemm` crate's GEMM (which every path has).
#[derive(Clone, Copy)]
pub(in crate::kernels) struct PathKernels {
    /// Direct convolution of narrow layers, forward and weight gradient (`super::direct`).
    pub(in crate::kernels) direct: Option<DirectKernels>,
    /// Winograd F(2×2, 3×3), and F(4×4, 3×3) where the path has it, for 3×3 stride-1 layers
    /// (`super::winograd`).
    pub(in crate::kernels) winograd: Option<WinogradKernels>,
}

impl PathKernels {
    /// A path with no kernels of its own: every convolution takes the GEMM.
    pub(in crate::kernels) const GEMM_ONLY: PathKernels = PathKernels {
        direct: None,
        winograd: None,
    };
}

/// A path's direct convolution kernels.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct DirectKernels {
    /// The layers whose forward pass the kernel runs (where it beats the GEMM, measured).
    pub(in crate::kernels) forward: fn(&ConvGeom) -> bool,
    /// The layers whose weight gradient it runs.
    pub(in crate::kernels) weight_grad: fn(&ConvGeom) -> bool,
    /// Output channels per register group for a layer of `cout` channels.
    pub(in crate::kernels) group: fn(usize) -> usize,
    /// Whether the row kernel reads a zero-padded copy of the whole input (else each task
    /// copies the padded rows of its band of output rows).
    pub(in crate::kernels) whole_padded_input: bool,
    /// One output row's group of `group` channels from `job.co0` into `dst`.
    ///
    /// # Safety
    ///
    /// The CPU has the path; `forward` holds for `job.g`; `job.weight` and `job.bias` hold
    /// the layer's `[kh·kw·cin, cout]` weights and `cout` biases; `job.image` holds the
    /// padded input rows output row `job.oy` reads, `job.in_w` columns wide; `dst` and
    /// `job.residual` hold one output row.
    pub(in crate::kernels) row: unsafe fn(usize, &RowJob, &mut [f32]),
    /// Adds the weight gradient of the images `images` to `dw` (`[kh·kw·cin, cout]`).
    ///
    /// # Safety
    ///
    /// The CPU has the path; `weight_grad` holds for `job.g`; `job.x` and `job.dy` hold the
    /// whole batch's input and output gradient as `job.input` and `job.out` say; `images`
    /// lies within the batch; `dw` holds `kh·kw·cin·cout` floats.
    pub(in crate::kernels) weight: unsafe fn(&WeightJob, Range<usize>, &mut [f32]),
}

/// A path's Winograd kernels.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct WinogradKernels {
    /// The layers it can run.
    pub(in crate::kernels) supports: fn(&ConvGeom) -> bool,
    /// The layers the dispatch gives it, among those it supports: where it beats the path's
    /// direct kernel and the GEMM, measured.
    pub(in crate::kernels) preferred: fn(&ConvGeom) -> bool,
    /// One band of the forward pass: transform the band's input tiles into `u`, multiply by
    /// the transformed weights `v` into `m`, transform `m` into the output rows `dst` with
    /// the epilogue applied.
    ///
    /// # Safety
    ///
    /// The CPU has the path; `supports` holds for `band.g`; `v` holds the transformed weights
    /// (`super::winograd::transformed_len`); `u` and `m` hold the position blocks (16) of the band's
    /// tiles (`super::winograd` sizes them); `dst` and the epilogue's residual hold the
    /// band's output rows.
    pub(in crate::kernels) forward_band: ForwardBand,
    /// One band's weight gradient: `dv += Uᵀ D` with `D` the band's transformed output
    /// gradient `dy`.
    ///
    /// # Safety
    ///
    /// As `forward_band`, with `dy` the band's output-gradient rows, `d` sized as `m`, and
    /// `dv` holding the transformed weights' length.
    pub(in crate::kernels) weight_band: WeightBand,
    /// F(4×4, 3×3), where the path has it (`super::winograd::Tile`).
    pub(in crate::kernels) f4: Option<F4Kernels>,
}

/// A path's Winograd F(4×4, 3×3) kernels.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct F4Kernels {
    /// The layers whose forward pass (and input gradient) the dispatch gives F(4×4) rather
    /// than F(2×2), among those the path's Winograd kernels support (measured).
    pub(in crate::kernels) preferred: fn(&ConvGeom) -> bool,
    /// The layers whose weight gradient it gives F(4×4).
    pub(in crate::kernels) weight_preferred: fn(&ConvGeom) -> bool,
    /// As [`WinogradKernels::forward_band`], on 6×6 transformed tiles (`u` and `m` hold 36
    /// position blocks).
    pub(in crate::kernels) forward_band: ForwardBand,
    /// As [`WinogradKernels::weight_band`], on 6×6 transformed tiles.
    pub(in crate::kernels) weight_band: WeightBand,
}

/// `forward_band(band, v, u, m, epilogue, dst)`.
pub(in crate::kernels) type ForwardBand =
    unsafe fn(&Band, &[f32], &mut [f32], &mut [f32], Epilogue, &mut [f32]);

/// `weight_band(band, dy, u, d, dv)`.
pub(in crate::kernels) type WeightBand =
    unsafe fn(&Band, &[f32], &mut [f32], &mut [f32], &mut [f32]);

/// The kernels of path `isa`.
pub(in crate::kernels) fn of(isa: Isa) -> &'static PathKernels {
    match isa {
        Isa::Scalar => &super::scalar::KERNELS,
        Isa::Neon => &super::neon::KERNELS,
        Isa::Avx2 => &super::avx2::KERNELS,
        Isa::Avx512 => &super::avx512::KERNELS,
    }
}
