//! How two models' policies relate on the same images: how often they choose exactly the
//! same blocks, the mean Jaccard similarity of their kept sets, and how each does on the
//! images where they choose differently.

use crate::records::Record;

#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// Positions of the two models in the comparison.
    pub a: usize,
    pub b: usize,
    /// Share of images with the very same policy.
    pub same_policy: f64,
    /// Mean over images of |kept by both| / |kept by either| (1 when neither keeps any).
    pub mean_jaccard: f64,
    /// Images whose policies differ, and each model's accuracy on them (`None` when none).
    pub disagreeing: usize,
    pub accuracy_a: Option<f64>,
    pub accuracy_b: Option<f64>,
}

/// The agreement of every pair of record lists (each over the same images, in order).
pub fn agreement(models: &[&[Record]]) -> Vec<Agreement> {
    let mut pairs = Vec::new();
    for a in 0..models.len() {
        for b in a + 1..models.len() {
            pairs.push(pair(a, b, models[a], models[b]));
        }
    }
    pairs
}

fn jaccard(x: &[bool], y: &[bool]) -> f64 {
    let both = x.iter().zip(y).filter(|(&p, &q)| p && q).count();
    let either = x.iter().zip(y).filter(|(&p, &q)| p || q).count();
    if either == 0 {
        1.0
    } else {
        both as f64 / either as f64
    }
}

fn pair(a: usize, b: usize, ra: &[Record], rb: &[Record]) -> Agreement {
    let n = ra.len().min(rb.len());
    let (mut same, mut jaccard_sum) = (0usize, 0.0);
    let (mut disagreeing, mut right_a, mut right_b) = (0usize, 0usize, 0usize);
    for (x, y) in ra.iter().zip(rb).take(n) {
        jaccard_sum += jaccard(&x.keep, &y.keep);
        if x.keep == y.keep {
            same += 1;
        } else {
            disagreeing += 1;
            right_a += x.correct as usize;
            right_b += y.correct as usize;
        }
    }
    let share = |c: usize| (disagreeing > 0).then(|| c as f64 / disagreeing as f64);
    Agreement {
        a,
        b,
        same_policy: same as f64 / n.max(1) as f64,
        mean_jaccard: jaccard_sum / n.max(1) as f64,
        disagreeing,
        accuracy_a: share(right_a),
        accuracy_b: share(right_b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(keep: &[bool], correct: bool) -> Record {
        Record {
            index: 0,
            label: 0,
            pred: if correct { 0 } else { 1 },
            correct,
            blocks: keep.iter().filter(|&&k| k).count() as u32,
            flops: 0.0,
            keep: keep.to_vec(),
            probs: vec![],
            logits: None,
        }
    }

    #[test]
    fn agreement_counts_by_hand() {
        let a = [
            record(&[true, true, false], true),
            record(&[true, false, false], true),
        ];
        let b = [
            record(&[true, true, false], false),
            record(&[false, true, false], false),
        ];
        let pairs = agreement(&[&a, &b]);
        assert_eq!(pairs.len(), 1);
        let p = &pairs[0];
        assert_eq!(p.same_policy, 0.5);
        // Image 0: identical (1); image 1: no block in common of two kept (0).
        assert_eq!(p.mean_jaccard, 0.5);
        assert_eq!(
            (p.disagreeing, p.accuracy_a, p.accuracy_b),
            (1, Some(1.0), Some(0.0))
        );
    }
}
