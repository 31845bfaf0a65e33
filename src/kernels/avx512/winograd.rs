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
use crate::kernels::winograd::{position_stride, Band, GROUP, POSITIONS};

/// The lanes of the 16-channel group from `c0` that lie inside `channels` (a multiple of 8).
#[inline]
fn lanes(c0: usize, channels: usize) -> __mmask16 {
    if channels - c0 >= 16 {
        0xFFFF
    } else {
        0x00FF
    }
}

/// `U[ξ][i] = (Bᵀ d B)[ξ]` for the band's tiles `tiles` (`i` counted from its start), 16
/// channels at a time.
///
/// # Safety
///
/// The CPU has AVX-512F; `band.window` holds the band's padded input rows, `tiles` lies
/// within the band, and `u` holds 16 position blocks of `tiles.len() × cin` floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn transform_input(band: &Band, tiles: Range<usize>, u: &mut [f32]) {
    let cin = band.g.cin;
    let window = band.window.as_ptr();
    let u = u.as_mut_ptr();
    let stride = position_stride(tiles.len(), cin);
    for (local, tile) in tiles.enumerate() {
        let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
        let corner = window.add((2 * r * band.width + 2 * t) * cin);
        for c0 in (0..cin).step_by(16) {
            let mask = lanes(c0, cin);
            let mut d = [[_mm512_setzero_ps(); 4]; 4];
            for (i, row) in d.iter_mut().enumerate() {
                for (j, dij) in row.iter_mut().enumerate() {
                    *dij = _mm512_maskz_loadu_ps(mask, corner.add((i * band.width + j) * cin + c0));
                }
            }
            // Bᵀ d, column by column.
            let mut bd = [[_mm512_setzero_ps(); 4]; 4];
            for j in 0..4 {
                bd[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
                bd[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
                bd[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
                bd[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
            }
            // (Bᵀ d) B, row by row.
            let at = u.add(local * cin + c0);
            for (i, row) in bd.iter().enumerate() {
                let out = [
                    _mm512_sub_ps(row[0], row[2]),
                    _mm512_add_ps(row[1], row[2]),
                    _mm512_sub_ps(row[2], row[1]),
                    _mm512_sub_ps(row[1], row[3]),
                ];
                for (j, value) in out.into_iter().enumerate() {
                    _mm512_mask_storeu_ps(at.add((i * 4 + j) * stride), mask, value);
                }
            }
        }
    }
}

/// `M[ξ] = U[ξ] · V[ξ]` for the 16 positions: blocks of 14 tiles × 32 output channels (two
/// of `V`'s groups of 16) in registers, or 28 tiles × 16 for a last single group; shorter
/// blocks at the band's end.
///
/// # Safety
///
/// The CPU has AVX-512F; `u`, `v` and `m` hold 16 position blocks (`tiles × cin`, `cin ×
/// cout`, `tiles × cout`).
#[target_feature(enable = "avx512f")]
pub unsafe fn products(band: &Band, tiles: usize, u: &[f32], v: &[f32], m: &mut [f32]) {
    let (cin, cout) = (band.g.cin, band.g.cout);
    for xi in 0..POSITIONS {
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

/// The output pixels of the band's tiles `tiles` from `M`: `Y = Aᵀ m A` per tile, 16
/// channels at a time, then the bias, the residual and ReLU; pixels of a tile outside the
/// output are dropped.
///
/// # Safety
///
/// The CPU has AVX-512F; `tiles` lies within the band; `m` holds 16 position blocks of
/// `tiles.len() × cout` products; `dst` and the epilogue's residual hold the band's output
/// rows and `bias`, when given, `cout` floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn transform_output(
    band: &Band,
    tiles: Range<usize>,
    m: &[f32],
    epilogue: Epilogue,
    dst: &mut [f32],
) {
    let cout = band.g.cout;
    let row_len = band.out_w * cout;
    let rows = dst.len() / row_len;
    let stride = position_stride(tiles.len(), cout);
    let m = m.as_ptr();
    let zero = _mm512_setzero_ps();
    for (local, tile) in tiles.enumerate() {
        let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
        for co0 in (0..cout).step_by(16) {
            let at = m.add(local * cout + co0);
            let mut mv = [[zero; 4]; 4];
            for (i, row) in mv.iter_mut().enumerate() {
                for (j, mij) in row.iter_mut().enumerate() {
                    *mij = _mm512_loadu_ps(at.add((i * 4 + j) * stride));
                }
            }
            // Aᵀ m, column by column, then (Aᵀ m) A.
            let mut s = [[zero; 4]; 2];
            for j in 0..4 {
                s[0][j] = _mm512_add_ps(_mm512_add_ps(mv[0][j], mv[1][j]), mv[2][j]);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(mv[1][j], mv[2][j]), mv[3][j]);
            }
            let bias = match epilogue.bias {
                Some(b) => _mm512_loadu_ps(b.as_ptr().add(co0)),
                None => zero,
            };
            for (a, row) in s.iter().enumerate() {
                let oy = 2 * r + a;
                if oy >= rows {
                    continue;
                }
                let y = [
                    _mm512_add_ps(_mm512_add_ps(row[0], row[1]), row[2]),
                    _mm512_sub_ps(_mm512_sub_ps(row[1], row[2]), row[3]),
                ];
                for (b, mut value) in y.into_iter().enumerate() {
                    let ox = 2 * t + b;
                    if ox >= band.out_w {
                        continue;
                    }
                    let offset = oy * row_len + ox * cout + co0;
                    value = _mm512_add_ps(value, bias);
                    if let Some(res) = epilogue.residual {
                        let global = band.first_row * row_len + offset;
                        value = _mm512_add_ps(value, _mm512_loadu_ps(res.as_ptr().add(global)));
                    }
                    if epilogue.relu {
                        value = _mm512_max_ps(value, zero);
                    }
                    _mm512_storeu_ps(dst.as_mut_ptr().add(offset), value);
                }
            }
        }
    }
}

/// `D[ξ][i] = (A dY Aᵀ)[ξ]` for the band's tiles `tiles` (`dy` holds the band's rows), 16
/// channels at a time; pixels outside the output count as zero.
///
/// # Safety
///
/// The CPU has AVX-512F; `tiles` lies within the band; `dy` holds the band's
/// output-gradient rows and `d` 16 position blocks of `tiles.len() × cout` floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn transform_output_grad(band: &Band, tiles: Range<usize>, dy: &[f32], d: &mut [f32]) {
    let cout = band.g.cout;
    let row_len = band.out_w * cout;
    let stride = position_stride(tiles.len(), cout);
    let (dy, d) = (dy.as_ptr(), d.as_mut_ptr());
    let zero = _mm512_setzero_ps();
    for (local, tile) in tiles.enumerate() {
        let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
        for co0 in (0..cout).step_by(16) {
            let mut g = [[zero; 2]; 2];
            for (a, row) in g.iter_mut().enumerate() {
                for (b, gab) in row.iter_mut().enumerate() {
                    let (oy, ox) = (2 * r + a, 2 * t + b);
                    if oy < band.rows && ox < band.out_w {
                        *gab = _mm512_loadu_ps(dy.add(oy * row_len + ox * cout + co0));
                    }
                }
            }
            // A g, column by column: rows g0, g0 + g1, g0 − g1, −g1.
            let mut e = [[zero; 2]; 4];
            for b in 0..2 {
                e[0][b] = g[0][b];
                e[1][b] = _mm512_add_ps(g[0][b], g[1][b]);
                e[2][b] = _mm512_sub_ps(g[0][b], g[1][b]);
                e[3][b] = _mm512_sub_ps(zero, g[1][b]);
            }
            // (A g) Aᵀ, row by row.
            let at = d.add(local * cout + co0);
            for (i, row) in e.iter().enumerate() {
                let out = [
                    row[0],
                    _mm512_add_ps(row[0], row[1]),
                    _mm512_sub_ps(row[0], row[1]),
                    _mm512_sub_ps(zero, row[1]),
                ];
                for (j, value) in out.into_iter().enumerate() {
                    _mm512_storeu_ps(at.add((i * 4 + j) * stride), value);
                }
            }
        }
    }
}

/// `dV[ξ] += U[ξ]ᵀ · D[ξ]` for the 16 positions: blocks of 8 input channels × 32 output
/// channels (16 accumulators), or 16 × 16 for a last single group, summed over the band's
/// tiles.
///
/// # Safety
///
/// The CPU has AVX-512F; `u` and `d` hold 16 position blocks of `tiles` tiles and `dv` the
/// transformed weights' length.
#[target_feature(enable = "avx512f")]
pub unsafe fn weight_products(band: &Band, tiles: usize, u: &[f32], d: &[f32], dv: &mut [f32]) {
    let (cin, cout) = (band.g.cin, band.g.cout);
    for xi in 0..POSITIONS {
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
