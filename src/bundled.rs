//! What ships inside the binary: the default model and a Fashion-MNIST sample (the first
//! 1,000 test images), so `blockdrop` works with nothing else on the machine.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::checkpoint::{load_model_bytes, LoadedModel};
use crate::data::{idx, Dataset, Format, Split};
use crate::error::Result;

/// Path of the default model in the source tree (also its name in messages).
pub const DEFAULT_MODEL_PATH: &str = "assets/default.safetensors";
pub const SAMPLE_PATH: &str = "assets/fashion-mnist-sample";

const DEFAULT_MODEL: &[u8] = include_bytes!("../assets/default.safetensors");
const SAMPLE_IMAGES: &[u8] =
    include_bytes!("../assets/fashion-mnist-sample/t10k-images-idx3-ubyte.gz");
const SAMPLE_LABELS: &[u8] =
    include_bytes!("../assets/fashion-mnist-sample/t10k-labels-idx1-ubyte.gz");

pub fn default_model(device: &Device) -> Result<LoadedModel> {
    load_model_bytes(Path::new(DEFAULT_MODEL_PATH), DEFAULT_MODEL, None, device)
}

pub fn sample_dataset() -> Result<Dataset> {
    let dir = PathBuf::from(SAMPLE_PATH);
    let store = idx::parse_pair(
        (
            &dir.join("t10k-images-idx3-ubyte.gz"),
            SAMPLE_IMAGES.to_vec(),
        ),
        (
            &dir.join("t10k-labels-idx1-ubyte.gz"),
            SAMPLE_LABELS.to_vec(),
        ),
    )?;
    Ok(Dataset::from_store(dir, Format::Idx, Split::Test, store))
}
