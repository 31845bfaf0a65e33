//! Reference checkpoints in PyTorch's zip format (`torch.save` since PyTorch 1.6), read with
//! candle's pickle module: a dict with `agent` (or, in old files, `net`) and `resnet` state
//! dicts beside `epoch`, `reward` and `acc`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::error::{Error, Result};

/// The first four bytes of a zip archive.
pub const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// The start of a legacy (pre-1.6) `torch.save` file: pickle protocol 2, then the LONG1 magic
/// number 0x1950a86a20f9469cfc6c.
pub const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

fn read_state_dict(path: &Path, key: &str) -> Result<Option<Vec<(String, Tensor)>>> {
    match candle_core::pickle::read_all_with_key(path, Some(key)) {
        Ok(tensors) => Ok(Some(tensors)),
        Err(e) if e.to_string().contains(&format!("key {key} not found")) => Ok(None),
        Err(e) => Err(Error::bad_input(
            path,
            format!("cannot read PyTorch checkpoint: {e}"),
        )),
    }
}

/// Reference names as our model expects them: no DataParallel `module.` prefix, and without
/// the `features.fc.*` entries old agents carry from before their `fc` was removed.
fn normalise(
    prefix: &str,
    tensors: Vec<(String, Tensor)>,
) -> impl Iterator<Item = (String, Tensor)> + '_ {
    tensors.into_iter().filter_map(move |(name, t)| {
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        (!name.starts_with("features.fc.")).then(|| (format!("{prefix}.{name}"), t))
    })
}

/// Reads a zip-format reference checkpoint into `agent.*` / `resnet.*` tensors.
pub fn read_zip_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>> {
    let agent = match read_state_dict(path, "agent")? {
        Some(agent) => agent,
        None => read_state_dict(path, "net")?.ok_or_else(|| {
            Error::bad_input(
                path,
                "PyTorch checkpoint has no 'agent' (or 'net') state dict",
            )
        })?,
    };
    let resnet = read_state_dict(path, "resnet")?.ok_or_else(|| {
        Error::bad_input(path, "PyTorch checkpoint has no 'resnet' state dict: an agent-only (curriculum-stage) checkpoint cannot be evaluated without its base network")
    })?;
    Ok(normalise("agent", agent)
        .chain(normalise("resnet", resnet))
        .collect())
}
