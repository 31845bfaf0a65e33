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
