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
