//! Pooling over NHWC activations as custom ops with backward: the option-A shortcut
//! (average-pool by the stride, then zero channels appended) and the global average pool of the
//! head. Built from candle's reshapes and strided reductions they cost as much as a whole
//! block; here each is one pass.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_f32;

/// `[N, H, W, C] → [N, H/s, W/s, C + extra]`: the mean of each s×s window (floor on odd
/// sizes, as `AvgPool2d`), then `extra` zero channels.
#[derive(Debug, Clone, Copy)]
pub struct ShortcutA {
    pub stride: usize,
    pub extra: usize,
}

impl CustomOp1 for ShortcutA {
    fn name(&self) -> &'static str {
        "shortcut-a-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(storage, layout, "pooling")?;
        let (n, h, w, c) = layout.shape().dims4()?;
        let s = self.stride;
        let (oh, ow, oc) = (h / s, w / s, c + self.extra);
        let out = super::written_buffer(n * oh * ow * oc, |out| {
            shortcut_a_into(x, (n, h, w, c), *self, out)
        });
        Ok((CpuStorage::F32(out), Shape::from((n, oh, ow, oc))))
    }

    fn bwd(&self, x: &Tensor, _out: &Tensor, dout: &Tensor) -> Result<Option<Tensor>> {
        let grad = ShortcutAGrad {
            op: *self,
            input: x.dims4()?,
        };
        Ok(Some(dout.contiguous()?.apply_op1_no_bwd(&grad)?))
    }
}

/// The option-A shortcut's input gradient: each window's gradient spread evenly over it.
struct ShortcutAGrad {
    op: ShortcutA,
    input: (usize, usize, usize, usize),
}

impl CustomOp1 for ShortcutAGrad {
    fn name(&self) -> &'static str {
        "shortcut-a-nhwc-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dout = cpu_f32(storage, layout, "pooling")?;
        let (n, h, w, c) = self.input;
        let s = self.op.stride;
        let (oh, ow, oc) = (h / s, w / s, c + self.op.extra);
        if layout.shape().dims() != [n, oh, ow, oc] {
            bail!(
                "shortcut gradient {:?} does not fit {:?}",
                layout.shape(),
                self.input
            )
        }
        let scale = 1.0 / (s * s) as f32;
        let mut dx = vec![0.0f32; n * h * w * c];
        dx.par_chunks_mut(w * c).enumerate().for_each(|(row, dst)| {
            let (img, y) = (row / h.max(1), row % h.max(1));
            let oy = y / s;
            if oy >= oh {
                return;
            }
            for x in 0..(ow * s) {
                let at = ((img * oh + oy) * ow + x / s) * oc;
                for (d, g) in dst[x * c..(x + 1) * c].iter_mut().zip(&dout[at..at + c]) {
                    *d = g * scale;
                }
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from(self.input)))
    }
}

/// `[N, H, W, C] → [N, C]`: the mean over every position.
#[derive(Debug, Clone, Copy)]
pub struct GlobalAvgPool;

impl CustomOp1 for GlobalAvgPool {
    fn name(&self) -> &'static str {
        "global-avg-pool-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(storage, layout, "pooling")?;
        let (n, h, w, c) = layout.shape().dims4()?;
        let out = super::written_buffer(n * c, |out| global_avg_pool_into(x, (n, h, w, c), out));
        Ok((CpuStorage::F32(out), Shape::from((n, c))))
    }

    fn bwd(&self, x: &Tensor, _out: &Tensor, dout: &Tensor) -> Result<Option<Tensor>> {
        let (n, h, w, c) = x.dims4()?;
        let spread = (dout.reshape((n, 1, 1, c))? / (h * w) as f64)?;
        Ok(Some(spread.broadcast_as((n, h, w, c))?.contiguous()?))
    }
}

/// `[N, H, W, C] → [N, ⌊(H−1)/2⌋+1, ⌊(W−1)/2⌋+1, C]`: the ImageNet stem's max-pool, 3×3 windows
/// at stride 2 with one pixel of padding that never wins (as PyTorch's −∞ padding). One pass
/// and one output buffer, where padding, pooling and relayouting with candle's ops made three
/// copies of the stem's largest activation. Inference only: it has no backward.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool3x3S2;

impl CustomOp1 for MaxPool3x3S2 {
    fn name(&self) -> &'static str {
        "max-pool-3x3-s2-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(storage, layout, "pooling")?;
        let (n, h, w, c) = layout.shape().dims4()?;
        if h == 0 || w == 0 {
            bail!("max-pool of an empty {h}x{w} map");
        }
        let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        let mut out = vec![f32::NEG_INFINITY; n * oh * ow * c];
        out.par_chunks_mut((ow * c).max(1))
            .enumerate()
            .for_each(|(row, dst)| {
                let (image, oy) = (row / oh, row % oh);
                let rows = (2 * oy).saturating_sub(1)..(2 * oy + 2).min(h);
                for y in rows {
                    let line = &x[(image * h + y) * w * c..][..w * c];
                    for (ox, pixel) in dst.chunks_exact_mut(c).enumerate() {
                        for xx in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(w) {
                            for (o, &v) in pixel.iter_mut().zip(&line[xx * c..][..c]) {
                                // NaN passes through, as in PyTorch.
                                if v > *o || v.is_nan() {
                                    *o = v;
                                }
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n, oh, ow, c))))
    }
}

/// [`ShortcutA`] of `x` (`[n, h, w, c]`) into `out` (`[n, h/s, w/s, c + extra]`), every
/// element written.
pub fn shortcut_a_into(
    x: &[f32],
    (n, h, w, c): (usize, usize, usize, usize),
    op: ShortcutA,
    out: &mut [f32],
) {
    let s = op.stride;
    let (oh, ow, oc) = (h / s, w / s, c + op.extra);
    let scale = 1.0 / (s * s) as f32;
    out[..n * oh * ow * oc]
        .par_chunks_mut((ow * oc).max(1))
        .enumerate()
        .for_each(|(row, dst)| {
            let (img, oy) = (row / oh.max(1), row % oh.max(1));
            for (ox, pixel) in dst.chunks_exact_mut(oc.max(1)).enumerate() {
                pixel.fill(0.0);
                let d = &mut pixel[..c];
                for dy in 0..s {
                    for dx in 0..s {
                        let at = ((img * h + oy * s + dy) * w + ox * s + dx) * c;
                        for (o, v) in d.iter_mut().zip(&x[at..at + c]) {
                            *o += v;
                        }
                    }
                }
                for o in d.iter_mut() {
                    *o *= scale;
                }
            }
        });
}

/// [`GlobalAvgPool`] of `x` (`[n, h, w, c]`) into `out` (`[n, c]`), every element written.
pub fn global_avg_pool_into(
    x: &[f32],
    (n, h, w, c): (usize, usize, usize, usize),
    out: &mut [f32],
) {
    let scale = 1.0 / (h * w).max(1) as f32;
    let out = &mut out[..n * c];
    out.fill(0.0);
    out.par_chunks_mut(c.max(1))
        .zip(x.par_chunks((h * w * c).max(1)))
        .for_each(|(dst, image)| {
            for pixel in image.chunks_exact(c) {
                for (o, v) in dst.iter_mut().zip(pixel) {
                    *o += v;
                }
            }
            for o in dst.iter_mut() {
                *o *= scale;
            }
        });
}

/// The ImageNet stem's max-pool of an NHWC activation ([`MaxPool3x3S2`]); no autograd.
pub fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool3x3S2)
}

/// The option-A shortcut of an NHWC activation ([`ShortcutA`]), with autograd.
pub fn shortcut_a(x: &Tensor, stride: usize, extra: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(ShortcutA { stride, extra })
}

/// The global average pool of an NHWC activation to `[N, C]`, with autograd.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(GlobalAvgPool)
}
