//! One memory budget for all the image decoders of the process. Each image's decode reserves
//! its peak (read from the header before any pixel is decoded) and waits while the other
//! decoders' reservations leave too little; so eight decoder threads on large images take at
//! most the budget, not eight times the per-image limit. One image alone always fits.

use std::sync::{Condvar, Mutex};

/// Bytes all decoders together may hold: one image of the largest size blockdrop reads
/// (40 million pixels at `BYTES_PER_PIXEL`) fits, and never two.
pub const TOTAL_BYTES: u64 = 640 << 20;

/// What decoding one pixel may hold at its peak: the decoder's buffer (up to 16-bit RGBA,
/// 8 bytes), its RGB copy (3) and the planar image (3), and the decoder's own rows.
pub const BYTES_PER_PIXEL: u64 = 16;

struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
}

static BUDGET: Budget = Budget {
    used: Mutex::new(0),
    freed: Condvar::new(),
};

/// A share of the budget, given back when dropped.
#[must_use = "the reservation is released when dropped"]
pub struct Reservation(u64);

/// Reserves the peak memory of decoding a `width`x`height` image, waiting while other decoders
/// hold too much of the budget (a request over the whole budget waits for all of it).
pub fn reserve(width: u32, height: u32) -> Reservation {
    let bytes = (u64::from(width) * u64::from(height))
        .saturating_mul(BYTES_PER_PIXEL)
        .min(TOTAL_BYTES);
    // A panicking holder leaves a consistent count (its reservation is dropped on unwind).
    let mut used = BUDGET.used.lock().unwrap_or_else(|p| p.into_inner());
    while *used + bytes > TOTAL_BYTES {
        used = BUDGET.freed.wait(used).unwrap_or_else(|p| p.into_inner());
    }
    *used += bytes;
    Reservation(bytes)
}

/// Bytes reserved now, by every decoder (for tests).
pub fn in_use() -> u64 {
    *BUDGET.used.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut used = BUDGET.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= self.0;
        BUDGET.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_wait_for_each_other_within_the_budget() {
        // Two reservations of 60% of the budget never overlap: the second waits.
        let side = ((TOTAL_BYTES * 6 / 10 / BYTES_PER_PIXEL) as f64).sqrt() as u32;
        let first = reserve(side, side);
        let waiter = std::thread::spawn(move || {
            let second = reserve(side, side);
            assert!(in_use() <= TOTAL_BYTES);
            drop(second);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "the second reservation did not wait");
        drop(first);
        waiter.join().unwrap();
        // An image larger than the whole budget still decodes, alone.
        let huge = reserve(u32::MAX, u32::MAX);
        assert_eq!(in_use(), TOTAL_BYTES);
        drop(huge);
    }
}
