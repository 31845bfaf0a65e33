//! BatchNorm over channels-last activations (the fast kernels' layout), with the parameters of
//! candle's `BatchNorm` and PyTorch's semantics: train mode normalises by the batch statistics
//! and moves the running mean and the unbiased running variance by `momentum`.

use candle_core::{Result, Tensor, Var};
use candle_nn::BatchNorm;

pub fn batch_norm_nhwc(bn: &BatchNorm, x: &Tensor, train: bool) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let channels = x.dim(candle_core::D::Minus1)?;
    let rows = x.reshape(((), channels))?;
    let (gamma, beta) = bn.weight_and_bias().ok_or_else(|| {
        candle_core::Error::Msg("BatchNorm without affine parameters is not supported".into())
    })?;
    let y = if train {
        let count = rows.dim(0)? as f64;
        let mean = rows.mean_keepdim(0)?;
        let centered = rows.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(0)?;
        let momentum = bn.momentum();
        let running_mean = Var::from_tensor(bn.running_mean())?;
        let running_var = Var::from_tensor(bn.running_var())?;
        running_mean.set(
            &((running_mean.as_tensor() * (1.0 - momentum))?
                + (mean.detach().flatten_all()? * momentum)?)?,
        )?;
        let unbiased = momentum * count / (count - 1.0).max(1.0);
        running_var.set(
            &((running_var.as_tensor() * (1.0 - momentum))?
                + (var.detach().flatten_all()? * unbiased)?)?,
        )?;
        centered
            .broadcast_div(&(var + bn.eps())?.sqrt()?)?
            .broadcast_mul(gamma)?
            .broadcast_add(beta)?
    } else {
        let scale = (gamma / (bn.running_var() + bn.eps())?.sqrt()?)?;
        let shift = (beta - (bn.running_mean() * &scale)?)?;
        rows.broadcast_mul(&scale)?.broadcast_add(&shift)?
    };
    y.reshape(dims)
}
