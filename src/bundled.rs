//! What ships inside the binary: the default model (and the two other shipped models, for
//! the report's Models section) and a Fashion-MNIST sample (the first
//! 1,000 test images, and 500 training images spread over the training split, on which the
//! best static subsets are chosen), so `blockdrop` works with nothing else on the machine.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::checkpoint::{load_model_bytes, LoadedModel};
use crate::data::{idx, Dataset, Format, Split};
use crate::error::Result;

/// Path of the default model in the source tree (also its name in messages).
pub const DEFAULT_MODEL_PATH: &str = "assets/default.safetensors";
pub const SAMPLE_PATH: &str = "assets/fashion-mnist-sample";

const DEFAULT_MODEL: &[u8] = include_bytes!("../assets/default.safetensors");

/// The bundled default model file's bytes (what `--model` left out means).
pub fn default_model_bytes() -> &'static [u8] {
    DEFAULT_MODEL
}
/// The other shipped models (finetuned at γ = −5 and −10), for the report's Models section.
const SHIPPED: [(&str, &[u8]); 2] = [
    (
        "assets/fmnist-finetuned-g5.safetensors",
        include_bytes!("../assets/fmnist-finetuned-g5.safetensors"),
    ),
    (
        "assets/fmnist-finetuned-g10.safetensors",
        include_bytes!("../assets/fmnist-finetuned-g10.safetensors"),
    ),
];
const SAMPLE_IMAGES: &[u8] =
    include_bytes!("../assets/fashion-mnist-sample/t10k-images-idx3-ubyte.gz");
const SAMPLE_LABELS: &[u8] =
    include_bytes!("../assets/fashion-mnist-sample/t10k-labels-idx1-ubyte.gz");
const SAMPLE_TRAIN_IMAGES: &[u8] =
    include_bytes!("../assets/fashion-mnist-sample/train-images-idx3-ubyte.gz");
const SAMPLE_TRAIN_LABELS: &[u8] =
    include_bytes!("../assets/fashion-mnist-sample/train-labels-idx1-ubyte.gz");

pub fn default_model(device: &Device) -> Result<LoadedModel> {
    load_model_bytes(Path::new(DEFAULT_MODEL_PATH), DEFAULT_MODEL, None, device)
}

/// Every shipped model, the default first, with its path in the source tree, folded for
/// inference.
pub fn shipped_models(device: &Device) -> Vec<(&'static str, Result<LoadedModel>)> {
    std::iter::once((DEFAULT_MODEL_PATH, default_model(device)))
        .chain(
            SHIPPED.iter().map(|&(path, bytes)| {
                (path, load_model_bytes(Path::new(path), bytes, None, device))
            }),
        )
        .map(|(path, loaded)| (path, loaded.and_then(LoadedModel::folded)))
        .collect()
}

/// The sample's test split: what the bundled default is evaluated on.
pub fn sample_dataset() -> Result<Dataset> {
    sample_split(Split::Test, SAMPLE_IMAGES, SAMPLE_LABELS)
}

/// The sample's training split: where the best static subsets are chosen.
pub fn sample_train_dataset() -> Result<Dataset> {
    sample_split(Split::Train, SAMPLE_TRAIN_IMAGES, SAMPLE_TRAIN_LABELS)
}

fn sample_split(split: Split, images: &[u8], labels: &[u8]) -> Result<Dataset> {
    let dir = PathBuf::from(SAMPLE_PATH);
    let prefix = idx::prefix(split);
    let store = idx::parse_pair(
        (
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            images.to_vec(),
        ),
        (
            &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            labels.to_vec(),
        ),
    )?;
    Ok(Dataset::from_store(dir, Format::Idx, split, store))
}
