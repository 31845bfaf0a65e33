//! What a kept block costs in the policy stages' reward (docs/method.md, "Latency-aware
//! reward"). The reference counts blocks: a correct image earns `1 − (kept / K)²`. With a
//! cost, it earns `1 − (cost(kept) / cost(all))²`, the cost being each block's FLOPs
//! (`--cost flops`) or its measured time from a cost table (`--cost FILE.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::BlockDropFlops;
use crate::profile::cost::CostTable;

/// The largest weight a block may have (µs or FLOPs): sums over any network stay finite.
const MAX_WEIGHT: f64 = 1e16;

/// The cost of each block in the reward; saved in a run's `config.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BlockCost {
    /// The reference's: every block costs the same.
    #[default]
    Blocks,
    /// Each block's FLOPs.
    Flops { blocks: Vec<f64> },
    /// Each block's FLOPs on top of `fixed`, the FLOPs every image pays whatever it keeps
    /// (policy network, stem, shortcuts, head): the count the comparison at equal FLOPs
    /// charges (ours, `--cost network`).
    Network { blocks: Vec<f64>, fixed: f64 },
    /// Each block's median time (µs) from the cost table `table` (a copy is kept in the run
    /// folder as `cost.json`).
    Measured {
        #[serde(with = "crate::train::run::path_json")]
        table: PathBuf,
        blocks: Vec<f64>,
    },
}

impl BlockCost {
    /// Each block's FLOPs in `config`.
    pub fn flops(config: &Config) -> Self {
        let flops = BlockDropFlops::for_config(config);
        BlockCost::Flops {
            blocks: flops.base.blocks.iter().map(|&f| f as f64).collect(),
        }
    }

    /// Each block's FLOPs on top of the FLOPs every image pays, in `config`.
    pub fn network(config: &Config) -> Self {
        let flops = BlockDropFlops::for_config(config);
        let none = vec![false; flops.base.blocks.len()];
        BlockCost::Network {
            blocks: flops.base.blocks.iter().map(|&f| f as f64).collect(),
            fixed: flops.per_image(&none) as f64,
        }
    }

    /// Each block's time from `table` (read from `path`), which must be `config`'s.
    pub fn measured(table: &CostTable, path: &Path, config: &Config) -> Result<Self> {
        if table.config != config.name {
            return Err(Error::bad_input(
                path,
                format!(
                    "is a cost table of {}, the run trains {}",
                    table.config, config.name
                ),
            ));
        }
        let cost = BlockCost::Measured {
            table: path.to_path_buf(),
            blocks: table.blocks.iter().map(|b| b.us).collect(),
        };
        cost.check(config.num_blocks())
            .map_err(|what| Error::bad_input(path, what))?;
        Ok(cost)
    }

    /// The per-block weights, `None` for the block count.
    pub fn weights(&self) -> Option<&[f64]> {
        match self {
            BlockCost::Blocks => None,
            BlockCost::Flops { blocks }
            | BlockCost::Network { blocks, .. }
            | BlockCost::Measured { blocks, .. } => Some(blocks),
        }
    }

    /// What every image pays whatever it keeps, in the weights' unit (0 but for `network`).
    fn fixed(&self) -> f64 {
        match self {
            BlockCost::Network { fixed, .. } => *fixed,
            _ => 0.0,
        }
    }

    /// What a saved or built cost must satisfy for a network of `blocks` blocks: one weight
    /// per block, each finite and ≥ 0, not all 0.
    pub fn check(&self, blocks: usize) -> std::result::Result<(), String> {
        let Some(weights) = self.weights() else {
            return Ok(());
        };
        if weights.len() != blocks {
            return Err(format!(
                "gives {} block costs, the network has {blocks} blocks",
                weights.len()
            ));
        }
        if let Some((k, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && (0.0..=MAX_WEIGHT).contains(*w)))
        {
            return Err(format!(
                "block {k}'s cost is {w}, not a cost from 0 to {MAX_WEIGHT:e}"
            ));
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err("gives every block a cost of 0".into());
        }
        let fixed = self.fixed();
        if !(fixed.is_finite() && (0.0..=MAX_WEIGHT).contains(&fixed)) {
            return Err(format!(
                "fixed cost is {fixed}, not a cost from 0 to {MAX_WEIGHT:e}"
            ));
        }
        Ok(())
    }

    /// The kept blocks' share of the cost of all blocks, in f32 as the reward takes it. The
    /// block count computes `kept / K` in f32 as the reference does; weights sum in f64 (equal
    /// weights give exactly the same f32: see the test).
    pub fn share(&self, keep: &[bool]) -> f32 {
        match self.weights() {
            None => keep.iter().filter(|&&k| k).count() as f32 / keep.len().max(1) as f32,
            Some(weights) => {
                let fixed = self.fixed();
                let total: f64 = fixed + weights.iter().sum::<f64>();
                let kept = weights
                    .iter()
                    .zip(keep)
                    .filter(|(_, &k)| k)
                    // From +0.0: an empty f64 sum is −0.0.
                    .fold(0.0, |sum, (w, _)| sum + w);
                ((fixed + kept) / total) as f32
            }
        }
    }

    /// The cost's kind as `config.json` names it: `blocks`, `flops` or `measured`.
    pub fn kind(&self) -> &'static str {
        match self {
            BlockCost::Blocks => "blocks",
            BlockCost::Flops { .. } => "flops",
            BlockCost::Network { .. } => "network",
            BlockCost::Measured { .. } => "measured",
        }
    }

    /// How the cost is named in output: `blocks`, `FLOPs`, or `measured time (FILE)`.
    pub fn describe(&self) -> String {
        match self {
            BlockCost::Blocks => "blocks".into(),
            BlockCost::Flops { .. } => "FLOPs".into(),
            BlockCost::Network { .. } => "FLOPs of the whole network, policy included".into(),
            BlockCost::Measured { table, .. } => format!("measured time ({})", table.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Equal weights of any size give bit for bit the block count's share, for every number
    /// of kept blocks and wherever they are.
    #[test]
    fn equal_weights_give_exactly_the_block_count_share() {
        let mut rng = Rng::new(7);
        for k in [3usize, 15, 18, 33, 54] {
            for c in [1.0, 0.1, 87.3, 1e-3, 7_225_344.0, 123.456_789] {
                let uniform = BlockCost::Flops { blocks: vec![c; k] };
                for _ in 0..200 {
                    let keep: Vec<bool> = (0..k).map(|_| rng.uniform() < 0.5).collect();
                    assert_eq!(
                        uniform.share(&keep).to_bits(),
                        BlockCost::Blocks.share(&keep).to_bits(),
                        "K {k}, weight {c}, keep {keep:?}"
                    );
                }
                for kept in 0..=k {
                    let keep: Vec<bool> = (0..k).map(|i| i < kept).collect();
                    assert_eq!(uniform.share(&keep), kept as f32 / k as f32);
                }
            }
        }
    }

    #[test]
    fn weights_are_shares_of_the_total() {
        let cost = BlockCost::Flops {
            blocks: vec![1.0, 3.0],
        };
        assert_eq!(cost.share(&[true, false]), 0.25);
        assert_eq!(cost.share(&[false, true]), 0.75);
        assert_eq!(cost.share(&[true, true]), 1.0);
    }

    /// `network`: what every image pays counts in both the kept cost and the total.
    #[test]
    fn the_network_cost_charges_the_fixed_part() {
        let cost = BlockCost::Network {
            blocks: vec![1.0, 3.0],
            fixed: 4.0,
        };
        assert_eq!(cost.share(&[false, false]), 0.5);
        assert_eq!(cost.share(&[false, true]), 0.875);
        assert_eq!(cost.share(&[true, true]), 1.0);
        let config = Config::by_name("R32_FMNIST").unwrap();
        let flops = BlockDropFlops::for_config(&config);
        let BlockCost::Network { blocks, fixed } = BlockCost::network(&config) else {
            panic!("not a network cost");
        };
        let all = fixed + blocks.iter().sum::<f64>();
        let every = vec![true; blocks.len()];
        assert_eq!(all as u64, flops.per_image(&every));
        assert!(BlockCost::Network {
            blocks,
            fixed: f64::NAN
        }
        .check(15)
        .is_err());
    }

    #[test]
    fn bad_weights_are_refused() {
        let with = |blocks: Vec<f64>| BlockCost::Flops { blocks };
        assert!(with(vec![1.0; 15]).check(15).is_ok());
        assert!(with(vec![1.0; 14])
            .check(15)
            .unwrap_err()
            .contains("14 block costs"));
        assert!(with(vec![0.0; 15]).check(15).is_err());
        let mut nan = vec![1.0; 15];
        nan[4] = f64::NAN;
        assert!(with(nan).check(15).unwrap_err().contains("block 4"));
        let mut huge = vec![1.0; 15];
        huge[2] = 1e308;
        assert!(with(huge).check(15).unwrap_err().contains("block 2"));
        assert!(BlockCost::Blocks.check(15).is_ok());
    }

    #[test]
    fn flops_follow_the_configuration() {
        let config = Config::by_name("R32_FMNIST").unwrap();
        let cost = BlockCost::flops(&config);
        let weights = cost.weights().unwrap();
        assert_eq!(weights.len(), 15);
        // The first block of segments 2 and 3 works at half the resolution on its input side.
        assert!(weights[5] < weights[6]);
    }

    #[test]
    fn a_saved_cost_reads_back_and_old_runs_count_blocks() {
        let cost = BlockCost::Measured {
            table: PathBuf::from("cost.json"),
            blocks: vec![1.5, 2.5],
        };
        let json = serde_json::to_value(&cost).unwrap();
        assert_eq!(json["kind"], "measured");
        assert_eq!(serde_json::from_value::<BlockCost>(json).unwrap(), cost);
        let blocks = serde_json::to_value(BlockCost::Blocks).unwrap();
        assert_eq!(blocks, serde_json::json!({"kind": "blocks"}));
    }
}
