//! The scalar path (the baseline target: SSE2 on x86-64): no convolution kernels of its own,
//! so every convolution takes the `gemm` crate's GEMM (which picks its own kernels from the
//! CPU whatever is forced here), and the elementwise loops are built for the baseline.

use super::paths::PathKernels;

/// This path's entry in the dispatch table.
pub const KERNELS: PathKernels = PathKernels::GEMM_ONLY;
