//! The policy-gradient pieces the curriculum and finetuning stages share (the reference
//! implementation's `cl_training.py` and `finetune.py`; docs/method.md, "Training"): the
//! reward, bounded Bernoulli sampling, the curriculum's forced blocks, and the self-critical
//! REINFORCE loss.

use candle_core::{DType, Device, Result, Tensor, D};

use crate::rng::Rng;
use crate::train::cost::BlockCost;

/// The reward of one image: `1 − share²` when the prediction is correct, `penalty` (γ)
/// otherwise, `share` being the kept blocks' share of the cost ([`BlockCost::share`]: `kept
/// / K` in the reference); in f32, as the reference's torch computes it.
pub fn of(correct: bool, share: f32, penalty: f64) -> f32 {
    if correct {
        1.0 - share.powi(2)
    } else {
        penalty as f32
    }
}

/// [`of`] for each image of a batch of 0/1 policies `[N, K]`.
pub fn reward(correct: &[bool], keep: &Tensor, cost: &BlockCost, penalty: f64) -> Result<Vec<f32>> {
    Ok(keep_bits(keep)?
        .iter()
        .zip(correct)
        .map(|(bits, &ok)| of(ok, cost.share(bits), penalty))
        .collect())
}

/// `p' = α·p + (1 − α)·(1 − p)`: keeps every decision explorable.
pub fn bounded(probs: &Tensor, alpha: f64) -> Result<Tensor> {
    probs.affine(2.0 * alpha - 1.0, 1.0 - alpha)
}

/// One Bernoulli sample per decision, `[N, K]` of 0/1.
pub fn sample(bounded_probs: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let (n, k) = bounded_probs.dims2()?;
    let uniform: Vec<f32> = (0..n * k).map(|_| rng.uniform()).collect();
    let uniform = Tensor::from_vec(uniform, (n, k), bounded_probs.device())?;
    uniform.lt(&bounded_probs.detach())?.to_dtype(DType::F32)
}

/// Each sample's advantage over the greedy policy's reward on the same image (the reference's
/// self-critical baseline).
pub fn over_baseline(sampled: &[f32], baseline: &[f32]) -> Vec<f32> {
    sampled.iter().zip(baseline).map(|(s, b)| s - b).collect()
}

/// `t` stacked `times` times along the batch: row `s·N + i` is row `i` of draw `s`.
pub fn repeat_rows(t: &Tensor, times: usize) -> Result<Tensor> {
    match times {
        0 | 1 => Ok(t.clone()),
        _ => Tensor::cat(&vec![t; times], 0),
    }
}

/// Each draw's advantage over the mean reward of the same image's other draws (the
/// leave-one-out baseline), `rewards` laid out as [`repeat_rows`] lays out `images` images.
pub fn leave_one_out(rewards: &[f32], images: usize) -> Vec<f32> {
    let draws = rewards.len() / images.max(1);
    if draws < 2 {
        return vec![0.0; rewards.len()];
    }
    let mut sums = vec![0f32; images];
    for (j, r) in rewards.iter().enumerate() {
        sums[j % images] += r;
    }
    rewards
        .iter()
        .enumerate()
        .map(|(j, r)| r - (sums[j % images] - r) / (draws - 1) as f32)
        .collect()
}

/// The greedy policy `p ≥ 0.5`, `[N, K]` of 0/1.
pub fn greedy(probs: &Tensor) -> Result<Tensor> {
    probs.detach().ge(0.5)?.to_dtype(DType::F32)
}

/// The curriculum over the last `c` blocks: the first K − c decisions forced to 1. Returns
/// `(policy, mask)`, the mask 0 on forced decisions (they leave the loss), 1 elsewhere.
pub fn force_first(policy: &Tensor, trained: usize) -> Result<(Tensor, Tensor)> {
    let (n, k) = policy.dims2()?;
    let forced = k.saturating_sub(trained);
    let mask: Vec<f32> = (0..n * k)
        .map(|i| if i % k < forced { 0.0 } else { 1.0 })
        .collect();
    let mask = Tensor::from_vec(mask, (n, k), policy.device())?;
    // policy·mask + (1 − mask): forced decisions become 1.
    let policy = ((policy * &mask)? + (1.0 - &mask)?)?;
    Ok((policy, mask))
}

/// `log P(u)` under Bernoulli(p') per decision, `[N, K]`, with p' clamped away from 0 and 1.
pub fn log_prob(bounded_probs: &Tensor, policy: &Tensor) -> Result<Tensor> {
    let p = bounded_probs.clamp(1e-15, 1.0 - 1e-15)?;
    let log_p = p.log()?;
    let log_q = (1.0 - &p)?.log()?;
    (policy * log_p)? + ((1.0 - policy)? * log_q)?
}

/// The REINFORCE loss summed over images: `Σ −log P(u) · advantage` over the decisions
/// `mask` keeps (all when `None`), advantage per image `[N]`.
pub fn policy_gradient_sum(
    bounded_probs: &Tensor,
    policy: &Tensor,
    advantage: &[f32],
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let n = advantage.len();
    let adv = Tensor::from_slice(advantage, (n, 1), bounded_probs.device())?;
    let mut terms = log_prob(bounded_probs, policy)?
        .neg()?
        .broadcast_mul(&adv)?;
    if let Some(mask) = mask {
        terms = (terms * mask)?;
    }
    terms.sum_all()
}

/// The entropy bonus `Σ −p' log p'` over every decision (the reference's, on p' only).
pub fn entropy_sum(bounded_probs: &Tensor) -> Result<Tensor> {
    let p = bounded_probs.clamp(1e-15, 1.0 - 1e-15)?;
    (&p * p.log()?)?.neg()?.sum_all()
}

/// The Bernoulli entropy `Σ −p'·log p' − (1 − p')·log(1 − p')` over every decision: highest
/// at p' = ½, so it rewards undecided blocks whichever way they lean (the reference's
/// [`entropy_sum`] peaks at p' = 1/e and so also pushes blocks towards being dropped).
pub fn bernoulli_entropy_sum(bounded_probs: &Tensor) -> Result<Tensor> {
    let p = bounded_probs.clamp(1e-15, 1.0 - 1e-15)?;
    let q = p.affine(-1.0, 1.0)?;
    ((&p * p.log()?)? + (&q * q.log()?)?)?.neg()?.sum_all()
}

/// Correct predictions of `[N, classes]` logits against labels.
pub fn correct(logits: &Tensor, labels: &[u32]) -> Result<Vec<bool>> {
    let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    Ok(pred.iter().zip(labels).map(|(p, l)| p == l).collect())
}

/// Per-image keep bits of a 0/1 `[N, K]` tensor.
pub fn keep_bits(policy: &Tensor) -> Result<Vec<Vec<bool>>> {
    Ok(policy
        .to_vec2::<f32>()?
        .into_iter()
        .map(|row| row.into_iter().map(|v| v > 0.5).collect())
        .collect())
}

/// Tensor from per-image keep bits, on `device`.
pub fn keep_tensor(keep: &[Vec<bool>], device: &Device) -> Result<Tensor> {
    crate::model::blockdrop::policy_tensor(keep, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[&[f32]]) -> Tensor {
        let k = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), k), &Device::Cpu).unwrap()
    }

    #[test]
    fn reward_is_one_minus_squared_usage_or_the_penalty() {
        let keep = t(&[&[1.0, 1.0, 0.0, 0.0], &[1.0, 1.0, 1.0, 1.0], &[0.0; 4]]);
        let r = reward(&[true, true, false], &keep, &BlockCost::Blocks, -5.0).unwrap();
        assert_eq!(r, vec![0.75, 0.0, -5.0]);
        let cost = BlockCost::Flops {
            blocks: vec![3.0, 1.0, 0.0, 0.0],
        };
        let r = reward(&[true, true, false], &keep, &cost, -5.0).unwrap();
        assert_eq!(r, vec![0.0, 0.0, -5.0]);
    }

    #[test]
    fn bounded_probabilities_stay_between_one_minus_alpha_and_alpha() {
        let p = t(&[&[0.0, 0.5, 1.0]]);
        let b = bounded(&p, 0.8).unwrap().to_vec2::<f32>().unwrap();
        for (got, want) in b[0].iter().zip([0.2f32, 0.5, 0.8]) {
            assert!((got - want).abs() < 1e-6);
        }
    }

    #[test]
    fn sampling_follows_the_probabilities() {
        let p = Tensor::full(0.8f32, (1000, 4), &Device::Cpu).unwrap();
        let s = sample(&p, &mut Rng::new(1)).unwrap();
        let mean = s.mean_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((mean - 0.8).abs() < 0.03, "{mean}");
    }

    #[test]
    fn curriculum_forces_all_but_the_last_blocks_and_masks_them() {
        let policy = t(&[&[0.0, 0.0, 0.0, 1.0]]);
        let (forced, mask) = force_first(&policy, 2).unwrap();
        assert_eq!(
            forced.to_vec2::<f32>().unwrap(),
            vec![vec![1.0, 1.0, 0.0, 1.0]]
        );
        assert_eq!(
            mask.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 0.0, 1.0, 1.0]]
        );
        let (all, mask) = force_first(&policy, 9).unwrap();
        assert_eq!(
            all.to_vec2::<f32>().unwrap(),
            policy.to_vec2::<f32>().unwrap()
        );
        assert_eq!(mask.sum_all().unwrap().to_scalar::<f32>().unwrap(), 4.0);
    }

    #[test]
    fn leave_one_out_subtracts_the_other_draws_mean() {
        // Two images, three draws each: image 0 gets 1, 0, 0.5; image 1 gets 0, 0, 0.
        let r = [1.0, 0.0, 0.0, 0.0, 0.5, 0.0];
        let a = leave_one_out(&r, 2);
        assert_eq!(a, vec![0.75, 0.0, -0.75, 0.0, 0.0, 0.0]);
        let x = t(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let stacked = repeat_rows(&x, 3).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(stacked.len(), 6);
        assert_eq!(stacked[4], vec![1.0, 2.0]);
    }

    /// −Σ log P(u)·A by hand: p' = (0.8, 0.2), u = (1, 0) → log P = 2·ln 0.8; A = 0.5.
    #[test]
    fn policy_gradient_and_entropy_by_hand() {
        let p = t(&[&[0.8, 0.2]]);
        let u = t(&[&[1.0, 0.0]]);
        let loss = policy_gradient_sum(&p, &u, &[0.5], None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss - (-2.0 * 0.8f32.ln() * 0.5)).abs() < 1e-6);
        let entropy = entropy_sum(&p).unwrap().to_scalar::<f32>().unwrap();
        let want = -(0.8f32 * 0.8f32.ln() + 0.2 * 0.2f32.ln());
        assert!((entropy - want).abs() < 1e-6);
    }
}
