//! The NEON path (aarch64), a stub that compiles on every target: the convolutions take the
//! `gemm` crate's NEON GEMM and the elementwise loops are built for the baseline, as on the
//! scalar path. Direct or Winograd kernels for NEON would go here, one table entry away
//! (docs/architecture.md, "Adding an instruction-set path").

use super::paths::PathKernels;

/// This path's entry in the dispatch table.
pub const KERNELS: PathKernels = PathKernels::GEMM_ONLY;
