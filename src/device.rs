//! The compute device a user asks for, with a clear error when this build lacks it.

use candle_core::Device;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
    Metal,
}

impl DeviceKind {
    pub fn open(self) -> Result<Device> {
        let unavailable = |what: &str, feature: &str| {
            Error::BadUsage(format!(
                "--device {what}: this binary was built without {what} support; rebuild with `cargo build --release --features {feature}`"
            ))
        };
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda if candle_core::utils::cuda_is_available() => {
                probe_cuda()?;
                Ok(Device::new_cuda(0)?)
            }
            DeviceKind::Cuda => Err(unavailable("cuda", "cuda")),
            DeviceKind::Metal if candle_core::utils::metal_is_available() => {
                Ok(Device::new_metal(0)?)
            }
            DeviceKind::Metal => Err(unavailable("metal", "metal")),
        }
    }
}

/// Checks, before any model is built, that the CUDA driver starts and sees a GPU: without it
/// `--device cuda` is bad usage (exit 2) with one line saying which, not a driver error deep
/// in the first tensor operation.
#[cfg(feature = "cuda")]
fn probe_cuda() -> Result<()> {
    use candle_core::cuda_backend::cudarc::driver::result;
    let refused = |what: String| Error::BadUsage(format!("--device cuda: {what}"));
    result::init().map_err(|e| {
        refused(format!(
            "the CUDA driver did not start ({e}); is an NVIDIA driver installed and a GPU visible?"
        ))
    })?;
    match result::device::get_count() {
        Ok(0) => Err(refused("the CUDA driver sees no GPU".into())),
        Ok(_) => Ok(()),
        Err(e) => Err(refused(format!(
            "the CUDA driver cannot count its GPUs ({e})"
        ))),
    }
}

#[cfg(not(feature = "cuda"))]
fn probe_cuda() -> Result<()> {
    Ok(())
}
