//! Synthetic per-image records shaped like a BlockDrop model's on a 10-class dataset: a few
//! blocks nearly always kept, the rest kept with probabilities that depend on the class, so
//! that a million records use a few thousand distinct policies, as real ones do.

use blockdrop::records::Record;
use blockdrop::rng::Rng;

/// `n` records of `blocks` blocks each, reproducible from `seed`.
pub fn synthetic_records(n: usize, blocks: usize, seed: u64) -> Vec<Record> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|index| {
            let label = rng.below(10) as u32;
            let probs: Vec<f32> = (0..blocks)
                .map(|b| match b % 5 {
                    0 => 0.97,
                    1 => 0.05 + 0.08 * label as f32,
                    2 => 0.9 - 0.05 * label as f32,
                    _ => 0.1 + 0.02 * (b as f32),
                })
                .collect();
            let keep: Vec<bool> = probs.iter().map(|&p| rng.uniform() < p).collect();
            let kept = keep.iter().filter(|&&k| k).count();
            let correct = rng.uniform() < 0.6 + 0.025 * kept as f32;
            let pred = if correct { label } else { (label + 1) % 10 };
            let logits: Vec<f32> = (0..10)
                .map(|c| if c == pred { 4.0 } else { rng.uniform() * 3.0 })
                .collect();
            Record {
                index: index as u32,
                label,
                pred,
                correct,
                blocks: kept as u32,
                flops: 3.9e6 + 7.2e6 * kept as f64,
                probs,
                keep,
                logits: Some(logits),
            }
        })
        .collect()
}
