//! Fast CPU kernels for the flat ResNets: channels-last (NHWC) convolutions with BatchNorm
//! folded and the epilogue (bias, residual add, ReLU) fused, exposed as candle custom ops with
//! a backward pass for training. [`Kernels`] says which path a model runs.

pub mod batchnorm;
pub mod conv;
pub mod direct;
pub mod ops;
pub mod pool;
pub mod rows;

use candle_core::{bail, CpuStorage, Device, Layout, Result};

pub use conv::ConvGeom;

/// Which operators run the networks' convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// candle's own ops, NCHW: every device, and the reference path for checking.
    #[default]
    Stock,
    /// This module's NHWC kernels: CPU only.
    Fast,
}

impl Kernels {
    /// The default for a device: fast on the CPU, candle's ops on accelerators.
    pub fn default_for(device: &Device) -> Self {
        if device.is_cpu() {
            Kernels::Fast
        } else {
            Kernels::Stock
        }
    }
}

/// The f32 elements of a contiguous CPU operand of a custom op; `op` names it in the error.
pub(crate) fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: operands must be contiguous"),
    }
}
