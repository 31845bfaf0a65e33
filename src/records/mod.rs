//! The domain of an evaluation: what happened to each image ([`Record`]), the reference's
//! summary of a run ([`Summary`], printed as `test.py`'s four lines), and the record files
//! ([`schema`]: the columns, written and read in one place). The summary's lines are in
//! docs/method.md, "The summary".

pub mod consistency;
pub mod format;
pub mod merge;
pub mod provenance;
pub mod schema;
pub mod shard;

use std::collections::HashSet;
use std::fmt;

use crate::model::blockdrop::policy_string;
pub use format::{fixed3, sci2};
pub use schema::{load, write};

/// What happened to one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub index: u32,
    pub label: u32,
    pub pred: u32,
    pub correct: bool,
    pub keep: Vec<bool>,
    pub blocks: u32,
    pub flops: f64,
    pub probs: Vec<f32>,
    pub logits: Option<Vec<f32>>,
}

impl Record {
    /// The policy as the reference prints it, one '0'/'1' per block.
    pub fn policy(&self) -> String {
        policy_string(&self.keep)
    }
}

/// The reference's summary of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub images: usize,
    pub accuracy: f64,
    pub block_usage_mean: f64,
    /// Sample standard deviation (n − 1), as `torch.std`.
    pub block_usage_std: f64,
    pub flops_mean: f64,
    /// Population standard deviation (n), as `np.std`.
    pub flops_std: f64,
    pub unique_policies: usize,
}

impl Summary {
    pub fn of(records: &[Record]) -> Summary {
        let n = records.len() as f64;
        let mean = |f: &dyn Fn(&Record) -> f64| records.iter().map(f).sum::<f64>() / n;
        let blocks = |r: &Record| r.blocks as f64;
        let flops = |r: &Record| r.flops;
        let block_mean = mean(&blocks);
        let flops_mean = mean(&flops);
        let squares = |f: &dyn Fn(&Record) -> f64, m: f64| {
            records.iter().map(|r| (f(r) - m).powi(2)).sum::<f64>()
        };
        let policies: HashSet<&[bool]> = records.iter().map(|r| r.keep.as_slice()).collect();
        Summary {
            images: records.len(),
            accuracy: mean(&|r| r.correct as u8 as f64),
            block_usage_mean: block_mean,
            block_usage_std: (squares(&blocks, block_mean) / (n - 1.0)).sqrt(),
            flops_mean,
            flops_std: (squares(&flops, flops_mean) / n).sqrt(),
            unique_policies: policies.len(),
        }
    }
}

impl fmt::Display for Summary {
    /// The four lines of the reference's `test.py`, exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Accuracy: {}", fixed3(self.accuracy))?;
        writeln!(
            f,
            "Block Usage: {} \u{b1} {}",
            fixed3(self.block_usage_mean),
            fixed3(self.block_usage_std)
        )?;
        writeln!(
            f,
            "FLOPs/img: {} \u{b1} {}",
            sci2(self.flops_mean),
            sci2(self.flops_std)
        )?;
        write!(f, "Unique Policies: {}", self.unique_policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_sample_std_for_blocks_and_population_std_for_flops() {
        let record = |blocks: u32, flops: f64, keep: Vec<bool>| Record {
            index: 0,
            label: 0,
            pred: 0,
            correct: blocks == 1,
            keep,
            blocks,
            flops,
            probs: vec![],
            logits: None,
        };
        let s = Summary::of(&[
            record(1, 1.0, vec![true, false]),
            record(2, 3.0, vec![true, true]),
        ]);
        assert_eq!(s.block_usage_std, (0.5f64).sqrt());
        assert_eq!(s.flops_std, 1.0);
        assert_eq!(s.unique_policies, 2);
        assert_eq!(s.to_string().lines().next(), Some("Accuracy: 0.500"));
    }
}
