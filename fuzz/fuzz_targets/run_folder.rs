//! Any bytes as a training run folder (config.json, metrics.csv, state.safetensors) that --resume opens.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::run_folder(data));
