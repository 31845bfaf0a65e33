//! Model files: this project's safetensors files and reference PyTorch checkpoints, detected
//! by content, checked name by name and shape by shape before a model is built.

pub mod checked;
pub mod names;
pub mod native;
pub mod torch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::config::{Config, Family, NAMES};
use crate::error::{Error, Result};
use crate::model::BlockDrop;

/// A model and what its file says about it.
pub struct LoadedModel {
    pub model: BlockDrop,
    pub metadata: BTreeMap<String, String>,
    pub path: PathBuf,
}

impl LoadedModel {
    /// The training stage the file records (`untrained`, `curriculum`, `finetune`, …).
    pub fn stage(&self) -> Option<&str> {
        self.metadata.get("stage").map(String::as_str)
    }

    pub fn is_untrained(&self) -> bool {
        self.stage() == Some("untrained")
    }
}

/// Which kind of file a model path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    Safetensors,
    TorchZip,
    TorchLegacy,
}

pub fn detect_format(path: &Path, bytes: &[u8]) -> Result<ModelFormat> {
    if bytes.starts_with(torch::ZIP_MAGIC) {
        Ok(ModelFormat::TorchZip)
    } else if bytes.starts_with(torch::LEGACY_MAGIC) {
        Ok(ModelFormat::TorchLegacy)
    } else if bytes.len() >= 9 && bytes[8] == b'{' {
        Ok(ModelFormat::Safetensors)
    } else {
        Err(Error::bad_input(
            path,
            "neither a safetensors model nor a PyTorch checkpoint",
        ))
    }
}

/// Reads a model file's tensors (named `agent.*` / `resnet.*`) and metadata from its bytes.
pub fn read_tensors(
    path: &Path,
    bytes: &[u8],
) -> Result<(HashMap<String, Tensor>, BTreeMap<String, String>)> {
    match detect_format(path, bytes)? {
        ModelFormat::Safetensors => native::read(path, bytes, &Device::Cpu),
        ModelFormat::TorchZip | ModelFormat::TorchLegacy => read_torch_checkpoint(path, bytes),
    }
}

/// A reference checkpoint's agent and base as `agent.*` / `resnet.*` tensors.
fn read_torch_checkpoint(
    path: &Path,
    bytes: &[u8],
) -> Result<(HashMap<String, Tensor>, BTreeMap<String, String>)> {
    let found = names::find_state_dicts(&torch::read(path, bytes)?);
    let agent = found.agent.ok_or_else(|| {
        Error::bad_input(
            path,
            "PyTorch checkpoint holds no policy network ('agent' or 'net' state dict)",
        )
    })?;
    let resnet = found.resnet.ok_or_else(|| {
        Error::bad_input(path, "PyTorch checkpoint holds only a policy network: an agent-only (curriculum-stage) checkpoint cannot be evaluated without its base network")
    })?;
    let prefixed = |prefix: &str, tensors: Vec<(String, Tensor)>| -> Vec<(String, Tensor)> {
        tensors
            .into_iter()
            .map(|(n, t)| (format!("{prefix}.{n}"), t))
            .collect()
    };
    let tensors = prefixed("agent", agent)
        .into_iter()
        .chain(prefixed("resnet", resnet))
        .collect();
    Ok((tensors, found.metadata))
}

/// Finds the one named configuration whose base network has these tensors' layout: stem
/// kernel and input channels, blocks per segment, classes.
pub fn infer_config(tensors: &HashMap<String, Tensor>) -> Option<Config> {
    let stem = tensors.get("resnet.conv1.weight")?.dims().to_vec();
    let classes = tensors.get("resnet.fc.weight")?.dim(0).ok()?;
    let mut layers: Vec<usize> = Vec::new();
    for name in tensors.keys() {
        let Some(rest) = name.strip_prefix("resnet.blocks.") else {
            continue;
        };
        if let [segment, block, "conv1", "weight"] = rest.split('.').collect::<Vec<_>>().as_slice()
        {
            let (segment, block): (usize, usize) = (segment.parse().ok()?, block.parse().ok()?);
            if layers.len() <= segment {
                layers.resize(segment + 1, 0);
            }
            layers[segment] = layers[segment].max(block + 1);
        }
    }
    let family = match stem.get(2) {
        Some(3) => Family::Cifar,
        Some(7) => Family::ImageNet,
        _ => return None,
    };
    let matches: Vec<Config> = NAMES
        .iter()
        .filter_map(|n| Config::by_name(n).ok())
        .filter(|c| {
            c.base.family == family
                && c.base.layers == layers
                && c.base.in_channels == stem[1]
                && c.base.classes == Some(classes)
        })
        .collect();
    (matches.len() == 1).then(|| matches[0].clone())
}

/// Loads a BlockDrop model from `path` onto `device`. The configuration comes from
/// `config_name`, else the file's metadata, else the tensors' layout.
pub fn load_model(path: &Path, config_name: Option<&str>, device: &Device) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_model_bytes(path, &bytes, config_name, device)
}

/// [`load_model`] for a file already in memory; `path` names it in messages.
pub fn load_model_bytes(
    path: &Path,
    bytes: &[u8],
    config_name: Option<&str>,
    device: &Device,
) -> Result<LoadedModel> {
    let (tensors, metadata) = read_tensors(path, bytes)?;
    let config = match config_name.or(metadata.get("config").map(String::as_str)) {
        Some(name) => Config::by_name(name)?,
        None => infer_config(&tensors).ok_or_else(|| {
            Error::bad_input(
                path,
                format!(
                    "cannot tell the model's configuration; pass --config (one of {})",
                    NAMES.join(", ")
                ),
            )
        })?,
    };
    let model = checked::build_checked(tensors, device, |vb| BlockDrop::new(&config, vb)).map_err(
        |problems| {
            Error::bad_input(
                path,
                format!(
                    "does not fit config {} ({} problem(s)): {}",
                    config.name,
                    problems.len(),
                    summarise(&problems)
                ),
            )
        },
    )?;
    Ok(LoadedModel {
        model,
        metadata,
        path: path.to_path_buf(),
    })
}

/// The first few problems, and how many more there are.
fn summarise(problems: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = problems
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > SHOWN {
        text.push_str(&format!("; … and {} more", problems.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_content() {
        let p = Path::new("m");
        assert_eq!(
            detect_format(p, b"PK\x03\x04rest").ok(),
            Some(ModelFormat::TorchZip)
        );
        let legacy = [torch::LEGACY_MAGIC, b".\x80\x02"].concat();
        assert_eq!(
            detect_format(p, &legacy).ok(),
            Some(ModelFormat::TorchLegacy)
        );
        assert_eq!(
            detect_format(p, b"\x10\0\0\0\0\0\0\0{}").ok(),
            Some(ModelFormat::Safetensors)
        );
        assert!(detect_format(p, b"hello").is_err());
    }
}
