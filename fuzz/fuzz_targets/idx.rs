//! Any bytes as an IDX images file and labels file (raw or gzip), split at the first byte's
//! position: the header is read first and nothing is inflated past what it declares.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize * rest.len() / 255).min(rest.len());
    let (images, labels) = rest.split_at(at);
    let _ = blockdrop::data::idx::parse_pair(
        (Path::new("images"), images.to_vec()),
        (Path::new("labels"), labels.to_vec()),
    );
});
