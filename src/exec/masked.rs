use candle_core::{bail, Result, Tensor};

use crate::exec::{check_policies, gather_kept, keepers};
use crate::kernels::rows::{pick_rows, replace_rows};

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

/// Below this share of keepers, [`forward_masked_sparse`] runs a block on its keepers only.
const SPARSE_BELOW: f64 = 0.75;

/// The masked forward for training that computes less: a block no image keeps is skipped, a
/// block every image keeps runs on the batch, and a block fewer than three quarters of the
/// images keep runs on those images only (index_select in, its rows replaced out; gradients
/// flow through both). Otherwise it blends like [`forward_masked`].
///
/// In train mode a sub-batch block's BatchNorm normalises by its keepers' statistics, where
/// the reference's masked forward uses the whole batch's (its dropped images' outputs are
/// discarded either way).
pub fn forward_masked_sparse(
    net: &FlatResNet,
    x: &Tensor,
    keep: &[Vec<bool>],
    train: bool,
) -> Result<Tensor> {
    let n = x.dim(0)?;
    check_policies(net, keep, n)?;
    let mut x = net.stem(x, train)?;
    for block in 0..net.num_blocks() {
        let keepers = keepers(keep, block);
        let residual = net.residual(block, &x, train)?;
        x = if keepers.is_empty() {
            residual
        } else if keepers.len() == n {
            net.block_output(block, &x, &residual, train)?
        } else if (keepers.len() as f64) < SPARSE_BELOW * n as f64 && keepers.len() > 1 {
            let (kept_input, kept_residual) = gather_kept(&x, &residual, &keepers)?;
            let kept = net.block_output(block, &kept_input, &kept_residual, train)?;
            replace_rows(&residual, &keepers, &kept)?
        } else {
            let fx = net.block_output(block, &x, &residual, train)?;
            let bits: Vec<bool> = keep.iter().map(|policy| policy[block]).collect();
            pick_rows(&fx, &residual, &bits)?
        };
    }
    net.head(&x)
}
