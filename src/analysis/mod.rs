//! Analysis of per-image records: keep rates, per-class figures, policy groups and clusters,
//! the easy/hard ranking. Everything here reads records (from `eval`, or many
//! `records*.parquet` shards loaded as one) and runs no model.

pub mod clusters;
pub mod frames;

use std::collections::BTreeMap;

use crate::records::Record;

pub use clusters::{cluster_policies, default_k, Cluster};

/// Fraction of images that keep each block.
pub fn keep_rates(records: &[Record]) -> Vec<f64> {
    let blocks = records.first().map_or(0, |r| r.keep.len());
    let mut kept = vec![0usize; blocks];
    for r in records {
        for (k, &keep) in r.keep.iter().enumerate() {
            kept[k] += keep as usize;
        }
    }
    kept.iter()
        .map(|&c| c as f64 / records.len().max(1) as f64)
        .collect()
}

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

pub fn per_class(records: &[Record]) -> Vec<ClassRow> {
    let mut by_label: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_label.entry(r.label).or_default().push(r.clone());
    }
    by_label
        .into_iter()
        .map(|(label, rs)| {
            let n = rs.len() as f64;
            ClassRow {
                label,
                images: rs.len(),
                accuracy: rs.iter().filter(|r| r.correct).count() as f64 / n,
                mean_blocks: rs.iter().map(|r| r.blocks as f64).sum::<f64>() / n,
                mean_flops: rs.iter().map(|r| r.flops).sum::<f64>() / n,
                keep_rates: keep_rates(&rs),
            }
        })
        .collect()
}

/// Images sharing one exact policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyGroup {
    pub policy: Vec<bool>,
    /// Positions in the records.
    pub members: Vec<usize>,
    pub accuracy: f64,
}

impl PolicyGroup {
    pub fn blocks(&self) -> usize {
        crate::model::blockdrop::kept_blocks(&self.policy)
    }
}

/// Exact policy groups, largest first (ties: fewer blocks first, then the policy string).
pub fn exact_groups(records: &[Record]) -> Vec<PolicyGroup> {
    let mut groups: BTreeMap<&[bool], Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        groups.entry(r.keep.as_slice()).or_default().push(i);
    }
    let mut out: Vec<PolicyGroup> = groups
        .into_iter()
        .map(|(policy, members)| PolicyGroup {
            accuracy: members.iter().filter(|&&i| records[i].correct).count() as f64
                / members.len() as f64,
            policy: policy.to_vec(),
            members,
        })
        .collect();
    out.sort_by(|a, b| {
        b.members
            .len()
            .cmp(&a.members.len())
            .then(a.blocks().cmp(&b.blocks()))
            .then(a.policy.cmp(&b.policy))
    });
    out
}

/// How sure the base network is of its prediction: the softmax probability of the predicted
/// class when logits were kept, else how far the keep probabilities sit from 0.5 (0..1).
pub fn confidence(record: &Record) -> f64 {
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

/// Record positions from easiest to hardest: fewest blocks first; among equal block counts,
/// the more confident prediction first.
pub fn easy_to_hard(records: &[Record]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| {
        records[a]
            .blocks
            .cmp(&records[b].blocks)
            .then(confidence(&records[b]).total_cmp(&confidence(&records[a])))
            .then(a.cmp(&b))
    });
    order
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

    fn sample() -> Vec<Record> {
        vec![
            record(0, "1100", 0, 0, Some(vec![2.0, 0.0])),
            record(1, "1100", 1, 0, Some(vec![5.0, 0.0])),
            record(2, "1111", 1, 1, Some(vec![0.0, 1.0])),
            record(3, "1000", 0, 0, Some(vec![1.0, 0.0])),
        ]
    }

    #[test]
    fn keep_rates_and_classes_by_hand() {
        let r = sample();
        assert_eq!(keep_rates(&r), [1.0, 0.75, 0.25, 0.25]);
        let classes = per_class(&r);
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
        let groups = exact_groups(&sample());
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
        assert_eq!(easy_to_hard(&sample()), [3, 1, 0, 2]);
    }
}
