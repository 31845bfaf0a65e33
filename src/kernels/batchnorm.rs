//! Train-mode BatchNorm over NHWC activations, fused with what follows it in a block (an
//! optional residual add and ReLU), as one candle custom op with its own backward. Built from
//! candle's elementwise ops the same layer costs about ten passes forward and twenty backward
//! over the activation, and dominated training time; here it is two forward (statistics,
//! normalise) and two backward (reductions, input gradient).

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::cpu_f32;

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
    let sums = channel_sums(
        data.par_chunks(CHUNK_ROWS * channels),
        channels,
        |chunk, acc| {
            let (sum, sq) = acc.split_at_mut(channels);
            for row in chunk.chunks_exact(channels) {
                for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(row) {
                    *s += v;
                    *q += v * v;
                }
            }
        },
    );
    let n = rows.max(1) as f64;
    let mean: Vec<f64> = sums[..channels].iter().map(|s| s / n).collect();
    let var = sums[channels..]
        .iter()
        .zip(&mean)
        .map(|(sq, m)| (sq / n - m * m).max(0.0) as f32)
        .collect();
    Ok((mean.into_iter().map(|m| m as f32).collect(), var))
}

/// Two sums per channel over the rows: each chunk accumulates in f32 (at most CHUNK_ROWS
/// terms, so the loop vectorises), and chunks combine in f64.
fn channel_sums<T, I, F>(chunks: I, channels: usize, accumulate: F) -> Vec<f64>
where
    I: ParallelIterator<Item = T>,
    F: Fn(T, &mut [f32]) + Sync + Send,
{
    let zeros = || vec![0.0f64; 2 * channels];
    chunks
        .fold(zeros, |mut total, chunk| {
            let mut acc = vec![0.0f32; 2 * channels];
            accumulate(chunk, &mut acc);
            for (t, a) in total.iter_mut().zip(&acc) {
                *t += *a as f64;
            }
            total
        })
        .reduce(zeros, |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
            a
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
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(CHUNK_ROWS * c)
            .zip(x.par_chunks(CHUNK_ROWS * c))
            .enumerate()
            .for_each(|(t, (yc, xc))| {
                for (yr, xr) in yc.chunks_exact_mut(c).zip(xc.chunks_exact(c)) {
                    for i in 0..c {
                        yr[i] = xr[i] * scale[i] + shift[i];
                    }
                }
                if let Some(r) = residual {
                    let (start, len) = (t * CHUNK_ROWS * c, yc.len());
                    for (v, r) in yc.iter_mut().zip(&r[start..start + len]) {
                        *v += r;
                    }
                }
                if self.relu {
                    for v in yc.iter_mut() {
                        *v = v.max(0.0);
                    }
                }
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
        // g = dL/d(pre-activation): the ReLU passes the gradient where its output is positive.
        let grad = move |d: f32, o: f32| if !relu || o > 0.0 { d } else { 0.0 };
        let chunk = CHUNK_ROWS * c;
        let sums = channel_sums(
            dv.par_chunks(chunk)
                .zip(ov.par_chunks(chunk))
                .zip(xv.par_chunks(chunk)),
            c,
            |((dc, oc), xc), acc| {
                let (sum_g, sum_gx) = acc.split_at_mut(c);
                for ((dr, or), xr) in dc
                    .chunks_exact(c)
                    .zip(oc.chunks_exact(c))
                    .zip(xc.chunks_exact(c))
                {
                    for i in 0..c {
                        let g = grad(dr[i], or[i]);
                        sum_g[i] += g;
                        sum_gx[i] += g * (xr[i] - self.mean[i]) * self.invstd[i];
                    }
                }
            },
        );
        let rows = (xv.len() / c.max(1)).max(1) as f32;
        let dbeta: Vec<f32> = sums[..c].iter().map(|&s| s as f32).collect();
        let dgamma: Vec<f32> = sums[c..].iter().map(|&s| s as f32).collect();
        let k: Vec<f32> = (0..c).map(|i| gamma[i] * self.invstd[i] / rows).collect();
        let mut dx = vec![0.0f32; xv.len()];
        let mut g = if with_residual_grad {
            vec![0.0f32; xv.len()]
        } else {
            Vec::new()
        };
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
                for (r, ((dxr, dr), (or, xr))) in dxc
                    .chunks_exact_mut(c)
                    .zip(dc.chunks_exact(c))
                    .zip(oc.chunks_exact(c).zip(xc.chunks_exact(c)))
                    .enumerate()
                {
                    for i in 0..c {
                        let g = grad(dr[i], or[i]);
                        let xhat = (xr[i] - self.mean[i]) * self.invstd[i];
                        dxr[i] = k[i] * (rows * g - dbeta[i] - xhat * dgamma[i]);
                        if !gc.is_empty() {
                            gc[r * c + i] = g;
                        }
                    }
                }
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
