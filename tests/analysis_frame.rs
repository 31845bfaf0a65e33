//! The polars analysis ([`Analysis::of`]) against a direct computation over the records, on
//! synthetic records with thousands of distinct policies: keep rates, per-class rows, exact
//! groups, the easy/hard ranking and the cluster summaries must agree exactly.

#[path = "../benches/support/records.rs"]
mod records;

use std::collections::BTreeMap;

use blockdrop::analysis::{confidence, Analysis};
use blockdrop::records::Record;

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(1.0)
}

/// Checks every figure of `analysis` against the records directly.
fn check(records: &[Record], analysis: &Analysis) {
    let blocks = records[0].keep.len();
    // Keep rates.
    for (k, &rate) in analysis.keep_rates.iter().enumerate() {
        assert!(close(
            rate,
            mean(records.iter().map(|r| r.keep[k] as u8 as f64))
        ));
    }
    assert_eq!(analysis.keep_rates.len(), blocks);
    // Per class.
    let mut by_label: BTreeMap<u32, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_label.entry(r.label).or_default().push(r);
    }
    assert_eq!(analysis.classes.len(), by_label.len());
    for (row, (label, rs)) in analysis.classes.iter().zip(&by_label) {
        assert_eq!((row.label, row.images), (*label, rs.len()));
        assert!(close(
            row.accuracy,
            mean(rs.iter().map(|r| r.correct as u8 as f64))
        ));
        assert!(close(
            row.mean_blocks,
            mean(rs.iter().map(|r| r.blocks as f64))
        ));
        assert!(close(row.mean_flops, mean(rs.iter().map(|r| r.flops))));
        for k in 0..blocks {
            assert!(close(
                row.keep_rates[k],
                mean(rs.iter().map(|r| r.keep[k] as u8 as f64))
            ));
        }
    }
    // Exact groups: every record once, in the group of its policy, in the stated order.
    let mut by_policy: BTreeMap<&[bool], Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        by_policy.entry(&r.keep).or_default().push(i);
    }
    assert_eq!(analysis.groups.len(), by_policy.len());
    for g in &analysis.groups {
        assert_eq!(&g.members, &by_policy[g.policy.as_slice()]);
        let right = g.members.iter().filter(|&&i| records[i].correct).count();
        assert!(close(g.accuracy, right as f64 / g.members.len() as f64));
    }
    for w in analysis.groups.windows(2) {
        let key = |g: &blockdrop::analysis::PolicyGroup| {
            (
                std::cmp::Reverse(g.members.len()),
                g.blocks(),
                g.policy.clone(),
            )
        };
        assert!(key(&w[0]) < key(&w[1]), "groups out of order");
    }
    // The easy/hard ranking: a permutation, sorted by (blocks, −confidence, position).
    let mut expected: Vec<usize> = (0..records.len()).collect();
    expected.sort_by(|&a, &b| {
        records[a]
            .blocks
            .cmp(&records[b].blocks)
            .then(confidence(&records[b]).total_cmp(&confidence(&records[a])))
            .then(a.cmp(&b))
    });
    assert_eq!(analysis.easy_to_hard, expected);
    // Clusters: a partition of the records into unions of whole policy groups, with the
    // summaries of their members, the medoid one of the members' policies.
    let mut seen = vec![false; records.len()];
    for c in &analysis.clusters {
        assert!(c.members.windows(2).all(|w| w[0] < w[1]));
        for &i in &c.members {
            assert!(!seen[i], "record {i} in two clusters");
            seen[i] = true;
            let group = &by_policy[records[i].keep.as_slice()];
            assert!(group.iter().all(|j| c.members.binary_search(j).is_ok()));
        }
        assert!(c.members.iter().any(|&i| records[i].keep == c.medoid));
        assert!(close(
            c.accuracy,
            mean(c.members.iter().map(|&i| records[i].correct as u8 as f64))
        ));
        assert!(close(
            c.mean_blocks,
            mean(c.members.iter().map(|&i| records[i].blocks as f64))
        ));
    }
    assert!(seen.iter().all(|&s| s), "a record in no cluster");
    for w in analysis.clusters.windows(2) {
        assert!(w[0].members.len() >= w[1].members.len());
    }
}

#[test]
fn polars_analysis_equals_the_direct_computation() {
    let records = records::synthetic_records(20_000, 15, 3);
    let analysis = Analysis::of(&records, None).unwrap();
    assert!(
        analysis.groups.len() > 500,
        "{} groups",
        analysis.groups.len()
    );
    assert_eq!(analysis.clusters.len(), 6);
    check(&records, &analysis);
    let more = Analysis::of(&records, Some(40)).unwrap();
    assert_eq!(more.clusters.len(), 40);
    check(&records, &more);
}

#[test]
fn small_and_degenerate_record_sets() {
    let all = records::synthetic_records(50, 4, 11);
    for n in [1, 2, 7, 50] {
        let records = &all[..n];
        for k in [None, Some(1), Some(100)] {
            check(records, &Analysis::of(records, k).unwrap());
        }
    }
    // One policy for everything: one group, one cluster.
    let mut same = all.clone();
    for r in &mut same {
        r.keep = vec![true, false, true, true];
        r.blocks = 3;
    }
    let analysis = Analysis::of(&same, None).unwrap();
    assert_eq!((analysis.groups.len(), analysis.clusters.len()), (1, 1));
    check(&same, &analysis);
}

#[test]
fn records_of_different_block_counts_are_an_error_not_a_panic() {
    let mut records = records::synthetic_records(10, 15, 5);
    records[7].keep.push(true);
    let error = Analysis::of(&records, None).unwrap_err().to_string();
    assert!(
        error.contains("image 7") && error.contains("16 blocks"),
        "{error}"
    );
}
