use candle_core::{bail, Result, Tensor};

use crate::model::FlatResNet;

/// Runs `x` (one image, or a batch sharing one policy) with dropped blocks truly skipped:
/// a dropped block costs nothing but its segment's shortcut when it is a segment's first block.
pub fn forward_skip(net: &FlatResNet, x: &Tensor, keep: &[bool]) -> Result<Tensor> {
    if keep.len() != net.num_blocks() {
        bail!(
            "policy has {} decisions, the network {} blocks",
            keep.len(),
            net.num_blocks()
        )
    }
    let mut x = net.stem(x, false)?;
    for (k, &kept) in keep.iter().enumerate() {
        x = if kept {
            net.run_block(k, &x, false)?
        } else {
            net.residual(k, &x, false)?
        };
    }
    net.head(&x)
}
