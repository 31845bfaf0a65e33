//! Fast CPU kernels for the flat ResNets: channels-last (NHWC) convolutions with BatchNorm
//! folded and the epilogue (bias, residual add, ReLU) fused, exposed as candle custom ops with
//! a backward pass for training. [`Kernels`] says which path a model runs.

/// Defines `pub fn $name(args)` that runs `$body` compiled for AVX-512 (or AVX2 with FMA)
/// when the CPU has it, else as built. The crate targets baseline x86-64 (SSE2), where LLVM
/// vectorises elementwise loops 4 wide; the body is inlined (always) into functions built with
/// the wider features, so its loops get 16- or 8-wide code. For plain loops over slices, called
/// once per chunk of work inside a parallel loop (the feature check is a cached load).
macro_rules! wide_fn {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA (checked).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub mod batchnorm;
pub mod conv;
pub mod direct;
pub mod ops;
pub mod pool;
pub mod process;
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
