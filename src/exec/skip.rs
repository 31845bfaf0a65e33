use candle_core::{bail, Result, Tensor};

use crate::exec::{Direct, Stage, StageHook};
use crate::model::FlatResNet;

/// Runs `x` (one image, or a batch sharing one policy) with dropped blocks truly skipped:
/// a dropped block costs nothing but its segment's shortcut when it is a segment's first block.
/// A folded network runs as one fused pass ([`crate::model::fused`]).
pub fn forward_skip(net: &FlatResNet, x: &Tensor, keep: &[bool]) -> Result<Tensor> {
    if net.fusable() {
        return net.fused_forward(x, Some(keep), crate::model::fused::InputPrep::NONE);
    }
    forward_skip_hooked(net, x, keep, &mut Direct)
}

/// [`forward_skip`] with every stage (stem, each block — kept or dropped —, head) run through
/// `hook`, once each.
pub fn forward_skip_hooked(
    net: &FlatResNet,
    x: &Tensor,
    keep: &[bool],
    hook: &mut dyn StageHook,
) -> Result<Tensor> {
    if keep.len() != net.num_blocks() {
        bail!(
            "policy has {} decisions, the network {} blocks",
            keep.len(),
            net.num_blocks()
        )
    }
    let mut x = hook.run(Stage::Stem, &mut || net.stem(x, false))?;
    for (k, &kept) in keep.iter().enumerate() {
        x = hook.run(Stage::Block(k), &mut || {
            if kept {
                net.run_block(k, &x, false)
            } else {
                net.residual(k, &x, false)
            }
        })?;
    }
    hook.run(Stage::Head, &mut || net.head(&x))
}
