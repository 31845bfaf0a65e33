//! Wall-clock timing of forward-pass stages on the model's device. Work on CUDA and Metal is
//! queued asynchronously, so the device is synchronised before the clock starts and before it
//! stops; on the CPU candle computes eagerly and synchronising is free.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use candle_core::{Device, Result, Tensor};

use crate::exec::{Stage, StageHook};

/// Runs `f` and returns its result and the time it took on `device`.
pub fn time_on<T>(device: &Device, f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    device.synchronize()?;
    let start = Instant::now();
    let out = f()?;
    device.synchronize()?;
    Ok((out, start.elapsed()))
}

/// A [`StageHook`] that records every stage's time, in microseconds, run after run.
pub struct StageTimer<'d> {
    device: &'d Device,
    pub samples: BTreeMap<Stage, Vec<f64>>,
}

impl<'d> StageTimer<'d> {
    pub fn new(device: &'d Device) -> Self {
        Self {
            device,
            samples: BTreeMap::new(),
        }
    }
}

impl StageHook for StageTimer<'_> {
    fn run(&mut self, stage: Stage, f: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> {
        let (out, elapsed) = time_on(self.device, f)?;
        self.samples
            .entry(stage)
            .or_default()
            .push(elapsed.as_secs_f64() * 1e6);
        Ok(out)
    }
}

/// The `q`-quantile (0..=1) of `samples` by nearest rank; `NaN` when there are none.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let s = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(median(&s), 3.0);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 5.0);
        assert_eq!(quantile(&s, 0.9), 5.0);
        assert!(median(&[]).is_nan());
    }
}
