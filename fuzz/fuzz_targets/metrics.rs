//! Any text given as a training run's `metrics.csv` (the `runs` command, the workbench's Runs
//! view, a run folder given to `compare`): rows or an error naming the line, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = blockdrop::runs::parse_metrics(Path::new("metrics.csv"), text);
    }
});
