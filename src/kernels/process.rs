//! Process-wide settings the CPU path needs, applied once at start-up (before any tensor op):
//!
//! - **Keep freed memory.** Every candle op allocates its output, and a training step frees and
//!   reallocates a few hundred activation-sized buffers (megabytes each). glibc hands buffers
//!   that large back to the kernel on free and maps them afresh on the next allocation, so each
//!   step page-faults and zeroes them again and shoots down TLBs on every core: measured, a
//!   R32_FMNIST training step at batch 128 took 1.5× as long. Raising the mmap and trim
//!   thresholds keeps that memory in the heap for reuse.
//! - **Short spins in candle's elementwise pool.** candle 0.11 runs elementwise ops on its own
//!   pool, whose workers spin (25,000 pauses) after each op before sleeping; between ops our
//!   kernels run on rayon, so a spinning worker takes a core from them. A spin limit of 0
//!   parks them at once (about 10% of a training step on two cores). A value the user set in
//!   `CANDLE_BARRIER_POOL_SPIN_LIMIT` is kept.

/// Applies both settings; call first thing in `main`, while the process has one thread.
pub fn tune() {
    keep_freed_memory();
    if std::env::var_os(SPIN_LIMIT).is_none() {
        // Sound here: called before any other thread exists (see above).
        std::env::set_var(SPIN_LIMIT, "0");
    }
}

const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // glibc caps the mmap threshold at 32 MiB on 64-bit targets; larger requests are refused.
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// Other allocators (macOS, musl) keep their own policies.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
