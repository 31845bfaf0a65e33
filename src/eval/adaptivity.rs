//! How much choosing blocks per image buys over one fixed subset: the static frontier, the
//! adaptivity gain (the learned policy's accuracy minus the frontier's at the same mean cost),
//! the oracle bound and the same per class (docs/method.md, "Adaptivity"). Pure arithmetic
//! on per-image outcomes; the runs themselves are in `tradeoff`.

use std::collections::{BTreeMap, HashMap};

use crate::model::blockdrop::kept_blocks;
use crate::model::BlockDropFlops;

/// Which static baseline a fixed policy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticKind {
    /// One of the model's own policies, used by this many of the images.
    Used { images: usize },
    /// The best subset at its budget, chosen on the selection split.
    BestSubset,
    /// Every block.
    Full,
}

impl StaticKind {
    pub fn name(self) -> &'static str {
        match self {
            StaticKind::Used { .. } => "used policy",
            StaticKind::BestSubset => "best subset",
            StaticKind::Full => "full network",
        }
    }
}

/// One fixed policy run on every image, and which images it got right.
#[derive(Debug, Clone)]
pub struct StaticRun {
    pub kind: StaticKind,
    pub policy: Vec<bool>,
    pub correct: Vec<bool>,
}

/// The learned policy's outcome per image, on the same images as the static runs.
pub struct Learned<'a> {
    pub keep: &'a [Vec<bool>],
    pub correct: &'a [bool],
    pub labels: &'a [u32],
}

/// Accuracy and mean cost, in blocks and in FLOPs per image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostPoint {
    pub accuracy: f64,
    pub mean_blocks: f64,
    pub mean_flops: f64,
}

/// A static baseline's policy and outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticPoint {
    pub kind: StaticKind,
    pub policy: Vec<bool>,
    pub point: CostPoint,
}

/// The gain in accuracy over the static frontier, at the learned policy's mean blocks and at
/// its mean FLOPs. `None` where the learned cost is below every static point's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gain {
    pub blocks: Option<f64>,
    pub flops: Option<f64>,
}

/// One class's share of the story.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassAdaptivity {
    pub label: u32,
    pub images: usize,
    pub gain: Gain,
    /// Share of the class's images whose policy is not the class's most common one.
    pub off_mode_share: f64,
}

/// Everything the adaptivity question is answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptivity {
    pub images: usize,
    pub learned: CostPoint,
    pub statics: Vec<StaticPoint>,
    pub gain: Gain,
    /// Per image, the cheapest candidate (its own learned policy or any static one) that
    /// classifies it correctly; the cheapest candidate when none does.
    pub oracle: CostPoint,
    pub per_class: Vec<ClassAdaptivity>,
    /// Where the best subsets were chosen ("128 images of the train split of …"), or why
    /// there are none.
    pub subsets_from: String,
}

impl Adaptivity {
    /// Compares the learned policy with the static runs on the same images. Learned and
    /// oracle FLOPs include the policy network; a static policy runs without one.
    pub fn measure(
        learned: &Learned,
        statics: &[StaticRun],
        flops: &BlockDropFlops,
        subsets_from: String,
    ) -> Adaptivity {
        let all: Vec<usize> = (0..learned.correct.len()).collect();
        let overall = learned_point(learned, &all, flops);
        let statics_points: Vec<StaticPoint> = statics
            .iter()
            .map(|s| StaticPoint {
                kind: s.kind,
                policy: s.policy.clone(),
                point: static_point(s, &all, flops),
            })
            .collect();
        let per_class = by_label(learned.labels)
            .into_iter()
            .map(|(label, members)| {
                let class_statics: Vec<CostPoint> = statics
                    .iter()
                    .map(|s| static_point(s, &members, flops))
                    .collect();
                ClassAdaptivity {
                    label,
                    images: members.len(),
                    gain: gain(&learned_point(learned, &members, flops), &class_statics),
                    off_mode_share: off_mode_share(learned.keep, &members),
                }
            })
            .collect();
        let static_costs: Vec<CostPoint> = statics_points.iter().map(|s| s.point).collect();
        Adaptivity {
            images: all.len(),
            learned: overall,
            gain: gain(&overall, &static_costs),
            oracle: oracle(learned, statics, flops),
            statics: statics_points,
            per_class,
            subsets_from,
        }
    }

    /// The static frontier's accuracy at the learned cost whose gain is `gain`, as text
    /// (`n/a` when undefined).
    pub fn frontier_text(&self, gain: Option<f64>) -> String {
        gain.map_or("n/a".to_string(), |g| {
            format!("{:.4}", self.learned.accuracy - g)
        })
    }

    /// The line `eval` prints after the reference's four.
    pub fn line(&self) -> String {
        format!(
            "Adaptivity gain: {} at {:.2} blocks, {} at {:.2E} FLOPs over the static frontier; oracle bound {:.4} at {:.2} blocks ({} images; {})",
            signed(self.gain.blocks),
            self.learned.mean_blocks,
            signed(self.gain.flops),
            self.learned.mean_flops,
            self.oracle.accuracy,
            self.oracle.mean_blocks,
            self.images,
            self.subsets_from
        )
    }
}

/// A gain as text: signed, four decimals, `n/a` when undefined.
pub fn signed(gain: Option<f64>) -> String {
    gain.map_or("n/a".to_string(), |g| format!("{g:+.4}"))
}

fn by_label(labels: &[u32]) -> BTreeMap<u32, Vec<usize>> {
    let mut classes: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        classes.entry(l).or_default().push(i);
    }
    classes
}

fn learned_point(learned: &Learned, members: &[usize], flops: &BlockDropFlops) -> CostPoint {
    let n = members.len().max(1) as f64;
    CostPoint {
        accuracy: members.iter().filter(|&&i| learned.correct[i]).count() as f64 / n,
        mean_blocks: members
            .iter()
            .map(|&i| kept_blocks(&learned.keep[i]) as f64)
            .sum::<f64>()
            / n,
        mean_flops: members
            .iter()
            .map(|&i| flops.per_image(&learned.keep[i]) as f64)
            .sum::<f64>()
            / n,
    }
}

fn static_point(run: &StaticRun, members: &[usize], flops: &BlockDropFlops) -> CostPoint {
    let n = members.len().max(1) as f64;
    CostPoint {
        accuracy: members.iter().filter(|&&i| run.correct[i]).count() as f64 / n,
        mean_blocks: kept_blocks(&run.policy) as f64,
        mean_flops: flops.base.with_policy(&run.policy) as f64,
    }
}

fn gain(learned: &CostPoint, statics: &[CostPoint]) -> Gain {
    let at = |cost: fn(&CostPoint) -> f64| {
        let points: Vec<(f64, f64)> = statics.iter().map(|p| (cost(p), p.accuracy)).collect();
        frontier_accuracy(&points, cost(learned)).map(|f| learned.accuracy - f)
    };
    Gain {
        blocks: at(|p| p.mean_blocks),
        flops: at(|p| p.mean_flops),
    }
}

/// The static frontier's accuracy at `cost`: the best accuracy of any point costing at most
/// that much, linear between neighbouring frontier points. `None` below the cheapest point.
pub fn frontier_accuracy(points: &[(f64, f64)], cost: f64) -> Option<f64> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    // The Pareto frontier: each point more accurate than every cheaper one.
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if frontier.last().is_none_or(|last| p.1 > last.1) {
            frontier.push(p);
        }
    }
    let first = frontier.first()?;
    if cost < first.0 {
        return None;
    }
    for pair in frontier.windows(2) {
        let ((c0, a0), (c1, a1)) = (pair[0], pair[1]);
        if cost < c1 {
            return Some(a0 + (a1 - a0) * (cost - c0) / (c1 - c0));
        }
    }
    frontier.last().map(|p| p.1)
}

fn off_mode_share(keep: &[Vec<bool>], members: &[usize]) -> f64 {
    let mut counts: HashMap<&[bool], usize> = HashMap::new();
    for &i in members {
        *counts.entry(keep[i].as_slice()).or_default() += 1;
    }
    let mode = counts.values().copied().max().unwrap_or(0);
    (members.len() - mode) as f64 / members.len().max(1) as f64
}

/// Per image the cheapest (by FLOPs, then blocks) correct candidate among its own learned
/// policy and every static one; the cheapest candidate overall when none is correct.
fn oracle(learned: &Learned, statics: &[StaticRun], flops: &BlockDropFlops) -> CostPoint {
    let n = learned.correct.len();
    let static_costs: Vec<(u64, usize)> = statics
        .iter()
        .map(|s| (flops.base.with_policy(&s.policy), kept_blocks(&s.policy)))
        .collect();
    let (mut correct, mut blocks, mut total_flops) = (0usize, 0usize, 0u64);
    for i in 0..n {
        let own = (
            flops.base.with_policy(&learned.keep[i]),
            kept_blocks(&learned.keep[i]),
        );
        let candidates = std::iter::once((own, learned.correct[i])).chain(
            static_costs
                .iter()
                .zip(statics)
                .map(|(&c, s)| (c, s.correct[i])),
        );
        let best = candidates.min_by_key(|&(cost, right)| (!right, cost));
        if let Some(((f, b), right)) = best {
            correct += right as usize;
            blocks += b;
            total_flops += f + flops.policy;
        }
    }
    let n = n.max(1) as f64;
    CostPoint {
        accuracy: correct as f64 / n,
        mean_blocks: blocks as f64 / n,
        mean_flops: total_flops as f64 / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_interpolates_between_its_neighbours() {
        // The issue's own numbers: 6 blocks 0.9268, 7 blocks 0.9362, 8 blocks 0.9381.
        let points = [(6.0, 0.9268), (7.0, 0.9362), (8.0, 0.9381), (15.0, 0.9265)];
        let f = frontier_accuracy(&points, 6.78).unwrap();
        assert!((f - 0.934132).abs() < 1e-6, "{f}");
        // Beyond the last frontier point it stays at the best accuracy.
        assert_eq!(frontier_accuracy(&points, 15.0), Some(0.9381));
        assert_eq!(frontier_accuracy(&points, 5.0), None);
        // A dominated point (more cost, less accuracy) is not on the frontier.
        let f = frontier_accuracy(&[(2.0, 0.5), (3.0, 0.4), (4.0, 0.9)], 3.0).unwrap();
        assert!((f - 0.7).abs() < 1e-12, "{f}");
    }

    #[test]
    fn the_oracle_takes_the_cheapest_correct_candidate() {
        let flops =
            BlockDropFlops::for_config(&crate::config::Config::by_name("R32_FMNIST").unwrap());
        let full = vec![true; 15];
        let mut one = vec![false; 15];
        one[14] = true;
        let keep = vec![full.clone(), full.clone()];
        let learned = Learned {
            keep: &keep,
            correct: &[true, false],
            labels: &[0, 1],
        };
        let statics = [StaticRun {
            kind: StaticKind::BestSubset,
            policy: one,
            correct: vec![true, false],
        }];
        let a = Adaptivity::measure(&learned, &statics, &flops, String::new());
        // Image 0: the one-block subset is right and cheaper; image 1: nothing is right, the
        // cheapest candidate is charged.
        assert_eq!(a.oracle.accuracy, 0.5);
        assert_eq!(a.oracle.mean_blocks, 1.0);
        assert_eq!(a.per_class.len(), 2);
    }
}
