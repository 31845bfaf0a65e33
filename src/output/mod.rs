//! The output rule (docs/output.md): blockdrop never deletes or overwrites a file it did not
//! write. Single files carry a tag ([`WRITER_KEY`]) and only a tagged file is replaced; report
//! folders carry a marker ([`report_dir`]); nothing is written inside an input's folder.

pub mod frame;
pub mod parquet_bounds;
mod parquet_thrift;
pub mod report_dir;
pub mod thrift_compact;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use report_dir::{check_report_target, Staging, Target, MARKER, PARTIAL};

/// The key (Parquet key-value metadata, JSON object, safetensors metadata) and value by which
/// blockdrop recognises a file it wrote: only such a file is ever replaced.
pub const WRITER_KEY: &str = "written_by";
pub const WRITER: &str = "blockdrop";

/// Where `--export` and the terminal app's `e` write the bundled default's report: a folder of
/// its own, so `reports/` itself may hold the user's (or this repository's) files.
pub const DEFAULT_REPORT_DIR: &str = "reports/default";

fn refuse(path: &Path, problem: impl Into<String>) -> Error {
    Error::bad_input(path, problem)
}

/// Whether the JSON file at `path` carries blockdrop's tag (`"written_by": "blockdrop"`):
/// the `is_ours` of [`check_replaceable`] for JSON outputs.
pub fn json_is_ours(path: &Path) -> bool {
    crate::input::read_file(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|old| old[WRITER_KEY] == WRITER)
}

/// Refuses to replace an existing `path` unless `is_ours` finds blockdrop's tag in it
/// ([`WRITER_KEY`]: Parquet metadata, a JSON key, safetensors metadata). A file without a
/// place for a tag (CSV) is never replaced: blockdrop cannot tell its own from the user's.
pub fn check_replaceable(path: &Path, is_ours: impl FnOnce(&Path) -> bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
        Ok(meta) if meta.is_file() && is_ours(path) => Ok(()),
        Ok(_) => Err(refuse(
            path,
            "exists and is not a file blockdrop wrote (no written_by=blockdrop tag); choose another name or remove it (nothing was replaced)",
        )),
    }
}

/// The nearest existing ancestor of `path`, canonicalised, with the rest appended.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest.iter().rev().fold(canonical, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Checks, before any work, that a report may go to `out`: a folder the output rule allows
/// ([`check_report_target`]) and not inside the dataset's folder or the model file's folder.
/// The model's folder is allowed when it is the working directory, where a report beside the
/// model is the ordinary case.
pub fn check_export_target(out: &Path, data: &Path, model: Option<&Path>) -> Result<()> {
    check_report_target(out)?;
    let mut inputs: Vec<(&Path, &str)> = vec![(data, "dataset")];
    let model_dir = model
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = model_dir {
        let cwd = std::env::current_dir().ok();
        let is_cwd = cwd
            .zip(dir.canonicalize().ok())
            .is_some_and(|(c, d)| c == d);
        if !is_cwd {
            inputs.push((dir, "model"));
        }
    }
    refuse_inside(out, &inputs)
}

/// Refuses an output folder equal to or inside one of `inputs` (`(folder, what it is)`): a
/// report never lands among the files it reads.
pub fn refuse_inside(out: &Path, inputs: &[(&Path, &str)]) -> Result<()> {
    let out_resolved = resolve(out);
    for (input, what) in inputs {
        let input_resolved = resolve(input);
        if out_resolved.starts_with(&input_resolved) {
            return Err(refuse(
                out,
                format!(
                    "is inside the {what} folder {}; choose a report folder outside it",
                    input.display()
                ),
            ));
        }
    }
    Ok(())
}
