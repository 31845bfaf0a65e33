//! One process at a time per folder: an exclusive `flock(2)` on a lock file in it, held while
//! the owner runs and released by the kernel when it ends, however it ends (so a killed run
//! leaves no stale lock). The file holds the owner's process id, for the message a second
//! process gets; it stays in the folder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

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
    _file: File,
}

impl FolderLock {
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let path = dir.join(LOCK);
        // Never through a planted link, never truncating before the lock is ours.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // A pipe or a device planted under the lock's name cannot be locked or read back.
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(Error::bad_input(
                &path,
                "is not a regular file (a pipe or a device) where blockdrop keeps its lock; remove it",
            ));
        }
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            // A process id, a few bytes: a planted huge file is not read whole.
            let mut owner = String::new();
            let _ = (&mut file).take(64).read_to_string(&mut owner);
            let owner = owner.trim();
            let owner = if owner.is_empty() { "?" } else { owner };
            return Err(Error::bad_input(
                dir,
                format!("is in use by another blockdrop process (pid {owner}); wait for it to finish or stop it"),
            ));
        }
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()));
        written.map_err(|e| Error::io(&path, e))?;
        Ok(FolderLock { _file: file })
    }
}
