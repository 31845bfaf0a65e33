//! Model files: this project's safetensors files and reference PyTorch checkpoints, detected
//! by content, checked name by name and shape by shape before a model is built.

pub mod checked;
pub mod convert;
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

/// What produced a model file, as its `stage` metadata records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStage {
    /// Random weights (a placeholder default).
    Untrained,
    /// Converted from a PyTorch checkpoint.
    Imported,
    Base,
    Curriculum,
    Finetuned,
}

impl ModelStage {
    /// The metadata key.
    pub const KEY: &'static str = "stage";

    pub fn name(self) -> &'static str {
        match self {
            ModelStage::Untrained => "untrained",
            ModelStage::Imported => "imported",
            ModelStage::Base => "base",
            ModelStage::Curriculum => "curriculum",
            ModelStage::Finetuned => "finetuned",
        }
    }

    /// The stage a metadata value names; `None` for values this version does not know.
    pub fn parse(value: &str) -> Option<Self> {
        [
            ModelStage::Untrained,
            ModelStage::Imported,
            ModelStage::Base,
            ModelStage::Curriculum,
            ModelStage::Finetuned,
        ]
        .into_iter()
        .find(|s| s.name() == value)
    }
}

impl LoadedModel {
    /// The training stage the file records, when it records a known one.
    pub fn stage(&self) -> Option<ModelStage> {
        self.metadata
            .get(ModelStage::KEY)
            .and_then(|v| ModelStage::parse(v))
    }

    pub fn is_untrained(&self) -> bool {
        self.stage() == Some(ModelStage::Untrained)
    }

    /// The model with BatchNorm folded into its convolutions, for inference only.
    pub fn folded(mut self) -> Result<LoadedModel> {
        self.model.fold_for_inference()?;
        Ok(self)
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

/// What one file holds: a policy network, a base network or both, named as our model
/// expects below `agent.` / `resnet.`, and how its names were mapped.
pub type Parts = names::StateDicts;

/// Reads the networks in a model file of any format.
pub fn read_parts(path: &Path, bytes: &[u8]) -> Result<Parts> {
    match detect_format(path, bytes)? {
        ModelFormat::Safetensors => {
            let (tensors, metadata) = native::read(path, bytes, &Device::Cpu)?;
            let mut parts = Parts {
                metadata,
                ..Parts::default()
            };
            for (name, tensor) in tensors {
                if let Some(n) = name.strip_prefix("agent.") {
                    parts
                        .agent
                        .get_or_insert_with(Vec::new)
                        .push((n.to_string(), tensor));
                } else if let Some(n) = name.strip_prefix("resnet.") {
                    parts
                        .resnet
                        .get_or_insert_with(Vec::new)
                        .push((n.to_string(), tensor));
                } else {
                    parts.ignored.push(name);
                }
            }
            Ok(parts)
        }
        ModelFormat::TorchZip | ModelFormat::TorchLegacy => {
            Ok(names::find_state_dicts(&torch::read(path, bytes)?))
        }
    }
}

/// Combines a file's parts (and a separate base network's, for an agent-only file) into the
/// `agent.*` / `resnet.*` tensors of one BlockDrop model. A file with a base network and no
/// policy gives the `resnet.*` tensors alone: a base network, every block kept.
pub fn combine(
    path: &Path,
    parts: Parts,
    base: Option<(&Path, Parts)>,
) -> Result<(HashMap<String, Tensor>, BTreeMap<String, String>)> {
    let prefixed = |prefix: &'static str, tensors: Vec<(String, Tensor)>| {
        tensors
            .into_iter()
            .map(move |(n, t)| (format!("{prefix}.{n}"), t))
    };
    let Some(agent) = parts.agent else {
        return match (parts.resnet, base) {
            (Some(resnet), None) => Ok((prefixed("resnet", resnet).collect(), parts.metadata)),
            (Some(_), Some((base_path, _))) => Err(Error::bad_input(
                path,
                format!(
                    "holds a base network and no policy network, so --base {} has nothing to go with; \
                     leave --base out to run it alone",
                    base_path.display()
                ),
            )),
            (None, _) => Err(Error::bad_input(
                path,
                "holds no network (no 'agent', 'net', 'resnet' or 'state_dict' entry, no agent.* or resnet.* tensors)",
            )),
        };
    };
    let resnet = match base {
        Some((base_path, base_parts)) => base_parts
            .resnet
            .ok_or_else(|| Error::bad_input(base_path, "holds no base network for --base"))?,
        None => parts.resnet.ok_or_else(|| {
            Error::bad_input(path, "holds only a policy network (a curriculum-stage checkpoint): pass its base network with --base FILE")
        })?,
    };
    Ok((
        prefixed("agent", agent)
            .chain(prefixed("resnet", resnet))
            .collect(),
        parts.metadata,
    ))
}

/// Reads a model file's tensors (named `agent.*` / `resnet.*`) and metadata from its bytes.
pub fn read_tensors(
    path: &Path,
    bytes: &[u8],
) -> Result<(HashMap<String, Tensor>, BTreeMap<String, String>)> {
    combine(path, read_parts(path, bytes)?, None)
}

/// Reads a model file, or an agent-only file plus `base`, into parts ready to [`combine`].
pub fn read_with_base(path: &Path, base: Option<&Path>) -> Result<(Parts, Option<Parts>)> {
    let read_file = crate::input::read_file;
    let parts = read_parts(path, &read_file(path)?)?;
    let base_parts = base.map(|b| read_parts(b, &read_file(b)?)).transpose()?;
    Ok((parts, base_parts))
}

/// Finds the one named configuration whose base network has these tensors' layout: stem
/// kernel and input channels, blocks per segment, classes.
pub fn infer_config(tensors: &HashMap<String, Tensor>) -> Option<Config> {
    let stem = tensors.get("resnet.conv1.weight")?.dims().to_vec();
    let classes = tensors.get("resnet.fc.weight")?.dim(0).ok()?;
    let configs: Vec<Config> = NAMES
        .iter()
        .filter_map(|n| Config::by_name(n).ok())
        .collect();
    // Indices beyond every configuration's fit none: stop before they size anything.
    let max_segments = configs.iter().map(|c| c.base.layers.len()).max()?;
    let max_blocks = configs
        .iter()
        .flat_map(|c| c.base.layers.iter().copied())
        .max()?;
    let mut layers: Vec<usize> = Vec::new();
    for name in tensors.keys() {
        let Some(rest) = name.strip_prefix("resnet.blocks.") else {
            continue;
        };
        if let [segment, block, "conv1", "weight"] = rest.split('.').collect::<Vec<_>>().as_slice()
        {
            let (segment, block): (usize, usize) = (segment.parse().ok()?, block.parse().ok()?);
            if segment >= max_segments || block >= max_blocks {
                return None;
            }
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
    let matches: Vec<Config> = configs
        .into_iter()
        .filter(|c| {
            c.base.family == family
                && c.base.layers == layers
                && c.base.in_channels == stem[1]
                && c.base.classes == Some(classes)
        })
        .collect();
    (matches.len() == 1).then(|| matches[0].clone())
}

/// Loads a BlockDrop model from `path` (plus `base` for an agent-only file) onto `device`.
/// The configuration comes from `config_name`, else the file's metadata, else the tensors'
/// layout.
pub fn load_model(
    path: &Path,
    base: Option<&Path>,
    config_name: Option<&str>,
    device: &Device,
) -> Result<LoadedModel> {
    let (parts, base_parts) = read_with_base(path, base)?;
    let (tensors, metadata) = combine(path, parts, base.zip(base_parts))?;
    build(path, tensors, metadata, config_name, device)
}

/// [`load_model`], BatchNorm folded into the convolutions for inference unless `fold` is false
/// (`--no-fold`): how every command that runs a model opens its file.
pub fn open_model(
    path: &Path,
    base: Option<&Path>,
    config_name: Option<&str>,
    fold: bool,
    device: &Device,
) -> Result<LoadedModel> {
    let loaded = load_model(path, base, config_name, device)?;
    if fold {
        loaded.folded()
    } else {
        Ok(loaded)
    }
}

/// [`load_model`] for a complete model file already in memory; `path` names it in messages.
pub fn load_model_bytes(
    path: &Path,
    bytes: &[u8],
    config_name: Option<&str>,
    device: &Device,
) -> Result<LoadedModel> {
    let (tensors, metadata) = read_tensors(path, bytes)?;
    build(path, tensors, metadata, config_name, device)
}

/// The configuration for these tensors: named, else from metadata, else inferred.
pub fn resolve_config(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
    config_name: Option<&str>,
) -> Result<Config> {
    let config = if let (None, Some(name)) = (config_name, metadata.get("config")) {
        Config::by_name(name).map_err(|e| {
            Error::bad_input(path, format!("its metadata names a configuration: {e}"))
        })?
    } else {
        match config_name {
            Some(name) => Config::by_name(name)?,
            None => infer_config(tensors).ok_or_else(|| {
                Error::bad_input(
                    path,
                    format!(
                        "cannot tell the model's configuration; pass --config (one of {})",
                        NAMES.join(", ")
                    ),
                )
            })?,
        }
    };
    with_recorded_pool(path, config, metadata)
}

/// `config` with the policy input pool a model file records (`train curriculum
/// --policy-input-pool`), which the policy's weights were trained with whatever `--config`
/// says: the weights alone cannot tell.
fn with_recorded_pool(
    path: &Path,
    config: Config,
    metadata: &BTreeMap<String, String>,
) -> Result<Config> {
    let Some(text) = metadata.get(crate::config::POLICY_INPUT_POOL_KEY) else {
        return Ok(config);
    };
    let shown = crate::error::shown(text, 20);
    let pool = text.parse::<usize>().map_err(|_| {
        Error::bad_input(
            path,
            format!("metadata `policy_input_pool` is `{shown}`, not a number"),
        )
    })?;
    config
        .with_policy_input_pool(pool)
        .map_err(|e| Error::bad_input(path, format!("metadata `policy_input_pool`: {e}")))
}

/// Builds the model, checking every tensor's name and shape against the configuration.
pub fn build(
    path: &Path,
    tensors: HashMap<String, Tensor>,
    metadata: BTreeMap<String, String>,
    config_name: Option<&str>,
    device: &Device,
) -> Result<LoadedModel> {
    let config = resolve_config(path, &tensors, &metadata, config_name)?;
    check_finite(path, &tensors)?;
    let has_policy = tensors.keys().any(|name| name.starts_with("agent."));
    let model = checked::build_checked(tensors, device, |vb| match has_policy {
        true => BlockDrop::new(&config, vb),
        false => BlockDrop::base_only(&config, vb),
    })
    .map_err(|problems| {
        Error::bad_input(
            path,
            format!(
                "does not fit config {} ({} problem(s)): {}",
                config.name,
                problems.len(),
                summarise(&problems)
            ),
        )
    })?;
    Ok(LoadedModel {
        model,
        metadata,
        path: path.to_path_buf(),
    })
}

/// Refuses weights or statistics that are NaN or infinite: such a model would print plausible
/// summary lines over garbage predictions.
fn check_finite(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let mut bad: Vec<&String> = Vec::new();
    for (name, t) in tensors {
        if !t.dtype().is_float() {
            continue;
        }
        let values = t
            .flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| Error::bad_input(path, format!("tensor {name} ({:?}): {e}", t.dtype())))?;
        // A variance below zero is as wrong as NaN: folding BatchNorm would make it NaN.
        let variance = name.ends_with("running_var");
        if values
            .iter()
            .any(|v| !v.is_finite() || (variance && *v < 0.0))
        {
            bad.push(name);
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort();
    let names: Vec<String> = bad.iter().map(|n| n.to_string()).collect();
    Err(Error::bad_input(
        path,
        format!(
            "{} tensor(s) hold NaN or infinite values (or negative variances): {}",
            bad.len(),
            summarise(&names)
        ),
    ))
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

/// `config` with the policy input pool the model file at `path` records, if any (see
/// [`resolve_config`]): for a configuration named by `--config` beside a model file.
pub fn config_with_recorded_pool(path: &Path, config: Config) -> Result<Config> {
    let bytes = crate::input::read_file(path)?;
    let parts = read_parts(path, &bytes)?;
    with_recorded_pool(path, config, &parts.metadata)
}

/// The configuration a model file names in its metadata, else the one its base network fits
/// (for commands that need the configuration before they build a model, e.g. training).
pub fn config_of_file(path: &Path) -> Result<Config> {
    let bytes = crate::input::read_file(path)?;
    let parts = read_parts(path, &bytes)?;
    let tensors = parts
        .resnet
        .unwrap_or_default()
        .into_iter()
        .map(|(name, t)| (format!("resnet.{name}"), t))
        .collect();
    resolve_config(path, &tensors, &parts.metadata, None)
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
