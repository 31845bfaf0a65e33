//! Cancelling long work from another thread (the terminal app's Esc and quit): the thread
//! that runs the work holds a flag ([`scope`]), and the work checks it between steps
//! ([`check`]). Work run without a scope (the command line) is never cancelled, unless the
//! command asked for a stop on signals ([`stop_on_signals`]: `train`, so that a preempted
//! cluster job saves where it stands; docs/scale-out.md).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Set once a stop signal arrived, after [`stop_on_signals`] installed the handlers.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: anything more is not async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// From now on SIGTERM (what Slurm and Kubernetes send before they stop a job), SIGUSR1
/// (`sbatch --signal=USR1@SECONDS`) and SIGINT ask the work to stop: [`check`] fails with
/// [`Error::Cancelled`] on every thread, and [`signalled`] is true. A second signal of the same
/// kind acts as it would without the handler (`SA_RESETHAND`), so a second Ctrl-C still kills.
pub fn stop_on_signals() -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGUSR1, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only
        // stores to an atomic, and SA_RESTART keeps interrupted reads and writes going.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once a stop signal arrived (see [`stop_on_signals`]).
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::SeqCst)
}

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
    let cancelled = signalled()
        || FLAG.with(|f| {
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
