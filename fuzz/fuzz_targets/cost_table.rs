//! Any bytes given as a cost table (`eval|compare|export --cost`, `train … --cost`): a checked
//! table or an error naming the file, never a panic; and a checked table only ever predicts
//! finite latencies and reward shares.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::cost_table(data));
