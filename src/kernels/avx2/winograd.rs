//! The AVX2 Winograd F(2×2, 3×3) kernels: the input and output transforms 8 channels a
//! vector, the 16 position products on the direct kernel's 6 × 16 register block, and the
//! weight gradient's products over tiles.

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::geometry::Epilogue;
use crate::kernels::winograd::{position_stride, Band, GROUP};

/// The 8 input channels at `at` (the layers' input channels come in multiples of 8).
///
/// # Safety
///
/// The CPU has AVX2; `at` points at 8 readable floats.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn load_channels(at: *const f32, _c0: usize, _channels: usize) -> __m256 {
    _mm256_loadu_ps(at)
}

/// Stores 8 input channels at `at`.
///
/// # Safety
///
/// As [`load_channels`], writable.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn store_channels(at: *mut f32, _c0: usize, _channels: usize, value: __m256) {
    _mm256_storeu_ps(at, value)
}

winograd_transforms!(
    "avx2,fma",
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_max_ps,
    load_channels,
    store_channels
);

/// `M[ξ] = U[ξ] · V[ξ]` for the tile's positions (16 for F(2×2), 36 for F(4×4)): blocks of
/// 6 tiles × 16 output channels in registers, the direct kernel's inner loop over the input
/// channels.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `u`, `v` and `m` hold the band's position blocks (`tiles ×
/// cin`, `cin × cout`, `tiles × cout`), as `crate::kernels::winograd` sizes them.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn products(band: &Band, u: &[f32], v: &[f32], m: &mut [f32]) {
    let (cin, cout, tiles) = (band.g.cin, band.g.cout, band.tiles);
    for xi in 0..band.tile.positions() {
        let u = u.as_ptr().add(xi * position_stride(tiles, cin));
        let v = v.as_ptr().add(xi * cin * cout);
        let m = m.as_mut_ptr().add(xi * position_stride(tiles, cout));
        for co0 in (0..cout).step_by(GROUP) {
            let v = v.add(co0 * cin);
            let mut tile = 0;
            while tile + 6 <= tiles {
                block::<6>(u.add(tile * cin), v, m.add(tile * cout + co0), cin, cout);
                tile += 6;
            }
            let (u, m) = (u.add(tile * cin), m.add(tile * cout + co0));
            match tiles - tile {
                5 => block::<5>(u, v, m, cin, cout),
                4 => block::<4>(u, v, m, cin, cout),
                3 => block::<3>(u, v, m, cin, cout),
                2 => block::<2>(u, v, m, cin, cout),
                1 => block::<1>(u, v, m, cin, cout),
                _ => {}
            }
        }
    }
}

/// `R` tiles' 16 output channels: `m[r] = Σ_c u[r·cin + c] · v[16·c ..]`.
///
/// # Safety
///
/// As [`products`], with tiles `t .. t + R` inside the band.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block<const R: usize>(
    u: *const f32,
    v: *const f32,
    m: *mut f32,
    cin: usize,
    cout: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    super::direct::fma_run::<2, R>(&mut acc, u, v, cin, cin, GROUP);
    for (r, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(m.add(r * cout), a[0]);
        _mm256_storeu_ps(m.add(r * cout + 8), a[1]);
    }
}

/// `dV[ξ] += U[ξ]ᵀ · D[ξ]` for the tile's positions: blocks of 6 input channels × 16 output
/// channels in registers, summed over the band's tiles.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `u` and `d` hold the band's position blocks and `dv` the
/// transformed weights' length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weight_products(band: &Band, u: &[f32], d: &[f32], dv: &mut [f32]) {
    let (cin, cout, tiles) = (band.g.cin, band.g.cout, band.tiles);
    for xi in 0..band.tile.positions() {
        let u = u.as_ptr().add(xi * position_stride(tiles, cin));
        let d = d.as_ptr().add(xi * position_stride(tiles, cout));
        let dv = dv.as_mut_ptr().add(xi * cin * cout);
        for co0 in (0..cout).step_by(16) {
            let mut ci = 0;
            while ci + 6 <= cin {
                outer::<6>(
                    u.add(ci),
                    d.add(co0),
                    dv.add(ci * cout + co0),
                    tiles,
                    cin,
                    cout,
                );
                ci += 6;
            }
            let (u, dv) = (u.add(ci), dv.add(ci * cout + co0));
            match cin - ci {
                5 => outer::<5>(u, d.add(co0), dv, tiles, cin, cout),
                4 => outer::<4>(u, d.add(co0), dv, tiles, cin, cout),
                3 => outer::<3>(u, d.add(co0), dv, tiles, cin, cout),
                2 => outer::<2>(u, d.add(co0), dv, tiles, cin, cout),
                1 => outer::<1>(u, d.add(co0), dv, tiles, cin, cout),
                _ => {}
            }
        }
    }
}

/// `dv[c][..16] += Σ_t u[t·cin + c] · d[t·cout ..][..16]` for `C` input channels.
///
/// # Safety
///
/// As [`weight_products`], with channels `c .. c + C` inside `cin`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn outer<const C: usize>(
    u: *const f32,
    d: *const f32,
    dv: *mut f32,
    tiles: usize,
    cin: usize,
    cout: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; C];
    for t in 0..tiles {
        let dt = [
            _mm256_loadu_ps(d.add(t * cout)),
            _mm256_loadu_ps(d.add(t * cout + 8)),
        ];
        for (c, a) in acc.iter_mut().enumerate() {
            let uv = _mm256_broadcast_ss(&*u.add(t * cin + c));
            a[0] = _mm256_fmadd_ps(uv, dt[0], a[0]);
            a[1] = _mm256_fmadd_ps(uv, dt[1], a[1]);
        }
    }
    for (c, a) in acc.iter().enumerate() {
        for (v, &value) in a.iter().enumerate() {
            let at = dv.add(c * cout + 8 * v);
            _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), value));
        }
    }
}
