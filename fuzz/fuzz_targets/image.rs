//! Any bytes as an image file, decoded within the reader's limits, then through every
//! configuration's test transform (the ImageNet resize and crop among them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::image(data));
