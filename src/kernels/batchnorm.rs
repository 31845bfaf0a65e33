//! Train-mode BatchNorm over NHWC activations, fused with what follows it in a block (an
//! optional residual add and ReLU), as one candle custom op with its own backward. Built from
//! candle's elementwise ops the same layer costs about ten passes forward and twenty backward
//! over the activation, and dominated training time; here it is two forward (statistics,
//! normalise) and two backward (reductions, input gradient).

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::{cpu_f32, written_buffer};

/// Rows (pixels) per parallel task.
const CHUNK_ROWS: usize = 1024;

/// Per-channel mean and biased variance of an NHWC activation's rows (f64 accumulation).
pub fn batch_stats(x: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    let channels = x.dim(candle_core::D::Minus1)?;
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("fused BatchNorm runs on the CPU only")
    };
    let data = cpu_f32(cpu, layout, "fused BatchNorm")?;
    let rows = data.len() / channels.max(1);
    let chunk = CHUNK_ROWS * channels;
    let sums = channel_sums(data.len(), chunk, channels, |range, acc| {
        let (sum, sq) = acc.split_at_mut(channels);
        rows::sums(&data[range], sum, sq)
    });
    let n = rows.max(1) as f64;
    let mean: Vec<f64> = sums[..channels].iter().map(|s| s / n).collect();
    let var = sums[channels..]
        .iter()
        .zip(&mean)
        .map(|(sq, m)| (sq / n - m * m).max(0.0) as f32)
        .collect();
    Ok((mean.into_iter().map(|m| m as f32).collect(), var))
}

/// Two sums per channel over the rows of an activation of `len` values, `chunk` values (whole
/// rows) at a time: `accumulate(range, acc)` adds one chunk in f32 (at most CHUNK_ROWS terms,
/// so the loop vectorises), and chunks combine in f64, in a fixed order.
fn channel_sums<F>(len: usize, chunk: usize, channels: usize, accumulate: F) -> Vec<f64>
where
    F: Fn(std::ops::Range<usize>, &mut [f32]) + Sync + Send,
{
    let chunk = chunk.max(1);
    super::ordered_sum(len.div_ceil(chunk), 2 * channels, |i, total: &mut [f64]| {
        let mut acc = vec![0.0f32; 2 * channels];
        accumulate(i * chunk..((i + 1) * chunk).min(len), &mut acc);
        for (t, a) in total.iter_mut().zip(&acc) {
            *t += *a as f64;
        }
    })
}

/// `act(γ·(x − mean)·invstd + β [+ residual])` with the batch's statistics fixed at
/// construction; operands `x [.., C]`, `γβ [2, C]` (γ row 0, β row 1) and the residual.
pub struct BatchNormAct {
    mean: Vec<f32>,
    invstd: Vec<f32>,
    relu: bool,
}

impl BatchNormAct {
    pub fn new(mean: Vec<f32>, var: &[f32], eps: f64, relu: bool) -> Self {
        let invstd = var
            .iter()
            .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
            .collect();
        Self { mean, invstd, relu }
    }

    fn channels(&self) -> usize {
        self.mean.len()
    }

    fn forward(
        &self,
        (xs, xl): (&CpuStorage, &Layout),
        (gs, gl): (&CpuStorage, &Layout),
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let c = self.channels();
        if gl.shape().dims() != [2, c] || xl.shape().dims().last() != Some(&c) {
            bail!(
                "fused BatchNorm: {:?} / {:?} for {c} channels",
                xl.shape(),
                gl.shape()
            )
        }
        let x = cpu_f32(xs, xl, "fused BatchNorm")?;
        let gb = cpu_f32(gs, gl, "fused BatchNorm")?;
        let scale: Vec<f32> = (0..c).map(|i| gb[i] * self.invstd[i]).collect();
        let shift: Vec<f32> = (0..c)
            .map(|i| gb[c + i] - self.mean[i] * scale[i])
            .collect();
        let residual = match residual {
            Some((rs, rl)) if rl.shape() == xl.shape() => Some(cpu_f32(rs, rl, "fused BatchNorm")?),
            Some((_, rl)) => bail!(
                "fused BatchNorm: residual {:?} vs {:?}",
                rl.shape(),
                xl.shape()
            ),
            None => None,
        };
        // `normalise` writes every element of its chunk.
        let y = written_buffer(x.len(), |y| {
            y.par_chunks_mut(CHUNK_ROWS * c)
                .zip(x.par_chunks(CHUNK_ROWS * c))
                .enumerate()
                .for_each(|(t, (yc, xc))| {
                    let residual = residual.map(|r| &r[t * CHUNK_ROWS * c..][..yc.len()]);
                    rows::normalise(xc, &scale, &shift, residual, self.relu, yc)
                })
        });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    /// `(dx, dγβ [2, C], d(pre-activation))`; the last is also the residual's gradient, and
    /// is computed only when `with_residual_grad`.
    fn backward(
        &self,
        x: &Tensor,
        gb: &Tensor,
        out: &Tensor,
        dout: &Tensor,
        with_residual_grad: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let c = self.channels();
        let (x, out, dout) = (x.contiguous()?, out.contiguous()?, dout.contiguous()?);
        let gamma = gb.get(0)?.to_vec1::<f32>()?;
        let (xg, xl) = x.storage_and_layout();
        let (og, ol) = out.storage_and_layout();
        let (dg, dl) = dout.storage_and_layout();
        let (Storage::Cpu(xs), Storage::Cpu(os), Storage::Cpu(ds)) = (&*xg, &*og, &*dg) else {
            bail!("fused BatchNorm runs on the CPU only")
        };
        let (xv, ov, dv) = (
            cpu_f32(xs, xl, "fused BatchNorm")?,
            cpu_f32(os, ol, "fused BatchNorm")?,
            cpu_f32(ds, dl, "fused BatchNorm")?,
        );
        let relu = self.relu;
        let chunk = CHUNK_ROWS * c;
        let sums = channel_sums(dv.len(), chunk, c, |range, acc| {
            let (sum_g, sum_gx) = acc.split_at_mut(c);
            let (dc, oc, xc) = (&dv[range.clone()], &ov[range.clone()], &xv[range]);
            rows::grad_sums(dc, oc, xc, &self.mean, &self.invstd, relu, sum_g, sum_gx)
        });
        let rows = (xv.len() / c.max(1)).max(1) as f32;
        let dbeta: Vec<f32> = sums[..c].iter().map(|&s| s as f32).collect();
        let dgamma: Vec<f32> = sums[c..].iter().map(|&s| s as f32).collect();
        let k: Vec<f32> = (0..c).map(|i| gamma[i] * self.invstd[i] / rows).collect();
        let fill = |dx: &mut [f32], g: &mut [f32]| {
            let mut g_chunks: Vec<&mut [f32]> = g.chunks_mut(chunk).collect();
            g_chunks.resize_with(dx.len().div_ceil(chunk.max(1)), Default::default);
            dx.par_chunks_mut(chunk)
                .zip(g_chunks.into_par_iter())
                .zip(
                    dv.par_chunks(chunk)
                        .zip(ov.par_chunks(chunk))
                        .zip(xv.par_chunks(chunk)),
                )
                .for_each(|((dxc, gc), ((dc, oc), xc))| {
                    let per_channel = rows::DxCoefficients {
                        k: &k,
                        dbeta: &dbeta,
                        dgamma: &dgamma,
                        mean: &self.mean,
                        invstd: &self.invstd,
                        rows,
                    };
                    rows::input_grad(&per_channel, dc, oc, xc, relu, dxc, gc)
                });
        };
        // `input_grad` writes every element of `dx`, and of `g` when it has one.
        let g_len = if with_residual_grad { xv.len() } else { 0 };
        let mut g = Vec::new();
        let dx = written_buffer(xv.len(), |dx| {
            g = written_buffer(g_len, |g| fill(dx, g));
        });
        let shape = x.shape().clone();
        let device = x.device();
        let dgb = Tensor::from_vec([dgamma, dbeta].concat(), (2, c), device)?;
        let dres = if with_residual_grad {
            Some(Tensor::from_vec(g, shape.clone(), device)?)
        } else {
            None
        };
        Ok((Tensor::from_vec(dx, shape, device)?, dgb, dres))
    }
}

impl CustomOp2 for BatchNormAct {
    fn name(&self) -> &'static str {
        "batch-norm-nhwc-act"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward((xs, xl), (gs, gl), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        gb: &Tensor,
        out: &Tensor,
        dout: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dgb, _) = self.backward(x, gb, out, dout, false)?;
        Ok((Some(dx), Some(dgb)))
    }
}

impl CustomOp3 for BatchNormAct {
    fn name(&self) -> &'static str {
        "batch-norm-nhwc-residual-act"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward((xs, xl), (gs, gl), Some((rs, rl)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gb: &Tensor,
        _residual: &Tensor,
        out: &Tensor,
        dout: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dgb, dres) = self.backward(x, gb, out, dout, true)?;
        Ok((Some(dx), Some(dgb), dres))
    }
}

/// The per-row loops, over plain slices so that LLVM vectorises them, each built for the
/// widest SIMD the CPU has ([`wide_fn!`]).
mod rows {
    /// `g = dL/d(pre-activation)`: the ReLU passes the gradient where its output is positive.
    #[inline(always)]
    fn grad(relu: bool, d: f32, o: f32) -> f32 {
        if !relu || o > 0.0 {
            d
        } else {
            0.0
        }
    }

    wide_fn! {
        /// Per-channel sums of `x` and `x²` over the rows of `chunk`.
        pub fn sums(chunk: &[f32], sum: &mut [f32], sq: &mut [f32]) {
            let c = sum.len();
            for row in chunk.chunks_exact(c) {
                for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(row) {
                    *s += v;
                    *q += v * v;
                }
            }
        }
    }

    wide_fn! {
        /// `y = act(x·scale + shift [+ residual])`, per channel.
        pub fn normalise(
            x: &[f32],
            scale: &[f32],
            shift: &[f32],
            residual: Option<&[f32]>,
            relu: bool,
            y: &mut [f32],
        ) {
            let c = scale.len();
            for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                for (((y, &x), &s), &b) in yr.iter_mut().zip(xr).zip(scale).zip(shift) {
                    *y = x * s + b;
                }
            }
            if let Some(r) = residual {
                for (v, r) in y.iter_mut().zip(r) {
                    *v += r;
                }
            }
            if relu {
                for v in y.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    }

    wide_fn! {
        /// Per-channel `Σ g` and `Σ g·x̂` over the rows (the gradients of β and γ).
        #[allow(clippy::too_many_arguments)]
        pub fn grad_sums(
            dout: &[f32],
            out: &[f32],
            x: &[f32],
            mean: &[f32],
            invstd: &[f32],
            relu: bool,
            sum_g: &mut [f32],
            sum_gx: &mut [f32],
        ) {
            let c = mean.len();
            // Every slice's length bounded by `n`, so the indexing below needs no checks.
            let n = c.min(invstd.len()).min(sum_g.len()).min(sum_gx.len());
            for ((dr, or), xr) in dout
                .chunks_exact(c)
                .zip(out.chunks_exact(c))
                .zip(x.chunks_exact(c))
            {
                for i in 0..n.min(dr.len()).min(or.len()).min(xr.len()) {
                    let g = grad(relu, dr[i], or[i]);
                    sum_g[i] += g;
                    sum_gx[i] += g * (xr[i] - mean[i]) * invstd[i];
                }
            }
        }
    }

    /// The per-channel terms of the input gradient `dx = k·(rows·g − dβ − x̂·dγ)`.
    pub struct DxCoefficients<'a> {
        pub k: &'a [f32],
        pub dbeta: &'a [f32],
        pub dgamma: &'a [f32],
        pub mean: &'a [f32],
        pub invstd: &'a [f32],
        pub rows: f32,
    }

    wide_fn! {
        /// `dx` over the rows, and `g` itself into `g_out` unless it is empty.
        pub fn input_grad(
            coef: &DxCoefficients<'_>,
            dout: &[f32],
            out: &[f32],
            x: &[f32],
            relu: bool,
            dx: &mut [f32],
            g_out: &mut [f32],
        ) {
            let DxCoefficients { k, dbeta, dgamma, mean, invstd, rows } = *coef;
            let c = k.len();
            let n = c
                .min(dbeta.len())
                .min(dgamma.len())
                .min(mean.len())
                .min(invstd.len());
            for ((dxr, dr), (or, xr)) in dx
                .chunks_exact_mut(c)
                .zip(dout.chunks_exact(c))
                .zip(out.chunks_exact(c).zip(x.chunks_exact(c)))
            {
                for i in 0..n.min(dxr.len()).min(dr.len()).min(or.len()).min(xr.len()) {
                    let xhat = (xr[i] - mean[i]) * invstd[i];
                    dxr[i] = k[i] * (rows * grad(relu, dr[i], or[i]) - dbeta[i] - xhat * dgamma[i]);
                }
            }
            if !g_out.is_empty() {
                for ((g, &d), &o) in g_out.iter_mut().zip(dout).zip(out) {
                    *g = grad(relu, d, o);
                }
            }
        }
    }
}
