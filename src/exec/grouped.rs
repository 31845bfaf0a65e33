use std::collections::BTreeMap;

use candle_core::{Result, Tensor};

use crate::exec::skip::forward_skip;
use crate::model::FlatResNet;

/// Runs a batch with per-image policies: images sharing a policy run together through
/// [`forward_skip`], so dropped blocks are skipped for real at any batch size. Returns the
/// logits in the input's order.
pub fn forward_grouped(net: &FlatResNet, x: &Tensor, keep: &[Vec<bool>]) -> Result<Tensor> {
    let mut groups: BTreeMap<&[bool], Vec<u32>> = BTreeMap::new();
    for (i, policy) in keep.iter().enumerate() {
        groups.entry(policy.as_slice()).or_default().push(i as u32);
    }
    if groups.len() <= 1 {
        return forward_skip(net, x, keep.first().map_or(&[][..], Vec::as_slice));
    }
    let mut order = Vec::with_capacity(keep.len());
    let mut outputs = Vec::with_capacity(groups.len());
    for (policy, members) in &groups {
        let index = Tensor::new(members.as_slice(), x.device())?;
        outputs.push(forward_skip(net, &x.index_select(&index, 0)?, policy)?);
        order.extend_from_slice(members);
    }
    // `order[j]` is the input position of output row j; invert it to restore the input order.
    let mut inverse = vec![0u32; order.len()];
    for (row, &position) in order.iter().enumerate() {
        inverse[position as usize] = row as u32;
    }
    let inverse = Tensor::new(inverse.as_slice(), x.device())?;
    Tensor::cat(&outputs, 0)?.index_select(&inverse, 0)
}
