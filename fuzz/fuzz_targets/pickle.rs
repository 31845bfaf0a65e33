//! Any bytes as a pickle stream, with every global allowed (the widest the reader gets), then
//! the accessors the checkpoint and CIFAR readers use, over every object it made.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::pickle(data));
