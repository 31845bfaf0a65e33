//! BatchNorm over channels-last activations (the fast kernels' layout), with the parameters of
//! candle's `BatchNorm` and PyTorch's semantics: train mode normalises by the batch statistics
//! and moves the running mean and the unbiased running variance by `momentum`. The optional
//! residual add and ReLU that follow BatchNorm in a block are fused in.

use candle_core::{Result, Tensor, Var};
use candle_nn::BatchNorm;

use crate::kernels::batchnorm::{batch_stats, BatchNormAct};

pub fn batch_norm_nhwc(
    bn: &BatchNorm,
    x: &Tensor,
    train: bool,
    residual: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let (gamma, beta) = bn.weight_and_bias().ok_or_else(|| {
        candle_core::Error::Msg("BatchNorm without affine parameters is not supported".into())
    })?;
    if train {
        let (mean, var) = batch_stats(x)?;
        update_running_stats(bn, &mean, &var, x.elem_count() / mean.len().max(1))?;
        let op = BatchNormAct::new(mean, &var, bn.eps(), relu);
        let gamma_beta = Tensor::stack(&[gamma, beta], 0)?;
        let x = x.contiguous()?;
        return match residual {
            Some(r) => x.apply_op3(&gamma_beta, &r.contiguous()?, op),
            None => x.apply_op2(&gamma_beta, op),
        };
    }
    let scale = (gamma / (bn.running_var() + bn.eps())?.sqrt()?)?;
    let shift = (beta - (bn.running_mean() * &scale)?)?;
    add_relu(
        x.broadcast_mul(&scale)?.broadcast_add(&shift)?,
        residual,
        relu,
    )
}

/// `y [+ residual]`, then ReLU when `relu`: the tail of every convolution in a block.
pub fn add_relu(y: Tensor, residual: Option<&Tensor>, relu: bool) -> Result<Tensor> {
    let y = match residual {
        Some(r) => (y + r)?,
        None => y,
    };
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// PyTorch's update: `running ← (1 − m)·running + m·batch`, the variance unbiased (n/(n−1)).
fn update_running_stats(bn: &BatchNorm, mean: &[f32], var: &[f32], count: usize) -> Result<()> {
    let momentum = bn.momentum();
    let device = bn.running_mean().device();
    let running_mean = Var::from_tensor(bn.running_mean())?;
    let running_var = Var::from_tensor(bn.running_var())?;
    let unbiased = momentum * count as f64 / (count as f64 - 1.0).max(1.0);
    running_mean.set(
        &((running_mean.as_tensor() * (1.0 - momentum))?
            + (Tensor::new(mean, device)? * momentum)?)?,
    )?;
    running_var.set(
        &((running_var.as_tensor() * (1.0 - momentum))? + (Tensor::new(var, device)? * unbiased)?)?,
    )
}
