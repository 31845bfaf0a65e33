//! Timing of forward-pass stages on the model's device.
//!
//! - On the CPU candle computes eagerly: a stage's wall-clock time is its time.
//! - On CUDA work is queued on the device's stream. Each stage gets an event recorded before
//!   and after it on that stream, with no synchronisation between stages (that would serialise
//!   the GPU and measure launch gaps); the times are read once the run is over
//!   ([`StageTimer::finish_run`]). Events and work must come from the same thread: candle's
//!   default stream is per thread.
//! - On Metal candle exposes no GPU timestamps, so the device is synchronised before the clock
//!   starts and before it stops; [`StageTimer::clock`] says which was used.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use candle_core::{Device, DeviceLocation, Result, Tensor};

use crate::exec::{Stage, StageHook};

/// Runs `f` and returns its result and the time it took on `device`.
pub fn time_on<T>(device: &Device, f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    device.synchronize()?;
    let start = Instant::now();
    let out = f()?;
    device.synchronize()?;
    Ok((out, start.elapsed()))
}

/// How stage times are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The CPU's clock around eager work.
    Wall,
    /// The CPU's clock with the device synchronised around each stage (Metal).
    SynchronisedWall,
    /// Device events on the stream, read after the run (CUDA).
    CudaEvents,
}

impl Clock {
    /// The clock `device` is timed with.
    pub fn for_device(device: &Device) -> Clock {
        Clock::at(device.location())
    }

    /// [`Clock::for_device`] by the device's location (testable without the device). CUDA
    /// events need a build with CUDA, which every CUDA device comes from.
    pub fn at(location: DeviceLocation) -> Clock {
        match location {
            DeviceLocation::Cpu => Clock::Wall,
            DeviceLocation::Cuda { .. } => Clock::CudaEvents,
            DeviceLocation::Metal { .. } => Clock::SynchronisedWall,
        }
    }

    /// Printed by `profile` and kept in its JSON.
    pub fn describe(self) -> &'static str {
        match self {
            Clock::Wall => "wall clock",
            Clock::SynchronisedWall => {
                "wall clock, device synchronised around each stage (no GPU timestamps in candle's Metal backend)"
            }
            Clock::CudaEvents => "CUDA events on the device's stream",
        }
    }
}

/// A [`StageHook`] that records every stage's time, in microseconds, run after run.
pub struct StageTimer<'d> {
    device: &'d Device,
    clock: Clock,
    pub samples: BTreeMap<Stage, Vec<f64>>,
    #[cfg(feature = "cuda")]
    pending: Vec<(Stage, cuda::Span)>,
}

impl<'d> StageTimer<'d> {
    pub fn new(device: &'d Device) -> Self {
        Self {
            device,
            clock: Clock::for_device(device),
            samples: BTreeMap::new(),
            #[cfg(feature = "cuda")]
            pending: Vec::new(),
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn record(&mut self, stage: Stage, us: f64) {
        self.samples.entry(stage).or_default().push(us);
    }

    /// Reads the times a run left on the device (CUDA events); call after each run, before
    /// the samples are read. Nothing to do on other clocks.
    pub fn finish_run(&mut self) -> Result<()> {
        #[cfg(feature = "cuda")]
        for (stage, span) in std::mem::take(&mut self.pending) {
            self.record(stage, span.elapsed_us()?);
        }
        Ok(())
    }
}

impl StageHook for StageTimer<'_> {
    fn run(&mut self, stage: Stage, f: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> {
        match self.clock {
            #[cfg(feature = "cuda")]
            Clock::CudaEvents => {
                let (out, span) = cuda::Span::around(self.device, f)?;
                self.pending.push((stage, span));
                Ok(out)
            }
            _ => {
                let (out, elapsed) = time_on(self.device, f)?;
                self.record(stage, elapsed.as_secs_f64() * 1e6);
                Ok(out)
            }
        }
    }
}

/// CUDA events (built with `--features cuda` only).
#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::cuda_backend::cudarc::driver::{sys::CUevent_flags, CudaEvent};
    use candle_core::{Device, Result, Tensor};

    /// Two events around a stage's work on the device's stream.
    pub struct Span {
        start: CudaEvent,
        end: CudaEvent,
    }

    impl Span {
        /// Records an event, queues `f`'s work, records another; does not wait.
        pub fn around(
            device: &Device,
            f: &mut dyn FnMut() -> Result<Tensor>,
        ) -> Result<(Tensor, Span)> {
            let stream = device.as_cuda_device()?.cuda_stream();
            // CU_EVENT_DEFAULT: timing enabled (an event made with `None` cannot be timed).
            let event = || {
                stream
                    .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                    .map_err(candle_core::Error::wrap)
            };
            let start = event()?;
            let out = f()?;
            let end = event()?;
            Ok((out, Span { start, end }))
        }

        /// The time between the two events, in µs (waits for the end event).
        pub fn elapsed_us(&self) -> Result<f64> {
            let ms = self
                .start
                .elapsed_ms(&self.end)
                .map_err(candle_core::Error::wrap)?;
            Ok(f64::from(ms) * 1e3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_timed_by_the_wall_clock_and_every_stage_is_recorded() {
        let device = Device::Cpu;
        let mut timer = StageTimer::new(&device);
        assert_eq!(timer.clock(), Clock::Wall);
        for stage in [Stage::Stem, Stage::Block(0), Stage::Stem] {
            timer
                .run(stage, &mut || {
                    Tensor::zeros(4, candle_core::DType::F32, &device)
                })
                .unwrap();
        }
        timer.finish_run().unwrap();
        assert_eq!(timer.samples[&Stage::Stem].len(), 2);
        assert_eq!(timer.samples[&Stage::Block(0)].len(), 1);
    }

    #[test]
    fn each_device_has_its_clock() {
        assert_eq!(
            Clock::at(DeviceLocation::Cuda { gpu_id: 0 }),
            Clock::CudaEvents
        );
        assert_eq!(
            Clock::at(DeviceLocation::Metal { gpu_id: 0 }),
            Clock::SynchronisedWall
        );
        assert!(Clock::CudaEvents.describe().starts_with("CUDA events"));
        assert!(Clock::SynchronisedWall
            .describe()
            .contains("no GPU timestamps"));
    }
}
