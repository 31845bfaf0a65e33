//! One process at a time per folder: a lock file holding the owner's process id, created new
//! (never an existing file), removed when the owner ends. A lock whose process is gone is a
//! leftover of a killed run and is taken over.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name inside the folder it guards.
pub const LOCK: &str = ".blockdrop-lock";

/// Whether process `pid` is running.
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Holds a folder's lock until dropped.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

impl FolderLock {
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(FolderLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match owner {
                        Some(pid) if alive(pid) => {
                            return Err(Error::bad_input(
                                dir,
                                format!("is in use by another blockdrop process (pid {pid}); wait for it to finish or stop it"),
                            ))
                        }
                        Some(_) => {
                            // The owner was killed: the lock is a leftover of ours.
                            let _ = fs::remove_file(&path);
                        }
                        None => {
                            return Err(Error::bad_input(
                                &path,
                                "is not a lock blockdrop wrote (no process id in it); remove it if no blockdrop runs here",
                            ))
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::bad_input(
            dir,
            "cannot take its lock: another process keeps taking it",
        ))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
