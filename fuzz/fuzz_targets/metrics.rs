//! Any text given as a training run's `metrics.csv` (the `runs` command, the workbench's Runs
//! view, a run folder given to `compare`): rows or an error naming the line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::metrics(data));
