//! The AVX2 path (AVX2 with FMA: 8-wide vectors, 16 registers): Winograd F(2×2, 3×3) for the
//! 3×3 stride-1 layers of up to 64 channels, direct kernels for the other narrow layers (the
//! stems and the strided layers), each task reading a band of padded input rows of its own.
//! Everything else takes the `gemm` crate's AVX2 GEMM.

#[cfg(target_arch = "x86_64")]
mod direct;
#[cfg(target_arch = "x86_64")]
mod winograd;
#[cfg(target_arch = "x86_64")]
mod winograd4;

use super::paths::PathKernels;

/// This path's entry in the dispatch table.
#[cfg(target_arch = "x86_64")]
pub const KERNELS: PathKernels = PathKernels {
    direct: Some(super::paths::DirectKernels {
        forward: kernels::forward,
        weight_grad: kernels::weight_grad,
        group: kernels::group,
        whole_padded_input: false,
        row: kernels::row,
        weight: kernels::weight,
    }),
    winograd: Some(super::paths::WinogradKernels {
        supports: crate::kernels::winograd::fits,
        preferred: crate::kernels::winograd::fits,
        forward_band: kernels::forward_band,
        weight_band: kernels::weight_band,
        f4: Some(super::paths::F4Kernels {
            preferred: kernels::winograd_f4,
            weight_preferred: kernels::winograd_f4_weight,
            forward_band: kernels::forward_band_f4,
            weight_band: kernels::weight_band_f4,
        }),
    }),
};

/// Off x86-64 the path cannot be selected ([`super::isa::Isa::available`]).
#[cfg(not(target_arch = "x86_64"))]
pub const KERNELS: PathKernels = PathKernels::GEMM_ONLY;

#[cfg(target_arch = "x86_64")]
mod kernels {
    use std::ops::Range;

    use super::{direct, winograd, winograd4};
    use crate::kernels::direct::{RowJob, WeightJob};
    use crate::kernels::geometry::{ConvGeom, Epilogue};
    use crate::kernels::winograd::Band;

    /// 16 or 32 output channels (in groups of 16); at 64 the GEMM is as fast or faster
    /// (measured with `cargo bench --bench kernels -- convs`, and with the two paths
    /// interleaved call by call, which on a shared machine is the fairer comparison). The 3×3
    /// stride-1 layers take Winograd first.
    pub fn forward(g: &ConvGeom) -> bool {
        matches!(g.cout, 16 | 32)
    }

    /// The weight gradient beats the GEMM at 16 output channels.
    pub fn weight_grad(g: &ConvGeom) -> bool {
        g.cout == 16
    }

    /// Groups of 16 output channels (two vectors).
    pub fn group(_cout: usize) -> usize {
        16
    }

    /// One output row's channel group: 12 of the 16 registers accumulate 6 pixels of 16
    /// channels (two vectors), leaving room for the two weight vectors and the broadcast
    /// input.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::DirectKernels::row`].
    pub unsafe fn row(_group: usize, job: &RowJob, dst: &mut [f32]) {
        direct::row::<2, 6>(job, dst)
    }

    /// The weight gradient: 16 output channels (two vectors) by blocks of 6, 4 or 3 input
    /// channels, 8 to 12 accumulators of the 16 registers.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::DirectKernels::weight`].
    pub unsafe fn weight(job: &WeightJob, images: Range<usize>, dw: &mut [f32]) {
        match job.g.cin {
            c if c % 6 == 0 => direct::weight_grad::<2, 6>(job, images, dw),
            c if c % 4 == 0 => direct::weight_grad::<2, 4>(job, images, dw),
            3 => direct::weight_grad::<2, 3>(job, images, dw),
            _ => direct::weight_grad::<2, 1>(job, images, dw),
        }
    }

    /// One Winograd band forward: input transform, products, output transform.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::WinogradKernels::forward_band`].
    pub unsafe fn forward_band(
        band: &Band,
        v: &[f32],
        u: &mut [f32],
        m: &mut [f32],
        epilogue: Epilogue,
        dst: &mut [f32],
    ) {
        winograd::transform_input(band, 0..band.tiles, u);
        winograd::products(band, u, v, m);
        winograd::transform_output(band, 0..band.tiles, m, epilogue, dst);
    }

    /// The layers whose forward pass (and input gradient) takes F(4×4): none. It is 1.1–1.5×
    /// faster than F(2×2) here (`cargo bench --bench kernels -- convs`), but its rounding put
    /// the policy's logit gradient 1.1e-4 from PyTorch's in `tests/train.rs` (F(2×2): 7e-5;
    /// the bound is 1e-4). That gradient amplifies rounding chaotically (F(4×4) on AVX-512,
    /// same arithmetic bar the other layers' kernels: 4.4e-5), but the bound stands.
    pub fn winograd_f4(_: &ConvGeom) -> bool {
        false
    }

    /// The layers whose weight gradient takes F(4×4): every one (measured with `cargo bench
    /// --bench kernels -- convs`).
    pub fn winograd_f4_weight(g: &ConvGeom) -> bool {
        crate::kernels::winograd::fits(g)
    }

    /// One Winograd F(4×4) band forward: input transform, products, output transform.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::F4Kernels::forward_band`].
    pub unsafe fn forward_band_f4(
        band: &Band,
        v: &[f32],
        u: &mut [f32],
        m: &mut [f32],
        epilogue: Epilogue,
        dst: &mut [f32],
    ) {
        winograd4::transform_input(band, 0..band.tiles, u);
        winograd::products(band, u, v, m);
        winograd4::transform_output(band, 0..band.tiles, m, epilogue, dst);
    }

    /// One Winograd F(4×4) band's weight gradient: `dV += Uᵀ D`.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::F4Kernels::weight_band`].
    pub unsafe fn weight_band_f4(
        band: &Band,
        dy: &[f32],
        u: &mut [f32],
        d: &mut [f32],
        dv: &mut [f32],
    ) {
        winograd4::transform_input(band, 0..band.tiles, u);
        winograd4::transform_output_grad(band, 0..band.tiles, dy, d);
        winograd::weight_products(band, u, d, dv);
    }

    /// One Winograd band's weight gradient: `dV += Uᵀ D`.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::WinogradKernels::weight_band`].
    pub unsafe fn weight_band(
        band: &Band,
        dy: &[f32],
        u: &mut [f32],
        d: &mut [f32],
        dv: &mut [f32],
    ) {
        winograd::transform_input(band, 0..band.tiles, u);
        winograd::transform_output_grad(band, 0..band.tiles, dy, d);
        winograd::weight_products(band, u, d, dv);
    }
}
