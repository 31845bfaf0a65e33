//! The x86 kernel templates written once and stamped out per instruction set (AVX2, AVX-512):
//! the same loops over that set's vectors. Each path's module invokes them with its vector
//! type and intrinsics.

/// A block's accumulators start at its channels' bias (`start`), and end with the residual
/// added, ReLU and the store (`finish`): written once, stamped out per instruction set.
macro_rules! block_ends {
    ($feature:literal, $lanes:literal, $vec:ty, $zero:ident, $load:ident, $store:ident,
     $add:ident, $max:ident) => {
        /// A block's accumulators, each pixel's starting at the group's bias.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `job.bias`, when given, holds `job.co0 + CV·lanes` floats.
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

        /// Stores a block's accumulators at pixels `ox ..` of the row, with the residual added
        /// and ReLU applied when the job asks.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `dst` and `job.residual` hold the row's pixels
        /// `ox .. ox + R`, `job.g.cout` floats each.
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
macro_rules! weight_grad_kernel {
    ($feature:literal, $lanes:literal, $zero:ident, $load:ident, $store:ident, $set1:ident,
     $fma:ident, $add:ident) => {
        /// Adds the weight gradient of `images` to `dw`: for each kernel tap and block of `CB`
        /// input channels, `CB × CV` vectors of accumulators over every valid output pixel.
        ///
        /// # Safety
        ///
        /// As [`crate::kernels::paths::DirectKernels::weight`], with `$feature` for the path;
        /// `cin` a multiple of `CB` and `cout` of `CV·lanes`.
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

/// The Winograd F(2×2, 3×3) transforms (the method: `crate::kernels::winograd`), written once
/// and stamped out per instruction set: the input tiles' `Bᵀ d B`, the output's `Aᵀ m A` with
/// the epilogue, and the output gradient's `A dY Aᵀ`, each over a range of a band's tiles,
/// `$lanes` channels a vector. `$load_in` and `$store_in` move one vector of input channels
/// (`(pointer, first channel, channels)`: a path may mask a short last group).
macro_rules! winograd_transforms {
    ($feature:literal, $lanes:literal, $vec:ty, $zero:ident, $load:ident, $store:ident,
     $add:ident, $sub:ident, $max:ident, $load_in:ident, $store_in:ident) => {
        /// One output vector at `offset` of the band's rows (`dst`): `value` plus `bias`, the
        /// residual and ReLU as the epilogue asks. Shared with the F(4×4) transforms.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `dst` and the epilogue's residual hold the band's output
        /// rows, `offset` and `$lanes` floats from it inside them.
        #[target_feature(enable = $feature)]
        #[inline]
        pub unsafe fn store_output(
            band: &Band,
            epilogue: Epilogue,
            bias: $vec,
            offset: usize,
            value: $vec,
            dst: &mut [f32],
        ) {
            let mut value = $add(value, bias);
            if let Some(res) = epilogue.residual {
                let global = band.first_row * band.out_w * band.g.cout + offset;
                value = $add(value, $load(res.as_ptr().add(global)));
            }
            if epilogue.relu {
                value = $max(value, $zero());
            }
            $store(dst.as_mut_ptr().add(offset), value);
        }

        /// `U[ξ][i] = (Bᵀ d B)[ξ]` for the band's tiles `tiles` (`i` counted from its start).
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `band.window` holds the band's padded input rows, `tiles`
        /// lies within the band, and `u` holds 16 position blocks of `tiles.len() × cin`
        /// floats.
        #[target_feature(enable = $feature)]
        pub unsafe fn transform_input(band: &Band, tiles: Range<usize>, u: &mut [f32]) {
            let cin = band.g.cin;
            let window = band.window.as_ptr();
            let u = u.as_mut_ptr();
            let stride = position_stride(tiles.len(), cin);
            for (local, tile) in tiles.enumerate() {
                let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
                let corner = window.add((2 * r * band.width + 2 * t) * cin);
                for c0 in (0..cin).step_by($lanes) {
                    let mut d = [[$zero(); 4]; 4];
                    for (i, row) in d.iter_mut().enumerate() {
                        for (j, dij) in row.iter_mut().enumerate() {
                            *dij = $load_in(corner.add((i * band.width + j) * cin + c0), c0, cin);
                        }
                    }
                    // Bᵀ d, column by column.
                    let mut bd = [[$zero(); 4]; 4];
                    for j in 0..4 {
                        bd[0][j] = $sub(d[0][j], d[2][j]);
                        bd[1][j] = $add(d[1][j], d[2][j]);
                        bd[2][j] = $sub(d[2][j], d[1][j]);
                        bd[3][j] = $sub(d[1][j], d[3][j]);
                    }
                    // (Bᵀ d) B, row by row.
                    let at = u.add(local * cin + c0);
                    for (i, row) in bd.iter().enumerate() {
                        let out = [
                            $sub(row[0], row[2]),
                            $add(row[1], row[2]),
                            $sub(row[2], row[1]),
                            $sub(row[1], row[3]),
                        ];
                        for (j, value) in out.into_iter().enumerate() {
                            $store_in(at.add((i * 4 + j) * stride), c0, cin, value);
                        }
                    }
                }
            }
        }

        /// The output pixels of the band's tiles `tiles` from `M`: `Y = Aᵀ m A` per tile,
        /// then the bias, the residual and ReLU; pixels of a tile outside the output are
        /// dropped.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `tiles` lies within the band; `m` holds 16 position blocks
        /// of `tiles.len() × cout` products; `dst` and the epilogue's residual hold the band's
        /// output rows and `bias`, when given, `cout` floats.
        #[target_feature(enable = $feature)]
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
            let zero = $zero();
            for (local, tile) in tiles.enumerate() {
                let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
                for co0 in (0..cout).step_by($lanes) {
                    let at = m.add(local * cout + co0);
                    let mut mv = [[zero; 4]; 4];
                    for (i, row) in mv.iter_mut().enumerate() {
                        for (j, mij) in row.iter_mut().enumerate() {
                            *mij = $load(at.add((i * 4 + j) * stride));
                        }
                    }
                    // Aᵀ m, column by column, then (Aᵀ m) A.
                    let mut s = [[zero; 4]; 2];
                    for j in 0..4 {
                        s[0][j] = $add($add(mv[0][j], mv[1][j]), mv[2][j]);
                        s[1][j] = $sub($sub(mv[1][j], mv[2][j]), mv[3][j]);
                    }
                    let bias = match epilogue.bias {
                        Some(b) => $load(b.as_ptr().add(co0)),
                        None => zero,
                    };
                    for (a, row) in s.iter().enumerate() {
                        let oy = 2 * r + a;
                        if oy >= rows {
                            continue;
                        }
                        let y = [
                            $add($add(row[0], row[1]), row[2]),
                            $sub($sub(row[1], row[2]), row[3]),
                        ];
                        for (b, value) in y.into_iter().enumerate() {
                            let ox = 2 * t + b;
                            if ox >= band.out_w {
                                continue;
                            }
                            let offset = oy * row_len + ox * cout + co0;
                            store_output(band, epilogue, bias, offset, value, dst);
                        }
                    }
                }
            }
        }

        /// `D[ξ][i] = (A dY Aᵀ)[ξ]` for the band's tiles `tiles` (`dy` holds the band's rows);
        /// pixels outside the output count as zero.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `tiles` lies within the band; `dy` holds the band's
        /// output-gradient rows and `d` 16 position blocks of `tiles.len() × cout` floats.
        #[target_feature(enable = $feature)]
        pub unsafe fn transform_output_grad(
            band: &Band,
            tiles: Range<usize>,
            dy: &[f32],
            d: &mut [f32],
        ) {
            let cout = band.g.cout;
            let row_len = band.out_w * cout;
            let stride = position_stride(tiles.len(), cout);
            let (dy, d) = (dy.as_ptr(), d.as_mut_ptr());
            let zero = $zero();
            for (local, tile) in tiles.enumerate() {
                let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
                for co0 in (0..cout).step_by($lanes) {
                    let mut g = [[zero; 2]; 2];
                    for (a, row) in g.iter_mut().enumerate() {
                        for (b, gab) in row.iter_mut().enumerate() {
                            let (oy, ox) = (2 * r + a, 2 * t + b);
                            if oy < band.rows && ox < band.out_w {
                                *gab = $load(dy.add(oy * row_len + ox * cout + co0));
                            }
                        }
                    }
                    // A g, column by column: rows g0, g0 + g1, g0 − g1, −g1.
                    let mut e = [[zero; 2]; 4];
                    for b in 0..2 {
                        e[0][b] = g[0][b];
                        e[1][b] = $add(g[0][b], g[1][b]);
                        e[2][b] = $sub(g[0][b], g[1][b]);
                        e[3][b] = $sub(zero, g[1][b]);
                    }
                    // (A g) Aᵀ, row by row.
                    let at = d.add(local * cout + co0);
                    for (i, row) in e.iter().enumerate() {
                        let out = [
                            row[0],
                            $add(row[0], row[1]),
                            $sub(row[0], row[1]),
                            $sub(zero, row[1]),
                        ];
                        for (j, value) in out.into_iter().enumerate() {
                            $store(at.add((i * 4 + j) * stride), value);
                        }
                    }
                }
            }
        }
    };
}

/// The Winograd F(4×4, 3×3) transforms (the method: `crate::kernels::winograd::f4`), written
/// once and stamped out per instruction set, `$lanes` channels a vector, the multiply-adds of
/// `Bᵀ` and `Aᵀ` as FMAs: the input tiles' `Bᵀ d B`, the output's `Aᵀ m A` with the
/// epilogue and the output gradient's `A dY Aᵀ`, each over a range of a band's tiles.
/// `$load_in` and `$store_in` as in [`winograd_transforms`], `$store_output` its output store.
macro_rules! winograd_f4_transforms {
    ($feature:literal, $lanes:literal, $vec:ty, $zero:ident, $load:ident, $store:ident,
     $add:ident, $sub:ident, $max:ident, $fmadd:ident, $fnmadd:ident, $set1:ident,
     $load_in:ident, $store_in:ident, $store_output:ident) => {
        /// Positions along a transformed tile's side.
        const SIDE: usize = 6;

        /// `Bᵀ d` for one column (or, on the transposed side, `d B` for one row) of six values.
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn bt(d: [$vec; SIDE]) -> [$vec; SIDE] {
            let (two, four, five) = ($set1(2.0), $set1(4.0), $set1(5.0));
            let d42 = $sub(d[4], d[2]);
            [
                // 4d0 − 5d2 + d4
                $fmadd(four, d[0], $fnmadd(five, d[2], d[4])),
                // −4(d1 + d2) + (d3 + d4)
                $fnmadd(four, $add(d[1], d[2]), $add(d[3], d[4])),
                // 4(d1 − d2) + (d4 − d3)
                $fmadd(four, $sub(d[1], d[2]), $sub(d[4], d[3])),
                // 2(d3 − d1) + (d4 − d2)
                $fmadd(two, $sub(d[3], d[1]), d42),
                // 2(d1 − d3) + (d4 − d2)
                $fmadd(two, $sub(d[1], d[3]), d42),
                // 4d1 − 5d3 + d5
                $fmadd(four, d[1], $fnmadd(five, d[3], d[5])),
            ]
        }

        /// `Aᵀ m` for one column (or `m A` for one row) of six values.
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn at(m: [$vec; SIDE]) -> [$vec; 4] {
            let (two, four, eight) = ($set1(2.0), $set1(4.0), $set1(8.0));
            let (sum12, diff12) = ($add(m[1], m[2]), $sub(m[1], m[2]));
            let (sum34, diff34) = ($add(m[3], m[4]), $sub(m[3], m[4]));
            [
                $add($add(m[0], sum12), sum34),
                $fmadd(two, diff34, diff12),
                $fmadd(four, sum34, sum12),
                $add($fmadd(eight, diff34, diff12), m[5]),
            ]
        }

        /// `U[ξ][i] = (Bᵀ d B)[ξ]` for the band's tiles `tiles` (`i` counted from its start).
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `band.window` holds the band's padded input rows for 4×4 tiles,
        /// `tiles` lies within the band, and `u` holds 36 position blocks of `tiles.len() × cin`
        /// floats.
        #[target_feature(enable = $feature)]
        pub unsafe fn transform_input(band: &Band, tiles: Range<usize>, u: &mut [f32]) {
            let cin = band.g.cin;
            let window = band.window.as_ptr();
            let u = u.as_mut_ptr();
            let stride = position_stride(tiles.len(), cin);
            for (local, tile) in tiles.enumerate() {
                let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
                let corner = window.add((4 * r * band.width + 4 * t) * cin);
                for c0 in (0..cin).step_by($lanes) {
                    // Bᵀ d, column by column.
                    let mut bd = [[$zero(); SIDE]; SIDE];
                    for j in 0..SIDE {
                        let mut column = [$zero(); SIDE];
                        for (i, value) in column.iter_mut().enumerate() {
                            *value = $load_in(corner.add((i * band.width + j) * cin + c0), c0, cin);
                        }
                        for (i, value) in bt(column).into_iter().enumerate() {
                            bd[i][j] = value;
                        }
                    }
                    // (Bᵀ d) B, row by row.
                    let at = u.add(local * cin + c0);
                    for (i, row) in bd.into_iter().enumerate() {
                        for (j, value) in bt(row).into_iter().enumerate() {
                            $store_in(at.add((i * SIDE + j) * stride), c0, cin, value);
                        }
                    }
                }
            }
        }

        /// The output pixels of the band's tiles `tiles` from `M`: `Y = Aᵀ m A` per tile, then the
        /// bias, the residual and ReLU; pixels of a tile outside the output are dropped.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `tiles` lies within the band; `m` holds 36 position blocks of
        /// `tiles.len() × cout` products; `dst` and the epilogue's residual hold the band's output
        /// rows and `bias`, when given, `cout` floats.
        #[target_feature(enable = $feature)]
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
            let zero = $zero();
            for (local, tile) in tiles.enumerate() {
                let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
                for co0 in (0..cout).step_by($lanes) {
                    let from = m.add(local * cout + co0);
                    // Aᵀ m, column by column.
                    let mut am = [[zero; SIDE]; 4];
                    for j in 0..SIDE {
                        let mut column = [zero; SIDE];
                        for (i, value) in column.iter_mut().enumerate() {
                            *value = $load(from.add((i * SIDE + j) * stride));
                        }
                        for (i, value) in at(column).into_iter().enumerate() {
                            am[i][j] = value;
                        }
                    }
                    let bias = match epilogue.bias {
                        Some(b) => $load(b.as_ptr().add(co0)),
                        None => zero,
                    };
                    // (Aᵀ m) A, row by row.
                    for (a, row) in am.into_iter().enumerate() {
                        let oy = 4 * r + a;
                        if oy >= rows {
                            break;
                        }
                        for (b, value) in at(row).into_iter().enumerate() {
                            let ox = 4 * t + b;
                            if ox >= band.out_w {
                                break;
                            }
                            let offset = oy * row_len + ox * cout + co0;
                            $store_output(band, epilogue, bias, offset, value, dst);
                        }
                    }
                }
            }
        }

        /// `A g` for one column of four values (or `g Aᵀ` for one row): six values.
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn a_column(g: [$vec; 4]) -> [$vec; SIDE] {
            let (four, eight) = ($set1(4.0), $set1(8.0));
            let (even, odd) = ($add(g[0], g[2]), $add(g[1], g[3]));
            // g0 + 4g2 and 2g1 + 8g3.
            let (even4, odd8) = (
                $fmadd(four, g[2], g[0]),
                $fmadd(eight, g[3], $add(g[1], g[1])),
            );
            [
                g[0],
                $add(even, odd),
                $sub(even, odd),
                $add(even4, odd8),
                $sub(even4, odd8),
                g[3],
            ]
        }

        /// `D[ξ][i] = (A dY Aᵀ)[ξ]` for the band's tiles `tiles` (`dy` holds the band's rows);
        /// pixels outside the output count as zero.
        ///
        /// # Safety
        ///
        /// The CPU has `$feature`; `tiles` lies within the band; `dy` holds the band's
        /// output-gradient rows and `d` 36 position blocks of `tiles.len() × cout` floats.
        #[target_feature(enable = $feature)]
        pub unsafe fn transform_output_grad(
            band: &Band,
            tiles: Range<usize>,
            dy: &[f32],
            d: &mut [f32],
        ) {
            let cout = band.g.cout;
            let row_len = band.out_w * cout;
            let stride = position_stride(tiles.len(), cout);
            let (dy, d) = (dy.as_ptr(), d.as_mut_ptr());
            let zero = $zero();
            for (local, tile) in tiles.enumerate() {
                let (r, t) = (tile / band.tiles_wide, tile % band.tiles_wide);
                for co0 in (0..cout).step_by($lanes) {
                    // A g, column by column.
                    let mut ag = [[zero; 4]; SIDE];
                    for b in 0..4 {
                        let mut column = [zero; 4];
                        for (a, value) in column.iter_mut().enumerate() {
                            let (oy, ox) = (4 * r + a, 4 * t + b);
                            if oy < band.rows && ox < band.out_w {
                                *value = $load(dy.add(oy * row_len + ox * cout + co0));
                            }
                        }
                        for (i, value) in a_column(column).into_iter().enumerate() {
                            ag[i][b] = value;
                        }
                    }
                    // (A g) Aᵀ, row by row.
                    let at = d.add(local * cout + co0);
                    for (i, row) in ag.into_iter().enumerate() {
                        for (j, value) in a_column(row).into_iter().enumerate() {
                            $store(at.add((i * SIDE + j) * stride), value);
                        }
                    }
                }
            }
        }
    };
}
