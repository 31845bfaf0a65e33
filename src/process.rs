//! Process-wide settings the CPU path needs, applied once at start-up (before any tensor op):
//!
//! - **Keep freed memory.** Every candle op allocates its output, and a training step frees and
//!   reallocates a few hundred activation-sized buffers (megabytes each). glibc hands buffers
//!   that large back to the kernel on free and maps them afresh on the next allocation, so each
//!   step page-faults and zeroes them again and shoots down TLBs on every core: measured, a
//!   R32_FMNIST training step at batch 128 took 1.5× as long. Raising the mmap and trim
//!   thresholds keeps that memory in the heap for reuse. One arena: buffers allocated on
//!   other threads (rayon's workers, candle's backprop thread) otherwise come from per-thread
//!   arenas, which those thresholds did not keep from page-faulting afresh; with one arena a
//!   training step page-faults 2.5× less (all of it in the first step) and takes about 10%
//!   less time.
//! - **Fix the thread count.** Without `RAYON_NUM_THREADS`, candle counts the physical cores
//!   afresh on every call of `get_num_threads` (its CPU ops call it per operator), reading
//!   `/proc/cpuinfo` each time: about 4% of a batch-1 forward. The count it finds is set once;
//!   rayon's pool then has one thread per physical core too (SMT siblings add nothing to
//!   FMA-bound kernels).
//! - **Work on the pool** ([`on_pool`]).
//! - **Short spins in candle's elementwise pool.** candle 0.11 runs elementwise ops on its own
//!   pool, whose workers spin (25,000 pauses) after each op before sleeping; between ops our
//!   kernels run on rayon, so a spinning worker takes a core from them. A spin limit of 0
//!   parks them at once (about 10% of a training step on two cores). A value the user set in
//!   `CANDLE_BARRIER_POOL_SPIN_LIMIT` is kept.

/// Applies these settings; call first thing in `main`, while the process has one thread.
pub fn tune() {
    keep_freed_memory();
    // Setting variables is sound here: no other thread exists yet (see above).
    if std::env::var_os(SPIN_LIMIT).is_none() {
        std::env::set_var(SPIN_LIMIT, "0");
    }
    if std::env::var_os(THREADS).is_none() {
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var(THREADS, threads.to_string());
    }
}

const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
const THREADS: &str = "RAYON_NUM_THREADS";

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // glibc caps the mmap threshold at 32 MiB on 64-bit targets; larger requests are refused.
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Other allocators (macOS, musl) keep their own policies.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Runs `work` on a thread of rayon's global pool (at once when already on one). A parallel
/// loop started from outside the pool hands its job to the pool and puts the caller to sleep
/// until it finishes: two context switches per operator, tens of microseconds, which at batch 1
/// cost more than the convolutions themselves (a 16-channel 32x32 layer: 70 µs from outside,
/// 27 µs on a worker, single-threaded). Started on a worker, the loops run in place and the
/// other workers steal from them. Wrap whole jobs (an evaluation, a training run), not
/// operators; never a loop that waits for other threads' parallel work (a UI thread).
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

#[cfg(test)]
mod tests {
    use super::on_pool;

    #[test]
    fn on_pool_runs_on_a_worker_and_nests_in_place() {
        let outer = on_pool(|| {
            let here = rayon::current_thread_index();
            // Already on the pool: runs on the same worker, not handed to another.
            let inner = on_pool(rayon::current_thread_index);
            (here, inner)
        });
        assert!(outer.0.is_some(), "the work ran outside rayon's pool");
        assert_eq!(outer.0, outer.1);
    }
}
