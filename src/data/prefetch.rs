//! Batches decoded ahead of the network: worker threads read, decode, resize and normalise the
//! next batches while the caller runs the current one. At most `ahead` batches are decoded or
//! being decoded beyond the one the caller holds, so memory stays bounded whatever the
//! dataset's size; batches reach the caller in order, and so do errors (the first bad image
//! in order is the one reported, as without prefetching).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use candle_core::{Device, Tensor};

use crate::config::Config;
use crate::data::Dataset;
use crate::error::{Error, Result};

/// The most batches decoded ahead unless asked for more (`--prefetch`'s own limit).
const MAX_AHEAD_BY_DEFAULT: usize = 64;

/// How far to decode ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefetch {
    /// Decoder threads.
    pub workers: usize,
    /// Batches decoded or being decoded beyond the one the caller holds (≥ 1).
    pub ahead: usize,
}

impl Prefetch {
    /// Half the cores decode (1 to 8; the network has the rest, and a decoder waiting for the
    /// network to catch up costs nothing), one batch ahead per decoder: each decoder fills the
    /// next batch while the network runs the current one. A batch of 64 ImageNet crops is
    /// 38.5 MB of f32.
    pub fn default_for_machine() -> Prefetch {
        Prefetch::with(None, None)
    }

    /// `workers` decoders and `ahead` batches, each defaulting as
    /// [`Prefetch::default_for_machine`] says.
    pub fn with(workers: Option<usize>, ahead: Option<usize>) -> Prefetch {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = workers.unwrap_or((cores / 2).clamp(1, 8)).max(1);
        Prefetch {
            workers,
            ahead: ahead.unwrap_or(workers.min(MAX_AHEAD_BY_DEFAULT)).max(1),
        }
    }
}

/// What the workers and the caller share.
struct Shared {
    /// The next batch a worker may claim.
    next: usize,
    /// Batches the caller has taken.
    taken: usize,
    /// Decoded batches not yet taken, by position.
    ready: BTreeMap<usize, Result<Vec<f32>>>,
    /// Set when the caller stops early (an error, a cancel): workers finish and leave.
    stop: bool,
}

struct Queue {
    shared: Mutex<Shared>,
    changed: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A worker that panicked leaves consistent state behind (every update is one
        // assignment), so a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Shared>) -> MutexGuard<'a, Shared> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// A worker's loop: claim the next batch while within `ahead` of the caller, decode it,
    /// hand it over.
    fn work(&self, dataset: &Dataset, batches: &[&[usize]], config: &Config, ahead: usize) {
        loop {
            let mut shared = self.lock();
            while !shared.stop
                && shared.next < batches.len()
                && shared.next >= shared.taken.saturating_add(ahead)
            {
                shared = self.wait(shared);
            }
            if shared.stop || shared.next >= batches.len() {
                return;
            }
            let claimed = shared.next;
            shared.next += 1;
            drop(shared);
            // A decoder's panic (a malformed file can still reach one) becomes this batch's
            // error: the caller waits for every batch it takes, and would wait forever.
            let values = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dataset.batch_values(batches[claimed], config, |image| image)
            }))
            .unwrap_or_else(|_| {
                let first = batches[claimed].first().copied().unwrap_or(0);
                Err(Error::bad_input(
                    dataset.image_path(first),
                    "decoding failed (the decoder panicked) in the batch starting here",
                ))
            });
            self.lock().ready.insert(claimed, values);
            self.changed.notify_all();
        }
    }

    /// The caller's side: waits for batch `position`.
    fn take(&self, position: usize) -> Result<Vec<f32>> {
        let mut shared = self.lock();
        loop {
            if let Some(values) = shared.ready.remove(&position) {
                shared.taken = position + 1;
                self.changed.notify_all();
                return values;
            }
            shared = self.wait(shared);
        }
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

/// Calls `consume(indices, tensor)` for each of `batches` in order, the tensor holding those
/// images transformed for `config` on `device`, decoded ahead on `prefetch.workers` threads.
/// Stops at the first error, the caller's or a batch's.
pub fn for_each_batch(
    dataset: &Dataset,
    batches: &[&[usize]],
    config: &Config,
    device: &Device,
    prefetch: Prefetch,
    mut consume: impl FnMut(&[usize], Tensor) -> Result<()>,
) -> Result<()> {
    if prefetch.workers == 0 || prefetch.ahead == 0 {
        return Err(Error::BadUsage(
            "prefetching needs at least one worker and one batch ahead".into(),
        ));
    }
    let queue = Queue {
        shared: Mutex::new(Shared {
            next: 0,
            taken: 0,
            ready: BTreeMap::new(),
            stop: false,
        }),
        changed: Condvar::new(),
    };
    let (c, h, w) = config.input;
    /// Stops the workers however the caller's side ends, a panic included: they would
    /// otherwise wait for it forever and the scope would never join them.
    struct StopOnDrop<'q>(&'q Queue);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&queue);
        for _ in 0..prefetch.workers.min(batches.len()) {
            scope.spawn(|| queue.work(dataset, batches, config, prefetch.ahead));
        }
        let result = batches
            .iter()
            .enumerate()
            .try_for_each(|(position, &indices)| {
                let values = queue.take(position)?;
                // The tensor is made on the caller's thread: a GPU's stream is per thread.
                let x = Tensor::from_vec(values, (indices.len(), c, h, w), device)?;
                consume(indices, x)
            });
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Format, Split, Store};

    fn dataset(images: usize) -> Dataset {
        let (c, h, w) = (1, 28, 28);
        Dataset::from_store(
            "memory".into(),
            Format::Idx,
            Split::Test,
            Store::InMemory {
                pixels: (0..images * c * h * w).map(|i| (i % 251) as u8).collect(),
                shape: (c, h, w),
                labels: vec![0; images],
            },
        )
    }

    #[test]
    fn batches_arrive_in_order_and_equal_the_direct_decode() {
        let data = dataset(103);
        let config = Config::by_name("R32_FMNIST").unwrap();
        let indices: Vec<usize> = (0..103).collect();
        let batches: Vec<&[usize]> = indices.chunks(10).collect();
        for (workers, ahead) in [(1, 1), (2, 2), (3, 1), (4, 8)] {
            let mut seen = Vec::new();
            for_each_batch(
                &data,
                &batches,
                &config,
                &Device::Cpu,
                Prefetch { workers, ahead },
                |chunk, x| {
                    let direct = data.batch(chunk, &config, &Device::Cpu)?;
                    let diff = (x - direct)?.abs()?.sum_all()?.to_scalar::<f32>()?;
                    assert_eq!(diff, 0.0);
                    seen.push(chunk[0]);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..103).step_by(10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_in_order_stops_everything() {
        let data = dataset(50);
        let config = Config::by_name("R32_FMNIST").unwrap();
        // Image 60 is beyond the dataset: batch 3 fails, after three batches were taken.
        let batches: Vec<Vec<usize>> = vec![vec![0, 1], vec![2], vec![3], vec![60], vec![4]];
        let batches: Vec<&[usize]> = batches.iter().map(Vec::as_slice).collect();
        let mut consumed = 0;
        let error = for_each_batch(
            &data,
            &batches,
            &config,
            &Device::Cpu,
            Prefetch {
                workers: 2,
                ahead: 2,
            },
            |_, _| {
                consumed += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(consumed, 3);
        assert!(error.to_string().contains("no image 60"), "{error}");
        // The caller's own error stops the workers too.
        let error = for_each_batch(
            &data,
            &batches,
            &config,
            &Device::Cpu,
            Prefetch::default_for_machine(),
            |_, _| Err(Error::Cancelled),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Cancelled));
    }
}
