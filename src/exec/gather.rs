use candle_core::{Result, Tensor};

use crate::exec::{check_policies, keepers};

use crate::model::FlatResNet;

/// Runs a batch with per-image policies block by block: each block's branch runs only on the
/// images that keep it (gathered with `index_select`), and its update is added back into the
/// residual at those rows (`index_add`); images that drop it carry the residual on. Autograd
/// flows through both paths.
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
                let index = Tensor::new(keepers.as_slice(), x.device())?;
                let kept_residual = residual.index_select(&index, 0)?;
                let kept =
                    net.block_output(block, &x.index_select(&index, 0)?, &kept_residual, false)?;
                let update = (kept - &kept_residual)?;
                residual.index_add(&index, &update, 0)?
            }
        };
    }
    net.head(&x)
}
