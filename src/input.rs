//! Reading a file the user named (docs/inputs.md): a regular file only, never a FIFO that
//! blocks forever or a device such as /dev/zero that never ends. Every reader of a file goes
//! through [`open_regular`]: the type is checked on the opened descriptor (no window for a
//! swap), and the open itself never blocks on a FIFO.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The regular file at `path` (links followed), opened for reading, and its length.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    // The type is checked before the open (opening some devices has effects: a tape rewinds)
    // and again on the opened descriptor (the path may have been swapped meanwhile).
    check_regular(
        path,
        &std::fs::metadata(path).map_err(|e| Error::io(path, e))?,
    )?;
    // O_NONBLOCK: opening a FIFO swapped in would otherwise wait for a writer; O_NOCTTY: a
    // terminal never becomes ours. Neither changes a regular file's reads.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    check_regular(path, &meta)?;
    Ok((file, meta.len()))
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if meta.is_dir() {
        return Err(Error::bad_input(path, "is a folder, not a file"));
    }
    if !meta.is_file() {
        return Err(Error::bad_input(
            path,
            "is not a regular file (a pipe, a device or a socket); blockdrop reads files only",
        ));
    }
    Ok(())
}

/// The bytes of the regular file at `path` (links followed), read whole once: memory is its
/// size (never more than it had when opened, should it grow meanwhile).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    read_at_most(file, len, path)
}

/// The UTF-8 text of the regular file at `path`, `None` when there is none; refused above
/// `max` bytes (`what` says whose limit it is, e.g. "a run writes").
pub fn read_text_capped(path: &Path, max: u64, what: &str) -> Result<Option<String>> {
    let (file, len) = match open_regular(path) {
        Ok(opened) => opened,
        Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if len > max {
        return Err(Error::bad_input(
            path,
            format!("is {len} bytes, more than the {max} {what}"),
        ));
    }
    let bytes = read_at_most(file, len, path)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::bad_input(path, "is not UTF-8 text"))
}

fn read_at_most(file: File, len: u64, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_devices_and_folders_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let error = read_file(path).unwrap_err();
            assert!(error.is_user_error(), "{path:?}: {error}");
            let error = read_text_capped(path, 1 << 20, "test").unwrap_err();
            assert!(error.is_user_error(), "{path:?}: {error}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let error = read_text_capped(&big, 1024, "a test writes").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("more than the 1024 a test writes"),
            "{error}"
        );
        assert_eq!(
            read_text_capped(&big, 4096, "x").unwrap().unwrap().len(),
            2048
        );
        assert!(read_text_capped(&dir.path().join("absent"), 10, "x")
            .unwrap()
            .is_none());
    }
}
