//! Any bytes as a Parquet records file: footer and page checks, then polars and the schema.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::parquet(data));
