//! Coarser groups than exact policies: k-medoids over the distinct policies by Hamming
//! distance, each weighted by how many images use it.

use std::collections::BTreeMap;

use crate::records::Record;

/// One cluster of images whose policies are close.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The member policy with the least total Hamming distance to the cluster's images.
    pub medoid: Vec<bool>,
    /// Record positions.
    pub members: Vec<usize>,
    pub accuracy: f64,
    pub mean_blocks: f64,
}

fn hamming(a: &[bool], b: &[bool]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// The default number of clusters: six, or the number of distinct policies when there are
/// fewer. Six galleries stay readable in a report and on a terminal; ask for more with `k`.
/// Clusters of the coarse clustering when not given (fewer when fewer policies are distinct).
pub const DEFAULT_CLUSTERS: usize = 6;

pub fn default_k(records: &[Record]) -> usize {
    let distinct = records
        .iter()
        .map(|r| r.keep.as_slice())
        .collect::<std::collections::HashSet<_>>()
        .len();
    distinct.min(DEFAULT_CLUSTERS)
}

/// Clusters the records' policies into at most `k` groups, largest first. Deterministic:
/// medoids start from the most common policy and then, one by one, the policy farthest
/// (weighted) from those chosen; then assignment and medoid updates alternate until stable.
pub fn cluster_policies(records: &[Record], k: usize) -> Vec<Cluster> {
    let mut counts: BTreeMap<&[bool], Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        counts.entry(r.keep.as_slice()).or_default().push(i);
    }
    let policies: Vec<(&[bool], &Vec<usize>)> = counts.iter().map(|(p, m)| (*p, m)).collect();
    let k = k.min(policies.len());
    if k == 0 {
        return vec![];
    }
    let weight = |i: usize| policies[i].1.len();
    let mut medoids: Vec<usize> = vec![(0..policies.len())
        .max_by_key(|&i| (weight(i), std::cmp::Reverse(i)))
        .unwrap_or(0)];
    while medoids.len() < k {
        let far = (0..policies.len())
            .filter(|i| !medoids.contains(i))
            .max_by_key(|&i| {
                let d = medoids
                    .iter()
                    .map(|&m| hamming(policies[i].0, policies[m].0))
                    .min()
                    .unwrap_or(0);
                (d * weight(i), std::cmp::Reverse(i))
            });
        match far {
            Some(i) => medoids.push(i),
            None => break,
        }
    }
    let mut assignment = vec![0usize; policies.len()];
    for _ in 0..50 {
        for (i, a) in assignment.iter_mut().enumerate() {
            *a = (0..medoids.len())
                .min_by_key(|&c| (hamming(policies[i].0, policies[medoids[c]].0), c))
                .unwrap_or(0);
        }
        let updated: Vec<usize> = (0..medoids.len())
            .map(|c| {
                let members: Vec<usize> = (0..policies.len())
                    .filter(|&i| assignment[i] == c)
                    .collect();
                let cost = |m: usize| -> usize {
                    members
                        .iter()
                        .map(|&i| hamming(policies[i].0, policies[m].0) * weight(i))
                        .sum()
                };
                members
                    .iter()
                    .copied()
                    .min_by_key(|&m| (cost(m), m))
                    .unwrap_or(medoids[c])
            })
            .collect();
        if updated == medoids {
            break;
        }
        medoids = updated;
    }
    let mut clusters: Vec<Cluster> = medoids
        .iter()
        .enumerate()
        .map(|(c, &m)| {
            let mut members: Vec<usize> = (0..policies.len())
                .filter(|&i| assignment[i] == c)
                .flat_map(|i| policies[i].1.iter().copied())
                .collect();
            members.sort_unstable();
            let n = members.len().max(1) as f64;
            Cluster {
                medoid: policies[m].0.to_vec(),
                accuracy: members.iter().filter(|&&i| records[i].correct).count() as f64 / n,
                mean_blocks: members
                    .iter()
                    .map(|&i| records[i].blocks as f64)
                    .sum::<f64>()
                    / n,
                members,
            }
        })
        .filter(|c| !c.members.is_empty())
        .collect();
    clusters.sort_by(|a, b| {
        b.members
            .len()
            .cmp(&a.members.len())
            .then(a.medoid.cmp(&b.medoid))
    });
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::record;

    #[test]
    fn two_obvious_clusters_and_their_medoids() {
        let records = vec![
            record(0, "111000", 0, 0, None),
            record(1, "111000", 0, 0, None),
            record(2, "110000", 0, 1, None),
            record(3, "000111", 0, 0, None),
            record(4, "000011", 0, 0, None),
        ];
        let clusters = cluster_policies(&records, 2);
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0].members, [0, 1, 2]);
        assert_eq!(clusters[0].medoid, [true, true, true, false, false, false]);
        assert!((clusters[0].accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(clusters[1].members, [3, 4]);
        assert_eq!(clusters[1].mean_blocks, 2.5);
        assert_eq!(default_k(&records), 4);
        // Asking for more clusters than distinct policies gives one per policy.
        assert_eq!(cluster_policies(&records, 10).len(), 4);
    }
}
