//! Panics that third-party readers (polars on a corrupt Parquet file, an image decoder on a
//! corrupt image) raise on bad input: [`catch`] turns them into that input's error where the
//! reader is called, and, once the binary has installed [`install_hook`], they print nothing,
//! so the user sees the one line naming the file. Panics anywhere else print as usual.
//!
//! The hook is process-wide and the readers panic on their own threads (polars' pool), so a
//! section is marked by a global count, not per thread: a panic of our own that happened while
//! a reader ran would go unprinted too (it still propagates and fails its command).

use std::panic::{catch_unwind, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Readers running inside [`catch`] now.
static CATCHING: AtomicUsize = AtomicUsize::new(0);

/// Runs `read` (a third-party reader on untrusted input), catching its panic quietly.
pub fn catch<R>(read: impl FnOnce() -> R + UnwindSafe) -> std::thread::Result<R> {
    CATCHING.fetch_add(1, Ordering::SeqCst);
    let out = catch_unwind(read);
    CATCHING.fetch_sub(1, Ordering::SeqCst);
    out
}

/// Installs a panic hook that prints nothing while a [`catch`] is running and defers to the
/// hook it replaces otherwise. Call once, from the binary's start.
pub fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CATCHING.load(Ordering::SeqCst) == 0 {
            previous(info);
        }
    }));
}
