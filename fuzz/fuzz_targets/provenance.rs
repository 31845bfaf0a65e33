//! Any key-value metadata on a records file (`eval --resume`, `merge`, `export --records`):
//! a provenance or an error naming the file, never a panic; and a provenance's range always
//! lies within its images.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::provenance(data));
