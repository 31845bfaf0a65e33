//! Replacing rows of a batch: the gather executor's way back from a sub-batch. candle's
//! `index_add` needs the update as a difference (one more elementwise pass, which costs more
//! than the copy itself on the CPU); this writes the rows in place of the old ones, with a
//! backward pass for training, or, at inference, into the batch's own storage. And picking
//! each row from one of two batches ([`pick_rows`]), the masked executor's blend by 0/1 keep
//! bits in one pass instead of four.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, InplaceOp2, Layout, Result, Shape, Tensor,
};

use super::cpu_f32;

/// `base` with row `index[j]` (along dim 0) replaced by row `j` of `rows`.
struct ReplaceRows(Vec<u32>);

impl CustomOp2 for ReplaceRows {
    fn name(&self) -> &'static str {
        "replace-rows"
    }

    fn cpu_fwd(
        &self,
        bs: &CpuStorage,
        bl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let base = cpu_f32(bs, bl, "replace_rows")?;
        let rows = cpu_f32(rs, rl, "replace_rows")?;
        let n = bl.shape().dims().first().copied().unwrap_or(0);
        let row = base.len().checked_div(n).unwrap_or(0);
        if rl.shape().dims()[1..] != bl.shape().dims()[1..] || rows.len() != self.0.len() * row {
            bail!(
                "replace_rows: {:?} rows do not fit {:?}",
                rl.shape(),
                bl.shape()
            )
        }
        let mut out = base.to_vec();
        write_rows(&self.0, row, rows, &mut out)?;
        Ok((CpuStorage::F32(out), bl.shape().clone()))
    }

    /// The replaced rows pass no gradient to `base`; `rows` get theirs.
    fn bwd(
        &self,
        _base: &Tensor,
        rows: &Tensor,
        _out: &Tensor,
        dout: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let index = Tensor::new(self.0.as_slice(), dout.device())?;
        let d_rows = dout.index_select(&index, 0)?;
        let d_base = dout
            .contiguous()?
            .apply_op2_no_bwd(&rows.zeros_like()?, &ReplaceRows(self.0.clone()))?;
        Ok((Some(d_base), Some(d_rows)))
    }
}

/// Copies row `j` of `rows` over row `index[j]` of `dst` (rows of `row` elements each).
fn write_rows(index: &[u32], row: usize, rows: &[f32], dst: &mut [f32]) -> Result<()> {
    let n = dst.len().checked_div(row).unwrap_or(0);
    for (j, &i) in index.iter().enumerate() {
        let i = i as usize;
        if i >= n {
            bail!("replace_rows: row {i} of {n}")
        }
        dst[i * row..(i + 1) * row].copy_from_slice(&rows[j * row..(j + 1) * row]);
    }
    Ok(())
}

impl InplaceOp2 for ReplaceRows {
    fn name(&self) -> &'static str {
        "replace-rows-in-place"
    }

    fn cpu_fwd(
        &self,
        bs: &mut CpuStorage,
        bl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<()> {
        let rows = cpu_f32(rs, rl, "replace_rows")?;
        let (Some((start, end)), CpuStorage::F32(base)) = (bl.contiguous_offsets(), bs) else {
            bail!("replace_rows: the base must be contiguous f32")
        };
        let n = bl.shape().dims().first().copied().unwrap_or(0);
        let row = (end - start).checked_div(n).unwrap_or(0);
        if rl.shape().dims()[1..] != bl.shape().dims()[1..] || rows.len() != self.0.len() * row {
            bail!(
                "replace_rows: {:?} rows do not fit {:?}",
                rl.shape(),
                bl.shape()
            )
        }
        write_rows(&self.0, row, rows, &mut base[start..end])
    }
}

/// [`replace_rows`] for inference, writing into `base`'s own storage when it can (contiguous
/// f32 on the CPU): copies only the replaced rows, not the whole batch. `base` must not share
/// its storage with a tensor the caller still reads, and gets no gradient.
pub fn replace_rows_in_place(base: Tensor, index: &[u32], rows: &Tensor) -> Result<Tensor> {
    if base.device().is_cpu() && base.dtype() == candle_core::DType::F32 && base.is_contiguous() {
        base.inplace_op2(&rows.contiguous()?, &ReplaceRows(index.to_vec()))?;
        return Ok(base);
    }
    replace_rows(&base, index, rows)
}

/// `base` with rows `index` replaced by `rows`, with autograd (f32 on the CPU; elsewhere
/// through `index_add` of the difference).
pub fn replace_rows(base: &Tensor, index: &[u32], rows: &Tensor) -> Result<Tensor> {
    if base.device().is_cpu() && base.dtype() == candle_core::DType::F32 {
        return base
            .contiguous()?
            .apply_op2(&rows.contiguous()?, ReplaceRows(index.to_vec()));
    }
    replace_rows_generic(base, index, rows)
}

/// [`replace_rows`] with candle's operators: the path of every device but the CPU.
pub(crate) fn replace_rows_generic(base: &Tensor, index: &[u32], rows: &Tensor) -> Result<Tensor> {
    let index_tensor = Tensor::new(index, base.device())?;
    let old = base.index_select(&index_tensor, 0)?;
    base.index_add(&index_tensor, &(rows - old)?, 0)
}

/// Row `i` of `kept` where `keep[i]`, else row `i` of `dropped`; both `[N, ..]` alike.
struct PickRows(Vec<bool>);

/// Rows of `[N, ..]` split into `N` equal runs, checked against the keep bits.
fn row_len(keep: &[bool], layout: &Layout, op: &str) -> Result<usize> {
    let n = layout.shape().dims().first().copied().unwrap_or(0);
    if n != keep.len() {
        bail!("{op}: {} keep bits for {n} rows", keep.len())
    }
    Ok(layout.shape().elem_count().checked_div(n).unwrap_or(0))
}

impl CustomOp2 for PickRows {
    fn name(&self) -> &'static str {
        "pick-rows"
    }

    fn cpu_fwd(
        &self,
        ks: &CpuStorage,
        kl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if kl.shape() != dl.shape() {
            bail!("pick_rows: {:?} vs {:?}", kl.shape(), dl.shape())
        }
        let row = row_len(&self.0, kl, "pick_rows")?;
        let (kept, dropped) = (cpu_f32(ks, kl, "pick_rows")?, cpu_f32(ds, dl, "pick_rows")?);
        let mut out = Vec::with_capacity(kept.len());
        for (i, &keep) in self.0.iter().enumerate() {
            let from = if keep { kept } else { dropped };
            out.extend_from_slice(&from[i * row..(i + 1) * row]);
        }
        Ok((CpuStorage::F32(out), kl.shape().clone()))
    }

    fn bwd(
        &self,
        _kept: &Tensor,
        _dropped: &Tensor,
        _out: &Tensor,
        dout: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dout = dout.contiguous()?;
        let d_kept = dout.apply_op1_no_bwd(&ZeroRows(self.0.iter().map(|k| !k).collect()))?;
        let d_dropped = dout.apply_op1_no_bwd(&ZeroRows(self.0.clone()))?;
        Ok((Some(d_kept), Some(d_dropped)))
    }
}

/// A copy with row `i` zeroed where `zero[i]`.
struct ZeroRows(Vec<bool>);

impl CustomOp1 for ZeroRows {
    fn name(&self) -> &'static str {
        "zero-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let row = row_len(&self.0, l, "zero_rows")?;
        let x = cpu_f32(s, l, "zero_rows")?;
        let mut out = Vec::with_capacity(x.len());
        for (i, &zero) in self.0.iter().enumerate() {
            if zero {
                out.resize(out.len() + row, 0.0);
            } else {
                out.extend_from_slice(&x[i * row..(i + 1) * row]);
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Row `i` of `kept` where `keep[i]`, else row `i` of `dropped`, with autograd: the blend
/// `kept·m + dropped·(1 − m)` for 0/1 bits `m` (f32 on the CPU; elsewhere that blend).
pub fn pick_rows(kept: &Tensor, dropped: &Tensor, keep: &[bool]) -> Result<Tensor> {
    if kept.device().is_cpu() && kept.dtype() == candle_core::DType::F32 {
        return kept
            .contiguous()?
            .apply_op2(&dropped.contiguous()?, PickRows(keep.to_vec()));
    }
    pick_rows_generic(kept, dropped, keep)
}

/// [`pick_rows`] with candle's operators: the path of every device but the CPU.
pub(crate) fn pick_rows_generic(kept: &Tensor, dropped: &Tensor, keep: &[bool]) -> Result<Tensor> {
    let n = keep.len();
    let bits: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
    let mut shape = vec![1; kept.rank()];
    shape[0] = n;
    let m = Tensor::from_vec(bits, shape, kept.device())?.to_dtype(kept.dtype())?;
    kept.broadcast_mul(&m)? + dropped.broadcast_mul(&(1.0 - &m)?)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The CPU kernels and the path accelerators take (candle's operators) agree, values and
    /// gradients alike, so a CUDA run computes what the CPU does.
    #[test]
    fn the_accelerator_path_equals_the_cpu_kernels() {
        let device = Device::Cpu;
        let base = Var::randn(0f32, 1.0, (5, 3, 2), &device).unwrap();
        let rows = Var::randn(0f32, 1.0, (2, 3, 2), &device).unwrap();
        let index = [3u32, 0];
        // Image 0 drops: it takes `replaced`'s row 0, which is `rows`' row 1.
        let keep = [false, false, false, true, true];
        let close = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
        };
        let weights = Tensor::randn(0f32, 1.0, (5, 3, 2), &device).unwrap();
        for generic in [false, true] {
            let replaced = if generic {
                replace_rows_generic(base.as_tensor(), &index, rows.as_tensor())
            } else {
                replace_rows(base.as_tensor(), &index, rows.as_tensor())
            }
            .unwrap();
            let picked = if generic {
                pick_rows_generic(base.as_tensor(), &replaced, &keep)
            } else {
                pick_rows(base.as_tensor(), &replaced, &keep)
            }
            .unwrap();
            let grads = (picked.clone() * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (gb, gr) = (grads.get(&base).unwrap(), grads.get(&rows).unwrap());
            if generic {
                let cpu_replaced =
                    replace_rows(base.as_tensor(), &index, rows.as_tensor()).unwrap();
                close(&replaced, &cpu_replaced);
                close(
                    &picked,
                    &pick_rows(base.as_tensor(), &cpu_replaced, &keep).unwrap(),
                );
            }
            // d/d base: kept rows from `base` directly, the others through `replaced`, whose
            // rows 3 and 0 came from `rows`.
            let expected_base: Vec<f32> = (0..5)
                .flat_map(|i| {
                    let w = weights
                        .get(i)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap();
                    let through_replaced = !keep[i] && !index.contains(&(i as u32));
                    w.into_iter()
                        .map(move |v| if keep[i] || through_replaced { v } else { 0.0 })
                })
                .collect();
            assert_eq!(
                gb.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                expected_base
            );
            // `rows`' row 1 reaches image 0; row 0 went to image 3, which keeps `base`.
            let w0 = weights
                .get(0)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let expected_rows: Vec<f32> = vec![0.0; 6].into_iter().chain(w0).collect();
            assert_eq!(
                gr.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                expected_rows
            );
        }
    }
}
