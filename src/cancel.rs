//! Cancelling long work from another thread (the terminal app's Esc and quit): the thread
//! that runs the work holds a flag ([`scope`]), and the work checks it between steps
//! ([`check`]). Work run without a scope (the command line) is never cancelled.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

thread_local! {
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `work` on this thread with `flag` as its cancel flag.
pub fn scope<R>(flag: &Arc<AtomicBool>, work: impl FnOnce() -> R) -> R {
    let previous = FLAG.with(|f| f.replace(Some(Arc::clone(flag))));
    let result = work();
    FLAG.with(|f| *f.borrow_mut() = previous);
    result
}

/// `Err(Error::Cancelled)` once this thread's work was asked to stop.
pub fn check() -> Result<()> {
    let cancelled = FLAG.with(|f| {
        f.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    });
    if cancelled {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}
