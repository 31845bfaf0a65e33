//! Executors: ways to run the base network under per-image keep decisions.
//!
//! - [`skip`]: one policy for the whole input; dropped blocks are never computed.
//! - [`grouped`]: a batch with per-image policies, split into groups sharing a policy, each
//!   group run by `skip`.
//! - [`gather`]: a batch with per-image policies; each block runs once, on the sub-batch of
//!   images that keep it (index_select in, index_add out).
//! - [`masked`]: every block computed for the whole batch and blended by the keep bits, as the
//!   reference trains (autograd-friendly, saves no time); and its training variant that runs
//!   rarely kept blocks on their keepers only.
//!
//! [`forward_batch`] picks among the first three from the batch's policy diversity.

pub mod gather;
pub mod grouped;
pub mod masked;
pub mod skip;

use std::collections::HashSet;

use candle_core::{Result, Tensor};

pub use gather::forward_gather;
pub use grouped::forward_grouped;
pub use masked::{forward_masked, forward_masked_sparse};
pub use skip::{forward_skip, forward_skip_hooked};

use crate::model::FlatResNet;

/// A part of a BlockDrop forward pass that can be observed (timed) on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Policy,
    Stem,
    Block(usize),
    Head,
}

impl Stage {
    /// The stage's name in tables and files: `policy`, `stem`, `block K`, `head`.
    pub fn name(self) -> String {
        match self {
            Stage::Policy => "policy".into(),
            Stage::Stem => "stem".into(),
            Stage::Block(k) => format!("block {k}"),
            Stage::Head => "head".into(),
        }
    }

    /// A short axis label: `P`, `S`, the block's number, `H`.
    pub fn short_name(self) -> String {
        match self {
            Stage::Policy => "P".into(),
            Stage::Stem => "S".into(),
            Stage::Block(k) => k.to_string(),
            Stage::Head => "H".into(),
        }
    }
}

/// Wraps each stage of a forward pass; the profiler's timer is one, [`Direct`] the plain path.
pub trait StageHook {
    fn run(&mut self, stage: Stage, f: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor>;
}

/// Runs every stage as is.
pub struct Direct;

impl StageHook for Direct {
    fn run(&mut self, _: Stage, f: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> {
        f()
    }
}

/// The images (row indices) whose policy keeps `block`.
pub fn keepers(keep: &[Vec<bool>], block: usize) -> Vec<u32> {
    (0u32..)
        .zip(keep)
        .filter(|(_, policy)| policy[block])
        .map(|(i, _)| i)
        .collect()
}

/// The rows `keepers` of a block's input and of its residual, for running the block on those
/// images only. Inside a segment the residual is the input itself, gathered once.
pub(crate) fn gather_kept(
    x: &Tensor,
    residual: &Tensor,
    keepers: &[u32],
) -> Result<(Tensor, Tensor)> {
    let index = Tensor::new(keepers, x.device())?;
    let kept_input = x.index_select(&index, 0)?;
    let kept_residual = if residual.id() == x.id() {
        kept_input.clone()
    } else {
        residual.index_select(&index, 0)?
    };
    Ok((kept_input, kept_residual))
}

/// Checks that `keep` holds one policy of `net`'s length per image of a batch of `n`.
pub fn check_policies(net: &FlatResNet, keep: &[Vec<bool>], n: usize) -> Result<()> {
    if keep.len() != n || keep.iter().any(|k| k.len() != net.num_blocks()) {
        candle_core::bail!(
            "{} policies of {} blocks do not fit {n} images",
            keep.len(),
            net.num_blocks()
        )
    }
    Ok(())
}

/// Which executor [`forward_batch`] uses for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Skip,
    Grouped,
    Gather,
}

/// The rule: one policy → `skip`; few policies, each shared by sixteen or more images on
/// average → `grouped` (every group runs whole blocks at a useful batch size, with no
/// gather/scatter copies); more diverse batches → `gather`, whose per-block copies cost less
/// than re-running the stem, shortcuts and head once per small group. (Measured with
/// `cargo bench --bench executors`: at batch 64, eight groups of eight already favour gather.)
pub fn choose_strategy(keep: &[Vec<bool>]) -> Strategy {
    let distinct = keep.iter().map(Vec::as_slice).collect::<HashSet<_>>().len();
    if distinct <= 1 {
        Strategy::Skip
    } else if distinct * 16 <= keep.len() {
        Strategy::Grouped
    } else {
        Strategy::Gather
    }
}

/// Runs a batch with per-image policies through the executor [`choose_strategy`] picks.
/// Per-image logits are those of running each image alone.
pub fn forward_batch(net: &FlatResNet, x: &Tensor, keep: &[Vec<bool>]) -> Result<Tensor> {
    match choose_strategy(keep) {
        Strategy::Skip => forward_skip(net, x, &keep[0]),
        Strategy::Grouped => forward_grouped(net, x, keep),
        Strategy::Gather => forward_gather(net, x, keep),
    }
}
