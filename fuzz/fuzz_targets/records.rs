//! Any policy strings and block counts in a records frame (`export --records`, `merge`,
//! `eval --resume` read them from Parquet): records whose policies all have one width of 0s
//! and 1s matching their block counts, or an error naming the file, never a panic; and what
//! is read always analyses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::records(data));
