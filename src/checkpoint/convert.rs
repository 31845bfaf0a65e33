//! `blockdrop import`: a reference PyTorch checkpoint (and, for an agent-only file, its base
//! network) converted to this project's safetensors model file, checked against its
//! configuration first, with a report of what was mapped and what was ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::checkpoint::{build, combine, native, read_with_base, Parts};
use crate::error::Result;

/// What one input file contributed.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub agent: usize,
    pub resnet: usize,
    pub renamed: usize,
    pub unprefixed: usize,
    pub ignored: Vec<String>,
}

impl FileReport {
    fn of(path: &Path, parts: &Parts) -> Self {
        Self {
            path: path.to_path_buf(),
            agent: parts.agent.as_ref().map_or(0, Vec::len),
            resnet: parts.resnet.as_ref().map_or(0, Vec::len),
            renamed: parts.renamed,
            unprefixed: parts.unprefixed,
            ignored: parts.ignored.clone(),
        }
    }
}

#[derive(Debug)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    /// Tensors written per group (`agent.features.blocks`, `resnet.ds`, …).
    pub groups: BTreeMap<String, usize>,
    pub config: String,
    pub metadata: BTreeMap<String, String>,
    pub out: PathBuf,
}

/// `agent.features.blocks.0.0.conv1.weight` → `agent.features.blocks`; `resnet.fc.bias` →
/// `resnet.fc`.
fn group(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let depth = if parts.get(1) == Some(&"features") {
        3
    } else {
        2
    };
    parts[..depth.min(parts.len())].join(".")
}

/// Converts `torch_file` (+ `base`) to a safetensors model at `out`.
pub fn import(
    torch_file: &Path,
    base: Option<&Path>,
    config_name: Option<&str>,
    out: &Path,
) -> Result<ImportReport> {
    crate::output::check_replaceable(out, native::is_ours)?;
    let (parts, base_parts) = read_with_base(torch_file, base)?;
    let mut files = vec![FileReport::of(torch_file, &parts)];
    if let (Some(b), Some(bp)) = (base, &base_parts) {
        files.push(FileReport::of(b, bp));
    }
    let (tensors, mut metadata) = combine(torch_file, parts, base.zip(base_parts))?;
    let written: BTreeMap<String, Tensor> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let loaded = build(
        torch_file,
        tensors,
        metadata.clone(),
        config_name,
        &Device::Cpu,
    )?;
    let config = loaded.model.config.name.clone();
    metadata.insert("config".into(), config.clone());
    metadata
        .entry(super::ModelStage::KEY.into())
        .or_insert_with(|| super::ModelStage::Imported.name().into());
    metadata.insert("source".into(), torch_file.display().to_string());
    native::write(out, &written, &metadata)?;
    let mut groups = BTreeMap::new();
    for name in written.keys() {
        *groups.entry(group(name)).or_insert(0) += 1;
    }
    Ok(ImportReport {
        files,
        groups,
        config,
        metadata,
        out: out.to_path_buf(),
    })
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            write!(
                f,
                "read {}: {} agent and {} base tensors",
                file.path.display(),
                file.agent,
                file.resnet
            )?;
            if file.renamed > 0 {
                write!(f, ", {} renamed from torchvision names", file.renamed)?;
            }
            if file.unprefixed > 0 {
                write!(
                    f,
                    ", {} without DataParallel's 'module.' prefix",
                    file.unprefixed
                )?;
            }
            writeln!(f)?;
            let batches = file
                .ignored
                .iter()
                .filter(|n| n.ends_with("num_batches_tracked"))
                .count();
            let others: Vec<&str> = file
                .ignored
                .iter()
                .filter(|n| !n.ends_with("num_batches_tracked"))
                .map(String::as_str)
                .collect();
            if batches > 0 || !others.is_empty() {
                write!(f, "  ignored: {batches} num_batches_tracked")?;
                if !others.is_empty() {
                    write!(f, ", {}", others.join(", "))?;
                }
                writeln!(f)?;
            }
        }
        writeln!(f, "mapped (tensors per group):")?;
        for (group, count) in &self.groups {
            writeln!(f, "  {group:<24} {count}")?;
        }
        if !self.groups.keys().any(|g| g.starts_with("agent")) {
            writeln!(
                f,
                "no policy network: a base network alone, which runs every block"
            )?;
        }
        if let Some(args) = self.metadata.get(super::names::ARGS_KEY) {
            writeln!(
                f,
                "training flags it recorded (kept as metadata 'args'): {args}"
            )?;
        }
        let meta: Vec<String> = self
            .metadata
            .iter()
            .filter(|(k, _)| k.as_str() != super::names::ARGS_KEY)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(
            f,
            "wrote {} (config {}; {})",
            self.out.display(),
            self.config,
            meta.join(", ")
        )
    }
}
