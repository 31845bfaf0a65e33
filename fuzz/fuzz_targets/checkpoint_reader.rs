//! Any bytes given as a model file: the reader must return a value or an error, never panic,
//! hang or allocate beyond what the bytes justify.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = blockdrop::checkpoint::read_parts(Path::new("fuzz.pth"), data);
});
