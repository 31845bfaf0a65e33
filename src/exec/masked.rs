use candle_core::{bail, Result, Tensor};

use crate::model::FlatResNet;

/// The reference's batched forward: every block runs for the whole batch and its output is
/// blended with the residual by the per-image keep bit, `x = fx·m + residual·(1 − m)`.
/// Gradients flow through both paths, which is what training needs; a block no image keeps
/// is not computed at all (the reference's early exit).
///
/// `keep` is `[N, K]`, 0/1 as f32 (or any value in between, blended alike).
pub fn forward_masked(net: &FlatResNet, x: &Tensor, keep: &Tensor, train: bool) -> Result<Tensor> {
    let (n, k) = keep.dims2()?;
    if k != net.num_blocks() || n != x.dim(0)? {
        bail!(
            "keep mask {:?} does not fit {n} images and {} blocks",
            keep.dims(),
            net.num_blocks()
        )
    }
    let column_sums = keep.sum(0)?.to_vec1::<f32>()?;
    let mut x = net.stem(x, train)?;
    for (block, &column_sum) in column_sums.iter().enumerate() {
        let residual = net.residual(block, &x, train)?;
        if column_sum == 0.0 {
            x = residual;
            continue;
        }
        let mask = keep.narrow(1, block, 1)?.reshape((n, 1, 1, 1))?;
        let fx = net.block_output(block, &x, &residual, train)?;
        let keep_part = fx.broadcast_mul(&mask)?;
        let drop_part = residual.broadcast_mul(&(1.0 - &mask)?)?;
        x = (keep_part + drop_part)?;
    }
    net.head(&x)
}
