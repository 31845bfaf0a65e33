//! Any bytes as an IDX images file and labels file (raw or gzip), split at the first byte's
//! position: the header is read first and nothing is inflated past what it declares.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::idx(data));
