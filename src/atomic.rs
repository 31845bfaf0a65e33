//! Output files appear whole or not at all: write beside the target, then rename over it.
//! The temporary file is created new (never an existing file, never through a planted link),
//! takes the replaced file's permissions, and the folder is synced after the rename so the
//! new name survives a crash. A target that did not exist is never replaced by the rename
//! (a file that appears meanwhile stays). Temporary files of killed runs are removed by the
//! next write to the same target. Whether a target may be replaced at all is the caller's
//! question (`output::check_replaceable`).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The start of every temporary name for `path`: `.{name}.tmp-`.
fn temp_prefix(path: &Path) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".tmp-");
    prefix
}

/// Removes temporary files for `path` whose process is gone (`.{name}.tmp-{pid}-{n}`).
fn clean_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let Ok(entries) = std::fs::read_dir(dir.unwrap_or(Path::new("."))) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .as_encoded_bytes()
            .strip_prefix(prefix.as_encoded_bytes())
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, n)| n.parse::<u64>().is_ok())
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if owner.is_some_and(|pid| !crate::lock::alive(pid)) && is_file {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Renames `from` to `to` only if nothing is at `to` (Linux: one atomic `renameat2` with
/// `RENAME_NOREPLACE`; elsewhere a check then a rename).
pub fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
        let (Ok(from_c), Ok(to_c)) = (c(from), c(to)) else {
            return Err(Error::bad_input(to, "a path with a NUL byte"));
        };
        // SAFETY: both paths are NUL-terminated C strings that outlive the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from_c.as_ptr(),
                libc::AT_FDCWD,
                to_c.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        // File systems without RENAME_NOREPLACE fall back to the check below.
        if error.raw_os_error() != Some(libc::EINVAL) {
            return Err(Error::io(to, error));
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(Error::bad_input(
            to,
            "appeared while it was being written; it was not replaced",
        ));
    }
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))
}

/// Creates a fresh temporary file beside `path`: `.{name}.tmp-{pid}-{n}`, with `n` counted up
/// past any name already taken.
fn create_temp(path: &Path) -> Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    clean_stale_temps(path);
    for _ in 0..64 {
        let mut temp_name = temp_prefix(path);
        temp_name.push(format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = path.with_file_name(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // A read-only or full disk: the user's fix is about the file they named.
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Err(Error::bad_input(
        path,
        "cannot create a temporary file beside it (every name taken)",
    ))
}

/// Flushes a folder's entries to disk (best effort: not every file system can).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Calls `write` on a temporary file next to `path` and renames it to `path` only when
/// `write` succeeded; on failure the temporary file is removed and `path` is untouched.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::bad_input(dir, "output folder does not exist"));
        }
    }
    let (temp, file) = create_temp(path)?;
    let result = (|| {
        let mut writer = BufWriter::new(file);
        write(&mut writer)?;
        // Errors name the file the user asked for; the temporary file is removed below.
        writer.flush().map_err(|e| Error::io(path, e))?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        match std::fs::symlink_metadata(path) {
            Ok(old) => {
                // Replacing (the caller checked it may): keep the old file's permissions.
                let _ = file.set_permissions(old.permissions());
                std::fs::rename(&temp, path).map_err(|e| Error::io(path, e))?;
            }
            Err(_) => rename_no_replace(&temp, path)?,
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        sync_dir(dir.unwrap_or(Path::new(".")));
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// [`write_atomic`] for bytes already in memory.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
}
