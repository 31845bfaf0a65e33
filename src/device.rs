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
            DeviceKind::Cuda if candle_core::utils::cuda_is_available() => Ok(Device::new_cuda(0)?),
            DeviceKind::Cuda => Err(unavailable("cuda", "cuda")),
            DeviceKind::Metal if candle_core::utils::metal_is_available() => {
                Ok(Device::new_metal(0)?)
            }
            DeviceKind::Metal => Err(unavailable("metal", "metal")),
        }
    }
}
