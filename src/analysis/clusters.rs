//! Coarser groups than exact policies: k-medoids over the distinct policies by Hamming
//! distance, each weighted by how many images use it. The distinct policies and their
//! counts come from the record frame's grouping ([`crate::analysis::RecordFrame`]); this
//! module only chooses medoids.

/// One cluster of images whose policies are close.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The member policy with the least total Hamming distance to the cluster's images.
    pub medoid: Vec<bool>,
    /// Record positions, ascending.
    pub members: Vec<usize>,
    pub accuracy: f64,
    pub mean_blocks: f64,
}

/// Clusters in the coarse clustering when not given (fewer when fewer policies are
/// distinct). Six galleries stay readable in a report and on a terminal; ask for more with `k`.
pub const DEFAULT_CLUSTERS: usize = 6;

fn hamming(a: &[bool], b: &[bool]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// Weighted k-medoids: `policies` are distinct and in ascending order, `weights[i]` the images
/// using `policies[i]`. Returns each cluster's medoid (an index into `policies`) and each
/// policy's cluster. Deterministic: medoids start from the most common policy and then, one
/// by one, the policy farthest (weighted) from those chosen; then assignment and medoid
/// updates alternate until stable (at most 50 rounds).
pub fn kmedoids(policies: &[&[bool]], weights: &[usize], k: usize) -> (Vec<usize>, Vec<usize>) {
    let k = k.min(policies.len());
    if k == 0 {
        return (vec![], vec![0; policies.len()]);
    }
    let mut medoids: Vec<usize> = vec![(0..policies.len())
        .max_by_key(|&i| (weights[i], std::cmp::Reverse(i)))
        .unwrap_or(0)];
    while medoids.len() < k {
        let far = (0..policies.len())
            .filter(|i| !medoids.contains(i))
            .max_by_key(|&i| {
                let d = medoids
                    .iter()
                    .map(|&m| hamming(policies[i], policies[m]))
                    .min()
                    .unwrap_or(0);
                (d.saturating_mul(weights[i]), std::cmp::Reverse(i))
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
                .min_by_key(|&c| (hamming(policies[i], policies[medoids[c]]), c))
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
                        .map(|&i| hamming(policies[i], policies[m]).saturating_mul(weights[i]))
                        .fold(0usize, usize::saturating_add)
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
    (medoids, assignment)
}

#[cfg(test)]
mod tests {
    use crate::analysis::tests::record;
    use crate::analysis::Analysis;

    #[test]
    fn two_obvious_clusters_and_their_medoids() {
        let records = vec![
            record(0, "111000", 0, 0, None),
            record(1, "111000", 0, 0, None),
            record(2, "110000", 0, 1, None),
            record(3, "000111", 0, 0, None),
            record(4, "000011", 0, 0, None),
        ];
        let clusters = Analysis::of(&records, Some(2)).unwrap().clusters;
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0].members, [0, 1, 2]);
        assert_eq!(clusters[0].medoid, [true, true, true, false, false, false]);
        assert!((clusters[0].accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(clusters[1].members, [3, 4]);
        assert_eq!(clusters[1].mean_blocks, 2.5);
        // Four distinct policies: four clusters by default.
        assert_eq!(Analysis::of(&records, None).unwrap().clusters.len(), 4);
        // Asking for more clusters than distinct policies gives one per policy.
        assert_eq!(Analysis::of(&records, Some(10)).unwrap().clusters.len(), 4);
    }
}
