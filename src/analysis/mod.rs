//! Analysis of per-image records: keep rates, per-class figures, policy groups and clusters,
//! the easy/hard ranking. Everything here reads records (from `eval`, or many
//! `records*.parquet` parts loaded as one) and runs no model. The records become one polars
//! frame ([`RecordFrame`]) and every figure is a `group_by`/aggregate/`sort` on it; only the
//! Hamming k-medoids ([`clusters`]) is our own code, over the distinct policies the grouping
//! yields.

pub mod clusters;
pub mod frames;
pub mod record_frame;

use crate::error::Result;
use crate::records::Record;

pub use clusters::{Cluster, DEFAULT_CLUSTERS};
pub use record_frame::RecordFrame;

/// One class's accuracy, block usage, FLOPs and per-block keep rates.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRow {
    pub label: u32,
    pub images: usize,
    pub accuracy: f64,
    pub mean_blocks: f64,
    pub mean_flops: f64,
    pub keep_rates: Vec<f64>,
}

/// Images sharing one exact policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyGroup {
    pub policy: Vec<bool>,
    /// Positions in the records, ascending.
    pub members: Vec<usize>,
    pub accuracy: f64,
}

impl PolicyGroup {
    pub fn blocks(&self) -> usize {
        crate::model::blockdrop::kept_blocks(&self.policy)
    }
}

/// Every figure of the analysis of one set of records, computed from one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Fraction of images that keep each block.
    pub keep_rates: Vec<f64>,
    /// One row per label, ascending.
    pub classes: Vec<ClassRow>,
    /// Exact policy groups, largest first (ties: fewer blocks first, then the policy).
    pub groups: Vec<PolicyGroup>,
    /// The coarse clustering, largest cluster first.
    pub clusters: Vec<Cluster>,
    /// Record positions, easiest first: fewest blocks, then the more confident prediction.
    pub easy_to_hard: Vec<usize>,
}

impl Analysis {
    /// Analyses `records` with `clusters` clusters (`None`: [`DEFAULT_CLUSTERS`], or one per
    /// distinct policy when there are fewer).
    pub fn of(records: &[Record], clusters: Option<usize>) -> Result<Analysis> {
        let frame = RecordFrame::of(records)?;
        let groups = frame.exact_groups()?;
        let k = clusters.unwrap_or_else(|| groups.len().min(DEFAULT_CLUSTERS));
        Ok(Analysis {
            keep_rates: frame.keep_rates()?,
            classes: frame.per_class()?,
            clusters: frame.clusters(&groups, k)?,
            easy_to_hard: frame.easy_to_hard()?,
            groups,
        })
    }
}

/// Fraction of images that keep each block.
pub fn keep_rates(records: &[Record]) -> Result<Vec<f64>> {
    RecordFrame::of(records)?.keep_rates()
}

/// How sure the base network is of its prediction: the softmax probability of the predicted
/// class when logits were kept, else how far the keep probabilities sit from 0.5 (0..1).
/// Non-finite values (NaN logits from a broken model or file) give −∞: the least sure.
pub fn confidence(record: &Record) -> f64 {
    let value = raw_confidence(record);
    if value.is_nan() {
        f64::NEG_INFINITY
    } else {
        value
    }
}

fn raw_confidence(record: &Record) -> f64 {
    match &record.logits {
        Some(logits) if !logits.is_empty() => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
            1.0 / sum
        }
        _ => {
            let n = record.probs.len().max(1) as f64;
            record
                .probs
                .iter()
                .map(|&p| 2.0 * (p as f64 - 0.5).abs())
                .sum::<f64>()
                / n
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record with the given policy string, label, prediction and logits.
    pub fn record(
        index: u32,
        policy: &str,
        label: u32,
        pred: u32,
        logits: Option<Vec<f32>>,
    ) -> Record {
        let keep: Vec<bool> = policy.chars().map(|c| c == '1').collect();
        Record {
            index,
            label,
            pred,
            correct: label == pred,
            blocks: crate::model::blockdrop::kept_blocks(&keep) as u32,
            flops: 100.0 * crate::model::blockdrop::kept_blocks(&keep) as f64,
            probs: keep.iter().map(|&k| if k { 0.9 } else { 0.1 }).collect(),
            keep,
            logits,
        }
    }

    pub fn sample() -> Vec<Record> {
        vec![
            record(0, "1100", 0, 0, Some(vec![2.0, 0.0])),
            record(1, "1100", 1, 0, Some(vec![5.0, 0.0])),
            record(2, "1111", 1, 1, Some(vec![0.0, 1.0])),
            record(3, "1000", 0, 0, Some(vec![1.0, 0.0])),
        ]
    }

    #[test]
    fn keep_rates_and_classes_by_hand() {
        let a = Analysis::of(&sample(), None).unwrap();
        assert_eq!(a.keep_rates, [1.0, 0.75, 0.25, 0.25]);
        let classes = &a.classes;
        assert_eq!(classes.len(), 2);
        assert_eq!(
            (
                classes[0].label,
                classes[0].images,
                classes[0].accuracy,
                classes[0].mean_blocks
            ),
            (0, 2, 1.0, 1.5)
        );
        assert_eq!(
            (
                classes[1].accuracy,
                classes[1].mean_blocks,
                classes[1].mean_flops
            ),
            (0.5, 3.0, 300.0)
        );
        assert_eq!(classes[1].keep_rates, [1.0, 1.0, 0.5, 0.5]);
    }

    #[test]
    fn exact_groups_largest_first() {
        let groups = Analysis::of(&sample(), None).unwrap().groups;
        assert_eq!(groups.len(), 3);
        assert_eq!(
            (groups[0].members.clone(), groups[0].accuracy),
            (vec![0, 1], 0.5)
        );
        // Singletons: fewer blocks first.
        assert_eq!(groups[1].members, [3]);
        assert_eq!(groups[2].members, [2]);
    }

    #[test]
    fn easy_to_hard_breaks_ties_by_confidence() {
        // Records 0 and 1 both use 2 blocks; record 1 is more confident (logit gap 5 vs 2).
        assert_eq!(
            Analysis::of(&sample(), None).unwrap().easy_to_hard,
            [3, 1, 0, 2]
        );
    }

    #[test]
    fn a_nan_confidence_ranks_as_the_least_sure() {
        let mut records = sample();
        records[1].logits = Some(vec![f32::NAN, 0.0]);
        assert_eq!(confidence(&records[1]), f64::NEG_INFINITY);
        // Record 1 now comes after record 0 among the 2-block images.
        assert_eq!(
            Analysis::of(&records, None).unwrap().easy_to_hard,
            [3, 0, 1, 2]
        );
    }

    #[test]
    fn no_records_no_figures() {
        let a = Analysis::of(&[], None).unwrap();
        assert!(a.keep_rates.is_empty() && a.classes.is_empty() && a.groups.is_empty());
        assert!(a.clusters.is_empty() && a.easy_to_hard.is_empty());
    }
}
