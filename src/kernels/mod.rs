//! Fast CPU kernels for the flat ResNets: channels-last (NHWC) convolutions with BatchNorm
//! folded and the epilogue (bias, residual add, ReLU) fused, exposed as candle custom ops with
//! a backward pass for training. [`Kernels`] says which path a model runs.

/// Defines `pub fn $name(args)` that runs `$body` compiled for the active instruction-set
/// path ([`isa::Isa::active`]: AVX-512, AVX2 with FMA, or as built). The crate targets
/// baseline x86-64 (SSE2), where LLVM vectorises elementwise loops 4 wide; the body is inlined
/// (always) into functions built with the wider features, so its loops get 16- or 8-wide
/// code. For plain loops over slices, called once per chunk of work inside a parallel loop
/// (the path is a cached load).
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
                /// The body built for AVX-512.
                ///
                /// # Safety
                ///
                /// The CPU has AVX-512F.
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                /// The body built for AVX2 with FMA.
                ///
                /// # Safety
                ///
                /// The CPU has AVX2 and FMA.
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                match $crate::kernels::isa::Isa::active() {
                    // SAFETY: the active path is one the CPU has (`Isa::active`).
                    $crate::kernels::isa::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::isa::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::isa::Isa::Scalar | $crate::kernels::isa::Isa::Neon => {}
                }
            }
            body($($arg),*)
        }
    };
}

// The x86 kernel templates, before the paths that stamp them out.
#[cfg(target_arch = "x86_64")]
#[macro_use]
mod x86;

mod avx2;
mod avx512;
pub mod batchnorm;
pub mod conv;
pub mod direct;
pub mod geometry;
pub mod isa;
mod neon;
pub mod ops;
mod paths;
pub mod pool;
pub mod rows;
mod scalar;
pub mod winograd;

use candle_core::{bail, CpuStorage, Device, DeviceLocation, Layout, Result};
use rayon::prelude::*;

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
    /// What runs the convolutions, as reports name it: `fast (avx2)` with the instruction-set
    /// path in use, or `stock`.
    pub fn describe(self) -> String {
        match self {
            Kernels::Fast => format!("fast ({})", isa::Isa::active()),
            Kernels::Stock => "stock".into(),
        }
    }

    /// The default for a device: fast on the CPU, candle's ops on accelerators.
    pub fn default_for(device: &Device) -> Self {
        Kernels::default_at(device.location())
    }

    /// [`Kernels::default_for`] by the device's location (testable without the device).
    pub fn default_at(location: DeviceLocation) -> Self {
        match location {
            DeviceLocation::Cpu => Kernels::Fast,
            DeviceLocation::Cuda { .. } | DeviceLocation::Metal { .. } => Kernels::Stock,
        }
    }

    /// Whether these kernels run at `location`: the fast ones are CPU custom ops.
    pub fn runs_at(self, location: DeviceLocation) -> bool {
        self == Kernels::Stock || location == DeviceLocation::Cpu
    }
}

/// A new buffer of `len` floats, filled by `write`, which must store every element: the
/// kernels' outputs, megabytes each, without a zero-fill pass first (a memset that ran on one
/// thread while the others waited: 4–6% of a forward pass or training step, with a core idle
/// meanwhile). Debug builds fill the buffer with NaN first, so an element `write` missed shows.
pub(crate) fn written_buffer(len: usize, write: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut buffer = Vec::<f32>::with_capacity(len);
    // SAFETY: the capacity is `len`; every bit pattern is a valid f32, and `write` stores
    // every element before anything reads one (the contract above; candle's CPU backend
    // allocates its own outputs the same way, `alloc_uninit`). The slice `write` gets is only
    // written through until then.
    #[allow(clippy::uninit_vec)]
    unsafe {
        buffer.set_len(len)
    };
    if cfg!(debug_assertions) {
        buffer.fill(f32::NAN);
    }
    write(&mut buffer);
    buffer
}

/// `a + b` elementwise, in `a`'s buffer: how per-task partial sums (weight gradients,
/// BatchNorm statistics) are combined after a parallel fold.
/// The sum over `0..tasks` of what `task(i, acc)` adds into a buffer of `len` zeros, in
/// parallel and in a fixed order: the tasks split into at most as many contiguous groups as
/// rayon has threads, each group adds its tasks in order into its own buffer, and the buffers
/// add up element by element in group order (in parallel over slices of the result). A reduction (a weight gradient, BatchNorm's sums) is then the same bit for bit
/// on every run with the same thread count, which rayon's `fold` (grouping tasks by whichever
/// thread took them) is not: a training run is reproducible from its seed (docs/method.md).
pub(crate) fn ordered_sum<T, F>(tasks: usize, len: usize, task: F) -> Vec<T>
where
    T: Copy + Default + std::ops::AddAssign + Send + Sync,
    F: Fn(usize, &mut [T]) + Sync,
{
    let per_group = tasks.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let groups = tasks.div_ceil(per_group);
    let partials: Vec<Vec<T>> = (0..groups)
        .into_par_iter()
        .map(|group| {
            let mut acc = vec![T::default(); len];
            for i in group * per_group..((group + 1) * per_group).min(tasks) {
                task(i, &mut acc);
            }
            acc
        })
        .collect();
    // The buffers add up in parallel over slices of the output, each element in group order.
    const SLICE: usize = 4096;
    let mut total = vec![T::default(); len];
    total
        .par_chunks_mut(SLICE)
        .enumerate()
        .for_each(|(slice, out)| {
            for partial in &partials {
                let part = &partial[slice * SLICE..][..out.len()];
                for (o, &p) in out.iter_mut().zip(part) {
                    *o += p;
                }
            }
        });
    total
}

/// The f32 elements of a contiguous CPU operand of a custom op; `op` names it in the error.
pub(crate) fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: operands must be contiguous"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every accelerator gets candle's operators by default, and refuses the CPU's own.
    #[test]
    fn kernels_dispatch_by_device() {
        let gpus = [
            DeviceLocation::Cuda { gpu_id: 0 },
            DeviceLocation::Metal { gpu_id: 1 },
        ];
        assert_eq!(Kernels::default_at(DeviceLocation::Cpu), Kernels::Fast);
        assert!(Kernels::Fast.runs_at(DeviceLocation::Cpu));
        for gpu in gpus {
            assert_eq!(Kernels::default_at(gpu), Kernels::Stock);
            assert!(Kernels::Stock.runs_at(gpu));
            assert!(!Kernels::Fast.runs_at(gpu));
        }
        assert_eq!(Kernels::default_for(&Device::Cpu), Kernels::Fast);
    }
}
