//! The AVX2 Winograd F(2×2, 3×3) kernels: the input and output transforms 8 channels a
//! vector, the 16 position products on the direct kernel's 6 × 16 register block, and the
//! weight gradient's products over tiles.

use std::arch::x86_64::*;

use crate::kernels::geometry::Epilogue;
use crate::kernels::winograd::{position_stride, Band, GROUP, POSITIONS};

/// `U[ξ][tile] = (Bᵀ d B)[ξ]` for every tile of the band, 8 channels at a time.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `band.window` holds the band's padded input rows and `u` its
/// 16 position blocks of `tiles × cin` floats (as `crate::kernels::winograd` sizes them).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transform_input(band: &Band, u: &mut [f32]) {
    let cin = band.g.cin;
    let window = band.window.as_ptr();
    let u = u.as_mut_ptr();
    let stride = position_stride(band.tiles, cin);
    for tile in 0..band.tiles {
        let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
        let corner = window.add((2 * r * band.width + 2 * t) * cin);
        for c0 in (0..cin).step_by(8) {
            let mut d = [[_mm256_setzero_ps(); 4]; 4];
            for (i, row) in d.iter_mut().enumerate() {
                for (j, dij) in row.iter_mut().enumerate() {
                    *dij = _mm256_loadu_ps(corner.add((i * band.width + j) * cin + c0));
                }
            }
            // Bᵀ d, column by column.
            let mut bd = [[_mm256_setzero_ps(); 4]; 4];
            for j in 0..4 {
                bd[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
                bd[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
                bd[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
                bd[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
            }
            // (Bᵀ d) B, row by row.
            let at = u.add(tile * cin + c0);
            for (i, row) in bd.iter().enumerate() {
                let out = [
                    _mm256_sub_ps(row[0], row[2]),
                    _mm256_add_ps(row[1], row[2]),
                    _mm256_sub_ps(row[2], row[1]),
                    _mm256_sub_ps(row[1], row[3]),
                ];
                for (j, value) in out.into_iter().enumerate() {
                    _mm256_storeu_ps(at.add((i * 4 + j) * stride), value);
                }
            }
        }
    }
}

/// `M[ξ] = U[ξ] · V[ξ]` for the 16 positions: blocks of 6 tiles × 16 output channels in
/// registers, the direct kernel's inner loop over the input channels.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `u`, `v` and `m` hold the band's 16 position blocks (`tiles ×
/// cin`, `cin × cout`, `tiles × cout`), as `crate::kernels::winograd` sizes them.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn products(band: &Band, u: &[f32], v: &[f32], m: &mut [f32]) {
    let (cin, cout, tiles) = (band.g.cin, band.g.cout, band.tiles);
    for xi in 0..POSITIONS {
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

/// The band's output rows from `M`: `Y = Aᵀ m A` per tile, 8 channels at a time, then the
/// bias, the residual and ReLU; pixels of a tile outside the output are dropped.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `m` holds the band's 16 position blocks of products; `dst`
/// and the epilogue's residual hold the band's output rows and `bias`, when given, `cout`
/// floats.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transform_output(band: &Band, m: &[f32], epilogue: Epilogue, dst: &mut [f32]) {
    let cout = band.g.cout;
    let row_len = band.out_w * cout;
    let rows = dst.len() / row_len;
    let stride = position_stride(band.tiles, cout);
    let m = m.as_ptr();
    let zero = _mm256_setzero_ps();
    for tile in 0..band.tiles {
        let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
        for co0 in (0..cout).step_by(8) {
            let at = m.add(tile * cout + co0);
            let mut mv = [[zero; 4]; 4];
            for (i, row) in mv.iter_mut().enumerate() {
                for (j, mij) in row.iter_mut().enumerate() {
                    *mij = _mm256_loadu_ps(at.add((i * 4 + j) * stride));
                }
            }
            // Aᵀ m, column by column, then (Aᵀ m) A.
            let mut s = [[zero; 4]; 2];
            for j in 0..4 {
                s[0][j] = _mm256_add_ps(_mm256_add_ps(mv[0][j], mv[1][j]), mv[2][j]);
                s[1][j] = _mm256_sub_ps(_mm256_sub_ps(mv[1][j], mv[2][j]), mv[3][j]);
            }
            let bias = match epilogue.bias {
                Some(b) => _mm256_loadu_ps(b.as_ptr().add(co0)),
                None => zero,
            };
            for (a, row) in s.iter().enumerate() {
                let oy = 2 * r + a;
                if oy >= rows {
                    continue;
                }
                let y = [
                    _mm256_add_ps(_mm256_add_ps(row[0], row[1]), row[2]),
                    _mm256_sub_ps(_mm256_sub_ps(row[1], row[2]), row[3]),
                ];
                for (b, mut value) in y.into_iter().enumerate() {
                    let ox = 2 * t + b;
                    if ox >= band.out_w {
                        continue;
                    }
                    let offset = oy * row_len + ox * cout + co0;
                    value = _mm256_add_ps(value, bias);
                    if let Some(res) = epilogue.residual {
                        let global = band.first_row * row_len + offset;
                        value = _mm256_add_ps(value, _mm256_loadu_ps(res.as_ptr().add(global)));
                    }
                    if epilogue.relu {
                        value = _mm256_max_ps(value, zero);
                    }
                    _mm256_storeu_ps(dst.as_mut_ptr().add(offset), value);
                }
            }
        }
    }
}

/// `D[ξ][tile] = (A dY Aᵀ)[ξ]` for every tile of the band (`dy` holds the band's rows),
/// 8 channels at a time; pixels outside the output count as zero.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `dy` holds the band's output-gradient rows and `d` its 16
/// position blocks of `tiles × cout` floats.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transform_output_grad(band: &Band, dy: &[f32], d: &mut [f32]) {
    let cout = band.g.cout;
    let row_len = band.out_w * cout;
    let stride = position_stride(band.tiles, cout);
    let (dy, d) = (dy.as_ptr(), d.as_mut_ptr());
    let zero = _mm256_setzero_ps();
    for tile in 0..band.tiles {
        let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
        for co0 in (0..cout).step_by(8) {
            let mut g = [[zero; 2]; 2];
            for (a, row) in g.iter_mut().enumerate() {
                for (b, gab) in row.iter_mut().enumerate() {
                    let (oy, ox) = (2 * r + a, 2 * t + b);
                    if oy < band.rows && ox < band.out_w {
                        *gab = _mm256_loadu_ps(dy.add(oy * row_len + ox * cout + co0));
                    }
                }
            }
            // A g, column by column: rows g0, g0 + g1, g0 − g1, −g1.
            let mut e = [[zero; 2]; 4];
            for b in 0..2 {
                e[0][b] = g[0][b];
                e[1][b] = _mm256_add_ps(g[0][b], g[1][b]);
                e[2][b] = _mm256_sub_ps(g[0][b], g[1][b]);
                e[3][b] = _mm256_sub_ps(zero, g[1][b]);
            }
            // (A g) Aᵀ, row by row.
            let at = d.add(tile * cout + co0);
            for (i, row) in e.iter().enumerate() {
                let out = [
                    row[0],
                    _mm256_add_ps(row[0], row[1]),
                    _mm256_sub_ps(row[0], row[1]),
                    _mm256_sub_ps(zero, row[1]),
                ];
                for (j, value) in out.into_iter().enumerate() {
                    _mm256_storeu_ps(at.add((i * 4 + j) * stride), value);
                }
            }
        }
    }
}

/// `dV[ξ] += U[ξ]ᵀ · D[ξ]` for the 16 positions: blocks of 6 input channels × 16 output
/// channels in registers, summed over the band's tiles.
///
/// # Safety
///
/// The CPU has AVX2 and FMA; `u` and `d` hold the band's 16 position blocks and `dv` the
/// transformed weights' length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weight_products(band: &Band, u: &[f32], d: &[f32], dv: &mut [f32]) {
    let (cin, cout, tiles) = (band.g.cin, band.g.cout, band.tiles);
    for xi in 0..POSITIONS {
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
