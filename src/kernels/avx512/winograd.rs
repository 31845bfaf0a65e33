//! The AVX-512 Winograd F(2×2, 3×3) kernels (the method: `crate::kernels::winograd`): the
//! input and output transforms 16 channels a vector (a masked half vector for a last group of
//! 8 input channels), the 16 position products on a register block of 14 tiles × 32 output
//! channels (28 of the 32 registers accumulate), and the weight gradient's products over
//! tiles on 8 input × 32 output channels. Each stage takes a chunk of the band's tiles
//! ([`CHUNK`]), so that the chunk's transformed tiles and products stay in L1 from one stage
//! to the next instead of going out to L2.

/// Tiles per chunk: two register blocks of 14. At 16 channels a chunk's `U` and `M` take
/// 28 KiB, and the transforms cost as much as the products, so the round trip through L2
/// that a whole band's `U` and `M` make was a large share of the time (measured with `cargo
/// bench --bench kernels -- convs`, docs/performance.md).
pub const CHUNK: usize = 28;

/// Tiles per chunk of the weight gradient, whose products add into all of `dV` (up to 256
/// KiB) once per chunk: larger chunks, fewer passes over it.
pub const WEIGHT_CHUNK: usize = 112;

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::geometry::Epilogue;
use crate::kernels::winograd::{position_stride, Band, GROUP};

/// The lanes of the 16-channel group from `c0` that lie inside `channels` (a multiple of 8).
#[inline]
fn lanes(c0: usize, channels: usize) -> __mmask16 {
    if channels - c0 >= 16 {
        0xFFFF
    } else {
        0x00FF
    }
}

/// The 16 input channels from `c0` at `at`, the lanes past `channels` zero.
///
/// # Safety
///
/// The CPU has AVX-512F; `at` points at the channels of `c0 .. min(c0 + 16, channels)`.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn load_channels(at: *const f32, c0: usize, channels: usize) -> __m512 {
    _mm512_maskz_loadu_ps(lanes(c0, channels), at)
}

/// Stores the lanes of `value` for channels `c0 .. min(c0 + 16, channels)` at `at`.
///
/// # Safety
///
/// As [`load_channels`], writable.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store_channels(at: *mut f32, c0: usize, channels: usize, value: __m512) {
    _mm512_mask_storeu_ps(at, lanes(c0, channels), value)
}

winograd_transforms!(
    "avx512f",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_add_ps,
    _mm512_sub_ps,
    _mm512_max_ps,
    load_channels,
    store_channels
);

/// `M[ξ] = U[ξ] · V[ξ]` for the tile's positions (16 for F(2×2), 36 for F(4×4)): blocks of
/// 14 tiles × 32 output channels (two of `V`'s groups of 16) in registers, or 28 tiles × 16
/// for a last single group; shorter blocks at the band's end.
///
/// # Safety
///
/// The CPU has AVX-512F; `u`, `v` and `m` hold the band tile's position blocks (`tiles ×
/// cin`, `cin × cout`, `tiles × cout`).
#[target_feature(enable = "avx512f")]
pub unsafe fn products(band: &Band, tiles: usize, u: &[f32], v: &[f32], m: &mut [f32]) {
    let (cin, cout) = (band.g.cin, band.g.cout);
    for xi in 0..band.tile.positions() {
        let u = u.as_ptr().add(xi * position_stride(tiles, cin));
        let v = v.as_ptr().add(xi * cin * cout);
        let m = m.as_mut_ptr().add(xi * position_stride(tiles, cout));
        let mut co0 = 0;
        while co0 + 2 * GROUP <= cout {
            group_products::<2, 14>(u, v.add(co0 * cin), m.add(co0), tiles, cin, cout);
            co0 += 2 * GROUP;
        }
        if co0 < cout {
            group_products::<1, 28>(u, v.add(co0 * cin), m.add(co0), tiles, cin, cout);
        }
    }
}

/// Every tile's `16·CV` output channels from `v`'s groups at `v`, `R` tiles a block, then
/// blocks of 7, 4, 2 and 1 for the rest.
///
/// # Safety
///
/// As [`products`], with `v` at the first of `CV` groups and `m` at their first channel.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn group_products<const CV: usize, const R: usize>(
    u: *const f32,
    v: *const f32,
    m: *mut f32,
    tiles: usize,
    cin: usize,
    cout: usize,
) {
    let mut tile = 0;
    while tile + R <= tiles {
        block::<CV, R>(u.add(tile * cin), v, m.add(tile * cout), cin, cout);
        tile += R;
    }
    while tile + 7 <= tiles {
        block::<CV, 7>(u.add(tile * cin), v, m.add(tile * cout), cin, cout);
        tile += 7;
    }
    while tile + 4 <= tiles {
        block::<CV, 4>(u.add(tile * cin), v, m.add(tile * cout), cin, cout);
        tile += 4;
    }
    while tile + 2 <= tiles {
        block::<CV, 2>(u.add(tile * cin), v, m.add(tile * cout), cin, cout);
        tile += 2;
    }
    if tile < tiles {
        block::<CV, 1>(u.add(tile * cin), v, m.add(tile * cout), cin, cout);
    }
}

/// `R` tiles' `16·CV` output channels: `m[r] = Σ_c u[r·cin + c] · v[group][c]`, with
/// `V`'s groups of 16 channels `16·cin` floats apart.
///
/// # Safety
///
/// As [`group_products`], with tiles `t .. t + R` inside the band.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const CV: usize, const R: usize>(
    u: *const f32,
    v: *const f32,
    m: *mut f32,
    cin: usize,
    cout: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); CV]; R];
    for c in 0..cin {
        let mut wv = [_mm512_setzero_ps(); CV];
        for (g, w) in wv.iter_mut().enumerate() {
            *w = _mm512_loadu_ps(v.add(g * GROUP * cin + c * GROUP));
        }
        for (r, a) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*u.add(r * cin + c));
            for g in 0..CV {
                a[g] = _mm512_fmadd_ps(x, wv[g], a[g]);
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (g, &value) in a.iter().enumerate() {
            _mm512_storeu_ps(m.add(r * cout + g * GROUP), value);
        }
    }
}

/// `dV[ξ] += U[ξ]ᵀ · D[ξ]` for the tile's positions: blocks of 8 input channels × 32 output
/// channels (16 accumulators), or 16 × 16 for a last single group, summed over the band's
/// tiles.
///
/// # Safety
///
/// The CPU has AVX-512F; `u` and `d` hold the tile's position blocks of `tiles` tiles and `dv` the
/// transformed weights' length.
#[target_feature(enable = "avx512f")]
pub unsafe fn weight_products(band: &Band, tiles: usize, u: &[f32], d: &[f32], dv: &mut [f32]) {
    let (cin, cout) = (band.g.cin, band.g.cout);
    for xi in 0..band.tile.positions() {
        let u = u.as_ptr().add(xi * position_stride(tiles, cin));
        let d = d.as_ptr().add(xi * position_stride(tiles, cout));
        let dv = dv.as_mut_ptr().add(xi * cin * cout);
        let mut co0 = 0;
        while co0 + 2 * GROUP <= cout {
            // `cin` is a multiple of 8.
            for ci in (0..cin).step_by(8) {
                outer::<2, 8>(
                    u.add(ci),
                    d.add(co0),
                    dv.add(ci * cout + co0),
                    tiles,
                    cin,
                    cout,
                );
            }
            co0 += 2 * GROUP;
        }
        if co0 < cout {
            let mut ci = 0;
            while ci + 16 <= cin {
                outer::<1, 16>(
                    u.add(ci),
                    d.add(co0),
                    dv.add(ci * cout + co0),
                    tiles,
                    cin,
                    cout,
                );
                ci += 16;
            }
            if ci < cin {
                outer::<1, 8>(
                    u.add(ci),
                    d.add(co0),
                    dv.add(ci * cout + co0),
                    tiles,
                    cin,
                    cout,
                );
            }
        }
    }
}

/// `dv[c][..16·CV] += Σ_t u[t·cin + c] · d[t·cout ..][..16·CV]` for `C` input channels.
///
/// # Safety
///
/// As [`weight_products`], with channels `c .. c + C` inside `cin` and `16·CV` output
/// channels inside `cout`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn outer<const CV: usize, const C: usize>(
    u: *const f32,
    d: *const f32,
    dv: *mut f32,
    tiles: usize,
    cin: usize,
    cout: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); CV]; C];
    for t in 0..tiles {
        let mut dt = [_mm512_setzero_ps(); CV];
        for (v, value) in dt.iter_mut().enumerate() {
            *value = _mm512_loadu_ps(d.add(t * cout + 16 * v));
        }
        for (c, a) in acc.iter_mut().enumerate() {
            let uv = _mm512_set1_ps(*u.add(t * cin + c));
            for v in 0..CV {
                a[v] = _mm512_fmadd_ps(uv, dt[v], a[v]);
            }
        }
    }
    for (c, a) in acc.iter().enumerate() {
        for (v, &value) in a.iter().enumerate() {
            let at = dv.add(c * cout + 16 * v);
            _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), value));
        }
    }
}
