use candle_core::{Result, Tensor};

use crate::exec::{check_policies, gather_kept, keepers};
use crate::kernels::rows::replace_rows_in_place;
use crate::model::FlatResNet;

/// Runs a batch with per-image policies block by block: each block runs only on the images
/// that keep it (gathered with `index_select`), and its outputs replace the residual at those
/// rows; images that drop it carry the residual on. Inference only (training uses
/// [`crate::exec::forward_masked_sparse`]).
pub fn forward_gather(net: &FlatResNet, x: &Tensor, keep: &[Vec<bool>]) -> Result<Tensor> {
    let n = x.dim(0)?;
    check_policies(net, keep, n)?;
    let mut x = net.stem(x, false)?;
    for block in 0..net.num_blocks() {
        let keepers = keepers(keep, block);
        x = if keepers.len() == n {
            net.run_block(block, &x, false)?
        } else {
            let residual = net.residual(block, &x, false)?;
            if keepers.is_empty() {
                residual
            } else {
                let (kept_input, kept_residual) = gather_kept(&x, &residual, &keepers)?;
                let kept = net.block_output(block, &kept_input, &kept_residual, false)?;
                // Nothing else holds `x` (the stem's or a block's fresh output) or the residual.
                drop(x);
                replace_rows_in_place(residual, &keepers, &kept)?
            }
        };
    }
    net.head(&x)
}
