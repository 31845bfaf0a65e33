//! Reading a file the user named (docs/inputs.md): a regular file only, never a FIFO that
//! blocks forever or a device such as /dev/zero that never ends, read whole once, so memory is
//! its size.

use std::path::Path;

use crate::error::{Error, Result};

/// The bytes of the regular file at `path` (links followed).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::bad_input(path, "is a folder, not a file"));
    }
    if !meta.is_file() {
        return Err(Error::bad_input(
            path,
            "is not a regular file (a pipe, a device or a socket); blockdrop reads files only",
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
