//! Median wall time of a closure: one warm-up run, then REPEAT timed runs.

use std::time::Instant;

use blockdrop::stats::median;

pub const REPEAT: usize = 7;

/// Median milliseconds of `f` over REPEAT runs after one warm-up run.
pub fn time_ms<T>(mut f: impl FnMut() -> candle_core::Result<T>) -> anyhow::Result<f64> {
    f()?;
    let mut samples = Vec::with_capacity(REPEAT);
    for _ in 0..REPEAT {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&samples))
}
