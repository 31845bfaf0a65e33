//! The AVX-512 path (AVX-512F: 16-wide vectors, 32 registers): Winograd F(2×2, 3×3) for the
//! 3×3 stride-1 layers where it beats the direct kernels (measured, see [`kernels::winograd`]),
//! direct convolution kernels for the other narrow layers, reading a zero-padded copy of the
//! whole input. Everything else takes the `gemm` crate's AVX-512 GEMM.

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
        whole_padded_input: true,
        row: kernels::row,
        weight: kernels::weight,
    }),
    winograd: Some(super::paths::WinogradKernels {
        supports: crate::kernels::winograd::fits,
        preferred: kernels::winograd,
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

    use super::{direct, winograd as wino, winograd4 as wino4};
    use crate::kernels::direct::{RowJob, WeightJob};
    use crate::kernels::geometry::{ConvGeom, Epilogue};
    use crate::kernels::winograd::Band;

    /// The 3×3 stride-1 layers Winograd takes from the direct kernels: every one it fits
    /// (measured with `cargo bench --bench kernels -- convs`).
    pub fn winograd(g: &ConvGeom) -> bool {
        crate::kernels::winograd::fits(g)
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
        for tiles in chunks(band, wino::CHUNK) {
            let count = tiles.len();
            wino::transform_input(band, tiles.clone(), u);
            wino::products(band, count, u, v, m);
            wino::transform_output(band, tiles, m, epilogue, dst);
        }
    }

    /// The layers whose forward pass takes F(4×4) rather than F(2×2) (measured with `cargo
    /// bench --bench kernels -- convs`).
    pub fn winograd_f4(g: &ConvGeom) -> bool {
        crate::kernels::winograd::fits(g)
    }

    /// The layers whose weight gradient takes F(4×4): up to 32 output channels; at 64
    /// F(2×2) is about 10% ahead (measured with `cargo bench --bench kernels -- convs`).
    pub fn winograd_f4_weight(g: &ConvGeom) -> bool {
        crate::kernels::winograd::fits(g) && g.cout <= 32
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
        // F(2×2)'s chunk: 14 tiles (one register block) measured up to 10% slower on the 32-
        // and 64-channel layers, though 28 tiles' `U` and `M` no longer fit L1 there.
        for tiles in chunks(band, wino::CHUNK) {
            let count = tiles.len();
            wino4::transform_input(band, tiles.clone(), u);
            wino::products(band, count, u, v, m);
            wino4::transform_output(band, tiles, m, epilogue, dst);
        }
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
        for tiles in chunks(band, wino::WEIGHT_CHUNK) {
            let count = tiles.len();
            wino4::transform_input(band, tiles.clone(), u);
            wino4::transform_output_grad(band, tiles, dy, d);
            wino::weight_products(band, count, u, d, dv);
        }
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
        for tiles in chunks(band, wino::WEIGHT_CHUNK) {
            let count = tiles.len();
            wino::transform_input(band, tiles.clone(), u);
            wino::transform_output_grad(band, tiles, dy, d);
            wino::weight_products(band, count, u, d, dv);
        }
    }

    /// The band's tiles in chunks of `size`.
    fn chunks(band: &Band, size: usize) -> impl Iterator<Item = Range<usize>> {
        let tiles = band.tiles;
        (0..tiles)
            .step_by(size)
            .map(move |first| first..(first + size).min(tiles))
    }

    /// 16 or 32 output channels, or 64 (as two groups of 32) at stride 1; wider or strided
    /// 64-channel layers do better on the GEMM here (measured with `cargo bench --bench
    /// kernels -- convs`).
    pub fn forward(g: &ConvGeom) -> bool {
        matches!(g.cout, 16 | 32) || (g.cout == 64 && g.stride == 1)
    }

    /// The weight gradient beats the GEMM up to 32 output channels.
    pub fn weight_grad(g: &ConvGeom) -> bool {
        matches!(g.cout, 16 | 32)
    }

    /// Groups of 16 output channels (one vector) for a 16-wide layer, else of 32 (two).
    pub fn group(cout: usize) -> usize {
        if cout == 16 {
            16
        } else {
            32
        }
    }

    /// One output row's channel group: 16 or 14 pixels (32-, 28-wide rows) of one vector,
    /// 8 or 7 (16-, 14-, 8- and 7-wide) of two: at most 16 of the 32 registers accumulate.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::DirectKernels::row`].
    pub unsafe fn row(group: usize, job: &RowJob, dst: &mut [f32]) {
        let width = dst.len() / job.g.cout;
        match (group, width) {
            (16, w) if w % 16 == 0 => direct::row::<1, 16>(job, dst),
            (16, _) => direct::row::<1, 14>(job, dst),
            (_, w) if w % 8 == 0 => direct::row::<2, 8>(job, dst),
            _ => direct::row::<2, 7>(job, dst),
        }
    }

    /// The weight gradient in input-channel blocks of 16 (8 when the output is 32 wide: 16
    /// accumulators either way), or 1 for the stem's 1 or 3 channels.
    ///
    /// # Safety
    ///
    /// As [`crate::kernels::paths::DirectKernels::weight`].
    pub unsafe fn weight(job: &WeightJob, images: Range<usize>, dw: &mut [f32]) {
        match (job.g.cout, job.g.cin) {
            (16, c) if c % 16 == 0 => direct::weight_grad::<1, 16>(job, images, dw),
            (16, c) if c % 8 == 0 => direct::weight_grad::<1, 8>(job, images, dw),
            (16, _) => direct::weight_grad::<1, 1>(job, images, dw),
            (_, c) if c % 8 == 0 => direct::weight_grad::<2, 8>(job, images, dw),
            _ => direct::weight_grad::<2, 1>(job, images, dw),
        }
    }
}
