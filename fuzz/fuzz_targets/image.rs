//! Any bytes as an image file, decoded within the reader's limits, then through every
//! configuration's test transform (the ImageNet resize and crop among them).
#![no_main]

use std::path::Path;

use blockdrop::config::{Config, NAMES};
use blockdrop::data::{decode_image_bytes, transform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(image) = decode_image_bytes(Path::new("image"), data) else {
        return;
    };
    for name in NAMES {
        if let Ok(config) = Config::by_name(name) {
            let _ = transform::apply(&image, &config.transform);
        }
    }
});
