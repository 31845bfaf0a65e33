//! Which instruction set the CPU kernels use: the widest the CPU has, or the one the
//! `BLOCKDROP_ISA` environment variable forces (`scalar`, `neon`, `avx2`, `avx512`), so that a
//! machine with AVX-512 can test and benchmark the AVX2 path too.
//!
//! The path decides the direct and Winograd convolutions through the one dispatch table
//! ([`super::paths::of`]) and the elementwise loops ([`wide_fn!`](super)). The tiled GEMM is
//! the `gemm` crate's, which picks its own kernels from the CPU (AVX-512, AVX2+FMA or NEON)
//! whatever is forced here. `scalar` means no direct or Winograd kernels, and loops built
//! for the baseline target (SSE2 on x86-64).

use std::sync::OnceLock;

/// The environment variable that forces a path.
pub const ENV: &str = "BLOCKDROP_ISA";

/// An instruction-set path, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The baseline target only.
    Scalar,
    /// aarch64's NEON: for now the GEMM's own NEON kernels and baseline loops (`neon.rs`).
    Neon,
    /// AVX2 with FMA: 8-wide vectors, 16 registers.
    Avx2,
    /// AVX-512F: 16-wide vectors, 32 registers.
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Neon => cfg!(target_arch = "aarch64"),
            Isa::Avx2 => has_avx2_fma(),
            Isa::Avx512 => has_avx512(),
        }
    }

    /// The widest path this CPU has.
    pub fn detected() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Scalar)
    }

    /// The path `BLOCKDROP_ISA` names, checked against this CPU; `Ok(None)` when it is unset.
    pub fn from_env() -> Result<Option<Isa>, String> {
        let Some(value) = std::env::var_os(ENV) else {
            return Ok(None);
        };
        let value = value.to_string_lossy();
        let isa = Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| {
                format!("{ENV}={value:?} is not a path; use scalar, neon, avx2 or avx512")
            })?;
        if !isa.available() {
            return Err(format!(
                "{ENV}={}: this CPU lacks it (it has {})",
                isa.name(),
                Isa::detected().name()
            ));
        }
        Ok(Some(isa))
    }

    /// The path in use: the forced one, else the widest the CPU has. Fixed at first use.
    ///
    /// # Panics
    ///
    /// When `BLOCKDROP_ISA` names no path or one this CPU lacks: a run must never silently
    /// take another path than the one it was asked for. The binary checks the variable at
    /// start-up and exits 2 instead ([`Isa::from_env`]), so only library users (the tests) can
    /// reach the panic.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| match Isa::from_env() {
            Ok(forced) => forced.unwrap_or_else(Isa::detected),
            Err(problem) => panic!("{problem}"),
        })
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2_fma() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detected_path_is_available_and_scalar_always_is() {
        assert!(Isa::detected().available());
        assert!(Isa::Scalar.available());
        assert!(Isa::active().available());
    }
}
