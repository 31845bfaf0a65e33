//! Replacing rows of a batch: the gather executor's way back from a sub-batch. candle's
//! `index_add` needs the update as a difference (one more elementwise pass, which costs more
//! than the copy itself on the CPU); this writes the rows in place of the old ones, with a
//! backward pass for training, or, at inference, into the batch's own storage.

use candle_core::{bail, CpuStorage, CustomOp2, InplaceOp2, Layout, Result, Shape, Tensor};

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
    let index_tensor = Tensor::new(index, base.device())?;
    let old = base.index_select(&index_tensor, 0)?;
    base.index_add(&index_tensor, &(rows - old)?, 0)
}
