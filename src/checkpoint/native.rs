//! This project's model file: one `.safetensors` with `resnet.*` and `agent.*` tensors (the
//! reference's names after the prefix) and string metadata (`config`, `stage`, `epoch`, …;
//! docs/formats.md, "Model files").

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::SafeTensors;

use crate::atomic::write_bytes_atomic;
use crate::error::{Error, Result};

/// Reads every tensor and the metadata of a safetensors file already in memory.
pub fn read(
    path: &Path,
    bytes: &[u8],
    device: &Device,
) -> Result<(HashMap<String, Tensor>, BTreeMap<String, String>)> {
    let bad = |problem: String| Error::bad_input(path, problem);
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let tensor = Tensor::from_raw_buffer(
            view.data(),
            view.dtype()
                .try_into()
                .map_err(|e| bad(format!("tensor {name}: {e}")))?,
            view.shape(),
            device,
        )
        .map_err(|e| bad(format!("tensor {name}: {e}")))?;
        tensors.insert(name, tensor);
    }
    Ok((tensors, metadata))
}

/// Whether `path` is a safetensors file blockdrop wrote (its tag in the header's metadata).
pub fn is_ours(path: &Path) -> bool {
    crate::input::read_file(path).ok().is_some_and(|bytes| {
        SafeTensors::read_metadata(&bytes).is_ok_and(|(_, header)| {
            header.metadata().as_ref().is_some_and(|m| {
                m.get(crate::output::WRITER_KEY).map(String::as_str) == Some(crate::output::WRITER)
            })
        })
    })
}

/// Writes `tensors` and `metadata` (plus blockdrop's tag) to `path` atomically.
pub fn write(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let contiguous: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), t.contiguous()?.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    let mut info: HashMap<String, String> = metadata.clone().into_iter().collect();
    info.insert(
        crate::output::WRITER_KEY.to_string(),
        crate::output::WRITER.to_string(),
    );
    let bytes = safetensors::serialize(contiguous, Some(info))
        .map_err(|e| Error::bad_input(path, format!("cannot serialise model: {e}")))?;
    write_bytes_atomic(path, &bytes)
}
